//! Where a task's port mappings are published, decided the same way at admission (which
//! reserves the fixed host ports) and at network setup, and the RunTask check for a
//! definition berth cannot run as ECS would.
//!
//! awsvpc and host mode publish a container port as itself (ECS's rule: `hostPort` empty
//! or equal); bridge mode publishes `hostPort`, a dynamic port when it is 0 or absent.
//!
//! A definition without `networkMode` is one ECS validates and runs in bridge mode, so
//! its `hostPort` may differ from `containerPort` and an explicit 0 asks for a dynamic
//! port. berth runs it with one network namespace per task all the same (its containers
//! share localhost), publishing `hostPort` → `containerPort`, an explicit 0 on a dynamic
//! port and an absent `hostPort` as the container port. Two of its containers that map
//! the same container port cannot share one namespace: RunTask refuses that.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicU16, Ordering};

use berth_netns::{EPHEMERAL_PORTS, NetworkMode, Protocol};
use rusqlite::Connection;

use crate::db::DbError;
use crate::state::repo::{self, HostPort};
use crate::taskdef::{PortMapping, ValidatedTaskDefinition, ValidationError, parse_port_range};

/// Where a mapping is published on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostPortPlan {
    /// This port, reserved at admission.
    Fixed(NonZeroU16),
    /// A free ephemeral port, chosen at setup and reported in `networkBindings`.
    Dynamic,
}

/// The container ports of a mapping and where each is published on the host: the one
/// `containerPort`, or every port of a `containerPortRange` — in awsvpc mode each on
/// itself (ECS's rule), under bridge rules each on a dynamic host port; nothing in none
/// mode.
pub(crate) fn host_port_plans(
    def: &ValidatedTaskDefinition,
    mode: NetworkMode,
    pm: &PortMapping,
) -> Vec<(NonZeroU16, HostPortPlan)> {
    let Some(range) = pm.container_port_range.as_deref() else {
        return host_port_plan(def, mode, pm).into_iter().collect();
    };
    let Some((first, last)) = parse_port_range(range) else {
        return Vec::new(); // validation refused it
    };
    let dynamic = match mode {
        NetworkMode::None => return Vec::new(),
        NetworkMode::Bridge => true,
        NetworkMode::Awsvpc => def.definition().network_mode.is_none(),
        NetworkMode::Host => false,
    };
    (first..=last)
        .filter_map(NonZeroU16::new)
        .map(|p| {
            let plan = if dynamic {
                HostPortPlan::Dynamic
            } else {
                HostPortPlan::Fixed(p)
            };
            (p, plan)
        })
        .collect()
}

/// The container port of a `containerPort` mapping and where it is published; `None`
/// in none mode.
fn host_port_plan(
    def: &ValidatedTaskDefinition,
    mode: NetworkMode,
    pm: &PortMapping,
) -> Option<(NonZeroU16, HostPortPlan)> {
    let container = NonZeroU16::new(pm.container_port?.get())?;
    let host = pm.host_port.map(|h| h.get());
    let undeclared = def.definition().network_mode.is_none();
    let plan = match (mode, host) {
        (NetworkMode::None, _) => return None,
        (NetworkMode::Bridge, Some(0) | None) => HostPortPlan::Dynamic,
        (NetworkMode::Awsvpc, Some(0)) if undeclared => HostPortPlan::Dynamic,
        (_, Some(h)) => HostPortPlan::Fixed(NonZeroU16::new(h).unwrap_or(container)),
        (_, None) => HostPortPlan::Fixed(container),
    };
    Some((container, plan))
}

/// Where the search for dynamic host ports resumes, so that a port is not handed out
/// again right after it was released.
static EPHEMERAL_CURSOR: AtomicU16 = AtomicU16::new(*EPHEMERAL_PORTS.start());

