//! A task's network as the driver sets it up: the endpoints its network mode asks for,
//! where each port mapping is published (`netplan`), the dynamic host ports chosen and
//! recorded before setup, and how the result shows on the ECS task (ENI attachment,
//! container interfaces, `networkBindings`).

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use berth_netns::{
    EndpointRequest, NetworkError, NetworkMode, PortError, PortMappingRequest, Protocol,
    TaskNetwork, TaskNetworkRequest,
};

use super::Engine;
use super::netplan::{self, HostPortPlan, host_port_plans};
use crate::db::DbError;
use crate::state::model::{KeyValuePair, NetworkBinding, NetworkInterface, TaskRecord};
use crate::state::repo::{self, HostPort};

/// Setups tried when dynamic host ports chosen for a task were taken before the setup
/// could hold them.
const DYNAMIC_PORT_ATTEMPTS: u32 = 3;

pub(super) async fn setup_network(
    engine: &Engine,
    rec: &TaskRecord,
    addresses: &[Ipv4Addr],
    mode: NetworkMode,
    def: &crate::taskdef::ValidatedTaskDefinition,
) -> Result<(Option<TaskNetwork>, Vec<OwnedFd>), String> {
    let id = rec.id.clone();
    let netns_path = engine.config().paths.netns_dir().join(&id);
    let mapping = |c: &crate::taskdef::ContainerDefinition| -> Vec<PortMappingRequest> {
        c.port_mappings
            .iter()
            .flat_map(|pm| {
                let protocol = if pm.protocol().as_str() == "udp" {
                    Protocol::Udp
                } else {
                    Protocol::Tcp
                };
                host_port_plans(def, mode, pm).into_iter().map(
                    move |(container_port, host_port)| PortMappingRequest {
                        container_name: c.name.clone().unwrap_or_default(),
                        container_port,
                        host_port: match host_port {
                            HostPortPlan::Fixed(p) => Some(p),
                            HostPortPlan::Dynamic => None,
                        },
                        protocol,
                    },
                )
            })
            .collect()
    };
    // The request's mode: the task's, except for a definition without networkMode whose
    // mappings need bridge publishing (see `netplan`): one bridge endpoint for the
    // whole task is the same namespace, veth and address as awsvpc's, with its ports
    // published hostPort → containerPort.
    let mut request_mode = mode;
    let mut endpoints = match mode {
        NetworkMode::Awsvpc | NetworkMode::None => {
            let port_mappings: Vec<PortMappingRequest> =
                def.containers().iter().flat_map(mapping).collect();
            if port_mappings
                .iter()
                .any(|m| m.host_port != Some(m.container_port))
            {
                request_mode = NetworkMode::Bridge;
            }
            vec![EndpointRequest {
                name: "task".into(),
                netns_path: Some(netns_path),
                address: if mode == NetworkMode::Awsvpc {
                    addresses.first().copied()
                } else {
                    None
                },
                port_mappings,
            }]
        }
        NetworkMode::Bridge => def
            .containers()
            .iter()
            .enumerate()
            .map(|(i, c)| EndpointRequest {
                name: c.name.clone().unwrap_or_default(),
                netns_path: Some(engine.config().paths.netns_dir().join(format!("{id}-{i}"))),
                address: addresses.get(i).copied(),
                port_mappings: mapping(c),
            })
            .collect(),
        NetworkMode::Host => def
            .containers()
            .iter()
            .map(|c| EndpointRequest {
                name: c.name.clone().unwrap_or_default(),
                netns_path: None,
                address: None,
                port_mappings: mapping(c),
            })
            .collect(),
    };
    // Dynamic host ports are chosen (and recorded) just before the setup holds them. A
    // process berth does not know of may bind one in between (any socket the kernel gives
    // an ephemeral port, e.g.): the setup then fails on that port, and is tried again
    // with new choices, as Docker would simply have bound another port.
    let dynamic: Vec<(usize, usize)> = endpoints
        .iter()
        .enumerate()
        .flat_map(|(e, ep)| {
            ep.port_mappings
                .iter()
                .enumerate()
                .filter(|(_, m)| m.host_port.is_none() && request_mode == NetworkMode::Bridge)
                .map(move |(m, _)| (e, m))
        })
        .collect();
    let publish = engine.config().network.publish_address;
    let mut attempt = 1;
    let setup = loop {
        let mut chosen = Vec::new();
        if !dynamic.is_empty() {
            let wanted: Vec<Protocol> = dynamic
                .iter()
                .map(|&(e, m)| endpoints[e].port_mappings[m].protocol)
                .collect();
            let tid = id.clone();
            let ports = engine
                .db()
                .call(move |db| netplan::reserve_dynamic_ports(db.conn(), &tid, publish, &wanted))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| {
                    format!(
                        "ResourceInitializationError: failed to configure the task's network: {e}"
                    )
                })?;
            for (&(e, m), port) in dynamic.iter().zip(ports) {
                let mapping = &mut endpoints[e].port_mappings[m];
                mapping.host_port = Some(port);
                chosen.push(HostPort {
                    bind_ip: publish.to_string(),
                    protocol: mapping.protocol.as_str().to_owned(),
                    port: port.get(),
                });
            }
        }
        let req = TaskNetworkRequest {
            task_id: id.clone(),
            mode: request_mode,
            endpoints: endpoints.clone(),
        };
        let net = engine.inner().net.clone();
        let result = tokio::task::spawn_blocking(move || net.setup_task(&req))
            .await
            .expect("network thread");
        match result {
            Ok(setup) => break setup,
            Err(NetworkError::Ports(PortError::InUse { protocol, addr, .. }))
                if attempt < DYNAMIC_PORT_ATTEMPTS
                    && chosen
                        .iter()
                        .any(|p| p.port == addr.port() && p.protocol == protocol.as_str()) =>
            {
                tracing::info!(task = %id, port = addr.port(), %protocol, attempt,
                    "a dynamic host port was taken before the setup held it; choosing again");
                let (tid, taken) = (id.clone(), chosen);
                engine
                    .db()
                    .call(move |db| repo::release_host_ports(db.conn(), &tid, &taken))
                    .await
                    .map_err(|e| e.to_string())?;
                attempt += 1;
            }
            Err(e) => {
                return Err(format!(
                    "ResourceInitializationError: failed to configure the task's network: {}",
                    crate::engine::chain(&e)
                ));
            }
        }
    };
    let network = setup.network.clone();
    let holds: Vec<OwnedFd> = setup.port_holds.into_iter().map(|h| h.fd).collect();

    // Record the network and the ports actually published (dynamic ones included).
    let ports: Vec<HostPort> = network
        .bindings()
        .filter(|b| b.target.is_some())
        .map(|b| HostPort {
            bind_ip: b.bind_ip.to_string(),
            protocol: b.protocol.as_str().to_owned(),
            port: b.host_port,
        })
        .collect();
    let net_json = serde_json::to_value(&network).map_err(|e| e.to_string())?;
    let net2 = network.clone();
    let saved = engine
        .db()
        .call(move |db| {
            let Some(mut rec) = repo::get_task(db.conn(), &id)? else {
                return Ok::<_, DbError>(());
            };
            let _ = repo::reserve_host_ports(db.conn(), &id, &ports)?;
            rec.runtime.network = Some(net_json);
            apply_network(&mut rec, &net2);
            rec.task.version += 1;
            repo::update_task(db.conn(), &rec)
        })
        .await;
    if let Err(e) = saved {
        let net = engine.inner().net.clone();
        let _ = tokio::task::spawn_blocking(move || net.teardown_task(&network)).await;
        return Err(e.to_string());
    }
    Ok((Some(setup.network), holds))
}

