//! Every enum a task definition uses, with the exact wire strings of the ECS model.
//!
//! An unknown value is a deserialization error that names the field and lists the
//! accepted values (serde's `unknown variant` message).

use std::fmt;
use std::str::FromStr;

/// Declares a wire enum: serde names, `ALL`, `as_str`, `Display` and `FromStr`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $wire:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant ),+
        }

        impl $name {
            /// Every value, in the model's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as ECS spells it on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        value: s.to_owned(),
                        expected: &[$($wire),+],
                    }),
                }
            }
        }
    };
}

/// A string that is not one of an enum's wire values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {value:?}, expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    /// What was given.
    pub value: String,
    /// Every accepted value.
    pub expected: &'static [&'static str],
}

wire_enum! {
    /// `networkMode`: how the task's containers are networked.
    NetworkMode {
        Bridge = "bridge",
        Host = "host",
        Awsvpc = "awsvpc",
        None = "none",
    }
}

wire_enum! {
    /// `pidMode`: the process namespace the containers use.
    PidMode { Host = "host", Task = "task" }
}

wire_enum! {
    /// `ipcMode`: the IPC namespace the containers use.
    IpcMode { Host = "host", Task = "task", None = "none" }
}

wire_enum! {
    /// `requiresCompatibilities` / `compatibilities` entries (launch types).
    Compatibility {
        Ec2 = "EC2",
        Fargate = "FARGATE",
        External = "EXTERNAL",
        ManagedInstances = "MANAGED_INSTANCES",
    }
}

wire_enum! {
    /// `portMappings[].protocol`.
    TransportProtocol { Tcp = "tcp", Udp = "udp" }
}

wire_enum! {
    /// `portMappings[].appProtocol` (Service Connect only).
    ApplicationProtocol { Http = "http", Http2 = "http2", Grpc = "grpc" }
}

wire_enum! {
    /// `dependsOn[].condition`.
    ContainerCondition {
        Start = "START",
        Complete = "COMPLETE",
        Success = "SUCCESS",
        Healthy = "HEALTHY",
    }
}

wire_enum! {
    /// `ulimits[].name`.
    UlimitName {
        Core = "core",
        Cpu = "cpu",
        Data = "data",
        Fsize = "fsize",
        Locks = "locks",
        Memlock = "memlock",
        Msgqueue = "msgqueue",
        Nice = "nice",
        Nofile = "nofile",
        Nproc = "nproc",
        Rss = "rss",
        Rtprio = "rtprio",
        Rttime = "rttime",
        Sigpending = "sigpending",
        Stack = "stack",
    }
}

wire_enum! {
    /// `logConfiguration.logDriver`.
    LogDriver {
        JsonFile = "json-file",
        Syslog = "syslog",
        Journald = "journald",
        Gelf = "gelf",
        Fluentd = "fluentd",
        Awslogs = "awslogs",
        Splunk = "splunk",
        Awsfirelens = "awsfirelens",
    }
}

wire_enum! {
    /// `linuxParameters.devices[].permissions[]`.
    DeviceCgroupPermission { Read = "read", Write = "write", Mknod = "mknod" }
}

wire_enum! {
    /// `environmentFiles[].type`. ECS knows only `s3`; berth also reads local files
    /// (an absolute path or `file://` URL in `value`, still with type `s3`).
    EnvironmentFileType { S3 = "s3" }
}

wire_enum! {
    /// `firelensConfiguration.type`.
    FirelensConfigurationType { Fluentd = "fluentd", Fluentbit = "fluentbit" }
}

wire_enum! {
    /// `resourceRequirements[].type`.
    ResourceType {
        Gpu = "GPU",
        InferenceAccelerator = "InferenceAccelerator",
        NeuronDevice = "NeuronDevice",
    }
}

wire_enum! {
    /// `dockerVolumeConfiguration.scope`.
    Scope { Task = "task", Shared = "shared" }
}

wire_enum! {
    /// `efsVolumeConfiguration.transitEncryption`.
    EfsTransitEncryption { Enabled = "ENABLED", Disabled = "DISABLED" }
}

wire_enum! {
    /// `efsVolumeConfiguration.authorizationConfig.iam`.
    EfsAuthorizationConfigIam { Enabled = "ENABLED", Disabled = "DISABLED" }
}

wire_enum! {
    /// `proxyConfiguration.type`.
    ProxyConfigurationType { Appmesh = "APPMESH" }
}

wire_enum! {
    /// `placementConstraints[].type` in a task definition.
    TaskDefinitionPlacementConstraintType { MemberOf = "memberOf" }
}

wire_enum! {
    /// `runtimePlatform.cpuArchitecture`.
    CpuArchitecture { X86_64 = "X86_64", Arm64 = "ARM64" }
}

wire_enum! {
    /// `runtimePlatform.operatingSystemFamily`.
    OsFamily {
        WindowsServer2019Full = "WINDOWS_SERVER_2019_FULL",
        WindowsServer2019Core = "WINDOWS_SERVER_2019_CORE",
        WindowsServer2016Full = "WINDOWS_SERVER_2016_FULL",
        WindowsServer2004Core = "WINDOWS_SERVER_2004_CORE",
        WindowsServer2022Core = "WINDOWS_SERVER_2022_CORE",
        WindowsServer2022Full = "WINDOWS_SERVER_2022_FULL",
        WindowsServer2025Core = "WINDOWS_SERVER_2025_CORE",
        WindowsServer2025Full = "WINDOWS_SERVER_2025_FULL",
        WindowsServer20H2Core = "WINDOWS_SERVER_20H2_CORE",
        Linux = "LINUX",
    }
}

wire_enum! {
    /// `versionConsistency`: whether the image tag is resolved to a digest at launch.
    VersionConsistency { Enabled = "enabled", Disabled = "disabled" }
}

wire_enum! {
    /// `trustedExecutionConfiguration.isolationMode` (botocore ≥ 1.44).
    IsolationMode {
        Shared = "SHARED",
        IsolatedSandbox = "ISOLATED_SANDBOX",
        ConfidentialSandbox = "CONFIDENTIAL_SANDBOX",
    }
}

wire_enum! {
    /// A task definition revision's `status`.
    TaskDefinitionStatus {
        Active = "ACTIVE",
        Inactive = "INACTIVE",
        DeleteInProgress = "DELETE_IN_PROGRESS",
    }
}

wire_enum! {
    /// `ListTaskDefinitionFamilies.status`.
    TaskDefinitionFamilyStatus { Active = "ACTIVE", Inactive = "INACTIVE", All = "ALL" }
}

wire_enum! {
    /// `ListTaskDefinitions.sort`.
    SortOrder { Asc = "ASC", Desc = "DESC" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_serde_and_from_str() {
        for m in NetworkMode::ALL {
            let json = serde_json::to_string(m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(serde_json::from_str::<NetworkMode>(&json).unwrap(), *m);
            assert_eq!(m.as_str().parse::<NetworkMode>().unwrap(), *m);
        }
        assert_eq!(UlimitName::ALL.len(), 15);
        assert_eq!(LogDriver::JsonFile.to_string(), "json-file");
    }

    #[test]
    fn unknown_values_list_the_accepted_ones() {
        let err = "sideways".parse::<SortOrder>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown value \"sideways\", expected one of: ASC, DESC"
        );
        let err = serde_json::from_str::<TransportProtocol>("\"TCP\"").unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown variant `TCP`, expected `tcp` or `udp`"),
            "{err}"
        );
    }
}
