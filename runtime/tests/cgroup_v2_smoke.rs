//! Smoke test of the kernel berth's cgroup v2 support relies on: run for real inside the
//! cgroup-v2-only CI VM (`scripts/ci-vm-stage.sh`), where `BERTH_TEST_CGROUP_V2=1` is set;
//! elsewhere each test says it is skipped and passes.
//!
//! With the variable set, a host that is not cgroup-v2-only, or a cgroup that is not
//! delegated to the test, is a failure, not a skip.
//!
//! The test runs the way berth runs on v2: it starts alone in a cgroup delegated to it,
//! moves itself into a leaf (a v2 cgroup with processes cannot enable controllers for
//! its children), enables the controllers, creates children, and undoes all of it.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// Controllers the test enables below its own cgroup.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];
/// Software emulation is slow: generous, since these are limits, not performance.
const WAIT: Duration = Duration::from_secs(120);

/// True when the test should run; otherwise tells the user why it does not.
fn cgroup_v2_enabled(test: &str) -> bool {
    if std::env::var_os("BERTH_TEST_CGROUP_V2").is_some_and(|v| v == "1") {
        return true;
    }
    // Straight to fd 2: libtest captures print!/eprint! and shows them only on failure.
    let _ = writeln!(
        std::io::stderr(),
        "cgroup_v2_smoke::{test}: skipped (set BERTH_TEST_CGROUP_V2=1 on a cgroup-v2-only \
         host; scripts/ci-vm-stage.sh runs it in a VM)"
    );
    false
}

#[test]
fn host_is_cgroup_v2_only() {
    if !cgroup_v2_enabled("host_is_cgroup_v2_only") {
        return;
    }
    let (unified_at_root, v1_mounts) = cgroup_mounts();
    assert!(
        v1_mounts.is_empty(),
        "cgroup v1 hierarchies are mounted at {v1_mounts:?}"
    );
    assert!(unified_at_root, "no cgroup2 mount at {CGROUP_ROOT}");

    // Hierarchy id 0 for every controller: none is bound to a v1 hierarchy.
    for line in read(Path::new("/proc/cgroups")).lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            fields.get(1),
            Some(&"0"),
            "controller bound to a v1 hierarchy: {line}"
        );
    }
    let membership = read(Path::new("/proc/self/cgroup"));
    assert!(
        membership.lines().count() == 1 && membership.starts_with("0::/"),
        "/proc/self/cgroup is not a single v2 entry: {membership:?}"
    );

    let own = own_cgroup();
    let available = words(&read(&own.join("cgroup.controllers")));
    for c in CONTROLLERS.iter().chain(&["cpuset", "io"]) {
        assert!(
            available.contains(*c),
            "controller {c} is not available in {} (has: {available:?})",
            own.display()
        );
    }
}

#[test]
fn child_cgroups_accept_and_enforce_limits() {
    if !cgroup_v2_enabled("child_cgroups_accept_and_enforce_limits") {
        return;
    }
    // Never touch a v1 or hybrid host's cgroups: the writes below are meant for v2 only.
    let (unified_at_root, v1_mounts) = cgroup_mounts();
    assert!(
        unified_at_root && v1_mounts.is_empty(),
        "not a cgroup-v2-only host (cgroup2 at {CGROUP_ROOT}: {unified_at_root}, v1 mounts: \
         {v1_mounts:?})"
    );
    let own = own_cgroup();
    let children_before = child_cgroups(&own);
    let subtree_before = read(&own.join("cgroup.subtree_control"));
    {
        let mut delegated = Delegated::enter(&own);
        accepts_limits(&mut delegated);
        enforces_memory_max(&mut delegated);
        enforces_pids_max(&mut delegated);
    }
    // Everything created is gone and the own cgroup is as it was.
    assert_eq!(
        child_cgroups(&own),
        children_before,
        "cgroups left in {}",
        own.display()
    );
    assert_eq!(read(&own.join("cgroup.subtree_control")), subtree_before);
    assert_eq!(
        own_cgroup(),
        own,
        "the test process did not return to its cgroup"
    );
}

