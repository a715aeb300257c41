//! register, run, ps, stop, logs, describe.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

use super::{client, print_table};
use crate::client::{ApiFailure, Client};
use crate::config::Globals;

/// Reads a task definition file and registers it; returns its ARN.
pub(super) async fn register_file(c: &Client, path: &Path, quiet: bool) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let checked = c
        .berth(
            "ValidateTaskDefinition",
            serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not JSON", path.display()))?,
        )
        .await
        .with_context(|| format!("{} is not a valid task definition", path.display()))?;
    if !quiet {
        for w in checked["warnings"].as_array().into_iter().flatten() {
            eprintln!("warning: {}", w.as_str().unwrap_or_default());
        }
    }
    let v = c
        .ecs("RegisterTaskDefinition", checked["taskDefinition"].clone())
        .await?;
    Ok(v["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// A task definition: `register-task-definition --cli-input-json` or
    /// `describe-task-definition` output.
    file: PathBuf,
}

pub(crate) async fn register(g: &Globals, a: RegisterArgs) -> Result<ExitCode> {
    let arn = register_file(&client(g), &a.file, false).await?;
    println!("{arn}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// A task definition file, or FAMILY[:REVISION] / ARN of a registered one.
    task_definition: String,
    /// Start in the background and print the task id.
    #[arg(long, short)]
    detach: bool,
    /// Set an environment variable (repeatable), as a containerOverride.
    #[arg(long = "env", short = 'e', value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// The container --env and the command apply to (default: the first essential one).
    #[arg(long, value_name = "NAME")]
    container: Option<String>,
    /// Cluster to run in.
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Replace the container's command.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub(crate) async fn run(g: &Globals, a: RunArgs) -> Result<ExitCode> {
    let c = client(g);
    let path = Path::new(&a.task_definition);
    // RunTask resolves FAMILY[:REVISION] and ARNs itself; the definition is read only
    // when an override needs the essential container's name.
    let td = if path.is_file() {
        register_file(&c, path, false).await?
    } else {
        a.task_definition.clone()
    };
    let mut req =
        json!({"cluster": a.cluster, "taskDefinition": td, "count": 1, "startedBy": "berth-run"});
    if !a.env.is_empty() || !a.command.is_empty() {
        let target = match &a.container {
            Some(n) => n.clone(),
            None => c
                .ecs("DescribeTaskDefinition", json!({"taskDefinition": td}))
                .await?["taskDefinition"]["containerDefinitions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|cd| cd["essential"].as_bool().unwrap_or(true))
                .and_then(|cd| cd["name"].as_str())
                .unwrap_or_default()
                .to_owned(),
        };
        let mut o = json!({"name": target});
        if !a.env.is_empty() {
            let env: Vec<Value> = a
                .env
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => Ok(json!({"name": k, "value": v})),
                    None => bail!("--env {kv:?}: expected NAME=VALUE"),
                })
                .collect::<Result<_>>()?;
            o["environment"] = json!(env);
        }
        if !a.command.is_empty() {
            o["command"] = json!(a.command);
        }
        req["overrides"] = json!({"containerOverrides": [o]});
    }
    let out = c.ecs("RunTask", req).await?;
    if let Some(f) = out["failures"].as_array().and_then(|f| f.first()) {
        bail!(
            "the task could not be placed: {}{}",
            f["reason"].as_str().unwrap_or_default(),
            f["detail"]
                .as_str()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    let task_arn = out["tasks"][0]["taskArn"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = task_arn.rsplit('/').next().unwrap_or_default().to_owned();
    if a.detach {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    follow_task(g, &c, &a.cluster, &id).await
}

/// Streams the task's logs until it stops; Ctrl-C stops it gracefully, a second
/// Ctrl-C kills it. Returns the exit code of the essential container that stopped it.
async fn follow_task(g: &Globals, c: &Client, cluster: &str, id: &str) -> Result<ExitCode> {
    let logs_client = client(g);
    let (cl, tid) = (cluster.to_owned(), id.to_owned());
    let logs = tokio::spawn(async move {
        let _ = logs_client
            .berth_stream(
                "Logs",
                json!({"task": tid, "cluster": cl, "follow": true}),
                |line| {
                    print_log_line(&line, true, false);
                    Ok(())
                },
            )
            .await;
    });
    let mut interrupts = 0;
    // The daemon answers WaitTask the moment the task stops; a daemon without it is
    // polled with DescribeTasks.
    let mut long_poll = true;
    let task = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                interrupts += 1;
                if interrupts == 1 {
                    eprintln!("stopping task {id} (Ctrl-C again to kill it)");
                    c.ecs("StopTask", json!({"cluster": cluster, "task": id, "reason": "Stopped by Ctrl-C in berth run"})).await?;
                } else {
                    eprintln!("killing task {id}");
                    c.berth("StopTask", json!({"cluster": cluster, "task": id, "reason": "Killed by Ctrl-C in berth run", "timeoutSecs": 0})).await?;
                }
            }
            t = wait_stopped(c, cluster, id, long_poll) => match t {
                Ok(Some(t)) => break t,
                Ok(None) => {}
                Err(e) if long_poll && e.downcast_ref::<ApiFailure>().is_some_and(|f| f.code == "UnknownOperationException") => {
                    long_poll = false;
                }
                Err(e) => return Err(e),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), logs).await;
    let containers = task["containers"].as_array().cloned().unwrap_or_default();
    let code = task["stopCode"].as_str().unwrap_or_default();
    let reason = task["stoppedReason"].as_str().unwrap_or_default();
    // The exit code of the essential container that stopped the task (berth records
    // which one it was).
    let stopped_by = task["berthStoppedByContainer"].as_str();
    let exit = containers
        .iter()
        .find(|ct| stopped_by.is_some_and(|n| ct["name"] == n))
        .and_then(|ct| ct["exitCode"].as_i64());
    if code != "EssentialContainerExited" || exit.is_none() {
        eprintln!("task {id} stopped: {code}: {reason}");
    }
    for ct in &containers {
        if let Some(r) = ct["reason"].as_str() {
            eprintln!("{}: {r}", ct["name"].as_str().unwrap_or_default());
        }
    }
    Ok(ExitCode::from(
        exit.map(|c| c.clamp(0, 255) as u8).unwrap_or(125),
    ))
}

/// One wait for the task to stop: a WaitTask long poll, or one DescribeTasks after
/// 250 ms. The task once it is STOPPED.
async fn wait_stopped(
    c: &Client,
    cluster: &str,
    id: &str,
    long_poll: bool,
) -> Result<Option<Value>> {
    let t = if long_poll {
        c.berth(
            "WaitTask",
            json!({"cluster": cluster, "task": id, "status": "STOPPED", "timeoutSecs": 60}),
        )
        .await?["task"]
            .clone()
    } else {
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.ecs("DescribeTasks", json!({"cluster": cluster, "tasks": [id]}))
            .await?["tasks"][0]
            .clone()
    };
    Ok((t["lastStatus"] == "STOPPED").then_some(t))
}

fn print_log_line(line: &Value, prefix: bool, timestamps: bool) {
    let text = line["log"].as_str().unwrap_or_default();
    let text = text.strip_suffix('\n').unwrap_or(text);
    let mut out = String::new();
    if prefix {
        out.push_str(line["container"].as_str().unwrap_or_default());
        out.push_str(" | ");
    }
    if timestamps {
        out.push_str(line["time"].as_str().unwrap_or_default());
        out.push(' ');
    }
    out.push_str(text);
    if line["stream"] == "stderr" {
        eprintln!("{out}");
    } else {
        println!("{out}");
    }
}

#[derive(Debug, Args)]
pub(crate) struct PsArgs {
    /// Include stopped tasks.
    #[arg(long, short)]
    all: bool,
    #[arg(long, default_value = "default")]
    cluster: String,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

async fn all_task_arns(c: &Client, cluster: &str, desired: &str) -> Result<Vec<String>> {
    let mut arns = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let v = c
            .ecs(
                "ListTasks",
                json!({"cluster": cluster, "desiredStatus": desired, "nextToken": token}),
            )
            .await?;
        arns.extend(
            v["taskArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned)),
        );
        token = v["nextToken"].as_str().map(str::to_owned);
        if token.is_none() {
            return Ok(arns);
        }
    }
}

pub(crate) async fn ps(g: &Globals, a: PsArgs) -> Result<ExitCode> {
    let c = client(g);
    let mut arns = all_task_arns(&c, &a.cluster, "RUNNING").await?;
    if a.all {
        arns.extend(all_task_arns(&c, &a.cluster, "STOPPED").await?);
    }
    let mut tasks = Vec::new();
    for chunk in arns.chunks(100) {
        let v = c
            .ecs(
                "DescribeTasks",
                json!({"cluster": a.cluster, "tasks": chunk}),
            )
            .await?;
        tasks.extend(v["tasks"].as_array().cloned().unwrap_or_default());
    }
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&tasks)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let id = t["taskArn"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let td = t["taskDefinitionArn"]
                .as_str()
                .unwrap_or_default()
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            let containers: Vec<String> = t["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|ct| {
                    let mut s = format!(
                        "{}:{}",
                        ct["name"].as_str().unwrap_or_default(),
                        ct["lastStatus"].as_str().unwrap_or_default()
                    );
                    if let Some(code) = ct["exitCode"].as_i64() {
                        s.push_str(&format!("({code})"));
                    }
                    if ct["healthStatus"] != "UNKNOWN" {
                        s.push_str(&format!(
                            "[{}]",
                            ct["healthStatus"].as_str().unwrap_or_default()
                        ));
                    }
                    s
                })
                .collect();
            let ip = t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
                .as_str()
                .unwrap_or("-")
                .to_owned();
            vec![
                id,
                td,
                t["lastStatus"].as_str().unwrap_or_default().to_owned(),
                t["healthStatus"].as_str().unwrap_or_default().to_owned(),
                ip,
                containers.join(" "),
            ]
        })
        .collect();
    print_table(
        &[
            "TASK",
            "DEFINITION",
            "STATUS",
            "HEALTH",
            "ADDRESS",
            "CONTAINERS",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Task id or ARN.
    task: String,
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Why (shown as the task's stoppedReason).
    #[arg(long)]
    reason: Option<String>,
    /// Seconds each container gets before SIGKILL (default: its stopTimeout).
    #[arg(long = "time", short = 't')]
    time: Option<u64>,
}

pub(crate) async fn stop(g: &Globals, a: StopArgs) -> Result<ExitCode> {
    let c = client(g);
    let reason = a
        .reason
        .unwrap_or_else(|| "Task stopped by user (berth stop)".into());
    let v = match a.time {
        Some(t) => {
            c.berth(
                "StopTask",
                json!({"cluster": a.cluster, "task": a.task, "reason": reason, "timeoutSecs": t}),
            )
            .await?
        }
        None => {
            c.ecs(
                "StopTask",
                json!({"cluster": a.cluster, "task": a.task, "reason": reason}),
            )
            .await?
        }
    };
    println!("{}", v["task"]["taskArn"].as_str().unwrap_or_default());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Task id or ARN (or an awslogs group, with --stream).
    task: String,
    /// One container (default: all, prefixed by name).
    container: Option<String>,
    #[arg(long, default_value = "default")]
    cluster: String,
    /// Keep following until the task stops.
    #[arg(long, short)]
    follow: bool,
    /// Only records since: RFC 3339 time, epoch seconds, or a duration (`10m`, `2h`).
    #[arg(long)]
    since: Option<String>,
    /// Only the last N records.
    #[arg(long)]
    tail: Option<usize>,
    /// Show each record's time.
    #[arg(long, short)]
    timestamps: bool,
    /// Read the awslogs stream STREAM of the group given as TASK (the names a task
    /// definition's `awslogs-group` and `awslogs-stream-prefix` give in CloudWatch Logs:
    /// `<prefix>/<container>/<task-id>`).
    #[arg(long, value_name = "STREAM")]
    stream: Option<String>,
}

/// `--since` forms: RFC 3339, epoch seconds, or a duration before now.
pub(crate) fn parse_since(s: &str) -> Result<f64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9);
    }
    if let Ok(n) = s.parse::<f64>() {
        return Ok(n);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: f64 = num
        .parse()
        .with_context(|| format!("--since {s:?}: not a time or duration"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => bail!("--since {s:?}: use s, m, h or d"),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    Ok(now - secs)
}

pub(crate) async fn logs(g: &Globals, a: LogsArgs) -> Result<ExitCode> {
    let since = a.since.as_deref().map(parse_since).transpose()?;
    let prefix = a.container.is_none() && a.stream.is_none();
    let body = match &a.stream {
        Some(stream) => {
            json!({"logGroup": a.task, "logStream": stream, "cluster": a.cluster, "since": since, "tail": a.tail, "follow": a.follow})
        }
        None => {
            json!({"task": a.task, "cluster": a.cluster, "container": a.container, "since": since, "tail": a.tail, "follow": a.follow})
        }
    };
    client(g)
        .berth_stream("Logs", body, |line| {
            print_log_line(&line, prefix, a.timestamps);
            Ok(())
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct DescribeArgs {
    /// Task ids or ARNs.
    #[arg(required = true)]
    tasks: Vec<String>,
    #[arg(long, default_value = "default")]
    cluster: String,
}

pub(crate) async fn describe(g: &Globals, a: DescribeArgs) -> Result<ExitCode> {
    let v = client(g)
        .ecs(
            "DescribeTasks",
            json!({"cluster": a.cluster, "tasks": a.tasks, "include": ["TAGS"]}),
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(if v["failures"].as_array().is_some_and(|f| !f.is_empty()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_epochs_and_durations() {
        assert_eq!(parse_since("2026-01-01T00:00:00Z").unwrap(), 1767225600.0);
        assert_eq!(parse_since("1700000000").unwrap(), 1700000000.0);
        let ten_min = parse_since("10m").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!((now - ten_min - 600.0).abs() < 5.0);
        assert!(parse_since("10y").is_err());
    }
}
