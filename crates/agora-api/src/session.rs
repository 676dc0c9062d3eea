//! Browser sessions for the dashboard. An operator exchanges a token once at login for a random
//! session id carried in an `HttpOnly`, `SameSite=Strict` cookie; the secret token itself never
//! reaches the page's scripts. Each session has a CSRF token that every unsafe request made with
//! the cookie must echo (`X-CSRF-Token` header or a `csrf` form field), checked by `csrf_guard`.
//!
//! A session stands for a person (logged in with their password) or for the token it was opened
//! with. Sessions live in memory: a restart asks everyone to log in again.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::policy::Principal;

/// Name of the session cookie.
pub const COOKIE: &str = "agora_session";
/// Sessions one person or token keeps at most (the oldest ends when another opens).
pub const MAX_PER_PRINCIPAL: usize = 20;
/// Sessions at most.
pub const MAX_SESSIONS: usize = 50_000;
/// Header carrying the session's CSRF token on unsafe requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A logged-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who logged in.
    pub principal: Principal,
    /// Echoed by unsafe requests made with the cookie.
    pub csrf: String,
    /// When it was opened.
    pub opened: std::time::SystemTime,
    expires: Instant,
}

/// A live session as administrators list it (never its id).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// Who: `person:ID (email)` or `token:ID (name)`.
    pub actor: String,
    /// The person, if a person opened it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// The commune of whoever opened it (`metropole`).
    pub commune: String,
    /// When it was opened (RFC 3339).
    pub opened: String,
    /// Seconds it has left.
    pub expires_in: u64,
}

/// The live sessions, keyed by the SHA-256 of their id (ids are never kept in clear).
#[derive(Debug)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
    ttl: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Self::new(Duration::from_secs(12 * 3600))
    }
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the operating system has no random source");
    hex::encode(b)
}

impl Sessions {
    /// Sessions lasting `ttl` from login.
    pub fn new(ttl: Duration) -> Self {
        Self { live: Mutex::new(HashMap::new()), ttl }
    }

    /// Open a session for `principal`; returns the session id to put in the cookie.
    pub fn create(&self, principal: Principal) -> (String, Session) {
        let id = random_hex(32);
        let s = Session {
            principal,
            csrf: random_hex(16),
            opened: std::time::SystemTime::now(),
            expires: Instant::now() + self.ttl,
        };
        let mut live = self.live.lock();
        let now = Instant::now();
        live.retain(|_, s| s.expires > now);
        // Bounded: a person or token keeps its newest sessions, the server its newest overall.
        let mine: Vec<([u8; 32], Instant)> = live
            .iter()
            .filter(|(_, x)| x.principal.actor == s.principal.actor)
            .map(|(k, x)| (*k, x.expires))
            .collect();
        if mine.len() >= MAX_PER_PRINCIPAL
            && let Some((k, _)) = mine.iter().min_by_key(|(_, e)| *e)
        {
            live.remove(k);
        }
        if live.len() >= MAX_SESSIONS
            && let Some(k) = live.iter().min_by_key(|(_, x)| x.expires).map(|(k, _)| *k)
        {
            live.remove(&k);
        }
        live.insert(digest(&id), s.clone());
        (id, s)
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let live = self.live.lock();
        live.get(&digest(id)).filter(|s| s.expires > Instant::now()).cloned()
    }

    /// End a session.
    pub fn remove(&self, id: &str) {
        self.live.lock().remove(&digest(id));
    }

    /// End every session of a person ("log out everywhere", a disabled or erased account);
    /// returns how many ended.
    pub fn end_person(&self, person: &str) -> usize {
        let mut live = self.live.lock();
        let before = live.len();
        live.retain(|_, s| s.principal.person.as_deref() != Some(person));
        before - live.len()
    }

    /// The live sessions, oldest first, that `filter` keeps.
    pub fn list(&self, filter: impl Fn(&Principal) -> bool) -> Vec<SessionInfo> {
        let now = Instant::now();
        let live = self.live.lock();
        let mut v: Vec<(std::time::SystemTime, SessionInfo)> = live
            .values()
            .filter(|s| s.expires > now && filter(&s.principal))
            .map(|s| {
                let opened: chrono::DateTime<chrono::Utc> = s.opened.into();
                (
                    s.opened,
                    SessionInfo {
                        actor: s.principal.actor.clone(),
                        person: s.principal.person.clone(),
                        commune: s.principal.grant.tenant_name(),
                        opened: opened.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        expires_in: s.expires.saturating_duration_since(now).as_secs(),
                    },
                )
            })
            .collect();
        v.sort_by_key(|(t, _)| *t);
        v.into_iter().map(|(_, i)| i).collect()
    }

