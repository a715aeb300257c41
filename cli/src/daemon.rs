//! `berth daemon`: the engine behind the ECS API, on a unix socket and TCP.
//!
//! Start-up: one daemon per data root (a lock file), a read-only bind mount of its own
//! executable for the shims (CVE-2019-5736: a container that reaches a shim's
//! `/proc/<pid>/exe` cannot write through it), the SigV4 key pair, the engine
//! (database, cgroups, images, network, reconciliation), then the listeners. SIGTERM
//! or SIGINT stops accepting, lets requests in flight finish, and leaves every task
//! running under its shim.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use berth_runtime::engine::{ArnScope, Engine, EngineConfig};
use berth_runtime::paths::Paths;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::{TcpListener, UnixListener};

use crate::api::{self, Transport, sigv4::Credentials};
use crate::metadata;

/// Daemon settings, resolved from flags, environment and the config file.
#[derive(Debug, Clone)]
pub(crate) struct DaemonSettings {
    pub paths: Paths,
    pub insecure_registries: Vec<String>,
    pub listen: Option<SocketAddr>,
    pub insecure_no_auth: bool,
    pub region: String,
    pub account: String,
    pub publish_address: std::net::Ipv4Addr,
    pub subnet: Option<String>,
    pub bridge: Option<String>,
    pub cgroup_name: String,
    pub pids_limit: i64,
}

/// What request handlers share.
pub(crate) struct Daemon {
    pub engine: Engine,
    credentials: Credentials,
    pub settings: DaemonSettings,
}

