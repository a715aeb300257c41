//! `berth`: a single-node, all-in-one, self-hosted Amazon ECS.

mod shim_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The shim must stay single-threaded (libcontainer clones containers from it), so
    // it is dispatched before anything that could start a thread.
    if args.get(1).map(String::as_str) == Some("shim") {
        return match args.get(2) {
            Some(dir) => shim_cmd::run(&PathBuf::from(dir)),
            None => {
                eprintln!("usage: berth shim <task-run-dir>");
                ExitCode::from(2)
            }
        };
    }
    eprintln!("berth: not yet");
    ExitCode::from(2)
}
