//! Benchmark driver for `bench/netns.sh`: times berth's setup and teardown of one task's
//! network (namespace + veth + address + routes + NAT + one published port).
//!
//! It first moves itself into a new network and mount namespace (a fake host), so it never
//! touches the machine's own network.
//!
//! ```text
//! netns_bench <netns-dir> <cycles> <live> <detach|delete>
//! ```
//!
//! Prints one line per series, `ROW <name> <n> <median ms> <p90 ms> <first-20 median ms>
//! <last-20 median ms>`:
//! * `cycle`: `cycles` times, set up one task then tear it down (nothing else running);
//! * `live-setup` / `live-teardown`: set up `live` tasks that all stay up, then tear them all
//!   down, to see whether the cost grows with the number of live tasks.

use std::net::Ipv4Addr;
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::time::Instant;

use berth_netns::{
    EndpointRequest, NetworkConfig, NetworkManager, NetworkMode, PortMappingRequest, Protocol,
    TaskNetworkRequest, VethTeardown,
};

fn request(dir: &std::path::Path, i: u32, addr: Ipv4Addr) -> TaskNetworkRequest {
    // distinct leading digits, as random task ids have (they name the host interfaces)
    let task = format!("{i:010x}{:022x}", 0xbe57_u32);
    TaskNetworkRequest {
        endpoints: vec![EndpointRequest {
            name: "task".into(),
            netns_path: Some(dir.join(&task)),
            address: Some(addr),
            port_mappings: vec![PortMappingRequest {
                container_name: "app".into(),
                container_port: NonZeroU16::new(8080).unwrap(),
                host_port: None,
                protocol: Protocol::Tcp,
            }],
        }],
        task_id: task,
        mode: NetworkMode::Awsvpc,
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn row(name: &str, samples: &[f64]) {
    let med = |s: &[f64]| {
        let mut v = s.to_vec();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            f64::NAN
        } else {
            v[v.len() / 2]
        }
    };
    let p90 = {
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        v[(v.len() * 9 / 10).min(v.len() - 1)]
    };
    let k = samples.len().min(20);
    println!(
        "ROW {name} {} {:.3} {:.3} {:.3} {:.3}",
        samples.len(),
        med(samples),
        p90,
        med(&samples[..k]),
        med(&samples[samples.len() - k..])
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: netns_bench <netns-dir> <cycles> <live> <detach|delete>");
        std::process::exit(2);
    }
    // a fake host: still single-threaded here, so the whole process moves
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET | nix::sched::CloneFlags::CLONE_NEWNS)
        .expect("unshare (run as root)");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let lo = std::process::Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(lo.success(), "ip link set lo up");
    let dir = PathBuf::from(&args[1]);
    let cycles: u32 = args[2].parse().unwrap();
    let live: u32 = args[3].parse().unwrap();
    let teardown = match args[4].as_str() {
        "detach" => VethTeardown::Detach,
        "delete" => VethTeardown::Delete,
        other => panic!("unknown teardown mode {other}"),
    };
    let m = NetworkManager::new(NetworkConfig {
        veth_teardown: teardown,
        ..NetworkConfig::new(&dir)
    })
    .unwrap();
    m.reconcile(&[]).unwrap();
    let name = format!("berth-{}", args[4]);

    // warm up
    for i in 0..5 {
        let s = m
            .setup_task(&request(&dir, 1_000_000 + i, Ipv4Addr::new(10, 229, 1, 1)))
            .unwrap();
        m.teardown_task(&s.network).unwrap();
    }
    let mut cycle = Vec::new();
    for i in 0..cycles {
        // a new task each time, as in real life (the address may be reused)
        let req = request(&dir, i, Ipv4Addr::new(10, 229, 1, 2));
        let t = Instant::now();
        let s = m.setup_task(&req).unwrap();
        m.teardown_task(&s.network).unwrap();
        cycle.push(ms(t.elapsed()));
    }
    if cycles > 0 {
        row(&format!("{name}/cycle"), &cycle);
    }
    if teardown == VethTeardown::Detach && cycles > 0 {
        // The same cycle with 5 ms idle before each, untimed: `+idle` as it is, `+spare` with
        // a spare namespace asked for at the start of the idle time, as the daemon asks for
        // one once a task's shim has begun (the next setup binds it instead of making one).
        for (variant, spare) in [("idle", false), ("spare", true)] {
            let mut timed = Vec::new();
            for i in 0..cycles {
                if spare {
                    m.make_spare_namespace();
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
                let offset = if spare { 4_000_000 } else { 3_000_000 };
                let req = request(&dir, offset + i, Ipv4Addr::new(10, 229, 1, 3));
                let t = Instant::now();
                let s = m.setup_task(&req).unwrap();
                m.teardown_task(&s.network).unwrap();
                timed.push(ms(t.elapsed()));
            }
            row(&format!("{name}+{variant}/cycle"), &timed);
        }
    }

    let mut up = Vec::new();
    let mut nets = Vec::new();
    let mut used = std::collections::BTreeSet::new();
    let mut last = None;
    for i in 0..live {
        let addr = m.subnet().allocate(|ip| used.contains(&ip), last).unwrap();
        used.insert(addr);
        last = Some(addr);
        let mut req = request(&dir, 2_000_000 + i, addr);
        // distinct host ports for live tasks
        let port = NonZeroU16::new(10_000 + u16::try_from(i).unwrap()).unwrap();
        req.endpoints[0].port_mappings[0].container_port = port;
        let t = Instant::now();
        let s = m.setup_task(&req).unwrap();
        up.push(ms(t.elapsed()));
        nets.push(s);
    }
    let mut down = Vec::new();
    for s in &nets {
        let t = Instant::now();
        m.teardown_task(&s.network).unwrap();
        down.push(ms(t.elapsed()));
    }
    if live > 0 {
        row(&format!("{name}/live-setup"), &up);
        row(&format!("{name}/live-teardown"), &down);
    }
}
