//! The task metadata endpoint (v3 and v4): what a container reads at
//! `$ECS_CONTAINER_METADATA_URI_V4` and `…/task`, in the ECS agent's JSON shape
//! (PascalCase members, RFC 3339 times, `Limits.CPU` of a task in vCPUs), and `…/stats`
//! and `…/task/stats` in Docker's stats shape (snake_case, nanoseconds and bytes)
//! from the containers' cgroups, with the task interface's counters as `networks`
//! and the agent's `network_rate_stats` (`netstats.rs`).
//!
//! The endpoint id in the path is the container's `metadata_ids` entry,
//! `<task-id>-<random>`: the task id finds the record, the random part keeps one
//! container from reading another task's metadata by guessing.

use serde_json::{Map, Value, json};

use std::collections::HashMap;

use super::netstats::{self, ContainerLink, LinkCounters};
use super::{Engine, EngineError};
use crate::cgroup::CgroupStats;
use crate::state::model::{Container, Tag, TaskRecord};

/// What a metadata request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataView {
    /// `/v4/{id}`: the calling container.
    Container,
    /// `/v4/{id}/task`: the task and all its containers.
    Task,
    /// `/v4/{id}/taskWithTags`: the task, with its tags.
    TaskWithTags,
    /// `/v4/{id}/stats`: the calling container's resource usage, as Docker's stats.
    Stats,
    /// `/v4/{id}/task/stats`: every container's, by `DockerId`.
    TaskStats,
}

impl Engine {
    /// The metadata document for endpoint id `endpoint_id`, or `None` when no task's
    /// container has that id.
    pub async fn task_metadata(
        &self,
        endpoint_id: &str,
        view: MetadataView,
    ) -> Result<Option<Value>, EngineError> {
        let Some(task_id) = super::arn::task_of_endpoint_id(endpoint_id) else {
            return Ok(None);
        };
        let Some(rec) = self.task(task_id).await? else {
            return Ok(None);
        };
        let Some(name) = rec
            .runtime
            .metadata_ids
            .iter()
            .find(|(_, id)| id.as_str() == endpoint_id)
            .map(|(name, _)| name.clone())
        else {
            return Ok(None);
        };
        Ok(Some(match view {
            MetadataView::Container => rec
                .task
                .containers
                .iter()
                .find(|c| c.name == name)
                .map(|c| container_doc(&rec, c))
                .unwrap_or(Value::Null),
            MetadataView::Task => task_doc(&rec, None),
            MetadataView::TaskWithTags => {
                let tags = self.list_tags(&rec.task.task_arn).await?;
                task_doc(&rec, Some(&tags))
            }
            MetadataView::Stats => self
                .stats_docs(&rec, vec![name])
                .await
                .pop()
                .map_or(Value::Null, |(_, doc)| doc),
            MetadataView::TaskStats => {
                let names = rec.task.containers.iter().map(|c| c.name.clone()).collect();
                Value::Object(self.stats_docs(&rec, names).await.into_iter().collect())
            }
        }))
    }

    /// Docker's stats documents of containers `names`, by `DockerId`: one pass over
    /// their cgroups, the host's CPU time and the network counters on a blocking thread.
    async fn stats_docs(&self, rec: &TaskRecord, names: Vec<String>) -> Vec<(String, Value)> {
        let cgroups = self.inner().cgroups.clone();
        let task_id = rec.id.clone();
        let links: Vec<Vec<ContainerLink>> = names
            .iter()
            .map(|n| netstats::container_links(rec.runtime.network.as_ref(), n))
            .collect();
        let any_links = links.iter().any(|l| !l.is_empty());
        let (stats, system_ns, host_links) = tokio::task::spawn_blocking(move || {
            let stats: Vec<(String, CgroupStats)> = names
                .into_iter()
                .map(|n| {
                    let s = cgroups.stats(&cgroups.container_path(&task_id, &n));
                    (n, s)
                })
                .collect();
            let host_links = if any_links {
                netstats::read_host_links()
            } else {
                HashMap::new()
            };
            (stats, system_cpu_ns(), host_links)
        })
        .await
        .unwrap_or_default();
        let now = super::now();
        let read = rfc3339(Some(now)).unwrap_or_default();
        stats
            .into_iter()
            .zip(links)
            .map(|((name, s), links)| {
                let id = docker_id(rec, &name);
                let networks: Vec<(String, LinkCounters)> = links
                    .iter()
                    .filter_map(|l| {
                        let host_end = host_links.get(&l.host_interface)?;
                        Some((l.interface.clone(), host_end.seen_from_peer()))
                    })
                    .collect();
                let reading = Reading {
                    read: &read,
                    at: now,
                    system_ns,
                    networks: &networks,
                };
                let doc = self.stats_doc(&id, &reading, &s);
                (id, doc)
            })
            .collect()
    }

