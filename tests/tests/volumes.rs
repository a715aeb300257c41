//! Volumes shared between a task's containers, through `berth daemon` on the real
//! kernel (issue 6): task scratch volumes, the seed's two-container example, host bind
//! mounts, named volumes (task and shared, tmpfs driver options), `volumesFrom`, image
//! `VOLUME`s and `linuxParameters.tmpfs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_tests::daemon::{APPLETS, Daemon, busybox_layout, named};
use berth_tests::images::{ImageBuilder, Layer, write_docker_archive};
use berth_tests::require_e2e;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// The fixture's applets and a few more these tests use.
fn applets() -> Vec<&'static str> {
    let mut a = APPLETS.to_vec();
    a.extend(["stat", "tr", "sort", "cut", "readlink"]);
    a
}

fn setup() -> (Daemon, String) {
    let d = Daemon::start();
    let image = busybox_layout(&d.scratch().join("images"), &applets());
    (d, image)
}

fn container(name: &str, image: &str, command: &str) -> Value {
    json!({"name": name, "image": image, "memory": 64, "entryPoint": ["sh", "-c"], "command": [command]})
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn task_volumes_dir(d: &Daemon, id: &str) -> PathBuf {
    d.data_root().join("tasks").join(id).join("volumes")
}

fn shared_volume_dir(d: &Daemon, name: &str) -> PathBuf {
    d.data_root().join("volumes").join(name).join("_data")
}

/// Whether anything is mounted at or below `path`.
fn mounted_under(path: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|p| Path::new(p).starts_with(path))
        .map(str::to_owned)
        .collect()
}

