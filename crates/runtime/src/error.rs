//! Errors as HTTP clients see them: a status, a stable machine `code`, a human `message`, and
//! for validation errors the `field` at fault.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error response: `{"code": "...", "message": "...", "field": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    /// Stable identifier clients can match on, e.g. `validation_failed`.
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    /// 400: `field` is invalid.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "validation_failed",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// 400: the body is not the JSON the endpoint expects.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "malformed_request",
            message: message.into(),
            field: None,
        }
    }

    /// 401: no valid credentials; says what the endpoint expects.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            field: None,
        }
    }

    /// 403: the credentials are valid but do not allow this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
            field: None,
        }
    }

    /// 404: no such resource.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: what.into(),
            field: None,
        }
    }

    /// 409: the request conflicts with the resource's state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "conflict",
            message: message.into(),
            field: None,
        }
    }

    /// 500: a fault on our side; details go to the log, not to the client.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: message.into(),
            field: None,
        }
    }

    /// 413: the body is larger than the endpoint accepts.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::from_status(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// 503: the service is at its limit of requests in flight; the client may retry soon.
    pub fn overloaded(message: impl Into<String>) -> Self {
        Self {
            code: "overloaded",
            ..Self::from_status(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 503: the request did not finish within the server's time limit; the client may retry.
    pub fn timed_out(message: impl Into<String>) -> Self {
        Self {
            code: "timed_out",
            ..Self::from_status(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// An error the framework answered with `status` (an extractor's rejection, an unknown
    /// route or method, a protocol error), with the code clients match on for that status.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        let code = match status.as_u16() {
            400 => "malformed_request",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            405 => "method_not_allowed",
            406 => "not_acceptable",
            408 => "request_timeout",
            409 => "conflict",
            413 => "payload_too_large",
            414 => "uri_too_long",
            415 => "unsupported_media_type",
            422 => "validation_failed",
            431 => "headers_too_large",
            503 => "unavailable",
            _ if status.is_client_error() => "bad_request",
            _ => "internal",
        };
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 503: a dependency is down; the client may retry.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "unavailable",
            message: message.into(),
            field: None,
        }
    }
}

/// A field that breaks its limit (see `alpes_contracts::limits`) is a 400 naming it.
impl From<alpes_contracts::limits::Invalid> for ApiError {
    fn from(invalid: alpes_contracts::limits::Invalid) -> Self {
        Self::invalid(invalid.field, invalid.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}
