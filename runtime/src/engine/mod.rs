//! The task engine: what `berth daemon` runs. It owns the database handle, berth's
//! cgroup subtree, the image service and the network manager, and turns ECS
//! operations into tasks that run under per-task shims.
//!
//! One RunTask, from API to kernel:
//!
//! 1. [`Engine::run_task`] resolves the task definition, applies overrides, checks the
//!    cluster, and admits each task against the host's CPU, memory and host ports in
//!    **one database transaction** that also leases its address and reserves its
//!    ports (intent is recorded before any side effect; `PROVISIONING`).
//! 2. A driver (a tokio task per task, [`driver`]) creates the network namespace,
//!    veth and published ports and the task cgroup (`PENDING`), pulls images
//!    (`ACTIVATING`), mounts each container's overlayfs rootfs, writes `/etc` files and
//!    OCI bundles, records that the shim is starting, and starts `berth shim`.
//! 3. The shim creates the containers through libcontainer and reports every change
//!    on its socket; the driver maps each report onto the ECS task (`RUNNING`,
//!    `STOPPING`, exit codes, health) and stores it.
//! 4. When the shim reports the task stopped, the driver unmounts, tears the network
//!    down, releases leases and ports (`DEPROVISIONING`) and marks it `STOPPED`.
//!
//! On start, [`reconcile`] compares the database with the kernel and the run root:
//! reattaches to live shims, collects exits that happened while berth was down, marks
//! tasks whose shim vanished or that were mid-start as STOPPED, and removes kernel
//! objects and files no live task owns.

pub mod arn;
pub mod credentials;
mod driver;
mod driver_opts;
mod exec;
mod files;
mod finalize;
mod health;
mod host;
mod housekeeping;
mod images_step;
pub mod metadata;
mod mount_points;
mod netplan;
mod netstats;
mod provision;
mod reconcile;
mod run;
pub mod services;
mod spare_shim;
pub mod status;
mod stop;
pub(crate) mod sys;
mod task_network;
mod volumes;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use berth_netns::{NetworkConfig, NetworkManager};

pub use arn::ArnScope;
pub use exec::{
    ExecExit, ExecKiller, ExecOptions, ExecSession, ExecStreams, Utf8Chunks, set_terminal_size,
    terminal_size,
};
pub use host::{HostResources, host_resources};
pub use run::{Failure, RunTaskRequest, RunTaskResult};
pub use volumes::VolumeInfo;

use crate::cgroup::{BerthCgroups, CgroupHost, MigrationPrimer, ProcCgroups};
use crate::db::{Db, DbError, DbHandle};
use crate::error::ErrorClass;
use crate::images::{ImageService, ImageServiceConfig};
use crate::paths::Paths;
use crate::shim::LogSettings;
use crate::state::model::{Cluster, Tag, Task, TaskRecord};
use crate::state::repo;

/// Engine settings (the daemon builds them from flags and the config file).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub paths: Paths,
    pub arn: ArnScope,
    /// The name of berth's cgroup on v1 hosts (`<own cgroup>/<name>`).
    pub cgroup_name: String,
    /// Default per-container pids limit.
    pub pids_limit: i64,
    pub log: LogSettings,
    /// The executable started as the shim (the daemon's sealed copy of itself).
    pub shim_exe: PathBuf,
    pub network: NetworkConfig,
    pub images: ImageServiceConfig,
    /// How long STOPPED tasks stay visible (ECS: about an hour).
    pub stopped_retention_secs: f64,
    /// Container stop timeout when the definition sets none (ECS agent: 30 s).
    pub default_stop_timeout_secs: u64,
    /// `startTimeout` of a container whose definition sets none: how long containers
    /// depending on it wait, from its start, for their condition. 0 (ECS's default)
    /// waits as long as it takes; the agent's ECS_CONTAINER_START_TIMEOUT is a
    /// different limit, on starting a container.
    pub default_start_timeout_secs: u64,
    /// The port of the task metadata endpoint the daemon serves on the bridge gateway
    /// (and on 127.0.0.1 for host-mode tasks); `None`: containers get no
    /// `ECS_CONTAINER_METADATA_URI*`.
    pub metadata_port: Option<u16>,
}

