//! credentials, info, volume, system install.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use berth_runtime::paths::Paths;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{client, print_table};
use crate::config::Globals;

#[derive(Debug, Args)]
pub(crate) struct CredentialsArgs {
    /// The profile name to print.
    #[arg(long, default_value = "berth")]
    profile: String,
    /// The endpoint clients use (default: the daemon's default listener).
    #[arg(long, default_value = "http://127.0.0.1:5450")]
    endpoint: String,
}

/// Prints the daemon's key pair as an `aws configure`-ready profile (needs root: the
/// file is readable by root only).
pub(crate) fn credentials(g: &Globals, a: CredentialsArgs) -> Result<ExitCode> {
    let paths = Paths::new(&g.data_root, &g.run_root);
    let file = paths.auth_dir().join("credentials.json");
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "reading {} (it is created when the daemon first starts; root only)",
            file.display()
        )
    })?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    println!(
        "# Add to ~/.aws/credentials and ~/.aws/config, or run the `aws configure set` lines."
    );
    println!("[{}]", a.profile);
    println!(
        "aws_access_key_id = {}",
        v["accessKeyId"].as_str().unwrap_or_default()
    );
    println!(
        "aws_secret_access_key = {}",
        v["secretAccessKey"].as_str().unwrap_or_default()
    );
    println!("region = us-east-1");
    println!("endpoint_url = {}", a.endpoint);
    println!();
    println!(
        "# aws configure set aws_access_key_id {} --profile {}",
        v["accessKeyId"].as_str().unwrap_or_default(),
        a.profile
    );
    println!(
        "# aws configure set aws_secret_access_key {} --profile {}",
        v["secretAccessKey"].as_str().unwrap_or_default(),
        a.profile
    );
    println!(
        "# aws ecs list-clusters --profile {} --endpoint-url {}",
        a.profile, a.endpoint
    );
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn info(g: &Globals) -> Result<ExitCode> {
    let v = client(g).berth("Info", json!({})).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCommand {
    /// List shared named volumes.
    Ls,
    /// Remove a shared named volume (refused while a running task uses it).
    Rm {
        /// Volume name.
        name: String,
    },
}

pub(crate) async fn volume(g: &Globals, c: VolumeCommand) -> Result<ExitCode> {
    let cl = client(g);
    match c {
        VolumeCommand::Ls => {
            let v = cl.berth("ListVolumes", json!({})).await?;
            let rows: Vec<Vec<String>> = v["volumes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| {
                    vec![
                        x["name"].as_str().unwrap_or_default().to_owned(),
                        x["driver"].as_str().unwrap_or_default().to_owned(),
                        x["scope"].as_str().unwrap_or_default().to_owned(),
                        if x["inUse"] == true {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        x["labels"]
                            .as_object()
                            .map(|l| {
                                l.iter()
                                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                                    .collect::<Vec<_>>()
                                    .join(",")
                            })
                            .filter(|l| !l.is_empty())
                            .unwrap_or_else(|| "-".into()),
                        x["path"].as_str().unwrap_or_default().to_owned(),
                    ]
                })
                .collect();
            print_table(
                &["NAME", "DRIVER", "SCOPE", "IN USE", "LABELS", "PATH"],
                &rows,
            );
        }
        VolumeCommand::Rm { name } => {
            cl.berth("RemoveVolume", json!({"name": name})).await?;
            println!("{name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub(crate) enum SystemCommand {
    /// Install a systemd unit for `berth daemon` and start it.
    Install {
        /// Only write the unit file; do not enable or start it.
        #[arg(long)]
        no_start: bool,
    },
}

/// The systemd unit: `Delegate=yes` gives berth its own cgroup subtree;
/// `KillMode=process` lets tasks (their shims) survive a daemon stop or upgrade.
pub(crate) fn unit(exe: &Path, g: &Globals) -> String {
    format!(
        "[Unit]\n\
         Description=berth: a single-node Amazon ECS\n\
         Documentation=https://github.com/berth-dev/berth\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={} --data-root {} --run-root {} daemon\n\
         Delegate=yes\n\
         KillMode=process\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         LimitNOFILE=1048576\n\
         OOMScoreAdjust=-999\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        exe.display(),
        g.data_root.display(),
        g.run_root.display()
    )
}

pub(crate) fn system(g: &Globals, c: SystemCommand) -> Result<ExitCode> {
    match c {
        SystemCommand::Install { no_start } => {
            let exe = std::env::current_exe().context("finding the berth executable")?;
            let dest = Path::new("/usr/local/bin/berth");
            if exe != dest {
                std::fs::copy(&exe, dest)
                    .with_context(|| format!("copying berth to {}", dest.display()))?;
            }
            let unit_path = Path::new("/etc/systemd/system/berth.service");
            std::fs::create_dir_all("/etc/systemd/system")?;
            std::fs::write(unit_path, unit(dest, g))
                .with_context(|| format!("writing {}", unit_path.display()))?;
            println!("wrote {}", unit_path.display());
            if no_start {
                return Ok(ExitCode::SUCCESS);
            }
            if !Path::new("/run/systemd/system").exists() {
                bail!("systemd is not running here; start the daemon yourself with `berth daemon`");
            }
            for args in [
                vec!["daemon-reload"],
                vec!["enable", "--now", "berth.service"],
            ] {
                let st = std::process::Command::new("systemctl")
                    .args(&args)
                    .status()
                    .context("running systemctl")?;
                if !st.success() {
                    bail!("systemctl {} failed: {st}", args.join(" "));
                }
            }
            println!("berth.service enabled and started");
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_delegates_cgroups_and_keeps_tasks_on_stop() {
        let g = Globals {
            data_root: "/var/lib/berth".into(),
            run_root: "/run/berth".into(),
            insecure_registries: vec![],
            file: Default::default(),
        };
        let u = unit(Path::new("/usr/local/bin/berth"), &g);
        assert!(u.contains("Delegate=yes"));
        assert!(u.contains("KillMode=process"));
        assert!(u.contains(
            "ExecStart=/usr/local/bin/berth --data-root /var/lib/berth --run-root /run/berth daemon"
        ));
    }
}
