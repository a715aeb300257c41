//! Task volumes on the host: the directory behind every `volumes[]` entry, named
//! volumes with the `local` driver's options (`driverOpts` `type`/`device`/`o`, e.g. a
//! tmpfs), and the shared volumes that outlive tasks, with their metadata in the
//! `volumes` table.
//!
//! Where each kind lives:
//!
//! | volume | host directory | removed |
//! |---|---|---|
//! | `host.sourcePath` | that path (created if missing) | never (it is the user's) |
//! | no `host`, `host: {}`, EFS/FSx/S3 Files/EBS stand-ins | `<task-data>/volumes/<name>` | with the task |
//! | `dockerVolumeConfiguration` scope `task` | `<task-data>/volumes/<name>` | with the task |
//! | `dockerVolumeConfiguration` scope `shared` | `<data-root>/volumes/<name>/_data` | `berth volume rm` |
//!
//! A named volume with `driverOpts` is a mount on its directory, as Docker's `local`
//! driver does it: a task-scoped one is mounted for the task and unmounted at cleanup;
//! a shared one is mounted when a task first needs it and unmounted when the last task
//! using it is cleaned up (so a shared tmpfs starts empty again, as in Docker).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::driver_opts::DriverMount;
use super::{Engine, EngineError, files, now, sys};
use crate::db::{DbError, QueryContext};
use crate::spec::BindMount;
use crate::state::model::TaskRecord;
use crate::state::repo;
use crate::taskdef::{
    ContainerDefinition, DockerVolumeConfiguration, Scope, TaskDefinition, VolumeKind,
};

/// Serializes mounting and unmounting shared volumes with the "is anyone still using
/// it" check, so a task starting never finds a shared mount that is about to go.
static SHARED_MOUNTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A shared named volume, as `berth volume ls` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInfo {
    pub name: String,
    /// The driver berth uses (always `local`).
    pub driver: String,
    pub scope: String,
    /// The host directory containers see.
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// Epoch seconds; absent for a directory berth found without a record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<f64>,
    /// Whether a task that is not STOPPED uses it.
    pub in_use: bool,
    /// Whether its driver options are mounted on `path` now.
    pub mounted: bool,
}

/// What the `volumes` table keeps in `doc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VolumeDoc {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    driver_opts: BTreeMap<String, String>,
    /// The driver the definition named, when it was not `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requested_driver: Option<String>,
}

/// A task volume's host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostVolume {
    pub path: PathBuf,
    /// Whether an empty one takes the image's content at the path it is mounted over,
    /// as Docker fills a new volume (a user's host path is never written to).
    pub copy_up: bool,
}

/// Host directories for every declared volume. Mounts it makes for the task (driver
/// options of task-scoped volumes) are appended to `mounts`, to be unmounted at
/// cleanup. Runs on a blocking thread; the error is the task's `stoppedReason`.
pub(crate) fn prepare(
    engine: &Engine,
    def: &TaskDefinition,
    data_dir: &Path,
    mounts: &mut Vec<PathBuf>,
) -> Result<BTreeMap<String, HostVolume>, String> {
    let mut out = BTreeMap::new();
    for v in &def.volumes {
        let name = v.name().to_owned();
        let copy_up = matches!(v.kind(), VolumeKind::Scratch | VolumeKind::Named(_));
        let path = match v.kind() {
            VolumeKind::HostPath(p) => files::prepare_host_path(p)
                .map_err(|e| format!("CannotCreateContainerError: volume {name}: {e}"))?,
            VolumeKind::Scratch | VolumeKind::RemoteStandIn => scratch_dir(data_dir, &name)?,
            VolumeKind::Named(cfg) => match cfg.scope() {
                Scope::Task => {
                    let dir = scratch_dir(data_dir, &name)?;
                    if let Some(m) = DriverMount::parse(&local_driver_opts(cfg))
                        .map_err(|e| format!("CannotCreateVolumeError: volume {name}: {e}"))?
                    {
                        m.mount_on(&dir)
                            .map_err(|e| format!("CannotCreateVolumeError: volume {name}: {e}"))?;
                        mounts.push(dir.clone());
                    }
                    dir
                }
                Scope::Shared => ensure_shared(engine, &name, cfg)?,
            },
        };
        out.insert(name, HostVolume { path, copy_up });
    }
    Ok(out)
}

