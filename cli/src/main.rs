//! `berth`: a single-node, all-in-one, self-hosted Amazon ECS.
//!
//! One binary: `berth daemon` serves the ECS API; every other command is a client of
//! it over the unix socket; `berth shim` (internal) supervises one task.

mod api;
mod client;
mod commands;
mod config;
mod daemon;
mod exec_frames;
mod metadata;
mod shim_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// berth: run Amazon ECS task definitions natively on one Linux host.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    /// Persistent state: database, images, volumes, logs.
    #[arg(long, global = true, env = "BERTH_DATA_ROOT", value_name = "DIR")]
    data_root: Option<PathBuf>,
    /// Volatile state that a reboot clears: sockets, mounts, network namespaces.
    #[arg(long, global = true, env = "BERTH_RUN_ROOT", value_name = "DIR")]
    run_root: Option<PathBuf>,
    /// A registry reached over plain HTTP (repeatable).
    #[arg(long = "insecure-registry", global = true, value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Config file (default /etc/berth/config.toml).
    #[arg(long, global = true, env = "BERTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the ECS API and run tasks.
    Daemon(commands::DaemonArgs),
    /// Pull an image from a registry.
    Pull(commands::PullArgs),
    /// List images.
    Images(commands::ImagesArgs),
    /// Remove images (and what nothing references any more).
    Rmi(commands::RmiArgs),
    /// Import images from an OCI layout, OCI archive or `docker save` archive.
    Load(commands::LoadArgs),
    /// Write images to an OCI archive.
    Save(commands::SaveArgs),
    /// Register a task definition from a JSON file.
    Register(commands::RegisterArgs),
    /// Run a task definition (a JSON file or FAMILY[:REVISION]).
    Run(commands::RunArgs),
    /// List tasks.
    Ps(commands::PsArgs),
    /// Stop a task.
    Stop(commands::StopArgs),
    /// Show a task's container logs.
    Logs(commands::LogsArgs),
    /// Run a command in a running task's container (as `docker exec`).
    Exec(commands::ExecArgs),
    /// Describe tasks (as `aws ecs describe-tasks`).
    Describe(commands::DescribeArgs),
    /// Print the API key pair as an `aws configure` profile.
    Credentials(commands::CredentialsArgs),
    /// Show the daemon's configuration, cgroup version and controllers.
    Info,
    /// Manage ECS services: tasks kept running, scaled, rolled out.
    #[command(subcommand)]
    Service(commands::ServiceCommand),
    /// Manage shared named volumes.
    #[command(subcommand)]
    Volume(commands::VolumeCommand),
    /// Manage the secrets task definitions' `secrets` resolve to on this host.
    #[command(subcommand)]
    Secret(commands::SecretCommand),
    /// Manage the credentials served to tasks with a task role.
    #[command(subcommand)]
    Role(commands::RoleCommand),
    /// Install berth as a service.
    #[command(subcommand)]
    System(commands::SystemCommand),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The shim must stay single-threaded (libcontainer clones containers from it), so
    // it is dispatched before anything that could start a thread.
    if args.get(1).map(String::as_str) == Some("shim") {
        return match args.get(2) {
            Some(dir) => shim_cmd::run(&PathBuf::from(dir)),
            None => {
                eprintln!("usage: berth shim <task-run-dir>");
                ExitCode::from(2)
            }
        };
    }
    let cli = Cli::parse();
    let daemon_mode = matches!(cli.command, Command::Daemon(_));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if daemon_mode { "info" } else { "warn" })
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    // The daemon needs worker threads; a client command is a few requests in a row, which
    // one thread serves with fewer wake-ups between threads.
    let mut builder = if daemon_mode {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berth: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {}", format_error(&e));
            ExitCode::FAILURE
        }
    }
}

fn format_error(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}
