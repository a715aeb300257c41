//! Port mappings: validation in ECS's words, host-port choice, and the sockets that hold
//! published host ports.
//!
//! A published port is *held* by a bound socket that never accepts (TCP: listening with
//! backlog 0, see `sys::bind_port_hold`) on the publish address for
//! as long as the task runs. The hold does two things: binding it is the check that no host
//! process (or other task) has the port, and keeping it open stops any host process from
//! binding the port later and silently losing its traffic to our DNAT. The holds are plain
//! `OwnedFd`s so that a long-lived process — the per-task shim, which outlives daemon
//! restarts — can keep them; the port is released when the last copy is closed.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::num::NonZeroU16;
use std::ops::RangeInclusive;
use std::os::fd::OwnedFd;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::sys;
use crate::types::NetworkMode;

/// The range dynamic host ports come from, as in ECS (`49153–65535`).
pub const EPHEMERAL_PORTS: RangeInclusive<u16> = 49153..=65535;

/// A transport protocol of a port mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (ECS's default).
    Tcp,
    /// UDP.
    Udp,
}

impl Protocol {
    /// `"tcp"` or `"udp"`, as ECS writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IP protocol number (what nftables' `meta l4proto` matches).
    pub(crate) fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }

    /// The protocol with IP protocol number `n`.
    pub(crate) fn from_number(n: u8) -> Option<Self> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = PortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(PortError::Protocol(other.to_owned())),
        }
    }
}

/// A port mapping as a container definition asks for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortMappingRequest {
    /// The container that declared the mapping (bindings are reported per container).
    pub container_name: String,
    /// The port inside the task.
    pub container_port: NonZeroU16,
    /// The host port; absent means "same as the container port" (awsvpc, host) or "a free
    /// ephemeral port" (bridge).
    #[serde(default)]
    pub host_port: Option<NonZeroU16>,
    /// TCP or UDP.
    #[serde(default = "default_protocol")]
    pub protocol: Protocol,
}

fn default_protocol() -> Protocol {
    Protocol::Tcp
}

/// Errors of port mappings. Validation messages are ECS's own wording, verbatim, because the
/// API returns them to ECS clients as they are.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// An unknown protocol name.
    #[error("invalid protocol {0:?}: expected \"tcp\" or \"udp\"")]
    Protocol(String),
    /// awsvpc mode with `hostPort` ≠ `containerPort`.
    #[error(
        "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
    )]
    AwsvpcMismatch,
    /// host mode with `hostPort` ≠ `containerPort`.
    #[error(
        "When networkMode=host, the host ports and container ports in port mappings must match."
    )]
    HostMismatch,
    /// none mode with port mappings.
    #[error("Port mappings are not supported when networkMode=none.")]
    NoneMode,
    /// The same host port twice in one task.
    #[error("{} host port '{port}' is mapped multiple times in task.", protocol.as_str().to_uppercase())]
    Duplicate {
        /// The protocol.
        protocol: Protocol,
        /// The port.
        port: u16,
    },
    /// The host port is published by another live task (per the caller's records).
    #[error("host port {port}/{protocol} is already published by another task")]
    Published {
        /// The protocol.
        protocol: Protocol,
        /// The port.
        port: u16,
    },
    /// Binding the hold failed because something on the host has the port.
    #[error("host port {addr}/{protocol} is already in use on the host")]
    InUse {
        /// The protocol.
        protocol: Protocol,
        /// The publish address and port.
        addr: SocketAddrV4,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// The publish address is not an address of this host.
    #[error("publish address {} is not an address of this host (setting publish_address)", addr.ip())]
    NotLocal {
        /// The publish address and port.
        addr: SocketAddrV4,
        /// The bind error.
        #[source]
        source: io::Error,
    },
    /// No ephemeral port is free.
    #[error("no free ephemeral host port for {protocol} in {}-{}", EPHEMERAL_PORTS.start(), EPHEMERAL_PORTS.end())]
    Exhausted {
        /// The protocol.
        protocol: Protocol,
    },
    /// Binding the hold failed for another reason (e.g. the publish address is not local).
    #[error("hold host port {addr}/{protocol}")]
    Hold {
        /// The protocol.
        protocol: Protocol,
        /// The publish address and port.
        addr: SocketAddrV4,
        /// The bind error.
        #[source]
        source: io::Error,
    },
}

