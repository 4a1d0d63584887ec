//! Errors as the API returns them: an HTTP code and a Kubernetes `Status` body.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use keel_api::{Kind, Status, StatusDetails};

use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError(pub Box<Status>);

impl ApiError {
    pub fn new(code: u16, reason: &str, message: impl Into<String>) -> Self {
        ApiError(Box::new(Status::failure(code, reason, message)))
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, "NotFound", message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }
    pub fn unauthorized() -> Self {
        Self::new(
            401,
            "Unauthorized",
            "a valid bearer token is required (Authorization: Bearer <token>)",
        )
    }
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!(
                "too old resource version: {requested} (oldest kept is {oldest}); relist and watch from the list's resourceVersion"
            ),
        )
    }

    /// A resourceVersion the store has not reached (Kubernetes'
    /// `storage.NewTooLargeResourceVersionError`: 504 Timeout, retry in 1 s).
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        let mut status = Status::failure(
            504,
            "Timeout",
            format!("Timeout: Too large resource version: {requested}, current: {current}"),
        );
        status.details = Some(StatusDetails {
            causes: vec![keel_api::FieldError {
                field: "resourceVersion".into(),
                message: "Too large resource version".into(),
            }],
            retry_after_seconds: Some(1),
            ..Default::default()
        });
        ApiError(Box::new(status))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // Kubernetes' wording (`deployments.apps "web" not found`), which
        // kubectl prints as it is.
        let message = match &e {
            StoreError::NotFound { kind, key } => {
                format!("{} {:?} not found", resource(*kind), short(key))
            }
            StoreError::AlreadyExists { kind, key } => {
                format!("{} {:?} already exists", resource(*kind), short(key))
            }
            StoreError::Forbidden { kind, key, message } => {
                format!(
                    "{} {:?} is forbidden: {message}",
                    resource(*kind),
                    short(key)
                )
            }
            _ => e.to_string(),
        };
        let (code, reason, kind, name, causes) = match e {
            StoreError::NotFound { kind, key } => (404, "NotFound", Some(kind), key, vec![]),
            StoreError::AlreadyExists { kind, key } => {
                (409, "AlreadyExists", Some(kind), key, vec![])
            }
            StoreError::Conflict { kind, key, .. } => (409, "Conflict", Some(kind), key, vec![]),
            StoreError::Invalid { kind, key, causes } => (422, "Invalid", Some(kind), key, causes),
            StoreError::Forbidden { kind, key, .. } => (403, "Forbidden", Some(kind), key, vec![]),
            StoreError::Backend(_) => (500, "InternalError", None, String::new(), vec![]),
            StoreError::NoSpace(_) => (507, "InsufficientStorage", None, String::new(), vec![]),
            StoreError::Closed | StoreError::Unavailable(_) => {
                (503, "ServiceUnavailable", None, String::new(), vec![])
            }
            StoreError::Timeout(_) => (504, "Timeout", None, String::new(), vec![]),
        };
        let mut status = Status::failure(code, reason, message);
        if kind.is_some() || !causes.is_empty() {
            // As Kubernetes: the object's name without its namespace, and
            // the resource (plural) rather than the kind.
            let name = name.rsplit('/').next().unwrap_or_default().to_string();
            status.details = Some(StatusDetails {
                name,
                kind: kind
                    .map(|k: Kind| k.plural().to_string())
                    .unwrap_or_default(),
                causes,
                retry_after_seconds: None,
            });
        }
        ApiError(Box::new(status))
    }
}

/// `pods`, `deployments.apps`: a kind's resource as Kubernetes names it.
fn resource(kind: Kind) -> String {
    let info = kind.info();
    if info.group().is_empty() {
        info.plural.to_string()
    } else {
        format!("{}.{}", info.plural, info.group())
    }
}

/// A store key's name part.
fn short(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.0.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (code, Json(self.0)).into_response()
    }
}
