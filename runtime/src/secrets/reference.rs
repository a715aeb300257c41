//! What a `secrets[].valueFrom` names, parsed: a Secrets Manager secret (by ARN, with an
//! optional JSON key, version stage and version id), an SSM parameter (by ARN) or a
//! parameter name, as ECS accepts them.

use super::SecretError;

/// The AWS service a reference names (it decides the wording of errors, as the ECS agent's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretService {
    /// AWS Secrets Manager (`arn:…:secretsmanager:…:secret:NAME…`).
    SecretsManager,
    /// SSM Parameter Store (`arn:…:ssm:…:parameter/NAME`, or a bare name).
    ParameterStore,
}

impl SecretService {
    /// The short name the ECS agent uses in its errors.
    pub fn short(self) -> &'static str {
        match self {
            SecretService::SecretsManager => "asm",
            SecretService::ParameterStore => "ssm",
        }
    }
}

/// A parsed `valueFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// Which service the reference is written for.
    pub service: SecretService,
    /// Names to look up in berth's store, most specific first.
    pub candidates: Vec<String>,
    /// A key of the secret's JSON object to take instead of the whole value.
    pub json_key: Option<String>,
}

/// The random suffix Secrets Manager appends to a secret's name in its full ARN.
fn strip_random_suffix(name: &str) -> Option<&str> {
    let (base, suffix) = name.rsplit_once('-')?;
    (suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()) && !base.is_empty())
        .then_some(base)
}

/// Characters of a secret or parameter name: the union of what Secrets Manager
/// (`A-Za-z0-9/_+=.@-`) and Parameter Store (`a-zA-Z0-9_.-/`) allow.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 2048
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-".contains(&b))
}

/// Parses a `valueFrom` (see the module doc).
pub fn parse(value_from: &str) -> Result<SecretRef, SecretError> {
    let invalid = || SecretError::InvalidReference(value_from.to_owned());
    let Some(rest) = value_from.strip_prefix("arn:") else {
        if !valid_name(value_from) {
            return Err(invalid());
        }
        // A bare name is a parameter of this region; `/a/b` and `a/b` are spelled both
        // ways in the wild.
        let trimmed = value_from.trim_start_matches('/');
        let mut candidates = vec![value_from.to_owned()];
        for c in [trimmed.to_owned(), format!("/{trimmed}")] {
            if !candidates.contains(&c) {
                candidates.push(c);
            }
        }
        return Ok(SecretRef {
            service: SecretService::ParameterStore,
            candidates,
            json_key: None,
        });
    };
    // partition:service:region:account:resource
    let mut parts = rest.splitn(5, ':');
    let (Some(_partition), Some(service), Some(_region), Some(_account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid());
    };
    match service {
        "secretsmanager" => {
            let Some(rest) = resource.strip_prefix("secret:") else {
                return Err(invalid());
            };
            // NAME[:json-key[:version-stage[:version-id]]]
            let mut fields = rest.split(':');
            let name = fields.next().unwrap_or_default();
            let json_key = fields.next().filter(|k| !k.is_empty());
            let stage = fields.next().filter(|s| !s.is_empty());
            let version_id = fields.next().filter(|s| !s.is_empty());
            if !valid_name(name) || fields.next().is_some() {
                return Err(invalid());
            }
            if let Some(stage) = stage.filter(|s| *s != "AWSCURRENT") {
                return Err(SecretError::Version {
                    value_from: value_from.to_owned(),
                    what: format!("version stage {stage}"),
                });
            }
            if let Some(id) = version_id {
                return Err(SecretError::Version {
                    value_from: value_from.to_owned(),
                    what: format!("version id {id}"),
                });
            }
            let mut candidates = vec![name.to_owned()];
            candidates.extend(strip_random_suffix(name).map(str::to_owned));
            Ok(SecretRef {
                service: SecretService::SecretsManager,
                candidates,
                json_key: json_key.map(str::to_owned),
            })
        }
        "ssm" => {
            let Some(name) = resource.strip_prefix("parameter") else {
                return Err(invalid());
            };
            // `parameter/app/db` is the parameter `/app/db`; `parameter/db` is `db`.
            let bare = name.trim_start_matches('/');
            if !valid_name(bare) {
                return Err(invalid());
            }
            let rooted = format!("/{bare}");
            let candidates = if bare.contains('/') {
                vec![rooted, bare.to_owned()]
            } else {
                vec![bare.to_owned(), rooted]
            };
            Ok(SecretRef {
                service: SecretService::ParameterStore,
                candidates,
                json_key: None,
            })
        }
        _ => Err(invalid()),
    }
}

