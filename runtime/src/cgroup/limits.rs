//! Converting ECS resource units into cgroup values.
//!
//! ECS `cpu` is in CPU units (1024 per vCPU) and maps to `cpu.shares` on v1: a
//! *relative* share, so two busy containers with 1024 and 256 units split a CPU 4:1.
//! cgroup v2 has `cpu.weight` (1–10000, default 100) instead. Copying shares into weight
//! would make 1024 units ten times the default weight of every other process. runc's
//! quadratic curve (what libcgroups applies to `linux.resources.cpu.shares`) keeps
//! 1024 ↔ 100 but bends ratios: 1024 vs 256 becomes 100 vs 35, a 2.9:1 split. berth
//! keeps the ECS contract instead: weight = shares × 100 / 1024, which maps 1024 units to
//! the default weight and preserves every ratio inside the range ECS containers use
//! (weights only clamp below 11 units and above 102400). berth writes the weight through
//! the OCI `unified` map so libcgroups does not convert it again.

/// Minimum and maximum `cpu.shares` the kernel accepts.
pub(crate) const MIN_SHARES: u64 = 2;
pub(crate) const MAX_SHARES: u64 = 262_144;

/// The CFS period berth uses for task CPU quotas (the ECS agent's default).
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

/// `cpu.shares` for a container's `cpu` units. The ECS agent passes null, 0 and 1 as
/// the kernel minimum, 2, and the kernel caps at 262144.
pub fn cpu_shares_for_units(units: Option<u32>) -> u64 {
    u64::from(units.unwrap_or(0)).clamp(MIN_SHARES, MAX_SHARES)
}

/// v2 `cpu.weight` for a v1 `cpu.shares` value: proportional, 1024 ↔ 100.
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    const MAX_WEIGHT: u64 = 10_000;
    ((shares * 100 + 512) / 1024).clamp(1, MAX_WEIGHT)
}

/// The CFS quota in microseconds per [`CPU_PERIOD_US`] for a task's `cpu` units:
/// 1024 units = one full CPU.
pub(crate) fn cpu_quota_us(units: u32) -> u64 {
    (u64::from(units) * CPU_PERIOD_US / 1024).max(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_ecs_agent_rules() {
        assert_eq!(cpu_shares_for_units(None), 2);
        assert_eq!(cpu_shares_for_units(Some(0)), 2);
        assert_eq!(cpu_shares_for_units(Some(1)), 2);
        assert_eq!(cpu_shares_for_units(Some(256)), 256);
        assert_eq!(cpu_shares_for_units(Some(1_000_000)), MAX_SHARES);
    }

    #[test]
    fn weight_conversion_keeps_the_default_and_ratios() {
        assert_eq!(cpu_weight_from_shares(1024), 100);
        assert_eq!(cpu_weight_from_shares(256), 25);
        assert_eq!(cpu_weight_from_shares(2048), 200);
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(MAX_SHARES), 10_000);
    }

    #[test]
    fn quota_is_proportional_to_units() {
        assert_eq!(cpu_quota_us(1024), 100_000);
        assert_eq!(cpu_quota_us(512), 50_000);
        assert_eq!(cpu_quota_us(2048), 200_000);
        assert_eq!(cpu_quota_us(1), 1000);
    }
}
