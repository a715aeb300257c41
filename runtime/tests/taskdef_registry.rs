//! The task definition registry on a real SQLite database: revisions, describe by
//! family / family:revision / ARN, the ACTIVE → INACTIVE → DELETE_IN_PROGRESS → gone
//! lifecycle, paging, families, tags, and persistence across reopening.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_runtime::ErrorClass;
use berth_runtime::db::{Db, DbHandle, MIGRATIONS};
use berth_runtime::taskdef::registry::{
    self, ArnScope, ListTaskDefinitionFamilies, ListTaskDefinitions, RegisteredTaskDefinition,
    RegistryError,
};
use berth_runtime::taskdef::{
    EcsException, SortOrder, Tag, TaskDefinitionFamilyStatus, TaskDefinitionStatus,
    parse_task_definition, validate,
};
use serde_json::json;

fn scope() -> ArnScope {
    ArnScope::new("us-east-1", "000000000000")
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(secs * 1000 + 250)
}

fn arn(family: &str, rev: u32) -> String {
    scope().task_definition_arn(family, rev)
}

fn def_json(family: &str) -> String {
    json!({"family": family, "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 64}],
           "tags": [{"key": "team", "value": "berth"}]})
    .to_string()
}

fn register(db: &mut Db, family: &str) -> RegisteredTaskDefinition {
    let def = validate(parse_task_definition(def_json(family).as_bytes()).unwrap()).unwrap();
    let tx = db.conn_mut().transaction().unwrap();
    let (stored, tags) = registry::register(
        &tx,
        &scope(),
        def,
        Some("arn:aws:iam::000000000000:root"),
        at(1_700_000_000),
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(tags, vec![Tag::new("team", "berth")]);
    stored
}

fn deregister(db: &mut Db, reference: &str) -> Result<RegisteredTaskDefinition, RegistryError> {
    let tx = db.conn_mut().transaction().unwrap();
    let r = registry::deregister(&tx, &scope(), reference, at(1_700_000_100));
    tx.commit().unwrap();
    r
}

fn delete(db: &mut Db, refs: &[&str]) -> registry::DeleteOutcome {
    let tx = db.conn_mut().transaction().unwrap();
    let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
    let r = registry::delete(&tx, &scope(), &refs, at(1_700_000_200)).unwrap();
    tx.commit().unwrap();
    r
}

#[test]
fn taskdef_revisions_count_up_per_family_and_describe_finds_them_three_ways() {
    let mut db = Db::open_in_memory().unwrap();
    let one = register(&mut db, "web");
    let two = register(&mut db, "web");
    let other = register(&mut db, "worker");
    assert_eq!((one.revision, two.revision, other.revision), (1, 2, 1));
    assert_eq!(
        two.arn,
        "arn:aws:ecs:us-east-1:000000000000:task-definition/web:2"
    );
    assert_eq!(two.status, TaskDefinitionStatus::Active);

    let conn = db.conn();
    for reference in ["web", "web:2", two.arn.as_str()] {
        let d = registry::describe(conn, &scope(), reference).unwrap();
        assert_eq!((d.family.as_str(), d.revision), ("web", 2), "{reference}");
        assert_eq!(d.definition.family(), "web");
    }
    assert_eq!(
        registry::describe(conn, &scope(), "web:1")
            .unwrap()
            .revision,
        1
    );

    let out = two.to_ecs_json();
    assert_eq!(out["taskDefinitionArn"], json!(two.arn));
    assert_eq!(out["revision"], json!(2));
    assert_eq!(out["status"], json!("ACTIVE"));
    assert_eq!(out["registeredAt"], json!(1_700_000_000.25));
    assert_eq!(out["registeredBy"], json!("arn:aws:iam::000000000000:root"));
    assert_eq!(out["containerDefinitions"][0]["essential"], json!(true));
    assert!(
        out.get("tags").is_none(),
        "tags are returned beside the definition, not in it"
    );
}

#[test]
fn taskdef_describe_errors() {
    let mut db = Db::open_in_memory().unwrap();
    register(&mut db, "web");
    let conn = db.conn();
    let cases = [
        (
            "web:9",
            "unable to describe task definition web:9: it does not exist",
            ErrorClass::NotFound,
            EcsException::ClientException,
        ),
        (
            "nope",
            "unable to describe task definition nope: it does not exist",
            ErrorClass::NotFound,
            EcsException::ClientException,
        ),
        (
            "arn:aws:ecs:eu-west-1:000000000000:task-definition/web:1",
            "unable to describe task definition arn:aws:ecs:eu-west-1:000000000000:task-definition/web:1: it does not exist",
            ErrorClass::NotFound,
            EcsException::ClientException,
        ),
        (
            "web:latest",
            "task definition \"web:latest\" is invalid: use a family, family:revision or a full task definition ARN",
            ErrorClass::Invalid,
            EcsException::InvalidParameterException,
        ),
    ];
    for (reference, message, class, exception) in cases {
        let err = registry::describe(conn, &scope(), reference).unwrap_err();
        assert_eq!(err.to_string(), message);
        assert_eq!(err.class(), class, "{reference}");
        assert_eq!(err.ecs_exception(), exception, "{reference}");
    }
}

#[test]
fn taskdef_deregister_and_delete_lifecycle() {
    let mut db = Db::open_in_memory().unwrap();
    for _ in 0..3 {
        register(&mut db, "web");
    }
    let err = deregister(&mut db, "web").unwrap_err();
    assert_eq!(
        err.to_string(),
        "task definition \"web\" must name a revision (family:revision or a full ARN)"
    );
    assert_eq!(err.ecs_exception(), EcsException::ClientException);

    let gone = deregister(&mut db, &arn("web", 3)).unwrap();
    assert_eq!(gone.status, TaskDefinitionStatus::Inactive);
    assert_eq!(
        gone.to_ecs_json()["deregisteredAt"],
        json!(1_700_000_100.25)
    );
    // Idempotent; family alone now means the latest ACTIVE revision, 2.
    assert_eq!(deregister(&mut db, "web:3").unwrap(), gone);
    assert_eq!(
        registry::describe(db.conn(), &scope(), "web")
            .unwrap()
            .revision,
        2
    );
    // INACTIVE revisions stay describable and cannot start tasks.
    assert_eq!(
        registry::describe(db.conn(), &scope(), "web:3")
            .unwrap()
            .status,
        TaskDefinitionStatus::Inactive
    );
    let err = registry::resolve_runnable(db.conn(), &scope(), "web:3").unwrap_err();
    assert_eq!(
        err.to_string(),
        "task definition arn:aws:ecs:us-east-1:000000000000:task-definition/web:3 is INACTIVE; only ACTIVE task definitions can start new tasks"
    );
    assert_eq!(
        registry::resolve_runnable(db.conn(), &scope(), "web")
            .unwrap()
            .revision,
        2
    );

    let out = delete(
        &mut db,
        &["web:3", "web:2", "web:9", "web", "bad name", "web:3"],
    );
    assert_eq!(out.task_definitions.len(), 1);
    let deleting = &out.task_definitions[0];
    assert_eq!(
        (deleting.revision, deleting.status),
        (3, TaskDefinitionStatus::DeleteInProgress)
    );
    assert_eq!(
        deleting.to_ecs_json()["deleteRequestedAt"],
        json!(1_700_000_200.25)
    );
    let failures: Vec<_> = out
        .failures
        .iter()
        .map(|f| {
            (
                f.arn.as_deref().unwrap(),
                f.reason.as_str(),
                f.detail.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        failures,
        [
            (
                "web:2",
                "ACTIVE",
                "task definition web:2 is ACTIVE; deregister it before deleting it"
            ),
            ("web:9", "MISSING", "the task definition does not exist"),
            (
                "web",
                "INVALID_ARGUMENT",
                "task definition \"web\" must name a revision (family:revision or a full ARN)"
            ),
            (
                "bad name",
                "INVALID_ARGUMENT",
                "task definition \"bad name\" is invalid: use a family, family:revision or a full task definition ARN",
            ),
        ]
    );
    assert_eq!(
        serde_json::to_value(&out.failures[1]).unwrap(),
        json!({"arn": "web:9", "reason": "MISSING", "detail": "the task definition does not exist"})
    );
    // Deleting again returns it unchanged; deregistering it changes nothing.
    let again = delete(&mut db, &["web:3"]);
    assert_eq!(again.task_definitions, out.task_definitions);
    assert_eq!(
        deregister(&mut db, "web:3").unwrap().status,
        TaskDefinitionStatus::DeleteInProgress
    );

    for n in [0usize, 11] {
        let refs: Vec<String> = (0..n).map(|i| format!("web:{}", i + 1)).collect();
        let tx = db.conn_mut().transaction().unwrap();
        let err = registry::delete(&tx, &scope(), &refs, at(0)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("taskDefinitions must name between 1 and 10 task definitions (it names {n})")
        );
        assert_eq!(err.ecs_exception(), EcsException::InvalidParameterException);
    }

    // The revision stays while a task uses it, then goes; its number is never reused.
    let tx = db.conn_mut().transaction().unwrap();
    assert!(
        registry::finish_deletions(&tx, &|f, r| f == "web" && r == 3)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        registry::finish_deletions(&tx, &|_, _| false).unwrap(),
        [("web".to_string(), 3)]
    );
    tx.commit().unwrap();
    assert!(matches!(
        registry::describe(db.conn(), &scope(), "web:3"),
        Err(RegistryError::NotFound { .. })
    ));
    assert_eq!(register(&mut db, "web").revision, 4);
}

fn list(db: &Db, req: &ListTaskDefinitions) -> (Vec<String>, Option<String>) {
    let page = registry::list_task_definitions(db.conn(), &scope(), req).unwrap();
    (page.items, page.next_token)
}

#[test]
fn taskdef_list_task_definitions_pages_sorts_and_filters() {
    let mut db = Db::open_in_memory().unwrap();
    for family in ["b", "a", "c"] {
        for _ in 0..8 {
            register(&mut db, family);
        }
    }
    deregister(&mut db, "a:2").unwrap();
    let mut all = Vec::new();
    let mut token = None;
    let mut pages = 0;
    loop {
        let (items, next) = list(
            &db,
            &ListTaskDefinitions {
                max_results: Some(10),
                next_token: token,
                ..Default::default()
            },
        );
        assert!(items.len() <= 10);
        all.extend(items);
        pages += 1;
        token = next;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = ["a", "b", "c"]
        .iter()
        .flat_map(|f| {
            (1..=8)
                .filter(move |&r| !(*f == "a" && r == 2))
                .map(move |r| arn(f, r))
        })
        .collect();
    assert_eq!(all, want);
    // Default page size 100: everything, no token.
    let (items, next) = list(&db, &ListTaskDefinitions::default());
    assert_eq!((items.len(), next), (23, None));

    let (desc, _) = list(
        &db,
        &ListTaskDefinitions {
            sort: Some(SortOrder::Desc),
            max_results: Some(3),
            ..Default::default()
        },
    );
    assert_eq!(desc, [arn("c", 8), arn("c", 7), arn("c", 6)]);
    let (first, token) = list(
        &db,
        &ListTaskDefinitions {
            family_prefix: Some("b".into()),
            sort: Some(SortOrder::Desc),
            max_results: Some(5),
            ..Default::default()
        },
    );
    assert_eq!(
        first,
        (4..=8).rev().map(|r| arn("b", r)).collect::<Vec<_>>()
    );
    let (rest, end) = list(
        &db,
        &ListTaskDefinitions {
            family_prefix: Some("b".into()),
            sort: Some(SortOrder::Desc),
            max_results: Some(5),
            next_token: token.clone(),
            ..Default::default()
        },
    );
    assert_eq!(
        (rest, end),
        ((1..=3).rev().map(|r| arn("b", r)).collect::<Vec<_>>(), None)
    );
    // familyPrefix is the full family name, as in ECS.
    assert_eq!(
        list(
            &db,
            &ListTaskDefinitions {
                family_prefix: Some("ab".into()),
                ..Default::default()
            }
        )
        .0
        .len(),
        0
    );
    let (inactive, _) = list(
        &db,
        &ListTaskDefinitions {
            status: Some(TaskDefinitionStatus::Inactive),
            ..Default::default()
        },
    );
    assert_eq!(inactive, [arn("a", 2)]);

    // A token belongs to its filter; garbage and out-of-range sizes are refused.
    let wrong = ListTaskDefinitions {
        family_prefix: Some("b".into()),
        next_token: token,
        ..Default::default()
    };
    let err = registry::list_task_definitions(db.conn(), &scope(), &wrong).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nextToken is invalid: pass the token of the previous page with the same filters"
    );
    assert_eq!(err.ecs_exception(), EcsException::InvalidParameterException);
    let bad = ListTaskDefinitions {
        next_token: Some("not-a-token".into()),
        ..Default::default()
    };
    assert!(matches!(
        registry::list_task_definitions(db.conn(), &scope(), &bad),
        Err(RegistryError::InvalidToken)
    ));
    for n in [0, 101] {
        let err = registry::list_task_definitions(
            db.conn(),
            &scope(),
            &ListTaskDefinitions {
                max_results: Some(n),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("maxResults ({n}) must be between 1 and 100")
        );
    }
}

#[test]
fn taskdef_list_families_by_prefix_and_status() {
    let mut db = Db::open_in_memory().unwrap();
    for f in ["api", "api-worker", "batch", "web"] {
        register(&mut db, f);
    }
    deregister(&mut db, "batch:1").unwrap();
    deregister(&mut db, "web:1").unwrap();
    delete(&mut db, &["web:1"]);
    let families = |db: &Db, status: Option<TaskDefinitionFamilyStatus>, prefix: Option<&str>| {
        let req = ListTaskDefinitionFamilies {
            status,
            family_prefix: prefix.map(str::to_owned),
            ..Default::default()
        };
        registry::list_families(db.conn(), &req).unwrap().items
    };
    assert_eq!(
        families(&db, None, None),
        ["api", "api-worker", "batch", "web"]
    );
    assert_eq!(
        families(&db, Some(TaskDefinitionFamilyStatus::Active), None),
        ["api", "api-worker"]
    );
    assert_eq!(
        families(&db, Some(TaskDefinitionFamilyStatus::Inactive), None),
        ["batch", "web"]
    );
    assert_eq!(
        families(&db, Some(TaskDefinitionFamilyStatus::All), Some("api")),
        ["api", "api-worker"]
    );
    assert_eq!(families(&db, None, Some("api-")), ["api-worker"]);

    let first = registry::list_families(
        db.conn(),
        &ListTaskDefinitionFamilies {
            max_results: Some(3),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(first.items, ["api", "api-worker", "batch"]);
    let rest = registry::list_families(
        db.conn(),
        &ListTaskDefinitionFamilies {
            max_results: Some(3),
            next_token: first.next_token,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        (rest.items, rest.next_token),
        (vec!["web".to_string()], None)
    );

    // Once its last revision is finally deleted, a family is no longer listed.
    let tx = db.conn_mut().transaction().unwrap();
    registry::finish_deletions(&tx, &|_, _| false).unwrap();
    tx.commit().unwrap();
    assert_eq!(families(&db, None, None), ["api", "api-worker", "batch"]);
}

#[test]
fn taskdef_tags_on_task_definitions() {
    let mut db = Db::open_in_memory().unwrap();
    let td = register(&mut db, "web");
    let tx = db.conn_mut().transaction().unwrap();
    registry::tag(
        &tx,
        &scope(),
        &td.arn,
        &[Tag::new("env", "dev"), Tag::new("team", "core")],
    )
    .unwrap();
    registry::untag(&tx, &scope(), &td.arn, &["env".into(), "absent".into()]).unwrap();
    tx.commit().unwrap();
    assert_eq!(
        registry::list_tags(db.conn(), &scope(), &td.arn).unwrap(),
        [Tag::new("team", "core")]
    );

    let tx = db.conn_mut().transaction().unwrap();
    let err = registry::tag(&tx, &scope(), &td.arn, &[Tag::new("aws:x", "y")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "tags[0].key \"aws:x\" uses the reserved prefix aws:"
    );
    assert_eq!(err.ecs_exception(), EcsException::InvalidParameterException);
    let many: Vec<Tag> = (0..50).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    let err = registry::tag(&tx, &scope(), &td.arn, &many).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("tags would be 51 on {}; at most 50 are allowed", td.arn)
    );
    drop(tx); // rolled back
    assert_eq!(
        registry::list_tags(db.conn(), &scope(), &td.arn)
            .unwrap()
            .len(),
        1
    );

    let err = registry::list_tags(db.conn(), &scope(), &arn("web", 7)).unwrap_err();
    assert_eq!(err.class(), ErrorClass::NotFound);
    assert!(registry::is_task_definition_arn(&td.arn));
    assert!(!registry::is_task_definition_arn(
        "arn:aws:ecs:us-east-1:000000000000:cluster/default"
    ));
}

#[test]
fn taskdef_state_survives_reopening_and_runs_on_the_database_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("berth.db");
    {
        let mut db = Db::open(&path).unwrap();
        register(&mut db, "web");
        deregister(&mut db, "web:1").unwrap();
        register(&mut db, "web");
    }
    let handle = DbHandle::spawn(Db::open(&path).unwrap());
    let (latest, old) = handle.call_blocking(|db| {
        let s = scope();
        (
            registry::describe(db.conn(), &s, "web").unwrap(),
            registry::describe(db.conn(), &s, "web:1").unwrap(),
        )
    });
    assert_eq!(
        (latest.revision, old.status),
        (2, TaskDefinitionStatus::Inactive)
    );
    assert_eq!(latest.definition.containers()[0].memory, Some(64));
    let tags =
        handle.call_blocking(|db| registry::list_tags(db.conn(), &scope(), "web:2").unwrap());
    assert_eq!(tags, [Tag::new("team", "berth")]);
}

#[test]
fn taskdef_migration_fixture_rows_are_readable_by_the_registry() {
    let db = Db::open_in_memory().unwrap();
    let fixtures = MIGRATIONS
        .iter()
        .find(|m| m.name == "task_definitions")
        .unwrap()
        .fixtures;
    for (_, sql) in fixtures {
        db.conn().execute_batch(sql).unwrap();
    }
    let latest = registry::describe(db.conn(), &scope(), "fixture").unwrap();
    assert_eq!(latest.revision, 2);
    assert_eq!(
        registry::list_tags(db.conn(), &scope(), "fixture:2").unwrap(),
        [Tag::new("team", "berth")]
    );
    assert_eq!(
        registry::describe(db.conn(), &scope(), "fixture:1")
            .unwrap()
            .status,
        TaskDefinitionStatus::Inactive
    );
}