/// One container, for [`resolve_mounts`].
pub(crate) struct MountSource<'a> {
    pub def: &'a ContainerDefinition,
    /// Its mounted rootfs (image content for copy-up and anonymous volumes).
    pub rootfs: &'a Path,
    /// The image's `VOLUME`s.
    pub image_volumes: Vec<String>,
    /// Where its anonymous volumes go (removed with the task).
    pub anonymous_dir: PathBuf,
}

/// Every container's volume mounts, in this order of precedence for a path: its own
/// `mountPoints`, then what `volumesFrom` replays (the source's mounts, resolved the
/// same way, so chains work whatever the order of the definitions; `readOnly` forces
/// read-only, otherwise the source's mode is kept), then an anonymous volume for each
/// image `VOLUME` left, filled from the image.
pub(crate) fn resolve_mounts(
    ctrs: &[MountSource<'_>],
    volumes: &BTreeMap<String, HostVolume>,
) -> Result<Vec<Vec<BindMount>>, String> {
    let mut r = Resolver {
        ctrs,
        volumes,
        done: vec![None; ctrs.len()],
        visiting: vec![false; ctrs.len()],
    };
    (0..ctrs.len()).map(|i| r.resolve(i)).collect()
}

struct Resolver<'a, 'b> {
    ctrs: &'a [MountSource<'b>],
    volumes: &'a BTreeMap<String, HostVolume>,
    done: Vec<Option<Vec<BindMount>>>,
    visiting: Vec<bool>,
}

impl Resolver<'_, '_> {
    fn resolve(&mut self, i: usize) -> Result<Vec<BindMount>, String> {
        if let Some(m) = &self.done[i] {
            return Ok(m.clone());
        }
        let src = &self.ctrs[i];
        let name = src.def.name.as_deref().unwrap_or_default();
        if self.visiting[i] {
            return Err(format!(
                "CannotCreateContainerError: volumesFrom of container {name} forms a cycle"
            ));
        }
        self.visiting[i] = true;
        let covered =
            |own: &[BindMount], path: &str| own.iter().any(|m| same_path(&m.destination, path));
        let mut own: Vec<BindMount> = Vec::new();
        for mp in &src.def.mount_points {
            let (Some(vol), Some(dst)) = (&mp.source_volume, &mp.container_path) else {
                continue;
            };
            let host = self.volumes.get(vol).ok_or_else(|| {
                format!("CannotCreateContainerError: container {name}: volume {vol} is not defined")
            })?;
            if host.copy_up && is_empty_dir(&host.path) {
                files::populate_volume(src.rootfs, dst, &host.path).map_err(|e| {
                    format!("CannotCreateContainerError: copying {dst} of container {name} into volume {vol}: {e}")
                })?;
            }
            own.push(BindMount {
                source: host.path.clone(),
                destination: dst.clone(),
                readonly: mp.read_only.unwrap_or(false),
            });
        }
        for vf in &src.def.volumes_from {
            let Some(from) = vf.source_container.as_deref() else {
                continue;
            };
            let j = self
                .ctrs
                .iter()
                .position(|c| c.def.name.as_deref() == Some(from))
                .ok_or_else(|| {
                    format!("CannotCreateContainerError: container {name}: volumesFrom names unknown container {from}")
                })?;
            for m in self.resolve(j)? {
                if covered(&own, &m.destination) {
                    continue;
                }
                own.push(BindMount {
                    readonly: vf.read_only.unwrap_or(false) || m.readonly,
                    ..m
                });
            }
        }
        for path in &src.image_volumes {
            if covered(&own, path) {
                continue;
            }
            let digest = hex::encode(sha2::Sha256::digest(path.as_bytes()));
            let dir = src.anonymous_dir.join(&digest[..16]);
            if !dir.exists() {
                std::fs::create_dir_all(&dir).map_err(|e| {
                    format!(
                        "CannotCreateContainerError: creating {}: {e}",
                        dir.display()
                    )
                })?;
                files::populate_volume(src.rootfs, path, &dir).map_err(|e| {
                    format!("CannotCreateContainerError: populating volume {path} of container {name}: {e}")
                })?;
            }
            own.push(BindMount {
                source: dir,
                destination: path.clone(),
                readonly: false,
            });
        }
        self.visiting[i] = false;
        self.done[i] = Some(own.clone());
        Ok(own)
    }
}

