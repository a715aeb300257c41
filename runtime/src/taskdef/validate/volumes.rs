//! Task volume rules.

use std::collections::HashMap;

use super::{NAME_RULE, ValidationError, ensure, is_ecs_name, rule};
use crate::taskdef::model::{EfsAuthorizationConfigIam, EfsTransitEncryption, Scope, Volume};

pub(super) fn check(volumes: &[Volume]) -> Result<(), ValidationError> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut at_launch: Option<usize> = None;
    for (i, v) in volumes.iter().enumerate() {
        let f = |field: &str| format!("volumes[{i}].{field}");
        let Some(name) = v.name.as_deref() else {
            return Err(rule(f("name"), "is required"));
        };
        ensure(is_ecs_name(name), || {
            rule(f("name"), format!("{name:?} is invalid: {NAME_RULE}"))
        })?;
        if let Some(first) = names.insert(name, i) {
            return Err(rule(
                f("name"),
                format!("{name:?} is already used by volumes[{first}]"),
            ));
        }
        let sources = v.sources();
        ensure(sources.len() <= 1, || {
            rule(
                format!("volumes[{i}]"),
                format!(
                    "must set only one of host, dockerVolumeConfiguration, efsVolumeConfiguration, \
                     s3filesVolumeConfiguration, fsxWindowsFileServerVolumeConfiguration and \
                     configuredAtLaunch (it sets {})",
                    sources.join(" and ")
                ),
            )
        })?;
        if let Some(path) = v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
            ensure(path.is_empty() || path.starts_with('/'), || {
                rule(
                    f("host.sourcePath"),
                    format!("{path:?} must be an absolute path"),
                )
            })?;
        }
        if let Some(d) = &v.docker_volume_configuration {
            ensure(
                !(d.autoprovision == Some(true) && d.scope() == Scope::Task),
                || {
                    rule(
                        f("dockerVolumeConfiguration.autoprovision"),
                        "can only be true when scope is shared",
                    )
                },
            )?;
        }
        if let Some(efs) = &v.efs_volume_configuration {
            let auth = efs.authorization_config.as_ref();
            let access_point = auth
                .and_then(|a| a.access_point_id.as_deref())
                .is_some_and(|s| !s.is_empty());
            let iam = auth.and_then(|a| a.iam) == Some(EfsAuthorizationConfigIam::Enabled);
            if access_point {
                ensure(
                    matches!(efs.root_directory.as_deref(), None | Some("" | "/")),
                    || {
                        rule(
                            f("efsVolumeConfiguration.rootDirectory"),
                            "must be omitted or \"/\" when authorizationConfig.accessPointId is set",
                        )
                    },
                )?;
            }
            if access_point || iam {
                ensure(
                    efs.transit_encryption == Some(EfsTransitEncryption::Enabled),
                    || {
                        rule(
                            f("efsVolumeConfiguration.transitEncryption"),
                            "must be ENABLED when an access point or IAM authorization is used",
                        )
                    },
                )?;
            }
        }
        if let Some(s3) = &v.s3files_volume_configuration
            && s3
                .access_point_arn
                .as_deref()
                .is_some_and(|s| !s.is_empty())
        {
            ensure(
                matches!(s3.root_directory.as_deref(), None | Some("" | "/")),
                || {
                    rule(
                        f("s3filesVolumeConfiguration.rootDirectory"),
                        "must be omitted or \"/\" when accessPointArn is set",
                    )
                },
            )?;
        }
        if v.configured_at_launch == Some(true)
            && let Some(first) = at_launch.replace(i)
        {
            return Err(rule(
                f("configuredAtLaunch"),
                format!(
                    "cannot be true: only one volume can be configured at launch (volumes[{first}] is)"
                ),
            ));
        }
    }
    Ok(())
}
