//! A container's seccomp profile compiled to a BPF program ahead of its start.
//!
//! Given `linux.seccomp`, libcontainer builds the filter with libseccomp inside the
//! container's init process, on every start: rule building, program generation and the
//! kernel's checks of the program cost about a millisecond on the path to exec. berth's
//! profiles depend only on a container's capabilities, so the daemon compiles each
//! distinct profile once (with libseccomp, into a binary-search program that the kernel
//! also checks faster), and the container's process loads the program itself right
//! before exec — after libcontainer has set `no_new_privs` and dropped capabilities,
//! where libcontainer would have loaded it (`shim::init`).
//!
//! Only what can be loaded that way is compiled: a profile with filter flags or a
//! notify action, or a process without `no_new_privs`, stays in the spec for
//! libcontainer.

use std::collections::HashMap;
use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, OnceLock};

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use serde_json::Value;

/// Why a profile was left to libcontainer.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp profile field {0} is not compiled ahead by berth")]
    Unsupported(String),
    #[error("seccomp profile: {0}")]
    Invalid(String),
    #[error("compiling the seccomp profile: {0}")]
    Compile(#[source] libseccomp::error::SeccompError),
    #[error("exporting the seccomp program: {0}")]
    Export(#[source] std::io::Error),
}

/// Compiled programs by profile (its JSON text). Profiles differ only by capability
/// set, so this stays small; it is bounded all the same.
static COMPILED: OnceLock<Mutex<HashMap<String, Arc<[u8]>>>> = OnceLock::new();
const MAX_CACHED: usize = 64;

/// The program for `profile` (an OCI `LinuxSeccomp` object): raw `struct sock_filter`
/// entries in host byte order, as `seccomp(SECCOMP_SET_MODE_FILTER)` takes them.
pub fn compiled(profile: &Value) -> Result<Arc<[u8]>, SeccompError> {
    let key = profile.to_string();
    let cache = COMPILED.get_or_init(Default::default);
    if let Some(p) = cache.lock().expect("not poisoned").get(&key) {
        return Ok(p.clone());
    }
    let program: Arc<[u8]> = compile(profile)?.into();
    let mut map = cache.lock().expect("not poisoned");
    if map.len() >= MAX_CACHED {
        map.clear();
    }
    map.insert(key, program.clone());
    Ok(program)
}

fn compile(profile: &Value) -> Result<Vec<u8>, SeccompError> {
    let obj = profile
        .as_object()
        .ok_or_else(|| SeccompError::Invalid("not an object".into()))?;
    for field in obj.keys() {
        if !matches!(
            field.as_str(),
            "defaultAction" | "defaultErrnoRet" | "architectures" | "syscalls"
        ) {
            return Err(SeccompError::Unsupported(field.clone()));
        }
    }
    let default = action(
        obj.get("defaultAction"),
        obj.get("defaultErrnoRet"),
        "defaultAction",
    )?;
    let mut ctx = ScmpFilterContext::new(default).map_err(SeccompError::Compile)?;
    // A binary search over syscall numbers instead of a linear scan: fewer instructions
    // per call, and a shorter emulation when the kernel builds its per-syscall cache.
    ctx.set_ctl_optimize(2).map_err(SeccompError::Compile)?;
    for arch in strings(obj.get("architectures"), "architectures")? {
        let arch = arch
            .parse::<ScmpArch>()
            .map_err(|_| SeccompError::Invalid(format!("architecture {arch}")))?;
        ctx.add_arch(arch).map_err(SeccompError::Compile)?;
    }
    let rules = match obj.get("syscalls") {
        None => &Vec::new(),
        Some(Value::Array(v)) => v,
        Some(_) => return Err(SeccompError::Invalid("syscalls is not a list".into())),
    };
    for (i, rule) in rules.iter().enumerate() {
        add_rule(&mut ctx, rule, default, i)?;
    }
    export(&ctx)
}

fn add_rule(
    ctx: &mut ScmpFilterContext,
    rule: &Value,
    default: ScmpAction,
    i: usize,
) -> Result<(), SeccompError> {
    let field = |name: &str| format!("syscalls[{i}].{name}");
    let obj = rule
        .as_object()
        .ok_or_else(|| SeccompError::Invalid(format!("syscalls[{i}] is not an object")))?;
    for key in obj.keys() {
        if !matches!(key.as_str(), "names" | "action" | "errnoRet" | "args") {
            return Err(SeccompError::Unsupported(field(key)));
        }
    }
    let act = action(obj.get("action"), obj.get("errnoRet"), &field("action"))?;
    if act == default {
        // libseccomp refuses a rule that repeats the default action; it changes nothing.
        return Ok(());
    }
    let conditions = match obj.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(args)) => args
            .iter()
            .enumerate()
            .map(|(j, a)| condition(a, &format!("syscalls[{i}].args[{j}]")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(SeccompError::Invalid(field("args"))),
    };
    let mut indexes: Vec<u32> = conditions.iter().map(|c| c.0).collect();
    indexes.sort_unstable();
    indexes.dedup();
    let repeated_index = indexes.len() < conditions.len();
    for name in strings(obj.get("names"), &field("names"))? {
        // A name this libseccomp does not know is a syscall this kernel cannot have.
        let Ok(nr) = ScmpSyscall::from_name(name) else {
            continue;
        };
        let compares: Vec<ScmpArgCompare> = conditions.iter().map(|c| c.1).collect();
        if repeated_index {
            // libseccomp compares an argument once per rule: conditions on the same
            // argument become rules of their own (OR-ed), as runc does.
            for c in &compares {
                ctx.add_rule_conditional(act, nr, std::slice::from_ref(c))
                    .map_err(SeccompError::Compile)?;
            }
        } else {
            ctx.add_rule_conditional(act, nr, &compares)
                .map_err(SeccompError::Compile)?;
        }
    }
    Ok(())
}

fn action(
    action: Option<&Value>,
    errno: Option<&Value>,
    field: &str,
) -> Result<ScmpAction, SeccompError> {
    let name = action
        .and_then(Value::as_str)
        .ok_or_else(|| SeccompError::Invalid(format!("{field} is missing")))?;
    if matches!(name, "SCMP_ACT_NOTIFY" | "SCMP_ACT_TRACE") {
        return Err(SeccompError::Unsupported(format!("{field} {name}")));
    }
    let errno = errno
        .and_then(Value::as_u64)
        .map(|e| i32::try_from(e).map_err(|_| SeccompError::Invalid(format!("errnoRet {e}"))))
        .transpose()?
        .unwrap_or(libc::EPERM);
    ScmpAction::from_str(name, Some(errno))
        .map_err(|_| SeccompError::Invalid(format!("{field} {name}")))
}

/// One argument condition: (argument index, comparison).
fn condition(arg: &Value, field: &str) -> Result<(u32, ScmpArgCompare), SeccompError> {
    let invalid = || SeccompError::Invalid(field.to_owned());
    let index = arg
        .get("index")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let index = u32::try_from(index).map_err(|_| invalid())?;
    let value = arg
        .get("value")
        .and_then(Value::as_u64)
        .ok_or_else(invalid)?;
    let value_two = arg.get("valueTwo").and_then(Value::as_u64).unwrap_or(0);
    let op = match arg.get("op").and_then(Value::as_str).ok_or_else(invalid)? {
        "SCMP_CMP_NE" => ScmpCompareOp::NotEqual,
        "SCMP_CMP_LT" => ScmpCompareOp::Less,
        "SCMP_CMP_LE" => ScmpCompareOp::LessOrEqual,
        "SCMP_CMP_EQ" => ScmpCompareOp::Equal,
        "SCMP_CMP_GE" => ScmpCompareOp::GreaterEqual,
        "SCMP_CMP_GT" => ScmpCompareOp::Greater,
        // The OCI runtime's reading: (argument & value) == valueTwo.
        "SCMP_CMP_MASKED_EQ" => {
            return Ok((
                index,
                ScmpArgCompare::new(index, ScmpCompareOp::MaskedEqual(value), value_two),
            ));
        }
        _ => return Err(invalid()),
    };
    Ok((index, ScmpArgCompare::new(index, op, value)))
}

fn strings<'a>(v: Option<&'a Value>, field: &str) -> Result<Vec<&'a str>, SeccompError> {
    match v {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str()
                    .ok_or_else(|| SeccompError::Invalid(field.to_owned()))
            })
            .collect(),
        Some(_) => Err(SeccompError::Invalid(field.to_owned())),
    }
}