/// Shows the network on the ECS task: the ENI attachment, container interfaces and
/// network bindings.
pub(super) fn apply_network(rec: &mut TaskRecord, net: &TaskNetwork) {
    for c in &mut rec.task.containers {
        c.network_bindings = net
            .bindings()
            .filter(|b| b.container_name == c.name)
            .map(|b| NetworkBinding {
                bind_ip: b.bind_ip.to_string(),
                container_port: b.container_port,
                host_port: b.host_port,
                protocol: b.protocol.as_str().to_owned(),
            })
            .collect();
        let iface = net
            .endpoints
            .iter()
            .find(|e| e.name == c.name || e.name == "task")
            .and_then(|e| e.interface.as_ref());
        c.network_interfaces = iface
            .map(|i| {
                vec![NetworkInterface {
                    attachment_id: i.attachment_id.clone(),
                    private_ipv4_address: i.private_ipv4_address.to_string(),
                }]
            })
            .unwrap_or_default();
    }
    if let (Some(att), Some(iface)) = (
        rec.task
            .attachments
            .iter_mut()
            .find(|a| a.kind == "ElasticNetworkInterface"),
        net.endpoints.first().and_then(|e| e.interface.as_ref()),
    ) {
        att.id = iface.attachment_id.clone();
        att.status = "ATTACHED".into();
        let kv = |n: &str, v: String| KeyValuePair {
            name: n.into(),
            value: v,
        };
        att.details = vec![
            kv("subnetId", iface.subnet_id.clone()),
            kv("networkInterfaceId", iface.network_interface_id.clone()),
            kv("macAddress", iface.mac_address.clone()),
            kv(
                "privateDnsName",
                berth_netns::files::default_hostname(iface.private_ipv4_address),
            ),
            kv("privateIPv4Address", iface.private_ipv4_address.to_string()),
        ];
    }
}