/// Chooses a dynamic host port for each of `wanted` and records them for `task_id`, in
/// one database job: never a port another task has recorded (fixed ports of tasks still
/// starting, host-mode ports their containers bind themselves later) nor one bound on
/// this host now. The error names the protocol when the ephemeral range is used up.
pub(crate) fn reserve_dynamic_ports(
    conn: &Connection,
    task_id: &str,
    publish: Ipv4Addr,
    wanted: &[Protocol],
) -> Result<Result<Vec<NonZeroU16>, String>, DbError> {
    let taken = repo::host_ports_in_use(conn)?;
    let mut picked: Vec<HostPort> = Vec::with_capacity(wanted.len());
    for &protocol in wanted {
        let busy = |port: u16| {
            taken
                .iter()
                .map(|(p, _)| p)
                .chain(&picked)
                .any(|p| p.port == port && p.protocol == protocol.as_str())
        };
        let start = EPHEMERAL_CURSOR.load(Ordering::Relaxed);
        let Some(port) = berth_netns::pick_ephemeral_port(start, busy, |port| {
            berth_netns::host_port_available(protocol, SocketAddrV4::new(publish, port))
        }) else {
            return Ok(Err(format!(
                "no free ephemeral host port for {protocol} in {}-{}",
                EPHEMERAL_PORTS.start(),
                EPHEMERAL_PORTS.end()
            )));
        };
        let next = if port == *EPHEMERAL_PORTS.end() {
            *EPHEMERAL_PORTS.start()
        } else {
            port + 1
        };
        EPHEMERAL_CURSOR.store(next, Ordering::Relaxed);
        picked.push(HostPort {
            bind_ip: publish.to_string(),
            protocol: protocol.as_str().to_owned(),
            port,
        });
    }
    if repo::reserve_host_ports(conn, task_id, &picked)?.is_err() {
        // Unreachable while every reservation goes through the database job this runs in.
        return Ok(Err("a host port was taken while being chosen".into()));
    }
    Ok(Ok(picked
        .iter()
        .filter_map(|p| NonZeroU16::new(p.port))
        .collect()))
}

