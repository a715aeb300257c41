//! RunTask: resolving the definition, admission against the host's resources, and
//! recording each task (with its address lease and host ports) before anything else
//! happens.

use berth_netns::NetworkMode;
use serde::Serialize;

use super::{Engine, EngineError, arn, driver, host, netplan, now};
use crate::db::DbError;
use crate::state::model::{
    Attachment, Container, LogStreamName, Tag, Task, TaskRecord, TaskRuntime, status,
};
use crate::state::repo::{self, HostPort};
use crate::taskdef::{self, TaskOverride, ValidatedTaskDefinition};

/// How long a RunTask clientToken is remembered (ECS: 24 hours).
const TOKEN_TTL_SECS: f64 = 24.0 * 3600.0;

/// RunTask's input, parsed.
#[derive(Debug, Clone, Default)]
pub struct RunTaskRequest {
    pub cluster: Option<String>,
    pub task_definition: String,
    pub count: u32,
    pub overrides: Option<TaskOverride>,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub tags: Vec<Tag>,
    /// Copy the task definition's tags to the task (`propagateTags: TASK_DEFINITION`).
    pub propagate_task_definition_tags: bool,
    pub client_token: Option<String>,
    /// A service's deployment starts it: its revision may have been deregistered since
    /// (see `registry::resolve_for_service`).
    pub for_service: bool,
    /// A digest of the whole request, to tell a retry from a different request with
    /// the same clientToken.
    pub request_hash: String,
}

