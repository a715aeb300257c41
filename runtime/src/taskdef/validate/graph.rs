//! `dependsOn` and `volumesFrom`: references between containers, and cycles.

use std::collections::HashMap;

use super::{Ctx, ValidationError, ensure, rule};
use crate::taskdef::model::{ContainerCondition, ContainerDefinition};

pub(super) fn check(ctx: &Ctx<'_>) -> Result<(), ValidationError> {
    let containers = &ctx.def.container_definitions;
    for (i, c) in containers.iter().enumerate() {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (j, dep) in c.depends_on.iter().enumerate() {
            let f = format!("containerDefinitions[{i}].dependsOn[{j}]");
            let target = dep.container_name.as_str();
            ensure(target != c.name(), || {
                rule(
                    format!("{f}.containerName"),
                    format!("{target:?}: a container cannot depend on itself"),
                )
            })?;
            let Some(&t) = ctx.names.get(target) else {
                return Err(rule(
                    format!("{f}.containerName"),
                    format!("{target:?} is not a container in this task definition"),
                ));
            };
            if let Some(first) = seen.insert(target, j) {
                return Err(rule(
                    format!("{f}.containerName"),
                    format!("{target:?} is already a dependency in dependsOn[{first}]"),
                ));
            }
            let target_def = &containers[t];
            match dep.condition {
                ContainerCondition::Complete | ContainerCondition::Success => {
                    ensure(!target_def.is_essential(), || {
                        rule(
                            format!("{f}.condition"),
                            format!(
                                "{} cannot be used on essential container {target:?} (set its essential to false)",
                                dep.condition
                            ),
                        )
                    })?;
                }
                ContainerCondition::Healthy => {
                    ensure(target_def.health_check.is_some(), || {
                        rule(
                            format!("{f}.condition"),
                            format!("HEALTHY requires container {target:?} to have a healthCheck"),
                        )
                    })?;
                }
                ContainerCondition::Start => {}
            }
        }
    }
    let deps = edges(containers, |c| {
        c.depends_on
            .iter()
            .map(|d| d.container_name.as_str())
            .collect()
    });
    if let Some(cycle) = find_cycle(containers, &deps) {
        return Err(rule(
            format!("containerDefinitions[{}].dependsOn", cycle[0]),
            format!("forms a cycle: {}", path(containers, &cycle)),
        ));
    }
    let from = edges(containers, |c| {
        c.volumes_from
            .iter()
            .filter_map(|v| v.source_container.as_deref())
            .collect()
    });
    if let Some(cycle) = find_cycle(containers, &from) {
        return Err(rule(
            format!("containerDefinitions[{}].volumesFrom", cycle[0]),
            format!("forms a cycle: {}", path(containers, &cycle)),
        ));
    }
    Ok(())
}

/// For each container, the indices of the containers it names (unknown names are
/// skipped: they were reported before this runs, or are absent in stored data).
fn edges(
    containers: &[ContainerDefinition],
    targets: impl Fn(&ContainerDefinition) -> Vec<&str>,
) -> Vec<Vec<usize>> {
    let index: HashMap<&str, usize> = containers
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name(), i))
        .collect();
    containers
        .iter()
        .map(|c| {
            targets(c)
                .into_iter()
                .filter_map(|n| index.get(n).copied())
                .collect()
        })
        .collect()
}

/// A cycle as a list of indices starting and ending at the same container.
fn find_cycle(containers: &[ContainerDefinition], edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        n: usize,
        edges: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[n] = Mark::Active;
        stack.push(n);
        for &m in &edges[n] {
            match marks[m] {
                Mark::Active => {
                    let start = stack.iter().position(|&s| s == m).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(m);
                    return Some(cycle);
                }
                Mark::New => {
                    if let Some(c) = visit(m, edges, marks, stack) {
                        return Some(c);
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[n] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; containers.len()];
    for n in 0..containers.len() {
        if marks[n] == Mark::New
            && let Some(c) = visit(n, edges, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

fn path(containers: &[ContainerDefinition], cycle: &[usize]) -> String {
    cycle
        .iter()
        .map(|&i| containers[i].name())
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Indices in dependency order (Kahn's algorithm, lowest index first among ready
/// containers). Containers caught in a cycle (only possible for unvalidated input)
/// come last, in definition order.
pub(super) fn start_order(containers: &[ContainerDefinition]) -> Vec<usize> {
    let deps = edges(containers, |c| {
        c.depends_on
            .iter()
            .map(|d| d.container_name.as_str())
            .collect()
    });
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut done = vec![false; containers.len()];
    let mut order = Vec::with_capacity(containers.len());
    while order.len() < containers.len() {
        let Some(next) = (0..containers.len()).find(|&i| !done[i] && remaining[i] == 0) else {
            order.extend((0..containers.len()).filter(|&i| !done[i]));
            break;
        };
        done[next] = true;
        order.push(next);
        for (i, d) in deps.iter().enumerate() {
            remaining[i] -= d.iter().filter(|&&t| t == next).count();
        }
    }
    order
}
