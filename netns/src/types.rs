//! The request a task's network is set up from and the record of what was set up.
//!
//! [`TaskNetwork`] is `serde`: the daemon persists it as JSON with the task, shows parts of it
//! in `describe-tasks`, and hands it back for teardown and reconciliation.

use std::fmt;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ipam::Ipv4Net;
use crate::ports::{PortHold, PortMappingRequest, Protocol};

/// An ECS network mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkMode {
    /// One namespace per task, with its own address on berth's bridge (berth's default).
    Awsvpc,
    /// One namespace per container, each with its own address on the bridge; dynamic host
    /// ports.
    Bridge,
    /// The host's namespace; port mappings are informational.
    Host,
    /// One namespace per task with loopback only.
    None,
}

impl NetworkMode {
    /// ECS's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Awsvpc => "awsvpc",
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }

    /// Whether endpoints of this mode have a namespace of their own.
    pub fn has_namespace(self) -> bool {
        !matches!(self, NetworkMode::Host)
    }

    /// Whether endpoints of this mode are attached to the bridge with an address.
    pub fn has_interface(self) -> bool {
        matches!(self, NetworkMode::Awsvpc | NetworkMode::Bridge)
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NetworkMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "awsvpc" => Ok(NetworkMode::Awsvpc),
            "bridge" => Ok(NetworkMode::Bridge),
            "host" => Ok(NetworkMode::Host),
            "none" => Ok(NetworkMode::None),
            other => Err(format!("invalid network mode {other:?}")),
        }
    }
}

/// What to set up for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskNetworkRequest {
    /// The task id (ECS's 32 hex digits; letters, digits, `-` and `_` are accepted). Its first
    /// characters name the host-side interfaces (see the crate docs).
    pub task_id: String,
    /// The network mode.
    pub mode: NetworkMode,
    /// One endpoint (a namespace) per task in awsvpc and none mode, one per container in
    /// bridge mode, and in host mode one per container carrying its informational mappings.
    pub endpoints: Vec<EndpointRequest>,
}

/// One network namespace to set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointRequest {
    /// `"task"` for the task-wide endpoint, or the container name in bridge and host mode.
    pub name: String,
    /// Where to bind-mount the namespace: a file directly inside the configured netns
    /// directory (the daemon passes `<run-root>/netns/<task-id>`). Absent in host mode.
    #[serde(default)]
    pub netns_path: Option<PathBuf>,
    /// The address leased to the endpoint (awsvpc and bridge mode), inside the subnet.
    #[serde(default)]
    pub address: Option<Ipv4Addr>,
    /// The port mappings published through this endpoint.
    #[serde(default)]
    pub port_mappings: Vec<PortMappingRequest>,
}

/// The record of a task's network: what `describe-tasks` shows and what teardown and
/// reconciliation need.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskNetwork {
    /// The task id.
    pub task_id: String,
    /// The network mode.
    pub mode: NetworkMode,
    /// One per endpoint of the request, in order.
    pub endpoints: Vec<Endpoint>,
}

impl TaskNetwork {
    /// Every network binding of the task, across endpoints.
    pub fn bindings(&self) -> impl Iterator<Item = &NetworkBinding> {
        self.endpoints
            .iter()
            .flat_map(|e| e.network_bindings.iter())
    }
}

/// One endpoint that was set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// `"task"` or the container name.
    pub name: String,
    /// The bind-mounted namespace; containers join it (`None` in host mode).
    #[serde(default)]
    pub netns_path: Option<PathBuf>,
    /// The interface attached to the bridge (awsvpc and bridge mode).
    #[serde(default)]
    pub interface: Option<NetworkInterface>,
    /// The published port mappings.
    #[serde(default)]
    pub network_bindings: Vec<NetworkBinding>,
}