    /// Docker's stats document of the container `id`, with its previous reading as
    /// `precpu_stats` (how clients compute CPU percentages) and the network rates
    /// since then.
    fn stats_doc(&self, id: &str, now: &Reading<'_>, stats: &CgroupStats) -> Value {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_stats = json!({
            "cpu_usage": {
                "total_usage": stats.cpu_total_ns.unwrap_or(0),
                "usage_in_kernelmode": stats.cpu_system_ns.unwrap_or(0),
                "usage_in_usermode": stats.cpu_user_ns.unwrap_or(0),
            },
            "system_cpu_usage": now.system_ns.unwrap_or(0),
            "online_cpus": cpus,
        });
        let totals = now.networks.iter().fold((0u64, 0u64), |(rx, tx), (_, c)| {
            (rx + c.rx_bytes, tx + c.tx_bytes)
        });
        let prev = remember_reading(
            id,
            Remembered {
                read: now.read.to_owned(),
                at: now.at,
                cpu_stats: cpu_stats.clone(),
                net_bytes: totals,
            },
        );
        let (preread, precpu) = match &prev {
            Some(p) => (p.read.clone(), p.cpu_stats.clone()),
            None => (
                "0001-01-01T00:00:00Z".to_owned(),
                json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                       "system_cpu_usage": 0, "online_cpus": cpus}),
            ),
        };
        let mut doc = json!({
            "read": now.read,
            "preread": preread,
            "name": format!("/berth-{id}"),
            "id": id,
            "num_procs": 0,
            "pids_stats": {"current": stats.pids.unwrap_or(0)},
            "cpu_stats": cpu_stats,
            "precpu_stats": precpu,
            "memory_stats": {
                "usage": stats.memory_usage.unwrap_or(0),
                "max_usage": stats.memory_max_usage.unwrap_or(0),
                "limit": stats.memory_limit.unwrap_or_else(|| self.host().memory_mib * 1024 * 1024),
                "stats": {},
            },
            "blkio_stats": {},
        });
        if !now.networks.is_empty() {
            let networks: Map<String, Value> = now
                .networks
                .iter()
                .map(|(name, c)| (name.clone(), c.to_docker()))
                .collect();
            doc["networks"] = Value::Object(networks);
            // The first reading has nothing to compare with: zero, as the agent's.
            let (rx, tx) = prev.map_or((0.0, 0.0), |p| {
                netstats::rates(p.net_bytes, totals, now.at - p.at)
            });
            doc["network_rate_stats"] = json!({"rx_bytes_per_sec": rx, "tx_bytes_per_sec": tx});
        }
        doc
    }
}

/// One pass of readings shared by the stats documents of a request.
struct Reading<'a> {
    read: &'a str,
    /// `read` as seconds since the epoch.
    at: f64,
    system_ns: Option<u64>,
    /// The container's interfaces (name inside the task's namespace) and counters.
    networks: &'a [(String, LinkCounters)],
}

/// What a container's previous stats reading leaves for the next one.
#[derive(Debug, Clone)]
struct Remembered {
    read: String,
    at: f64,
    cpu_stats: Value,
    /// Bytes received and sent over all its interfaces.
    net_bytes: (u64, u64),
}

