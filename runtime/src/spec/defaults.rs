//! Secure defaults for every container: capabilities, masked and read-only paths,
//! device rules and the seccomp profile.
//!
//! The capability set is Docker's default because ECS documents `capabilities.add` and
//! `drop` as relative to "the default configuration provided by Docker"; a task
//! definition that drops `NET_RAW` must mean the same on berth as on ECS.

use serde_json::{Value, json};

/// Docker's default capabilities (ECS's baseline for `add`/`drop`).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `privileged` containers and for validating names, in the
/// kernel's order: a capability's index here is its number (`CAP_CHOWN` is 0), the
/// bit it occupies in `/proc/<pid>/status`'s `CapBnd`.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The kernel's number for a capability in `CAP_` form.
pub fn capability_number(name: &str) -> Option<u32> {
    ALL_CAPABILITIES
        .iter()
        .position(|c| *c == name)
        .and_then(|i| u32::try_from(i).ok())
}

/// Parses the `CapBnd:` line of a `/proc/<pid>/status` text into a bit mask.
pub fn parse_bounding_set(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// The capability bounding set berth runs with. A container can hold no capability
/// outside it (capset fails with EPERM), so privileged containers and `ALL` get this
/// set rather than the kernel's full list. When it cannot be read, every capability.
pub fn host_bounding_set() -> u64 {
    static SET: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SET.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .as_deref()
            .and_then(parse_bounding_set)
            .unwrap_or(u64::MAX)
    })
}

/// Normalises a capability name as ECS users write it (`NET_ADMIN`, `net_admin`,
/// `CAP_NET_ADMIN`) to the kernel's `CAP_` form; `ALL` stays `ALL`.
pub fn normalize_capability(name: &str) -> Option<String> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == "ALL" {
        return Some(upper);
    }
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    ALL_CAPABILITIES.contains(&full.as_str()).then_some(full)
}

/// Paths hidden from containers (containerd's defaults).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths mounted read-only inside containers (containerd's defaults).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Device cgroup rules: deny everything, then allow what every container needs (the
/// same list runc and Docker use). `mknod` of any device is allowed, but opening one
/// is not unless it is listed here or added by `linuxParameters.devices`.
pub fn default_device_rules() -> Vec<Value> {
    let allow = |kind: &str, major: Option<i64>, minor: Option<i64>, access: &str| json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": access});
    vec![
        json!({"allow": false, "access": "rwm"}),
        allow("c", None, None, "m"),
        allow("b", None, None, "m"),
        allow("c", Some(1), Some(3), "rwm"),    // /dev/null
        allow("c", Some(1), Some(5), "rwm"),    // /dev/zero
        allow("c", Some(1), Some(7), "rwm"),    // /dev/full
        allow("c", Some(1), Some(8), "rwm"),    // /dev/random
        allow("c", Some(1), Some(9), "rwm"),    // /dev/urandom
        allow("c", Some(5), Some(0), "rwm"),    // /dev/tty
        allow("c", Some(5), Some(1), "rwm"),    // /dev/console
        allow("c", Some(5), Some(2), "rwm"),    // /dev/ptmx
        allow("c", Some(136), None, "rwm"),     // /dev/pts/*
        allow("c", Some(10), Some(200), "rwm"), // /dev/net/tun
    ]
}