/// The task's "elastic network interface": what ECS shows as the `ElasticNetworkInterface`
/// attachment and in `containers[].networkInterfaces`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkInterface {
    /// The attachment id (a random UUID).
    pub attachment_id: String,
    /// `eni-` and 17 hex digits, random per task.
    pub network_interface_id: String,
    /// The MAC address of the task's `eth0`, e.g. `02:b7:0a:e5:00:02`.
    pub mac_address: String,
    /// The task's address.
    #[serde(rename = "privateIPv4Address")]
    pub private_ipv4_address: Ipv4Addr,
    /// `subnet-` and 17 hex digits, stable for a given bridge and subnet.
    pub subnet_id: String,
    /// The subnet, e.g. `10.229.0.0/20`.
    pub subnet_cidr: Ipv4Net,
    /// The default gateway (the bridge's address).
    pub gateway: Ipv4Addr,
    /// The prefix length of the subnet.
    pub prefix_length: u8,
    /// The name of the interface inside the namespace (`eth0`).
    pub interface_name: String,
    /// The host end of the veth pair (`bth…`).
    pub host_interface: String,
    /// The bridge the host end is attached to.
    pub bridge: String,
}

/// A published port, as ECS's `networkBindings` shows it, plus where it leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkBinding {
    /// The container that declared the mapping.
    pub container_name: String,
    /// The host address the port is published on.
    #[serde(rename = "bindIP")]
    pub bind_ip: Ipv4Addr,
    /// The port inside the task.
    pub container_port: u16,
    /// The port on the host.
    pub host_port: u16,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The endpoint address traffic is forwarded to; `None` in host mode, where nothing is
    /// forwarded.
    #[serde(default)]
    pub target: Option<Ipv4Addr>,
}

/// The result of a successful setup: the record, and the sockets holding the published host
/// ports (hand them to the long-lived holder, e.g. the task's shim; closing the last copy
/// releases the port).
#[derive(Debug)]
pub struct TaskSetup {
    /// What was set up.
    pub network: TaskNetwork,
    /// One hold per published host port, in the order of the bindings.
    pub port_holds: Vec<PortHold>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_record_round_trips_with_ecs_field_names() {
        let net = TaskNetwork {
            task_id: "8f03e41243824aea923aca126495f665".into(),
            mode: NetworkMode::Awsvpc,
            endpoints: vec![Endpoint {
                name: "task".into(),
                netns_path: Some("/run/berth/netns/8f03e41243824aea923aca126495f665".into()),
                interface: Some(NetworkInterface {
                    attachment_id: "0c4f3a43-8b1e-4b7e-9a59-4fd1a0c2d9ab".into(),
                    network_interface_id: "eni-0123456789abcdef0".into(),
                    mac_address: "02:b7:0a:e5:00:02".into(),
                    private_ipv4_address: Ipv4Addr::new(10, 229, 0, 2),
                    subnet_id: "subnet-0123456789abcdef0".into(),
                    subnet_cidr: "10.229.0.0/20".parse().unwrap(),
                    gateway: Ipv4Addr::new(10, 229, 0, 1),
                    prefix_length: 20,
                    interface_name: "eth0".into(),
                    host_interface: "bth8f03e412430".into(),
                    bridge: "berth0".into(),
                }),
                network_bindings: vec![NetworkBinding {
                    container_name: "web".into(),
                    bind_ip: Ipv4Addr::LOCALHOST,
                    container_port: 80,
                    host_port: 80,
                    protocol: Protocol::Tcp,
                    target: Some(Ipv4Addr::new(10, 229, 0, 2)),
                }],
            }],
        };
        let j = serde_json::to_value(&net).unwrap();
        let iface = &j["endpoints"][0]["interface"];
        assert_eq!(iface["privateIPv4Address"], "10.229.0.2");
        assert_eq!(iface["networkInterfaceId"], "eni-0123456789abcdef0");
        assert_eq!(iface["subnetCidr"], "10.229.0.0/20");
        let b = &j["endpoints"][0]["networkBindings"][0];
        assert_eq!(b["bindIP"], "127.0.0.1");
        assert_eq!(b["protocol"], "tcp");
        assert_eq!(j["mode"], "awsvpc");
        let back: TaskNetwork = serde_json::from_value(j).unwrap();
        assert_eq!(back, net);
    }

    #[test]
    fn requests_reject_unknown_fields() {
        let e = serde_json::from_str::<TaskNetworkRequest>(
            r#"{"taskId":"a","mode":"awsvpc","endpoints":[],"subnets":[]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("subnets"), "{e}");
        assert_eq!(
            "bridge".parse::<NetworkMode>().unwrap(),
            NetworkMode::Bridge
        );
        assert!("nat".parse::<NetworkMode>().is_err());
    }
}
