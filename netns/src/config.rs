//! The settings of berth's task networking.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::ids::IFNAME_MAX;
use crate::ipam::{Ipv4Net, Subnet};

/// How the host end of a task's veth pair is removed at teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VethTeardown {
    /// Detach it from the bridge and take it down at once (about 0.3 ms), and let the kernel
    /// destroy the pair with the namespace, asynchronously (about 25 ms later). The bridge
    /// never keeps a port to a stopped task, even if something still pins the namespace;
    /// a leftover of the same name is deleted synchronously when it is in the way, and
    /// reconciliation deletes stragglers.
    #[default]
    Detach,
    /// Delete it synchronously (`RTM_DELLINK`): gone when teardown returns, but each delete
    /// waits for RCU grace periods (20–40 ms on the reference machine).
    Delete,
}

/// What berth may do about `net.ipv4.ip_forward`, which task egress needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardingPolicy {
    /// Turn it on when the bridge is prepared, if it is off (as Docker, Podman and the CNI
    /// bridge plugin do), and leave it on afterwards: tasks may outlive the daemon, and other
    /// software may rely on it by then. The change is logged and reported.
    #[default]
    Enable,
    /// Never change it; fail with a clear error if it is off (for hosts whose sysctls are
    /// managed elsewhere).
    Require,
}

/// The settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// The bridge tasks are attached to (created if missing).
    pub bridge: String,
    /// The task subnet; its first address is the gateway, on the bridge.
    pub subnet: Ipv4Net,
    /// Where namespaces are bind-mounted (the daemon uses `<run-root>/netns`).
    pub netns_dir: PathBuf,
    /// The host address published ports listen on: `127.0.0.1` (the default: reachable from
    /// this machine only), `0.0.0.0` (every address of the host, for edge boxes), or one
    /// address of the host.
    pub publish_address: Ipv4Addr,
    /// The name of berth's nftables table (family `ip`).
    pub nft_table: String,
    /// MTU of the bridge and veths; `None` keeps the kernel's default (1500).
    pub mtu: Option<u32>,
    /// How host veths are removed.
    pub veth_teardown: VethTeardown,
    /// What berth may do about IPv4 forwarding.
    pub ip_forward: ForwardingPolicy,
    /// The port of the daemon's task metadata endpoint on the gateway, which also serves
    /// task role credentials: tasks' connections to `169.254.170.2:80` go there. `None`:
    /// that address is not served.
    pub credentials_port: Option<u16>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            bridge: "berth0".into(),
            subnet: Ipv4Net::const_new(Ipv4Addr::new(10, 229, 0, 0), 20)
                .unwrap_or_else(|| unreachable!()),
            netns_dir: PathBuf::from("/run/berth/netns"),
            publish_address: Ipv4Addr::LOCALHOST,
            nft_table: "berth".into(),
            mtu: None,
            veth_teardown: VethTeardown::default(),
            ip_forward: ForwardingPolicy::default(),
            credentials_port: None,
        }
    }
}

/// An invalid setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network setting {field}: {reason}")]
pub struct ConfigError {
    /// The setting.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl ConfigError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl NetworkConfig {
    /// The defaults with namespaces under `netns_dir`.
    pub fn new(netns_dir: impl Into<PathBuf>) -> Self {
        NetworkConfig {
            netns_dir: netns_dir.into(),
            ..NetworkConfig::default()
        }
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<Subnet, ConfigError> {
        let bad = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.bridge.is_empty()
            || self.bridge.len() > IFNAME_MAX
            || self.bridge == "."
            || self.bridge == ".."
            || !self
                .bridge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad(
                "bridge",
                "an interface name of 1 to 15 letters, digits, '-', '_' or '.'",
            );
        }
        if self.bridge.starts_with(crate::ids::VETH_PREFIX) {
            return bad(
                "bridge",
                "must not start with \"bth\", the prefix of task interfaces",
            );
        }
        let subnet = Subnet::new(self.subnet).map_err(|e| ConfigError {
            field: "subnet",
            reason: e.to_string(),
        })?;
        if !self.netns_dir.is_absolute() {
            return bad("netns_dir", "must be an absolute path");
        }
        let p = self.publish_address;
        if p.is_multicast() || p.is_broadcast() || self.subnet.contains(p) {
            return bad(
                "publish_address",
                "a host address, 127.0.0.1 or 0.0.0.0 (not multicast, broadcast or in the task subnet)",
            );
        }
        if self.nft_table.is_empty()
            || self.nft_table.len() > 64
            || !self
                .nft_table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad("nft_table", "1 to 64 letters, digits, '-' or '_'");
        }
        if let Some(mtu) = self.mtu
            && !(576..=65535).contains(&mtu)
        {
            return bad("mtu", "between 576 and 65535");
        }
        Ok(subnet)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let c = NetworkConfig::new("/run/berth/netns");
        c.validate().unwrap();
        assert_eq!(c.subnet.to_string(), "10.229.0.0/20");
        assert_eq!(c.publish_address, Ipv4Addr::LOCALHOST);
        assert_eq!(c.veth_teardown, VethTeardown::Detach);
    }

    #[test]
    fn bad_settings_name_the_field() {
        let base = NetworkConfig::new("/run/berth/netns");
        let cases: Vec<(NetworkConfig, &str)> = vec![
            (
                NetworkConfig {
                    bridge: "a-very-long-bridge-name".into(),
                    ..base.clone()
                },
                "bridge",
            ),
            (
                NetworkConfig {
                    bridge: "bth0".into(),
                    ..base.clone()
                },
                "bridge",
            ),
            (
                NetworkConfig {
                    subnet: "10.0.0.0/31".parse().unwrap(),
                    ..base.clone()
                },
                "subnet",
            ),
            (
                NetworkConfig {
                    netns_dir: "relative".into(),
                    ..base.clone()
                },
                "netns_dir",
            ),
            (
                NetworkConfig {
                    publish_address: Ipv4Addr::new(224, 0, 0, 1),
                    ..base.clone()
                },
                "publish_address",
            ),
            (
                NetworkConfig {
                    publish_address: Ipv4Addr::new(10, 229, 0, 9),
                    ..base.clone()
                },
                "publish_address",
            ),
            (
                NetworkConfig {
                    nft_table: "a b".into(),
                    ..base.clone()
                },
                "nft_table",
            ),
            (
                NetworkConfig {
                    mtu: Some(100),
                    ..base.clone()
                },
                "mtu",
            ),
        ];
        for (c, field) in cases {
            let e = c.validate().unwrap_err();
            assert_eq!(e.field, field);
            assert!(
                e.to_string()
                    .starts_with(&format!("invalid network setting {field}: "))
            );
        }
    }

    #[test]
    fn config_parses_with_defaults_and_rejects_unknown_fields() {
        let c: NetworkConfig =
            serde_json::from_str(r#"{"publish_address":"0.0.0.0","veth_teardown":"delete"}"#)
                .unwrap();
        assert_eq!(c.publish_address, Ipv4Addr::UNSPECIFIED);
        assert_eq!(c.veth_teardown, VethTeardown::Delete);
        assert_eq!(c.bridge, "berth0");
        let e = serde_json::from_str::<NetworkConfig>(r#"{"bridge_name":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("bridge_name"), "{e}");
    }
}