/// ECS `Failure`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// RunTask's output.
#[derive(Debug, Clone)]
pub struct RunTaskResult {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

impl Engine {
    /// RunTask: admits up to `count` tasks and starts them. A task that does not fit
    /// (CPU, memory, a host port) comes back in `failures` with ECS's reason.
    pub async fn run_task(&self, req: RunTaskRequest) -> Result<RunTaskResult, EngineError> {
        if req.count == 0 || req.count > 10 {
            return Err(EngineError::Invalid(
                "count must be between 1 and 10".into(),
            ));
        }
        let cluster = self.require_cluster(req.cluster.as_deref()).await?;
        if let Some(token) = &req.client_token {
            if token.is_empty() || token.len() > 64 || !token.is_ascii() {
                return Err(EngineError::Invalid(
                    "clientToken must be 1 to 64 ASCII characters".into(),
                ));
            }
            let (c, t) = (cluster.clone(), token.clone());
            let known = self
                .db()
                .call(move |db| repo::get_run_token(db.conn(), &c, &t, now(), TOKEN_TTL_SECS))
                .await?;
            if let Some(known) = known {
                return self.earlier_run(&cluster, &req, known).await;
            }
        }

        let scope = self.taskdef_scope();
        let reference = req.task_definition.clone();
        let propagate = req.propagate_task_definition_tags;
        let for_service = req.for_service;
        let (registered, td_tags) = self
            .db()
            .call(move |db| -> Result<_, taskdef::registry::RegistryError> {
                let td = if for_service {
                    taskdef::registry::resolve_for_service(db.conn(), &scope, &reference)?
                } else {
                    taskdef::registry::resolve_runnable(db.conn(), &scope, &reference)?
                };
                // A definition's tags live in the registry's tag table (TagResource
                // changes them), not in the stored definition.
                let tags = if propagate {
                    taskdef::registry::list_tags(db.conn(), &scope, &td.arn)?
                } else {
                    Vec::new()
                };
                Ok((td, tags))
            })
            .await?;
        let td_arn = registered.arn.clone();
        let family = registered.family.clone();
        let effective = match &req.overrides {
            Some(o) => taskdef::apply_overrides(&registered.definition, o)?,
            None => registered.definition,
        };
        let plan = TaskPlan::new(self, &cluster, &td_arn, &family, &effective, &req)?;
        let mut tags = req.tags.clone();
        for t in td_tags {
            if let (Some(key), value) = (t.key.clone(), t.value.clone())
                && !tags.iter().any(|x| x.key == key)
            {
                tags.push(Tag {
                    key,
                    value: value.unwrap_or_default(),
                });
            }
        }

        let host = self.host();
        let subnet = *self.inner().net.subnet();
        let count = req.count;
        let token = req.client_token.clone();
        let hash = req.request_hash.clone();
        let cluster2 = cluster.clone();
        let admitted = self
            .db()
            .call(move |db| -> Result<_, DbError> {
                let tx = db
                    .conn_mut()
                    .transaction()
                    .map_err(|source| DbError::Query {
                        context: "starting RunTask".into(),
                        source,
                    })?;
                // A retry that overlapped the first call passed the check above before
                // the first call committed: the check that counts is the one inside
                // this transaction, which the database thread runs alone.
                if let Some(token) = &token
                    && let Some(known) =
                        repo::get_run_token(&tx, &cluster2, token, now(), TOKEN_TTL_SECS)?
                {
                    return Ok(Admitted::Earlier(known));
                }
                let active = repo::active_tasks(&tx)?;
                let (mut cpu, mut mem) = host::reserved(&active);
                let mut records = Vec::new();
                let mut failures = Vec::new();
                for _ in 0..count {
                    let instance = plan.instance_arn.clone();
                    if cpu + plan.cpu > host.cpu_units {
                        failures.push(Failure {
                            arn: Some(instance),
                            reason: "RESOURCE:CPU".into(),
                            detail: None,
                        });
                        continue;
                    }
                    if mem + plan.memory_mib > host.memory_mib {
                        failures.push(Failure {
                            arn: Some(instance),
                            reason: "RESOURCE:MEMORY".into(),
                            detail: None,
                        });
                        continue;
                    }
                    let rec = plan.record();
                    match repo::reserve_host_ports(&tx, &rec.id, &plan.fixed_ports)? {
                        Ok(()) => {}
                        Err(conflicts) => {
                            let detail = conflicts
                                .iter()
                                .map(|p| format!("{}:{}/{}", p.bind_ip, p.port, p.protocol))
                                .collect::<Vec<_>>()
                                .join(", ");
                            failures.push(Failure {
                                arn: Some(instance),
                                reason: "RESOURCE:PORTS".into(),
                                detail: Some(format!("host ports already in use: {detail}")),
                            });
                            continue;
                        }
                    }
                    let mut leased = Vec::with_capacity(plan.addresses);
                    for _ in 0..plan.addresses {
                        let used = repo::leased_addresses(&tx)?;
                        match subnet
                            .allocate(|a| used.contains(&a), used.iter().next_back().copied())
                        {
                            Ok(a) => {
                                repo::insert_lease(&tx, &rec.id, a, now())?;
                                leased.push(a);
                            }
                            Err(_) => {
                                failures.push(Failure {
                                    arn: Some(plan.instance_arn.clone()),
                                    reason: "RESOURCE:ENI".into(),
                                    detail: Some("no free address in berth's task subnet".into()),
                                });
                            }
                        }
                    }
                    if failures.last().is_some_and(|f| f.reason == "RESOURCE:ENI") {
                        repo::release_task_resources(&tx, &rec.id)?;
                        continue;
                    }
                    repo::insert_task(&tx, &rec)?;
                    repo::put_tags(&tx, &rec.task.task_arn, &tags)?;
                    cpu += plan.cpu;
                    mem += plan.memory_mib;
                    records.push(driver::AdmittedTask {
                        rec,
                        addresses: leased,
                    });
                }
                if let Some(token) = token {
                    let ids: Vec<String> = records.iter().map(|r| r.rec.id.clone()).collect();
                    repo::put_run_token(&tx, &cluster2, &token, &hash, &ids, now())?;
                }
                tx.commit().map_err(|source| DbError::Query {
                    context: "committing RunTask".into(),
                    source,
                })?;
                Ok(Admitted::New(records, failures))
            })
            .await?;
        let (records, failures) = match admitted {
            Admitted::New(records, failures) => (records, failures),
            Admitted::Earlier(known) => {
                return self.earlier_run(&cluster, &req, known).await;
            }
        };
        let mut tasks = Vec::new();
        for admitted in records {
            tasks.push(admitted.rec.task.clone());
            let id = admitted.rec.id.clone();
            driver::spawn(self, id, driver::Start::Provision(Box::new(admitted)));
        }
        Ok(RunTaskResult { tasks, failures })
    }

    /// The answer to a RunTask whose clientToken an earlier call already used: that
    /// call's tasks, or a conflict when the parameters differ.
    async fn earlier_run(
        &self,
        cluster: &str,
        req: &RunTaskRequest,
        (hash, ids): (String, Vec<String>),
    ) -> Result<RunTaskResult, EngineError> {
        if hash != req.request_hash {
            return Err(EngineError::Conflict(format!(
                "The clientToken {} was already used with different parameters",
                req.client_token.as_deref().unwrap_or_default()
            )));
        }
        let (tasks, _) = self.describe_tasks(Some(cluster), ids, false).await?;
        Ok(RunTaskResult {
            tasks,
            failures: vec![],
        })
    }

