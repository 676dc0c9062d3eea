//! Single sign-on through OpenID Connect (the city's Keycloak, ProConnect, Azure AD): the
//! authorization code flow with PKCE (RFC 7636, S256). `GET /login/oidc` sends the browser to the
//! provider with a fresh `state`, `nonce` and code challenge, kept here for ten minutes and tied
//! to the browser by a cookie; `GET /login/oidc/callback` exchanges the code (with the verifier
//! and the client secret), checks the ID token — signature by the provider's published keys
//! (RS256 or ES256 only, never `none`), issuer, audience, expiry, nonce — and opens a session for
//! the person it names: the one linked to this identity, else the one of this (verified) email,
//! linked then; else, when allowed, a person made from the token's role and commune claims. Roles
//! given by the provider's claims are applied at each login.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use agora_model::permissions::{self, Domain, Grant, Role};
use agora_store::catalog::{NewPerson, Person};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::policy::Principal;

/// Settings of the single sign-on.
#[derive(Debug, Clone, Default)]
pub struct OidcConfig {
    /// The provider's issuer URL (its discovery document is under
    /// `/.well-known/openid-configuration`).
    pub issuer: String,
    /// This application's client id at the provider.
    pub client_id: String,
    /// Its client secret (`client_secret_post`); none for a public client.
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: this server's public URL of
    /// `/login/oidc/callback`.
    pub redirect_url: String,
    /// Scopes asked (`openid` is always sent).
    pub scopes: Vec<String>,
    /// The claim holding the role (a dotted path such as `realm_access.roles` reaches inside
    /// objects; a list gives its first known role). Empty: roles are given in agora only.
    pub role_claim: String,
    /// The claim holding the commune's INSEE code (or `metropole`).
    pub commune_claim: String,
    /// The claim holding a department's domain.
    pub domain_claim: String,
    /// Provider role names → agora roles (`"agora-operateur" = "operator"`).
    pub role_map: HashMap<String, String>,
    /// Make a person at first login from the claims (else an administrator makes them first).
    pub create_people: bool,
    /// The login button's text (`ProConnect`, `Compte Métropole`…).
    pub label: String,
}

/// Endpoints from the provider's discovery document.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// A login under way.
#[derive(Debug)]
struct Pending {
    nonce: String,
    verifier: String,
    next: String,
    at: Instant,
}

/// Logins under way at most (a stranger asking for many gets the oldest dropped).
const MAX_PENDING: usize = 10_000;
/// How long a login may take at the provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Tolerated clock difference with the provider.
const LEEWAY_S: i64 = 60;
/// Cookie tying the callback to the browser that started the login.
const STATE_COOKIE: &str = "agora_oidc";

/// The single sign-on client.
#[derive(Debug)]
pub struct Oidc {
    cfg: OidcConfig,
    http: reqwest::Client,
    meta: tokio::sync::Mutex<Option<Metadata>>,
    keys: Mutex<Vec<Value>>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::fill(&mut b).expect("the operating system has no random source");
    B64.encode(b)
}

