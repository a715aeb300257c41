//! A container's health check for its shim: the definition's `healthCheck` (ECS's defaults:
//! 30 s interval, 5 s timeout, 3 retries), or, when the container asks for it with a
//! label, its image's HEALTHCHECK (Docker's defaults).

use berth_registry::manifest::Healthcheck;

use crate::shim::ShimHealthCheck;
use crate::taskdef::ContainerDefinition;

/// The definition's `healthCheck`: `CMD` runs its arguments, `CMD-SHELL` (or a bare
/// command) runs through `/bin/sh -c`.
pub(super) fn health_check(h: &crate::taskdef::HealthCheck) -> Option<ShimHealthCheck> {
    let argv = match h.command.split_first() {
        Some((first, rest)) if first == "CMD" => rest.to_vec(),
        Some((first, rest)) if first == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        // A bare command is run through the shell, as the ECS agent does.
        Some(_) => vec!["/bin/sh".into(), "-c".into(), h.command.join(" ")],
        None => return None,
    };
    if argv.is_empty() {
        return None;
    }
    Some(ShimHealthCheck {
        argv,
        interval_secs: h.interval.unwrap_or(30).max(1) as u64,
        timeout_secs: h.timeout.unwrap_or(5).max(1) as u64,
        retries: h.retries.unwrap_or(3).max(1) as u32,
        start_period_secs: h.start_period.unwrap_or(0).max(0) as u64,
    })
}

/// The `dockerLabels` key with which a container asks for its image's HEALTHCHECK (value
/// `image`): ECS ignores image health checks, so berth does too unless asked, and only
/// when the definition has no `healthCheck` of its own. Harmless on real ECS.
pub(crate) const IMAGE_HEALTHCHECK_LABEL: &str = "berth.healthcheck";

pub(super) fn wants_image_healthcheck(c: &ContainerDefinition) -> bool {
    c.docker_labels
        .get(IMAGE_HEALTHCHECK_LABEL)
        .is_some_and(|v| v.eq_ignore_ascii_case("image"))
}

/// An image's HEALTHCHECK with Docker's defaults (interval and timeout 30 s, 3
/// retries, no start period); `NONE` or an empty test disables it.
pub(super) fn image_health_check(h: &Healthcheck) -> Option<ShimHealthCheck> {
    let argv = match h.test.split_first() {
        Some((first, rest)) if first == "CMD" => rest.to_vec(),
        Some((first, rest)) if first == "CMD-SHELL" => {
            vec!["/bin/sh".into(), "-c".into(), rest.join(" ")]
        }
        _ => return None,
    };
    if argv.is_empty() {
        return None;
    }
    let secs = |ns: Option<u64>, default: u64| match ns {
        Some(ns) if ns > 0 => ns.div_ceil(1_000_000_000).max(1),
        _ => default,
    };
    Some(ShimHealthCheck {
        argv,
        interval_secs: secs(h.interval, 30),
        timeout_secs: secs(h.timeout, 30),
        retries: h
            .retries
            .filter(|r| *r > 0)
            .unwrap_or(3)
            .min(u64::from(u32::MAX)) as u32,
        start_period_secs: h.start_period.map_or(0, |ns| ns.div_ceil(1_000_000_000)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_map_both_command_forms_with_ecs_defaults() {
        let hc = |cmd: &[&str]| crate::taskdef::HealthCheck {
            command: cmd.iter().map(|s| s.to_string()).collect(),
            interval: None,
            timeout: None,
            retries: None,
            start_period: None,
        };
        let h = health_check(&hc(&["CMD", "test", "-f", "/x"])).unwrap();
        assert_eq!(h.argv, ["test", "-f", "/x"]);
        assert_eq!(
            (
                h.interval_secs,
                h.timeout_secs,
                h.retries,
                h.start_period_secs
            ),
            (30, 5, 3, 0)
        );
        let h = health_check(&hc(&["CMD-SHELL", "curl -f localhost || exit 1"])).unwrap();
        assert_eq!(h.argv, ["/bin/sh", "-c", "curl -f localhost || exit 1"]);
    }

    #[test]
    fn image_health_checks_use_docker_defaults_and_none_disables() {
        let img = |test: &[&str], interval: Option<u64>| Healthcheck {
            test: test.iter().map(|s| s.to_string()).collect(),
            interval,
            timeout: None,
            start_period: Some(1_500_000_000),
            retries: None,
        };
        let h = image_health_check(&img(&["CMD-SHELL", "true"], Some(5_000_000_000))).unwrap();
        assert_eq!(h.argv, ["/bin/sh", "-c", "true"]);
        assert_eq!(
            (
                h.interval_secs,
                h.timeout_secs,
                h.retries,
                h.start_period_secs
            ),
            (5, 30, 3, 2)
        );
        assert_eq!(
            image_health_check(&img(&["CMD", "x"], None))
                .unwrap()
                .interval_secs,
            30
        );
        assert!(image_health_check(&img(&["NONE"], None)).is_none());
        assert!(image_health_check(&img(&[], None)).is_none());
        assert!(image_health_check(&img(&["CMD"], None)).is_none());
    }
}
