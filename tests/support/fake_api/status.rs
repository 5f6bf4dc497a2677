//! API errors of the fake server and their Kubernetes `Status` JSON bodies.
//! Pure data; it must not touch the store or the network.

use serde_json::{Value, json};

/// A failed API call, rendered as a `Status` object with the matching HTTP code.
#[derive(Clone, Debug)]
pub enum ApiError {
    NotFound {
        kind: String,
        name: String,
    },
    AlreadyExists {
        kind: String,
        name: String,
    },
    Conflict {
        kind: String,
        name: String,
        message: String,
    },
    BadRequest(String),
    Invalid {
        kind: String,
        name: String,
        message: String,
    },
    Gone(String),
    MethodNotAllowed(String),
    UnsupportedMediaType(String),
    /// Produced by fault injection.
    Injected(u16),
}

impl ApiError {
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::BadRequest(_) => 400,
            ApiError::Invalid { .. } => 422,
            ApiError::Gone(_) => 410,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Injected(code) => *code,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::Gone(_) => "Expired",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Injected(409) => "Conflict",
            ApiError::Injected(429) => "TooManyRequests",
            ApiError::Injected(503) => "ServiceUnavailable",
            ApiError::Injected(_) => "InternalError",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::NotFound { kind, name } => format!("{kind} \"{name}\" not found"),
            ApiError::AlreadyExists { kind, name } => format!("{kind} \"{name}\" already exists"),
            ApiError::Conflict {
                kind,
                name,
                message,
            } => {
                format!("Operation cannot be fulfilled on {kind} \"{name}\": {message}")
            }
            ApiError::Invalid {
                kind,
                name,
                message,
            } => format!("{kind} \"{name}\" is invalid: {message}"),
            ApiError::BadRequest(m)
            | ApiError::Gone(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::UnsupportedMediaType(m) => m.clone(),
            ApiError::Injected(code) => format!("injected fault: HTTP {code}"),
        }
    }

    /// The `Status` body Kubernetes returns for this error.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": self.reason(),
            "code": self.code(),
        });
        match self {
            ApiError::NotFound { kind, name }
            | ApiError::AlreadyExists { kind, name }
            | ApiError::Conflict { kind, name, .. }
            | ApiError::Invalid { kind, name, .. } => {
                status["details"] = json!({ "name": name, "kind": kind });
            }
            ApiError::Injected(429) => status["details"] = json!({ "retryAfterSeconds": 1 }),
            _ => {}
        }
        status
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