    /// The scope task-definition ARNs are minted in.
    pub fn taskdef_scope(&self) -> taskdef::registry::ArnScope {
        taskdef::registry::ArnScope::new(&self.arn().region, &self.arn().account)
    }
}

/// What RunTask's admission transaction decided.
enum Admitted {
    /// New tasks with what they leased, and the tasks that did not fit.
    New(Vec<driver::AdmittedTask>, Vec<Failure>),
    /// An earlier call with the same clientToken: its request hash and task ids.
    Earlier((String, Vec<String>)),
}

/// A container's name, image, cpu, memory and memoryReservation, as the task record
/// starts out.
type ContainerSeed = (String, String, Option<i32>, Option<i32>, Option<i32>);

/// Everything RunTask decides once for all `count` tasks.
#[derive(Debug, Clone)]
struct TaskPlan {
    cluster: String,
    cluster_arn: String,
    instance_arn: String,
    td_arn: String,
    family: String,
    definition: serde_json::Value,
    overrides: serde_json::Value,
    mode: NetworkMode,
    cpu: u64,
    memory_mib: u64,
    task_cpu: Option<String>,
    task_memory: Option<String>,
    started_by: Option<String>,
    group: String,
    warnings: Vec<String>,
    fixed_ports: Vec<HostPort>,
    addresses: usize,
    /// Per container: `(awslogs-group, awslogs-stream-prefix)` when it logs with awslogs.
    awslogs: Vec<(String, String, Option<String>)>,
    containers: Vec<ContainerSeed>,
    scope: arn::ArnScope,
}

impl TaskPlan {
    fn new(
        engine: &Engine,
        cluster: &str,
        td_arn: &str,
        family: &str,
        def: &ValidatedTaskDefinition,
        req: &RunTaskRequest,
    ) -> Result<TaskPlan, EngineError> {
        let mode = network_mode(def);
        netplan::check_shared_namespace(def, mode)?;
        let publish = engine.config().network.publish_address;
        let mut fixed_ports = Vec::new();
        for c in def.containers() {
            for pm in &c.port_mappings {
                let protocol = pm.protocol().as_str().to_owned();
                for (_, plan) in netplan::host_port_plans(def, mode, pm) {
                    let netplan::HostPortPlan::Fixed(port) = plan else {
                        continue;
                    };
                    let port = port.get();
                    let bind_ip = if mode == NetworkMode::Host {
                        "0.0.0.0".to_owned()
                    } else {
                        publish.to_string()
                    };
                    fixed_ports.push(HostPort {
                        bind_ip,
                        protocol: protocol.clone(),
                        port,
                    });
                }
            }
        }
        let addresses = match mode {
            NetworkMode::Awsvpc => 1,
            NetworkMode::Bridge => def.containers().len(),
            NetworkMode::Host | NetworkMode::None => 0,
        };
        let (cpu, memory_mib) = host::task_reservation(def);
        let definition = serde_json::to_value(def.definition()).map_err(|e| {
            EngineError::Invalid(format!("task definition does not serialize: {e}"))
        })?;
        let overrides = match &req.overrides {
            Some(o) => {
                let mut v = serde_json::to_value(o).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.entry("containerOverrides")
                        .or_insert(serde_json::json!([]));
                    m.entry("inferenceAcceleratorOverrides")
                        .or_insert(serde_json::json!([]));
                }
                v
            }
            None => {
                serde_json::json!({"containerOverrides": [], "inferenceAcceleratorOverrides": []})
            }
        };
        Ok(TaskPlan {
            cluster: cluster.to_owned(),
            cluster_arn: engine.arn().cluster(cluster),
            instance_arn: engine.container_instance_arn(cluster),
            td_arn: td_arn.to_owned(),
            family: family.to_owned(),
            definition,
            overrides,
            mode,
            cpu,
            memory_mib,
            task_cpu: def.definition().cpu.clone(),
            task_memory: def.definition().memory.clone(),
            started_by: req.started_by.clone(),
            group: req
                .group
                .clone()
                .unwrap_or_else(|| format!("family:{family}")),
            warnings: def.warnings().iter().map(ToString::to_string).collect(),
            fixed_ports,
            addresses,
            awslogs: def
                .containers()
                .iter()
                .filter_map(|c| {
                    let lc = c.log_configuration.as_ref()?;
                    if lc.log_driver.as_str() != "awslogs" {
                        return None;
                    }
                    let group = lc.options.get("awslogs-group")?.clone();
                    Some((
                        c.name.clone().unwrap_or_default(),
                        group,
                        lc.options.get("awslogs-stream-prefix").cloned(),
                    ))
                })
                .collect(),
            containers: def
                .containers()
                .iter()
                .map(|c| {
                    (
                        c.name.clone().unwrap_or_default(),
                        c.image.clone().unwrap_or_default(),
                        c.cpu,
                        c.memory,
                        c.memory_reservation,
                    )
                })
                .collect(),
            scope: engine.arn().clone(),
        })
    }