/// Stores `reading` as container `id`'s last and returns the one before, if any.
/// Process-wide, like the ECS agent's stats engine; entries of containers that are
/// gone are dropped when the map grows.
fn remember_reading(id: &str, reading: Remembered) -> Option<Remembered> {
    use std::sync::{Mutex, OnceLock};
    static LAST: OnceLock<Mutex<HashMap<String, Remembered>>> = OnceLock::new();
    let mut last = LAST
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if last.len() > 4096 {
        last.clear();
    }
    last.insert(id.to_owned(), reading)
}

/// The host's CPU time in nanoseconds, as Docker's `system_cpu_usage`: the first
/// line of /proc/stat in USER_HZ ticks (100 per second).
fn system_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: u64 = line
        .split_whitespace()
        .filter_map(|v| v.parse::<u64>().ok())
        .sum();
    Some(ticks * 10_000_000)
}

/// A container's id in the runtime (libcontainer's state directory name): stable
/// from before the container starts, unlike `runtimeId`.
fn docker_id(rec: &TaskRecord, name: &str) -> String {
    format!("{}-{}", rec.id, name)
}

fn rfc3339(epoch: Option<f64>) -> Option<String> {
    let t = epoch?;
    let secs = t.floor() as i64;
    let nanos = ((t - t.floor()) * 1e9) as u32;
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

/// Inserts `key` when `value` is not null.
fn put(m: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let v = value.into();
    if !v.is_null() {
        m.insert(key.to_owned(), v);
    }
}

/// The definition of container `name` in the task's effective definition.
fn definition_of<'a>(rec: &'a TaskRecord, name: &str) -> Option<&'a Value> {
    rec.runtime.definition["containerDefinitions"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == name)
}

fn revision(rec: &TaskRecord) -> String {
    rec.task
        .task_definition_arn
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned()
}

pub(crate) fn container_doc(rec: &TaskRecord, c: &Container) -> Value {
    let def = definition_of(rec, &c.name).cloned().unwrap_or(Value::Null);
    let runtime_id = docker_id(rec, &c.name);
    let mut labels: Map<String, Value> =
        def["dockerLabels"].as_object().cloned().unwrap_or_default();
    for (k, v) in [
        ("com.amazonaws.ecs.cluster", rec.task.cluster_arn.clone()),
        ("com.amazonaws.ecs.container-name", c.name.clone()),
        ("com.amazonaws.ecs.task-arn", rec.task.task_arn.clone()),
        (
            "com.amazonaws.ecs.task-definition-family",
            rec.family.clone(),
        ),
        ("com.amazonaws.ecs.task-definition-version", revision(rec)),
    ] {
        labels.insert(k.to_owned(), v.into());
    }
    let mut limits = Map::new();
    put(&mut limits, "CPU", def["cpu"].as_u64().unwrap_or(0));
    put(&mut limits, "Memory", def["memory"].clone());
    let mut m = Map::new();
    put(&mut m, "DockerId", runtime_id.clone());
    put(&mut m, "Name", c.name.clone());
    put(&mut m, "DockerName", format!("berth-{runtime_id}"));
    put(&mut m, "Image", c.image.clone());
    put(&mut m, "ImageID", c.image_digest.clone());
    let ports: Vec<Value> = c
        .network_bindings
        .iter()
        .map(|b| {
            json!({"ContainerPort": b.container_port, "Protocol": b.protocol,
                   "HostPort": b.host_port, "HostIp": b.bind_ip})
        })
        .collect();
    if !ports.is_empty() {
        put(&mut m, "Ports", ports);
    }
    put(&mut m, "Labels", labels);
    put(&mut m, "DesiredStatus", rec.task.desired_status.clone());
    put(&mut m, "KnownStatus", c.last_status.clone());
    put(&mut m, "ExitCode", c.exit_code);
    put(&mut m, "Limits", limits);
    put(&mut m, "CreatedAt", rfc3339(Some(rec.task.created_at)));
    put(&mut m, "StartedAt", rfc3339(rec.task.started_at));
    if c.last_status == "STOPPED" {
        put(&mut m, "FinishedAt", rfc3339(rec.task.execution_stopped_at));
    }
    // The agent shows RestartCount for containers with a restart policy.
    if def["restartPolicy"]["enabled"] == true {
        put(&mut m, "RestartCount", c.restart_count);
    }
    put(&mut m, "Type", "NORMAL");
    put(&mut m, "ContainerARN", c.container_arn.clone());
    if let Some(h) = &c.health {
        let mut health = Map::new();
        put(&mut health, "status", h.status.clone());
        put(&mut health, "statusSince", rfc3339(h.status_since));
        put(&mut health, "output", h.output.clone());
        put(&mut m, "Health", health);
    }
    let logs = &def["logConfiguration"];
    put(&mut m, "LogDriver", logs["logDriver"].clone());
    put(&mut m, "LogOptions", logs["options"].clone());
    let networks: Vec<Value> = c
        .network_interfaces
        .iter()
        .map(|i| {
            json!({"NetworkMode": rec.runtime.network_mode,
                   "IPv4Addresses": [i.private_ipv4_address]})
        })
        .collect();
    if rec.runtime.network_mode == "host" {
        put(&mut m, "Networks", json!([{"NetworkMode": "host"}]));
    } else if !networks.is_empty() {
        put(&mut m, "Networks", networks);
    }
    Value::Object(m)
}

