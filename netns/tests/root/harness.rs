//! The fake host every root test runs in.
//!
//! A test thread `unshare`s a network *and* mount namespace, so the bridge, nftables table,
//! sysctls and namespace bind mounts it makes never touch this machine's network, tests run in
//! parallel, and everything disappears with the thread (the mount namespace holds the only
//! references to the namespaces it created). Child processes spawned from that thread — `ip`,
//! `nft`, `nsenter`, busybox — inherit both namespaces. A second namespace is the LAN peer,
//! joined to the fake host by a veth (`192.0.2.1` host, `192.0.2.2` peer).
//!
//! The only things created outside a fake host are temporary directories named `bB…`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use berth_netns::{
    EndpointRequest, NetworkConfig, NetworkMode, PortMappingRequest, Protocol, TaskNetworkRequest,
    run_in_namespace,
};
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

pub(crate) const UPLINK: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub(crate) const LAN_PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);

const TOOLS: [&str; 5] = ["ip", "nft", "nsenter", "unshare", "busybox"];

/// Whether root tests can run here. They are skipped (with a message) when they cannot,
/// unless `BERTH_TEST_ROOT=1`, which turns "cannot run" into a failure.
pub(crate) fn enabled() -> bool {
    let forced = std::env::var("BERTH_TEST_ROOT").as_deref() == Ok("1");
    let problem = if !nix::unistd::geteuid().is_root() {
        Some("not running as root".to_owned())
    } else {
        TOOLS
            .iter()
            .find(|t| !on_path(t))
            .map(|t| format!("{t} is not installed"))
    };
    match problem {
        None => true,
        Some(p) if forced => panic!("BERTH_TEST_ROOT=1 but root tests cannot run: {p}"),
        Some(p) => {
            eprintln!("skipping root test: {p} (BERTH_TEST_ROOT=1 makes this a failure)");
            false
        }
    }
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// The fake host a test runs in.
pub(crate) struct Host {
    pub(crate) root: PathBuf,
    pub(crate) netns_dir: PathBuf,
    pub(crate) lan: PathBuf,
    children: Vec<Child>,
    _tmp: tempfile::TempDir,
}

/// Runs `f` in a fresh fake host (see the module docs) and returns its result.
pub(crate) fn fake_host<T: Send>(f: impl FnOnce(&mut Host) -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
                .expect("unshare a network and mount namespace for the fake host");
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .expect("make the fake host's mounts private");
            let tmp = tempfile::Builder::new().prefix("bB").tempdir().expect("temp dir");
            let root = tmp.path().to_owned();
            let mut host = Host {
                netns_dir: root.join("netns"),
                lan: root.join("lan"),
                root,
                children: Vec::new(),
                _tmp: tmp,
            };
            host.sh("ip link set lo up");
            std::fs::write(&host.lan, "").unwrap();
            let lan = host.lan.display().to_string();
            host.sh(&format!(
                "unshare --net={lan} true && \
                 ip link add up0 type veth peer name eth0 netns {lan} && \
                 ip addr add {UPLINK}/24 dev up0 && ip link set up0 up && \
                 nsenter --net={lan} sh -c 'ip link set lo up && ip addr add {LAN_PEER}/24 dev eth0 && ip link set eth0 up'"
            ));
            let out = f(&mut host);
            drop(host);
            out
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

impl Drop for Host {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        // The mounts live in the fake host's mount namespace and go with it; unmount them
        // anyway so that the temporary directory can be removed.
        let detach = |p: &Path| nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        if let Ok(entries) = std::fs::read_dir(&self.netns_dir) {
            for e in entries.flatten() {
                let _ = detach(&e.path());
            }
        }
        let _ = detach(&self.netns_dir);
        let _ = detach(&self.lan);
    }
}

impl Host {
    /// berth's defaults with namespaces in this fake host's directory.
    pub(crate) fn config(&self) -> NetworkConfig {
        NetworkConfig::new(&self.netns_dir)
    }

    /// Runs a shell command in the fake host; panics with its output if it fails.
    pub(crate) fn sh(&self, cmd: &str) -> String {
        let out = self.try_sh(cmd);
        assert!(
            out.status.success(),
            "`{cmd}` failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(crate) fn try_sh(&self, cmd: &str) -> Output {
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .output()
            .expect("run sh")
    }

    /// Starts a background process, killed (by its PID) when the host is dropped.
    pub(crate) fn spawn(&mut self, args: &[&str]) -> u32 {
        let child = Command::new(args[0])
            .args(&args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    pub(crate) fn netns_path(&self, name: &str) -> PathBuf {
        self.netns_dir.join(name)
    }

    /// Host-side veths (the LAN link `up0` included).
    pub(crate) fn veth_count(&self) -> usize {
        self.sh("ip -o link show type veth | wc -l")
            .trim()
            .parse()
            .unwrap()
    }

    /// berth veths still attached to a bridge.
    pub(crate) fn attached_berth_veths(&self) -> usize {
        self.sh("ip -o link show type veth | grep -c ' bth.*master ' || true")
            .trim()
            .parse()
            .unwrap()
    }

    pub(crate) fn namespace_files(&self) -> usize {
        std::fs::read_dir(&self.netns_dir)
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Namespace bind mounts in the fake host's mount namespace.
    pub(crate) fn namespace_mounts(&self) -> usize {
        let mi = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        let dir = self.netns_dir.display().to_string();
        mi.lines()
            .filter(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|mp| mp.starts_with(&dir) && mp != dir)
            })
            .count()
    }

    /// Elements of berth's `publish` map (0 when the table does not exist).
    pub(crate) fn published(&self) -> usize {
        let out = self.try_sh("nft -j list map ip berth publish");
        if !out.status.success() {
            return 0;
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["map"]["elem"].as_array())
            .map(Vec::len)
            .sum()
    }

    /// IPv4 addresses in the fake host.
    pub(crate) fn address_count(&self) -> usize {
        self.sh("ip -o -4 addr | wc -l").trim().parse().unwrap()
    }

    /// Everything teardown must bring back: (veths, namespace files, mounts, published ports,
    /// addresses).
    pub(crate) fn counts(&self) -> (usize, usize, usize, usize, usize) {
        (
            self.veth_count(),
            self.namespace_files(),
            self.namespace_mounts(),
            self.published(),
            self.address_count(),
        )
    }

    /// Waits for the kernel to finish destroying veths of deleted namespaces.
    pub(crate) fn settle_veths(&self, expected: usize) {
        let start = Instant::now();
        while self.veth_count() != expected && start.elapsed() < TIMEOUT {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            self.veth_count(),
            expected,
            "veths after {:?}",
            start.elapsed()
        );
    }
}

pub(crate) fn mapping(
    container_port: u16,
    host_port: Option<u16>,
    protocol: Protocol,
) -> PortMappingRequest {
    PortMappingRequest {
        container_name: "app".into(),
        container_port: NonZeroU16::new(container_port).unwrap(),
        host_port: host_port.map(|p| NonZeroU16::new(p).unwrap()),
        protocol,
    }
}

/// An awsvpc request for `task` at `addr`.
pub(crate) fn awsvpc(
    host: &Host,
    task: &str,
    addr: Ipv4Addr,
    mappings: Vec<PortMappingRequest>,
) -> TaskNetworkRequest {
    TaskNetworkRequest {
        task_id: task.into(),
        mode: NetworkMode::Awsvpc,
        endpoints: vec![EndpointRequest {
            name: "task".into(),
            netns_path: Some(host.netns_path(task)),
            address: Some(addr),
            port_mappings: mappings,
        }],
    }
}

pub(crate) fn task_ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 229, 0, n)
}

/// A test server in a namespace; stopped (and its socket closed, so the namespace can go
/// away) when dropped.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A TCP server inside namespace `ns`: answers every connection with `reply` and the peer's
/// address (`"<reply> from <ip>:<port>\n"`), then closes it.
pub(crate) fn tcp_server(ns: &Path, port: u16, reply: &'static str) -> Server {
    let listener = run_in_namespace(ns, || TcpListener::bind(("0.0.0.0", port)))
        .expect("enter namespace")
        .expect("bind test server");
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((mut s, peer)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.write_all(format!("{reply} from {peer}\n").as_bytes());
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Server {
        stop,
        thread: Some(thread),
    }
}

/// A UDP server inside `ns`: answers every datagram with `reply`.
pub(crate) fn udp_server(ns: &Path, port: u16, reply: &'static str) -> Server {
    let sock = run_in_namespace(ns, || UdpSocket::bind(("0.0.0.0", port)))
        .expect("enter namespace")
        .expect("bind udp server");
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !flag.load(Ordering::Acquire) {
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                let _ = sock.send_to(reply.as_bytes(), from);
            }
        }
    });
    Server {
        stop,
        thread: Some(thread),
    }
}

/// Connects from the calling thread's namespace and returns what the server said, or the
/// error as text.
pub(crate) fn tcp_get(addr: SocketAddrV4) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// [`tcp_get`] from inside namespace `ns`.
pub(crate) fn tcp_get_in(ns: &Path, addr: SocketAddrV4) -> Result<String, String> {
    run_in_namespace(ns, || tcp_get(addr)).expect("enter namespace")
}

/// Sends a UDP datagram from the calling thread's namespace and returns the reply.
pub(crate) fn udp_ask(addr: SocketAddrV4) -> Result<String, String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(b"ping", addr).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (n, _) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