fn same_path(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

fn scratch_dir(data_dir: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = data_dir.join("volumes").join(name);
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("CannotCreateVolumeError: creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The shared volume `name`: created (and recorded) if missing and allowed, its driver
/// options mounted if they are not.
fn ensure_shared(
    engine: &Engine,
    name: &str,
    cfg: &DockerVolumeConfiguration,
) -> Result<PathBuf, String> {
    let _guard = SHARED_MOUNTS.blocking_lock();
    let root = engine.config().paths.volumes_dir().join(name);
    let dir = root.join("_data");
    let n = name.to_owned();
    let row = engine
        .db()
        .call_blocking(move |db| read_row(db.conn(), &n))
        .map_err(|e| format!("CannotCreateVolumeError: volume {name}: {e}"))?;
    let opts = local_driver_opts(cfg);
    let want = DriverMount::parse(&opts)
        .map_err(|e| format!("CannotCreateVolumeError: volume {name}: {e}"))?;
    match &row {
        Some((doc, _)) if doc.driver_opts != opts => {
            return Err(format!(
                "CannotCreateVolumeError: shared volume {name} exists with driverOpts {:?}, \
                 the task definition asks for {:?}; remove it (berth volume rm {name}) or use \
                 the same options",
                doc.driver_opts, opts
            ));
        }
        _ => {}
    }
    if !dir.exists() {
        if cfg.autoprovision == Some(false) {
            return Err(format!(
                "CannotCreateVolumeError: shared volume {name} does not exist and autoprovision is false"
            ));
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("CannotCreateVolumeError: creating {}: {e}", dir.display()))?;
    }
    if row.is_none() {
        let doc = VolumeDoc {
            labels: cfg.labels.clone(),
            driver_opts: opts.clone(),
            requested_driver: cfg.driver.clone().filter(|d| d != "local"),
        };
        let n = name.to_owned();
        engine
            .db()
            .call_blocking(move |db| insert_row(db.conn(), &n, &doc))
            .map_err(|e| format!("CannotCreateVolumeError: recording volume {name}: {e}"))?;
    }
    if let Some(m) = want
        && !is_mounted(&dir)
    {
        m.mount_on(&dir)
            .map_err(|e| format!("CannotCreateVolumeError: volume {name}: {e}"))?;
    }
    Ok(dir)
}

/// The driver options berth applies: those of the `local` driver (the default). Another
/// driver's options mean something else and are ignored (registration warns).
fn local_driver_opts(cfg: &DockerVolumeConfiguration) -> BTreeMap<String, String> {
    match cfg.driver.as_deref() {
        None | Some("" | "local") => cfg.driver_opts.clone(),
        Some(_) => BTreeMap::new(),
    }
}

/// Names of the shared volumes a task's stored definition uses.
fn shared_names(definition: &serde_json::Value) -> Vec<String> {
    let Ok(def) = serde_json::from_value::<TaskDefinition>(definition.clone()) else {
        return Vec::new();
    };
    def.volumes
        .iter()
        .filter(|v| matches!(v.kind(), VolumeKind::Named(c) if c.scope() == Scope::Shared))
        .map(|v| v.name().to_owned())
        .collect()
}

/// At cleanup of task `rec`: unmounts the driver options of the shared volumes it used
/// that no other live task uses any more.
pub(crate) async fn release_shared(engine: &Engine, rec: &TaskRecord) {
    let names = shared_names(&rec.runtime.definition);
    if names.is_empty() {
        return;
    }
    let _guard = SHARED_MOUNTS.lock().await;
    let id = rec.id.clone();
    let users = engine
        .db()
        .call(move |db| repo::active_tasks(db.conn()))
        .await
        .map(|tasks| {
            tasks
                .iter()
                .filter(|t| t.id != id)
                .flat_map(|t| shared_names(&t.runtime.definition))
                .collect::<Vec<_>>()
        });
    let Ok(users) = users else { return };
    let root = engine.config().paths.volumes_dir();
    let unused: Vec<PathBuf> = names
        .into_iter()
        .filter(|n| !users.contains(n))
        .map(|n| root.join(n).join("_data"))
        .collect();
    let _ = tokio::task::spawn_blocking(move || {
        for dir in unused {
            if is_mounted(&dir) {
                tracing::debug!(path = %dir.display(), "unmounting unused shared volume");
                sys::unmount(&dir);
            }
        }
    })
    .await;
}

impl Engine {
    /// Shared named volumes: the recorded ones, and directories found without a record
    /// (made by an older berth).
    pub async fn list_volumes(&self) -> Result<Vec<VolumeInfo>, EngineError> {
        let (rows, active) = self
            .db()
            .call(|db| Ok::<_, DbError>((read_rows(db.conn())?, repo::active_tasks(db.conn())?)))
            .await?;
        let used: Vec<String> = active
            .iter()
            .flat_map(|t| shared_names(&t.runtime.definition))
            .collect();
        let root = self.config().paths.volumes_dir();
        let mut out: BTreeMap<String, VolumeInfo> = BTreeMap::new();
        for (name, doc, created_at) in rows {
            let path = root.join(&name).join("_data");
            out.insert(
                name.clone(),
                VolumeInfo {
                    in_use: used.contains(&name),
                    mounted: is_mounted(&path),
                    name,
                    driver: "local".into(),
                    scope: "shared".into(),
                    path,
                    labels: doc.labels,
                    driver_opts: doc.driver_opts,
                    created_at: Some(created_at),
                },
            );
        }
        for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if out.contains_key(&name) || !e.path().is_dir() {
                continue;
            }
            let path = e.path().join("_data");
            out.insert(
                name.clone(),
                VolumeInfo {
                    in_use: used.contains(&name),
                    mounted: is_mounted(&path),
                    name,
                    driver: "local".into(),
                    scope: "shared".into(),
                    path,
                    labels: BTreeMap::new(),
                    driver_opts: BTreeMap::new(),
                    created_at: None,
                },
            );
        }
        Ok(out.into_values().collect())
    }

    /// Removes a shared volume and its content; refused while a live task uses it.
    pub async fn remove_volume(&self, name: &str) -> Result<VolumeInfo, EngineError> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(EngineError::Invalid(format!(
                "invalid volume name {name:?}"
            )));
        }
        let _guard = SHARED_MOUNTS.lock().await;
        let vol = self
            .list_volumes()
            .await?
            .into_iter()
            .find(|v| v.name == name)
            .ok_or_else(|| EngineError::NotFound(format!("no shared volume named {name}")))?;
        if vol.in_use {
            return Err(EngineError::Conflict(format!(
                "volume {name} is in use by a task that is not stopped"
            )));
        }
        let root = self.config().paths.volumes_dir().join(name);
        let data = vol.path.clone();
        tokio::task::spawn_blocking(move || {
            if is_mounted(&data) {
                sys::unmount(&data);
            }
            // Never delete through a mount (a bind-mounted host directory).
            if is_mounted(&data) {
                return Err(std::io::Error::other(format!(
                    "{} is still mounted",
                    data.display()
                )));
            }
            match std::fs::remove_dir_all(&root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        })
        .await
        .expect("volume removal thread")
        .map_err(EngineError::io(format!("removing volume {name}")))?;
        let n = name.to_owned();
        self.db().call(move |db| delete_row(db.conn(), &n)).await?;
        Ok(vol)
    }
}

fn is_mounted(dir: &Path) -> bool {
    sys::mounts_under(dir).iter().any(|m| m == dir)
}

fn read_row(conn: &rusqlite::Connection, name: &str) -> Result<Option<(VolumeDoc, f64)>, DbError> {
    use rusqlite::OptionalExtension;
    let row: Option<(String, f64)> = conn
        .query_row(
            "SELECT doc, created_at FROM volumes WHERE name = ?1 AND scope = 'shared'",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .context("reading a volume")?;
    Ok(row.map(|(doc, at)| (serde_json::from_str(&doc).unwrap_or_default(), at)))
}

fn read_rows(conn: &rusqlite::Connection) -> Result<Vec<(String, VolumeDoc, f64)>, DbError> {
    let mut stmt = conn
        .prepare("SELECT name, doc, created_at FROM volumes WHERE scope = 'shared' ORDER BY name")
        .context("listing volumes")?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, f64>(2)?,
            ))
        })
        .context("listing volumes")?
        .collect::<Result<Vec<_>, _>>()
        .context("listing volumes")?;
    Ok(rows
        .into_iter()
        .map(|(n, doc, at)| (n, serde_json::from_str(&doc).unwrap_or_default(), at))
        .collect())
}

