//! Namespaces a whole task shares (`pidMode: task`, `ipcMode: task`).
//!
//! ECS joins every container of such a task to the namespaces of a pause container;
//! the shim does the same with a holder process of its own (see
//! [`sys::spawn_namespace_holder`]), created when the first container starts. Holding
//! them in a process no container owns matters for PID namespaces: when PID 1 of a
//! namespace exits the kernel kills everything else in it, so the namespace must not
//! belong to, say, an init container that exits early.
//!
//! Each container's `config.json` asks for new `pid`/`ipc` namespaces; before the
//! container is created, the shim points them at `/proc/<holder>/ns/<kind>`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::sys;
use super::types::SharedNamespace;

/// The task's shared namespaces and their holder.
#[derive(Debug)]
pub(crate) struct TaskNamespaces {
    kinds: Vec<SharedNamespace>,
    holder: Option<u32>,
}

impl TaskNamespaces {
    pub(crate) fn new(kinds: &[SharedNamespace]) -> TaskNamespaces {
        TaskNamespaces {
            kinds: kinds.to_vec(),
            holder: None,
        }
    }

    /// Points the spec in `bundle` at the task's namespaces, creating them first if no
    /// container has started yet. The error is shown after `CannotStartContainerError: `.
    pub(crate) fn join(&mut self, bundle: &Path) -> Result<(), String> {
        if self.kinds.is_empty() {
            return Ok(());
        }
        let holder = self.holder()?;
        let path = bundle.join("config.json");
        let text = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut spec: Value = serde_json::from_slice(&text)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        patch(&mut spec, holder, &self.kinds);
        let tmp = bundle.join("config.json.tmp");
        let bytes = serde_json::to_vec_pretty(&spec).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("writing {}: {e}", path.display()))
    }

    fn holder(&mut self) -> Result<u32, String> {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        if let Some(pid) = self.holder {
            if ns_path(pid, self.kinds[0]).exists() {
                return Ok(pid);
            }
            return Err(format!(
                "the task's shared {} namespace is gone (its holder process {pid} exited)",
                kinds.join(" and ")
            ));
        }
        let flags = self.kinds.iter().fold(0, |f, k| {
            f | match k {
                SharedNamespace::Pid => libc::CLONE_NEWPID,
                SharedNamespace::Ipc => libc::CLONE_NEWIPC,
            }
        });
        let pid = sys::spawn_namespace_holder(flags).map_err(|e| {
            format!(
                "creating the task's shared {} namespace: {e}",
                kinds.join(" and ")
            )
        })?;
        tracing::info!(pid, namespaces = ?kinds, "task namespaces created");
        self.holder = Some(pid);
        Ok(pid)
    }

    /// Kills the holder (when the task has stopped). Idempotent.
    pub(crate) fn release(&mut self) {
        if let Some(pid) = self.holder.take() {
            sys::send_signal(pid, libc::SIGKILL);
        }
    }
}

fn ns_path(holder: u32, kind: SharedNamespace) -> PathBuf {
    PathBuf::from(format!("/proc/{holder}/ns/{}", kind.as_str()))
}

/// Sets `linux.namespaces[type=kind].path` for every shared kind (adding the entry if
/// the spec had none).
fn patch(spec: &mut Value, holder: u32, kinds: &[SharedNamespace]) {
    let Some(linux) = spec.get_mut("linux").and_then(Value::as_object_mut) else {
        return;
    };
    let namespaces = linux.entry("namespaces").or_insert_with(|| json!([]));
    let Some(list) = namespaces.as_array_mut() else {
        return;
    };
    for kind in kinds {
        let path = ns_path(holder, *kind);
        match list.iter_mut().find(|n| n["type"] == kind.as_str()) {
            Some(n) => n["path"] = json!(path),
            None => list.push(json!({"type": kind.as_str(), "path": path})),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_namespaces_are_joined_by_path_and_others_untouched() {
        let mut spec = json!({"linux": {"namespaces": [
            {"type": "mount"}, {"type": "network", "path": "/run/netns/x"}, {"type": "pid"}
        ]}});
        patch(&mut spec, 42, &[SharedNamespace::Pid, SharedNamespace::Ipc]);
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([
                {"type": "mount"},
                {"type": "network", "path": "/run/netns/x"},
                {"type": "pid", "path": "/proc/42/ns/pid"},
                {"type": "ipc", "path": "/proc/42/ns/ipc"}
            ])
        );
    }
}
