//! The CLI commands. Everything but `daemon` (and `credentials`, which reads a local
//! file) is a client of the daemon over its unix socket.

mod exec;
mod images;
mod secrets;
mod services;
mod system;
mod tasks;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use berth_runtime::paths::{DEFAULT_DATA_ROOT, DEFAULT_RUN_ROOT, Paths};
use clap::Args;

pub(crate) use exec::ExecArgs;
pub(crate) use images::{ImagesArgs, LoadArgs, PullArgs, RmiArgs, SaveArgs};
pub(crate) use secrets::{RoleCommand, SecretCommand};
pub(crate) use services::ServiceCommand;
pub(crate) use system::{CredentialsArgs, SystemCommand, VolumeCommand};
pub(crate) use tasks::{DescribeArgs, LogsArgs, PsArgs, RegisterArgs, RunArgs, StopArgs};

use crate::client::Client;
use crate::config::{self, ConfigFile, Globals};
use crate::daemon::{self, DaemonSettings};
use crate::{Cli, Command};

/// `berth daemon` flags.
#[derive(Debug, Args)]
pub(crate) struct DaemonArgs {
    /// TCP address for the API ('none' to serve only the unix socket).
    #[arg(long, env = "BERTH_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Accept unsigned requests on TCP (loopback only). Anyone who can connect
    /// controls the host.
    #[arg(long)]
    insecure_no_auth: bool,
    /// Region in ARNs.
    #[arg(long, value_name = "REGION")]
    region: Option<String>,
    /// Account id in ARNs.
    #[arg(long, value_name = "ID")]
    account: Option<String>,
    /// Host address published ports listen on (0.0.0.0 for every interface).
    #[arg(long, value_name = "IPV4")]
    publish_address: Option<std::net::Ipv4Addr>,
    /// Task subnet (CIDR).
    #[arg(long, value_name = "CIDR")]
    subnet: Option<String>,
    /// Bridge name.
    #[arg(long, value_name = "NAME")]
    bridge: Option<String>,
    /// Name of berth's cgroup on cgroup v1 hosts.
    #[arg(long, value_name = "NAME")]
    cgroup_name: Option<String>,
    /// Default pids limit per container.
    #[arg(long, value_name = "N")]
    pids_limit: Option<i64>,
}

fn globals(cli: &Cli) -> Result<Globals> {
    let file = ConfigFile::load(cli.config.as_deref())?;
    let data_root = cli
        .data_root
        .clone()
        .or_else(|| file.data_root.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_ROOT));
    let run_root = cli
        .run_root
        .clone()
        .or_else(|| file.run_root.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_ROOT));
    let mut insecure_registries = file.insecure_registries.clone();
    insecure_registries.extend(cli.insecure_registries.iter().cloned());
    Ok(Globals {
        data_root: config::absolute(&data_root)?,
        run_root: config::absolute(&run_root)?,
        insecure_registries,
        file,
    })
}

pub(crate) fn client(g: &Globals) -> Client {
    Client::new(&Paths::new(&g.data_root, &g.run_root).socket())
}

pub(crate) async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let g = globals(&cli)?;
    match cli.command {
        Command::Daemon(a) => {
            let f = &g.file.daemon;
            let listen = match a.listen.or_else(|| f.listen.clone()) {
                Some(s) => config::parse_listen(&s)?,
                None => Some("127.0.0.1:5450".parse().expect("valid address")),
            };
            let settings = DaemonSettings {
                paths: Paths::new(&g.data_root, &g.run_root),
                insecure_registries: g.insecure_registries.clone(),
                listen,
                insecure_no_auth: a.insecure_no_auth || f.insecure_no_auth.unwrap_or(false),
                region: a
                    .region
                    .or_else(|| f.region.clone())
                    .unwrap_or_else(|| "us-east-1".into()),
                account: a
                    .account
                    .or_else(|| f.account.clone())
                    .unwrap_or_else(|| "000000000000".into()),
                publish_address: a
                    .publish_address
                    .or(f.publish_address)
                    .unwrap_or(std::net::Ipv4Addr::LOCALHOST),
                subnet: a.subnet.or_else(|| f.subnet.clone()),
                bridge: a.bridge.or_else(|| f.bridge.clone()),
                cgroup_name: a
                    .cgroup_name
                    .or_else(|| f.cgroup_name.clone())
                    .unwrap_or_else(|| "berth".into()),
                pids_limit: a.pids_limit.or(f.pids_limit).unwrap_or(4096),
            };
            daemon::run(settings).await.context("berth daemon")?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Pull(a) => images::pull(&g, a).await,
        Command::Images(a) => images::list(&g, a).await,
        Command::Rmi(a) => images::rmi(&g, a).await,
        Command::Load(a) => images::load(&g, a).await,
        Command::Save(a) => images::save(&g, a).await,
        Command::Register(a) => tasks::register(&g, a).await,
        Command::Run(a) => tasks::run(&g, a).await,
        Command::Ps(a) => tasks::ps(&g, a).await,
        Command::Stop(a) => tasks::stop(&g, a).await,
        Command::Logs(a) => tasks::logs(&g, a).await,
        Command::Exec(a) => exec::exec(&g, a).await,
        Command::Describe(a) => tasks::describe(&g, a).await,
        Command::Credentials(a) => system::credentials(&g, a),
        Command::Info => system::info(&g).await,
        Command::Volume(c) => system::volume(&g, c).await,
        Command::Secret(c) => secrets::secret(&g, c).await,
        Command::Role(c) => secrets::role(&g, c).await,
        Command::Service(c) => services::service(&g, c).await,
        Command::System(c) => system::system(&g, c),
    }
}

/// Shortens a digest for tables (`sha256:0123456789ab`).
pub(crate) fn short_digest(d: &str) -> String {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    hex.chars().take(12).collect()
}

/// A human size: 1.2 MB.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Prints rows as left-aligned columns.
pub(crate) fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_digests_print_short() {
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_234_567), "1.2 MB");
        assert_eq!(short_digest("sha256:0123456789abcdef"), "0123456789ab");
    }
}
