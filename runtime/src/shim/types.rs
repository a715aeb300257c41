//! What the daemon hands the shim (`task.json`) and what the shim reports back
//! (`state.json` and the control socket). Both are JSON so that a daemon of another
//! berth version, or an operator with `jq`, can read them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The shim's input, written by the daemon to `<task-run-dir>/task.json` before it
/// starts the shim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShimTask {
    pub task_id: String,
    /// berth's cgroup base (see `cgroup::BerthCgroups::from_base`).
    pub cgroup_base: String,
    /// libcontainer's state root.
    pub container_state_root: PathBuf,
    pub containers: Vec<ShimContainer>,
    pub log: LogSettings,
    /// Namespaces all the task's containers share (`pidMode`/`ipcMode` `task`). The
    /// shim creates them once, held by a process of its own so that they outlive any
    /// container, and joins every container to them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_namespaces: Vec<SharedNamespace>,
}

/// A namespace shared by the whole task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SharedNamespace {
    Pid,
    Ipc,
}

impl SharedNamespace {
    /// The OCI namespace type, also the name under `/proc/<pid>/ns/`.
    pub fn as_str(self) -> &'static str {
        match self {
            SharedNamespace::Pid => "pid",
            SharedNamespace::Ipc => "ipc",
        }
    }
}

/// Log rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogSettings {
    /// Rotate a container's log file when it reaches this size.
    pub max_bytes: u64,
    /// Keep this many rotated files besides the live one.
    pub max_files: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            max_bytes: 10 * 1024 * 1024,
            max_files: 3,
        }
    }
}

/// One container of the task, ready to create: its bundle (`config.json` and the
/// mounted rootfs) is prepared by the daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShimContainer {
    pub name: String,
    /// libcontainer's container id (`<task-id>-<name>`).
    pub runtime_id: String,
    pub bundle: PathBuf,
    pub essential: bool,
    #[serde(default)]
    pub depends_on: Vec<ShimDependency>,
    /// `startTimeout`: how long, from this container's start, the containers depending
    /// on it wait for it to reach their condition before the task gives up (0: no
    /// limit, ECS's default).
    pub start_timeout_secs: u64,
    /// Seconds between the stop signal and SIGKILL.
    pub stop_timeout_secs: u64,
    /// The stop signal number (the image's StopSignal, else SIGTERM).
    pub stop_signal: i32,
    pub health_check: Option<ShimHealthCheck>,
    pub log_path: PathBuf,
    /// The container's cgroup, hierarchy-relative.
    pub cgroup_path: String,
    /// Run a minimal init as PID 1 (`linuxParameters.initProcessEnabled`).
    #[serde(default)]
    pub init_process: bool,
    /// `pseudoTerminal`: the container's stdio is a pty whose output is logged.
    #[serde(default)]
    pub terminal: bool,
    /// `interactive`: the container's stdin stays open while it runs (`docker run -i`).
    #[serde(default)]
    pub interactive: bool,
    /// `restartPolicy`, when enabled (see `restart.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ShimRestartPolicy>,
    /// The container's seccomp filter, compiled ahead (`spec::seccomp`): loaded by the
    /// container's process right before exec, instead of libcontainer compiling the
    /// profile at every start. `None`: the spec's own `linux.seccomp`, if any, applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_program: Option<PathBuf>,
}

/// An enabled `restartPolicy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShimRestartPolicy {
    /// Exit codes that end the container as usual.
    #[serde(default)]
    pub ignored_exit_codes: Vec<i32>,
    /// Seconds the container must have run, since its start or last restart, for an
    /// exit to restart it.
    pub attempt_period_secs: u64,
}

/// `dependsOn[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShimDependency {
    pub container: String,
    pub condition: Condition,
}

/// ECS's dependency conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Condition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl Condition {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Start => "START",
            Condition::Complete => "COMPLETE",
            Condition::Success => "SUCCESS",
            Condition::Healthy => "HEALTHY",
        }
    }
}

/// A health check as the shim runs it: `argv` is executed inside the container
/// (`CMD-SHELL` has been turned into `/bin/sh -c`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ShimHealthCheck {
    pub argv: Vec<String>,
    pub interval_secs: u64,
    pub timeout_secs: u64,
    pub retries: u32,
    pub start_period_secs: u64,
}

/// The task as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Containers are being started (some may wait on dependencies).
    Starting,
    /// Every container has started (or finished, for init-style containers).
    Running,
    /// Stop signals are out; waiting for containers to exit.
    Stopping,
    /// Every container has exited; the shim is about to exit.
    Stopped,
}

/// ECS's task stop codes berth produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCode {
    TaskFailedToStart,
    EssentialContainerExited,
    UserInitiated,
}

impl StopCode {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StopCode::TaskFailedToStart => "TaskFailedToStart",
            StopCode::EssentialContainerExited => "EssentialContainerExited",
            StopCode::UserInitiated => "UserInitiated",
        }
    }
}