impl PortError {
    /// The error's class.
    pub fn class(&self) -> ErrorKind {
        match self {
            PortError::Protocol(_)
            | PortError::AwsvpcMismatch
            | PortError::HostMismatch
            | PortError::NoneMode
            | PortError::Duplicate { .. }
            | PortError::NotLocal { .. } => ErrorKind::Invalid,
            PortError::Published { .. } | PortError::InUse { .. } | PortError::Exhausted { .. } => {
                ErrorKind::Conflict
            }
            PortError::Hold { .. } => ErrorKind::Internal,
        }
    }
}

/// Checks a task's port mappings against the rules of its network mode, before anything
/// is applied.
pub(crate) fn validate(
    mode: NetworkMode,
    mappings: &[PortMappingRequest],
) -> Result<(), PortError> {
    let mut seen = BTreeSet::new();
    for m in mappings {
        let host = match (mode, m.host_port) {
            (NetworkMode::None, _) => return Err(PortError::NoneMode),
            (NetworkMode::Awsvpc, Some(h)) if h != m.container_port => {
                return Err(PortError::AwsvpcMismatch);
            }
            (NetworkMode::Host, Some(h)) if h != m.container_port => {
                return Err(PortError::HostMismatch);
            }
            (NetworkMode::Awsvpc | NetworkMode::Host, _) => Some(m.container_port),
            (NetworkMode::Bridge, h) => h,
        };
        if let Some(h) = host
            && !seen.insert((m.protocol, h.get()))
        {
            return Err(PortError::Duplicate {
                protocol: m.protocol,
                port: h.get(),
            });
        }
    }
    Ok(())
}

/// A host port published for a task, and the socket that holds it.
#[derive(Debug)]
pub struct PortHold {
    /// The protocol.
    pub protocol: Protocol,
    /// The publish address and the host port.
    pub addr: SocketAddrV4,
    /// The bound socket that never accepts; the port is free again once every copy is closed.
    pub fd: OwnedFd,
}

/// Binds a hold for `protocol` on `addr` (see the module docs).
pub fn hold_host_port(protocol: Protocol, addr: SocketAddrV4) -> Result<PortHold, PortError> {
    match sys::bind_port_hold(protocol, addr) {
        Ok(fd) => Ok(PortHold { protocol, addr, fd }),
        Err(source) if source.raw_os_error() == Some(libc::EADDRINUSE) => Err(PortError::InUse {
            protocol,
            addr,
            source,
        }),
        Err(source) => Err(PortError::Hold {
            protocol,
            addr,
            source,
        }),
    }
}

/// Chooses the host port of every mapping and holds it, all or nothing: on an error the
/// holds made so far are dropped (closed) before returning.
///
/// `published(protocol, port)` says whether another live task has the port (the caller's
/// records); `hold` binds (the real one is [`hold_host_port`], tests inject a fake);
/// `cursor` is where the search for ephemeral ports resumes, and is advanced past each
/// ephemeral port handed out so that ports rotate instead of being reused at once.
pub(crate) fn choose_and_hold<H>(
    mode: NetworkMode,
    mappings: &[PortMappingRequest],
    publish: Ipv4Addr,
    published: &dyn Fn(Protocol, u16) -> bool,
    hold: &mut dyn FnMut(Protocol, SocketAddrV4) -> Result<H, PortError>,
    cursor: &mut u16,
) -> Result<Vec<(u16, H)>, PortError> {
    let mut held: Vec<(Protocol, u16, H)> = Vec::with_capacity(mappings.len());
    for m in mappings {
        let fixed = match mode {
            NetworkMode::Bridge => m.host_port,
            NetworkMode::Awsvpc | NetworkMode::Host | NetworkMode::None => Some(m.container_port),
        };
        let (port, h) = match fixed {
            Some(port) => {
                let port = port.get();
                if published(m.protocol, port) {
                    return Err(PortError::Published {
                        protocol: m.protocol,
                        port,
                    });
                }
                let addr = SocketAddrV4::new(publish, port);
                (port, hold_fixed(m.protocol, addr, hold)?)
            }
            None => ephemeral(m.protocol, publish, published, &held, hold, cursor)?,
        };
        held.push((m.protocol, port, h));
    }
    Ok(held.into_iter().map(|(_, port, h)| (port, h)).collect())
}