impl Oidc {
    /// A client of the provider `cfg` names (nothing is fetched before the first login).
    pub fn new(cfg: OidcConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client");
        Self {
            cfg,
            http,
            meta: tokio::sync::Mutex::new(None),
            keys: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The login button's text.
    pub fn label(&self) -> &str {
        if self.cfg.label.is_empty() { "SSO" } else { &self.cfg.label }
    }

    async fn metadata(&self) -> Result<Metadata, String> {
        let mut m = self.meta.lock().await;
        if let Some(m) = &*m {
            return Ok(m.clone());
        }
        let url =
            format!("{}/.well-known/openid-configuration", self.cfg.issuer.trim_end_matches('/'));
        let got: Metadata = self
            .http
            .get(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("discovery at {url} failed: {e}"))?
            .json()
            .await
            .map_err(|e| format!("discovery at {url}: not a discovery document: {e}"))?;
        if got.issuer.trim_end_matches('/') != self.cfg.issuer.trim_end_matches('/') {
            return Err(format!(
                "the provider says its issuer is {:?}, not {:?}",
                got.issuer, self.cfg.issuer
            ));
        }
        *m = Some(got.clone());
        Ok(got)
    }

    async fn fetch_keys(&self, meta: &Metadata) -> Result<(), String> {
        let jwks: Value = self
            .http
            .get(&meta.jwks_uri)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("keys at {} failed: {e}", meta.jwks_uri))?
            .json()
            .await
            .map_err(|e| format!("keys at {}: {e}", meta.jwks_uri))?;
        let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
        *self.keys.lock() = keys;
        Ok(())
    }

    /// Start a login: the provider's authorization URL and the state to put in the cookie.
    async fn begin(&self, next: &str) -> Result<(String, String), String> {
        let meta = self.metadata().await?;
        let (state, nonce, verifier) = (random(32), random(32), random(48));
        let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
        {
            let mut p = self.pending.lock();
            let now = Instant::now();
            p.retain(|_, x| now.duration_since(x.at) < PENDING_TTL);
            if p.len() >= MAX_PENDING
                && let Some(oldest) = p.iter().min_by_key(|(_, x)| x.at).map(|(k, _)| k.clone())
            {
                p.remove(&oldest);
            }
            p.insert(
                state.clone(),
                Pending { nonce: nonce.clone(), verifier, next: next.to_owned(), at: now },
            );
        }
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(self.cfg.scopes.iter().filter(|s| *s != "openid").cloned());
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", &self.cfg.client_id),
            ("redirect_uri", &self.cfg.redirect_url),
            ("scope", &scopes.join(" ")),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .map_err(|e| e.to_string())?;
        let sep = if meta.authorization_endpoint.contains('?') { '&' } else { '?' };
        Ok((format!("{}{sep}{query}", meta.authorization_endpoint), state))
    }

    /// Finish a login: the ID token's claims, checked, and where to go next.
    async fn finish(
        &self,
        code: &str,
        state: &str,
        now_s: i64,
    ) -> Result<(Map<String, Value>, String), String> {
        let pending = self
            .pending
            .lock()
            .remove(state)
            .filter(|p| p.at.elapsed() < PENDING_TTL)
            .ok_or("unknown or expired login (state): start again")?;
        let meta = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.cfg.redirect_url.as_str()),
            ("client_id", self.cfg.client_id.as_str()),
            ("code_verifier", pending.verifier.as_str()),
        ];
        if let Some(s) = &self.cfg.client_secret {
            form.push(("client_secret", s));
        }
        let resp = self
            .http
            .post(&meta.token_endpoint)
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("token endpoint: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().await.map_err(|e| format!("token endpoint: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "the provider refused the code ({status}): {}",
                body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("")
            ));
        }
        let id_token = body["id_token"].as_str().ok_or("the provider sent no ID token")?;
        let header = jwt_header(id_token)?;
        let kid = header["kid"].as_str().map(str::to_owned);
        if self.find_key(kid.as_deref()).is_none() {
            // A key the provider rolled over to since the last fetch.
            self.fetch_keys(&meta).await?;
        }
        let key =
            self.find_key(kid.as_deref()).ok_or("the ID token's key is not the provider's")?;
        let claims = verify_id_token(
            id_token,
            &key,
            &meta.issuer,
            &self.cfg.client_id,
            &pending.nonce,
            now_s,
        )?;
        Ok((claims, pending.next))
    }

    fn find_key(&self, kid: Option<&str>) -> Option<Value> {
        let keys = self.keys.lock();
        match kid {
            Some(k) => keys.iter().find(|j| j["kid"].as_str() == Some(k)).cloned(),
            None if keys.len() == 1 => keys.first().cloned(),
            None => None,
        }
    }

    /// The grant the claims give, if they give one (`None`: no role claim configured or sent).
    fn grant_of(&self, claims: &Map<String, Value>) -> Result<Option<Grant>, String> {
        if self.cfg.role_claim.is_empty() {
            return Ok(None);
        }
        let Some(v) = claim(claims, &self.cfg.role_claim) else { return Ok(None) };
        let names: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let role = names
            .iter()
            .filter_map(|n| self.cfg.role_map.get(*n).map(String::as_str).or(Some(*n)))
            .find_map(|n| Role::parse(n).filter(|r| *r != Role::Device))
            .ok_or_else(|| format!("the provider's {} names no agora role", self.cfg.role_claim))?;
        let commune =
            claim(claims, &self.cfg.commune_claim).and_then(Value::as_str).ok_or_else(|| {
                format!("the provider's token has no {} claim", self.cfg.commune_claim)
            })?;
        let commune = permissions::parse_tenant(commune)?;
        let domain = claim(claims, &self.cfg.domain_claim)
            .and_then(Value::as_str)
            .map(Domain::parse_named)
            .transpose()?;
        Grant::new(role, commune, domain).map(Some)
    }
}

