//! The one HTTP error type: RFC 9457 problem+json with a stable snake_case `code`. The cause
//! chain is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use agora_ingest::LineError;

/// Everything an endpoint can answer with instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// The token lacks the scope.
    #[error("{0}")]
    Forbidden(String),
    /// A query parameter or body is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// Some lines or records were refused; the others were stored.
    #[error("{accepted} points written, {rejected_count} rejected")]
    PartialWrite {
        /// Points stored.
        accepted: usize,
        /// What was refused: the first ones (`agora_ingest::LISTED_REFUSALS`).
        rejected: Vec<LineError>,
        /// How many lines, records or fields were refused in all.
        rejected_count: usize,
    },
    /// Nothing referenced exists.
    #[error("{0}")]
    NotFound(String),
    /// An alert rule is invalid (unknown property, bad expression, impossible window…).
    #[error("{0}")]
    InvalidRule(String),
    /// A query would decode more raw points than allowed.
    #[error("{0}")]
    QueryTooLarge(String),
    /// The request conflicts with the catalog.
    #[error("{0}")]
    Conflict(String),
    /// The body is over the size limit.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body's content encoding is not supported.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The client sent too many requests; it may try again after `retry_after_secs`.
    #[error("too many requests: try again in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a request would be accepted (sent as `Retry-After`).
        retry_after_secs: u64,
    },
    /// A limit of a route of its own (citizens' reports per client or per place), named.
    #[error("{detail}")]
    LimitReached {
        /// Which limit, and when to try again.
        detail: String,
        /// Seconds until a request would be accepted (sent as `Retry-After`).
        retry_after_secs: u64,
    },
    /// A cap on open connections or streams is reached.
    #[error("{0}")]
    TooManyConnections(String),
    /// A device did not answer a call in time.
    #[error("{0}")]
    DeviceTimeout(String),
    /// Storage failed; nothing of the request was acknowledged.
    #[error("storage is unavailable")]
    Unavailable(#[source] agora_store::Error),
    /// A bug or an unexpected failure.
    #[error("internal error")]
    Internal(#[source] agora_store::Error),
    /// A route nobody gave an access rule: refused until one is written.
    #[error("{0}")]
    NoAccessRule(String),
}

impl ApiError {
    /// The stable code and HTTP status of each error.
    pub fn code(&self) -> (&'static str, StatusCode) {
        match self {
            Self::Unauthorized(_) => ("unauthorized", StatusCode::UNAUTHORIZED),
            Self::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            Self::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            Self::PartialWrite { .. } => ("partial_write", StatusCode::BAD_REQUEST),
            Self::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            Self::InvalidRule(_) => ("invalid_rule", StatusCode::UNPROCESSABLE_ENTITY),
            Self::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            Self::QueryTooLarge(_) => ("query_too_large", StatusCode::UNPROCESSABLE_ENTITY),
            Self::PayloadTooLarge(_) => ("payload_too_large", StatusCode::PAYLOAD_TOO_LARGE),
            Self::UnsupportedMediaType(_) => {
                ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE)
            }
            Self::RateLimited { .. } | Self::LimitReached { .. } => {
                ("rate_limited", StatusCode::TOO_MANY_REQUESTS)
            }
            Self::TooManyConnections(_) => {
                ("too_many_connections", StatusCode::SERVICE_UNAVAILABLE)
            }
            Self::DeviceTimeout(_) => ("device_timeout", StatusCode::GATEWAY_TIMEOUT),
            Self::Unavailable(_) => ("storage_unavailable", StatusCode::SERVICE_UNAVAILABLE),
            Self::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
            Self::NoAccessRule(_) => ("no_access_rule", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl From<agora_store::Error> for ApiError {
    fn from(e: agora_store::Error) -> Self {
        use agora_store::Error as E;
        match e {
            E::NotFound { .. } => Self::NotFound(e.to_string()),
            E::Conflict(m) => Self::Conflict(m),
            E::Invalid(m) => Self::BadRequest(m),
            E::Forbidden(m) => Self::Forbidden(m),
            E::Io { .. } | E::Closed | E::Busy | E::WalFailed(_) | E::DiskFull { .. } => {
                Self::Unavailable(e)
            }
            other => Self::Internal(other),
        }
    }
}

impl From<agora_query::Error> for ApiError {
    fn from(e: agora_query::Error) -> Self {
        match e {
            agora_query::Error::Invalid(m) => Self::BadRequest(m),
            agora_query::Error::TooLarge(m) => Self::QueryTooLarge(m),
            agora_query::Error::Store(s) => s.into(),
        }
    }
}

impl From<agora_indicators::Error> for ApiError {
    fn from(e: agora_indicators::Error) -> Self {
        Self::BadRequest(e.to_string())
    }
}

impl From<agora_alerts::Error> for ApiError {
    fn from(e: agora_alerts::Error) -> Self {
        use agora_alerts::Error as E;
        match e {
            E::Invalid(r) => Self::InvalidRule(r.0),
            E::NotFound(m) => Self::NotFound(m),
            E::Conflict(m) => Self::Conflict(m),
            E::Store(s) => s.into(),
            E::Start(m) => Self::Internal(agora_store::Error::Internal(m)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code();
        // A refusal by a cap is expected under load, and one log line per refused request would
        // let a flood fill the disk with logs: the caps log their own summaries.
        let expected = matches!(self, Self::TooManyConnections(_));
        if status.is_server_error() && !expected {
            let mut msg = self.to_string();
            let mut src = std::error::Error::source(&self);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            tracing::error!(code, error = %msg, "request failed");
        }
        let detail = self.to_string();
        let mut body = json!({
            "type": format!("urn:agora:problem:{code}"),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "code": code,
            "detail": detail,
            // InfluxDB clients read `error`.
            "error": detail,
        });
        if let Self::PartialWrite { accepted, rejected, rejected_count } = &self {
            body["accepted"] = json!(accepted);
            body["rejected"] = json!(rejected);
            body["rejected_count"] = json!(rejected_count);
        }
        let mut resp = (status, axum::Json(body)).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match &self {
            Self::RateLimited { retry_after_secs }
            | Self::LimitReached { retry_after_secs, .. } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::TooManyConnections(_) => {
                resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        if let Self::Unavailable(_) = &self {
            // Nothing was stored: the client keeps its data and tries again.
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"agora\""),
            );
        }
        resp
    }
}

/// Result alias of the HTTP layer.
pub type ApiResult<T> = Result<T, ApiError>;