/// How many more times a fixed port found in use is tried, and how long apart.
const FIXED_PORT_RETRIES: u32 = 5;
const FIXED_PORT_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// Holds a fixed port. A port another task just released can still be open for a
/// moment in a child process forked in that window (its descriptors are copies until
/// it execs, and the daemon starts shims all the time): a port found in use is tried
/// again a few times, 10 ms apart, before the error stands.
fn hold_fixed<H>(
    protocol: Protocol,
    addr: SocketAddrV4,
    hold: &mut dyn FnMut(Protocol, SocketAddrV4) -> Result<H, PortError>,
) -> Result<H, PortError> {
    let mut retries = 0;
    loop {
        match hold(protocol, addr) {
            Err(PortError::InUse { .. }) if retries < FIXED_PORT_RETRIES => {
                retries += 1;
                std::thread::sleep(FIXED_PORT_RETRY_WAIT);
            }
            other => return other,
        }
    }
}

/// Every ephemeral port once, from `start` (or the start of the range) up, then wrapping.
fn ephemeral_candidates(start: u16) -> impl Iterator<Item = u16> {
    let (lo, hi) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
    let start = if EPHEMERAL_PORTS.contains(&start) {
        start
    } else {
        lo
    };
    (start..=hi).chain(lo..start)
}

/// For callers that choose (and record) dynamic host ports before setting a task up: the first
/// ephemeral port from `start` on, wrapping once, that `taken` (the caller's records: other
/// tasks' ports, reserved ports) does not hold and `available` accepts — typically
/// [`host_port_available`]. Pass the result as the mapping's host port; setup then holds it,
/// and fails with [`PortError::InUse`] if something took it in between.
pub fn pick_ephemeral_port(
    start: u16,
    taken: impl Fn(u16) -> bool,
    mut available: impl FnMut(u16) -> bool,
) -> Option<u16> {
    ephemeral_candidates(start).find(|&p| !taken(p) && available(p))
}

/// Whether `protocol` port `addr` can be bound on this host right now (a socket is bound and
/// closed again).
pub fn host_port_available(protocol: Protocol, addr: SocketAddrV4) -> bool {
    sys::bind_port_hold(protocol, addr).is_ok()
}