fn task_doc(rec: &TaskRecord, tags: Option<&[Tag]>) -> Value {
    let t = &rec.task;
    let mut limits = Map::new();
    if let Some(units) = t.cpu.as_deref().and_then(|c| c.parse::<f64>().ok()) {
        put(&mut limits, "CPU", units / 1024.0);
    }
    if let Some(mib) = t.memory.as_deref().and_then(|m| m.parse::<u64>().ok()) {
        put(&mut limits, "Memory", mib);
    }
    let mut m = Map::new();
    put(&mut m, "Cluster", t.cluster_arn.clone());
    put(&mut m, "TaskARN", t.task_arn.clone());
    put(&mut m, "Family", rec.family.clone());
    put(&mut m, "Revision", revision(rec));
    put(&mut m, "DesiredStatus", t.desired_status.clone());
    put(&mut m, "KnownStatus", t.last_status.clone());
    put(
        &mut m,
        "Containers",
        t.containers
            .iter()
            .map(|c| container_doc(rec, c))
            .collect::<Vec<_>>(),
    );
    if !limits.is_empty() {
        put(&mut m, "Limits", limits);
    }
    put(&mut m, "PullStartedAt", rfc3339(t.pull_started_at));
    put(&mut m, "PullStoppedAt", rfc3339(t.pull_stopped_at));
    put(
        &mut m,
        "ExecutionStoppedAt",
        rfc3339(t.execution_stopped_at),
    );
    put(&mut m, "AvailabilityZone", t.availability_zone.clone());
    put(&mut m, "LaunchType", t.launch_type.clone());
    if !t.group.is_empty() {
        put(&mut m, "Group", t.group.clone());
        if let Some(service) = t.group.strip_prefix("service:") {
            put(&mut m, "ServiceName", service);
        }
    }
    if let Some(tags) = tags {
        let task_tags: Map<String, Value> = tags
            .iter()
            .map(|tag| (tag.key.clone(), Value::from(tag.value.clone())))
            .collect();
        put(&mut m, "TaskTags", task_tags);
        put(&mut m, "ContainerInstanceTags", Map::new());
    }
    put(&mut m, "FaultInjectionEnabled", false);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc_with_nanoseconds() {
        assert_eq!(
            rfc3339(Some(1_601_599_386.5)).as_deref(),
            Some("2020-10-02T00:43:06.500000000Z")
        );
        assert_eq!(rfc3339(None), None);
    }
}
