//! ECS's registration rules, applied to a parsed [`TaskDefinition`].
//!
//! [`validate`] checks the task-level rules here and the per-container, port,
//! dependency and volume rules in the submodules, in a fixed order, and returns the
//! first violation as a [`ValidationError`] whose message starts with the path of the
//! field (`containerDefinitions[1].memory (128 MiB) must be …`). Every rule has a test
//! asserting its exact message in `tests.rs`.

mod container;
mod graph;
mod ports;
pub(crate) use ports::parse_port_range;
mod volumes;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::error::ErrorClass;

use super::model::{
    Compatibility, ContainerDefinition, IsolationMode, NetworkMode, Tag, TaskDefinition,
    TaskDefinitionPlacementConstraintType,
};
use super::units::{self, UnitError};
use super::{EcsException, Warning, warnings};

/// A rule the definition breaks. The message starts with the field's path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A registration rule of ECS (returned as `ClientException`).
    #[error("{message}")]
    Client { field: String, message: String },
    /// A malformed parameter (returned as `InvalidParameterException`): tags.
    #[error("{message}")]
    InvalidParameter { field: String, message: String },
}

impl ValidationError {
    /// Always [`ErrorClass::Invalid`].
    pub fn class(&self) -> ErrorClass {
        ErrorClass::Invalid
    }

    /// The ECS exception the API returns for this error.
    pub fn ecs_exception(&self) -> EcsException {
        match self {
            ValidationError::Client { .. } => EcsException::ClientException,
            ValidationError::InvalidParameter { .. } => EcsException::InvalidParameterException,
        }
    }

    /// The path of the offending field.
    pub fn field(&self) -> &str {
        match self {
            ValidationError::Client { field, .. }
            | ValidationError::InvalidParameter { field, .. } => field,
        }
    }

    /// The whole message (also the `Display` form).
    pub fn message(&self) -> &str {
        match self {
            ValidationError::Client { message, .. }
            | ValidationError::InvalidParameter { message, .. } => message,
        }
    }
}

/// A `ClientException` whose message is `"{field} {rest}"`.
pub(crate) fn rule(field: impl Into<String>, rest: impl AsRef<str>) -> ValidationError {
    let field = field.into();
    let message = format!("{field} {}", rest.as_ref());
    ValidationError::Client { field, message }
}

/// `Err(rule(..))` when `cond` holds.
pub(crate) fn ensure(ok: bool, f: impl FnOnce() -> ValidationError) -> Result<(), ValidationError> {
    if ok { Ok(()) } else { Err(f()) }
}

/// A task definition that passed every rule, with task cpu/memory normalized.
///
/// Only [`validate`] (and the registry, for definitions it stored after validating
/// them) constructs one, so holding one means the rules hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedTaskDefinition {
    def: TaskDefinition,
    tags: Vec<Tag>,
    cpu_units: Option<u32>,
    memory_mib: Option<u32>,
    warnings: Vec<Warning>,
}

impl ValidatedTaskDefinition {
    /// The definition, with task `cpu`/`memory` rewritten as units/MiB strings and
    /// `tags` moved to [`tags`](Self::tags).
    pub fn definition(&self) -> &TaskDefinition {
        &self.def
    }

    /// The family.
    pub fn family(&self) -> &str {
        self.def.family()
    }

    /// The containers, in definition order.
    pub fn containers(&self) -> &[ContainerDefinition] {
        &self.def.container_definitions
    }

    /// The container called `name`.
    pub fn container(&self, name: &str) -> Option<&ContainerDefinition> {
        self.def.container(name)
    }

    /// Tags given at registration.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// Task-level CPU in units (1024 per vCPU), if set.
    pub fn task_cpu_units(&self) -> Option<u32> {
        self.cpu_units
    }

    /// Task-level memory in MiB, if set.
    pub fn task_memory_mib(&self) -> Option<u32> {
        self.memory_mib
    }

    /// The network mode ECS's rules apply: as declared, `bridge` when unset.
    pub fn declared_network_mode(&self) -> NetworkMode {
        self.def.network_mode.unwrap_or(NetworkMode::Bridge)
    }

    /// How berth runs the task: as declared, and `awsvpc` (a network namespace per
    /// task, containers sharing localhost) when unset.
    pub fn effective_network_mode(&self) -> NetworkMode {
        self.def.network_mode.unwrap_or(NetworkMode::Awsvpc)
    }

    /// The fields berth accepted but cannot honour, each once.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Containers in an order that starts every container after the ones it
    /// `dependsOn` (stable: definition order among independent containers). Stop in
    /// the reverse order.
    pub fn start_order(&self) -> Vec<&ContainerDefinition> {
        graph::start_order(&self.def.container_definitions)
            .into_iter()
            .map(|i| &self.def.container_definitions[i])
            .collect()
    }