fn ephemeral<H>(
    protocol: Protocol,
    publish: Ipv4Addr,
    published: &dyn Fn(Protocol, u16) -> bool,
    held: &[(Protocol, u16, H)],
    hold: &mut dyn FnMut(Protocol, SocketAddrV4) -> Result<H, PortError>,
    cursor: &mut u16,
) -> Result<(u16, H), PortError> {
    let (lo, hi) = (*EPHEMERAL_PORTS.start(), *EPHEMERAL_PORTS.end());
    for port in ephemeral_candidates(*cursor) {
        if published(protocol, port) || held.iter().any(|(p, q, _)| *p == protocol && *q == port) {
            continue;
        }
        match hold(protocol, SocketAddrV4::new(publish, port)) {
            Ok(h) => {
                *cursor = if port == hi { lo } else { port + 1 };
                return Ok((port, h));
            }
            Err(PortError::InUse { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(PortError::Exhausted { protocol })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// A host server that just closed connections leaves them in TIME_WAIT for a
    /// minute; publishing its port right after must work (as with Docker).
    #[test]
    fn a_port_in_time_wait_can_be_held_and_then_no_one_else_binds_it() {
        use std::io::Read;
        use std::net::{TcpListener, TcpStream};
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = match server.local_addr().unwrap() {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!(),
        };
        let mut client = TcpStream::connect(addr).unwrap();
        let (conn, _) = server.accept().unwrap();
        drop(conn); // the server closes first: its end goes to TIME_WAIT
        let mut buf = [0u8; 1];
        let _ = client.read(&mut buf);
        drop(client);
        drop(server);
        let hold = hold_host_port(Protocol::Tcp, addr).expect("hold despite TIME_WAIT");
        assert!(
            TcpListener::bind(addr).is_err(),
            "a later server must not get the port"
        );
        drop(hold);
    }

    fn m(container: u16, host: Option<u16>, protocol: Protocol) -> PortMappingRequest {
        PortMappingRequest {
            container_name: "web".into(),
            container_port: NonZeroU16::new(container).unwrap(),
            host_port: host.map(|h| NonZeroU16::new(h).unwrap()),
            protocol,
        }
    }

    #[test]
    fn awsvpc_requires_equal_or_absent_host_ports_with_ecs_message() {
        validate(
            NetworkMode::Awsvpc,
            &[m(80, None, Protocol::Tcp), m(81, Some(81), Protocol::Tcp)],
        )
        .unwrap();
        let e = validate(NetworkMode::Awsvpc, &[m(80, Some(8080), Protocol::Tcp)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
        );
        assert_eq!(e.class(), ErrorKind::Invalid);
        let e = validate(NetworkMode::Host, &[m(80, Some(8080), Protocol::Tcp)]).unwrap_err();
        assert!(matches!(e, PortError::HostMismatch));
        let e = validate(NetworkMode::None, &[m(80, None, Protocol::Tcp)]).unwrap_err();
        assert!(matches!(e, PortError::NoneMode));
        validate(NetworkMode::Bridge, &[m(80, Some(8080), Protocol::Tcp)]).unwrap();
    }

    #[test]
    fn duplicate_host_ports_are_rejected_per_protocol() {
        let e = validate(
            NetworkMode::Awsvpc,
            &[
                m(3000, None, Protocol::Tcp),
                m(3000, Some(3000), Protocol::Tcp),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "TCP host port '3000' is mapped multiple times in task."
        );
        // same number, other protocol: fine; dynamic bridge ports never collide
        validate(
            NetworkMode::Awsvpc,
            &[m(53, None, Protocol::Tcp), m(53, None, Protocol::Udp)],
        )
        .unwrap();
        validate(
            NetworkMode::Bridge,
            &[m(80, None, Protocol::Tcp), m(80, None, Protocol::Tcp)],
        )
        .unwrap();
        let e = validate(
            NetworkMode::Bridge,
            &[
                m(80, Some(9000), Protocol::Udp),
                m(81, Some(9000), Protocol::Udp),
            ],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "UDP host port '9000' is mapped multiple times in task."
        );
    }

    #[test]
    fn protocol_parses_and_serialises_lowercase() {
        assert_eq!("udp".parse::<Protocol>().unwrap(), Protocol::Udp);
        assert!("TCP".parse::<Protocol>().is_err());
        assert_eq!(serde_json::to_string(&Protocol::Tcp).unwrap(), "\"tcp\"");
        let r: PortMappingRequest =
            serde_json::from_str(r#"{"containerName":"a","containerPort":80}"#).unwrap();
        assert_eq!(r.protocol, Protocol::Tcp);
        assert!(
            serde_json::from_str::<PortMappingRequest>(
                r#"{"containerName":"a","containerPort":0}"#
            )
            .is_err()
        );
        let e = serde_json::from_str::<PortMappingRequest>(
            r#"{"containerName":"a","containerPort":1,"hostIp":"x"}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("hostIp"), "{e}");
    }

    /// A fake host: a set of bound (protocol, port) pairs.
    struct FakeHost(BTreeSet<(Protocol, u16)>);

    impl FakeHost {
        fn hold(&mut self, p: Protocol, a: SocketAddrV4) -> Result<u16, PortError> {
            if self.0.insert((p, a.port())) {
                Ok(a.port())
            } else {
                Err(PortError::InUse {
                    protocol: p,
                    addr: a,
                    source: io::Error::from_raw_os_error(libc::EADDRINUSE),
                })
            }
        }
    }

    #[test]
    fn bridge_mode_picks_free_distinct_ephemeral_ports_and_rotates() {
        let mut host = FakeHost([(Protocol::Tcp, 49153)].into());
        let published = |p: Protocol, port: u16| p == Protocol::Tcp && port == 49154;
        let mut cursor = 0;
        let got = choose_and_hold(
            NetworkMode::Bridge,
            &[
                m(80, None, Protocol::Tcp),
                m(81, None, Protocol::Tcp),
                m(80, None, Protocol::Udp),
                m(82, Some(8082), Protocol::Tcp),
            ],
            Ipv4Addr::LOCALHOST,
            &published,
            &mut |p, a| host.hold(p, a),
            &mut cursor,
        )
        .unwrap();
        let ports: Vec<u16> = got.iter().map(|(p, _)| *p).collect();
        // 49153 bound on the host, 49154 published by another task
        assert_eq!(ports, vec![49155, 49156, 49157, 8082]);
        assert_eq!(cursor, 49158);
    }

    #[test]
    fn a_fixed_port_still_held_for_a_moment_is_tried_again_then_refused() {
        let busy = |times: u32| {
            let mut left = times;
            move |p: Protocol, a: SocketAddrV4| {
                if left > 0 {
                    left -= 1;
                    return Err(PortError::InUse {
                        protocol: p,
                        addr: a,
                        source: io::Error::from_raw_os_error(libc::EADDRINUSE),
                    });
                }
                Ok(a.port())
            }
        };
        let run = |hold: &mut dyn FnMut(Protocol, SocketAddrV4) -> Result<u16, PortError>| {
            choose_and_hold(
                NetworkMode::Awsvpc,
                &[m(5300, None, Protocol::Udp)],
                Ipv4Addr::LOCALHOST,
                &|_, _| false,
                hold,
                &mut 0,
            )
        };
        // Released by a child that execs a moment later: the hold succeeds.
        let got = run(&mut busy(2)).unwrap();
        assert_eq!(got.iter().map(|(p, _)| *p).collect::<Vec<_>>(), [5300]);
        // Really in use: refused after the retries.
        let e = run(&mut busy(u32::MAX)).unwrap_err();
        assert!(matches!(e, PortError::InUse { .. }), "{e}");
    }

    #[test]
    fn pick_ephemeral_port_skips_taken_and_unavailable_and_wraps() {
        let taken = |p: u16| p == 49153 || p == 49155;
        assert_eq!(pick_ephemeral_port(0, taken, |p| p != 49154), Some(49156));
        assert_eq!(
            pick_ephemeral_port(65535, |_| false, |p| p != 65535),
            Some(49153)
        );
        assert_eq!(pick_ephemeral_port(50000, |_| false, |_| true), Some(50000));
        assert_eq!(pick_ephemeral_port(50000, |_| true, |_| true), None);
        let mut asked = 0;
        assert_eq!(
            pick_ephemeral_port(
                49153,
                |_| false,
                |_| {
                    asked += 1;
                    false
                }
            ),
            None
        );
        assert_eq!(asked, EPHEMERAL_PORTS.len(), "every port is tried once");
    }

    #[test]
    fn ephemeral_search_wraps_and_reports_exhaustion() {
        let mut host = FakeHost(BTreeSet::new());
        let mut cursor = 65535;
        let got = choose_and_hold(
            NetworkMode::Bridge,
            &[m(80, None, Protocol::Tcp), m(81, None, Protocol::Tcp)],
            Ipv4Addr::LOCALHOST,
            &|_, _| false,
            &mut |p, a| host.hold(p, a),
            &mut cursor,
        )
        .unwrap();
        assert_eq!(
            got.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![65535, 49153]
        );
        let mut full = FakeHost(EPHEMERAL_PORTS.map(|p| (Protocol::Udp, p)).collect());
        let e = choose_and_hold(
            NetworkMode::Bridge,
            &[m(80, None, Protocol::Udp)],
            Ipv4Addr::LOCALHOST,
            &|_, _| false,
            &mut |p, a| full.hold(p, a),
            &mut cursor,
        )
        .unwrap_err();
        assert!(matches!(
            e,
            PortError::Exhausted {
                protocol: Protocol::Udp
            }
        ));
        assert_eq!(e.class(), ErrorKind::Conflict);
    }

    #[test]
    fn a_taken_fixed_port_fails_and_releases_earlier_holds() {
        #[derive(Debug)]
        struct Guard<'a>(u16, &'a std::cell::RefCell<Vec<u16>>);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.1.borrow_mut().push(self.0);
            }
        }
        let mut host = FakeHost([(Protocol::Tcp, 8081)].into());
        let dropped = std::cell::RefCell::new(Vec::new());
        let e = choose_and_hold(
            NetworkMode::Awsvpc,
            &[m(8080, None, Protocol::Tcp), m(8081, None, Protocol::Tcp)],
            Ipv4Addr::LOCALHOST,
            &|_, _| false,
            &mut |p, a| host.hold(p, a).map(|port| Guard(port, &dropped)),
            &mut 0,
        )
        .unwrap_err();
        assert!(matches!(e, PortError::InUse { .. }));
        assert_eq!(
            e.to_string(),
            "host port 127.0.0.1:8081/tcp is already in use on the host"
        );
        assert_eq!(
            *dropped.borrow(),
            vec![8080],
            "the hold on 8080 was released"
        );
    }

    #[test]
    fn a_port_published_by_another_task_is_a_conflict() {
        let e = choose_and_hold(
            NetworkMode::Awsvpc,
            &[m(8080, None, Protocol::Tcp)],
            Ipv4Addr::LOCALHOST,
            &|p, port| p == Protocol::Tcp && port == 8080,
            &mut |_, a| -> Result<u16, PortError> { Ok(a.port()) },
            &mut 0,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "host port 8080/tcp is already published by another task"
        );
    }
}
