//! Per-task networking for berth, over netlink: a network namespace per task (awsvpc), a
//! bridge, veth pairs, addresses and routes, egress NAT and published ports in one nftables
//! table of berth's own, and the `bridge`, `host` and `none` modes.
//!
//! # Use
//!
//! ```no_run
//! use berth_netns::{NetworkConfig, NetworkManager, TaskNetworkRequest, EndpointRequest, NetworkMode};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = NetworkManager::new(NetworkConfig::new("/run/berth/netns"))?;
//! manager.reconcile(&[])?; // on daemon start, with the recorded networks of live tasks
//! // the caller leases the address (berth keeps leases in SQLite)
//! let address = manager.subnet().allocate(|_| false, None)?;
//! let setup = manager.setup_task(&TaskNetworkRequest {
//!     task_id: "8f03e41243824aea923aca126495f665".into(),
//!     mode: NetworkMode::Awsvpc,
//!     endpoints: vec![EndpointRequest {
//!         name: "task".into(),
//!         netns_path: Some("/run/berth/netns/8f03e41243824aea923aca126495f665".into()),
//!         address: Some(address),
//!         port_mappings: vec![],
//!     }],
//! })?;
//! // persist `setup.network` (serde), hand `setup.port_holds` to the task's shim, … and later:
//! manager.teardown_task(&setup.network)?;
//! # Ok(()) }
//! ```
//!
//! The caller owns the state: it leases addresses ([`Subnet::allocate`]) and either lets
//! setup choose dynamic host ports (bridge mode, reported in the bindings) or chooses and
//! records them first ([`pick_ephemeral_port`], then passes them as host ports); it persists the
//! [`TaskNetwork`] records, keeps the [`PortHold`]s open for as long as a task runs (the
//! per-task shim, which outlives daemon restarts, is the natural holder) and passes the live
//! records to [`NetworkManager::reconcile`] when it starts.
//!
//! Every call is synchronous and must come from a thread in the host's network namespace that
//! may block (tokio's `spawn_blocking`). No long-lived thread ever changes namespace: the
//! inside of a task namespace is configured through a netlink socket opened in it by a
//! throwaway thread.
//!
//! The bridge, berth's nftables table and `net.ipv4.ip_forward` are prepared by the first setup
//! that needs them (awsvpc or bridge mode) or by `reconcile` when a live task needs them or
//! berth prepared them before; a host that only runs `host` and `none` tasks is left alone.
//! Call [`NetworkManager::reconcile`] at daemon start, before any setup, and not concurrently
//! with setups of tasks missing from its list.
//!
//! # Cost
//!
//! Setting up and tearing down one awsvpc task with one published port takes about 2 ms on the
//! reference machine (2 vCPUs), against 20–28 ms for the same steps with `ip`/`nft` commands
//! and about 140 ms for netavark; `bench/netns.sh` prints the figures. Per task, berth's own
//! changes are O(1): one namespace, one veth, one nftables transaction adding map elements;
//! no rule is added per task.
//!
//! # Naming scheme
//!
//! * Bridge: `berth0` (setting), with the gateway, the subnet's first address
//!   (`10.229.0.1/20` by default; see [`ipam`] for why that subnet) and a fixed MAC
//!   (`02:b7:` + gateway address).
//! * Namespace: the file the caller names (`<run-root>/netns/<task-id>`), bind-mounted.
//! * Host end of a veth: `bth` + the first ten letters or digits of the task id + the
//!   endpoint's index in two hex digits (`bth8f03e4124300`), so `ip link` shows which task it
//!   serves. Its alias records the owner, `berth:<bridge>:<task-id>:<endpoint>`, which is what
//!   teardown and reconciliation trust.
//! * Task end: `eth0`, created directly inside the namespace, MAC `02:b7:` + its address.
//! * nftables: table `ip berth` (setting); published ports are elements of its `publish` map,
//!   commented `<task-id>/<endpoint>`. The table's layout is documented in [`firewall`].
//!
//! # Teardown and the veth-delete trap
//!
//! Deleting a veth waits for RCU grace periods (20–40 ms here), and deleting only the
//! namespace leaves the pair to be destroyed asynchronously — still attached to the bridge if
//! anything pins the namespace, and with its name taken for a while. berth's default
//! ([`VethTeardown::Detach`]) detaches the host end from the bridge and downs it
//! synchronously (0.3 ms), then unmounts the namespace so the kernel destroys the pair; a
//! leftover that is in the way of a new setup is deleted synchronously, and reconciliation
//! deletes stragglers. [`VethTeardown::Delete`] deletes synchronously instead.

mod config;
mod conntrack;
mod error;
pub mod files;
pub mod firewall;
mod ids;
pub mod ipam;
mod manager;
mod netlink;
mod netns;
mod network_error;
mod nft;
mod pool;
mod ports;
mod reconcile;
mod route;
mod spare;
mod sys;
mod sysctl;
mod types;
mod validate;

pub use config::{ConfigError, ForwardingPolicy, NetworkConfig, VethTeardown};
pub use error::ErrorKind;
pub use files::{FilesError, HostDns, HostsEntry, ResolvConf};
pub use firewall::{CREDENTIALS_ADDRESS, FirewallError};
pub use ids::VETH_PREFIX;
pub use ipam::{IpamError, Ipv4Net, Subnet};
pub use manager::{HostReport, NetworkError, NetworkManager, TASK_INTERFACE, TeardownError};
pub use netlink::NetlinkError;
pub use netns::{InsideError, NetnsError, run_in_namespace};
pub use nft::NftError;
pub use ports::{
    EPHEMERAL_PORTS, PortError, PortHold, PortMappingRequest, Protocol, hold_host_port,
    host_port_available, pick_ephemeral_port,
};
pub use reconcile::ReconcileReport;
pub use route::RouteError;
pub use sysctl::SysctlError;
pub use types::{
    Endpoint, EndpointRequest, NetworkBinding, NetworkInterface, NetworkMode, TaskNetwork,
    TaskNetworkRequest, TaskSetup,
};
pub use validate::RequestError;
