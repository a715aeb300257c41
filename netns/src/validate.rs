//! Validation of a setup request, before anything is applied. Pure: it looks at the request
//! and the settings only.

use std::collections::BTreeSet;

use crate::config::NetworkConfig;
use crate::error::ErrorKind;
use crate::ids::{valid_endpoint_name, valid_task_id};
use crate::ipam::{IpamError, Subnet};
use crate::ports::{self, PortError};
use crate::types::{NetworkMode, TaskNetworkRequest};

/// A request that breaks a rule; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A field is missing, malformed or not allowed in this mode.
    #[error("invalid {field}: {reason}")]
    Field {
        /// The field, e.g. `endpoints[0].netnsPath`.
        field: String,
        /// Why.
        reason: String,
    },
    /// An address is not a task address of the subnet.
    #[error("invalid {field}")]
    Address {
        /// The field.
        field: String,
        /// Why.
        #[source]
        source: IpamError,
    },
    /// A port mapping breaks ECS's rules (the message is ECS's).
    #[error(transparent)]
    Ports(#[from] PortError),
}

impl RequestError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        match self {
            RequestError::Field { .. } | RequestError::Address { .. } => ErrorKind::Invalid,
            RequestError::Ports(e) => e.class(),
        }
    }
}

fn field(field: impl Into<String>, reason: impl Into<String>) -> RequestError {
    RequestError::Field {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Checks `req` against the settings; see the field docs of [`TaskNetworkRequest`].
pub(crate) fn validate(
    config: &NetworkConfig,
    subnet: &Subnet,
    req: &TaskNetworkRequest,
) -> Result<(), RequestError> {
    if !valid_task_id(&req.task_id) {
        return Err(field("taskId", "1 to 64 letters, digits, '-' or '_'"));
    }
    let n = req.endpoints.len();
    match req.mode {
        NetworkMode::Awsvpc | NetworkMode::None if n != 1 => {
            return Err(field(
                "endpoints",
                format!("{} mode has exactly one endpoint, got {n}", req.mode),
            ));
        }
        NetworkMode::Bridge if n == 0 => {
            return Err(field(
                "endpoints",
                "bridge mode needs one endpoint per container",
            ));
        }
        _ if n > 255 => return Err(field("endpoints", "at most 255 endpoints")),
        _ => {}
    }
    let (mut names, mut paths, mut addrs) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (i, ep) in req.endpoints.iter().enumerate() {
        let f = |name: &str| format!("endpoints[{i}].{name}");
        if !valid_endpoint_name(&ep.name) {
            return Err(field(f("name"), "1 to 255 letters, digits, '-' or '_'"));
        }
        if !names.insert(&ep.name) {
            return Err(field(
                f("name"),
                format!("duplicate endpoint {:?}", ep.name),
            ));
        }
        match (&ep.netns_path, req.mode.has_namespace()) {
            (None, true) => {
                return Err(field(
                    f("netnsPath"),
                    format!("required in {} mode", req.mode),
                ));
            }
            (Some(_), false) => return Err(field(f("netnsPath"), "not allowed in host mode")),
            (Some(p), true) => {
                let ok = p.parent() == Some(config.netns_dir.as_path())
                    && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        !n.starts_with('.')
                            && n.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    });
                if !ok {
                    return Err(field(
                        f("netnsPath"),
                        format!(
                            "must be a plain file name inside {}",
                            config.netns_dir.display()
                        ),
                    ));
                }
                if !paths.insert(p) {
                    return Err(field(f("netnsPath"), "used by two endpoints"));
                }
            }
            (None, false) => {}
        }
        match (ep.address, req.mode.has_interface()) {
            (None, true) => {
                return Err(field(
                    f("address"),
                    format!("required in {} mode", req.mode),
                ));
            }
            (Some(_), false) => {
                return Err(field(
                    f("address"),
                    format!("not allowed in {} mode", req.mode),
                ));
            }
            (Some(a), true) => {
                subnet
                    .check_task_address(a)
                    .map_err(|source| RequestError::Address {
                        field: f("address"),
                        source,
                    })?;
                if !addrs.insert(a) {
                    return Err(field(f("address"), format!("{a} is used by two endpoints")));
                }
            }
            (None, false) => {}
        }
        for (j, m) in ep.port_mappings.iter().enumerate() {
            if !valid_endpoint_name(&m.container_name) {
                return Err(field(
                    format!("endpoints[{i}].portMappings[{j}].containerName"),
                    "1 to 255 letters, digits, '-' or '_'",
                ));
            }
        }
    }
    let all: Vec<_> = req
        .endpoints
        .iter()
        .flat_map(|e| e.port_mappings.iter().cloned())
        .collect();
    ports::validate(req.mode, &all)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::num::NonZeroU16;
    use std::path::PathBuf;

    use super::*;
    use crate::ports::{PortMappingRequest, Protocol};
    use crate::types::EndpointRequest;

    fn cfg() -> (NetworkConfig, Subnet) {
        let c = NetworkConfig::new("/run/berth/netns");
        let s = c.validate().unwrap();
        (c, s)
    }

    fn ep(name: &str, path: Option<&str>, addr: Option<Ipv4Addr>) -> EndpointRequest {
        EndpointRequest {
            name: name.into(),
            netns_path: path.map(PathBuf::from),
            address: addr,
            port_mappings: vec![],
        }
    }

    fn awsvpc() -> TaskNetworkRequest {
        TaskNetworkRequest {
            task_id: "8f03e41243824aea923aca126495f665".into(),
            mode: NetworkMode::Awsvpc,
            endpoints: vec![ep(
                "task",
                Some("/run/berth/netns/8f03e412"),
                Some(Ipv4Addr::new(10, 229, 0, 2)),
            )],
        }
    }

    fn err(req: &TaskNetworkRequest) -> String {
        let (c, s) = cfg();
        validate(&c, &s, req).unwrap_err().to_string()
    }

    #[test]
    fn a_good_awsvpc_request_passes() {
        let (c, s) = cfg();
        validate(&c, &s, &awsvpc()).unwrap();
    }

    #[test]
    fn fields_are_named_in_errors() {
        let mut r = awsvpc();
        r.task_id = "../etc".into();
        assert!(err(&r).starts_with("invalid taskId"));
        let mut r = awsvpc();
        r.endpoints[0].netns_path = Some("/tmp/x".into());
        assert!(
            err(&r).starts_with("invalid endpoints[0].netnsPath"),
            "{}",
            err(&r)
        );
        let mut r = awsvpc();
        r.endpoints[0].netns_path = Some("/run/berth/netns/../x".into());
        assert!(err(&r).contains("netnsPath"));
        let mut r = awsvpc();
        r.endpoints[0].address = Some(Ipv4Addr::new(10, 229, 0, 1));
        assert!(err(&r).starts_with("invalid endpoints[0].address"));
        let mut r = awsvpc();
        r.endpoints[0].address = None;
        assert!(err(&r).contains("required in awsvpc mode"));
        let mut r = awsvpc();
        r.endpoints.push(ep(
            "b",
            Some("/run/berth/netns/b"),
            Some(Ipv4Addr::new(10, 229, 0, 3)),
        ));
        assert!(err(&r).contains("exactly one endpoint"));
    }

    #[test]
    fn modes_allow_what_they_should() {
        let (c, s) = cfg();
        let none = TaskNetworkRequest {
            task_id: "t1".into(),
            mode: NetworkMode::None,
            endpoints: vec![ep("task", Some("/run/berth/netns/t1"), None)],
        };
        validate(&c, &s, &none).unwrap();
        let host = TaskNetworkRequest {
            task_id: "t2".into(),
            mode: NetworkMode::Host,
            endpoints: vec![ep("web", None, None)],
        };
        validate(&c, &s, &host).unwrap();
        let mut bad = host.clone();
        bad.endpoints[0].netns_path = Some("/run/berth/netns/t2".into());
        assert!(
            validate(&c, &s, &bad)
                .unwrap_err()
                .to_string()
                .contains("not allowed in host mode")
        );
        let bridge = TaskNetworkRequest {
            task_id: "t3".into(),
            mode: NetworkMode::Bridge,
            endpoints: vec![
                ep(
                    "a",
                    Some("/run/berth/netns/t3-a"),
                    Some(Ipv4Addr::new(10, 229, 0, 5)),
                ),
                ep(
                    "b",
                    Some("/run/berth/netns/t3-b"),
                    Some(Ipv4Addr::new(10, 229, 0, 5)),
                ),
            ],
        };
        assert!(
            validate(&c, &s, &bridge)
                .unwrap_err()
                .to_string()
                .contains("used by two endpoints")
        );
    }

    #[test]
    fn port_rules_apply_across_endpoints_with_ecs_messages() {
        let mut r = awsvpc();
        r.endpoints[0].port_mappings.push(PortMappingRequest {
            container_name: "web".into(),
            container_port: NonZeroU16::new(80).unwrap(),
            host_port: NonZeroU16::new(8080),
            protocol: Protocol::Tcp,
        });
        assert_eq!(
            err(&r),
            "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
        );
        let (c, s) = cfg();
        assert_eq!(
            validate(&c, &s, &r).unwrap_err().class(),
            ErrorKind::Invalid
        );
    }
}