/// The program libseccomp generates, through a memory file (libseccomp 2.5 exports to
/// a descriptor only).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>, SeccompError> {
    use nix::sys::memfd::{MemFdCreateFlag, memfd_create};
    let fd = memfd_create(c"berth-seccomp", MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| SeccompError::Export(e.into()))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(file.as_fd())
        .map_err(SeccompError::Compile)?;
    let mut program = Vec::new();
    file.rewind().map_err(SeccompError::Export)?;
    file.read_to_end(&mut program)
        .map_err(SeccompError::Export)?;
    if program.is_empty() || !program.len().is_multiple_of(8) {
        return Err(SeccompError::Export(std::io::Error::other(format!(
            "a program of {} bytes",
            program.len()
        ))));
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berths_default_profile_compiles_to_whole_instructions_and_is_cached() {
        let profile = crate::spec::defaults::default_seccomp(&["CAP_CHOWN".to_owned()]);
        let a = compiled(&profile).unwrap();
        assert!(!a.is_empty() && a.len().is_multiple_of(8));
        let b = compiled(&profile).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn notify_actions_and_filter_flags_are_left_to_libcontainer() {
        let notify = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]});
        assert!(matches!(
            compile(&notify),
            Err(SeccompError::Unsupported(_))
        ));
        let flags = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]});
        assert!(matches!(compile(&flags), Err(SeccompError::Unsupported(f)) if f == "flags"));
    }
}
