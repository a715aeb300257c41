use std::collections::HashMap;
use std::path::Path;

use oci_spec::image::{Config as ImageConfig, ConfigBuilder};

use super::*;

struct NoFiles;
impl RootfsFiles for NoFiles {
    fn read_to_string(&self, _: &str) -> Option<String> {
        None
    }
}

struct Files(HashMap<&'static str, &'static str>);
impl RootfsFiles for Files {
    fn read_to_string(&self, p: &str) -> Option<String> {
        self.0.get(p).map(|s| s.to_string())
    }
}

fn image() -> ImageConfig {
    ConfigBuilder::default()
        .entrypoint(vec!["/entry".to_string()])
        .cmd(vec!["serve".to_string(), "--port=80".to_string()])
        .env(vec!["PATH=/bin".to_string(), "MODE=image".to_string()])
        .working_dir("/srv".to_string())
        .build()
        .unwrap()
}

fn plan() -> ContainerPlan {
    ContainerPlan {
        name: "web".into(),
        hostname: "ip-10-0-0-2".into(),
        no_new_privileges: true,
        ..Default::default()
    }
}

fn ctx(version: CgroupVersion) -> SpecContext<'static> {
    SpecContext {
        rootfs: Path::new("/run/berth/tasks/t/containers/web/rootfs"),
        cgroups_path: "/berth/tasks/t/web".into(),
        cgroup_version: version,
        network: Namespace::Join("/run/berth/netns/t".into()),
        pid: Namespace::New,
        ipc: Namespace::New,
        dev_shm: true,
    }
}

#[test]
fn image_entrypoint_and_cmd_are_used_when_the_definition_sets_neither() {
    let p = process_settings(&plan(), Some(&image()), &NoFiles).unwrap();
    assert_eq!(p.args, ["/entry", "serve", "--port=80"]);
    assert_eq!(p.cwd, "/srv");
}

#[test]
fn a_command_replaces_cmd_and_keeps_the_entrypoint() {
    let mut pl = plan();
    pl.command = Some(vec!["check".into()]);
    let p = process_settings(&pl, Some(&image()), &NoFiles).unwrap();
    assert_eq!(p.args, ["/entry", "check"]);
}

#[test]
fn an_entrypoint_replaces_the_entrypoint_and_drops_the_image_cmd() {
    let mut pl = plan();
    pl.entry_point = Some(vec!["sh".into(), "-c".into()]);
    let p = process_settings(&pl, Some(&image()), &NoFiles).unwrap();
    assert_eq!(p.args, ["sh", "-c"]);
    pl.command = Some(vec!["echo hi".into()]);
    let p = process_settings(&pl, Some(&image()), &NoFiles).unwrap();
    assert_eq!(p.args, ["sh", "-c", "echo hi"]);
}

#[test]
fn nothing_to_run_is_an_error() {
    let err = process_settings(&plan(), None, &NoFiles).unwrap_err();
    assert!(matches!(err, SpecError::NoCommand));
}

#[test]
fn definition_environment_overrides_the_image_and_defaults_fill_in() {
    let mut pl = plan();
    pl.environment = vec![("MODE".into(), "task".into()), ("EXTRA".into(), "1".into())];
    let p = process_settings(&pl, Some(&image()), &NoFiles).unwrap();
    assert!(p.env.contains(&"MODE=task".to_string()));
    assert!(p.env.contains(&"EXTRA=1".to_string()));
    assert!(p.env.contains(&"PATH=/bin".to_string()));
    assert!(p.env.contains(&"HOSTNAME=ip-10-0-0-2".to_string()));
    assert!(p.env.contains(&"HOME=/root".to_string()));
    let mut pl = plan();
    pl.command = Some(vec!["x".into()]);
    let p = process_settings(&pl, None, &NoFiles).unwrap();
    assert_eq!(p.env[0], format!("PATH={DEFAULT_PATH}"));
}