    /// How long a session lasts.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The session the request's cookie names, when it is live and whoever opened it still may: a
/// token neither revoked nor expired, a person neither disabled nor erased. A person's role and
/// commune are read afresh, so that a change applies at the next request.
pub fn current(state: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = cookie(headers, COOKIE)?;
    let mut s = state.sessions.get(id)?;
    let now = state.clock.now();
    let still = match (&s.principal.token, &s.principal.person) {
        (Some(t), _) => state
            .catalog
            .tokens()
            .iter()
            .any(|x| x.id == t.id && x.expires_at.is_none_or(|e| e > now)),
        (None, Some(p)) => match state.catalog.person(p) {
            Some(person) if !person.disabled => {
                s.principal.grant = person.grant;
                true
            }
            _ => false,
        },
        (None, None) => false,
    };
    if !still {
        state.sessions.remove(id);
        return None;
    }
    Some((id.to_owned(), s))
}

/// Where to go after a login: `next` when it is a path of this site — a single leading `/`, no
/// backslash, no control character (`//host`, `https://…`, or `/\t/host`, which browsers read as
/// `//host` once they drop the tab, are not) — else the supervision map.
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n
        }
        _ => "/supervision",
    }
}

/// `Set-Cookie` value opening a session.
pub fn set_cookie(id: &str, ttl: Duration) -> String {
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}", ttl.as_secs())
}

/// `Set-Cookie` value ending a session.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Middleware against cross-site request forgery on unsafe methods (anything but `GET`, `HEAD`
/// and `OPTIONS`):
/// - a request whose `Origin` is not this server is refused, whatever it carries; `Origin: null`
///   (sandboxed frames, cross-site redirects, `file:` pages) is not this server either;
/// - a request authenticated by the session cookie (no `Authorization` header) must echo the
///   session's CSRF token, whatever its content type: in `X-CSRF-Token`, or for an HTML form
///   (`application/x-www-form-urlencoded`) in its `csrf` field. A request without a live session
///   (the login form) has nothing to forge and goes through.
pub async fn csrf_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !unsafe_method {
        return next.run(req).await;
    }
    let h = req.headers();
    if let Some(origin) = h.get(header::ORIGIN) {
        let host = h.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let origin = origin.to_str().unwrap_or("null");
        let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
        if origin_host.is_empty() || origin_host != host {
            return ApiError::Forbidden(format!(
                "cross-site request refused: origin {:?} is not this server ({host:?})",
                origin.chars().take(100).collect::<String>()
            ))
            .into_response();
        }
    }
    if h.contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let Some((_, session)) = current(&state, h) else {
        return next.run(req).await;
    };
    if h.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) == Some(session.csrf.as_str()) {
        return next.run(req).await;
    }
    let form = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if form {
        // The form's fields are read here and the body handed on intact to the handler.
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                return ApiError::PayloadTooLarge(state.config.max_body_bytes).into_response();
            }
        };
        if form_field(&bytes, "csrf") == Some(session.csrf.as_bytes()) {
            return next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await;
        }
    }
    ApiError::Forbidden(
        "missing or wrong CSRF token (X-CSRF-Token header or csrf form field) for a request made \
         with the session cookie"
            .into(),
    )
    .into_response()
}

/// The raw value of field `name` in a URL-encoded form. CSRF tokens are hex, so they are compared
/// without percent-decoding (an encoded token is simply refused).
fn form_field<'a>(body: &'a [u8], name: &str) -> Option<&'a [u8]> {
    body.split(|&b| b == b'&').find_map(|kv| {
        let mut it = kv.splitn(2, |&b| b == b'=');
        (it.next()? == name.as_bytes()).then(|| it.next().unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "a=1; agora_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn form_fields_are_found_raw() {
        assert_eq!(form_field(b"a=1&csrf=abc&b=2", "csrf"), Some(&b"abc"[..]));
        assert_eq!(form_field(b"csrf", "csrf"), Some(&b""[..]));
        assert_eq!(form_field(b"xcsrf=abc", "csrf"), None);
        assert_eq!(form_field(b"", "csrf"), None);
    }

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::new(Duration::from_millis(30));
        let token = agora_store::catalog::TokenInfo {
            id: "t1".into(),
            name: "op".into(),
            scope: agora_store::catalog::Scope::Read,
            grant: agora_store::catalog::Scope::Read.grant(),
            device: None,
            created_at: agora_model::Timestamp::EPOCH,
            expires_at: None,
        };
        let token = Principal::of_token(token);
        let (id, sess) = s.create(token.clone());
        assert_eq!(s.get(&id).unwrap().csrf, sess.csrf);
        assert!(s.get("other").is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(s.get(&id).is_none(), "expired");
        let (id, _) = s.create(token.clone());
        s.remove(&id);
        assert!(s.get(&id).is_none(), "ended");
        // One principal keeps its newest sessions only.
        let s = Sessions::new(Duration::from_secs(60));
        let ids: Vec<String> = (0..MAX_PER_PRINCIPAL + 2)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(1));
                s.create(token.clone()).0
            })
            .collect();
        assert!(s.get(&ids[0]).is_none() && s.get(&ids[1]).is_none(), "the oldest ended");
        assert!(ids[2..].iter().all(|i| s.get(i).is_some()));
    }
}
