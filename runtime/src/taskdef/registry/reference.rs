//! Task definition ARNs and the identifiers the API accepts for them.

use std::fmt;

/// Where ARNs point: berth's configured region and account (the daemon's defaults are
/// `us-east-1` and `000000000000`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ArnScope {
    region: String,
    account: String,
}

impl ArnScope {
    /// A scope for `region` and `account`.
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> ArnScope {
        ArnScope {
            region: region.into(),
            account: account.into(),
        }
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>`.
    pub fn task_definition_arn(&self, family: &str, revision: u32) -> String {
        format!(
            "arn:aws:ecs:{}:{}:task-definition/{family}:{revision}",
            self.region, self.account
        )
    }
}

/// What a `taskDefinition` parameter names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TaskDefinitionRef {
    /// A family alone: its latest ACTIVE revision (Describe, RunTask).
    Family(String),
    /// One revision.
    Revision { family: String, revision: u32 },
}

impl TaskDefinitionRef {
    /// The family named.
    pub fn family(&self) -> &str {
        match self {
            TaskDefinitionRef::Family(f) | TaskDefinitionRef::Revision { family: f, .. } => f,
        }
    }
}

impl fmt::Display for TaskDefinitionRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskDefinitionRef::Family(family) => f.write_str(family),
            TaskDefinitionRef::Revision { family, revision } => write!(f, "{family}:{revision}"),
        }
    }
}

/// Why an identifier names no task definition of this berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefError {
    /// Not `family`, `family:revision` or a task definition ARN.
    Malformed,
    /// A well-formed ARN of another region or account.
    ElsewhereArn,
}

/// Parses `family`, `family:revision` or
/// `arn:<partition>:ecs:<region>:<account>:task-definition/<family>:<revision>`.
/// An ARN must carry a revision and name this scope's region and account.
pub(crate) fn parse(scope: &ArnScope, s: &str) -> Result<TaskDefinitionRef, RefError> {
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        let [partition, service, region, account, resource] = parts[..] else {
            return Err(RefError::Malformed);
        };
        let Some(name) = resource.strip_prefix("task-definition/") else {
            return Err(RefError::Malformed);
        };
        if !partition.starts_with("aws") || service != "ecs" {
            return Err(RefError::Malformed);
        }
        let r = parse_short(name)?;
        if !matches!(r, TaskDefinitionRef::Revision { .. }) {
            return Err(RefError::Malformed);
        }
        if region != scope.region || account != scope.account {
            return Err(RefError::ElsewhereArn);
        }
        return Ok(r);
    }
    parse_short(s)
}

fn parse_short(s: &str) -> Result<TaskDefinitionRef, RefError> {
    let valid_family = |f: &str| crate::taskdef::validate::is_ecs_name(f);
    match s.split_once(':') {
        None if valid_family(s) => Ok(TaskDefinitionRef::Family(s.to_owned())),
        Some((family, rev)) if valid_family(family) => {
            let revision: u32 = rev.parse().map_err(|_| RefError::Malformed)?;
            if revision == 0 || !rev.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RefError::Malformed);
            }
            Ok(TaskDefinitionRef::Revision {
                family: family.to_owned(),
                revision,
            })
        }
        _ => Err(RefError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        let scope = ArnScope::new("us-east-1", "000000000000");
        let rev = |f: &str, r| {
            Ok(TaskDefinitionRef::Revision {
                family: f.into(),
                revision: r,
            })
        };
        let table: &[(&str, Result<TaskDefinitionRef, RefError>)] = &[
            ("web", Ok(TaskDefinitionRef::Family("web".into()))),
            ("web:3", rev("web", 3)),
            (
                "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3",
                rev("web", 3),
            ),
            (
                "arn:aws:ecs:eu-west-1:000000000000:task-definition/web:3",
                Err(RefError::ElsewhereArn),
            ),
            (
                "arn:aws:ecs:us-east-1:111111111111:task-definition/web:3",
                Err(RefError::ElsewhereArn),
            ),
            (
                "arn:aws:ecs:us-east-1:000000000000:task-definition/web",
                Err(RefError::Malformed),
            ),
            (
                "arn:aws:ecs:us-east-1:000000000000:task/web:3",
                Err(RefError::Malformed),
            ),
            ("web:0", Err(RefError::Malformed)),
            ("web:+3", Err(RefError::Malformed)),
            ("web:x", Err(RefError::Malformed)),
            ("we b", Err(RefError::Malformed)),
            ("", Err(RefError::Malformed)),
        ];
        for (s, want) in table {
            assert_eq!(&parse(&scope, s), want, "{s}");
        }
        assert_eq!(
            scope.task_definition_arn("web", 3),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"
        );
    }
}