fn accepts_limits(delegated: &mut Delegated) {
    let cg = delegated.child("limits");
    let cases = [
        ("memory.max", "67108864", "67108864"),
        ("memory.low", "16M", "16777216"),
        ("cpu.weight", "50", "50"),
        ("cpu.max", "50000 100000", "50000 100000"),
        ("pids.max", "10", "10"),
    ];
    for (file, value, expected) in cases {
        write(&cg.join(file), value);
        assert_eq!(
            read(&cg.join(file)).trim(),
            expected,
            "{file} after writing {value}"
        );
    }
}

fn enforces_memory_max(delegated: &mut Delegated) {
    let cg = delegated.child("oom");
    write(&cg.join("memory.max"), "32M");
    if cg.join("memory.swap.max").exists() {
        write(&cg.join("memory.swap.max"), "0");
    }
    // tail buffers /dev/zero looking for a newline that never comes.
    let hog = spawn_in(&cg, "exec tail /dev/zero");
    let status = wait(hog, &cg);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "memory hog ended with {status}"
    );
    let events = keyed(&read(&cg.join("memory.events")));
    assert!(
        events.get("oom_kill").copied().unwrap_or(0) >= 1,
        "no oom_kill in memory.events: {events:?}"
    );
}

fn enforces_pids_max(delegated: &mut Delegated) {
    let cg = delegated.child("pids");
    write(&cg.join("pids.max"), "4");
    // The shell and three sleeps fit; the fourth fork and later are refused.
    let forker = spawn_in(&cg, "for i in 1 2 3 4 5 6 7 8; do sleep 600 & done; wait");
    let deadline = Instant::now() + WAIT;
    let refused = loop {
        let refused = keyed(&read(&cg.join("pids.events")))
            .get("max")
            .copied()
            .unwrap_or(0);
        if refused > 0 || Instant::now() > deadline {
            break refused;
        }
        thread::sleep(Duration::from_millis(50));
    };
    let current: u64 = read(&cg.join("pids.current"))
        .trim()
        .parse()
        .expect("pids.current");
    kill_all(&cg);
    let _ = wait(forker, &cg);
    assert!(
        refused >= 1,
        "pids.max did not refuse a fork (pids.events max = 0)"
    );
    assert!(current <= 4, "pids.current {current} exceeds pids.max 4");
}

/// The test's own cgroup, moved out of into a leaf so that its children get controllers.
/// Dropping it undoes everything: children removed, controllers disabled again, the
/// process back where it started, the leaf removed.
struct Delegated {
    own: PathBuf,
    leaf: PathBuf,
    enabled: Vec<&'static str>,
    children: Vec<PathBuf>,
}

impl Delegated {
    fn enter(own: &Path) -> Delegated {
        assert!(
            own != Path::new(CGROUP_ROOT),
            "the test must not run in the root cgroup"
        );
        let prefix = format!("berth-smoke-{}", std::process::id());
        let leaf = own.join(format!("{prefix}-self"));
        mkdir(&leaf);
        let mut delegated = Delegated {
            own: own.to_owned(),
            leaf,
            enabled: vec![],
            children: vec![],
        };
        write(
            &delegated.leaf.join("cgroup.procs"),
            &std::process::id().to_string(),
        );

        let already = words(&read(&own.join("cgroup.subtree_control")));
        for c in CONTROLLERS {
            if already.contains(c) {
                continue;
            }
            if let Err(e) = fs::write(own.join("cgroup.subtree_control"), format!("+{c}")) {
                let others = read(&own.join("cgroup.procs"));
                panic!(
                    "cannot enable {c} in {}: {e} (a cgroup with processes cannot: the test \
                     must be alone in a delegated cgroup; processes there now: {others:?})",
                    own.display()
                );
            }
            delegated.enabled.push(c);
        }
        delegated
    }

