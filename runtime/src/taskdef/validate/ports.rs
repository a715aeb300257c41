//! Port mapping rules per network mode, and host-port conflicts across the task.

use std::collections::HashMap;

use super::{Ctx, ValidationError, ensure, rule};
use crate::taskdef::model::{NetworkMode, PortMapping, TransportProtocol};

/// ECS's limit on `containerPortRange` mappings per container.
const MAX_RANGES: usize = 100;

/// A `"first-last"` container port range.
pub(crate) fn parse_port_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let (a, b): (u16, u16) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a >= 1 && a < b).then_some((a, b))
}

/// Where a mapping sits on the host, if statically: `(protocol, first, last)`.
fn host_span(mode: NetworkMode, pm: &PortMapping) -> Option<(TransportProtocol, u16, u16)> {
    let proto = pm.protocol();
    match (mode, pm.container_port, pm.container_port_range.as_deref()) {
        // awsvpc/host: the container's ports are the task's (host's) ports.
        (NetworkMode::Awsvpc | NetworkMode::Host, Some(p), _) => Some((proto, p.get(), p.get())),
        (NetworkMode::Awsvpc, None, Some(r)) => parse_port_range(r).map(|(a, b)| (proto, a, b)),
        // bridge: only an explicit, non-zero hostPort is fixed.
        (NetworkMode::Bridge, _, _) => pm
            .host_port
            .and_then(|h| h.fixed())
            .map(|h| (proto, h.get(), h.get())),
        _ => None,
    }
}

pub(super) fn check(ctx: &Ctx<'_>) -> Result<(), ValidationError> {
    let mode = ctx.mode;
    let mut names: HashMap<&str, String> = HashMap::new();
    let mut taken: Vec<((TransportProtocol, u16, u16), String)> = Vec::new();
    for (i, c) in ctx.def.container_definitions.iter().enumerate() {
        let list = format!("containerDefinitions[{i}].portMappings");
        if mode == NetworkMode::None {
            ensure(c.port_mappings.is_empty(), || {
                rule(&list, "must be empty when networkMode is none")
            })?;
        }
        let ranges = c
            .port_mappings
            .iter()
            .filter(|p| p.container_port_range.is_some())
            .count();
        ensure(ranges <= MAX_RANGES, || {
            rule(
                &list,
                format!(
                    "has {ranges} containerPortRange mappings; at most {MAX_RANGES} are allowed"
                ),
            )
        })?;
        let mut own: Vec<((TransportProtocol, u16, u16), usize)> = Vec::new();
        for (j, pm) in c.port_mappings.iter().enumerate() {
            let f = format!("{list}[{j}]");
            check_mapping(mode, &f, pm)?;
            if let Some(name) = pm.name.as_deref()
                && let Some(first) = names.insert(name, f.clone())
            {
                return Err(rule(
                    format!("{f}.name"),
                    format!("{name:?} is already used by {first}"),
                ));
            }
            // Container-side overlaps within one container (ranges, or any port when
            // container ports are host ports).
            let container_span = match (pm.container_port, pm.container_port_range.as_deref()) {
                (Some(p), _) => Some((pm.protocol(), p.get(), p.get())),
                (None, Some(r)) => parse_port_range(r).map(|(a, b)| (pm.protocol(), a, b)),
                (None, None) => None,
            };
            let strict = mode != NetworkMode::Bridge || pm.container_port_range.is_some();
            if let Some(span) = container_span {
                if let Some((_, first)) = own
                    .iter()
                    .find(|(s, k)| overlaps(*s, span) && (strict || is_range(c, *k)))
                {
                    return Err(rule(
                        f,
                        format!(
                            "maps {} container port {} that portMappings[{first}] already maps",
                            span.0,
                            describe(span)
                        ),
                    ));
                }
                own.push((span, j));
            }
            if let Some(span) = host_span(mode, pm) {
                if let Some((_, first)) = taken.iter().find(|(s, _)| overlaps(*s, span)) {
                    return Err(rule(
                        f,
                        format!(
                            "maps {} host port {} that {first} already maps in this task",
                            span.0,
                            describe(span)
                        ),
                    ));
                }
                taken.push((span, f));
            }
        }
    }
    Ok(())
}

fn is_range(c: &crate::taskdef::model::ContainerDefinition, j: usize) -> bool {
    c.port_mappings[j].container_port_range.is_some()
}

fn overlaps(a: (TransportProtocol, u16, u16), b: (TransportProtocol, u16, u16)) -> bool {
    a.0 == b.0 && a.1 <= b.2 && b.1 <= a.2
}

fn describe(span: (TransportProtocol, u16, u16)) -> String {
    if span.1 == span.2 {
        span.1.to_string()
    } else {
        format!("range {}-{}", span.1, span.2)
    }
}

/// Service Connect port names: up to 64 lowercase letters, digits, `_` and `-`, not
/// starting with `-`.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn check_mapping(mode: NetworkMode, f: &str, pm: &PortMapping) -> Result<(), ValidationError> {
    if let Some(name) = pm.name.as_deref() {
        ensure(is_port_name(name), || {
            rule(
                format!("{f}.name"),
                format!(
                    "{name:?} is invalid: up to 64 lowercase letters, numbers, underscores and hyphens, not starting with a hyphen"
                ),
            )
        })?;
    }
    match (pm.container_port, pm.container_port_range.as_deref()) {
        (Some(_), Some(_)) => Err(rule(
            f,
            "must set either containerPort or containerPortRange, not both",
        )),
        (None, None) => Err(rule(format!("{f}.containerPort"), "is required")),
        (None, Some(range)) => {
            ensure(parse_port_range(range).is_some(), || {
                rule(
                    format!("{f}.containerPortRange"),
                    format!("{range:?} must be \"first-last\" with 1 <= first < last <= 65535"),
                )
            })?;
            ensure(
                matches!(mode, NetworkMode::Bridge | NetworkMode::Awsvpc),
                || {
                    rule(
                        format!("{f}.containerPortRange"),
                        format!(
                            "is only supported when networkMode is bridge or awsvpc (networkMode is {mode})"
                        ),
                    )
                },
            )?;
            ensure(pm.host_port.is_none(), || {
                rule(
                    format!("{f}.hostPort"),
                    "must be empty when containerPortRange is set",
                )
            })
        }
        (Some(cp), None) => {
            if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host)
                && let Some(hp) = pm.host_port.filter(|h| h.get() != 0)
            {
                ensure(hp.get() == cp.get(), || {
                    rule(
                        format!("{f}.hostPort"),
                        // ECS's own sentence, after the field berth names.
                        format!(
                            "({hp}) must be empty or equal to containerPort ({cp}): When networkMode={mode}, the host ports and container ports in port mappings must match."
                        ),
                    )
                })?;
            }
            Ok(())
        }
    }
}
