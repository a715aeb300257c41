//! [`NetworkManager`]: host preparation, and transactional setup and idempotent teardown of a
//! task's network.
//!
//! Call it from a blocking thread whose network namespace is the host's (never from an async
//! task): the host side is done on the calling thread, the inside of each task namespace
//! through a socket opened in it by a throwaway thread (see `netns`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard};

use crate::config::{ForwardingPolicy, NetworkConfig, VethTeardown};
use crate::conntrack;
use crate::firewall::{Firewall, FirewallError, Published};
use crate::ids::{
    self, element_comment, format_mac, host_veth_name, mac_for, parse_veth_alias, veth_alias,
};
use crate::ipam::Subnet;
use crate::netns;
use crate::nft::NftSocket;
use crate::pool::{Pool, Pooled};
use crate::ports::{self, PortError, PortHold, Protocol};
use crate::route::{RouteError, Rtnl, VethSpec};
use crate::spare::Spares;
use crate::sys;
use crate::sysctl::Sysctl;
use crate::types::{
    Endpoint, NetworkBinding, NetworkInterface, NetworkMode, TaskNetwork, TaskNetworkRequest,
    TaskSetup,
};
use crate::validate::{self, RequestError};

pub use crate::network_error::{NetworkError, TeardownError};

/// The name of the task's interface inside its namespace.
pub const TASK_INTERFACE: &str = "eth0";

/// What preparing the host changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostReport {
    /// The bridge was created.
    pub bridge_created: bool,
    /// `net.ipv4.ip_forward` was off and berth turned it on.
    pub ip_forward_enabled: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct HostState {
    pub(crate) bridge_index: u32,
}

/// What a setup applied so far, for rollback.
#[derive(Debug, Default)]
struct Applied {
    holds: Vec<PortHold>,
    netns: Vec<PathBuf>,
    veths: Vec<String>,
    published: Vec<Published>,
}

/// berth's task networking on this host.
#[derive(Debug)]
pub struct NetworkManager {
    pub(crate) config: NetworkConfig,
    pub(crate) subnet: Subnet,
    pub(crate) firewall: Firewall,
    pub(crate) sysctl: Sysctl,
    /// `None` until the host is prepared. Setups and teardowns hold it shared; preparation
    /// and reconciliation hold it exclusively, so a table rebuild never races an element add.
    pub(crate) state: RwLock<Option<HostState>>,
    /// Set when the host must be prepared again (the bridge vanished).
    stale: AtomicBool,
    /// Set once the namespace directory is ready.
    dir_ready: AtomicBool,
    /// Where the search for ephemeral host ports resumes.
    cursor: Mutex<u16>,
    /// rtnetlink sockets in the host namespace.
    pub(crate) rtnl: Pool<Rtnl>,
    /// nf_tables sockets in the host namespace.
    pub(crate) nft: Pool<NftSocket>,
    /// Namespaces made ahead of need.
    spares: Spares,
}

impl NetworkManager {
    /// A manager for `config`; nothing is done to the host until the first setup or
    /// [`NetworkManager::reconcile`].
    pub fn new(config: NetworkConfig) -> Result<Self, NetworkError> {
        let subnet = config.validate()?;
        let firewall = Firewall {
            table: config.nft_table.clone(),
            bridge: config.bridge.clone(),
            subnet: config.subnet,
            publish: config.publish_address,
            credentials_to: config
                .credentials_port
                .map(|port| SocketAddrV4::new(subnet.gateway(), port)),
        };
        Ok(NetworkManager {
            config,
            subnet,
            firewall,
            sysctl: Sysctl::default(),
            state: RwLock::new(None),
            stale: AtomicBool::new(false),
            dir_ready: AtomicBool::new(false),
            cursor: Mutex::new(*ports::EPHEMERAL_PORTS.start()),
            rtnl: Pool::default(),
            nft: Pool::default(),
            spares: Spares::default(),
        })
    }