/// A claim by dotted path.
fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return None;
    }
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

fn jwt_header(token: &str) -> Result<Value, String> {
    let h = token.split('.').next().ok_or("not a JWT")?;
    let bytes = B64.decode(h).map_err(|_| "a JWT header that is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|_| "a JWT header that is not JSON".into())
}

/// Check an ID token's signature with `jwk` and its claims; its claims.
pub fn verify_id_token(
    token: &str,
    jwk: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now_s: i64,
) -> Result<Map<String, Value>, String> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("an ID token is three base64url parts".into());
    };
    let header = jwt_header(token)?;
    let sig = B64.decode(sig).map_err(|_| "a signature that is not base64url")?;
    let signed = format!("{h}.{p}");
    let b = |k: &str| -> Result<Vec<u8>, String> {
        B64.decode(jwk[k].as_str().ok_or_else(|| format!("a key without {k}"))?)
            .map_err(|_| format!("a key whose {k} is not base64url"))
    };
    use ring::signature as sg;
    let ok = match (header["alg"].as_str(), jwk["kty"].as_str()) {
        (Some("RS256"), Some("RSA")) => sg::RsaPublicKeyComponents { n: b("n")?, e: b("e")? }
            .verify(&sg::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &sig)
            .is_ok(),
        (Some("ES256"), Some("EC")) if jwk["crv"] == "P-256" => {
            let mut point = vec![4u8];
            point.extend(b("x")?);
            point.extend(b("y")?);
            sg::UnparsedPublicKey::new(&sg::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed.as_bytes(), &sig)
                .is_ok()
        }
        (alg, kty) => {
            return Err(format!(
                "ID token signed with {alg:?} by a {kty:?} key: only RS256 and ES256 are accepted"
            ));
        }
    };
    if !ok {
        return Err("the ID token's signature does not verify".into());
    }
    let claims: Map<String, Value> = B64
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("an ID token whose claims are not JSON")?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(format!("ID token of issuer {:?}, not {issuer:?}", claims.get("iss")));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == client_id,
        Some(Value::Array(a)) => {
            a.iter().any(|x| x == client_id)
                && (a.len() == 1 || claims.get("azp").and_then(Value::as_str) == Some(client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(format!("ID token not for this client ({client_id})"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or("an ID token without exp")?;
    if exp + LEEWAY_S < now_s {
        return Err("the ID token has expired".into());
    }
    if claims.get("iat").and_then(Value::as_i64).is_some_and(|iat| iat > now_s + LEEWAY_S) {
        return Err("an ID token issued in the future".into());
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err("the ID token's nonce is not this login's".into());
    }
    if claims.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err("an ID token without sub".into());
    }
    Ok(claims)
}

/// Query of `GET /login/oidc`.
#[derive(Debug, Deserialize)]
pub struct Begin {
    next: Option<String>,
}

fn failed(why: &str) -> Response {
    tracing::warn!(%why, "single sign-on refused");
    let mut r = Redirect::to("/login?error=sso").into_response();
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}=; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// Where to go after login: a path of this server only.
fn local(next: Option<&str>) -> String {
    crate::session::safe_next(next).to_owned()
}

/// `GET /login/oidc`: off to the provider.
pub async fn begin(State(s): State<AppState>, Query(q): Query<Begin>) -> Response {
    let Some(oidc) = &s.oidc else {
        return crate::error::ApiError::NotFound("single sign-on is not configured".into())
            .into_response();
    };
    match oidc.begin(&local(q.next.as_deref())).await {
        Ok((url, state)) => {
            let mut r = Redirect::to(&url).into_response();
            // Lax: the provider's redirect back is a top-level cross-site navigation.
            let c = format!(
                "{STATE_COOKIE}={state}; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age={}",
                PENDING_TTL.as_secs()
            );
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => failed(&e),
    }
}

/// Query of the callback.
#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The person the claims name, made or linked as the configuration allows.
async fn person_for(
    s: &AppState,
    oidc: &Oidc,
    claims: &Map<String, Value>,
) -> Result<Person, String> {
    let iss = claims["iss"].as_str().unwrap_or_default();
    let sub = claims["sub"].as_str().unwrap_or_default();
    let subject = format!("{iss} {sub}");
    let grant = oidc.grant_of(claims)?;
    let email = claims.get("email").and_then(Value::as_str);
    // Linking by email only when the provider vouches for it: an address anyone could claim
    // would take over the account that has it.
    let verified = claims.get("email_verified").and_then(Value::as_bool) == Some(true);
    let cat = &s.catalog;
    let person = match cat.person_by_subject(&subject) {
        Some(p) => p,
        None => match email.filter(|_| verified).and_then(|e| cat.person_by_email(e)) {
            Some(p) if p.subject.is_none() => {
                cat.link_subject(&p.id, &subject).await.map_err(|e| e.to_string())?;
                p
            }
            Some(_) => return Err("this email is linked to another identity".into()),
            None if oidc.cfg.create_people => {
                let grant = grant
                    .clone()
                    .ok_or("no account, and the provider gives no role and commune to make one")?;
                let email = email.ok_or("no account, and the provider gives no email")?;
                let name = claims
                    .get("name")
                    .and_then(Value::as_str)
                    .or(claims.get("given_name").and_then(Value::as_str))
                    .unwrap_or(email);
                cat.create_person(NewPerson {
                    email: email.to_owned(),
                    name: name.to_owned(),
                    grant,
                    password: None,
                    subject: Some(subject),
                })
                .await
                .map_err(|e| e.to_string())?
            }
            None => {
                return Err(format!(
                    "no account for {}: an administrator makes it first",
                    email.unwrap_or(sub)
                ));
            }
        },
    };
    if person.disabled {
        return Err(format!("the account of {} is disabled", person.email));
    }
    // The provider's roles are the truth when it sends them.
    match grant {
        Some(g) if g != person.grant => {
            cat.update_person(&person.id, None, Some(g), None).await.map_err(|e| e.to_string())
        }
        _ => Ok(person),
    }
}

/// `GET /login/oidc/callback`: back from the provider.
pub async fn callback(
    State(s): State<AppState>,
    h: HeaderMap,
    Query(q): Query<Callback>,
) -> Response {
    let Some(oidc) = s.oidc.clone() else {
        return crate::error::ApiError::NotFound("single sign-on is not configured".into())
            .into_response();
    };
    if let Some(e) = &q.error {
        return failed(&format!(
            "the provider answered {e}: {}",
            q.error_description.as_deref().unwrap_or("")
        ));
    }
    let (Some(code), Some(state)) = (&q.code, &q.state) else {
        return failed("a callback without code or state");
    };
    if crate::session::cookie(&h, STATE_COOKIE) != Some(state.as_str()) {
        return failed("the login was not started in this browser");
    }
    let now = s.clock.now().as_nanos() / 1_000_000_000;
    let (claims, next) = match oidc.finish(code, state, now).await {
        Ok(x) => x,
        Err(e) => return failed(&e),
    };
    let person = match person_for(&s, &oidc, &claims).await {
        Ok(p) => p,
        Err(e) => return failed(&e),
    };
    let principal = Principal::of_person(&person);
    tracing::info!(who = %principal.actor, "single sign-on login");
    let actor = principal.actor.clone();
    let (id, _) = s.sessions.create(principal);
    let mut r = Redirect::to(&next).into_response();
    r.extensions_mut().insert(crate::audit::AuditNote { actor: Some(actor), ..Default::default() });
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&crate::session::set_cookie(&id, s.sessions.ttl())) {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{STATE_COOKIE}=; Path=/login/oidc; HttpOnly; SameSite=Lax; Max-Age=0"
    )) {
        h.append(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn es256(claims: &Value) -> (String, Value) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let public = kp.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1",
            "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..65])});
        let h = B64.encode(json!({"alg": "ES256", "kid": "k1"}).to_string());
        let p = B64.encode(claims.to_string());
        let sig = kp.sign(&rng, format!("{h}.{p}").as_bytes()).unwrap();
        (format!("{h}.{p}.{}", B64.encode(sig.as_ref())), jwk)
    }

    #[test]
    fn id_tokens_are_checked_claim_by_claim() {
        let good = json!({"iss": "https://sso.example", "aud": "agora", "sub": "u1",
            "exp": 2_000, "iat": 1_000, "nonce": "n"});
        let (t, k) = es256(&good);
        let c = verify_id_token(&t, &k, "https://sso.example", "agora", "n", 1_500).unwrap();
        assert_eq!(c["sub"], "u1");
        let bad = |claims: Value, now: i64| {
            let (t, k) = es256(&claims);
            verify_id_token(&t, &k, "https://sso.example", "agora", "n", now).unwrap_err()
        };
        let with = |k: &str, v: Value| {
            let mut c = good.clone();
            c[k] = v;
            c
        };
        assert!(bad(with("iss", json!("https://evil.example")), 1_500).contains("issuer"));
        assert!(bad(with("aud", json!("other")), 1_500).contains("client"));
        assert!(
            bad(with("aud", json!(["agora", "other"])), 1_500).contains("client"),
            "azp needed"
        );
        assert!(bad(good.clone(), 2_100).contains("expired"));
        assert!(bad(with("nonce", json!("m")), 1_500).contains("nonce"));
        assert!(bad(with("iat", json!(9_000)), 1_500).contains("future"));
        // Another key's signature, a tampered payload, alg none.
        let (_, other) = es256(&good);
        assert!(
            verify_id_token(&t, &other, "https://sso.example", "agora", "n", 1_500)
                .unwrap_err()
                .contains("signature")
        );
        let mut parts: Vec<&str> = t.split('.').collect();
        let forged = B64.encode(with("sub", json!("admin")).to_string());
        parts[1] = &forged;
        assert!(
            verify_id_token(&parts.join("."), &k, "https://sso.example", "agora", "n", 1_500)
                .unwrap_err()
                .contains("signature")
        );
        let none = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), B64.encode(good.to_string()));
        assert!(
            verify_id_token(&none, &k, "https://sso.example", "agora", "n", 1_500)
                .unwrap_err()
                .contains("only RS256 and ES256")
        );
    }

    #[test]
    fn roles_come_from_claims_through_the_map() {
        let cfg = OidcConfig {
            role_claim: "realm_access.roles".into(),
            commune_claim: "commune".into(),
            domain_claim: "domain".into(),
            role_map: [("agora-operateur".to_owned(), "operator".to_owned())].into(),
            ..Default::default()
        };
        let o = Oidc::new(cfg);
        let c = |v: Value| v.as_object().unwrap().clone();
        let g = o
            .grant_of(&c(json!({"realm_access": {"roles": ["offline", "agora-operateur"]}, "commune": "13001"})))
            .unwrap()
            .unwrap();
        assert_eq!((g.role(), g.tenant_name()), (Role::Operator, "13001".to_owned()));
        let g = o
            .grant_of(&c(json!({"realm_access": {"roles": ["department"]}, "commune": "metropole", "domain": "lighting"})))
            .unwrap()
            .unwrap();
        assert_eq!(g.domain(), Some(Domain::Lighting));
        assert!(
            o.grant_of(&c(json!({"realm_access": {"roles": ["mayor"]}, "commune": "13001"})))
                .is_err()
        );
        assert!(
            o.grant_of(&c(json!({"realm_access": {"roles": ["device"]}, "commune": "13001"})))
                .is_err()
        );
        assert!(
            o.grant_of(&c(json!({"realm_access": {"roles": ["viewer"]}}))).is_err(),
            "no commune"
        );
        assert_eq!(o.grant_of(&c(json!({"commune": "13001"}))).unwrap(), None);
        assert_eq!(local(Some("//evil.example")), "/supervision");
        assert_eq!(local(Some("/alerts")), "/alerts");
        assert_eq!(local(Some("/a\u{7f}b")), "/supervision");
        assert_eq!(local(Some("/\\evil")), "/supervision");
    }
}
