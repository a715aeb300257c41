//! This host as ECS's single container instance: its id, registered and remaining
//! resources.

use std::path::Path;

use serde_json::{Value, json};

use super::{Engine, EngineError, now};
use crate::db::DbError;
use crate::paths::Paths;
use crate::state::repo;

/// CPU (in ECS units, 1024 per CPU) and memory (MiB) the host offers to tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostResources {
    pub cpu_units: u64,
    pub memory_mib: u64,
}

/// The host's CPUs and memory, as ECS registers an instance.
pub fn host_resources() -> HostResources {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    HostResources {
        cpu_units: cpus * 1024,
        memory_mib: memory_kib / 1024,
    }
}

/// A stable id for this host (32 hex digits), kept in the data root.
pub(crate) fn container_instance_id(paths: &Paths) -> std::io::Result<String> {
    let file = paths.data_root().join("instance-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim();
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(id.to_owned());
        }
    }
    let id = super::arn::random_hex(16);
    write_atomic(&file, id.as_bytes())?;
    Ok(id)
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// What a task reserves: task-level cpu/memory when set, else the sum over its
/// containers (memory, or memoryReservation when memory is absent), as ECS schedules.
pub(crate) fn task_reservation(def: &crate::taskdef::ValidatedTaskDefinition) -> (u64, u64) {
    let containers = def.containers();
    let cpu = match def.task_cpu_units() {
        Some(c) => u64::from(c),
        None => containers
            .iter()
            .map(|c| c.cpu.unwrap_or(0).max(0) as u64)
            .sum(),
    };
    let mem = match def.task_memory_mib() {
        Some(m) => u64::from(m),
        None => containers
            .iter()
            .map(|c| c.memory.or(c.memory_reservation).unwrap_or(0).max(0) as u64)
            .sum(),
    };
    (cpu, mem)
}

/// Resources reserved by the tasks in `active` (what is not STOPPED).
pub(crate) fn reserved(active: &[crate::state::model::TaskRecord]) -> (u64, u64) {
    active.iter().fold((0, 0), |(c, m), t| {
        (
            c + t.runtime.reserved_cpu,
            m + t.runtime.reserved_memory_mib,
        )
    })
}

pub(crate) async fn container_instance(
    engine: &Engine,
    cluster: &str,
) -> Result<Value, EngineError> {
    let host = engine.host();
    let (active, ports) = engine
        .db()
        .call(|db| {
            Ok::<_, DbError>((
                repo::active_tasks(db.conn())?,
                repo::host_ports_in_use(db.conn())?,
            ))
        })
        .await?;
    let in_cluster: Vec<_> = active.iter().filter(|t| t.cluster == cluster).collect();
    let running = in_cluster
        .iter()
        .filter(|t| t.task.last_status == "RUNNING")
        .count();
    let pending = in_cluster.len() - running;
    let (cpu, mem) = reserved(&active);
    let port_list: Vec<String> = ports
        .iter()
        .filter(|(p, _)| p.protocol == "tcp")
        .map(|(p, _)| p.port.to_string())
        .collect();
    let udp_list: Vec<String> = ports
        .iter()
        .filter(|(p, _)| p.protocol == "udp")
        .map(|(p, _)| p.port.to_string())
        .collect();
    let resources = |cpu: u64, mem: u64, tcp: Vec<String>, udp: Vec<String>| {
        json!([
            {"name": "CPU", "type": "INTEGER", "integerValue": cpu, "doubleValue": 0.0, "longValue": 0},
            {"name": "MEMORY", "type": "INTEGER", "integerValue": mem, "doubleValue": 0.0, "longValue": 0},
            {"name": "PORTS", "type": "STRINGSET", "stringSetValue": tcp},
            {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": udp},
        ])
    };
    let info = engine.cgroup_info();
    Ok(json!({
        "containerInstanceArn": engine.container_instance_arn(cluster),
        "ec2InstanceId": format!("i-{}", &engine.inner().instance_id[..17]),
        "version": 1,
        "versionInfo": {"agentVersion": env!("CARGO_PKG_VERSION"), "agentHash": "berth", "dockerVersion": "berth (no Docker)"},
        // berth reserves no host port for itself (ECS's agent lists 22 and its own
        // ports here); remaining PORTS are the ports tasks hold.
        "registeredResources": resources(host.cpu_units, host.memory_mib, vec![], vec![]),
        "remainingResources": resources(host.cpu_units.saturating_sub(cpu), host.memory_mib.saturating_sub(mem), port_list, udp_list),
        "status": "ACTIVE",
        "agentConnected": true,
        "runningTasksCount": running,
        "pendingTasksCount": pending,
        "registeredAt": engine.inner().started_at.min(now()),
        "attributes": [
            {"name": "ecs.os-type", "value": "linux"},
            {"name": "ecs.cpu-architecture", "value": std::env::consts::ARCH},
            {"name": "ecs.capability.task-eni"},
            {"name": "berth.cgroup-version", "value": format!("{:?}", info.version).to_lowercase()},
            {"name": "berth.cgroup-controllers", "value": info.controllers.join(",")},
        ],
        "attachments": [],
        "tags": [],
    }))
}