    fn record(&self) -> TaskRecord {
        let id = arn::random_hex(16);
        let task_arn = self.scope.task(&self.cluster, &id);
        let containers = self
            .containers
            .iter()
            .map(|(name, image, cpu, memory, reservation)| Container {
                container_arn: self.scope.container(&self.cluster, &id, &arn::uuid()),
                task_arn: task_arn.clone(),
                name: name.clone(),
                image: image.clone(),
                image_digest: None,
                runtime_id: None,
                last_status: "PENDING".into(),
                exit_code: None,
                reason: None,
                network_bindings: vec![],
                network_interfaces: vec![],
                health_status: "UNKNOWN".into(),
                cpu: Some(cpu.unwrap_or(0).to_string()),
                memory: memory.map(|m| m.to_string()),
                memory_reservation: reservation.map(|m| m.to_string()),
                health: None,
                restart_count: 0,
            })
            .collect();
        let attachments = if self.mode == NetworkMode::Awsvpc {
            vec![Attachment {
                id: arn::uuid(),
                kind: "ElasticNetworkInterface".into(),
                status: "PRECREATED".into(),
                details: vec![],
            }]
        } else {
            vec![]
        };
        let created = now();
        TaskRecord {
            id: id.clone(),
            cluster: self.cluster.clone(),
            family: self.family.clone(),
            task: Task {
                task_arn,
                cluster_arn: self.cluster_arn.clone(),
                task_definition_arn: self.td_arn.clone(),
                container_instance_arn: self.instance_arn.clone(),
                last_status: status::PROVISIONING.into(),
                desired_status: "RUNNING".into(),
                cpu: self.task_cpu.clone(),
                memory: self.task_memory.clone(),
                containers,
                started_by: self.started_by.clone(),
                group: self.group.clone(),
                launch_type: "EC2".into(),
                availability_zone: "local".into(),
                connectivity: "CONNECTED".into(),
                connectivity_at: Some(created),
                version: 1,
                created_at: created,
                pull_started_at: None,
                pull_stopped_at: None,
                started_at: None,
                stopping_at: None,
                execution_stopped_at: None,
                stopped_at: None,
                stop_code: None,
                stopped_reason: None,
                health_status: "UNKNOWN".into(),
                attachments,
                overrides: self.overrides.clone(),
                enable_execute_command: false,
                stopped_by_container: None,
                tags: vec![],
            },
            runtime: TaskRuntime {
                definition: self.definition.clone(),
                network_mode: self.mode.as_str().to_owned(),
                warnings: self.warnings.clone(),
                reserved_cpu: self.cpu,
                reserved_memory_mib: self.memory_mib,
                metadata_ids: self
                    .containers
                    .iter()
                    .map(|(name, ..)| (name.clone(), arn::task_endpoint_id(&id, 8)))
                    .collect(),
                credentials_id: self.definition["taskRoleArn"]
                    .as_str()
                    .is_some_and(|r| !r.is_empty())
                    .then(|| arn::task_endpoint_id(&id, 16)),
                // CloudWatch Logs' names for each container's stream, as ECS forms
                // them: `<prefix>/<container>/<task-id>` in `<group>`.
                log_names: self
                    .awslogs
                    .iter()
                    .map(|(name, group, prefix)| {
                        let stream = match prefix {
                            Some(p) => format!("{p}/{name}/{id}"),
                            None => id.clone(),
                        };
                        (
                            name.clone(),
                            LogStreamName {
                                group: group.clone(),
                                stream,
                            },
                        )
                    })
                    .collect(),
                ..Default::default()
            },
        }
    }
}

/// The mode berth runs a definition with (`awsvpc` when unset).
pub(crate) fn network_mode(def: &ValidatedTaskDefinition) -> NetworkMode {
    match def.effective_network_mode() {
        taskdef::NetworkMode::Awsvpc => NetworkMode::Awsvpc,
        taskdef::NetworkMode::Bridge => NetworkMode::Bridge,
        taskdef::NetworkMode::Host => NetworkMode::Host,
        taskdef::NetworkMode::None => NetworkMode::None,
    }
}
