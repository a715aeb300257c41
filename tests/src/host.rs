//! Fake hosts: network namespaces a test creates so that berth's bridge, NAT rules and
//! published ports never touch the machine's own network, and tests can run in
//! parallel. Enter one with `nsenter --net=…` (never `ip netns exec`, which remounts
//! /sys and hides /sys/fs/cgroup).

use std::io;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A unique short name with `prefix` (network namespace names, cgroup names).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}-{}",
        std::process::id() % 100_000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace with `lo` up, deleted on drop.
#[derive(Debug)]
pub struct FakeHost {
    name: String,
}

fn run(cmd: &mut Command) -> io::Result<Output> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out)
}

impl FakeHost {
    /// Creates `bt…` (or `prefix…`) with loopback up.
    pub fn new(prefix: &str) -> io::Result<FakeHost> {
        let name = unique(prefix);
        run(Command::new("ip").args(["netns", "add", &name]))?;
        let host = FakeHost { name };
        run(Command::new("ip").args(["-n", &host.name, "link", "set", "lo", "up"]))?;
        Ok(host)
    }

    /// The namespace's name (`ip -n NAME`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace file.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// A command run inside the fake host: `nsenter --net=<ns> program …`.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path().display()))
            .arg("--")
            .arg(program);
        c
    }

    /// Runs `program args…` inside and returns its output (any exit status).
    pub fn output(&self, program: &str, args: &[&str]) -> io::Result<Output> {
        self.command(program).args(args).output()
    }

    /// Connects this host to a new LAN peer namespace: a veth pair, `host_addr/24` on
    /// this side, `peer_addr/24` on the peer, with a default route on this host via the
    /// peer (so egress has somewhere to go).
    pub fn add_lan_peer(&self, host_addr: &str, peer_addr: &str) -> io::Result<FakeHost> {
        let peer = FakeHost::new("bp")?;
        let a = format!("bt{}", SEQ.fetch_add(1, Ordering::Relaxed));
        let b = format!("{a}p");
        run(Command::new("ip").args([
            "-n", &self.name, "link", "add", &a, "type", "veth", "peer", "name", &b, "netns",
            &peer.name,
        ]))?;
        run(Command::new("ip").args([
            "-n",
            &self.name,
            "addr",
            "add",
            &format!("{host_addr}/24"),
            "dev",
            &a,
        ]))?;
        run(Command::new("ip").args(["-n", &self.name, "link", "set", &a, "up"]))?;
        run(Command::new("ip").args([
            "-n",
            &peer.name,
            "addr",
            "add",
            &format!("{peer_addr}/24"),
            "dev",
            &b,
        ]))?;
        run(Command::new("ip").args(["-n", &peer.name, "link", "set", &b, "up"]))?;
        run(Command::new("ip").args([
            "-n", &self.name, "route", "add", "default", "via", peer_addr,
        ]))?;
        Ok(peer)
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