impl EngineConfig {
    /// Defaults for `paths`.
    pub fn new(paths: Paths, shim_exe: PathBuf) -> EngineConfig {
        let network = NetworkConfig::new(paths.netns_dir());
        EngineConfig {
            arn: ArnScope::default(),
            cgroup_name: "berth".into(),
            pids_limit: 4096,
            log: LogSettings::default(),
            shim_exe,
            network,
            images: ImageServiceConfig::default(),
            stopped_retention_secs: 3600.0,
            default_stop_timeout_secs: 30,
            default_start_timeout_secs: 0,
            metadata_port: None,
            paths,
        }
    }
}

/// Engine errors. Each has a class; validation and registry errors also carry the
/// ECS exception to return.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Registry(#[from] crate::taskdef::registry::RegistryError),
    #[error(transparent)]
    Validation(#[from] crate::taskdef::ValidationError),
    #[error(transparent)]
    Images(#[from] crate::images::ImageError),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("failed to set up networking")]
    Network(#[source] berth_netns::NetworkError),
    #[error("Cluster not found.")]
    ClusterNotFound,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// The API class of this error.
    pub fn class(&self) -> ErrorClass {
        match self {
            EngineError::Db(e) => e.class(),
            EngineError::Registry(e) => e.class(),
            EngineError::Validation(e) => e.class(),
            EngineError::Images(e) => e.class(),
            EngineError::Cgroup(e) => e.class(),
            EngineError::Network(_) | EngineError::Io { .. } => ErrorClass::Internal,
            EngineError::ClusterNotFound | EngineError::NotFound(_) => ErrorClass::NotFound,
            EngineError::Invalid(_) => ErrorClass::Invalid,
            EngineError::Conflict(_) => ErrorClass::Conflict,
        }
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
        let context = context.into();
        move |source| EngineError::Io { context, source }
    }
}

pub(crate) struct Inner {
    cfg: EngineConfig,
    db: DbHandle,
    cgroups: BerthCgroups,
    cgroups_created: Vec<PathBuf>,
    /// Starts the kernel's slow switch of the cgroup migration lock when a task starts
    /// provisioning, instead of on the task's path (`cgroup/prime.rs`).
    primer: MigrationPrimer,
    /// Removes what stopped tasks leave, at the lowest CPU priority (`housekeeping.rs`).
    housekeeper: housekeeping::Housekeeper,
    images: ImageService,
    net: Arc<NetworkManager>,
    /// A shim started ahead of the next task (`spare_shim.rs`).
    spare_shim: spare_shim::SpareShim,
    /// Stop requests (reason, timeout override) not yet confirmed by the shim.
    pending_stops: Mutex<HashMap<String, (String, Option<u64>)>>,
    /// Tasks with a driver running.
    drivers: Mutex<HashMap<String, tokio::task::JoinHandle<()>>>,
    /// The task a driver stored last, so waiters (WaitTask, log followers) wake up
    /// instead of polling.
    task_changed: tokio::sync::watch::Sender<Option<Arc<TaskRecord>>>,
    host: HostResources,
    instance_id: String,
    started_at: f64,
    /// The service scheduler's lock and wake-up.
    services: services::Services,
    service_scheduler: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("paths", &self.inner.cfg.paths)
            .finish()
    }
}

/// An error and its `source()` chain on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
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

pub(crate) fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Engine {
    /// Opens the database, establishes berth's cgroup subtree, opens the image store
    /// and the network, reconciles the database with the kernel, and resumes watching
    /// every live task. Must be called from inside a tokio runtime.
    pub async fn start(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let paths = cfg.paths.clone();
        for dir in [
            paths.data_root().to_path_buf(),
            paths.tasks_data_dir(),
            paths.volumes_dir(),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        }
        for dir in [
            paths.tasks_run_dir(),
            paths.netns_dir(),
            paths.container_state_dir(),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(EngineError::io(format!("creating {}", dir.display())))?;
        }
        let db = Db::open(&paths.database())?;
        let db = DbHandle::spawn(db);

        let host_cg = CgroupHost::detect()?;
        let own = ProcCgroups::of_self()?;
        let (cgroups, cgroups_created) =
            BerthCgroups::establish(host_cg, &own, &cfg.cgroup_name, std::process::id())?;
        let primer = MigrationPrimer::start(cgroups.primer_target(std::process::id()));

        let images = ImageService::open(&paths, db.clone(), cfg.images.clone()).await?;
        let net_cfg = cfg.network.clone();
        let net = tokio::task::spawn_blocking(move || NetworkManager::new(net_cfg))
            .await
            .expect("network setup thread")
            .map_err(EngineError::Network)?;

        let instance_id = host::container_instance_id(&paths)
            .map_err(EngineError::io("reading the container instance id"))?;
        let host = host_resources();
        let engine = Engine {
            inner: Arc::new(Inner {
                cfg,
                db,
                cgroups,
                cgroups_created,
                primer,
                housekeeper: housekeeping::Housekeeper::start(),
                images,
                net: Arc::new(net),
                spare_shim: spare_shim::SpareShim::default(),
                pending_stops: Mutex::new(HashMap::new()),
                drivers: Mutex::new(HashMap::new()),
                task_changed: tokio::sync::watch::Sender::new(None),
                host,
                instance_id,
                started_at: now(),
                services: services::Services::default(),
                service_scheduler: Mutex::new(None),
            }),
        };
        engine.ensure_default_cluster().await?;
        reconcile::reconcile(&engine).await?;
        spare_shim::start(&engine);
        engine.spawn_janitor();
        let scheduler = engine.spawn_service_scheduler();
        *engine.inner.service_scheduler.lock().expect("not poisoned") = Some(scheduler);
        Ok(engine)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// The database thread.
    pub fn db(&self) -> &DbHandle {
        &self.inner.db
    }

    /// The image service.
    pub fn images(&self) -> &ImageService {
        &self.inner.images
    }

    /// Region and account of every ARN.
    pub fn arn(&self) -> &ArnScope {
        &self.inner.cfg.arn
    }

    /// The settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// The cgroup version, controllers and base, for `berth info`.
    pub fn cgroup_info(&self) -> crate::cgroup::CgroupInfo {
        self.inner.cgroups.info()
    }

    /// The bridge's address: where task namespaces reach the host.
    pub fn bridge_gateway(&self) -> std::net::Ipv4Addr {
        self.inner.net.subnet().gateway()
    }

    /// Whether `ip` is in berth's task subnet (a task's address, or the gateway).
    pub fn in_task_subnet(&self, ip: std::net::Ipv4Addr) -> bool {
        self.inner.net.subnet().net().contains(ip)
    }

    /// The host's registered resources.
    pub fn host(&self) -> HostResources {
        self.inner.host
    }

    /// Stops watching tasks (they keep running under their shims) and, when no task
    /// remains, removes berth's cgroup directories. Called on daemon shutdown.
    pub async fn shutdown(&self) {
        if let Some(h) = self
            .inner
            .service_scheduler
            .lock()
            .expect("not poisoned")
            .take()
        {
            h.abort();
        }
        let handles: Vec<_> = self
            .inner
            .drivers
            .lock()
            .expect("not poisoned")
            .drain()
            .map(|(_, h)| h)
            .collect();
        for h in handles {
            h.abort();
        }
        // On v1 the primer's thread sits in berth's base; it leaves before the base
        // may be removed.
        self.inner.primer.stop();
        self.inner.spare_shim.discard();
        self.inner.cgroups.release(&self.inner.cgroups_created);
    }

    async fn ensure_default_cluster(&self) -> Result<(), EngineError> {
        let arn = self.arn().cluster("default");
        self.inner
            .db
            .call(move |db| {
                if repo::get_cluster(db.conn(), "default")?.is_none_or(|c| c.status != "ACTIVE") {
                    repo::put_cluster(db.conn(), &new_cluster("default", &arn), now())?;
                }
                Ok::<_, DbError>(())
            })
            .await?;
        Ok(())
    }

    // ---------- clusters ----------

    /// CreateCluster: idempotent for an existing ACTIVE cluster (as ECS).
    pub async fn create_cluster(&self, name: &str, tags: Vec<Tag>) -> Result<Cluster, EngineError> {
        check_cluster_name(name)?;
        let arn = self.arn().cluster(name);
        let name = name.to_owned();
        let cluster = self
            .inner
            .db
            .call(move |db| {
                let c = match repo::get_cluster(db.conn(), &name)? {
                    Some(c) if c.status == "ACTIVE" => c,
                    _ => {
                        let c = new_cluster(&name, &arn);
                        repo::put_cluster(db.conn(), &c, now())?;
                        c
                    }
                };
                repo::put_tags(db.conn(), &arn, &tags)?;
                Ok::<_, DbError>(c)
            })
            .await?;
        self.cluster_view(cluster, true).await
    }

    /// A cluster with live counts (and tags when asked).
    async fn cluster_view(&self, mut c: Cluster, with_tags: bool) -> Result<Cluster, EngineError> {
        let name = c.cluster_name.clone();
        let arn = c.cluster_arn.clone();
        let (running, pending, tags) = self
            .inner
            .db
            .call(move |db| {
                let (r, p) = repo::cluster_task_counts(db.conn(), &name)?;
                let tags = if with_tags {
                    repo::tags_of(db.conn(), &arn)?
                } else {
                    Vec::new()
                };
                Ok::<_, DbError>((r, p, tags))
            })
            .await?;
        c.running_tasks_count = running;
        c.pending_tasks_count = pending;
        c.active_services_count = self.active_services_count(&c.cluster_name).await? as i64;
        c.registered_container_instances_count = i64::from(c.status == "ACTIVE");
        c.tags = tags;
        Ok(c)
    }

    /// DescribeClusters: found clusters and the names that are not.
    pub async fn describe_clusters(
        &self,
        names: Vec<String>,
        with_tags: bool,
    ) -> Result<(Vec<Cluster>, Vec<String>), EngineError> {
        let names = if names.is_empty() {
            vec!["default".to_owned()]
        } else {
            names
        };
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for reference in names {
            let name = arn::cluster_name(Some(&reference));
            let n = name.clone();
            let c = self
                .inner
                .db
                .call(move |db| repo::get_cluster(db.conn(), &n))
                .await?;
            match c {
                Some(c) => found.push(self.cluster_view(c, with_tags).await?),
                None => missing.push(reference),
            }
        }
        Ok((found, missing))
    }

    /// ListClusters (ACTIVE, by name), after `after`.
    pub async fn list_clusters(
        &self,
        after: String,
        limit: usize,
    ) -> Result<Vec<Cluster>, EngineError> {
        Ok(self
            .inner
            .db
            .call(move |db| repo::list_clusters(db.conn(), &after, limit))
            .await?)
    }

    /// DeleteCluster: refused while tasks are running or pending in it (ECS's
    /// ClusterContainsTasksException, which the caller maps from the error text).
    pub async fn delete_cluster(&self, reference: &str) -> Result<Cluster, EngineError> {
        let name = arn::cluster_name(Some(reference));
        let n = name.clone();
        let c = self
            .inner
            .db
            .call(move |db| repo::get_cluster(db.conn(), &n))
            .await?
            .filter(|c| c.status == "ACTIVE")
            .ok_or(EngineError::ClusterNotFound)?;
        let c = self.cluster_view(c, false).await?;
        if c.running_tasks_count + c.pending_tasks_count > 0 {
            return Err(EngineError::Conflict(
                "The Cluster cannot be deleted while Tasks are active.".into(),
            ));
        }
        let mut c = c;
        c.status = "INACTIVE".into();
        let stored = c.clone();
        self.inner
            .db
            .call(move |db| repo::put_cluster(db.conn(), &stored, now()))
            .await?;
        Ok(c)
    }

    pub(crate) async fn require_cluster(
        &self,
        reference: Option<&str>,
    ) -> Result<String, EngineError> {
        let name = arn::cluster_name(reference);
        let n = name.clone();
        let c = self
            .inner
            .db
            .call(move |db| repo::get_cluster(db.conn(), &n))
            .await?;
        match c {
            Some(c) if c.status == "ACTIVE" => Ok(name),
            _ => Err(EngineError::ClusterNotFound),
        }
    }

    // ---------- tasks ----------

    /// A task record by id.
    pub async fn task(&self, id: &str) -> Result<Option<TaskRecord>, EngineError> {
        let id = id.to_owned();
        Ok(self
            .inner
            .db
            .call(move |db| repo::get_task(db.conn(), &id))
            .await?)
    }

    /// DescribeTasks: tasks by id or ARN in `cluster`; unknown ones come back as
    /// `MISSING` references.
    pub async fn describe_tasks(
        &self,
        cluster: Option<&str>,
        references: Vec<String>,
        with_tags: bool,
    ) -> Result<(Vec<Task>, Vec<String>), EngineError> {
        let cluster = self.require_cluster(cluster).await?;
        // One database job for the whole call, decoding only each task's ECS shape: a
        // waiter's DescribeTasks of 100 tasks is one round trip, not a hundred.
        let c = cluster.clone();
        let views = self
            .inner
            .db
            .call(move |db| {
                let mut out = Vec::with_capacity(references.len());
                for r in references {
                    let (id, in_arn) = arn::task_id(&r);
                    let view = if in_arn.is_some_and(|x| x != c) {
                        None
                    } else {
                        repo::get_task_view(db.conn(), &id)?.filter(|(cl, _)| *cl == c)
                    };
                    let view = match view {
                        Some((_, mut t)) => {
                            if with_tags {
                                t.tags = repo::tags_of(db.conn(), &t.task_arn)?;
                            }
                            Some(t)
                        }
                        None => None,
                    };
                    out.push((r, view));
                }
                Ok::<_, DbError>(out)
            })
            .await?;
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for (r, view) in views {
            match view {
                Some(t) => found.push(t),
                None => missing.push(r),
            }
        }
        Ok((found, missing))
    }

    /// ListTasks: ARNs newest first, with an opaque cursor.
    pub async fn list_tasks(
        &self,
        mut filter: repo::TaskFilter,
        cluster: Option<&str>,
        after: Option<(f64, String)>,
        limit: usize,
    ) -> Result<Vec<(f64, String, String)>, EngineError> {
        filter.cluster = self.require_cluster(cluster).await?;
        Ok(self
            .inner
            .db
            .call(move |db| repo::list_task_arns(db.conn(), &filter, after, limit))
            .await?)
    }

    /// StopTask: records the desired status and the reason, then asks the task's shim
    /// to stop (or its driver, when the shim has not started yet). Returns the task.
    pub async fn stop_task(
        &self,
        cluster: Option<&str>,
        reference: &str,
        reason: Option<String>,
        timeout_secs: Option<u64>,
    ) -> Result<Task, EngineError> {
        let cluster = self.require_cluster(cluster).await?;
        let (id, _) = arn::task_id(reference);
        let reason = reason.unwrap_or_else(|| "Task stopped by user".to_owned());
        stop::request_stop(self, &cluster, &id, reason, timeout_secs, None).await
    }

    // ---------- tags ----------

    /// TagResource for clusters and tasks.
    pub async fn tag_resource(&self, arn: &str, tags: Vec<Tag>) -> Result<(), EngineError> {
        self.require_resource(arn).await?;
        let arn = arn.to_owned();
        Ok(self
            .inner
            .db
            .call(move |db| repo::put_tags(db.conn(), &arn, &tags))
            .await?)
    }

    /// UntagResource for clusters and tasks.
    pub async fn untag_resource(&self, arn: &str, keys: Vec<String>) -> Result<(), EngineError> {
        self.require_resource(arn).await?;
        let arn = arn.to_owned();
        Ok(self
            .inner
            .db
            .call(move |db| repo::remove_tags(db.conn(), &arn, &keys))
            .await?)
    }

    /// ListTagsForResource for clusters and tasks.
    pub async fn list_tags(&self, arn: &str) -> Result<Vec<Tag>, EngineError> {
        self.require_resource(arn).await?;
        let arn = arn.to_owned();
        Ok(self
            .inner
            .db
            .call(move |db| repo::tags_of(db.conn(), &arn))
            .await?)
    }

    async fn require_resource(&self, arn_str: &str) -> Result<(), EngineError> {
        if let Some((_, name)) = arn_str.split_once(":cluster/") {
            let n = name.to_owned();
            return match self
                .inner
                .db
                .call(move |db| repo::get_cluster(db.conn(), &n))
                .await?
            {
                Some(c) if c.status == "ACTIVE" => Ok(()),
                _ => Err(EngineError::NotFound(format!(
                    "The specified cluster is not found: {arn_str}"
                ))),
            };
        }
        if arn_str.contains(":task/") {
            let (id, _) = arn::task_id(arn_str);
            return match self.task(&id).await? {
                Some(_) => Ok(()),
                None => Err(EngineError::NotFound(format!(
                    "The specified task is not found: {arn_str}"
                ))),
            };
        }
        Err(EngineError::Invalid(format!(
            "Invalid resource ARN: {arn_str}"
        )))
    }

    /// The single container instance this host is, as ECS's `ContainerInstance`.
    pub async fn container_instance(
        &self,
        cluster: &str,
    ) -> Result<serde_json::Value, EngineError> {
        host::container_instance(self, cluster).await
    }

    /// The container instance ARN of this host in `cluster`.
    pub fn container_instance_arn(&self, cluster: &str) -> String {
        self.arn()
            .container_instance(cluster, &self.inner.instance_id)
    }

    fn spawn_janitor(&self) {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                if let Err(e) = reconcile::prune(&engine).await {
                    tracing::warn!(error = %e, "pruning stopped tasks");
                }
                if let Err(e) = engine.prune_services().await {
                    tracing::warn!(error = %e, "pruning deleted services");
                }
            }
        });
    }
}

fn new_cluster(name: &str, arn: &str) -> Cluster {
    Cluster {
        cluster_arn: arn.to_owned(),
        cluster_name: name.to_owned(),
        status: "ACTIVE".into(),
        registered_container_instances_count: 1,
        running_tasks_count: 0,
        pending_tasks_count: 0,
        active_services_count: 0,
        statistics: vec![],
        tags: vec![],
        settings: vec![serde_json::json!({"name": "containerInsights", "value": "disabled"})],
        capacity_providers: vec![],
        default_capacity_provider_strategy: vec![],
    }
}

/// Whether `name` is a cluster or service name as ECS accepts them; else the message
/// for the request member `field`.
pub(crate) fn check_resource_name(field: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field}: up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed"
        ))
    }
}

fn check_cluster_name(name: &str) -> Result<(), EngineError> {
    check_resource_name("clusterName", name).map_err(EngineError::Invalid)
}