    /// An nf_tables socket in the host namespace.
    pub(crate) fn nft_socket(&self) -> Result<Pooled<'_, NftSocket>, FirewallError> {
        self.nft.get(|| {
            NftSocket::open().map_err(|source| FirewallError::Nft {
                what: "open".into(),
                source,
            })
        })
    }

    /// An rtnetlink socket in the host namespace.
    pub(crate) fn rtnl_socket(&self) -> Result<Pooled<'_, Rtnl>, RouteError> {
        self.rtnl.get(Rtnl::open)
    }

    /// The settings.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The task subnet, for the caller's address leases ([`Subnet::allocate`]).
    pub fn subnet(&self) -> &Subnet {
        &self.subnet
    }

    /// Prepares the host: the namespace directory, IPv4 forwarding, the bridge with the
    /// gateway address, the bridge's settings, and — when `rebuild` is given — berth's nftables
    /// table with exactly those published ports (otherwise only if the table is missing).
    pub(crate) fn prepare_host(
        &self,
        rebuild: Option<&[Published]>,
    ) -> Result<(HostState, HostReport), NetworkError> {
        let mut report = HostReport::default();
        self.ensure_netns_dir()?;
        let may_change = self.config.ip_forward == ForwardingPolicy::Enable;
        if let Some(was) = self.sysctl.ensure("net/ipv4/ip_forward", "1", may_change)? {
            tracing::info!(previous = %was, "enabled net.ipv4.ip_forward for task egress; it stays enabled");
            report.ip_forward_enabled = true;
        }
        let name = self.config.bridge.as_str();
        let mut rtnl = self.rtnl_socket()?;
        let existing = rtnl.link_by_name(name)?;
        if let Some(l) = &existing
            && l.kind.as_deref() != Some("bridge")
        {
            return Err(NetworkError::NotABridge {
                name: name.into(),
                kind: l.kind.clone().unwrap_or_else(|| "device".into()),
            });
        }
        let ours = existing.as_ref().map(|l| l.index);
        for (route, oif) in rtnl.main_routes()? {
            if route.prefix() > 0
                && route.overlaps(&self.subnet.net())
                && (oif.is_none() || oif != ours)
            {
                return Err(NetworkError::SubnetOverlap {
                    subnet: self.subnet.net(),
                    route,
                });
            }
        }
        let bridge = match existing {
            Some(l) => l,
            None => {
                rtnl.create_bridge(name, mac_for(self.subnet.gateway()), self.config.mtu)?;
                report.bridge_created = true;
                tracing::info!(bridge = name, subnet = %self.subnet.net(), "created bridge");
                rtnl.link_by_name(name)?
                    .ok_or_else(|| NetworkError::Vanished(name.into()))?
            }
        };
        if !bridge.up {
            rtnl.set_up(bridge.index, name)?;
        }
        let gw = self.subnet.gateway();
        if !rtnl
            .addresses(bridge.index)?
            .contains(&(gw, self.subnet.net().prefix()))
        {
            rtnl.add_address(bridge.index, name, gw, self.subnet.net(), true)?;
        }
        self.sysctl
            .write_if_present(&format!("net/ipv6/conf/{name}/accept_ra"), "0")?;
        let localnet = if self.firewall.publishes_on_loopback() {
            "1"
        } else {
            "0"
        };
        self.sysctl
            .write(&format!("net/ipv4/conf/{name}/route_localnet"), localnet)?;
        let mut nft = self.nft_socket()?;
        match rebuild {
            Some(live) => self.firewall.rebuild(&mut nft, live)?,
            None => match self.firewall.published(&mut nft) {
                Ok(_) => {}
                Err(FirewallError::Missing { .. }) => self.firewall.rebuild(&mut nft, &[])?,
                Err(e) => return Err(e.into()),
            },
        }
        Ok((
            HostState {
                bridge_index: bridge.index,
            },
            report,
        ))
    }

    /// Makes the namespace directory a shared mount point, once.
    pub(crate) fn ensure_netns_dir(&self) -> Result<(), NetworkError> {
        if !self.dir_ready.load(Ordering::Acquire) {
            let mountinfo =
                std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap_or_default();
            netns::ensure_dir(&self.config.netns_dir, &mountinfo)?;
            self.dir_ready.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// The host state, preparing the host first if needed.
    fn ready(&self) -> Result<RwLockReadGuard<'_, Option<HostState>>, NetworkError> {
        {
            let g = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if g.is_some() && !self.stale.load(Ordering::Acquire) {
                return Ok(g);
            }
        }
        {
            let mut w = self.state.write().unwrap_or_else(PoisonError::into_inner);
            if w.is_none() || self.stale.load(Ordering::Acquire) {
                let (st, _) = self.prepare_host(None)?;
                *w = Some(st);
                self.stale.store(false, Ordering::Release);
            }
        }
        Ok(self.state.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Makes a network namespace ahead of need, in the background, unless one is ready: the
    /// next task setup that needs a namespace binds it instead of making one (about 1 ms less
    /// on its path). Best called when the host has a CPU to spare, e.g. once a task's setup
    /// is done: making one competes with whatever runs meanwhile. Spares are held by
    /// descriptors only; nothing of them outlives the process.
    pub fn make_spare_namespace(&self) {
        self.spares.refill(&self.config.netns_dir);
    }

    /// Sets up the network of one task, all or nothing: the request is validated first, then
    /// host ports are held, namespaces, veths, addresses and routes created, and the ports
    /// published; on any failure what was applied is rolled back and the first error returned.
    pub fn setup_task(&self, req: &TaskNetworkRequest) -> Result<TaskSetup, NetworkError> {
        validate::validate(&self.config, &self.subnet, req)?;
        // Only modes with an interface need the bridge, the table and IP forwarding: a host
        // that runs none and host mode tasks only is left as it is.
        let guard = if req.mode.has_interface() {
            self.ready()?
        } else {
            if req.mode.has_namespace() {
                self.ensure_netns_dir()?;
            }
            self.state.read().unwrap_or_else(PoisonError::into_inner)
        };
        let host = *guard;
        let mut applied = Applied::default();
        match self.apply(req, host, &mut applied) {
            Ok(network) => Ok(TaskSetup {
                network,
                port_holds: applied.holds,
            }),
            Err(e) => {
                tracing::debug!(task = %req.task_id, error = %e, "network setup failed, rolling back");
                self.roll_back(&req.task_id, applied);
                Err(e)
            }
        }
    }

    fn apply(
        &self,
        req: &TaskNetworkRequest,
        host: Option<HostState>,
        done: &mut Applied,
    ) -> Result<TaskNetwork, NetworkError> {
        let publish = self.config.publish_address;
        // 1. host ports: the likeliest failure, and the cheapest to undo
        let mut bindings: Vec<Vec<NetworkBinding>> = Vec::with_capacity(req.endpoints.len());
        {
            let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
            for ep in &req.endpoints {
                if req.mode == NetworkMode::Host {
                    bindings.push(
                        ep.port_mappings
                            .iter()
                            .map(|m| NetworkBinding {
                                container_name: m.container_name.clone(),
                                bind_ip: Ipv4Addr::UNSPECIFIED,
                                container_port: m.container_port.get(),
                                host_port: m.host_port.unwrap_or(m.container_port).get(),
                                protocol: m.protocol,
                                target: None,
                            })
                            .collect(),
                    );
                    continue;
                }
                let held = ports::choose_and_hold(
                    req.mode,
                    &ep.port_mappings,
                    publish,
                    &|_, _| false,
                    &mut |p, a| ports::hold_host_port(p, a).map_err(|e| self.explain_in_use(e)),
                    &mut cursor,
                )?;
                let mut eb = Vec::with_capacity(held.len());
                for (m, (port, hold)) in ep.port_mappings.iter().zip(held) {
                    eb.push(NetworkBinding {
                        container_name: m.container_name.clone(),
                        bind_ip: publish,
                        container_port: m.container_port.get(),
                        host_port: port,
                        protocol: m.protocol,
                        target: ep.address,
                    });
                    done.holds.push(hold);
                }
                bindings.push(eb);
            }
        }
        // 2. namespaces, interfaces, addresses, routes
        let mut endpoints = Vec::with_capacity(req.endpoints.len());
        let mut rtnl = if req.mode.has_interface() {
            Some(self.rtnl_socket()?)
        } else {
            None
        };
        for ((i, ep), network_bindings) in req.endpoints.iter().enumerate().zip(bindings) {
            let mut interface = None;
            if let Some(path) = &ep.netns_path {
                let ns = netns::create(path, self.spares.take())?;
                done.netns.push(path.clone());
                if let Some(rtnl) = rtnl.as_mut() {
                    interface = Some(self.attach(rtnl, host, req, i, ns, done)?);
                }
            }
            endpoints.push(Endpoint {
                name: ep.name.clone(),
                netns_path: ep.netns_path.clone(),
                interface,
                network_bindings,
            });
        }
        // 3. publish the ports, in one transaction
        let published = published_of(&req.task_id, &endpoints);
        if !published.is_empty() {
            let mut nft = self.nft_socket()?;
            self.firewall.publish(&mut nft, &published)?;
            done.published = published;
        }
        Ok(TaskNetwork {
            task_id: req.task_id.clone(),
            mode: req.mode,
            endpoints,
        })
    }

    /// Creates endpoint `index`'s veth pair (peer directly in its namespace), records the
    /// owner on the host end, and configures the address and default route inside.
    fn attach(
        &self,
        rtnl: &mut Rtnl,
        host: Option<HostState>,
        req: &TaskNetworkRequest,
        index: usize,
        ns: netns::NewNamespace,
        done: &mut Applied,
    ) -> Result<NetworkInterface, NetworkError> {
        let host = host.ok_or_else(|| NetworkError::BridgeMissing(self.config.bridge.clone()))?;
        let ep = &req.endpoints[index];
        let addr = ep.address.ok_or_else(|| RequestError::Field {
            field: format!("endpoints[{index}].address"),
            reason: format!("required in {} mode", req.mode),
        })?;
        let host_name = host_veth_name(&req.task_id, index);
        let mac = mac_for(addr);
        let spec = VethSpec {
            host_name: &host_name,
            master: host.bridge_index,
            peer_name: TASK_INTERFACE,
            peer_mac: mac,
            peer_netns: ns.file.as_fd(),
            mtu: self.config.mtu,
        };
        match rtnl.create_veth(&spec) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {
                self.clear_leftover(rtnl, &host_name, &req.task_id)?;
                rtnl.create_veth(&spec)?;
            }
            Err(e) if e.is_not_found() => {
                // the bridge index is stale: prepare the host again next time
                self.stale.store(true, Ordering::Release);
                return Err(NetworkError::BridgeMissing(self.config.bridge.clone()));
            }
            Err(e) => return Err(e.into()),
        }
        done.veths.push(host_name.clone());
        let link = rtnl
            .link_by_name(&host_name)?
            .ok_or_else(|| NetworkError::Vanished(host_name.clone()))?;
        rtnl.set_host_port(
            link.index,
            &host_name,
            &veth_alias(&self.config.bridge, &req.task_id, &ep.name),
        )?;
        let mut inside = ns.rtnl;
        let eth0 = inside
            .link_by_name(TASK_INTERFACE)?
            .ok_or_else(|| NetworkError::Vanished(TASK_INTERFACE.into()))?;
        inside.set_up(eth0.index, TASK_INTERFACE)?;
        inside.add_address(eth0.index, TASK_INTERFACE, addr, self.subnet.net(), false)?;
        inside.add_default_route(self.subnet.gateway())?;
        // Apply the carrier changes of both ends (and of the bridge) now rather than when the
        // kernel's link-watch worker gets to them, so that the task is reachable the moment
        // setup returns.
        let synced = sys::inet_socket()
            .and_then(|host_sock| {
                sys::sync_link(host_sock.as_fd(), &host_name)?;
                // the bridge's own carrier comes back with its first port
                sys::sync_link(host_sock.as_fd(), &self.config.bridge)
            })
            .and_then(|_| sys::sync_link(ns.inet.as_fd(), TASK_INTERFACE));
        if let Err(e) = synced {
            tracing::debug!(interface = %host_name, error = %e, "could not apply the link state at once");
        }
        Ok(NetworkInterface {
            attachment_id: ids::random_uuid(),
            network_interface_id: ids::random_eni_id(),
            mac_address: format_mac(mac),
            private_ipv4_address: addr,
            subnet_id: ids::subnet_id(&self.config.bridge, self.subnet.net()),
            subnet_cidr: self.subnet.net(),
            gateway: self.subnet.gateway(),
            prefix_length: self.subnet.net().prefix(),
            interface_name: TASK_INTERFACE.into(),
            host_interface: host_name,
            bridge: self.config.bridge.clone(),
        })
    }

    /// A host interface of our name exists: if it is a leftover of this same task (a
    /// teardown whose namespace is still being destroyed, or a crash), delete it now;
    /// otherwise it is someone else's and the setup fails.
    fn clear_leftover(
        &self,
        rtnl: &mut Rtnl,
        name: &str,
        task_id: &str,
    ) -> Result<(), NetworkError> {
        let Some(link) = rtnl.link_by_name(name)? else {
            return Ok(());
        };
        match link.alias.as_deref().and_then(parse_veth_alias) {
            Some((bridge, owner)) if bridge == self.config.bridge && owner == task_id => {}
            Some((_, owner)) => {
                return Err(NetworkError::InterfaceTaken {
                    name: name.into(),
                    owner: owner.into(),
                });
            }
            None => {
                return Err(NetworkError::InterfaceTaken {
                    name: name.into(),
                    owner: "(not berth's)".into(),
                });
            }
        }
        tracing::debug!(
            interface = name,
            "deleting a leftover host interface of the same task"
        );
        match rtnl.delete_link(link.index, name) {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Turns "in use on the host" into "published by another task" when berth's own map has
    /// the port, so that the message says who has it.
    fn explain_in_use(&self, e: PortError) -> PortError {
        let PortError::InUse { protocol, addr, .. } = &e else {
            return e;
        };
        let (protocol, port) = (*protocol, addr.port());
        let ours = self
            .nft_socket()
            .ok()
            .and_then(|mut s| self.firewall.published(&mut s).ok())
            .is_some_and(|p| {
                p.iter()
                    .any(|x| x.protocol == protocol && x.host_port == port)
            });
        if ours {
            PortError::Published { protocol, port }
        } else {
            e
        }
    }

    fn roll_back(&self, task_id: &str, done: Applied) {
        let mut errors = Vec::new();
        if !done.published.is_empty() {
            match self.nft_socket() {
                Ok(mut s) => {
                    if let Err(e) = self.firewall.unpublish(&mut s, &done.published) {
                        errors.push(NetworkError::from(e));
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
        if !done.veths.is_empty() {
            match self.rtnl_socket() {
                Ok(mut rtnl) => {
                    for v in done.veths.iter().rev() {
                        if let Err(e) = self.remove_host_veth(&mut rtnl, v, task_id) {
                            errors.push(e);
                        }
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
        for p in done.netns.iter().rev() {
            if let Err(e) = netns::remove(p) {
                errors.push(e.into());
            }
        }
        drop(done.holds);
        for e in errors {
            tracing::warn!(task = task_id, error = %e, "rollback of a failed network setup left something behind; reconcile removes it");
        }
    }

    /// Removes the host end `name` of a task's veth per the configured [`VethTeardown`]; a
    /// missing interface is fine, one that belongs to another task is left alone.
    pub(crate) fn remove_host_veth(
        &self,
        rtnl: &mut Rtnl,
        name: &str,
        task_id: &str,
    ) -> Result<(), NetworkError> {
        let Some(link) = rtnl.link_by_name(name)? else {
            return Ok(());
        };
        if let Some((_, owner)) = link.alias.as_deref().and_then(parse_veth_alias)
            && owner != task_id
        {
            tracing::warn!(
                interface = name,
                owner,
                task = task_id,
                "not removing a host interface of another task"
            );
            return Ok(());
        }
        let result = match self.config.veth_teardown {
            VethTeardown::Detach if link.master.is_none() && !link.up => Ok(()),
            VethTeardown::Detach => rtnl.detach_and_down(link.index, name),
            VethTeardown::Delete => rtnl.delete_link(link.index, name),
        };
        match result {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Tears down what [`NetworkManager::setup_task`] set up, best effort: published ports,
    /// host veths and namespaces, each attempted whatever failed before. Idempotent; works
    /// when the namespace is already gone. The port holds are the caller's to close.
    pub fn teardown_task(&self, net: &TaskNetwork) -> Result<(), TeardownError> {
        let _shared = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let mut errors = Vec::new();
        let keys = published_of(&net.task_id, &net.endpoints);
        if !keys.is_empty() {
            match self.nft_socket() {
                Ok(mut s) => match self.firewall.unpublish(&mut s, &keys) {
                    Ok(()) | Err(FirewallError::Missing { .. }) => {}
                    Err(e) => errors.push(e.into()),
                },
                Err(e) => errors.push(e.into()),
            }
        }
        // UDP clients that keep sending would keep the DNAT to this task alive (see conntrack)
        for e in &net.endpoints {
            let Some(iface) = &e.interface else { continue };
            if !e
                .network_bindings
                .iter()
                .any(|b| b.protocol == Protocol::Udp)
            {
                continue;
            }
            let address = iface.private_ipv4_address;
            match conntrack::forget_udp_peer(address) {
                Ok(n) => tracing::debug!(%address, entries = n, "forgot UDP conntrack entries"),
                Err(source)
                    if matches!(
                        source.errno(),
                        Some(libc::EPROTONOSUPPORT | libc::EOPNOTSUPP | libc::ENOENT)
                    ) || matches!(source, crate::netlink::NetlinkError::Open(_)) =>
                {
                    tracing::debug!(%address, error = %source, "no conntrack netlink here");
                }
                Err(source) => errors.push(NetworkError::Conntrack { address, source }),
            }
        }
        let veths: Vec<&str> = net
            .endpoints
            .iter()
            .filter_map(|e| e.interface.as_ref())
            .map(|i| i.host_interface.as_str())
            .collect();
        if !veths.is_empty() {
            match self.rtnl_socket() {
                Ok(mut rtnl) => {
                    for v in veths {
                        if let Err(e) = self.remove_host_veth(&mut rtnl, v, &net.task_id) {
                            errors.push(e);
                        }
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
        for p in net.endpoints.iter().filter_map(|e| e.netns_path.as_ref()) {
            if let Err(e) = netns::remove(p) {
                errors.push(e.into());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(TeardownError {
                task_id: net.task_id.clone(),
                errors,
            })
        }
    }
}

/// The ports a task publishes through berth's table (every binding with a target).
pub(crate) fn published_of(task_id: &str, endpoints: &[Endpoint]) -> Vec<Published> {
    endpoints
        .iter()
        .flat_map(|e| {
            e.network_bindings.iter().filter_map(move |b| {
                Some(Published {
                    protocol: b.protocol,
                    host_port: b.host_port,
                    target: b.target?,
                    target_port: b.container_port,
                    owner: element_comment(task_id, &e.name),
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manager_is_shared_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<NetworkManager>();
        fn send<T: Send>() {}
        send::<TaskSetup>();
    }

    #[test]
    fn published_ports_come_from_bindings_with_a_target() {
        let binding = |target| NetworkBinding {
            container_name: "web".into(),
            bind_ip: Ipv4Addr::LOCALHOST,
            container_port: 80,
            host_port: 8080,
            protocol: Protocol::Tcp,
            target,
        };
        let endpoints = vec![Endpoint {
            name: "task".into(),
            netns_path: None,
            interface: None,
            network_bindings: vec![binding(Some(Ipv4Addr::new(10, 229, 0, 2))), binding(None)],
        }];
        let p = published_of("t1", &endpoints);
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].host_port, p[0].target_port, p[0].owner.as_str()),
            (8080, 80, "t1/task")
        );
    }
}