/// RunTask's check of a definition without `networkMode` (validated under bridge rules)
/// that berth runs in one namespace: no container port mapped by two containers.
pub(crate) fn check_shared_namespace(
    def: &ValidatedTaskDefinition,
    mode: NetworkMode,
) -> Result<(), ValidationError> {
    if mode != NetworkMode::Awsvpc || def.definition().network_mode.is_some() {
        return Ok(());
    }
    let mut first: BTreeMap<(&str, u16), (usize, String)> = BTreeMap::new();
    for (i, c) in def.containers().iter().enumerate() {
        for (j, pm) in c.port_mappings.iter().enumerate() {
            let Some(port) = pm.container_port.map(|p| p.get()) else {
                continue;
            };
            let field = format!("containerDefinitions[{i}].portMappings[{j}]");
            match first.get(&(pm.protocol().as_str(), port)) {
                Some((k, other)) if *k != i => {
                    let message = format!(
                        "{field} maps {} container port {port}, which {other} also maps: berth runs a task definition without networkMode with one network namespace for all its containers (set networkMode to bridge to give each container its own)",
                        pm.protocol().as_str()
                    );
                    return Err(ValidationError::Client { field, message });
                }
                Some(_) => {}
                None => {
                    first.insert((pm.protocol().as_str(), port), (i, field));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(v: serde_json::Value) -> ValidatedTaskDefinition {
        crate::taskdef::validate(serde_json::from_value(v).unwrap()).unwrap()
    }

    /// Per mapping: `(container port, fixed host port)` for each port it publishes.
    fn plans(v: serde_json::Value, mode: NetworkMode) -> Vec<Vec<(u16, Option<u16>)>> {
        let d = def(v);
        d.containers()[0]
            .port_mappings
            .iter()
            .map(|pm| {
                host_port_plans(&d, mode, pm)
                    .into_iter()
                    .map(|(c, p)| {
                        let h = match p {
                            HostPortPlan::Fixed(h) => Some(h.get()),
                            HostPortPlan::Dynamic => None,
                        };
                        (c.get(), h)
                    })
                    .collect()
            })
            .collect()
    }

    fn task(mode: Option<&str>, mappings: serde_json::Value) -> serde_json::Value {
        let mut v = serde_json::json!({"family": "f", "containerDefinitions": [
            {"name": "a", "image": "busybox", "memory": 16, "portMappings": mappings}
        ]});
        if let Some(m) = mode {
            v["networkMode"] = m.into();
        }
        v
    }

    #[test]
    fn host_ports_follow_each_mode() {
        let m = serde_json::json!([
            {"containerPort": 80}, {"containerPort": 81, "hostPort": 0},
            {"containerPort": 82, "hostPort": 8082}, {"containerPortRange": "9000-9001"}
        ]);
        let m_static = serde_json::json!([
            {"containerPort": 80}, {"containerPort": 81, "hostPort": 0},
            {"containerPort": 82, "hostPort": 82}
        ]);
        let dynamic_range = vec![(9000, None), (9001, None)];
        assert_eq!(
            plans(task(Some("bridge"), m.clone()), NetworkMode::Bridge),
            [
                vec![(80, None)],
                vec![(81, None)],
                vec![(82, Some(8082))],
                dynamic_range.clone()
            ]
        );
        for mode in ["awsvpc", "host"] {
            assert_eq!(
                plans(task(Some(mode), m_static.clone()), mode.parse().unwrap()),
                [
                    vec![(80, Some(80))],
                    vec![(81, Some(81))],
                    vec![(82, Some(82))]
                ]
            );
        }
        // awsvpc publishes every port of a range on itself.
        assert_eq!(
            plans(
                task(
                    Some("awsvpc"),
                    serde_json::json!([{"containerPortRange": "9000-9002"}])
                ),
                NetworkMode::Awsvpc
            ),
            [vec![
                (9000, Some(9000)),
                (9001, Some(9001)),
                (9002, Some(9002))
            ]]
        );
        // Without networkMode: bridge rules, one namespace per task.
        assert_eq!(
            plans(task(None, m.clone()), NetworkMode::Awsvpc),
            [
                vec![(80, Some(80))],
                vec![(81, None)],
                vec![(82, Some(8082))],
                dynamic_range
            ]
        );
        // none mode publishes nothing.
        assert!(
            plans(task(None, m), NetworkMode::None)
                .iter()
                .all(Vec::is_empty)
        );
    }

    #[test]
    fn dynamic_ports_skip_recorded_and_bound_ports_and_are_recorded() {
        let db = crate::db::Db::open_in_memory().unwrap();
        let conn = db.conn();
        let localhost = Ipv4Addr::LOCALHOST;
        // Another task recorded the port the cursor is at; something on the host has
        // the next one bound.
        let at = EPHEMERAL_CURSOR.load(Ordering::Relaxed);
        let next = if at == *EPHEMERAL_PORTS.end() {
            *EPHEMERAL_PORTS.start()
        } else {
            at + 1
        };
        let recorded = HostPort {
            bind_ip: "0.0.0.0".into(),
            protocol: "tcp".into(),
            port: at,
        };
        repo::reserve_host_ports(conn, "other", &[recorded])
            .unwrap()
            .unwrap();
        let _bound = std::net::TcpListener::bind((localhost, next));
        let ports = reserve_dynamic_ports(conn, "t1", localhost, &[Protocol::Tcp, Protocol::Udp])
            .unwrap()
            .unwrap();
        assert_eq!(ports.len(), 2);
        for p in &ports {
            assert!(EPHEMERAL_PORTS.contains(&p.get()), "{p}");
            assert_ne!(p.get(), at);
        }
        if _bound.is_ok() {
            assert_ne!(ports[0].get(), next);
        }
        let mine: Vec<u16> = repo::host_ports_in_use(conn)
            .unwrap()
            .into_iter()
            .filter(|(_, t)| t == "t1")
            .map(|(p, _)| p.port)
            .collect();
        assert_eq!(mine.len(), 2);
        assert!(ports.iter().all(|p| mine.contains(&p.get())));
    }

    #[test]
    fn a_container_port_mapped_by_two_containers_is_refused_only_without_network_mode() {
        let two = |mode: Option<&str>| {
            let mut v = serde_json::json!({"family": "f", "containerDefinitions": [
                {"name": "a", "image": "busybox", "memory": 16, "portMappings": [{"containerPort": 80, "hostPort": 8080}]},
                {"name": "b", "image": "busybox", "memory": 16, "portMappings": [{"containerPort": 80, "hostPort": 8081}]}
            ]});
            if let Some(m) = mode {
                v["networkMode"] = m.into();
            }
            def(v)
        };
        let e = check_shared_namespace(&two(None), NetworkMode::Awsvpc).unwrap_err();
        assert!(matches!(e, ValidationError::Client { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with(
                "containerDefinitions[1].portMappings[0] maps tcp container port 80, which containerDefinitions[0].portMappings[0] also maps"
            ),
            "{e}"
        );
        check_shared_namespace(&two(Some("bridge")), NetworkMode::Bridge).unwrap();
        // One container mapping its port twice (two host ports) is fine.
        let d = def(task(
            None,
            serde_json::json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 0}]),
        ));
        check_shared_namespace(&d, NetworkMode::Awsvpc).unwrap();
    }
}