    /// Adds a warning (overrides add their own), keeping each once.
    pub(crate) fn push_warning(&mut self, warning: Warning) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }

    /// The definition and its tags.
    pub fn into_parts(self) -> (TaskDefinition, Vec<Tag>) {
        (self.def, self.tags)
    }

    /// Rebuilds a definition the registry stored after validating it. Rules are not
    /// re-run: a later berth with stricter rules must still load old revisions.
    pub(crate) fn from_stored(def: TaskDefinition) -> ValidatedTaskDefinition {
        let cpu_units = def
            .cpu
            .as_deref()
            .and_then(|s| units::parse_cpu_units(s).ok());
        let memory_mib = def
            .memory
            .as_deref()
            .and_then(|s| units::parse_memory_mib(s).ok());
        let warnings = warnings::collect(&def);
        ValidatedTaskDefinition {
            def,
            tags: Vec::new(),
            cpu_units,
            memory_mib,
            warnings,
        }
    }
}

/// Task-wide facts the container rules need.
pub(crate) struct Ctx<'a> {
    pub(crate) def: &'a TaskDefinition,
    /// The mode ECS's rules apply (bridge when unset).
    pub(crate) mode: NetworkMode,
    pub(crate) cpu: Option<u32>,
    pub(crate) memory: Option<u32>,
    /// Container name → index (first occurrence).
    pub(crate) names: HashMap<&'a str, usize>,
}

/// Up to 255 letters, numbers, hyphens and underscores: families, container and
/// volume names.
pub(crate) fn is_ecs_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

const NAME_RULE: &str =
    "up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed";

/// ECS's limit on containers per task definition.
pub const MAX_CONTAINERS: usize = 10;
const MIN_TASK_CPU: u32 = 128;
const MAX_TASK_CPU: u32 = 196_608;
/// The smallest memory limit ECS accepts (Docker 20.10 reserves 6 MiB per container).
pub const MIN_MEMORY_MIB: i32 = 6;

/// Checks every rule and returns the normalized definition with its warnings.
pub fn validate(mut def: TaskDefinition) -> Result<ValidatedTaskDefinition, ValidationError> {
    check_family(def.family.as_deref())?;
    let cpu = def.cpu.as_deref().map(parse_task_cpu).transpose()?;
    let memory = def.memory.as_deref().map(parse_task_memory).transpose()?;
    check_container_count(&def)?;
    validate_tags(&def.tags, "tags")?;

    let ctx = Ctx {
        def: &def,
        mode: def.network_mode.unwrap_or(NetworkMode::Bridge),
        cpu,
        memory,
        names: container_names(&def)?,
    };
    volumes::check(&def.volumes)?;
    for (i, c) in def.container_definitions.iter().enumerate() {
        container::check(&ctx, i, c)?;
    }
    ports::check(&ctx)?;
    graph::check(&ctx)?;
    check_essential(&def)?;
    check_task_totals(&ctx)?;
    check_task_options(&ctx)?;
    check_fargate(&ctx)?;

    def.cpu = cpu.map(|c| c.to_string());
    def.memory = memory.map(|m| m.to_string());
    let tags = std::mem::take(&mut def.tags);
    let warnings = warnings::collect(&def);
    Ok(ValidatedTaskDefinition {
        def,
        tags,
        cpu_units: cpu,
        memory_mib: memory,
        warnings,
    })
}

fn check_family(family: Option<&str>) -> Result<(), ValidationError> {
    let Some(family) = family else {
        return Err(rule("family", "is required"));
    };
    ensure(is_ecs_name(family), || {
        rule("family", format!("{family:?} is invalid: {NAME_RULE}"))
    })
}

/// Task `cpu` in units, range-checked for EC2/EXTERNAL (128–196608).
pub(crate) fn parse_task_cpu(s: &str) -> Result<u32, ValidationError> {
    let units = units::parse_cpu_units(s).map_err(|e| match e {
        UnitError::Fraction => rule(
            "cpu",
            format!("{s:?} is not a whole number of CPU units (1 vCPU is 1024 units)"),
        ),
        UnitError::Syntax | UnitError::Overflow => rule(
            "cpu",
            format!("{s:?} is invalid: use CPU units (e.g. \"1024\") or vCPUs (e.g. \"1 vCPU\")"),
        ),
    })?;
    ensure((MIN_TASK_CPU..=MAX_TASK_CPU).contains(&units), || {
        rule(
            "cpu",
            format!(
                "({units} units) must be between 128 and 196608 CPU units (0.125 to 192 vCPUs)"
            ),
        )
    })?;
    Ok(units)
}

