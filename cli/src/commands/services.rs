//! `berth service`: ECS services from the command line (CreateService, ListServices,
//! UpdateService, DeleteService, the events DescribeServices shows).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use super::tasks::register_file;
use super::{client, print_table};
use crate::client::Client;
use crate::config::Globals;

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// Keep COUNT copies of a task definition running (a JSON file is registered
    /// first; otherwise FAMILY[:REVISION]). Stopped tasks are replaced.
    Create {
        name: String,
        task_definition: String,
        /// How many tasks to keep running.
        #[arg(long, short = 'n', default_value_t = 1)]
        count: u32,
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// List the services and their tasks' counts.
    Ls {
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// Change how many tasks a service keeps running.
    Scale {
        name: String,
        count: u32,
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// Roll a service out to another task definition (a JSON file is registered
    /// first), or to the same one again with --force.
    Update {
        name: String,
        task_definition: Option<String>,
        /// Replace the tasks even with the same task definition.
        #[arg(long)]
        force: bool,
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// Show a service's latest events, oldest first.
    Events {
        name: String,
        /// How many.
        #[arg(long, default_value_t = 20)]
        tail: usize,
        #[arg(long, default_value = "default")]
        cluster: String,
    },
    /// Delete a service: its tasks stop.
    Rm {
        name: String,
        #[arg(long, default_value = "default")]
        cluster: String,
    },
}

/// A task definition argument: a file is registered and its ARN used.
async fn task_definition(c: &Client, arg: &str) -> Result<String> {
    let path = Path::new(arg);
    if path.is_file() {
        register_file(c, path, false).await
    } else {
        Ok(arg.to_owned())
    }
}

fn short_td(arn: &Value) -> String {
    let s = arn.as_str().unwrap_or_default();
    s.rsplit('/').next().unwrap_or(s).to_owned()
}

pub(crate) async fn service(g: &Globals, cmd: ServiceCommand) -> Result<ExitCode> {
    let c = client(g);
    match cmd {
        ServiceCommand::Create {
            name,
            task_definition: td,
            count,
            cluster,
        } => {
            let td = task_definition(&c, &td).await?;
            let s = c
                .ecs(
                    "CreateService",
                    json!({"cluster": cluster, "serviceName": name, "taskDefinition": td,
                        "desiredCount": count}),
                )
                .await?;
            println!(
                "{}",
                s["service"]["serviceArn"].as_str().unwrap_or_default()
            );
        }
        ServiceCommand::Ls { cluster } => {
            let mut arns: Vec<Value> = Vec::new();
            let mut token: Option<String> = None;
            loop {
                let page = c
                    .ecs(
                        "ListServices",
                        json!({"cluster": cluster, "nextToken": token, "maxResults": 100}),
                    )
                    .await?;
                arns.extend(page["serviceArns"].as_array().cloned().unwrap_or_default());
                token = page["nextToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            let mut rows = Vec::new();
            for chunk in arns.chunks(10) {
                let v = c
                    .ecs(
                        "DescribeServices",
                        json!({"cluster": cluster, "services": chunk}),
                    )
                    .await?;
                for s in v["services"].as_array().into_iter().flatten() {
                    let deployments: Vec<String> = s["deployments"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|d| {
                            format!(
                                "{}:{}",
                                short_td(&d["taskDefinition"]),
                                d["rolloutState"].as_str().unwrap_or_default()
                            )
                        })
                        .collect();
                    rows.push(vec![
                        s["serviceName"].as_str().unwrap_or_default().to_owned(),
                        s["status"].as_str().unwrap_or_default().to_owned(),
                        s["desiredCount"].to_string(),
                        s["runningCount"].to_string(),
                        s["pendingCount"].to_string(),
                        short_td(&s["taskDefinition"]),
                        deployments.join(","),
                    ]);
                }
            }
            print_table(
                &[
                    "SERVICE",
                    "STATUS",
                    "DESIRED",
                    "RUNNING",
                    "PENDING",
                    "DEFINITION",
                    "DEPLOYMENTS",
                ],
                &rows,
            );
        }
        ServiceCommand::Scale {
            name,
            count,
            cluster,
        } => {
            c.ecs(
                "UpdateService",
                json!({"cluster": cluster, "service": name, "desiredCount": count}),
            )
            .await?;
        }
        ServiceCommand::Update {
            name,
            task_definition: td,
            force,
            cluster,
        } => {
            if td.is_none() && !force {
                bail!("give a task definition to roll out, or --force to replace the tasks");
            }
            let mut req = json!({"cluster": cluster, "service": name, "forceNewDeployment": force});
            if let Some(td) = td {
                req["taskDefinition"] = json!(task_definition(&c, &td).await?);
            }
            let s = c.ecs("UpdateService", req).await?;
            println!(
                "{}",
                s["service"]["deployments"][0]["id"]
                    .as_str()
                    .unwrap_or_default()
            );
        }
        ServiceCommand::Events {
            name,
            tail,
            cluster,
        } => {
            let v = c
                .ecs(
                    "DescribeServices",
                    json!({"cluster": cluster, "services": [name]}),
                )
                .await?;
            let Some(s) = v["services"].get(0) else {
                bail!("no service {name} in cluster {cluster}");
            };
            let events: Vec<&Value> = s["events"].as_array().into_iter().flatten().collect();
            for e in events.iter().take(tail).rev() {
                let at = e["createdAt"].as_f64().unwrap_or_default();
                let at = chrono::DateTime::from_timestamp_millis((at * 1000.0) as i64)
                    .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default();
                println!("{at}  {}", e["message"].as_str().unwrap_or_default());
            }
        }
        ServiceCommand::Rm { name, cluster } => {
            c.ecs(
                "DeleteService",
                json!({"cluster": cluster, "service": name, "force": true}),
            )
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
