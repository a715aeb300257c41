//! The errors of [`NetworkManager`](crate::NetworkManager): one enum over every step of
//! host preparation and task setup, and the list a best-effort teardown collects.

use std::net::Ipv4Addr;

use crate::config::ConfigError;
use crate::error::ErrorKind;
use crate::firewall::FirewallError;
use crate::ipam::Ipv4Net;
use crate::netns::NetnsError;
use crate::ports::PortError;
use crate::route::RouteError;
use crate::sysctl::SysctlError;
use crate::validate::RequestError;

/// Errors of task networking.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request is invalid.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// A host port could not be chosen or held.
    #[error(transparent)]
    Ports(#[from] PortError),
    /// A network namespace operation failed.
    #[error(transparent)]
    Netns(#[from] NetnsError),
    /// A link, address or route operation failed.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// berth's nftables table could not be changed.
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    /// A kernel setting could not be read or changed.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
    /// The configured bridge name is taken by another kind of interface.
    #[error("interface {name} exists and is a {kind}, not a bridge; choose another bridge name")]
    NotABridge {
        /// The interface.
        name: String,
        /// Its kind.
        kind: String,
    },
    /// The bridge disappeared after it was prepared.
    #[error(
        "bridge {0} is missing (deleted by another tool?); it is re-created on the next attempt"
    )]
    BridgeMissing(String),
    /// The task subnet overlaps a route of the host.
    #[error("subnet {subnet} overlaps the host route to {route}; choose another subnet")]
    SubnetOverlap {
        /// berth's subnet.
        subnet: Ipv4Net,
        /// The host's route.
        route: Ipv4Net,
    },
    /// A host interface name berth wants belongs to another task.
    #[error("host interface {name} already belongs to task {owner}")]
    InterfaceTaken {
        /// The interface.
        name: String,
        /// The owning task.
        owner: String,
    },
    /// The UDP conntrack entries of a stopped task could not be removed.
    #[error("forget the UDP connections of {address}")]
    Conntrack {
        /// The task's address.
        address: Ipv4Addr,
        /// The kernel's answer.
        #[source]
        source: crate::netlink::NetlinkError,
    },
    /// An interface berth just created could not be found.
    #[error("interface {0} vanished while being set up")]
    Vanished(String),
}

impl NetworkError {
    /// The error's class, for the caller to map onto its own (exhaustively).
    pub fn class(&self) -> ErrorKind {
        match self {
            NetworkError::Config(e) => e.class(),
            NetworkError::Request(e) => e.class(),
            NetworkError::Ports(e) => e.class(),
            NetworkError::Netns(e) => e.class(),
            NetworkError::Route(e) => e.class(),
            NetworkError::Firewall(e) => e.class(),
            NetworkError::Sysctl(e) => e.class(),
            NetworkError::NotABridge { .. }
            | NetworkError::SubnetOverlap { .. }
            | NetworkError::InterfaceTaken { .. } => ErrorKind::Conflict,
            NetworkError::BridgeMissing(_)
            | NetworkError::Vanished(_)
            | NetworkError::Conntrack { .. } => ErrorKind::Internal,
        }
    }
}

/// Everything that went wrong during a best-effort teardown (netavark's error list): every
/// step was attempted regardless.
#[derive(Debug, thiserror::Error)]
#[error("tear down network of task {task_id}: {}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct TeardownError {
    /// The task.
    pub task_id: String,
    /// The failures, in order.
    pub errors: Vec<NetworkError>,
}

impl TeardownError {
    /// The class of the first failure.
    pub fn class(&self) -> ErrorKind {
        self.errors
            .first()
            .map_or(ErrorKind::Internal, NetworkError::class)
    }
}