impl Daemon {
    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCredentials {
    access_key_id: String,
    secret_access_key: String,
}

/// The key pair, generated on first start into a root-only file.
pub(crate) fn load_or_create_credentials(paths: &Paths) -> Result<Credentials> {
    let dir = paths.auth_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let file = dir.join("credentials.json");
    if let Ok(text) = std::fs::read_to_string(&file) {
        let c: StoredCredentials = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a berth credentials file", file.display()))?;
        return Ok(Credentials {
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
        });
    }
    const KEY_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let pick = |alphabet: &[u8], n: usize| -> Result<String> {
        let mut b = vec![0u8; n];
        getrandom::fill(&mut b).map_err(|e| anyhow::anyhow!("random source: {e}"))?;
        Ok(b.iter()
            .map(|x| alphabet[*x as usize % alphabet.len()] as char)
            .collect())
    };
    let creds = StoredCredentials {
        access_key_id: format!("BERTH{}", pick(KEY_CHARS, 15)?),
        secret_access_key: pick(SECRET_CHARS, 40)?,
    };
    let tmp = file.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode_0600()
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(&creds)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &file)?;
    Ok(Credentials {
        access_key_id: creds.access_key_id,
        secret_access_key: creds.secret_access_key,
    })
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// A read-only bind mount of this executable, which shims are started from.
fn seal_executable(run_root: &Path) -> Result<PathBuf> {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    let target = run_root.join("berth-exe");
    // An earlier daemon's mount: detach it (running shims keep their mapping).
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    if !target.exists() {
        std::fs::File::create(&target).with_context(|| format!("creating {}", target.display()))?;
    }
    let exe = std::fs::read_link("/proc/self/exe").context("reading /proc/self/exe")?;
    mount(
        Some(&exe),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {} at {}", exe.display(), target.display()))?;
    mount(
        None::<&str>,
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .with_context(|| format!("making {} read-only", target.display()))?;
    Ok(target)
}

/// How long a starting daemon waits for what a daemon that just died may still hold: a
/// process it was spawning (a vfork child that has not exec'd yet) shares its descriptors,
/// the data-root lock and the listening socket among them, for a few milliseconds.
const TAKEOVER_WAIT: Duration = Duration::from_secs(2);

fn lock_data_root(paths: &Paths) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = paths.data_root().join("daemon.lock");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = std::time::Instant::now() + TAKEOVER_WAIT;
    loop {
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => return Ok(lock),
            Err((file, nix::errno::Errno::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                f = file;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, e)) => bail!(
                "another berth daemon is running with data root {} ({e}); stop it first or use another --data-root",
                paths.data_root().display()
            ),
        }
    }
}

/// Whether a berth daemon answers on `socket`. A connection alone does not tell: after a
/// crash, a process the dead daemon was spawning can hold its listener for a moment, and
/// connections queue there without an answer (then are reset). An error answer is an
/// answer too.
async fn daemon_answers(socket: &Path) -> bool {
    let client = crate::client::Client::new(socket);
    let info = client.berth("Info", serde_json::json!({}));
    match tokio::time::timeout(TAKEOVER_WAIT, info).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => e.downcast_ref::<crate::client::ApiFailure>().is_some(),
        Err(_) => false,
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub(crate) async fn run(settings: DaemonSettings) -> Result<()> {
    if let Some(addr) = settings.listen
        && !addr.ip().is_loopback()
        && settings.insecure_no_auth
    {
        bail!(
            "refusing to serve the API on {addr} without authentication: the API is root-equivalent. \
             Drop --insecure-no-auth (clients then sign with the key `berth credentials` prints) \
             or listen on a loopback address"
        );
    }
    let paths = settings.paths.clone();
    for (dir, mode) in [(paths.data_root(), 0o700), (paths.run_root(), 0o711)] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))?;
    }
    let _lock = lock_data_root(&paths)?;
    // Before anything touches the run root (the sealed executable, reconciliation of the
    // host's cgroups, network and mounts): another data root's daemon may be using it.
    let socket = paths.socket();
    if daemon_answers(&socket).await {
        bail!("another berth daemon answers on {}", socket.display());
    }
    let credentials = load_or_create_credentials(&paths)?;
    let shim_exe = seal_executable(paths.run_root())?;

    let mut cfg = EngineConfig::new(paths.clone(), shim_exe);
    cfg.arn = ArnScope {
        region: settings.region.clone(),
        account: settings.account.clone(),
    };
    cfg.cgroup_name = settings.cgroup_name.clone();
    cfg.pids_limit = settings.pids_limit;
    cfg.network.publish_address = settings.publish_address;
    if let Some(b) = &settings.bridge {
        cfg.network.bridge = b.clone();
    }
    if let Some(s) = &settings.subnet {
        cfg.network.subnet = s
            .parse()
            .map_err(|e| anyhow::anyhow!("--subnet {s:?}: {e}"))?;
    }
    cfg.images.registry.insecure_registries = settings.insecure_registries.clone();
    cfg.metadata_port = Some(metadata::METADATA_PORT);
    cfg.network.credentials_port = cfg.metadata_port;
    let engine = Engine::start(cfg)
        .await
        .map_err(|e| anyhow::anyhow!("{}", berth_runtime::engine::chain(&e)))?;

    let daemon = Arc::new(Daemon {
        engine: engine.clone(),
        credentials,
        settings: settings.clone(),
    });

    let _ = std::fs::remove_file(&socket);
    let unix =
        UnixListener::bind(&socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))?;
    let tcp = match settings.listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("listening on {addr}"))?,
        ),
        None => None,
    };
    let auth = !settings.insecure_no_auth;
    if !auth {
        tracing::warn!(
            "authentication is OFF (--insecure-no-auth): anyone who can reach the TCP listener controls this host"
        );
    }
    tracing::info!(
        socket = %socket.display(),
        tcp = ?settings.listen,
        cgroup = ?engine.cgroup_info(),
        "berth daemon ready"
    );

    let metadata_servers = metadata::start(&engine, engine.bridge_gateway());

    let mut connections = Connections::default();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            accepted = unix.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let d = daemon.clone();
                connections.serve(TokioIo::new(stream), move |req| api::handle(d.clone(), Transport::Unix, req));
            }
            accepted = async { tcp.as_ref().expect("guarded").accept().await }, if tcp.is_some() => {
                let Ok((stream, _)) = accepted else { continue };
                let d = daemon.clone();
                connections.serve(TokioIo::new(stream), move |req| api::handle(d.clone(), Transport::Tcp { auth }, req));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("shutting down; tasks keep running under their shims");
    drop(unix);
    drop(tcp);
    for server in metadata_servers {
        server.abort();
    }
    let _ = std::fs::remove_file(&socket);
    connections.shut_down(Duration::from_secs(5)).await;
    engine.shutdown().await;
    Ok(())
}

/// The API's HTTP connections (with upgrades: an interactive `berth exec` becomes a
/// byte stream), and their graceful end: requests in flight finish, idle connections
/// close.
#[derive(Default)]
struct Connections {
    tasks: tokio::task::JoinSet<()>,
    shutdown: Option<tokio::sync::watch::Sender<bool>>,
}

impl Connections {
    fn serve<I, F, Fut>(&mut self, io: I, handler: F)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
        F: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Send + 'static,
        Fut: std::future::Future<
                Output = Result<hyper::Response<api::Body>, std::convert::Infallible>,
            > + Send
            + 'static,
    {
        // Finished connections leave the set here, so it holds only live ones.
        while self.tasks.try_join_next().is_some() {}
        let mut stop = self
            .shutdown
            .get_or_insert_with(|| tokio::sync::watch::channel(false).0)
            .subscribe();
        let conn = http1::Builder::new()
            .serve_connection(io, service_fn(handler))
            .with_upgrades();
        self.tasks.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopping(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }

    /// Asks every connection to finish and waits for them, at most `limit`.
    async fn shut_down(mut self, limit: Duration) {
        if let Some(tx) = &self.shutdown {
            let _ = tx.send(true);
        }
        let all = async { while self.tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(limit, all).await;
    }
}

/// Returns once the daemon stops (or the sender is gone).
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}