/// Task `memory` in MiB, at least 6.
pub(crate) fn parse_task_memory(s: &str) -> Result<u32, ValidationError> {
    let mib = units::parse_memory_mib(s).map_err(|e| match e {
        UnitError::Fraction => rule(
            "memory",
            format!("{s:?} is not a whole number of MiB (1 GB is 1024 MiB)"),
        ),
        UnitError::Syntax | UnitError::Overflow => rule(
            "memory",
            format!("{s:?} is invalid: use MiB (e.g. \"512\") or GB (e.g. \"1 GB\")"),
        ),
    })?;
    ensure(mib >= MIN_MEMORY_MIB as u32, || {
        rule("memory", format!("({mib} MiB) must be at least 6 MiB"))
    })?;
    Ok(mib)
}

fn check_container_count(def: &TaskDefinition) -> Result<(), ValidationError> {
    let n = def.container_definitions.len();
    ensure(n > 0, || {
        rule(
            "containerDefinitions",
            "must contain at least one container definition",
        )
    })?;
    ensure(n <= MAX_CONTAINERS, || {
        rule(
            "containerDefinitions",
            format!("has {n} containers; at most {MAX_CONTAINERS} are allowed"),
        )
    })
}

fn container_names(def: &TaskDefinition) -> Result<HashMap<&str, usize>, ValidationError> {
    let mut names = HashMap::new();
    for (i, c) in def.container_definitions.iter().enumerate() {
        let field = format!("containerDefinitions[{i}].name");
        let Some(name) = c.name.as_deref() else {
            return Err(rule(field, "is required"));
        };
        ensure(is_ecs_name(name), || {
            rule(&field, format!("{name:?} is invalid: {NAME_RULE}"))
        })?;
        if let Some(first) = names.insert(name, i) {
            return Err(rule(
                field,
                format!("{name:?} is already used by containerDefinitions[{first}]"),
            ));
        }
    }
    Ok(names)
}

fn check_essential(def: &TaskDefinition) -> Result<(), ValidationError> {
    ensure(
        def.container_definitions
            .iter()
            .any(ContainerDefinition::is_essential),
        || {
            rule(
                "containerDefinitions",
                "must have at least one essential container (essential defaults to true)",
            )
        },
    )
}

/// The task's cpu and memory bound what its containers reserve.
fn check_task_totals(ctx: &Ctx<'_>) -> Result<(), ValidationError> {
    let containers = &ctx.def.container_definitions;
    if let Some(task_cpu) = ctx.cpu {
        let sum: i64 = containers
            .iter()
            .map(|c| i64::from(c.cpu.unwrap_or(0)))
            .sum();
        ensure(sum <= i64::from(task_cpu), || {
            rule(
                "containerDefinitions",
                format!(
                    "cpu values add up to {sum} units, more than the task cpu ({task_cpu} units)"
                ),
            )
        })?;
    }
    if let Some(task_mem) = ctx.memory {
        let sum: i64 = containers
            .iter()
            .filter_map(|c| c.reserved_memory_mib())
            .map(i64::from)
            .sum();
        ensure(sum <= i64::from(task_mem), || {
            rule(
                "containerDefinitions",
                format!(
                    "reserve {sum} MiB (memoryReservation, or memory where no reservation is set), \
                     more than the task memory ({task_mem} MiB)"
                ),
            )
        })?;
    }
    Ok(())
}