/// Syscalls berth's profile denies, each with the capability that lets Docker's
/// profile allow it again. The profile allows by default and denies this list — the
/// calls Docker's default profile leaves out because they act on the host (kernel
/// modules, clocks, reboot, keyrings, swap, accounting), open host files by handle
/// (CVE-2014-3519 "shocker"), or widen the kernel attack surface (bpf, userfaultfd,
/// perf, io_uring) — plus namespace creation below. `None` means no capability
/// re-allows it.
pub const DENIED_SYSCALLS: &[(&str, Option<&str>)] = &[
    ("acct", Some("CAP_SYS_PACCT")),
    ("add_key", None),
    ("bpf", Some("CAP_BPF")),
    ("clock_adjtime", Some("CAP_SYS_TIME")),
    ("clock_settime", Some("CAP_SYS_TIME")),
    ("create_module", Some("CAP_SYS_MODULE")),
    ("delete_module", Some("CAP_SYS_MODULE")),
    ("finit_module", Some("CAP_SYS_MODULE")),
    ("fsconfig", Some("CAP_SYS_ADMIN")),
    ("fsmount", Some("CAP_SYS_ADMIN")),
    ("fsopen", Some("CAP_SYS_ADMIN")),
    ("fspick", Some("CAP_SYS_ADMIN")),
    ("get_kernel_syms", Some("CAP_SYS_MODULE")),
    ("get_mempolicy", Some("CAP_SYS_NICE")),
    ("init_module", Some("CAP_SYS_MODULE")),
    ("io_uring_enter", None),
    ("io_uring_register", None),
    ("io_uring_setup", None),
    ("ioperm", Some("CAP_SYS_RAWIO")),
    ("iopl", Some("CAP_SYS_RAWIO")),
    ("kcmp", Some("CAP_SYS_PTRACE")),
    ("kexec_file_load", Some("CAP_SYS_BOOT")),
    ("kexec_load", Some("CAP_SYS_BOOT")),
    ("keyctl", None),
    ("lookup_dcookie", Some("CAP_SYS_ADMIN")),
    ("mbind", Some("CAP_SYS_NICE")),
    ("mount", Some("CAP_SYS_ADMIN")),
    ("mount_setattr", Some("CAP_SYS_ADMIN")),
    ("move_mount", Some("CAP_SYS_ADMIN")),
    ("move_pages", Some("CAP_SYS_NICE")),
    ("name_to_handle_at", Some("CAP_SYS_ADMIN")),
    ("nfsservctl", None),
    ("open_by_handle_at", Some("CAP_DAC_READ_SEARCH")),
    ("open_tree", Some("CAP_SYS_ADMIN")),
    ("perf_event_open", Some("CAP_PERFMON")),
    ("pivot_root", Some("CAP_SYS_ADMIN")),
    ("quotactl", Some("CAP_SYS_ADMIN")),
    ("reboot", Some("CAP_SYS_BOOT")),
    ("request_key", None),
    ("set_mempolicy", Some("CAP_SYS_NICE")),
    ("setns", Some("CAP_SYS_ADMIN")),
    ("settimeofday", Some("CAP_SYS_TIME")),
    ("stime", Some("CAP_SYS_TIME")),
    ("swapoff", Some("CAP_SYS_ADMIN")),
    ("swapon", Some("CAP_SYS_ADMIN")),
    ("_sysctl", None),
    ("syslog", Some("CAP_SYSLOG")),
    ("umount", Some("CAP_SYS_ADMIN")),
    ("umount2", Some("CAP_SYS_ADMIN")),
    ("unshare", Some("CAP_SYS_ADMIN")),
    ("uselib", None),
    ("userfaultfd", None),
    ("ustat", None),
    ("vm86", None),
    ("vm86old", None),
];

