//! Small wire types and serde helpers shared by the model.

use std::fmt;
use std::num::NonZeroU16;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A container port: 1–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port(NonZeroU16);

impl Port {
    /// The port, if `n` is 1–65535.
    pub fn new(n: u16) -> Option<Port> {
        NonZeroU16::new(n).map(Port)
    }

    /// The port number.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Port {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.get())
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Port, D::Error> {
        let n = d.deserialize_i64(IntVisitor("a port number"))?;
        u16::try_from(n).ok().and_then(Port::new).ok_or_else(|| {
            de::Error::custom(format!("invalid port {n}: must be between 1 and 65535"))
        })
    }
}

/// A host port: 0 (pick one dynamically, bridge mode) or 1–65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort(u16);

impl HostPort {
    /// The host port `n` (0 means "dynamic").
    pub fn new(n: u16) -> HostPort {
        HostPort(n)
    }

    /// The port number, 0 when dynamic.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The fixed port, or `None` for 0 (dynamic).
    pub fn fixed(self) -> Option<Port> {
        Port::new(self.0)
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for HostPort {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.0)
    }
}

impl<'de> Deserialize<'de> for HostPort {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<HostPort, D::Error> {
        let n = d.deserialize_i64(IntVisitor("a port number"))?;
        u16::try_from(n).map(HostPort).map_err(|_| {
            de::Error::custom(format!(
                "invalid host port {n}: must be between 0 and 65535"
            ))
        })
    }
}

/// Accepts any JSON integer as `i64`, with a message saying what was expected.
struct IntVisitor(&'static str);

impl Visitor<'_> for IntVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::custom(format!("{v} is too large")))
    }
}

/// `null` deserializes to the type's default (an empty list or map): ECS treats an
/// explicit `null` as absent, and tools (Terraform, ecs-cli) emit them.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Task-level `cpu`/`memory`: ECS's model says string, but task definition files
/// written for CloudFormation or by hand often carry a number; both are accepted and
/// kept as the string the value was written as.
pub(crate) fn string_or_number<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    struct V;
    impl Visitor<'_> for V {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string such as \"1024\", \"1 vCPU\" or \"2 GB\"")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
    }
    d.deserialize_any(V)
}

/// `true` when a list is empty, for `skip_serializing_if`.
pub(crate) fn is_empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct P {
        p: Port,
        h: Option<HostPort>,
    }

    #[test]
    fn ports_parse_at_the_edge_with_clear_messages() {
        let ok: P = serde_json::from_str(r#"{"p": 80, "h": 0}"#).unwrap();
        assert_eq!(ok.p.get(), 80);
        assert_eq!(ok.h.unwrap().fixed(), None);
        let err = serde_json::from_str::<P>(r#"{"p": 0}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid port 0: must be between 1 and 65535"),
            "{err}"
        );
        let err = serde_json::from_str::<P>(r#"{"p": 70000}"#)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("invalid port 70000"), "{err}");
        let err = serde_json::from_str::<P>(r#"{"p": 1, "h": -1}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid host port -1: must be between 0 and 65535"),
            "{err}"
        );
        let err = serde_json::from_str::<P>(r#"{"p": "80"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid type: string \"80\", expected a port number"),
            "{err}"
        );
    }
}
