//! `berth secret` and `berth role`: what tasks' `secrets` and task roles resolve to on
//! this host (see `berth_runtime::secrets`).

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde_json::json;

use super::{client, print_table};
use crate::config::Globals;

#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Store a secret (or parameter) that task definitions' `secrets[].valueFrom` name.
    /// The value is read from standard input unless --value or --from-file is given,
    /// byte for byte (`printf %s "$PW" | berth secret put db-pass`); typed at a
    /// terminal, without the final newline.
    Put {
        /// The secret's name as in its ARN (`db-pass` for
        /// arn:aws:secretsmanager:…:secret:db-pass-AbCdEf) or the parameter's name
        /// (`/app/db/password`).
        name: String,
        /// The value (visible in the process list and shell history: prefer stdin).
        #[arg(long, conflicts_with = "from_file")]
        value: Option<String>,
        /// Read the value from this file.
        #[arg(long, value_name = "PATH")]
        from_file: Option<PathBuf>,
    },
    /// List stored secrets (names and sizes, never values).
    Ls,
    /// Remove a secret.
    Rm {
        /// The secret's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RoleCommand {
    /// Store the credentials served to tasks whose taskRoleArn is ROLE_ARN. Without
    /// --access-key-id, they are read from this command's environment
    /// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
    /// AWS_CREDENTIAL_EXPIRATION), e.g. after
    /// `eval "$(aws configure export-credentials --format env)"`.
    Put {
        /// arn:aws:iam::ACCOUNT:role/NAME
        role_arn: String,
        #[arg(long, requires = "secret_access_key")]
        access_key_id: Option<String>,
        /// (visible in the process list: prefer the environment)
        #[arg(long, requires = "access_key_id")]
        secret_access_key: Option<String>,
        #[arg(long)]
        session_token: Option<String>,
        /// When the credentials expire (RFC 3339).
        #[arg(long)]
        expiration: Option<String>,
    },
    /// List roles with stored credentials (never secret keys or tokens).
    Ls,
    /// Remove a role's credentials.
    Rm {
        /// The role's ARN.
        role_arn: String,
    },
}

pub(crate) async fn secret(g: &Globals, c: SecretCommand) -> Result<ExitCode> {
    let cl = client(g);
    match c {
        SecretCommand::Put {
            name,
            value,
            from_file,
        } => {
            let value = match (value, from_file) {
                (Some(v), _) => v,
                (None, Some(path)) => std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?,
                (None, None) => {
                    let stdin = std::io::stdin();
                    let typed = stdin.is_terminal();
                    if typed {
                        eprint!("value of {name} (then Enter and Ctrl-D): ");
                    }
                    let mut v = String::new();
                    stdin
                        .lock()
                        .read_to_string(&mut v)
                        .context("reading the value from standard input")?;
                    // Typed at a terminal, the Enter that ends the line is not part of it.
                    if typed && v.ends_with('\n') {
                        v.pop();
                    }
                    v
                }
            };
            let out = cl
                .berth("PutSecret", json!({"name": name, "value": value}))
                .await?;
            let verb = if out["replaced"] == true {
                "replaced"
            } else {
                "stored"
            };
            println!("{name} ({verb})");
        }
        SecretCommand::Ls => {
            let v = cl.berth("ListSecrets", json!({})).await?;
            let rows: Vec<Vec<String>> = v["secrets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    vec![
                        s["name"].as_str().unwrap_or_default().to_owned(),
                        format!("{} B", s["length"].as_u64().unwrap_or_default()),
                        updated(&s["updatedAt"]),
                    ]
                })
                .collect();
            print_table(&["NAME", "SIZE", "UPDATED"], &rows);
        }
        SecretCommand::Rm { name } => {
            cl.berth("DeleteSecret", json!({"name": name})).await?;
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn role(g: &Globals, c: RoleCommand) -> Result<ExitCode> {
    let cl = client(g);
    match c {
        RoleCommand::Put {
            role_arn,
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
        } => {
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let (key, secret, token, exp) = match (access_key_id, secret_access_key) {
                (Some(k), Some(s)) => (k, s, session_token, expiration),
                _ => {
                    let (Some(k), Some(s)) =
                        (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"))
                    else {
                        bail!(
                            "no credentials given: pass --access-key-id and --secret-access-key, \
                             or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                        );
                    };
                    (
                        k,
                        s,
                        session_token.or_else(|| env("AWS_SESSION_TOKEN")),
                        expiration.or_else(|| env("AWS_CREDENTIAL_EXPIRATION")),
                    )
                }
            };
            let out = cl
                .berth(
                    "PutRoleCredentials",
                    json!({"roleArn": role_arn, "accessKeyId": key, "secretAccessKey": secret,
                           "sessionToken": token, "expiration": exp}),
                )
                .await?;
            let verb = if out["replaced"] == true {
                "replaced"
            } else {
                "stored"
            };
            println!("{role_arn} ({verb}, access key {key})");
        }
        RoleCommand::Ls => {
            let v = cl.berth("ListRoleCredentials", json!({})).await?;
            let rows: Vec<Vec<String>> = v["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    vec![
                        r["roleArn"].as_str().unwrap_or_default().to_owned(),
                        r["accessKeyId"].as_str().unwrap_or_default().to_owned(),
                        if r["hasSessionToken"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        r["expiration"].as_str().unwrap_or("-").to_owned(),
                        updated(&r["updatedAt"]),
                    ]
                })
                .collect();
            print_table(
                &["ROLE", "ACCESS KEY", "SESSION", "EXPIRES", "UPDATED"],
                &rows,
            );
        }
        RoleCommand::Rm { role_arn } => {
            cl.berth("DeleteRoleCredentials", json!({"roleArn": role_arn}))
                .await?;
            println!("{role_arn}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn updated(v: &serde_json::Value) -> String {
    v.as_f64()
        .and_then(|t| chrono::DateTime::from_timestamp(t as i64, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| "-".into())
}