/// Namespace flags of `clone(2)`: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The default seccomp profile for a container with the capabilities `caps` (kernel
/// names). Without `CAP_SYS_ADMIN`, `clone` with any namespace flag is refused and
/// `clone3` answers ENOSYS — its flags sit in a struct seccomp cannot inspect, and
/// ENOSYS makes libc fall back to `clone` — as Docker's profile does.
pub fn default_seccomp(caps: &[String]) -> Value {
    const EPERM: u32 = 1;
    const ENOSYS: u32 = 38;
    let has = |cap: &str| caps.iter().any(|c| c == cap);
    let denied: Vec<&str> = DENIED_SYSCALLS
        .iter()
        .filter(|(_, cap)| !cap.is_some_and(has))
        .map(|(name, _)| *name)
        .collect();
    let mut syscalls =
        vec![json!({"names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM})];
    if !has("CAP_SYS_ADMIN") {
        syscalls.push(json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS}));
        // One rule per flag: seccomp compares with equality only, and rules for the
        // same syscall are OR-ed, so "any namespace flag set" is seven masked tests.
        for flag in CLONE_NAMESPACE_FLAGS {
            syscalls.push(json!({
                "names": ["clone"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": EPERM,
                "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
            }));
        }
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": HOST_SECCOMP_ARCHITECTURES,
        "syscalls": syscalls,
    })
}

/// The ABIs a process on this host can make system calls with: the native one and the
/// compat ones the kernel also accepts (Docker's profile lists the same per host). Every
/// listed architecture is compiled into the filter (libseccomp builds one branch of rules
/// per architecture, in each container's init, on its path to exec), and another
/// architecture's calls can never reach this kernel; a call with an unlisted ABI is
/// refused by the filter's bad-architecture action.
const HOST_SECCOMP_ARCHITECTURES: &[&str] = if cfg!(target_arch = "x86_64") {
    &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
} else if cfg!(target_arch = "aarch64") {
    &["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
} else if cfg!(target_arch = "x86") {
    &["SCMP_ARCH_X86"]
} else if cfg!(target_arch = "arm") {
    &["SCMP_ARCH_ARM"]
} else if cfg!(target_arch = "riscv64") {
    &["SCMP_ARCH_RISCV64"]
} else if cfg!(target_arch = "s390x") {
    &["SCMP_ARCH_S390X", "SCMP_ARCH_S390"]
} else if cfg!(target_arch = "powerpc64") {
    &["SCMP_ARCH_PPC64LE", "SCMP_ARCH_PPC64"]
} else {
    &[]
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_normalise_as_ecs_users_write_them() {
        assert_eq!(
            normalize_capability("NET_ADMIN").as_deref(),
            Some("CAP_NET_ADMIN")
        );
        assert_eq!(
            normalize_capability("cap_sys_ptrace").as_deref(),
            Some("CAP_SYS_PTRACE")
        );
        assert_eq!(normalize_capability("ALL").as_deref(), Some("ALL"));
        assert_eq!(normalize_capability("FLY"), None);
        for c in DEFAULT_CAPABILITIES {
            assert!(ALL_CAPABILITIES.contains(c), "{c}");
        }
    }

    #[test]
    fn capability_numbers_are_the_kernels() {
        assert_eq!(capability_number("CAP_CHOWN"), Some(0));
        assert_eq!(capability_number("CAP_NET_ADMIN"), Some(12));
        assert_eq!(capability_number("CAP_SYS_RESOURCE"), Some(24));
        assert_eq!(capability_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(capability_number("CAP_FLY"), None);
    }

    #[test]
    fn bounding_set_parses_from_proc_status() {
        let status = "Name:\tberth\nCapPrm:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n";
        let set = parse_bounding_set(status).unwrap();
        assert_eq!(set & (1 << 24), 0);
        assert_ne!(set & (1 << 21), 0);
        assert_eq!(parse_bounding_set("Name:\tx\n"), None);
    }

    #[test]
    fn seccomp_profile_parses_as_an_oci_profile() {
        let v = default_seccomp(&[]);
        let parsed: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(v).unwrap();
        assert_eq!(parsed.syscalls().as_ref().unwrap().len(), 9);
        let admin = default_seccomp(&["CAP_SYS_ADMIN".to_string()]);
        let names = admin["syscalls"][0]["names"].as_array().unwrap();
        assert!(!names.iter().any(|n| n == "mount"));
        assert!(names.iter().any(|n| n == "kexec_load"));
        assert_eq!(admin["syscalls"].as_array().unwrap().len(), 1);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn seccomp_profile_lists_only_the_abis_this_host_runs() {
        let v = default_seccomp(&[]);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
    }
}
