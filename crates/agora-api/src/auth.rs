//! Token authentication: `Authorization: Bearer <token>`, InfluxDB's `Authorization: Token
//! <token>`, HTTP Basic (the password is the token, as InfluxDB v1 clients send it) and the v1
//! query parameter `p`; and the dashboard's session cookie (`session`).

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::AppState;
use crate::error::ApiError;
use crate::policy::Principal;

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

/// Who the request comes from: the token it carries (a wrong one is refused, 401), else the
/// dashboard session its cookie names, else nobody.
pub(crate) fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    query_p: Option<&str>,
) -> Result<Option<Principal>, ApiError> {
    match secret_from(headers, query_p) {
        Some(secret) => state
            .catalog
            .authenticate(&secret)
            .map(|t| Some(Principal::of_token(t)))
            .ok_or_else(|| ApiError::Unauthorized("unknown, revoked or expired token".into())),
        None => Ok(crate::session::current(state, headers).map(|(_, s)| s.principal)),
    }
}

/// The token a device API path carries (ThingsBoard's `/api/v1/{token}/…`): live, and of a role
/// that sends data.
pub(crate) fn device_token(
    state: &AppState,
    secret: &str,
) -> Result<agora_store::catalog::TokenInfo, ApiError> {
    let t = state
        .catalog
        .authenticate(secret)
        .ok_or_else(|| ApiError::Unauthorized("unknown, revoked or expired token".into()))?;
    if !t.grant.may(agora_model::permissions::Action::Ingest) {
        return Err(ApiError::Forbidden(format!(
            "token {:?} is a {}, which does not send data",
            t.name,
            t.grant.role()
        )));
    }
    Ok(t)
}

/// The token data is sent with: people send data through tokens, not sessions.
pub(crate) fn ingest_token(who: &Principal) -> Result<&agora_store::catalog::TokenInfo, ApiError> {
    who.token.as_ref().ok_or_else(|| {
        ApiError::Forbidden(
            "data is sent with a token (Authorization: Bearer <token>), not a \
                             dashboard session"
                .into(),
        )
    })
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