#[test]
fn the_user_resolves_in_the_image_files() {
    let files = Files(HashMap::from([
        (
            "/etc/passwd",
            "root:x:0:0::/root:/bin/sh\nweb:x:101:102::/home/web:/bin/sh\n",
        ),
        ("/etc/group", "web:x:102:\n"),
    ]));
    let mut pl = plan();
    pl.user = Some("web".into());
    let p = process_settings(&pl, Some(&image()), &files).unwrap();
    assert_eq!((p.user.uid, p.user.gid), (101, 102));
    assert!(p.env.contains(&"HOME=/home/web".to_string()));
    pl.user = Some("ghost".into());
    assert!(process_settings(&pl, Some(&image()), &files).is_err());
}

#[test]
fn capabilities_start_from_dockers_default_then_drop_then_add() {
    let mut pl = plan();
    pl.cap_drop = vec!["NET_RAW".into(), "mknod".into()];
    pl.cap_add = vec!["NET_ADMIN".into()];
    let caps = capabilities(&pl).unwrap();
    assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
    assert!(!caps.contains(&"CAP_MKNOD".to_string()));
    assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
    assert!(caps.contains(&"CAP_CHOWN".to_string()));
    pl.cap_drop = vec!["ALL".into()];
    pl.cap_add = vec!["KILL".into()];
    assert_eq!(capabilities(&pl).unwrap(), ["CAP_KILL"]);
    pl.cap_add = vec!["WARP_DRIVE".into()];
    assert!(capabilities(&pl).is_err());
}

#[test]
fn capabilities_stay_within_the_hosts_bounding_set() {
    // A host without CAP_SYS_RESOURCE (bit 24) in berth's bounding set.
    let bounding = 0x1ff_feff_ffffu64;
    let mut pl = plan();
    pl.privileged = true;
    let caps = capabilities_within(&pl, bounding).unwrap();
    assert_eq!(caps.len(), defaults::ALL_CAPABILITIES.len() - 1);
    assert!(!caps.contains(&"CAP_SYS_RESOURCE".to_string()));
    pl.privileged = false;
    pl.cap_add = vec!["ALL".into()];
    assert!(
        !capabilities_within(&pl, bounding)
            .unwrap()
            .contains(&"CAP_SYS_RESOURCE".to_string())
    );
    pl.cap_add = vec!["SYS_RESOURCE".into()];
    let err = capabilities_within(&pl, bounding).unwrap_err();
    assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
    pl.cap_add = vec!["SYS_ADMIN".into()];
    assert!(
        capabilities_within(&pl, bounding)
            .unwrap()
            .contains(&"CAP_SYS_ADMIN".to_string())
    );
}

#[test]
fn generated_spec_has_secure_defaults_and_valid_shape() {
    let mut pl = plan();
    pl.command = Some(vec!["true".into()]);
    pl.memory_mib = Some(128);
    pl.memory_reservation_mib = Some(64);
    pl.cpu_units = Some(256);
    pl.pids_limit = Some(4096);
    let p = process_settings(&pl, None, &NoFiles).unwrap();
    let spec = generate(&pl, &p, &ctx(CgroupVersion::V1)).unwrap();
    assert_eq!(spec["process"]["noNewPrivileges"], true);
    assert_eq!(spec["linux"]["cgroupsPath"], "/berth/tasks/t/web");
    assert_eq!(
        spec["linux"]["resources"]["memory"]["limit"],
        128 * 1024 * 1024
    );
    assert_eq!(
        spec["linux"]["resources"]["memory"]["reservation"],
        64 * 1024 * 1024
    );
    assert_eq!(spec["linux"]["resources"]["cpu"]["shares"], 256);
    assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 4096);
    assert_eq!(spec["linux"]["resources"]["devices"][0]["allow"], false);
    assert!(
        spec["linux"]["maskedPaths"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "/proc/kcore")
    );
    assert!(spec["linux"]["seccomp"].is_object());
    let ns = spec["linux"]["namespaces"].as_array().unwrap();
    assert!(
        ns.iter()
            .any(|n| n["type"] == "network" && n["path"] == "/run/berth/netns/t")
    );
    assert!(
        ns.iter()
            .any(|n| n["type"] == "pid" && n.get("path").is_none())
    );
}