fn insert_row(conn: &rusqlite::Connection, name: &str, doc: &VolumeDoc) -> Result<(), DbError> {
    let doc = serde_json::to_string(doc).unwrap_or_else(|_| "{}".into());
    conn.execute(
        "INSERT OR IGNORE INTO volumes (name, scope, driver, doc, created_at) \
         VALUES (?1, 'shared', 'local', ?2, ?3)",
        rusqlite::params![name, doc, now()],
    )
    .context("recording a volume")?;
    Ok(())
}

fn delete_row(conn: &rusqlite::Connection, name: &str) -> Result<(), DbError> {
    conn.execute("DELETE FROM volumes WHERE name = ?1", [name])
        .context("removing a volume")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_volume_names_come_from_the_stored_definition() {
        let def = serde_json::json!({
            "family": "f",
            "containerDefinitions": [{"name": "a", "image": "i"}],
            "volumes": [
                {"name": "s", "dockerVolumeConfiguration": {"scope": "shared"}},
                {"name": "t", "dockerVolumeConfiguration": {"scope": "task"}},
                {"name": "h", "host": {"sourcePath": "/x"}},
                {"name": "e"}
            ]
        });
        assert_eq!(shared_names(&def), ["s"]);
        assert!(shared_names(&serde_json::json!({"bad": 1})).is_empty());
    }

    fn ctr(v: serde_json::Value) -> ContainerDefinition {
        serde_json::from_value(v).unwrap()
    }

    fn bind(src: &Path, dst: &str, readonly: bool) -> BindMount {
        BindMount {
            source: src.to_owned(),
            destination: dst.into(),
            readonly,
        }
    }

    /// One mount source per definition, without image volumes.
    fn sources<'a>(
        defs: &'a [ContainerDefinition],
        rootfs: &'a Path,
        anonymous_dir: &Path,
    ) -> Vec<MountSource<'a>> {
        defs.iter()
            .map(|def| MountSource {
                def,
                rootfs,
                image_volumes: vec![],
                anonymous_dir: anonymous_dir.to_owned(),
            })
            .collect()
    }

    #[test]
    fn volumes_from_resolves_chains_in_any_order_with_modes_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir(&rootfs).unwrap();
        let vol = |n: &str| {
            let path = dir.path().join(n);
            std::fs::create_dir(&path).unwrap();
            (
                n.to_owned(),
                HostVolume {
                    path,
                    copy_up: true,
                },
            )
        };
        let volumes: BTreeMap<String, HostVolume> =
            [vol("data"), vol("cfg"), vol("mine")].into_iter().collect();
        let anonymous_dir = dir.path().join("anon");
        let defs = [
            // last takes from middle, which takes read-only from source.
            ctr(
                serde_json::json!({"name": "last", "volumesFrom": [{"sourceContainer": "middle"}]}),
            ),
            ctr(serde_json::json!({"name": "middle",
                "volumesFrom": [{"sourceContainer": "source", "readOnly": true}],
                "mountPoints": [{"sourceVolume": "cfg", "containerPath": "/cfg"}]})),
            ctr(serde_json::json!({"name": "source",
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]})),
            // own mount point wins over the replayed one at /data.
            ctr(serde_json::json!({"name": "own",
                "mountPoints": [{"sourceVolume": "mine", "containerPath": "/data/"}],
                "volumesFrom": [{"sourceContainer": "source"}]})),
        ];
        let m = resolve_mounts(&sources(&defs, &rootfs, &anonymous_dir), &volumes).unwrap();
        let (data, cfg, mine) = (
            &volumes["data"].path,
            &volumes["cfg"].path,
            &volumes["mine"].path,
        );
        assert_eq!(m[2], [bind(data, "/data", false)]);
        assert_eq!(m[1], [bind(cfg, "/cfg", false), bind(data, "/data", true)]);
        assert_eq!(m[0], [bind(cfg, "/cfg", false), bind(data, "/data", true)]);
        assert_eq!(m[3], [bind(mine, "/data/", false)]);

        let cyclic = [
            ctr(serde_json::json!({"name": "a", "volumesFrom": [{"sourceContainer": "b"}]})),
            ctr(serde_json::json!({"name": "b", "volumesFrom": [{"sourceContainer": "a"}]})),
        ];
        let err = resolve_mounts(&sources(&cyclic, &rootfs, &anonymous_dir), &volumes).unwrap_err();
        assert!(err.contains("forms a cycle"), "{err}");
    }

    #[test]
    fn image_volumes_and_copy_up_fill_only_empty_berth_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        std::fs::create_dir_all(rootfs.join("srv/www")).unwrap();
        std::fs::write(rootfs.join("srv/www/index.html"), "hi").unwrap();
        std::fs::create_dir_all(rootfs.join("var/lib/db")).unwrap();
        std::fs::write(rootfs.join("var/lib/db/seed"), "s").unwrap();
        let host = dir.path().join("host");
        let named = dir.path().join("named");
        std::fs::create_dir(&host).unwrap();
        std::fs::create_dir(&named).unwrap();
        let volumes: BTreeMap<String, HostVolume> = [
            (
                "h".to_owned(),
                HostVolume {
                    path: host.clone(),
                    copy_up: false,
                },
            ),
            (
                "n".to_owned(),
                HostVolume {
                    path: named.clone(),
                    copy_up: true,
                },
            ),
        ]
        .into_iter()
        .collect();
        let defs = [
            ctr(serde_json::json!({"name": "a", "mountPoints": [
                {"sourceVolume": "n", "containerPath": "/srv/www"}]})),
            ctr(serde_json::json!({"name": "b", "mountPoints": [
                {"sourceVolume": "h", "containerPath": "/srv/www"}]})),
        ];
        let anon = dir.path().join("anon");
        let sources: Vec<MountSource<'_>> = defs
            .iter()
            .map(|def| MountSource {
                def,
                rootfs: &rootfs,
                image_volumes: vec!["/var/lib/db".into(), "/srv/www".into()],
                anonymous_dir: anon.join(def.name.as_deref().unwrap()),
            })
            .collect();
        let m = resolve_mounts(&sources, &volumes).unwrap();
        assert_eq!(
            std::fs::read_to_string(named.join("index.html")).unwrap(),
            "hi"
        );
        assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
        // /srv/www is covered by the mount point; /var/lib/db gets an anonymous volume.
        for (i, c) in ["a", "b"].iter().enumerate() {
            assert_eq!(m[i].len(), 2, "{:?}", m[i]);
            let anon_vol = &m[i][1];
            assert_eq!(anon_vol.destination, "/var/lib/db");
            assert!(anon_vol.source.starts_with(anon.join(c)));
            assert_eq!(
                std::fs::read_to_string(anon_vol.source.join("seed")).unwrap(),
                "s"
            );
        }
    }
}
