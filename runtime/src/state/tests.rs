use std::net::Ipv4Addr;

use super::model::*;
use super::repo::*;
use crate::db::Db;

fn task(id: &str, created_at: f64, family: &str) -> TaskRecord {
    TaskRecord {
        id: id.into(),
        cluster: "default".into(),
        family: family.into(),
        task: Task {
            task_arn: format!("arn:aws:ecs:us-east-1:000000000000:task/default/{id}"),
            cluster_arn: "arn:c".into(),
            task_definition_arn: format!("arn:td/{family}:1"),
            container_instance_arn: "arn:ci".into(),
            last_status: status::RUNNING.into(),
            desired_status: "RUNNING".into(),
            cpu: None,
            memory: None,
            containers: vec![],
            started_by: None,
            group: format!("family:{family}"),
            launch_type: "EC2".into(),
            availability_zone: "local".into(),
            connectivity: "CONNECTED".into(),
            connectivity_at: None,
            version: 1,
            created_at,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            health_status: "UNKNOWN".into(),
            attachments: vec![],
            overrides: serde_json::json!({}),
            enable_execute_command: false,
            stopped_by_container: None,
            tags: vec![],
        },
        runtime: TaskRuntime::default(),
    }
}

#[test]
fn tasks_round_trip_and_list_newest_first_with_a_cursor() {
    let db = Db::open_in_memory().unwrap();
    let c = db.conn();
    for i in 0..5 {
        insert_task(
            c,
            &task(
                &format!("t{i}"),
                i as f64,
                if i % 2 == 0 { "web" } else { "db" },
            ),
        )
        .unwrap();
    }
    let mut t = get_task(c, "t3").unwrap().unwrap();
    assert_eq!(t.family, "db");
    t.task.last_status = status::STOPPED.into();
    t.task.desired_status = "STOPPED".into();
    t.task.stopped_at = Some(10.0);
    update_task(c, &t).unwrap();
    assert_eq!(active_tasks(c).unwrap().len(), 4);

    let f = TaskFilter {
        cluster: "default".into(),
        ..Default::default()
    };
    let page1 = list_task_arns(c, &f, None, 2).unwrap();
    assert_eq!(
        page1.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["t4", "t3"]
    );
    let last = page1.last().unwrap();
    let page2 = list_task_arns(c, &f, Some((last.0, last.1.clone())), 10).unwrap();
    assert_eq!(
        page2.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["t2", "t1", "t0"]
    );

    let web = TaskFilter {
        family: Some("web".into()),
        ..f.clone()
    };
    assert_eq!(list_task_arns(c, &web, None, 10).unwrap().len(), 3);
    let stopped = TaskFilter {
        desired_status: Some("STOPPED".into()),
        ..f
    };
    assert_eq!(list_task_arns(c, &stopped, None, 10).unwrap().len(), 1);
    assert_eq!(prune_stopped(c, 11.0).unwrap(), ["t3"]);
    assert!(get_task(c, "t3").unwrap().is_none());
}

#[test]
fn addresses_are_never_leased_twice_and_are_released_with_the_task() {
    let db = Db::open_in_memory().unwrap();
    let c = db.conn();
    let pool = || (2..5).map(|i| Ipv4Addr::new(10, 0, 0, i));
    let a = lease_address(c, "a", pool(), 1.0).unwrap().unwrap();
    let b = lease_address(c, "b", pool(), 1.0).unwrap().unwrap();
    assert_ne!(a, b);
    assert_eq!(
        lease_address(c, "a", pool(), 2.0).unwrap(),
        Some(a),
        "a task keeps its address"
    );
    let _ = lease_address(c, "c", pool(), 1.0).unwrap().unwrap();
    assert_eq!(
        lease_address(c, "d", pool(), 1.0).unwrap(),
        None,
        "pool exhausted"
    );
    release_task_resources(c, "b").unwrap();
    assert_eq!(lease_address(c, "d", pool(), 1.0).unwrap(), Some(b));
}

#[test]
fn host_ports_conflict_across_tasks_and_wildcards() {
    let db = Db::open_in_memory().unwrap();
    let c = db.conn();
    let p = |ip: &str, port| HostPort {
        bind_ip: ip.into(),
        protocol: "tcp".into(),
        port,
    };
    assert_eq!(
        reserve_host_ports(c, "a", &[p("127.0.0.1", 80)]).unwrap(),
        Ok(())
    );
    assert_eq!(
        reserve_host_ports(c, "b", &[p("127.0.0.1", 80)]).unwrap(),
        Err(vec![p("127.0.0.1", 80)])
    );
    assert_eq!(
        reserve_host_ports(c, "b", &[p("0.0.0.0", 80)]).unwrap(),
        Err(vec![p("0.0.0.0", 80)])
    );
    assert_eq!(
        reserve_host_ports(c, "b", &[p("127.0.0.2", 80), p("127.0.0.1", 81)]).unwrap(),
        Ok(())
    );
    let udp = HostPort {
        protocol: "udp".into(),
        ..p("127.0.0.1", 80)
    };
    assert_eq!(reserve_host_ports(c, "c", &[udp]).unwrap(), Ok(()));
    release_task_resources(c, "a").unwrap();
    assert_eq!(
        reserve_host_ports(c, "d", &[p("127.0.0.1", 80)]).unwrap(),
        Ok(())
    );
}

#[test]
fn run_tokens_expire_and_tags_round_trip() {
    let db = Db::open_in_memory().unwrap();
    let c = db.conn();
    put_run_token(c, "default", "tok", "h1", &["t1".to_string()], 100.0).unwrap();
    assert_eq!(
        get_run_token(c, "default", "tok", 200.0, 86400.0).unwrap(),
        Some(("h1".into(), vec!["t1".into()]))
    );
    assert_eq!(
        get_run_token(c, "default", "tok", 100.0 + 86401.0, 86400.0).unwrap(),
        None
    );
    assert_eq!(
        get_run_token(c, "other", "tok", 200.0, 86400.0).unwrap(),
        None
    );
    put_tags(
        c,
        "arn:x",
        &[
            Tag {
                key: "b".into(),
                value: "2".into(),
            },
            Tag {
                key: "a".into(),
                value: "1".into(),
            },
        ],
    )
    .unwrap();
    remove_tags(c, "arn:x", &["b".to_string()]).unwrap();
    assert_eq!(
        tags_of(c, "arn:x").unwrap(),
        vec![Tag {
            key: "a".into(),
            value: "1".into()
        }]
    );
}

#[test]
fn the_task_view_is_the_stored_task_exactly() {
    let db = Db::open_in_memory().unwrap();
    let mut t = task("v1", 1_795_321_217.501_841_8, "web");
    t.task.started_at = Some(1_795_321_217.667_606);
    t.task.stopped_reason = Some("quote \" and \\ and \u{e9}".into());
    t.runtime.definition = serde_json::json!({"family": "web", "big": [1, 2, 3]});
    insert_task(db.conn(), &t).unwrap();
    let (cluster, view) = get_task_view(db.conn(), "v1").unwrap().unwrap();
    assert_eq!(cluster, "default");
    assert_eq!(view, t.task);
    assert!(get_task_view(db.conn(), "nope").unwrap().is_none());
}