fn check_task_options(ctx: &Ctx<'_>) -> Result<(), ValidationError> {
    let def = ctx.def;
    ensure(def.placement_constraints.len() <= 10, || {
        rule(
            "placementConstraints",
            format!(
                "has {} constraints; at most 10 are allowed",
                def.placement_constraints.len()
            ),
        )
    })?;
    for (i, pc) in def.placement_constraints.iter().enumerate() {
        let field = format!("placementConstraints[{i}]");
        ensure(pc.kind.is_some(), || {
            rule(format!("{field}.type"), "is required")
        })?;
        if pc.kind == Some(TaskDefinitionPlacementConstraintType::MemberOf) {
            ensure(
                pc.expression
                    .as_deref()
                    .is_some_and(|e| !e.trim().is_empty()),
                || {
                    rule(
                        format!("{field}.expression"),
                        "is required for a memberOf constraint",
                    )
                },
            )?;
        }
    }
    if let Some(proxy) = &def.proxy_configuration {
        ensure(
            ctx.names.contains_key(proxy.container_name.as_str()),
            || {
                rule(
                    "proxyConfiguration.containerName",
                    format!(
                        "{:?} is not a container in this task definition",
                        proxy.container_name
                    ),
                )
            },
        )?;
        ensure(ctx.mode == NetworkMode::Awsvpc, || {
            rule(
                "proxyConfiguration",
                format!("requires networkMode awsvpc (networkMode is {})", ctx.mode),
            )
        })?;
    }
    let mut devices: HashMap<&str, usize> = HashMap::new();
    for (i, acc) in def.inference_accelerators.iter().enumerate() {
        if let Some(first) = devices.insert(acc.device_name.as_str(), i) {
            return Err(rule(
                format!("inferenceAccelerators[{i}].deviceName"),
                format!(
                    "{:?} is already used by inferenceAccelerators[{first}]",
                    acc.device_name
                ),
            ));
        }
    }
    if let Some(es) = &def.ephemeral_storage {
        ensure((21..=200).contains(&es.size_in_gib), || {
            rule(
                "ephemeralStorage.sizeInGiB",
                format!("({}) must be between 21 and 200", es.size_in_gib),
            )
        })?;
    }
    if let Some(te) = &def.trusted_execution_configuration {
        let missing = te.attestation_policy.as_deref().is_none_or(str::is_empty);
        ensure(
            te.isolation_mode != IsolationMode::ConfidentialSandbox || !missing,
            || {
                rule(
                    "trustedExecutionConfiguration.attestationPolicy",
                    "is required when isolationMode is CONFIDENTIAL_SANDBOX",
                )
            },
        )?;
    }
    Ok(())
}

/// With `requiresCompatibilities: [FARGATE]`, ECS validates Fargate's constraints, so a
/// file that registers on berth also registers on ECS.
fn check_fargate(ctx: &Ctx<'_>) -> Result<(), ValidationError> {
    if !ctx
        .def
        .requires_compatibilities
        .contains(&Compatibility::Fargate)
    {
        return Ok(());
    }
    const WHY: &str = "when requiresCompatibilities includes FARGATE";
    ensure(ctx.def.network_mode == Some(NetworkMode::Awsvpc), || {
        rule("networkMode", format!("must be awsvpc {WHY}"))
    })?;
    let cpu = ctx
        .cpu
        .ok_or_else(|| rule("cpu", format!("is required {WHY}")))?;
    let memory = ctx
        .memory
        .ok_or_else(|| rule("memory", format!("is required {WHY}")))?;
    ensure(units::is_fargate_size(cpu, memory), || {
        rule(
            "memory",
            format!(
                "({memory} MiB) with cpu ({cpu} units) is not a Fargate task size {WHY} \
                 (see \"Task size\" in the ECS developer guide)"
            ),
        )
    })
}

/// Tag rules (ECS `Tag` shape): at most 50, keys 1–128 and values 0–256 characters of
/// letters, numbers, spaces and `_ . : / = + - @`, unique keys, no `aws:` prefix.
/// `InvalidParameterException`, as for TagResource.
pub fn validate_tags(tags: &[Tag], field: &str) -> Result<(), ValidationError> {
    let bad = |f: String, rest: String| {
        let message = format!("{f} {rest}");
        ValidationError::InvalidParameter { field: f, message }
    };
    if tags.len() > 50 {
        return Err(bad(
            field.to_owned(),
            format!("has {} tags; at most 50 are allowed", tags.len()),
        ));
    }
    let allowed = |s: &str| {
        s.chars()
            .all(|c| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c))
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, tag) in tags.iter().enumerate() {
        let kf = format!("{field}[{i}].key");
        let key = tag.key.as_deref().unwrap_or_default();
        if key.is_empty() {
            return Err(bad(kf, "is required".into()));
        }
        if key.chars().count() > 128 {
            return Err(bad(kf, "is longer than 128 characters".into()));
        }
        if !allowed(key) {
            return Err(bad(
                kf,
                format!("{key:?} may only contain letters, numbers, spaces and _ . : / = + - @"),
            ));
        }
        if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
            return Err(bad(kf, format!("{key:?} uses the reserved prefix aws:")));
        }
        if let Some(first) = seen.insert(key, i) {
            return Err(bad(
                kf,
                format!("{key:?} is already used by {field}[{first}]"),
            ));
        }
        let value = tag.value.as_deref().unwrap_or_default();
        let vf = format!("{field}[{i}].value");
        if value.chars().count() > 256 {
            return Err(bad(vf, "is longer than 256 characters".into()));
        }
        if !allowed(value) {
            return Err(bad(
                vf,
                format!("{value:?} may only contain letters, numbers, spaces and _ . : / = + - @"),
            ));
        }
    }
    Ok(())
}
