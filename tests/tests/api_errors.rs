//! Bad requests get ECS's modeled exceptions with a message naming the field: an
//! invalid task definition of each error class, malformed JSON, wrong types, unknown
//! fields, an oversized body, an unknown operation. Never a 500, never a dropped
//! connection.

mod api_support;

use api_support::{aws_err, seed_text, setup, tcp_post};
use berth_tests::daemon::Daemon;
use berth_tests::require_e2e;
use serde_json::{Value, json};

/// Asserts an error answer with `code` whose message contains every one of `words`.
#[track_caller]
fn refused(d: &Daemon, op: &str, body: Value, code: &str, words: &[&str]) {
    let e = d
        .call(op, &body)
        .expect_err(&format!("{op} {body} should fail"));
    assert_eq!(e.code, code, "{op} {body}: {e:?}");
    assert_eq!(e.status, 400, "{e:?}");
    for w in words {
        assert!(
            e.message.contains(w),
            "{op}: {:?} should name {w:?}",
            e.message
        );
    }
}

fn def(container: Value) -> Value {
    json!({"family": "bad", "containerDefinitions": [container]})
}

#[test]
fn an_invalid_task_definition_is_refused_with_the_field_named_for_every_error_class() {
    require_e2e!();
    let (d, _image) = setup();
    let ok = json!({"name": "a", "image": "busybox", "memory": 64});
    let with = |k: &str, v: Value| {
        let mut c = ok.clone();
        c[k] = v;
        def(c)
    };
    // Unknown fields name their path.
    refused(
        &d,
        "RegisterTaskDefinition",
        with("memoryy", json!(64)),
        "InvalidParameterException",
        &["containerDefinitions[0].memoryy", "unknown field"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        json!({"family": "bad", "containerDefinitions": [ok], "volumes": [{"name": "v", "hots": {}}]}),
        "InvalidParameterException",
        &["volumes[0].hots"],
    );
    // Wrong types.
    refused(
        &d,
        "RegisterTaskDefinition",
        with("memory", json!("lots")),
        "InvalidParameterException",
        &["containerDefinitions[0].memory", "invalid type"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        with("essential", json!("yes")),
        "InvalidParameterException",
        &["containerDefinitions[0].essential"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        with("portMappings", json!([{"containerPort": 70000}])),
        "InvalidParameterException",
        &["containerDefinitions[0].portMappings[0].containerPort"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        json!({"family": "bad", "networkMode": "weird", "containerDefinitions": [ok]}),
        "InvalidParameterException",
        &["networkMode", "weird"],
    );
    // Rule violations.
    refused(
        &d,
        "RegisterTaskDefinition",
        def(json!({"name": "a", "image": "busybox"})),
        "ClientException",
        &["containerDefinitions[0].memory"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        with("memory", json!(2)),
        "ClientException",
        &["containerDefinitions[0].memory", "6 MiB"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        json!({"family": "bad", "containerDefinitions": [ok, ok]}),
        "ClientException",
        &["containerDefinitions[1].name"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        json!({"family": "bad family", "containerDefinitions": [ok]}),
        "ClientException",
        &["family"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        json!({"family": "bad", "cpu": "lots", "containerDefinitions": [ok]}),
        "ClientException",
        &["cpu"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        with(
            "mountPoints",
            json!([{"sourceVolume": "nope", "containerPath": "/x"}]),
        ),
        "ClientException",
        &["containerDefinitions[0].mountPoints[0].sourceVolume"],
    );
    refused(
        &d,
        "RegisterTaskDefinition",
        json!({"family": "bad", "containerDefinitions": []}),
        "ClientException",
        &["containerDefinitions"],
    );
    // A seed as printed (no family) and with its trailing commas.
    let as_written = seed_text("database-scratch.as-written.json");
    let (s, v) = unix_post(
        &d.run_root().join("berth.sock"),
        "RegisterTaskDefinition",
        as_written.as_bytes(),
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["__type"], "InvalidParameterException", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("trailing comma"),
        "{v}"
    );
    let raw = tcp_post(
        &d.host,
        &[
            ("Host", "127.0.0.1:5450"),
            (
                "X-Amz-Target",
                "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition",
            ),
        ],
        as_written.as_bytes(),
    );
    // Unsigned TCP is refused before the body is looked at.
    assert_eq!(raw.status, 403, "{raw:?}");

    // The aws CLI shows the same exceptions.
    let err = aws_err(
        &d,
        &[
            "register-task-definition",
            "--family",
            "bad",
            "--container-definitions",
            r#"[{"name":"a","image":"busybox"}]"#,
        ],
    );
    assert!(
        err.contains("(ClientException)") && err.contains("memory"),
        "{err}"
    );
    // Nothing was registered.
    let v = d.ok("ListTaskDefinitionFamilies", json!({}));
    assert_eq!(v["families"], json!([]), "{v}");
}

#[test]
fn malformed_bodies_unknown_fields_and_unknown_operations_are_clean_4xx_errors() {
    require_e2e!();
    let (d, _image) = setup();
    let sock = d.run_root().join("berth.sock");
    let raw = |target: &str, body: &[u8]| -> (u16, Value) { unix_post(&sock, target, body) };

    // Malformed JSON.
    let (s, v) = raw(
        "RegisterTaskDefinition",
        br#"{"family": "x", "containerDefinitions": ["#,
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["__type"], "InvalidParameterException");
    let (s, v) = raw("DescribeTasks", b"{not json");
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["__type"], "InvalidParameterException");
    // Not an object.
    for body in [&b"[1, 2]"[..], b"null", b"\"text\"", b"42"] {
        let (s, v) = raw("DescribeTasks", body);
        assert_eq!(s, 400, "{v}");
        assert_eq!(v["__type"], "InvalidParameterException", "{v}");
        let m = v["message"].as_str().unwrap();
        assert!(
            m.contains("JSON object") && !m.contains("struct"),
            "{}: {m}",
            String::from_utf8_lossy(body)
        );
    }
    // Unknown fields and wrong types in operation inputs.
    refused(
        &d,
        "DescribeTasks",
        json!({"tasks": ["x"], "taks": 1}),
        "InvalidParameterException",
        &["taks"],
    );
    refused(
        &d,
        "RunTask",
        json!({"taskDefinition": 5}),
        "InvalidParameterException",
        &["taskDefinition"],
    );
    refused(
        &d,
        "ListTasks",
        json!({"maxResults": "ten"}),
        "InvalidParameterException",
        &["maxResults"],
    );
    refused(
        &d,
        "ListTasks",
        json!({"maxResults": 101}),
        "InvalidParameterException",
        &["maxResults"],
    );
    refused(
        &d,
        "ListTasks",
        json!({"nextToken": "bm9wZQ"}),
        "InvalidParameterException",
        &["nextToken"],
    );
    refused(
        &d,
        "StopTask",
        json!({}),
        "InvalidParameterException",
        &["task"],
    );
    refused(
        &d,
        "RunTask",
        json!({"taskDefinition": "nope:1"}),
        "ClientException",
        &["nope"],
    );
    refused(
        &d,
        "StopTask",
        json!({"task": "0123456789abcdef0123456789abcdef"}),
        "InvalidParameterException",
        &["task"],
    );
    refused(
        &d,
        "DescribeTasks",
        json!({"cluster": "nope", "tasks": ["x"]}),
        "ClusterNotFoundException",
        &[],
    );

    // Unknown and unimplemented operations name themselves.
    for op in ["Frobnicate", "CreateTaskSet", "CreateCapacityProvider"] {
        let (s, v) = raw(op, b"{}");
        assert_eq!(s, 400, "{op}: {v}");
        assert_eq!(v["__type"], "UnsupportedFeatureException", "{op}: {v}");
        assert!(v["message"].as_str().unwrap().contains(op), "{v}");
    }
    let (s, v) = raw("SomethingElse.Op", b"{}");
    assert!((400..500).contains(&s), "{v}");
    assert!(v["__type"].as_str().unwrap().ends_with("Exception"), "{v}");

    // An oversized body is refused, and the daemon keeps serving.
    let big = vec![b' '; 3 << 20];
    let (s, v) = raw("DescribeTasks", &big);
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("larger than"),
        "{v}"
    );
    let mut huge_def = json!({"family": "huge", "containerDefinitions": [
        {"name": "a", "image": "busybox", "memory": 64, "environment": []}
    ]});
    huge_def["containerDefinitions"][0]["environment"] = Value::Array(
        (0..40_000)
            .map(|i| json!({"name": format!("VARIABLE_{i}"), "value": "x".repeat(40)}))
            .collect(),
    );
    let e = d.call("RegisterTaskDefinition", &huge_def).unwrap_err();
    assert_eq!(e.status, 400, "{e:?}");
    d.ok("ListClusters", json!({}));

    // Every implemented operation answers garbage with a 4xx, never a 5xx.
    for op in [
        "CreateCluster",
        "DescribeClusters",
        "ListClusters",
        "DeleteCluster",
        "RegisterTaskDefinition",
        "DeregisterTaskDefinition",
        "DeleteTaskDefinitions",
        "DescribeTaskDefinition",
        "ListTaskDefinitions",
        "ListTaskDefinitionFamilies",
        "RunTask",
        "StartTask",
        "StopTask",
        "DescribeTasks",
        "ListTasks",
        "TagResource",
        "UntagResource",
        "ListTagsForResource",
        "DescribeContainerInstances",
        "ListContainerInstances",
    ] {
        for body in [
            &b"{\"bogus\": 1}"[..],
            b"[]",
            b"{\"cluster\": {}}",
            b"{\"cluster\": \"\"}",
            b"{\"tasks\": [1]}",
            b"\xff\xfe",
            b"{\"taskDefinition\": \"\", \"resourceArn\": \"\", \"task\": \"\", \"tasks\": [], \"containerInstances\": [], \"taskDefinitions\": [], \"tags\": [], \"tagKeys\": []}",
        ] {
            let (s, v) = raw(op, body);
            assert!(
                s == 200 || (400..500).contains(&s),
                "{op} {:?} -> {s} {v}",
                String::from_utf8_lossy(body)
            );
            if s != 200 {
                let code = v["__type"].as_str().unwrap_or_default();
                assert!(code.ends_with("Exception"), "{op}: {v}");
                assert!(!v["message"].as_str().unwrap_or_default().is_empty(), "{op}: {v}");
            }
        }
    }
    assert!(
        !d.log().contains("panicked"),
        "the daemon panicked:\n{}",
        d.log()
    );
    d.ok("ListClusters", json!({}));
}

/// One POST over the unix socket with a raw body.
fn unix_post(sock: &std::path::Path, op: &str, body: &[u8]) -> (u16, Value) {
    use std::io::{Read, Write};
    let target = if op.contains('.') {
        op.to_owned()
    } else {
        format!("AmazonEC2ContainerServiceV20141113.{op}")
    };
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: berth\r\nX-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The daemon may answer (and close) before reading an oversized body.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{op}: no HTTP answer: {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let v = serde_json::from_str(rest).unwrap_or(Value::String(rest.to_owned()));
    (status, v)
}
