//! Reconciliation: make the kernel match the caller's records of live tasks.
//!
//! Run when the daemon starts (and whenever it suspects drift): the host is prepared again,
//! berth's nftables table is rebuilt with exactly the live tasks' published ports, and
//! namespaces under the netns directory and berth's host veths that belong to no live task
//! are removed. Live tasks whose pieces are gone are reported, not repaired.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use crate::firewall::Published;
use crate::ids::{VETH_PREFIX, element_comment, parse_veth_alias};
use crate::manager::{HostReport, NetworkError, NetworkManager};
use crate::netns;
use crate::nft::NftSocket;
use crate::ports::Protocol;
use crate::route::Rtnl;
use crate::types::TaskNetwork;

/// What reconciliation found and did.
#[derive(Debug, Default)]
pub struct ReconcileReport {
    /// What preparing the host changed.
    pub host: HostReport,
    /// Namespace files removed from the netns directory.
    pub namespaces_removed: Vec<PathBuf>,
    /// Host interfaces deleted.
    pub interfaces_removed: Vec<String>,
    /// Published ports removed from the table because no live task has them.
    pub ports_unpublished: Vec<(Protocol, u16)>,
    /// Published ports of live tasks that were missing from the table and were put back.
    pub ports_restored: Vec<(Protocol, u16)>,
    /// Pieces of live tasks that are gone (task id, what): such tasks have lost their network.
    pub missing: Vec<(String, String)>,
    /// Removals that failed; the rest went ahead.
    pub errors: Vec<NetworkError>,
}

impl NetworkManager {
    /// Reconciles the host with `live`, the recorded networks of every task that is still
    /// running (see the module docs). Fails only when the host cannot be prepared; individual
    /// removals that fail are listed in the report.
    pub fn reconcile(&self, live: &[TaskNetwork]) -> Result<ReconcileReport, NetworkError> {
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        let mut report = ReconcileReport::default();
        let live_paths: BTreeSet<&Path> = live
            .iter()
            .flat_map(|t| t.endpoints.iter().filter_map(|e| e.netns_path.as_deref()))
            .collect();
        let live_veths: BTreeSet<(&str, &str)> = live
            .iter()
            .flat_map(|t| {
                t.endpoints
                    .iter()
                    .filter_map(|e| e.interface.as_ref())
                    .map(move |i| (i.host_interface.as_str(), t.task_id.as_str()))
            })
            .collect();
        let mut live_published = Vec::new();
        for t in live {
            for e in &t.endpoints {
                for b in &e.network_bindings {
                    if let Some(target) = b.target {
                        live_published.push(Published {
                            protocol: b.protocol,
                            host_port: b.host_port,
                            target,
                            target_port: b.container_port,
                            owner: element_comment(&t.task_id, &e.name),
                        });
                    }
                }
            }
        }
        live_published.sort();
        live_published.dedup_by(|a, b| a.protocol == b.protocol && a.host_port == b.host_port);

        let before: Vec<Published> = NftSocket::open()
            .ok()
            .and_then(|mut s| self.firewall.published(&mut s).ok())
            .unwrap_or_default();
        let (host, host_report) = self.prepare_host(Some(&live_published))?;
        *state = Some(host);
        report.host = host_report;
        let key = |p: &Published| (p.protocol, p.host_port, p.target, p.target_port);
        let before_keys: BTreeSet<_> = before.iter().map(key).collect();
        let live_keys: BTreeSet<_> = live_published.iter().map(key).collect();
        report.ports_unpublished = before
            .iter()
            .filter(|p| !live_keys.contains(&key(p)))
            .map(|p| (p.protocol, p.host_port))
            .collect();
        report.ports_restored = live_published
            .iter()
            .filter(|p| !before_keys.contains(&key(p)))
            .map(|p| (p.protocol, p.host_port))
            .collect();

        for path in netns::list(&self.config.netns_dir)? {
            if live_paths.contains(path.as_path()) {
                continue;
            }
            match netns::remove(&path) {
                Ok(true) => report.namespaces_removed.push(path),
                Ok(false) => {}
                Err(e) => report.errors.push(e.into()),
            }
        }
        for t in live {
            for p in t.endpoints.iter().filter_map(|e| e.netns_path.as_ref()) {
                if !p.exists() {
                    report.missing.push((
                        t.task_id.clone(),
                        format!("network namespace {}", p.display()),
                    ));
                }
            }
        }

        let mut rtnl = Rtnl::open()?;
        let links = rtnl.links()?;
        for l in &links {
            if !l.name.starts_with(VETH_PREFIX) || l.kind.as_deref() != Some("veth") {
                continue;
            }
            let ours = match l.alias.as_deref().and_then(parse_veth_alias) {
                Some((bridge, _)) => bridge == self.config.bridge,
                None => l.master == Some(host.bridge_index),
            };
            if !ours || live_veths.iter().any(|(name, _)| *name == l.name) {
                continue;
            }
            match rtnl.delete_link(l.index, &l.name) {
                Ok(()) => report.interfaces_removed.push(l.name.clone()),
                Err(e) if e.is_not_found() => {}
                Err(e) => report.errors.push(e.into()),
            }
        }
        for (name, task) in &live_veths {
            if !links.iter().any(|l| l.name == *name) {
                report
                    .missing
                    .push(((*task).to_owned(), format!("host interface {name}")));
            }
        }
        for e in &report.errors {
            tracing::warn!(error = %e, "reconcile could not remove a leftover");
        }
        Ok(report)
    }
}