#[test]
fn containers_share_task_scratch_volumes_which_go_with_the_task() {
    require_e2e!();
    let (d, image) = setup();
    // `shared` has no host member, `empty` has `"host": {}`: both are task scratch.
    let mut writer = container(
        "writer",
        &image,
        "echo from-writer > /data/msg; echo two > /other/x; sleep 600",
    );
    writer["mountPoints"] = json!([
        {"sourceVolume": "shared", "containerPath": "/data"},
        {"sourceVolume": "empty", "containerPath": "/other"}
    ]);
    let mut reader = container(
        "reader",
        &image,
        "while [ ! -f /in/msg ] || [ ! -f /also/x ]; do sleep 0.1; done; cat /in/msg /also/x; echo reader-was-here > /in/back",
    );
    reader["essential"] = json!(false);
    reader["mountPoints"] = json!([
        {"sourceVolume": "shared", "containerPath": "/in"},
        {"sourceVolume": "empty", "containerPath": "/also"}
    ]);
    let td = d.register(json!({
        "family": "scratch",
        "volumes": [{"name": "shared"}, {"name": "empty", "host": {}}],
        "containerDefinitions": [writer, reader]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let t = d.wait_task(&id, WAIT, "reader done", |t| {
        named(t, "reader")["lastStatus"] == "STOPPED"
    });
    assert_eq!(
        named(&t, "reader")["exitCode"],
        0,
        "{}",
        d.logs(&id, "reader")
    );
    assert_eq!(d.logs(&id, "reader"), "from-writer\ntwo\n");
    let dir = task_volumes_dir(&d, &id);
    assert_eq!(
        std::fs::read_to_string(dir.join("shared/back")).unwrap(),
        "reader-was-here\n"
    );
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    assert!(!dir.exists(), "task scratch volumes outlived the task");
    d.assert_clean();
}

#[test]
fn the_seed_two_database_containers_share_database_scratch() {
    require_e2e!();
    let d = Daemon::start();
    // The seed names `my-repo/database`: load an image under that name whose command
    // writes a file named by a random id into /var/scratch, then lists the directory
    // once both containers have written.
    let script = "id=$(cat /proc/sys/kernel/random/uuid); echo $id > /var/scratch/$id; \
                  echo me=$id; while [ $(ls /var/scratch | wc -l) -lt 2 ]; do sleep 0.1; done; \
                  echo all=$(ls /var/scratch | sort | tr '\\n' ' '); sleep 600";
    let image = ImageBuilder::busybox(&applets())
        .cmd(&["sh", "-c", script])
        .build();
    let archive = d.scratch().join("database.tar");
    write_docker_archive(&archive, &[(&image, &["my-repo/database:latest"])]).unwrap();
    let out = d.cli(&["load", "-i", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");

    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../runtime/tests/data/seeds/database-scratch.as-written.json"),
    )
    .unwrap();
    // As printed, the example has trailing commas and no family or memory.
    let text = text.replace(",\n    }", "\n    }");
    let mut def: Value = serde_json::from_str(&text).unwrap();
    def["family"] = json!("database-scratch");
    def["memory"] = json!("256");
    let td = d.register(def);
    let id = d.run_task(&td);
    d.wait_running(&id);
    let mut seen = Vec::new();
    for name in ["database1", "database2"] {
        let out = (0..100)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(100));
                d.logs(&id, name)
            })
            .find(|o| o.contains("all="))
            .unwrap_or_else(|| panic!("{name} never saw both files: {}", d.logs(&id, name)));
        let me = out
            .lines()
            .find_map(|l| l.strip_prefix("me="))
            .unwrap()
            .to_owned();
        let all = out
            .lines()
            .find_map(|l| l.strip_prefix("all="))
            .unwrap()
            .to_owned();
        assert!(all.contains(&me), "{name}: {out}");
        seen.push((me, all));
    }
    assert_ne!(seen[0].0, seen[1].0);
    assert_eq!(seen[0].1, seen[1].1, "both list the same two files");
    let dir = task_volumes_dir(&d, &id).join("database_scratch");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    assert!(!dir.exists());
    d.assert_clean();
}

#[test]
fn a_host_source_path_is_created_bind_mounted_and_read_only_where_asked() {
    require_e2e!();
    let (d, image) = setup();
    let host = d.scratch().join("bG-host/not/yet/there");
    let mut rw = container(
        "rw",
        &image,
        "cat /host/seed; echo written-inside > /host/out && echo rw-ok",
    );
    rw["essential"] = json!(false);
    rw["mountPoints"] = json!([{"sourceVolume": "h", "containerPath": "/host"}]);
    let mut ro = container(
        "ro",
        &image,
        "while [ ! -f /host/out ]; do sleep 0.1; done; cat /host/out; touch /host/nope 2>&1 || echo ro-refused",
    );
    ro["mountPoints"] = json!([{"sourceVolume": "h", "containerPath": "/host", "readOnly": true}]);
    ro["dependsOn"] = json!([{"containerName": "rw", "condition": "START"}]);
    let td = d.register(json!({
        "family": "bind",
        "volumes": [{"name": "h", "host": {"sourcePath": host}}],
        "containerDefinitions": [rw, ro]
    }));
    // Nothing at the path yet: the first run creates it (an empty directory).
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    assert!(host.is_dir(), "sourcePath was not created");
    assert_eq!(named(&t, "rw")["exitCode"], 0, "{}", d.logs(&id, "rw"));
    assert_eq!(named(&t, "ro")["exitCode"], 0, "{}", d.logs(&id, "ro"));
    assert!(d.logs(&id, "rw").contains("rw-ok"));
    let ro_out = d.logs(&id, "ro");
    assert!(ro_out.contains("written-inside"), "{ro_out}");
    assert!(ro_out.contains("Read-only file system"), "{ro_out}");
    assert!(ro_out.contains("ro-refused"), "{ro_out}");
    assert!(!host.join("nope").exists());
    // The host path is the user's: kept after the task, content and all; a second run
    // sees what the host put there.
    assert_eq!(
        std::fs::read_to_string(host.join("out")).unwrap(),
        "written-inside\n"
    );
    std::fs::write(host.join("seed"), "seeded-by-host\n").unwrap();
    std::fs::remove_file(host.join("out")).unwrap();
    let id2 = d.run_task(&td);
    d.wait_stopped(&id2, WAIT);
    assert!(d.logs(&id2, "rw").contains("seeded-by-host"));
    assert!(host.join("out").exists());
    d.assert_clean();
}

#[test]
fn a_source_path_through_a_symbolic_link_is_refused_with_a_clear_reason() {
    require_e2e!();
    let (d, image) = setup();
    let real = d.scratch().join("bG-real");
    std::fs::create_dir_all(&real).unwrap();
    let link = d.scratch().join("bG-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let mut c = container("c", &image, "ls /host");
    c["mountPoints"] = json!([{"sourceVolume": "h", "containerPath": "/host"}]);
    let td = d.register(json!({
        "family": "symlinked",
        "volumes": [{"name": "h", "host": {"sourcePath": link.join("sub")}}],
        "containerDefinitions": [c]
    }));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("symbolic link") && reason.contains(link.to_str().unwrap()),
        "{reason}"
    );
    assert!(
        !real.join("sub").exists(),
        "nothing is created through the link"
    );
    assert_eq!(named(&t, "c")["lastStatus"], "STOPPED");
    d.assert_clean();
}

#[test]
fn a_shared_named_volume_outlives_its_task_and_is_listed_reused_and_removed() {
    require_e2e!();
    let (d, image) = setup();
    let mut c = container(
        "c",
        &image,
        "cat /vol/count 2>/dev/null || echo 0 > /vol/count; echo $(( $(cat /vol/count) + 1 )) > /vol/count; cat /vol/count; sleep ${HOLD:-0}",
    );
    c["mountPoints"] = json!([{"sourceVolume": "bGcache", "containerPath": "/vol"}]);
    let td = d.register(json!({
        "family": "sharedvol",
        "volumes": [{"name": "bGcache", "dockerVolumeConfiguration": {
            "scope": "shared", "autoprovision": true, "driver": "local",
            "labels": {"team": "berth", "purpose": "test"}
        }}],
        "containerDefinitions": [c]
    }));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    assert_eq!(t["containers"][0]["exitCode"], 0, "{}", d.logs(&id, "c"));
    let dir = shared_volume_dir(&d, "bGcache");
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "1\n");

    // Listed, with what the definition said about it.
    let out = d.cli(&["volume", "ls"]);
    let listing = stdout(&out);
    assert!(
        listing.contains("bGcache") && listing.contains("local") && listing.contains("shared"),
        "{listing}"
    );
    let v = d.ok("Berth.ListVolumes", json!({}));
    let vol = v["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "bGcache")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert_eq!(vol["labels"]["team"], "berth", "{vol:#}");
    assert_eq!(vol["driver"], "local");
    assert!(vol["createdAt"].is_number(), "{vol:#}");
    assert_eq!(vol["inUse"], false);

    // The next task finds the count and holds the volume while it runs: removal is
    // refused until it stops.
    let run = d.ok(
        "RunTask",
        json!({"taskDefinition": td, "overrides": {"containerOverrides": [
            {"name": "c", "environment": [{"name": "HOLD", "value": "600"}]}
        ]}}),
    );
    let id2 = run["tasks"][0]["taskArn"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    d.wait_running(&id2);
    let out = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            d.logs(&id2, "c")
        })
        .find(|o| o.contains('2'))
        .unwrap_or_default();
    assert_eq!(out, "1\n2\n", "the second task did not reuse the volume");
    let rm = d.cli(&["volume", "rm", "bGcache"]);
    assert!(!rm.status.success(), "removed while in use");
    assert!(
        String::from_utf8_lossy(&rm.stderr).contains("in use")
            || String::from_utf8_lossy(&rm.stderr).contains("used by"),
        "{rm:?}"
    );
    assert!(dir.exists());
    d.kill_task(&id2);
    d.wait_stopped(&id2, WAIT);
    assert!(dir.exists(), "a shared volume is kept after its task");
    let rm = d.cli(&["volume", "rm", "bGcache"]);
    assert!(rm.status.success(), "{rm:?}");
    assert!(!dir.parent().unwrap().exists());
    assert!(!stdout(&d.cli(&["volume", "ls"])).contains("bGcache"));
    let v = d.ok("Berth.ListVolumes", json!({}));
    assert!(
        !v["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "bGcache")
    );
    d.assert_clean();
}

#[test]
fn a_missing_shared_volume_without_autoprovision_fails_the_task() {
    require_e2e!();
    let (d, image) = setup();
    let mut c = container("c", &image, "true");
    c["mountPoints"] = json!([{"sourceVolume": "bGabsent", "containerPath": "/vol"}]);
    let td = d.register(json!({
        "family": "noauto",
        "volumes": [{"name": "bGabsent", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": false}}],
        "containerDefinitions": [c]
    }));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.contains("bGabsent") && reason.contains("autoprovision"),
        "{reason}"
    );
    assert!(!shared_volume_dir(&d, "bGabsent").exists());
    d.assert_clean();
}

#[test]
fn volumes_from_replays_mounts_through_chains_and_honours_read_only() {
    require_e2e!();
    let (d, image) = setup();
    // `last` is listed first and takes its volumes from `middle`, which takes them
    // read-only from `source`: the chain must resolve whatever the order.
    let mut last = container(
        "last",
        &image,
        // middle writes /cfg/c after it sees /data/f: wait for it (bounded, so a missing
        // chained mount fails the assertion below instead of hanging).
        "while [ ! -f /data/f ]; do sleep 0.1; done; i=0; while [ ! -f /cfg/c ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; cat /data/f; cat /cfg/c; touch /data/x 2>&1 || echo last-ro",
    );
    last["essential"] = json!(false);
    last["volumesFrom"] = json!([{"sourceContainer": "middle"}]);
    let mut middle = container(
        "middle",
        &image,
        "while [ ! -f /data/f ]; do sleep 0.1; done; cat /data/f; echo from-middle > /cfg/c; touch /data/y 2>&1 || echo middle-ro; sleep 600",
    );
    middle["volumesFrom"] = json!([{"sourceContainer": "source", "readOnly": true}]);
    middle["mountPoints"] = json!([{"sourceVolume": "cfg", "containerPath": "/cfg"}]);
    let mut source = container("source", &image, "echo from-source > /data/f; sleep 600");
    source["mountPoints"] = json!([{"sourceVolume": "data", "containerPath": "/data"}]);
    // `rw` takes source's volumes with their own (read-write) mode.
    let mut rw = container(
        "rw",
        &image,
        "while [ ! -f /data/f ]; do sleep 0.1; done; echo from-rw > /data/rw && echo rw-wrote",
    );
    rw["essential"] = json!(false);
    rw["volumesFrom"] = json!([{"sourceContainer": "source", "readOnly": false}]);
    last["dependsOn"] = json!([{"containerName": "middle", "condition": "START"}]);
    let td = d.register(json!({
        "family": "volfrom",
        "volumes": [{"name": "data"}, {"name": "cfg"}],
        "containerDefinitions": [last, middle, source, rw]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let t = d.wait_task(&id, WAIT, "last and rw done", |t| {
        named(t, "last")["lastStatus"] == "STOPPED" && named(t, "rw")["lastStatus"] == "STOPPED"
    });
    let out = d.logs(&id, "last");
    assert_eq!(named(&t, "last")["exitCode"], 0, "{out}");
    assert!(out.contains("from-source"), "{out}");
    assert!(
        out.contains("from-middle"),
        "chained mount point missing: {out}"
    );
    assert!(
        out.contains("Read-only file system") && out.contains("last-ro"),
        "{out}"
    );
    let out = d.logs(&id, "middle");
    assert!(out.contains("middle-ro"), "{out}");
    let out = d.logs(&id, "rw");
    assert!(out.contains("rw-wrote"), "{out}");
    let vols = task_volumes_dir(&d, &id);
    assert_eq!(
        std::fs::read_to_string(vols.join("data/rw")).unwrap(),
        "from-rw\n"
    );
    assert!(!vols.join("data/x").exists() && !vols.join("data/y").exists());
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    assert!(!vols.exists());
    d.assert_clean();
}

#[test]
fn an_image_volume_gets_an_anonymous_volume_populated_from_the_image() {
    require_e2e!();
    let d = Daemon::start();
    let image = ImageBuilder::busybox(&applets())
        .layer(
            Layer::new()
                .dir("seeded", 0o750)
                .file("seeded/hello", b"from the image\n", 0o640)
                .dir("seeded/sub", 0o755)
                .file("seeded/sub/deep", b"deep\n", 0o644),
        )
        .volume("/seeded")
        .cmd(&["sh"])
        .build();
    let layout = d.scratch().join("vol-layout");
    image.write_layout(&layout, "latest").unwrap();
    let image = format!("oci-layout:{}:latest", layout.display());
    let mut owner = container(
        "owner",
        &image,
        "cat /seeded/hello /seeded/sub/deep; stat -c '%a' /seeded; echo mine > /seeded/new; grep ' /seeded ' /proc/mounts | cut -d' ' -f2; sleep 600",
    );
    owner["essential"] = json!(true);
    let mut peer = container(
        "peer",
        &image,
        "while [ ! -f /seeded/new ]; do sleep 0.1; done; cat /seeded/new",
    );
    peer["essential"] = json!(false);
    peer["volumesFrom"] = json!([{"sourceContainer": "owner"}]);
    let td = d.register(json!({"family": "imgvol", "containerDefinitions": [owner, peer]}));
    let id = d.run_task(&td);
    d.wait_running(&id);
    d.wait_task(&id, WAIT, "peer done", |t| {
        named(t, "peer")["lastStatus"] == "STOPPED"
    });
    let out = d.logs(&id, "owner");
    assert!(out.contains("from the image\ndeep\n750\n"), "{out}");
    assert!(out.contains("/seeded"), "not a mount: {out}");
    assert_eq!(d.logs(&id, "peer"), "mine\n");
    // The image's own copy is untouched (the write went to the volume).
    let vols = task_volumes_dir(&d, &id);
    assert!(vols.exists());
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    assert!(!vols.exists(), "anonymous volumes outlived the task");
    d.assert_clean();
}

#[test]
fn linux_parameters_tmpfs_mounts_a_sized_tmpfs() {
    require_e2e!();
    let (d, image) = setup();
    let mut c = container(
        "c",
        &image,
        "grep ' /scratch ' /proc/mounts; echo hi > /scratch/f && cat /scratch/f",
    );
    c["linuxParameters"] =
        json!({"tmpfs": [{"containerPath": "/scratch", "size": 8, "mountOptions": ["noexec"]}]});
    let td = d.register(json!({"family": "tmpfs", "containerDefinitions": [c]}));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    let out = d.logs(&id, "c");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{out}");
    let line = out.lines().next().unwrap();
    assert!(line.starts_with("tmpfs /scratch tmpfs "), "{out}");
    assert!(
        line.contains("size=8192k") && line.contains("noexec"),
        "{line}"
    );
    assert!(out.contains("\nhi\n"), "{out}");
    d.assert_clean();
}

#[test]
fn docker_volume_driver_opts_tmpfs_is_mounted_and_unmounted_with_the_task() {
    require_e2e!();
    let (d, image) = setup();
    let mut a = container(
        "a",
        &image,
        "grep ' /mem ' /proc/mounts; echo in-memory > /mem/f; sleep 600",
    );
    a["mountPoints"] = json!([
        {"sourceVolume": "mem", "containerPath": "/mem"},
        {"sourceVolume": "bGsharedmem", "containerPath": "/smem"}
    ]);
    let mut b = container(
        "b",
        &image,
        "while [ ! -f /m/f ]; do sleep 0.1; done; cat /m/f; grep ' /smem ' /proc/mounts",
    );
    b["essential"] = json!(false);
    b["mountPoints"] = json!([
        {"sourceVolume": "mem", "containerPath": "/m"},
        {"sourceVolume": "bGsharedmem", "containerPath": "/smem"}
    ]);
    let td = d.register(json!({
        "family": "tmpfsvol",
        "volumes": [
            {"name": "mem", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local",
                "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=4m,mode=0777"}
            }},
            {"name": "bGsharedmem", "dockerVolumeConfiguration": {
                "scope": "shared", "autoprovision": true, "driver": "local",
                "driverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}
            }}
        ],
        "containerDefinitions": [a, b]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    d.wait_task(&id, WAIT, "b done", |t| {
        named(t, "b")["lastStatus"] == "STOPPED"
    });
    let out = d.logs(&id, "a");
    assert!(out.starts_with("tmpfs /mem tmpfs "), "{out}");
    assert!(out.contains("size=4096k"), "{out}");
    let out = d.logs(&id, "b");
    assert!(out.starts_with("in-memory\ntmpfs /smem tmpfs "), "{out}");
    assert!(out.contains("size=2048k"), "{out}");
    // On the host, the volume directory is the tmpfs (nothing reaches the disk).
    let vol = task_volumes_dir(&d, &id).join("mem");
    assert!(
        mounted_under(&vol).iter().any(|m| Path::new(m) == vol),
        "{:?}",
        mounted_under(&d.data_root())
    );
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    // Both unmounted once no task uses them (assert_clean checks every mount under
    // the roots); the shared volume's directory stays, empty.
    d.assert_clean();
    assert!(shared_volume_dir(&d, "bGsharedmem").is_dir());
    let rm = d.cli(&["volume", "rm", "bGsharedmem"]);
    assert!(rm.status.success(), "{rm:?}");
}

#[test]
fn an_empty_volume_takes_the_image_content_it_is_mounted_over_but_a_host_path_does_not() {
    require_e2e!();
    let d = Daemon::start();
    let image = ImageBuilder::busybox(&applets())
        .layer(Layer::new().dir("srv", 0o755).dir("srv/www", 0o755).file(
            "srv/www/index.html",
            b"<h1>from the image</h1>\n",
            0o644,
        ))
        .cmd(&["sh"])
        .build();
    let layout = d.scratch().join("www-layout");
    image.write_layout(&layout, "latest").unwrap();
    let image = format!("oci-layout:{}:latest", layout.display());
    let host = d.scratch().join("bG-www");
    // `web` mounts the empty volume over the image's /srv/www (copied in); `reader`
    // sees it at another path; `hostview` mounts a host directory there (untouched).
    let mut web = container("web", &image, "ls /srv/www; sleep 600");
    web["mountPoints"] = json!([{"sourceVolume": "www", "containerPath": "/srv/www"}]);
    let mut reader = container(
        "reader",
        &image,
        "while [ ! -f /data/index.html ]; do sleep 0.1; done; cat /data/index.html",
    );
    reader["essential"] = json!(false);
    reader["mountPoints"] = json!([{"sourceVolume": "www", "containerPath": "/data"}]);
    reader["dependsOn"] = json!([{"containerName": "web", "condition": "START"}]);
    let mut hostview = container("hostview", &image, "ls -A /srv/www | wc -l");
    hostview["essential"] = json!(false);
    hostview["mountPoints"] = json!([{"sourceVolume": "h", "containerPath": "/srv/www"}]);
    let td = d.register(json!({
        "family": "copyup",
        "volumes": [
            {"name": "www", "dockerVolumeConfiguration": {"scope": "task"}},
            {"name": "h", "host": {"sourcePath": host}}
        ],
        "containerDefinitions": [web, reader, hostview]
    }));
    let id = d.run_task(&td);
    d.wait_running(&id);
    let t = d.wait_task(&id, WAIT, "reader and hostview done", |t| {
        named(t, "reader")["lastStatus"] == "STOPPED"
            && named(t, "hostview")["lastStatus"] == "STOPPED"
    });
    assert_eq!(
        named(&t, "reader")["exitCode"],
        0,
        "{}",
        d.logs(&id, "reader")
    );
    assert_eq!(d.logs(&id, "reader"), "<h1>from the image</h1>\n");
    assert_eq!(d.logs(&id, "web"), "index.html\n");
    assert_eq!(d.logs(&id, "hostview").trim(), "0");
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
    d.kill_task(&id);
    d.wait_stopped(&id, WAIT);
    d.assert_clean();
}

#[test]
fn a_bind_driver_opts_volume_shows_host_files_and_removing_it_keeps_them() {
    require_e2e!();
    let (d, image) = setup();
    let host = d.scratch().join("bG-bound");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-host"), "hello from the host\n").unwrap();
    let mut c = container(
        "c",
        &image,
        "cat /shared/from-host /task/from-host; echo written > /shared/from-task; touch /ro/x 2>&1 || echo ro-ok",
    );
    c["mountPoints"] = json!([
        {"sourceVolume": "bGbind", "containerPath": "/shared"},
        {"sourceVolume": "taskbind", "containerPath": "/task"},
        {"sourceVolume": "robind", "containerPath": "/ro"}
    ]);
    let bind = |o: &str| json!({"type": "none", "device": host, "o": o});
    let td = d.register(json!({
        "family": "bindopts",
        "volumes": [
            {"name": "bGbind", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driverOpts": bind("bind")}},
            {"name": "taskbind", "dockerVolumeConfiguration": {"scope": "task", "driverOpts": bind("bind")}},
            {"name": "robind", "dockerVolumeConfiguration": {"scope": "task", "driverOpts": bind("bind,ro")}}
        ],
        "containerDefinitions": [c]
    }));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    let out = d.logs(&id, "c");
    assert_eq!(t["containers"][0]["exitCode"], 0, "{out}");
    assert!(
        out.starts_with("hello from the host\nhello from the host\n"),
        "{out}"
    );
    assert!(
        out.contains("Read-only file system") && out.contains("ro-ok"),
        "{out}"
    );
    // Cleaning up the task-scoped ones and removing the shared one unmount them; the
    // host's files stay.
    d.assert_clean();
    assert_eq!(
        std::fs::read_to_string(host.join("from-task")).unwrap(),
        "written\n"
    );
    let rm = d.cli(&["volume", "rm", "bGbind"]);
    assert!(rm.status.success(), "{rm:?}");
    assert!(host.join("from-host").exists() && host.join("from-task").exists());
    assert!(!d.data_root().join("volumes/bGbind").exists());
    d.assert_clean();

    // The device must exist and not go through a symbolic link.
    let link = d.scratch().join("bG-bound-link");
    std::os::unix::fs::symlink(&host, &link).unwrap();
    let mut c = container("c", &image, "true");
    c["mountPoints"] = json!([{"sourceVolume": "v", "containerPath": "/v"}]);
    let td = d.register(json!({
        "family": "bindlink",
        "volumes": [{"name": "v", "dockerVolumeConfiguration": {"driverOpts": {"type": "none", "device": link, "o": "bind"}}}],
        "containerDefinitions": [c]
    }));
    let id = d.run_task(&td);
    let t = d.wait_stopped(&id, WAIT);
    let reason = t["stoppedReason"].as_str().unwrap();
    assert!(
        reason.starts_with("CannotCreateVolumeError:") && reason.contains("symbolic link"),
        "{reason}"
    );
    d.assert_clean();
}