    /// Creates `<own>/berth-smoke-<pid>-<name>`, removed again on drop.
    fn child(&mut self, name: &str) -> PathBuf {
        let cg = self
            .own
            .join(format!("berth-smoke-{}-{name}", std::process::id()));
        mkdir(&cg);
        self.children.push(cg.clone());
        cg
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        // Best effort, in reverse order of creation; the caller asserts the outcome.
        for cg in self.children.iter().rev() {
            kill_all(cg);
            remove(cg);
        }
        for c in self.enabled.iter().rev() {
            let _ = fs::write(self.own.join("cgroup.subtree_control"), format!("-{c}"));
        }
        let _ = fs::write(
            self.own.join("cgroup.procs"),
            std::process::id().to_string(),
        );
        remove(&self.leaf);
    }
}

/// Starts `sh -c SCRIPT` after moving the shell into `cg`, so that SCRIPT and everything
/// it starts are inside `cg` from their first instruction.
fn spawn_in(cg: &Path, script: &str) -> Child {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "echo $$ > \"$0/cgroup.procs\" || exit 99; {script}"
        ))
        .arg(cg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn /bin/sh")
}

/// Waits for `child`; past the deadline kills everything in `cg` and fails.
fn wait(mut child: Child, cg: &Path) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return status;
        }
        if Instant::now() > deadline {
            kill_all(cg);
            let _ = child.wait();
            panic!("child in {} still running after {WAIT:?}", cg.display());
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Kills every process in `cg` (cgroup.kill, Linux 5.14+) and waits until it is empty.
fn kill_all(cg: &Path) {
    if !cg.exists() {
        return;
    }
    let _ = fs::write(cg.join("cgroup.kill"), "1");
    let deadline = Instant::now() + WAIT;
    while fs::read_to_string(cg.join("cgroup.events"))
        .is_ok_and(|events| events.lines().any(|l| l == "populated 1"))
        && Instant::now() < deadline
    {
        thread::sleep(Duration::from_millis(20));
    }
}

fn remove(cg: &Path) {
    // An emptied cgroup can stay busy for a moment while its last task exits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while cg.exists() && fs::remove_dir(cg).is_err() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}

/// Whether cgroup2 is mounted at /sys/fs/cgroup, and where cgroup v1 hierarchies are.
fn cgroup_mounts() -> (bool, Vec<String>) {
    let mut unified_at_root = false;
    let mut v1_mounts = vec![];
    for line in read(Path::new("/proc/self/mountinfo")).lines() {
        // "36 25 0:31 / /sys/fs/cgroup rw,... shared:9 - cgroup2 cgroup2 rw,nsdelegate"
        let (left, right) = line
            .split_once(" - ")
            .expect("mountinfo line without ' - '");
        let mount_point = left
            .split(' ')
            .nth(4)
            .expect("mountinfo line without mount point");
        match right.split(' ').next() {
            Some("cgroup2") if mount_point == CGROUP_ROOT => unified_at_root = true,
            Some("cgroup") => v1_mounts.push(mount_point.to_owned()),
            _ => {}
        }
    }
    (unified_at_root, v1_mounts)
}

/// The cgroup this process is in, from /proc/self/cgroup ("0::/berth-ci/...").
fn own_cgroup() -> PathBuf {
    let membership = read(Path::new("/proc/self/cgroup"));
    let relative = membership
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("no cgroup v2 entry in /proc/self/cgroup");
    Path::new(CGROUP_ROOT).join(relative.trim_start_matches('/'))
}

fn child_cgroups(cg: &Path) -> BTreeSet<String> {
    fs::read_dir(cg)
        .unwrap_or_else(|e| panic!("read {}: {e}", cg.display()))
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// "key value" lines, as in memory.events and pids.events.
fn keyed(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .filter_map(|(k, v)| Some((k.to_owned(), v.trim().parse().ok()?)))
        .collect()
}

fn words(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(path: &Path, value: &str) {
    fs::write(path, value).unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
}

fn mkdir(path: &Path) {
    fs::create_dir(path).unwrap_or_else(|e| panic!("create cgroup {}: {e}", path.display()));
}
