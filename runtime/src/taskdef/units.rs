//! Task-level `cpu` and `memory` strings, as ECS accepts them.
//!
//! ECS's model documents: `cpu` "as an integer using CPU units (for example, 1024) or
//! as a string using vCPUs (for example, 1 vCPU or 1 vcpu)"; `memory` "as an integer
//! using MiB (for example, 1024) or as a string using GB (for example, 1GB or 1 GB)";
//! both "are converted to an integer … when the task definition is registered". The
//! task-size table also writes fractions ("256 (.25 vCPU)", "512 (0.5 GB)"). So berth
//! accepts exactly: a whole number; a decimal number followed by `vCPU`/`GB` in any
//! letter case, with or without a space. Other units ("512 MiB", "2 GiB") are
//! rejected, because real ECS would reject the same file.

/// Why a task `cpu`/`memory` string did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnitError {
    /// Not a number with an accepted unit.
    Syntax,
    /// A fraction that is not a whole number of units (e.g. "0.3 vCPU").
    Fraction,
    /// Too large to represent.
    Overflow,
}

/// CPU units (1024 per vCPU) from a task `cpu` string.
pub(crate) fn parse_cpu_units(s: &str) -> Result<u32, UnitError> {
    parse_with_unit(s, &["vcpu"], 1024)
}

/// MiB from a task `memory` string.
pub(crate) fn parse_memory_mib(s: &str) -> Result<u32, UnitError> {
    parse_with_unit(s, &["gb"], 1024)
}

/// `<whole>` or `<decimal>[ ]<unit>` where the unit multiplies by `scale`.
fn parse_with_unit(s: &str, units: &[&str], scale: u64) -> Result<u32, UnitError> {
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let (number, scale) = match units.iter().find(|u| lower.ends_with(*u)) {
        Some(u) => (lower[..lower.len() - u.len()].trim_end(), scale),
        None => (lower.as_str(), 1),
    };
    // Only ASCII digits with at most one dot; no sign, exponent or separators.
    if number.is_empty()
        || number == "."
        || !number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        || number.bytes().filter(|&b| b == b'.').count() > 1
    {
        return Err(UnitError::Syntax);
    }
    if scale == 1 && number.contains('.') {
        return Err(UnitError::Fraction);
    }
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    // Exact decimal arithmetic: value = (whole + frac / 10^len) * scale.
    if frac.len() > 9 {
        return Err(UnitError::Fraction);
    }
    let whole: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| UnitError::Overflow)?
    };
    let denom = 10u64.pow(frac.len() as u32);
    let frac_n: u64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| UnitError::Syntax)?
    };
    let scaled_frac = frac_n.checked_mul(scale).ok_or(UnitError::Overflow)?;
    if scaled_frac % denom != 0 {
        return Err(UnitError::Fraction);
    }
    let total = whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(scaled_frac / denom))
        .ok_or(UnitError::Overflow)?;
    u32::try_from(total).map_err(|_| UnitError::Overflow)
}

/// Whether `(cpu units, memory MiB)` is one of Fargate's task sizes (ECS developer
/// guide "Task size"; the model's `memory` documentation carries the same table).
pub(crate) fn is_fargate_size(cpu: u32, memory: u32) -> bool {
    const GB: u32 = 1024;
    let steps = |lo: u32, hi: u32, step: u32| {
        memory >= lo && memory <= hi && (memory - lo).is_multiple_of(step)
    };
    match cpu {
        256 => matches!(memory, 512 | 1024 | 2048),
        512 => steps(GB, 4 * GB, GB),
        1024 => steps(2 * GB, 8 * GB, GB),
        2048 => steps(4 * GB, 16 * GB, GB),
        4096 => steps(8 * GB, 30 * GB, GB),
        8192 => steps(16 * GB, 60 * GB, 4 * GB),
        16384 => steps(32 * GB, 120 * GB, 8 * GB),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_forms() {
        let table: &[(&str, Result<u32, UnitError>)] = &[
            ("256", Ok(256)),
            (" 1024 ", Ok(1024)),
            ("1 vCPU", Ok(1024)),
            ("1 vcpu", Ok(1024)),
            ("2vCPU", Ok(2048)),
            ("0.25 vCPU", Ok(256)),
            (".5 vcpu", Ok(512)),
            ("0.125 VCPU", Ok(128)),
            ("192 vCPU", Ok(196608)),
            ("0.3 vCPU", Err(UnitError::Fraction)),
            ("1.5", Err(UnitError::Fraction)),
            ("1 cpu", Err(UnitError::Syntax)),
            ("-1", Err(UnitError::Syntax)),
            ("", Err(UnitError::Syntax)),
            ("vCPU", Err(UnitError::Syntax)),
            ("1e3", Err(UnitError::Syntax)),
            ("1.2.3 vCPU", Err(UnitError::Syntax)),
            ("99999999999", Err(UnitError::Overflow)),
        ];
        for (input, want) in table {
            assert_eq!(&parse_cpu_units(input), want, "cpu {input:?}");
        }
    }

    #[test]
    fn memory_forms() {
        let table: &[(&str, Result<u32, UnitError>)] = &[
            ("512", Ok(512)),
            ("1 GB", Ok(1024)),
            ("1GB", Ok(1024)),
            ("2 gb", Ok(2048)),
            ("0.5 GB", Ok(512)),
            ("0.5GB", Ok(512)),
            ("512 MiB", Err(UnitError::Syntax)),
            ("2 GiB", Err(UnitError::Syntax)),
            ("1 TB", Err(UnitError::Syntax)),
            ("0.001 GB", Err(UnitError::Fraction)),
        ];
        for (input, want) in table {
            assert_eq!(&parse_memory_mib(input), want, "memory {input:?}");
        }
    }

    #[test]
    fn fargate_sizes() {
        assert!(is_fargate_size(256, 512));
        assert!(!is_fargate_size(256, 4096));
        assert!(is_fargate_size(4096, 30 * 1024));
        assert!(is_fargate_size(8192, 20 * 1024));
        assert!(!is_fargate_size(8192, 17 * 1024));
        assert!(!is_fargate_size(128, 512));
    }
}
