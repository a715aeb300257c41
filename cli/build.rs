//! Link options of the `berth` executable that depend on the toolchain.
//!
//! berth is a position-independent executable with ~45,000 relative relocations
//! (vtables, string tables), which the dynamic loader applies at every exec: every CLI
//! command and every task's shim. Packed as `DT_RELR` (binutils 2.38+, glibc 2.36+) they
//! take ~13 KiB instead of ~1.1 MiB, and the loader's start-up work halves. An older
//! glibc cannot load such an executable, so the option is used only when a probe linked
//! with it runs here and finds its relocated pointer intact.

use std::path::PathBuf;
use std::process::Command;

const PROBE: &str = r#"
static const char *greeting = "relr";
static const char **table[] = { &greeting };
int main(void) { return (*table[0])[0] == 'r' ? 0 : 1; }
"#;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    if packed_relocations_work() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

fn packed_relocations_work() -> bool {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    // The probe has to run where it is built: native Linux/glibc builds only.
    if env("TARGET") != env("HOST")
        || env("CARGO_CFG_TARGET_OS") != "linux"
        || env("CARGO_CFG_TARGET_ENV") != "gnu"
    {
        return false;
    }
    let out = PathBuf::from(env("OUT_DIR"));
    let source = out.join("relr-probe.c");
    let probe = out.join("relr-probe");
    if std::fs::write(&source, PROBE).is_err() {
        return false;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let linked = Command::new(cc)
        .args([
            "-fPIE",
            "-pie",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
            "-o",
        ])
        .arg(&probe)
        .arg(&source)
        .output()
        .is_ok_and(|o| o.status.success());
    linked && Command::new(&probe).status().is_ok_and(|s| s.success())
}
