//! Validation rules for mounts and volumes, ulimits, sysctls and resources, port
//! mappings, `dependsOn`, normalisation, and the warnings for fields one host cannot
//! honour.

use serde_json::json;

use super::*;

#[test]
fn mount_and_volume_rules() {
    let vol = json!([{"name": "data"}]);
    let with = |mounts: Value| {
        task(
            json!({"volumes": vol, "containerDefinitions": [c("app", json!({ "mountPoints": mounts }))]}),
        )
    };
    let p = "containerDefinitions[0]";
    let vols = |v: Value| task(json!({ "volumes": v }));
    assert_rules(
        vec![
            (
                with(json!([{"containerPath": "/d"}])),
                &format!("{p}.mountPoints[0].sourceVolume is required"),
            ),
            (
                with(json!([{"sourceVolume": "logs", "containerPath": "/d"}])),
                &format!(
                    "{p}.mountPoints[0].sourceVolume \"logs\" is not a volume of this task definition (declare it in volumes)"
                ),
            ),
            (
                with(json!([{"sourceVolume": "data"}])),
                &format!("{p}.mountPoints[0].containerPath is required"),
            ),
            (
                with(json!([{"sourceVolume": "data", "containerPath": "d"}])),
                &format!("{p}.mountPoints[0].containerPath \"d\" must be an absolute path"),
            ),
            (
                with(
                    json!([{"sourceVolume": "data", "containerPath": "/d"}, {"sourceVolume": "data", "containerPath": "/d/"}]),
                ),
                &format!(
                    "{p}.mountPoints[1].containerPath \"/d/\" is already mounted by mountPoints[0]"
                ),
            ),
            (
                task(
                    json!({"volumes": vol, "containerDefinitions": [c("app", json!({
                    "mountPoints": [{"sourceVolume": "data", "containerPath": "/tmp"}],
                    "linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 8}]}}))]}),
                ),
                &format!(
                    "{p}.linuxParameters.tmpfs[0].containerPath \"/tmp\" is already mounted by mountPoints[0]"
                ),
            ),
            (
                ctr(json!({"volumesFrom": [{"readOnly": true}]})),
                &format!("{p}.volumesFrom[0].sourceContainer is required"),
            ),
            (
                ctr(json!({"volumesFrom": [{"sourceContainer": "app"}]})),
                &format!(
                    "{p}.volumesFrom[0].sourceContainer \"app\": a container cannot mount volumes from itself"
                ),
            ),
            (
                ctr(json!({"volumesFrom": [{"sourceContainer": "db"}]})),
                &format!(
                    "{p}.volumesFrom[0].sourceContainer \"db\" is not a container in this task definition"
                ),
            ),
            (
                containers(json!([
                    c("a", json!({"volumesFrom": [{"sourceContainer": "b"}]})),
                    c("b", json!({"volumesFrom": [{"sourceContainer": "a"}]}))
                ])),
                "containerDefinitions[0].volumesFrom forms a cycle: a -> b -> a",
            ),
            (vols(json!([{"host": {}}])), "volumes[0].name is required"),
            (
                vols(json!([{"name": "my data"}])),
                "volumes[0].name \"my data\" is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens and underscores are allowed",
            ),
            (
                vols(json!([{"name": "d"}, {"name": "d"}])),
                "volumes[1].name \"d\" is already used by volumes[0]",
            ),
            (
                vols(
                    json!([{"name": "d", "host": {"sourcePath": "/srv"}, "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]),
                ),
                "volumes[0] must set only one of host, dockerVolumeConfiguration, efsVolumeConfiguration, s3filesVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and configuredAtLaunch (it sets host and efsVolumeConfiguration)",
            ),
            (
                vols(json!([{"name": "d", "host": {"sourcePath": "srv"}}])),
                "volumes[0].host.sourcePath \"srv\" must be an absolute path",
            ),
            (
                vols(json!([{"name": "d", "dockerVolumeConfiguration": {"autoprovision": true}}])),
                "volumes[0].dockerVolumeConfiguration.autoprovision can only be true when scope is shared",
            ),
            (
                vols(
                    json!([{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "rootDirectory": "/x",
                    "transitEncryption": "ENABLED", "authorizationConfig": {"accessPointId": "fsap-1"}}}]),
                ),
                "volumes[0].efsVolumeConfiguration.rootDirectory must be omitted or \"/\" when authorizationConfig.accessPointId is set",
            ),
            (
                vols(
                    json!([{"name": "d", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}]),
                ),
                "volumes[0].efsVolumeConfiguration.transitEncryption must be ENABLED when an access point or IAM authorization is used",
            ),
            (
                vols(
                    json!([{"name": "d", "s3filesVolumeConfiguration": {"fileSystemArn": "arn", "accessPointArn": "ap", "rootDirectory": "/x"}}]),
                ),
                "volumes[0].s3filesVolumeConfiguration.rootDirectory must be omitted or \"/\" when accessPointArn is set",
            ),
            (
                vols(
                    json!([{"name": "a", "configuredAtLaunch": true}, {"name": "b", "configuredAtLaunch": true}]),
                ),
                "volumes[1].configuredAtLaunch cannot be true: only one volume can be configured at launch (volumes[0] is)",
            ),
        ],
        EcsException::ClientException,
    );
}

#[test]
fn ulimit_sysctl_and_resource_rules() {
    let p = "containerDefinitions[0]";
    let ul = |u: Value| ctr(json!({ "ulimits": u }));
    let sc = |s: Value| ctr(json!({ "systemControls": s }));
    let rr = |r: Value| ctr(json!({ "resourceRequirements": r }));
    assert_rules(
        vec![
            (
                ul(
                    json!([{"name": "nofile", "softLimit": 1, "hardLimit": 2}, {"name": "nofile", "softLimit": 1, "hardLimit": 2}]),
                ),
                &format!("{p}.ulimits[1].name nofile is already set by ulimits[0]"),
            ),
            (
                ul(json!([{"name": "nofile", "softLimit": 2048, "hardLimit": 1024}])),
                &format!("{p}.ulimits[0].softLimit (2048) cannot be greater than hardLimit (1024)"),
            ),
            (
                ul(json!([{"name": "memlock", "softLimit": -1, "hardLimit": 1024}])),
                &format!("{p}.ulimits[0].softLimit (-1) cannot be greater than hardLimit (1024)"),
            ),
            (
                ul(json!([{"name": "core", "softLimit": -2, "hardLimit": 0}])),
                &format!(
                    "{p}.ulimits[0].softLimit (-2) must be -1 (unlimited) or a non-negative number"
                ),
            ),
            (
                sc(json!([{"value": "1"}])),
                &format!("{p}.systemControls[0].namespace is required"),
            ),
            (
                sc(json!([{"namespace": "vm.swappiness", "value": "1"}])),
                &format!(
                    "{p}.systemControls[0].namespace \"vm.swappiness\" is not a namespaced kernel parameter (kernel.msgmax, kernel.msgmnb, kernel.msgmni, kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, fs.mqueue.*, net.*)"
                ),
            ),
            (
                {
                    let mut v = sc(json!([{"namespace": "kernel.shmmax", "value": "1"}]));
                    v["ipcMode"] = json!("host");
                    v
                },
                &format!(
                    "{p}.systemControls[0].namespace \"kernel.shmmax\" is not supported when ipcMode is host"
                ),
            ),
            (
                {
                    let mut v = sc(json!([{"namespace": "net.core.somaxconn", "value": "1"}]));
                    v["networkMode"] = json!("host");
                    v
                },
                &format!(
                    "{p}.systemControls[0].namespace \"net.core.somaxconn\" is not supported when networkMode is host"
                ),
            ),
            (
                sc(json!([{"namespace": "net.core.somaxconn"}])),
                &format!("{p}.systemControls[0].value is required"),
            ),
            (
                rr(json!([{"type": "GPU", "value": "0"}])),
                &format!(
                    "{p}.resourceRequirements[0].value \"0\" must be a positive number of GPUs or ALL"
                ),
            ),
            (
                rr(
                    json!([{"type": "GPU", "value": "1", "sharingStrategy": {"nvidiaMps": {"memory": 1}}}]),
                ),
                &format!(
                    "{p}.resourceRequirements[0] must set exactly one of value and sharingStrategy for type GPU"
                ),
            ),
            (
                rr(json!([{"type": "InferenceAccelerator", "value": "d"}])),
                &format!(
                    "{p}.resourceRequirements[0].value must be the deviceName of one of the task's inferenceAccelerators"
                ),
            ),
            (
                rr(json!([{"type": "NeuronDevice", "value": "1"}])),
                &format!("{p}.resourceRequirements[0].value must be ALL for type NeuronDevice"),
            ),
            (
                rr(json!([{"type": "NeuronDevice", "value": "ALL", "sharingStrategy": {}}])),
                &format!(
                    "{p}.resourceRequirements[0].sharingStrategy is only allowed for type GPU"
                ),
            ),
            (
                rr(json!([{"type": "GPU", "value": "1"}, {"type": "GPU", "value": "2"}])),
                &format!(
                    "{p}.resourceRequirements[1].type GPU is already requested by resourceRequirements[0]"
                ),
            ),
        ],
        EcsException::ClientException,
    );
}

#[test]
fn port_mapping_rules() {
    let pm = |mode: Option<&str>, list: Value| {
        let mut v = ctr(json!({ "portMappings": list }));
        if let Some(m) = mode {
            v["networkMode"] = json!(m);
        }
        v
    };
    let two = |mode: &str, a: Value, b: Value| {
        task(
            json!({"networkMode": mode, "containerDefinitions": [c("a", json!({"portMappings": a})), c("b", json!({"portMappings": b}))]}),
        )
    };
    let p = "containerDefinitions[0].portMappings";
    let ranges: Vec<Value> = (0..101)
        .map(|i| json!({"containerPortRange": format!("{}-{}", 1000 + i * 2, 1001 + i * 2)}))
        .collect();
    assert_rules(
        vec![
            (
                pm(Some("none"), json!([{"containerPort": 80}])),
                &format!("{p} must be empty when networkMode is none"),
            ),
            (
                pm(None, json!([{"hostPort": 80}])),
                &format!("{p}[0].containerPort is required"),
            ),
            (
                pm(
                    None,
                    json!([{"containerPort": 80, "containerPortRange": "80-90"}]),
                ),
                &format!("{p}[0] must set either containerPort or containerPortRange, not both"),
            ),
            (
                pm(None, json!([{"containerPortRange": "90-80"}])),
                &format!(
                    "{p}[0].containerPortRange \"90-80\" must be \"first-last\" with 1 <= first < last <= 65535"
                ),
            ),
            (
                pm(Some("host"), json!([{"containerPortRange": "80-90"}])),
                &format!(
                    "{p}[0].containerPortRange is only supported when networkMode is bridge or awsvpc (networkMode is host)"
                ),
            ),
            (
                pm(
                    None,
                    json!([{"containerPortRange": "80-90", "hostPort": 80}]),
                ),
                &format!("{p}[0].hostPort must be empty when containerPortRange is set"),
            ),
            (
                pm(
                    Some("awsvpc"),
                    json!([{"containerPort": 80, "hostPort": 8080}]),
                ),
                &format!(
                    "{p}[0].hostPort (8080) must be empty or equal to containerPort (80): When networkMode=awsvpc, the host ports and container ports in port mappings must match."
                ),
            ),
            (
                pm(Some("host"), json!([{"containerPort": 80, "hostPort": 81}])),
                &format!(
                    "{p}[0].hostPort (81) must be empty or equal to containerPort (80): When networkMode=host, the host ports and container ports in port mappings must match."
                ),
            ),
            (
                pm(None, json!([{"containerPort": 80, "name": "Web"}])),
                &format!(
                    "{p}[0].name \"Web\" is invalid: up to 64 lowercase letters, numbers, underscores and hyphens, not starting with a hyphen"
                ),
            ),
            (
                two(
                    "bridge",
                    json!([{"containerPort": 80, "name": "web"}]),
                    json!([{"containerPort": 81, "name": "web"}]),
                ),
                "containerDefinitions[1].portMappings[0].name \"web\" is already used by containerDefinitions[0].portMappings[0]",
            ),
            (
                two(
                    "bridge",
                    json!([{"containerPort": 80, "hostPort": 8080}]),
                    json!([{"containerPort": 81, "hostPort": 8080}]),
                ),
                "containerDefinitions[1].portMappings[0] maps tcp host port 8080 that containerDefinitions[0].portMappings[0] already maps in this task",
            ),
            (
                two(
                    "awsvpc",
                    json!([{"containerPort": 80}]),
                    json!([{"containerPort": 80}]),
                ),
                "containerDefinitions[1].portMappings[0] maps tcp host port 80 that containerDefinitions[0].portMappings[0] already maps in this task",
            ),
            (
                pm(
                    Some("awsvpc"),
                    json!([{"containerPort": 53, "protocol": "udp"}, {"containerPort": 53, "protocol": "udp"}]),
                ),
                &format!("{p}[1] maps udp container port 53 that portMappings[0] already maps"),
            ),
            (
                pm(
                    None,
                    json!([{"containerPortRange": "8000-8010"}, {"containerPort": 8005}]),
                ),
                &format!("{p}[1] maps tcp container port 8005 that portMappings[0] already maps"),
            ),
            (
                two(
                    "awsvpc",
                    json!([{"containerPortRange": "8000-8010"}]),
                    json!([{"containerPortRange": "8010-8020"}]),
                ),
                "containerDefinitions[1].portMappings[0] maps tcp host port range 8010-8020 that containerDefinitions[0].portMappings[0] already maps in this task",
            ),
            (
                pm(None, json!(ranges)),
                &format!("{p} has 101 containerPortRange mappings; at most 100 are allowed"),
            ),
        ],
        EcsException::ClientException,
    );
    // Allowed: tcp and udp on one port; bridge dynamic ports; bridge maps one container port twice.
    assert!(run(pm(Some("awsvpc"), json!([{"containerPort": 53}, {"containerPort": 53, "protocol": "udp"}, {"containerPort": 80, "hostPort": 80}]))).is_ok());
    assert!(
        run(two(
            "bridge",
            json!([{"containerPort": 80}]),
            json!([{"containerPort": 80, "hostPort": 0}])
        ))
        .is_ok()
    );
    assert!(run(pm(None, json!([{"containerPort": 80, "hostPort": 8080}, {"containerPort": 80, "hostPort": 8081}]))).is_ok());
}

#[test]
fn depends_on_rules() {
    let dep =
        |name: &str, cond: &str| json!({"dependsOn": [{"containerName": name, "condition": cond}]});
    let hc = json!({"healthCheck": {"command": ["CMD", "true"]}});
    assert_rules(
        vec![
            (
                containers(json!([c("a", dep("db", "START"))])),
                "containerDefinitions[0].dependsOn[0].containerName \"db\" is not a container in this task definition",
            ),
            (
                containers(json!([c("a", dep("a", "START"))])),
                "containerDefinitions[0].dependsOn[0].containerName \"a\": a container cannot depend on itself",
            ),
            (
                containers(json!([
                    c(
                        "a",
                        json!({"dependsOn": [{"containerName": "b", "condition": "START"}, {"containerName": "b", "condition": "HEALTHY"}]})
                    ),
                    c("b", hc.clone())
                ])),
                "containerDefinitions[0].dependsOn[1].containerName \"b\" is already a dependency in dependsOn[0]",
            ),
            (
                containers(json!([
                    c("a", dep("init", "COMPLETE")),
                    c("init", json!({}))
                ])),
                "containerDefinitions[0].dependsOn[0].condition COMPLETE cannot be used on essential container \"init\" (set its essential to false)",
            ),
            (
                containers(json!([
                    c("a", dep("init", "SUCCESS")),
                    c("init", json!({"essential": true}))
                ])),
                "containerDefinitions[0].dependsOn[0].condition SUCCESS cannot be used on essential container \"init\" (set its essential to false)",
            ),
            (
                containers(json!([c("a", dep("db", "HEALTHY")), c("db", json!({}))])),
                "containerDefinitions[0].dependsOn[0].condition HEALTHY requires container \"db\" to have a healthCheck",
            ),
            (
                containers(json!([
                    c("a", dep("b", "START")),
                    c("b", dep("c", "START")),
                    c("c", dep("a", "START"))
                ])),
                "containerDefinitions[0].dependsOn forms a cycle: a -> b -> c -> a",
            ),
        ],
        EcsException::ClientException,
    );
    let ok = run(containers(json!([
        c("web", json!({"dependsOn": [{"containerName": "db", "condition": "HEALTHY"}, {"containerName": "init", "condition": "SUCCESS"}]})),
        c("db", hc),
        c("init", json!({"essential": false})),
        c("side", json!({})),
    ])))
    .unwrap();
    let order: Vec<&str> = ok.start_order().iter().map(|c| c.name()).collect();
    assert_eq!(order, ["db", "init", "web", "side"]);
}

#[test]
fn normalization_and_network_modes() {
    let ok = run(task(json!({"cpu": "0.5 vCPU", "memory": "1 GB"}))).unwrap();
    assert_eq!(
        (ok.task_cpu_units(), ok.task_memory_mib()),
        (Some(512), Some(1024))
    );
    assert_eq!(ok.definition().cpu.as_deref(), Some("512"));
    assert_eq!(ok.definition().memory.as_deref(), Some("1024"));
    assert_eq!(ok.declared_network_mode(), NetworkMode::Bridge);
    assert_eq!(ok.effective_network_mode(), NetworkMode::Awsvpc);
    assert_eq!(ok.definition().network_mode, None);
    assert!(ok.warnings().is_empty());
    let host = run(task(json!({"networkMode": "host"}))).unwrap();
    assert_eq!(host.effective_network_mode(), NetworkMode::Host);
}

#[test]
fn every_unhonoured_field_is_warned_about_once() {
    let v = json!({
        "family": "everything", "networkMode": "awsvpc", "cpu": "1024", "memory": "2048",
        "taskRoleArn": "arn:aws:iam::1:role/task", "executionRoleArn": "arn:aws:iam::1:role/exec",
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "proxyConfiguration": {"type": "APPMESH", "containerName": "app", "properties": []},
        "inferenceAccelerators": [{"deviceName": "d0", "deviceType": "eia2.medium"}],
        "ephemeralStorage": {"sizeInGiB": 30}, "enableFaultInjection": true,
        "trustedExecutionConfiguration": {"isolationMode": "ISOLATED_SANDBOX"},
        "runtimePlatform": {"operatingSystemFamily": "WINDOWS_SERVER_2022_CORE", "cpuArchitecture": "X86_64"},
        "volumes": [
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1"}},
            {"name": "fsx", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-2", "rootDirectory": "/",
                "authorizationConfig": {"credentialsParameter": "arn", "domain": "d"}}},
            {"name": "s3", "s3filesVolumeConfiguration": {"fileSystemArn": "arn"}},
            {"name": "ebs", "configuredAtLaunch": true},
            {"name": "nfs", "dockerVolumeConfiguration": {"scope": "shared", "driver": "rexray/ebs", "driverOpts": {"type": "nfs"}}},
            {"name": "plain", "dockerVolumeConfiguration": {"scope": "task", "driver": "local", "driverOpts": {"size": "1g"}}}
        ],
        "containerDefinitions": [{
            "name": "app", "image": "busybox",
            "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:1:secret:x"},
            "secrets": [{"name": "DB_PASS", "valueFrom": "arn:aws:ssm:us-east-1:1:parameter/p"},
                        {"name": "API_KEY", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:k"}],
            "environmentFiles": [{"value": "arn:aws:s3:::b/app.env", "type": "s3"}, {"value": "/etc/local.env", "type": "s3"}],
            "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-region": "us-east-1",
                "awslogs-stream-prefix": "p", "awslogs-create-group": "true"},
                "secretOptions": [{"name": "k", "valueFrom": "arn"}]},
            "firelensConfiguration": {"type": "fluentbit"},
            "resourceRequirements": [{"type": "GPU", "value": "1"}, {"type": "InferenceAccelerator", "value": "d0"}],
            "credentialSpecs": ["credentialspec:arn"],
            "dockerSecurityOptions": ["no-new-privileges", "apparmor:docker-default"],
            "portMappings": [{"containerPort": 8080, "appProtocol": "http", "name": "web"}],
            "linuxParameters": {"swappiness": 10}
        }, {
            "name": "side", "image": "busybox", "essential": false, "disableNetworking": true,
            "logConfiguration": {"logDriver": "splunk", "options": {"splunk-url": "u"}}
        }, {
            "name": "json", "image": "busybox", "essential": false,
            "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}}
        }]
    });
    let ok = run(v).unwrap();
    let got: Vec<String> = ok.warnings().iter().map(|w| w.to_string()).collect();
    let want = [
        "taskRoleArn: berth does not assume IAM roles; the credentials endpoint serves what `berth role put` stored for the role",
        "executionRoleArn: berth does not assume IAM roles; images are pulled with berth's own registry credentials",
        "placementConstraints: not evaluated; berth places every task on this host",
        "proxyConfiguration: App Mesh proxy configuration is not applied",
        "inferenceAccelerators: Elastic Inference accelerators are not available",
        "ephemeralStorage: not enforced; a task's writable layers are limited only by the host's disk",
        "enableFaultInjection: fault injection endpoints are not served",
        "trustedExecutionConfiguration: isolation mode ISOLATED_SANDBOX is not available; tasks run in namespaces on this host",
        "runtimePlatform.operatingSystemFamily: WINDOWS_SERVER_2022_CORE containers cannot run here; berth runs Linux containers only",
        "volumes[0].efsVolumeConfiguration: Amazon EFS cannot be mounted on this host; containers get an empty task-scoped directory in its place",
        "volumes[1].fsxWindowsFileServerVolumeConfiguration: Amazon FSx for Windows File Server cannot be mounted on this host; containers get an empty task-scoped directory in its place",
        "volumes[2].s3filesVolumeConfiguration: Amazon S3 Files cannot be mounted on this host; containers get an empty task-scoped directory in its place",
        "volumes[3].configuredAtLaunch: Amazon EBS volumes cannot be attached on this host; containers get an empty task-scoped directory in its place",
        "volumes[4].dockerVolumeConfiguration.driver: volume driver \"rexray/ebs\" is not available; berth creates a local volume",
        "volumes[4].dockerVolumeConfiguration.driverOpts: options of another volume driver are not applied; berth creates a plain local directory",
        "volumes[5].dockerVolumeConfiguration.driverOpts: size is not an option of the local driver (type, device, o); tasks using this volume fail to start",
        "containerDefinitions[0].environmentFiles[0]: S3 environment files are not read (berth reads local files given as an absolute path or file:// URL)",
        "containerDefinitions[0].logConfiguration.options: awslogs options awslogs-create-group, awslogs-region are not used; logs stay on this host, named by awslogs-group and awslogs-stream-prefix",
        "containerDefinitions[0].logConfiguration.secretOptions: log driver secrets are not fetched",
        "containerDefinitions[0].firelensConfiguration: FireLens log routing is not set up; the container runs as an ordinary container",
        "containerDefinitions[0].resourceRequirements[0]: GPUs are not assigned to containers (linuxParameters.devices can pass a device through)",
        "containerDefinitions[0].resourceRequirements[1]: Elastic Inference accelerators are not available",
        "containerDefinitions[0].credentialSpecs: Active Directory credential specs are not applied",
        "containerDefinitions[0].dockerSecurityOptions[1]: \"apparmor:docker-default\" is not applied; berth sets no AppArmor, SELinux or credential spec options",
        "containerDefinitions[0].portMappings[0].appProtocol: Service Connect is not available; the port is mapped without protocol-specific handling",
        "containerDefinitions[0].linuxParameters.swappiness: ignored because maxSwap is not set (as on ECS)",
        "containerDefinitions[1].logConfiguration.logDriver: the splunk log driver is not available; berth captures stdout and stderr to its local log store",
        "containerDefinitions[1].disableNetworking: not applied: the container gets the task's network; use networkMode none for a task without one",
        "containerDefinitions[2].logConfiguration.options: json-file options max-size are not used; berth rotates logs with its own limits",
    ];
    assert_eq!(got, want);
    // Stored definitions produce the same warnings when loaded back.
    let reloaded = ValidatedTaskDefinition::from_stored(ok.definition().clone());
    assert_eq!(reloaded.warnings(), ok.warnings());
}