/// The part of a stored `value` a reference asks for: the whole value, or one key of its
/// JSON object (a string as is, anything else as JSON text).
pub fn select(r: &SecretRef, name: &str, value: &str) -> Result<String, SecretError> {
    let Some(key) = &r.json_key else {
        return Ok(value.to_owned());
    };
    let no_key = |why: &str| SecretError::JsonKey {
        name: name.to_owned(),
        key: key.clone(),
        why: why.to_owned(),
    };
    let doc: serde_json::Value =
        serde_json::from_str(value).map_err(|_| no_key("its value is not JSON"))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| no_key("its value is not a JSON object"))?;
    match obj.get(key) {
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Ok(other.to_string()),
        None => Err(no_key("the object has no such key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_arns_give_the_name_with_and_without_the_random_suffix() {
        let r =
            parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:db/pass-AbC123").unwrap();
        assert_eq!(r.service, SecretService::SecretsManager);
        assert_eq!(r.candidates, ["db/pass-AbC123", "db/pass"]);
        assert_eq!(r.json_key, None);

        let r = parse("arn:aws:secretsmanager:eu-west-1:1:secret:app:password::").unwrap();
        assert_eq!(r.candidates, ["app"]);
        assert_eq!(r.json_key.as_deref(), Some("password"));

        let r =
            parse("arn:aws:secretsmanager:eu-west-1:1:secret:app:password:AWSCURRENT:").unwrap();
        assert_eq!(r.json_key.as_deref(), Some("password"));
    }

    #[test]
    fn other_versions_than_the_current_one_are_refused_by_name() {
        let e = parse("arn:aws:secretsmanager:r:1:secret:app::AWSPREVIOUS:").unwrap_err();
        assert!(e.to_string().contains("version stage AWSPREVIOUS"), "{e}");
        let e = parse("arn:aws:secretsmanager:r:1:secret:app:k::0123-abcd").unwrap_err();
        assert!(e.to_string().contains("version id 0123-abcd"), "{e}");
    }

    #[test]
    fn parameter_arns_and_bare_names_try_both_spellings() {
        let r = parse("arn:aws:ssm:us-east-1:1:parameter/app/db/password").unwrap();
        assert_eq!(r.service, SecretService::ParameterStore);
        assert_eq!(r.candidates, ["/app/db/password", "app/db/password"]);
        let r = parse("arn:aws:ssm:us-east-1:1:parameter/token").unwrap();
        assert_eq!(r.candidates, ["token", "/token"]);
        let r = parse("token").unwrap();
        assert_eq!(r.candidates, ["token", "/token"]);
        let r = parse("/app/token").unwrap();
        assert_eq!(r.candidates, ["/app/token", "app/token"]);
    }

    #[test]
    fn anything_else_is_an_invalid_reference() {
        for bad in [
            "",
            "arn:aws:s3:::bucket/key",
            "arn:aws:secretsmanager:r:1:notsecret:x",
            "arn:aws:ssm:r:1:document/x",
            "arn:aws:secretsmanager",
            "has space",
            "arn:aws:secretsmanager:r:1:secret:a:b:c:d:e",
        ] {
            assert!(
                matches!(parse(bad), Err(SecretError::InvalidReference(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_json_key_selects_one_field() {
        let r = parse("arn:aws:secretsmanager:r:1:secret:app:user::").unwrap();
        let v = r#"{"user":"ada","port":5432}"#;
        assert_eq!(select(&r, "app", v).unwrap(), "ada");
        let r = parse("arn:aws:secretsmanager:r:1:secret:app:port::").unwrap();
        assert_eq!(select(&r, "app", v).unwrap(), "5432");
        let r = parse("arn:aws:secretsmanager:r:1:secret:app:nope::").unwrap();
        let e = select(&r, "app", v).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("no such key"), "{e}");
        assert!(select(&r, "app", "plain").is_err());
        let whole = parse("app").unwrap();
        assert_eq!(select(&whole, "app", "plain").unwrap(), "plain");
    }
}
