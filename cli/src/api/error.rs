//! ECS errors on the wire: `{"__type": "<Exception>", "message": "<text>"}` with a
//! 4xx status for client errors (botocore retries 5xx and throttling codes only).

use berth_runtime::ErrorClass;
use http::StatusCode;
use serde_json::json;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub code: &'static str,
    pub message: String,
    pub status: StatusCode,
}

impl ApiError {
    pub(crate) fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status,
            message: message.into(),
        }
    }

    /// `ClientException`: the request is wrong in a way that is not one parameter.
    pub(crate) fn client(message: impl Into<String>) -> Self {
        Self::new("ClientException", StatusCode::BAD_REQUEST, message)
    }

    /// `InvalidParameterException`: a parameter is wrong; the message names it.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            "InvalidParameterException",
            StatusCode::BAD_REQUEST,
            message,
        )
    }

    pub(crate) fn cluster_not_found() -> Self {
        Self::new(
            "ClusterNotFoundException",
            StatusCode::BAD_REQUEST,
            "Cluster not found.",
        )
    }

    pub(crate) fn unsupported(message: impl Into<String>) -> Self {
        Self::new(
            "UnsupportedFeatureException",
            StatusCode::BAD_REQUEST,
            message,
        )
    }

    pub(crate) fn server(message: impl Into<String>) -> Self {
        Self::new(
            "ServerException",
            StatusCode::INTERNAL_SERVER_ERROR,
            message,
        )
    }

    /// The ECS exception for an error class. Exhaustive on purpose: a new class must
    /// decide here what clients see.
    pub(crate) fn from_class(class: ErrorClass, message: impl Into<String>) -> Self {
        match class {
            ErrorClass::NotFound => Self::client(message),
            ErrorClass::Invalid => Self::invalid(message),
            ErrorClass::Conflict => {
                Self::new("ConflictException", StatusCode::BAD_REQUEST, message)
            }
            ErrorClass::Unsupported => Self::unsupported(message),
            ErrorClass::Internal => Self::server(message),
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Vec<u8> {
        serde_json::to_vec(&json!({"__type": self.code, "message": self.message}))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_class_maps_to_an_ecs_exception_with_a_4xx_or_5xx_status() {
        for (class, code, status) in [
            (ErrorClass::NotFound, "ClientException", 400),
            (ErrorClass::Invalid, "InvalidParameterException", 400),
            (ErrorClass::Conflict, "ConflictException", 400),
            (ErrorClass::Unsupported, "UnsupportedFeatureException", 400),
            (ErrorClass::Internal, "ServerException", 500),
        ] {
            let e = ApiError::from_class(class, "m");
            assert_eq!((e.code, e.status.as_u16()), (code, status));
        }
        let body: serde_json::Value =
            serde_json::from_slice(&ApiError::invalid("x").body()).unwrap();
        assert_eq!(body["__type"], "InvalidParameterException");
        assert_eq!(body["message"], "x");
    }
}
