"""boto3 against berth: register, run, waiters, describe, paginators, tags, MISSING
failures, clientToken retries, modeled exceptions, and every response checked against
botocore's ECS model. Usage: boto3_workflow.py IMAGE SEED_JSON (run by
tests/tests/api_boto3.rs inside the daemon's fake host)."""

import datetime
import json
import sys

import botocore.exceptions

from berth_ecs import Problems, client, expect_error

ACCOUNT_ARN = "arn:aws:ecs:us-east-1:000000000000"


def main():
    image, seed_path = sys.argv[1], sys.argv[2]
    problems = Problems()
    ecs = client(problems)

    # The seed's sample web app, registered with boto3's own parameter names.
    with open(seed_path) as f:
        seed = json.load(f)
    seed["containerDefinitions"][0]["image"] = image
    # busybox httpd as PID 1 ignores SIGTERM: do not wait ECS's 30 s default to stop it.
    seed["containerDefinitions"][0]["stopTimeout"] = 2
    td = ecs.register_task_definition(**seed)["taskDefinition"]
    assert td["taskDefinitionArn"] == f"{ACCOUNT_ARN}:task-definition/sample-web:1", td
    assert isinstance(td["registeredAt"], datetime.datetime), td
    assert td["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 80

    sleeper = {
        "name": "main",
        "image": image,
        "memory": 32,
        "stopTimeout": 2,
        "entryPoint": ["sh", "-c"],
        "command": ["sleep 600"],
    }
    r = ecs.register_task_definition(
        family="sleeper", containerDefinitions=[sleeper], tags=[{"key": "k", "value": "v"}]
    )
    assert r["tags"] == [{"key": "k", "value": "v"}], r
    ecs.register_task_definition(family="sleeper", containerDefinitions=[sleeper])
    described = ecs.describe_task_definition(taskDefinition="sleeper")
    assert described["taskDefinition"]["revision"] == 2

    run_args = dict(
        taskDefinition="sleeper:1",
        count=4,
        startedBy="boto3",
        group="batch",
        tags=[{"key": "run", "value": "1"}],
        clientToken="boto3-token",
    )
    r = ecs.run_task(**run_args)
    assert r["failures"] == [], r
    arns = [t["taskArn"] for t in r["tasks"]]
    assert len(set(arns)) == 4, arns
    assert all(a.startswith(f"{ACCOUNT_ARN}:task/default/") for a in arns), arns
    assert isinstance(r["tasks"][0]["createdAt"], datetime.datetime)

    ecs.get_waiter("tasks_running").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    missing = f"{ACCOUNT_ARN}:task/default/0123456789abcdef0123456789abcdef"
    d = ecs.describe_tasks(tasks=arns + [missing], include=["TAGS"])
    assert [t["lastStatus"] for t in d["tasks"]] == ["RUNNING"] * 4, d
    assert d["failures"] == [{"arn": missing, "reason": "MISSING"}], d["failures"]
    for t in d["tasks"]:
        assert t["startedBy"] == "boto3" and t["group"] == "batch", t
        assert {"key": "run", "value": "1"} in t["tags"], t
        assert isinstance(t["startedAt"], datetime.datetime), t
        assert t["containers"][0]["lastStatus"] == "RUNNING", t
    # A retry with the same token answers with the same tasks.
    again = ecs.run_task(**run_args)
    assert sorted(t["taskArn"] for t in again["tasks"]) == sorted(arns), again
    expect_error("ConflictException", ecs.run_task, **dict(run_args, count=1))

    # Paginators.
    pages = list(
        ecs.get_paginator("list_tasks").paginate(startedBy="boto3", PaginationConfig={"PageSize": 1})
    )
    assert [len(p["taskArns"]) for p in pages] == [1, 1, 1, 1], pages
    assert sorted(a for p in pages for a in p["taskArns"]) == sorted(arns)
    first = ecs.get_paginator("list_tasks").paginate(
        family="sleeper", PaginationConfig={"MaxItems": 3, "PageSize": 2}
    ).build_full_result()
    assert len(first["taskArns"]) == 3 and "NextToken" in first, first
    rest = ecs.get_paginator("list_tasks").paginate(
        family="sleeper", PaginationConfig={"MaxItems": 3, "PageSize": 2, "StartingToken": first["NextToken"]}
    ).build_full_result()
    assert sorted(first["taskArns"] + rest["taskArns"]) == sorted(arns), (first, rest)

    for name in ["boto-a", "boto-b", "boto-c"]:
        c = ecs.create_cluster(clusterName=name)["cluster"]
        assert c["clusterName"] == name and c["status"] == "ACTIVE", c
    clusters = ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}).build_full_result()
    assert sorted(a.rsplit("/", 1)[1] for a in clusters["clusterArns"]) == ["boto-a", "boto-b", "boto-c", "default"], clusters
    tds = ecs.get_paginator("list_task_definitions").paginate(PaginationConfig={"PageSize": 1}).build_full_result()
    assert len(tds["taskDefinitionArns"]) == 3, tds
    fams = ecs.get_paginator("list_task_definition_families").paginate(PaginationConfig={"PageSize": 1}).build_full_result()
    assert sorted(fams["families"]) == ["sample-web", "sleeper"], fams
    cis = ecs.get_paginator("list_container_instances").paginate().build_full_result()
    assert len(cis["containerInstanceArns"]) == 1, cis
    ci = ecs.describe_container_instances(containerInstances=cis["containerInstanceArns"])
    inst = ci["containerInstances"][0]
    assert inst["runningTasksCount"] == 4, inst
    assert inst["registeredAt"] <= datetime.datetime.now(datetime.timezone.utc)
    d = ecs.describe_clusters(clusters=["default", "boto-a", "nope"], include=["TAGS", "SETTINGS", "STATISTICS"])
    assert [c["clusterName"] for c in d["clusters"]] == ["default", "boto-a"], d
    assert d["clusters"][0]["runningTasksCount"] == 4, d
    assert d["failures"] == [{"arn": f"{ACCOUNT_ARN}:cluster/nope", "reason": "MISSING"}], d

    # Tags on a task, a cluster and a task definition.
    for arn in [arns[0], f"{ACCOUNT_ARN}:cluster/boto-a", td["taskDefinitionArn"]]:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "x", "value": "1"}, {"key": "y", "value": "2"}])
        ecs.untag_resource(resourceArn=arn, tagKeys=["y"])
        tags = ecs.list_tags_for_resource(resourceArn=arn)["tags"]
        assert {"key": "x", "value": "1"} in tags and not any(t["key"] == "y" for t in tags), (arn, tags)
    e = expect_error(
        "ResourceNotFoundException", ecs.list_tags_for_resource, resourceArn=missing
    )
    assert isinstance(e, ecs.exceptions.ResourceNotFoundException)

    # StartTask on this host's container instance, with overrides and a published port,
    # so those shapes are checked too.
    st = ecs.start_task(
        taskDefinition="sample-web",
        containerInstances=[cis["containerInstanceArns"][0]],
        startedBy="boto3-start",
        overrides={
            "cpu": "512",
            "memory": "256",
            "containerOverrides": [
                {"name": "web", "environment": [{"name": "A", "value": "1"}], "cpu": 128, "memory": 64}
            ],
        },
    )
    assert st["failures"] == [], st
    web = st["tasks"][0]["taskArn"]
    ecs.get_waiter("tasks_running").wait(tasks=[web], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    t = ecs.describe_tasks(tasks=[web])["tasks"][0]
    assert t["cpu"] == "512" and t["memory"] == "256", t
    assert t["overrides"]["containerOverrides"][0]["environment"] == [{"name": "A", "value": "1"}], t
    binding = t["containers"][0]["networkBindings"][0]
    assert binding["containerPort"] == 80 and binding["hostPort"] == 80, t
    eni = t["attachments"][0]
    assert eni["type"] == "ElasticNetworkInterface" and eni["status"] == "ATTACHED", eni
    assert any(d["name"] == "privateIPv4Address" for d in eni["details"]), eni
    r = ecs.start_task(taskDefinition="sample-web", containerInstances=["0123456789abcdef0123456789abcdef"])
    assert r["tasks"] == [] and r["failures"][0]["reason"] == "MISSING", r
    ecs.stop_task(task=web)
    ecs.get_waiter("tasks_stopped").wait(tasks=[web], WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    # Modeled exceptions map onto boto3's exception classes.
    e = expect_error("ClusterNotFoundException", ecs.list_tasks, cluster="nope")
    assert isinstance(e, ecs.exceptions.ClusterNotFoundException)
    e = expect_error("ClientException", ecs.describe_task_definition, taskDefinition="nope:9")
    assert isinstance(e, ecs.exceptions.ClientException)
    e = expect_error("InvalidParameterException", ecs.list_tasks, desiredStatus="RUNNING", maxResults=500)
    assert isinstance(e, ecs.exceptions.InvalidParameterException)
    e = expect_error("UnsupportedFeatureException", ecs.create_task_set, service="s", cluster="default", taskDefinition="sleeper")
    assert isinstance(e, ecs.exceptions.UnsupportedFeatureException)
    assert "CreateTaskSet" in str(e), e

    # A service, through boto3's own waiters: stable, scaled to 0, deleted, inactive.
    svc = ecs.create_service(cluster="boto-a", serviceName="boto-svc", taskDefinition="sleeper", desiredCount=1)["service"]
    assert svc["status"] == "ACTIVE" and svc["deployments"][0]["id"].startswith("ecs-svc/"), svc
    ecs.get_waiter("services_stable").wait(cluster="boto-a", services=["boto-svc"], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    s = ecs.describe_services(cluster="boto-a", services=["boto-svc", "nope"])
    assert s["services"][0]["runningCount"] == 1 and s["failures"][0]["reason"] == "MISSING", s
    assert isinstance(s["services"][0]["createdAt"], datetime.datetime), s
    assert ecs.list_services(cluster="boto-a")["serviceArns"] == [svc["serviceArn"]]
    [svc_task] = ecs.list_tasks(cluster="boto-a", serviceName="boto-svc")["taskArns"]
    e = expect_error("ClusterContainsServicesException", ecs.delete_cluster, cluster="boto-a")
    assert isinstance(e, ecs.exceptions.ClusterContainsServicesException)
    e = expect_error("InvalidParameterException", ecs.delete_service, cluster="boto-a", service="boto-svc")
    ecs.update_service(cluster="boto-a", service="boto-svc", desiredCount=0)
    assert ecs.delete_service(cluster="boto-a", service="boto-svc")["service"]["status"] == "DRAINING"
    ecs.get_waiter("services_inactive").wait(cluster="boto-a", services=["boto-svc"], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    t = ecs.describe_tasks(cluster="boto-a", tasks=[svc_task])["tasks"][0]
    assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "ServiceSchedulerInitiated", t
    e = expect_error("ServiceNotFoundException", ecs.update_service, service="nope", desiredCount=1)
    assert isinstance(e, ecs.exceptions.ServiceNotFoundException)

    # Stop them all; the waiters see it.
    for a in arns:
        t = ecs.stop_task(task=a, reason="boto3 done")["task"]
        assert t["desiredStatus"] == "STOPPED", t
    ecs.get_waiter("tasks_stopped").wait(tasks=arns, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = ecs.describe_tasks(tasks=arns)
    for t in d["tasks"]:
        assert t["lastStatus"] == "STOPPED" and t["stopCode"] == "UserInitiated", t
        assert t["stoppedReason"] == "boto3 done", t
        assert isinstance(t["stoppedAt"], datetime.datetime), t
    try:
        ecs.get_waiter("tasks_running").wait(tasks=arns[:1], WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        raise AssertionError("tasks_running should fail on a stopped task")
    except botocore.exceptions.WaiterError as e:
        assert "failure state" in str(e), e
    stopped = ecs.list_tasks(desiredStatus="STOPPED")["taskArns"]
    assert sorted(stopped) == sorted(arns + [web]), stopped
    for name in ["boto-a", "boto-b", "boto-c"]:
        assert ecs.delete_cluster(cluster=name)["cluster"]["status"] == "INACTIVE"
    ecs.deregister_task_definition(taskDefinition="sleeper:2")
    r = ecs.delete_task_definitions(taskDefinitions=["sleeper:2", "nope:1"])
    assert [t["status"] for t in r["taskDefinitions"]] == ["DELETE_IN_PROGRESS"], r
    assert r["failures"][0]["arn"].endswith("nope:1") and r["failures"][0]["reason"] == "MISSING", r

    problems.report()
    print(f"ok: {ecs.berth_calls['count']} responses checked against the botocore model")


if __name__ == "__main__":
    main()