/// Why the task is stopping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopInfo {
    pub code: StopCode,
    pub reason: String,
    /// Epoch seconds at which stopping began (ECS `stoppingAt`).
    pub at: f64,
    /// The container whose exit, failure or dependency stopped the task.
    #[serde(default)]
    pub container: Option<String>,
}

/// A container's lifecycle as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ContainerStatus {
    /// Not started: waiting for dependencies, or never started.
    Pending,
    Running,
    Stopped,
}

/// ECS's health status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthStatus {
    #[default]
    Unknown,
    Healthy,
    Unhealthy,
}

/// One container's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub name: String,
    pub status: ContainerStatus,
    /// The container's init pid on the host.
    pub pid: Option<u32>,
    pub exit_code: Option<i32>,
    /// ECS container `reason` (e.g. `OutOfMemoryError: Container killed due to memory usage`).
    pub reason: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub oom_killed: bool,
    pub health: HealthStatus,
    /// Output of the last health check (truncated).
    pub health_output: Option<String>,
    pub health_since: Option<f64>,
    /// Set when the stop signal was sent.
    pub stop_signalled_at: Option<f64>,
    /// How often the restart policy started the container again.
    #[serde(default)]
    pub restart_count: u32,
    /// When it last did (epoch seconds).
    #[serde(default)]
    pub last_restart_at: Option<f64>,
}

impl ContainerState {
    /// A container that has not started.
    pub fn pending(name: &str) -> ContainerState {
        ContainerState {
            name: name.to_owned(),
            status: ContainerStatus::Pending,
            pid: None,
            exit_code: None,
            reason: None,
            started_at: None,
            finished_at: None,
            oom_killed: false,
            health: HealthStatus::Unknown,
            health_output: None,
            health_since: None,
            stop_signalled_at: None,
            restart_count: 0,
            last_restart_at: None,
        }
    }
}

/// Everything the shim reports: written atomically to `<task-run-dir>/state.json` on
/// every change and streamed to watchers on the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimState {
    pub shim_pid: u32,
    /// Increases with every change.
    pub seq: u64,
    pub status: RunStatus,
    pub stop: Option<StopInfo>,
    /// Epoch seconds when every container had started (ECS `startedAt`).
    pub running_at: Option<f64>,
    /// Epoch seconds when the last container exited (ECS `executionStoppedAt`).
    pub stopped_at: Option<f64>,
    pub containers: Vec<ContainerState>,
}

/// A request on the control socket (one JSON object per line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum ControlRequest {
    /// The daemon's go: `task.json` is written, start the task. The first request of
    /// the daemon's first connection, carrying the task's port holds as SCM_RIGHTS
    /// descriptors (kept open for the task's life); the shim starts nothing before it.
    /// `run_dir` is where the task's run directory is now: a spare shim, started ahead
    /// of any task in a directory of its own, has had that directory renamed to the
    /// task's (absent: the directory it was started in).
    Begin {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run_dir: Option<PathBuf>,
    },
    /// Reply with the current state.
    State,
    /// Reply with the current state, then a new line on every change.
    Watch,
    /// Stop the task (containers in reverse dependency order, each with its
    /// stopTimeout). `timeout_secs` overrides every container's timeout (0 = kill now).
    Stop {
        reason: String,
        #[serde(default)]
        timeout_secs: Option<u64>,
    },
    /// Run `argv` inside the running container `container` (`berth exec`), its stdio
    /// as `io` says, with the descriptors it names coming with this request as
    /// SCM_RIGHTS. Replies [`ControlReply::ExecStarted`], then
    /// [`ControlReply::ExecExited`] on this connection; closing the connection first
    /// kills the process.
    Exec {
        container: String,
        argv: Vec<String>,
        #[serde(default)]
        io: ExecIo,
    },
}

/// How an exec's stdio is connected. The default: one descriptor for stdout and
/// stderr together, stdin from /dev/null.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ExecIo {
    /// A pseudo-terminal made inside the container (its devpts) is the process's
    /// stdin, stdout and stderr, as `docker exec -t`. The request carries no
    /// descriptor; the pty master comes back with [`ControlReply::ExecStarted`].
    pub tty: bool,
    /// Without `tty`: a second descriptor, for stderr, follows stdout's.
    pub separate_stderr: bool,
    /// Without `tty`: a last descriptor, the read end of the process's stdin.
    pub stdin: bool,
}

impl ExecIo {
    /// How many descriptors come with the request.
    pub fn descriptors(&self) -> usize {
        if self.tty {
            0
        } else {
            1 + usize::from(self.separate_stderr) + usize::from(self.stdin)
        }
    }
}

/// A reply on the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ControlReply {
    State(ShimState),
    Ok,
    Error {
        message: String,
    },
    /// An exec's process runs (its pid in the shim's pid namespace). For a `tty`
    /// exec, the pty master comes with this line (SCM_RIGHTS).
    ExecStarted {
        pid: u32,
    },
    /// An exec's process exited: its code, 128 + signal when killed.
    ExecExited {
        code: i32,
    },
}
