//! Token authentication: `Authorization: Bearer <token>`, InfluxDB's `Authorization: Token
//! <token>`, HTTP Basic (the password is the token, as InfluxDB v1 clients send it) and the v1
//! query parameter `p`; and the dashboard's session cookie (`session`).

use agora_store::catalog::{Scope, TokenInfo};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::AppState;
use crate::error::ApiError;

/// The token secret a request carries, if any.
pub(crate) fn secret_from(headers: &HeaderMap, query_p: Option<&str>) -> Option<String> {
    if let Some(h) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let h = h.trim();
        if let Some((scheme, rest)) = h.split_once(' ') {
            let rest = rest.trim();
            match scheme.to_ascii_lowercase().as_str() {
                "bearer" | "token" => return Some(rest.to_owned()),
                "basic" => {
                    let decoded = base64_decode(rest)?;
                    let s = String::from_utf8(decoded).ok()?;
                    return s.split_once(':').map(|(_, p)| p.to_owned());
                }
                _ => {}
            }
        }
    }
    query_p.map(str::to_owned)
}

/// Check that the request carries a live token allowing `scope`.
pub(crate) fn require(
    state: &AppState,
    headers: &HeaderMap,
    query_p: Option<&str>,
    scope: Scope,
) -> Result<TokenInfo, ApiError> {
    let t = match secret_from(headers, query_p) {
        Some(secret) => state
            .catalog
            .authenticate(&secret)
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked token".into()))?,
        // A dashboard session stands for the token it was opened with.
        None => crate::session::current(state, headers).map(|(_, s)| s.token).ok_or_else(|| {
            ApiError::Unauthorized("missing token: send Authorization: Bearer <token>".into())
        })?,
    };
    if !t.scope.allows(scope) {
        return Err(ApiError::Forbidden(format!(
            "token {:?} has scope {}, this needs {}",
            t.name,
            t.scope.as_str(),
            scope.as_str()
        )));
    }
    Ok(t)
}

/// Read access: open to everyone when the deployment publishes its data, else a read token.
pub(crate) fn require_read(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.public_read {
        return Ok(());
    }
    require(state, headers, None, Scope::Read).map(|_| ())
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_token_carriers() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(secret_from(&h, None).as_deref(), Some("abc"));
        h.insert(AUTHORIZATION, "Token abc".parse().unwrap());
        assert_eq!(secret_from(&h, None).as_deref(), Some("abc"));
        // user:agora_secret
        h.insert(AUTHORIZATION, "Basic dXNlcjphZ29yYV9zZWNyZXQ=".parse().unwrap());
        assert_eq!(secret_from(&h, None).as_deref(), Some("agora_secret"));
        assert_eq!(secret_from(&HeaderMap::new(), Some("q")).as_deref(), Some("q"));
        assert_eq!(secret_from(&HeaderMap::new(), None), None);
    }
}