#[test]
fn cgroup_v2_gets_a_proportional_cpu_weight() {
    let mut pl = plan();
    pl.command = Some(vec!["true".into()]);
    pl.cpu_units = Some(256);
    let p = process_settings(&pl, None, &NoFiles).unwrap();
    let spec = generate(&pl, &p, &ctx(CgroupVersion::V2)).unwrap();
    assert_eq!(spec["linux"]["resources"]["unified"]["cpu.weight"], "25");
    assert!(spec["linux"]["resources"].get("cpu").is_none());
}

#[test]
fn privileged_containers_get_every_capability_and_no_filters() {
    let mut pl = plan();
    pl.command = Some(vec!["true".into()]);
    pl.privileged = true;
    let p = process_settings(&pl, None, &NoFiles).unwrap();
    let spec = generate(&pl, &p, &ctx(CgroupVersion::V1)).unwrap();
    assert_eq!(spec["process"]["noNewPrivileges"], false);
    assert!(spec["linux"].get("seccomp").is_none());
    assert!(spec["linux"].get("maskedPaths").is_none());
    assert_eq!(
        spec["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .len(),
        capabilities_within(&pl, defaults::host_bounding_set())
            .unwrap()
            .len()
    );
}

#[test]
fn tmpfs_binds_shm_and_ulimits_become_mounts_and_rlimits() {
    let mut pl = plan();
    pl.command = Some(vec!["true".into()]);
    pl.shm_size_mib = Some(128);
    pl.tmpfs = vec![TmpfsMount {
        container_path: "/scratch".into(),
        size_mib: 16,
        options: vec!["noexec".into()],
    }];
    pl.mounts = vec![BindMount {
        source: "/data/v".into(),
        destination: "/var/data".into(),
        readonly: true,
    }];
    pl.ulimits = vec![Rlimit {
        name: "nofile".into(),
        soft: 1024,
        hard: 4096,
    }];
    let p = process_settings(&pl, None, &NoFiles).unwrap();
    let spec = generate(&pl, &p, &ctx(CgroupVersion::V1)).unwrap();
    let mounts = spec["mounts"].as_array().unwrap();
    let shm = mounts
        .iter()
        .find(|m| m["destination"] == "/dev/shm")
        .unwrap();
    assert!(
        shm["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "size=131072k")
    );
    let t = mounts
        .iter()
        .find(|m| m["destination"] == "/scratch")
        .unwrap();
    assert!(
        t["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "size=16384k")
    );
    let b = mounts
        .iter()
        .find(|m| m["destination"] == "/var/data")
        .unwrap();
    assert!(b["options"].as_array().unwrap().iter().any(|o| o == "ro"));
    assert_eq!(spec["process"]["rlimits"][0]["type"], "RLIMIT_NOFILE");
    pl.ulimits = vec![Rlimit {
        name: "bogus".into(),
        soft: 1,
        hard: 1,
    }];
    assert!(generate(&pl, &p, &ctx(CgroupVersion::V1)).is_err());
}

#[test]
fn dev_shm_follows_the_ipc_mode_as_docker_does() {
    let p = process_settings(&plan(), Some(&image()), &NoFiles).unwrap();
    let shm_of = |ipc: Namespace, dev_shm: bool| {
        let c = SpecContext {
            ipc,
            dev_shm,
            ..ctx(CgroupVersion::V2)
        };
        let spec = generate(&plan(), &p, &c).unwrap();
        spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .map(|m| (m["type"].as_str().unwrap().to_owned(), m["source"].clone()))
    };
    // Private (ipcMode unset or task): a tmpfs of its own.
    assert_eq!(
        shm_of(Namespace::New, true),
        Some(("tmpfs".into(), json!("shm")))
    );
    // ipcMode host: the host's /dev/shm.
    assert_eq!(
        shm_of(Namespace::Host, true),
        Some(("bind".into(), json!("/dev/shm")))
    );
    // ipcMode none: none at all.
    assert_eq!(shm_of(Namespace::New, false), None);
}
