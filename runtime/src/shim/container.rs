//! The libcontainer calls: create+start, kill, delete, exec. Only the shim calls
//! these, from its single thread: libcontainer clones the container's processes from
//! the calling process, which is sound only in a single-threaded one.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;

use super::init::BerthExecutor;
use super::sys;
use super::types::ShimContainer;

/// A started container.
pub(crate) struct Started {
    /// The init process's pid on the host.
    pub pid: u32,
    /// The pty master of a `pseudoTerminal` container: its output (stdout and stderr
    /// together, as with `docker run -t`) is read from here, not from the pipes.
    pub console: Option<OwnedFd>,
    /// The write end of an `interactive` container's stdin: held open, never written,
    /// so that the container reads no end of file while it runs (`docker run -i`).
    pub stdin: Option<OwnedFd>,
}

/// Creates and starts the container. The error is the message ECS users see after
/// `CannotStartContainerError: `.
pub(crate) fn create_and_start(
    c: &ShimContainer,
    state_root: &Path,
    stdout: OwnedFd,
    stderr: OwnedFd,
) -> Result<Started, String> {
    // A container of the same id left by an earlier, interrupted attempt would make
    // the build fail with "container exists".
    delete(c, state_root);
    let console = c
        .terminal
        .then(|| sys::console_listener(&c.bundle, "console.sock"))
        .transpose()
        .map_err(|e| format!("creating the console socket: {e}"))?;
    // Without `interactive` the container inherits the shim's stdin, /dev/null. A pty
    // is the stdin of a `pseudoTerminal` container either way.
    let stdin = (c.interactive && !c.terminal)
        .then(sys::pipe)
        .transpose()
        .map_err(|e| format!("creating the container's stdin: {e}"))?;
    let (stdin_read, stdin_hold) = stdin.map_or((None, None), |(r, w)| (Some(r), Some(w)));
    let mut builder = ContainerBuilder::new(c.runtime_id.clone(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(describe)?;
    if let Some(fd) = stdin_read {
        builder = builder.with_stdin(fd);
    }
    let mut container = builder
        .with_console_socket(console.as_ref().map(|(_, path)| path.clone()))
        .with_stdout(stdout)
        .with_stderr(stderr)
        .with_executor(BerthExecutor {
            init: c.init_process,
            seccomp: seccomp_program(c)?,
        })
        .validate_id()
        .map_err(describe)?
        .as_init(&c.bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(describe)?;
    let pid = container.pid().map(|p| p.as_raw() as u32);
    let master = match &console {
        Some((listener, path)) => {
            let received = sys::receive_console(listener);
            let _ = std::fs::remove_file(path);
            match received {
                Ok(fd) => Some(fd),
                Err(e) => {
                    let _ = container.delete(true);
                    return Err(format!("receiving the container's terminal: {e}"));
                }
            }
        }
        None => None,
    };
    if let Err(e) = container.start() {
        let _ = container.delete(true);
        return Err(describe(e));
    }
    let pid = pid.ok_or_else(|| "the runtime reported no pid for the container".to_owned())?;
    Ok(Started {
        pid,
        console: master,
        stdin: stdin_hold,
    })
}

/// Kills every process of the container (SIGKILL to its whole cgroup).
pub(crate) fn kill_all(c: &ShimContainer, state_root: &Path) {
    if let Ok(mut container) = Container::load(state_root.join(&c.runtime_id)) {
        let _ = container.kill(nix::sys::signal::Signal::SIGKILL, true);
    }
}

/// Removes the container's runtime state and cgroup (killing leftovers). Idempotent.
pub(crate) fn delete(c: &ShimContainer, state_root: &Path) {
    let dir = state_root.join(&c.runtime_id);
    if !dir.exists() {
        return;
    }
    match Container::load(dir.clone()) {
        Ok(mut container) => {
            let _ = container.refresh_status();
            if let Err(e) = container.delete(true) {
                tracing::warn!(container = %c.name, error = %describe(e), "deleting container state");
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
        Err(_) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// How an exec's stdio is connected.
pub(crate) enum ExecStdio {
    /// Pipes (or any descriptors): stderr to `stdout` too when it has none of its own;
    /// stdin from /dev/null when absent.
    Pipes {
        stdout: OwnedFd,
        stderr: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
    },
    /// A pseudo-terminal made inside the container, as `docker exec -t`.
    Terminal,
}

/// A started exec: its pid, a child of the shim, and for [`ExecStdio::Terminal`] the
/// pty master.
pub(crate) struct ExecStarted {
    pub pid: u32,
    pub terminal: Option<OwnedFd>,
}

/// The exec's process file, beside the bundle's config.json, while it starts.
const EXEC_PROCESS_FILE: &str = "exec-process.json";
/// The exec's console socket, in the bundle while the exec starts.
const EXEC_CONSOLE_SOCKET: &str = "exec-console.sock";

/// Runs `argv` inside the running container (its namespaces, cgroup, user, groups,
/// working directory and environment, as `docker exec` and Docker's health checks do)
/// with stdio as `stdio` says.
pub(crate) fn exec(
    c: &ShimContainer,
    state_root: &Path,
    argv: &[String],
    stdio: ExecStdio,
) -> Result<ExecStarted, String> {
    // libcontainer's tenant runs as root in `/` unless told otherwise: the container's
    // own process settings are in its bundle.
    let spec = oci_spec::runtime::Spec::load(c.bundle.join("config.json"))
        .map_err(|e| format!("reading the container's config.json: {e}"))?;
    let builder = ContainerBuilder::new(c.runtime_id.clone(), SyscallType::default())
        .with_root_path(state_root)
        .map_err(describe)?
        .with_executor(BerthExecutor {
            init: false,
            seccomp: seccomp_program(c)?,
        });
    let (stdout, stderr, stdin) = match stdio {
        ExecStdio::Terminal => return exec_in_terminal(c, builder, &spec, argv),
        ExecStdio::Pipes {
            stdout,
            stderr,
            stdin,
        } => (stdout, stderr, stdin),
    };
    let stderr = match stderr {
        Some(fd) => fd,
        None => stdout.try_clone().map_err(|e| e.to_string())?,
    };
    let mut builder = builder.with_stdout(stdout).with_stderr(stderr);
    if let Some(fd) = stdin {
        builder = builder.with_stdin(fd);
    }
    let process = spec.process().as_ref();
    let user = process.map(|p| p.user());
    let cwd = process.map(|p| p.cwd().clone()).filter(|d| d.is_absolute());
    let pid = builder
        .as_tenant()
        .with_user(user.map(|u| u.uid()))
        .with_group(user.map(|u| u.gid()))
        .with_additional_gids(
            user.and_then(|u| u.additional_gids().clone())
                .unwrap_or_default(),
        )
        .with_cwd(cwd)
        .with_container_args(argv.to_vec())
        .with_detach(true)
        .build()
        .map_err(describe)?;
    Ok(ExecStarted {
        pid: pid.as_raw() as u32,
        terminal: None,
    })
}

/// An exec on a pseudo-terminal: the container's own process settings (user, groups,
/// working directory, environment, capabilities, rlimits) with `argv` and a terminal,
/// from a process file; the pty master arrives on a console socket.
fn exec_in_terminal(
    c: &ShimContainer,
    builder: ContainerBuilder,
    spec: &oci_spec::runtime::Spec,
    argv: &[String],
) -> Result<ExecStarted, String> {
    let mut process = spec
        .process()
        .clone()
        .ok_or_else(|| "the container's config.json has no process".to_owned())?;
    let mut env = process.env().clone().unwrap_or_default();
    // What `docker exec -t` gives a program that needs a terminal type.
    if !env.iter().any(|v| v.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    process
        .set_args(Some(argv.to_vec()))
        .set_env(Some(env))
        .set_terminal(Some(true));
    let process_file = c.bundle.join(EXEC_PROCESS_FILE);
    let json = serde_json::to_vec(&process).map_err(|e| e.to_string())?;
    std::fs::write(&process_file, json)
        .map_err(|e| format!("writing {}: {e}", process_file.display()))?;
    let console = sys::console_listener(&c.bundle, EXEC_CONSOLE_SOCKET)
        .map_err(|e| format!("creating the console socket: {e}"));
    let started = console.and_then(|(listener, socket)| {
        let built = builder
            .with_console_socket(Some(socket.clone()))
            .as_tenant()
            .with_process(Some(&process_file))
            .with_detach(true)
            .build()
            .map_err(describe);
        let master = built.and_then(|pid| {
            let master = sys::receive_console(&listener)
                .map_err(|e| format!("receiving the command's terminal: {e}"));
            if master.is_err() {
                sys::send_signal(pid.as_raw() as u32, libc::SIGKILL);
            }
            Ok(ExecStarted {
                pid: pid.as_raw() as u32,
                terminal: Some(master?),
            })
        });
        let _ = std::fs::remove_file(&socket);
        master
    });
    let _ = std::fs::remove_file(&process_file);
    started
}

/// The container's compiled seccomp filter, read from its bundle. A container whose
/// program is missing or unreadable does not start (it never runs unfiltered).
fn seccomp_program(c: &ShimContainer) -> Result<Option<Arc<sys::SeccompProgram>>, String> {
    let Some(path) = &c.seccomp_program else {
        return Ok(None);
    };
    let bytes = std::fs::read(path)
        .map_err(|e| format!("reading the seccomp program {}: {e}", path.display()))?;
    Ok(Some(Arc::new(sys::SeccompProgram::from_bytes(&bytes)?)))
}

/// libcontainer's errors nest their cause; ECS users get one line with the chain,
/// without the runtime's own framing ("exec process failed with error error in
/// executing process : …") when the cause inside the container is known.
fn describe(e: libcontainer::error::LibcontainerError) -> String {
    const FRAMING: &str = "error in executing process : ";
    let text = e.to_string();
    if let Some((_, cause)) = text.split_once(FRAMING)
        && cause != "failed to prepare rootfs"
        && !cause.is_empty()
    {
        return cause.to_owned();
    }
    let mut msg = text;
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        source = s.source();
    }
    msg
}
