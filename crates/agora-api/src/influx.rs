//! InfluxDB compatibility beyond writes: the probes InfluxDB clients and tools send before they
//! write (`/ping`, `/health`, `/ready` and `/api/v2/ready`), answered as InfluxDB 1.8 answers
//! them, and InfluxDB 1.x's read API, `/query` with InfluxQL, which Grafana's InfluxDB data
//! source and the `influxdb` clients use. The language lives in `agora_query::influxql`; this
//! module reads the request (parameters in the URL or a form body, the token wherever InfluxDB
//! clients put it) and writes InfluxDB's answer and statuses.

use std::sync::atomic::Ordering;
use std::time::Duration;

use agora_model::permissions::Action;
use agora_query::influxql::{
    self, ContextArgs, Deadline, Epoch, Query, Statement, StatementResult,
};

use crate::policy::Principal;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::doc::{Problem, TooManyRequests};
use crate::error::ApiError;
use crate::extract::Json;

/// The InfluxDB version agora answers as: 1.8 (the last 1.x), which also takes 2.x's
/// `/api/v2/write`.
pub(crate) const VERSION: &str = "1.8.10";

/// Whether agora takes writes: started, and storage accepts them.
fn up(s: &AppState) -> bool {
    let h = s.store.health();
    s.ready.load(Ordering::Acquire) && h.accepting_writes && !h.wal_failing
}

/// InfluxDB's liveness probe.
#[utoipa::path(get, path = "/ping", tag = "health", security(()),
    responses(
        (status = 204, description = "Up; the version headers say which InfluxDB agora answers as",
            headers(
                ("X-Influxdb-Version" = String, description = "1.8.10"),
                ("X-Influxdb-Build" = String, description = "OSS"),
            )),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn ping() -> Response {
    (StatusCode::NO_CONTENT, [("x-influxdb-version", VERSION), ("x-influxdb-build", "OSS")])
        .into_response()
}

/// InfluxDB's health answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `influxdb`.
    name: &'static str,
    /// What the status means.
    message: &'static str,
    /// `pass` or `fail`.
    status: &'static str,
    /// Always empty.
    checks: Vec<String>,
    /// The InfluxDB version agora answers as.
    version: &'static str,
}

/// InfluxDB's health check: `pass` while agora takes writes.
#[utoipa::path(get, path = "/health", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready for queries and writes", body = Health),
        (status = 503, description = "Starting, or storage refuses writes", body = Health),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn health(State(s): State<AppState>) -> Response {
    let (status, code, message) = if up(&s) {
        ("pass", StatusCode::OK, "ready for queries and writes")
    } else {
        ("fail", StatusCode::SERVICE_UNAVAILABLE, "not ready: starting, or storage refuses writes")
    };
    let body = Health { name: "influxdb", message, status, checks: Vec::new(), version: VERSION };
    (code, Json(body)).into_response()
}

/// InfluxDB 2's readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: &'static str,
    /// When the server started.
    started: agora_model::Timestamp,
    /// For how long, as a Go duration (`1h2m3.5s`).
    up: String,
}

/// InfluxDB 2's readiness probe.
#[utoipa::path(get, path = "/api/v2/ready", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Starting, or storage refuses writes", body = Ready),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn ready(State(s): State<AppState>) -> Response {
    let (since, started) = s.started;
    let secs = since.elapsed().as_secs_f64();
    let (h, m, sec) = ((secs / 3600.0) as u64, ((secs % 3600.0) / 60.0) as u64, secs % 60.0);
    let up_for = match (h, m) {
        (0, 0) => format!("{sec:.3}s"),
        (0, _) => format!("{m}m{sec:.3}s"),
        _ => format!("{h}h{m}m{sec:.3}s"),
    };
    let code = if up(&s) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let status = if code == StatusCode::OK { "ready" } else { "starting" };
    (code, Json(Ready { status, started, up: up_for })).into_response()
}

/// InfluxDB 2's readiness probe at the path its clients call (`influxdb-client`'s `ready()`
/// asks `/ready`); the same answer as `/api/v2/ready`.
#[utoipa::path(get, path = "/ready", tag = "health", security(()),
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Starting, or storage refuses writes", body = Ready),
        (status = 429, response = TooManyRequests),
    ))]
pub(crate) async fn ready_root(state: State<AppState>) -> Response {
    ready(state).await
}

/// The time format of `/query` answers (InfluxDB's `epoch`).
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // For the API document only: the handler reads the parameter as text.
pub(crate) enum EpochUnit {
    /// Hours.
    #[schema(rename = "h")]
    H,
    /// Minutes.
    #[schema(rename = "m")]
    M,
    /// Seconds.
    #[schema(rename = "s")]
    S,
    /// Milliseconds (what Grafana asks for).
    #[schema(rename = "ms")]
    Ms,
    /// Microseconds.
    #[schema(rename = "u")]
    U,
    /// Nanoseconds.
    #[schema(rename = "ns")]
    Ns,
}

/// Parameters of `/query`, as InfluxDB 1.x takes them: in the URL, and for `POST` also in an
/// `application/x-www-form-urlencoded` body (which wins when both have one).
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct QueryParams {
    /// InfluxQL: one statement or several separated by `;` (`SELECT`, `SHOW DATABASES`, `SHOW
    /// MEASUREMENTS`, `SHOW TAG KEYS`, `SHOW TAG VALUES`, `SHOW FIELD KEYS`, `SHOW RETENTION
    /// POLICIES`, `CREATE DATABASE`). With `POST` it may be in the form body instead.
    #[param(
        example = "SELECT mean(\"pm10\") FROM \"air_quality\" WHERE time >= now() - 6h GROUP BY time(5m) fill(null)"
    )]
    q: Option<String>,
    /// The database: any name is accepted (agora is one database, `agora`).
    #[allow(dead_code)] // Accepted and ignored, as documented.
    db: Option<String>,
    /// Times as integers in this unit; without it, RFC 3339 strings.
    #[param(value_type = Option<EpochUnit>, inline)]
    epoch: Option<String>,
    /// The retention policy: any name is accepted (agora has one, `autogen`).
    #[allow(dead_code)] // Accepted and ignored, as documented.
    rp: Option<String>,
    /// A user name; the token can be given here when `p` is absent.
    u: Option<String>,
    /// The token (a read or admin token), as InfluxDB v1 clients send a password.
    p: Option<String>,
    /// Accepted; the answer is always one JSON line, which chunked clients read as one chunk.
    #[param(value_type = Option<bool>)]
    #[allow(dead_code)] // Accepted and ignored, as documented.
    chunked: Option<String>,
    /// Accepted and ignored (see `chunked`).
    #[param(value_type = Option<u32>)]
    #[allow(dead_code)] // Accepted and ignored, as documented.
    chunk_size: Option<String>,
}

impl QueryParams {
    /// The parameters of a URL query string and a form body (the body's first).
    fn from_forms(url: Option<&str>, body: Option<&[u8]>) -> Self {
        let mut pairs = body.map(form_pairs).unwrap_or_default();
        pairs.extend(form_pairs(url.unwrap_or("").as_bytes()));
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Self {
            q: get("q"),
            db: get("db"),
            epoch: get("epoch"),
            rp: get("rp"),
            u: get("u"),
            p: get("p"),
            chunked: get("chunked"),
            chunk_size: get("chunk_size"),
        }
    }
}

/// `application/x-www-form-urlencoded` pairs: `+` is a space, `%XX` a byte.
fn form_pairs(s: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

/// The form body of `POST /query`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // For the API document only: the body is decoded as pairs.
pub(crate) struct QueryForm {
    /// InfluxQL (as the `q` query parameter; Grafana sends it here).
    #[schema(example = "SHOW MEASUREMENTS")]
    q: Option<String>,
    /// As the `db` query parameter.
    db: Option<String>,
    /// As the `epoch` query parameter.
    epoch: Option<EpochUnit>,
}

/// The answer to `/query`: one result per statement.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueryResults {
    /// In the order of the statements. A statement that failed carries `error` (the HTTP status
    /// stays 200), and those after it `"not executed"`.
    results: Vec<StatementResult>,
}

/// An error of the whole request, as InfluxDB answers it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InfluxError {
    /// What went wrong (`error parsing query: found X, expected Y at line 1, char N`,
    /// `authorization failed`, `missing required parameter "q"`).
    error: String,
}

/// A body of InfluxDB's: compact JSON on one line, with InfluxDB's headers.
fn influx_json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let mut text = serde_json::to_string(body).unwrap_or_else(|_| "{}".into());
    text.push('\n');
    let mut r = (status, text).into_response();
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("x-influxdb-version", HeaderValue::from_static(VERSION));
    h.insert("x-influxdb-build", HeaderValue::from_static("OSS"));
    r
}

fn influx_error(status: StatusCode, error: impl Into<String>) -> Response {
    let mut r = influx_json(status, &InfluxError { error: error.into() });
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"InfluxDB\""));
    }
    r
}

/// A refusal: its status and message.
type Refusal = (StatusCode, String);

/// Read access, as the rest of the read API (a read or admin token, or `public_read`), with the
/// token wherever InfluxDB clients put it: `Authorization: Token`/`Bearer`, Basic (the password
/// or the user name is the token), `p` or `u`; or a dashboard session. A query of `CREATE
/// DATABASE` only reads nothing: any live token may send it (`needs` is `None`), as Telegraf's
/// v1 output does with its ingest token before it writes.
fn authorize(
    s: &AppState,
    h: &HeaderMap,
    p: &QueryParams,
    reads: bool,
) -> Result<Option<Principal>, Refusal> {
    let enough = |g: &agora_model::permissions::Grant| !reads || g.may(Action::View);
    if s.config.public_read {
        return Ok(None);
    }
    let mut candidates: Vec<String> = Vec::new();
    if let Some(v) = h.get(AUTHORIZATION) {
        let v = v.to_str().unwrap_or("").trim();
        let bad =
            || (StatusCode::UNAUTHORIZED, "unable to parse authentication credentials".to_owned());
        let (scheme, rest) = v.split_once(' ').ok_or_else(bad)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
            candidates.push(rest.to_owned());
        } else if scheme.eq_ignore_ascii_case("basic") {
            use base64::Engine as _;
            let decoded =
                base64::engine::general_purpose::STANDARD.decode(rest).map_err(|_| bad())?;
            let text = String::from_utf8(decoded).map_err(|_| bad())?;
            let (user, pass) = text.split_once(':').unwrap_or((&text, ""));
            candidates.push(pass.to_owned());
            candidates.push(user.to_owned());
        } else {
            return Err(bad());
        }
    }
    candidates.extend(p.p.iter().cloned());
    candidates.extend(p.u.iter().cloned());
    candidates.retain(|c| !c.is_empty());
    if candidates.is_empty() {
        // A dashboard session stands for the token it was opened with.
        if let Some((_, session)) = crate::session::current(s, h)
            && enough(&session.principal.grant)
        {
            return Ok(Some(session.principal));
        }
        return Err((
            StatusCode::UNAUTHORIZED,
            "authorization failed: send a read token (Authorization: Token <token>, Basic auth \
             with the token as password, or p=<token>)"
                .to_owned(),
        ));
    }
    let mut weak = None;
    for c in &candidates {
        if let Some(t) = s.catalog.authenticate(c) {
            if enough(&t.grant) {
                return Ok(Some(Principal::of_token(t)));
            }
            weak = Some(t);
        }
    }
    Err(match weak {
        Some(t) => (
            StatusCode::FORBIDDEN,
            format!(
                "error authorizing query: token {:?} is a {}, which does not read",
                t.name,
                t.grant.role()
            ),
        ),
        None => {
            (StatusCode::UNAUTHORIZED, "authorization failed: unknown or revoked token".to_owned())
        }
    })
}

/// How long the statements of one request may run: past it, the statement running answers an
/// error (`query took longer than 10 s`) and those after it are not executed.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// The most values (times included) the statements of one request answer together: twenty
/// times the most points of a raw query, a million rows of a time and a value.
fn max_cells(s: &AppState) -> usize {
    s.config.max_points.saturating_mul(20)
}

/// Whether a query's first word is `CREATE`: the only queries a token that may not read can
/// send (Telegraf's `CREATE DATABASE`), decided before the query is parsed.
fn begins_with_create(q: &str) -> bool {
    let word: String =
        q.trim_start().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    word.eq_ignore_ascii_case("CREATE")
}

/// Answer a query: each statement in turn; a failed statement's error goes in its result and
/// the statements after it are not executed, as InfluxDB does.
///
/// Who asks is checked before the query is parsed: parsing is work, and a query is outside
/// input. Only a query whose first word is `CREATE` gets as far with a token that may not read,
/// and it must then hold `CREATE DATABASE` statements only. The statements run on a blocking
/// thread (matching regexes over every device is work for the CPU, not the async workers), with
/// a deadline.
async fn answer(s: &AppState, h: &HeaderMap, p: QueryParams) -> Response {
    let q = p.q.as_deref().filter(|q| !q.trim().is_empty());
    let creates = q.is_some_and(begins_with_create);
    let who = match authorize(s, h, &p, !creates) {
        Ok(w) => w,
        Err((status, why)) => return influx_error(status, why),
    };
    let epoch = match Epoch::parse(p.epoch.as_deref()) {
        Ok(e) => e,
        Err(e) => return influx_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let Some(q) = q else {
        return influx_error(StatusCode::BAD_REQUEST, "missing required parameter \"q\"");
    };
    let query = match influxql::parse(q) {
        Ok(q) => q,
        Err(e) => return influx_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let creates_only =
        query.statements.iter().all(|s| matches!(s, Statement::CreateDatabase { .. }));
    // A query that reads is scoped by the credential that may read (not by the first one that
    // authenticated for its CREATE DATABASE).
    let who = if creates && !creates_only {
        match authorize(s, h, &p, true) {
            Ok(w) => w,
            Err((status, why)) => return influx_error(status, why),
        }
    } else {
        who
    };
    // Someone of a commune queries their commune's devices only.
    let state = crate::policy::scoped(s, who.as_ref());
    let deadline = Deadline::after(QUERY_TIMEOUT);
    let runtime = tokio::runtime::Handle::current();
    let task =
        tokio::task::spawn_blocking(move || runtime.block_on(run(&state, &query, epoch, deadline)));
    match task.await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "influxql query task failed");
            influx_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// Run the statements of a parsed query and write the answer.
async fn run(s: &AppState, query: &Query, epoch: Epoch, deadline: Deadline) -> Response {
    let canonical = |name: &str| s.pipeline.canonical_property(name);
    let ctx = influxql::Context::new(ContextArgs {
        catalog: s.catalog.as_ref(),
        store: s.store.as_ref(),
        now: s.clock.now(),
        budget: crate::query::budget(s),
        max_rows: s.config.max_points,
        max_cells: max_cells(s),
        deadline,
        canonical: &canonical,
    });
    let mut results = Vec::with_capacity(query.statements.len());
    let mut failed = false;
    for (i, stmt) in query.statements.iter().enumerate() {
        if failed {
            results.push(StatementResult::error(i, "not executed"));
            continue;
        }
        match influxql::execute(&ctx, stmt).await {
            Ok(a) => results.push(influxql::render(i, a, epoch)),
            Err(agora_query::Error::Store(e)) => {
                // A fault, not the query's: logged with its cause, answered without it.
                let e = ApiError::from(e);
                let (code, status) = e.code();
                if status.is_server_error() {
                    tracing::error!(code, error = %error_chain(&e), "influxql query failed");
                }
                return influx_error(status, e.to_string());
            }
            Err(e) => {
                failed = true;
                results.push(StatementResult::error(i, e.to_string()));
            }
        }
    }
    influx_json(StatusCode::OK, &QueryResults { results })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// Query with InfluxQL (InfluxDB 1.x)
///
/// InfluxDB 1.x's read API, so Grafana's InfluxDB data source (InfluxQL) and InfluxDB clients
/// read agora unchanged. Measurements are device kinds, the tags `device`, `site` and
/// `commune`, fields the properties — as line protocol writes them. `SELECT` answers `mean`,
/// `median`, `count`, `sum`, `min`, `max`, `first` and `last` (means of sound levels are energy
/// means) or raw fields, with `WHERE` on tags and time, `GROUP BY time(…)`, tags and
/// `fill(null|none|previous|linear|n)`; empty buckets are `null`, never 0 (but a `count` of no
/// point is 0, as in InfluxDB). A read token goes in `Authorization: Token`/`Bearer`, Basic auth
/// (the password or the user name) or `p`; it is checked before the query is parsed.
///
/// A statement that fails answers 200 with `error` in its result; a query that does not parse
/// answers 400 `{"error": "error parsing query: …"}`. Limits, each named in the error that
/// enforces it: 64 fields in a `SELECT`, 8192 characters of regexes in a statement, 100,000
/// buckets a series, 100,000 raw rows a series, the raw-point budget and twenty times the raw
/// rows in values answered (all the statements of a request together), and 10 s a request.
#[utoipa::path(get, path = "/query", tag = "query", security((), ("bearer" = [])),
    params(QueryParams),
    responses(
        (status = 200, description = "One result per statement", body = QueryResults),
        (status = 400, description = "No `q`, a bad `epoch`, or a query that does not parse", body = InfluxError),
        (status = 401, description = "No token, or an unknown or revoked one", body = InfluxError,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"InfluxDB\"`"))),
        (status = 403, description = "The token may not read", body = InfluxError),
        (status = 429, response = TooManyRequests),
        (status = 503, description = "Storage is unavailable", body = InfluxError),
    ))]
pub(crate) async fn query_get(State(s): State<AppState>, h: HeaderMap, uri: Uri) -> Response {
    answer(&s, &h, QueryParams::from_forms(uri.query(), None)).await
}

/// Query with InfluxQL (InfluxDB 1.x), parameters in a form body
///
/// The same as `GET /query`, as Grafana sends it in `POST` mode: `q` (and any other parameter)
/// in an `application/x-www-form-urlencoded` body or in the URL (the body wins). A body of
/// another type is ignored.
#[utoipa::path(post, path = "/query", tag = "query", security((), ("bearer" = [])),
    params(QueryParams),
    request_body(content = Option<QueryForm>, content_type = "application/x-www-form-urlencoded",
        description = "`q=SELECT+…` (and optionally `db`, `epoch`)"),
    responses(
        (status = 200, description = "One result per statement", body = QueryResults),
        (status = 400, description = "No `q`, a bad `epoch`, or a query that does not parse", body = InfluxError),
        (status = 401, description = "No token, or an unknown or revoked one", body = InfluxError,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"InfluxDB\"`"))),
        (status = 403, description = "The token may not read; or a cross-site request (problem+json)",
            content(
                (InfluxError = "application/json"),
                (Problem = "application/problem+json"),
            )),
        (status = 413, description = "The body is over the size limit", body = InfluxError),
        (status = 429, response = TooManyRequests),
        (status = 503, description = "Storage is unavailable", body = InfluxError),
    ))]
pub(crate) async fn query_post(
    State(s): State<AppState>,
    h: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let form = h.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| {
        c.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded")
    });
    let body = match body {
        Ok(b) => b,
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return influx_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body is larger than {} bytes", s.config.max_body_bytes),
            );
        }
        Err(r) => {
            return influx_error(
                StatusCode::BAD_REQUEST,
                format!("could not read the request body: {r}"),
            );
        }
    };
    let params = QueryParams::from_forms(uri.query(), form.then_some(&body[..]));
    answer(&s, &h, params).await
}

/// This module's operations in the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(ping, health, ready, ready_root, query_get, query_post))]
pub(crate) struct Doc;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_and_urls_decode_as_browsers_and_go_encode_them() {
        let p = QueryParams::from_forms(
            Some("db=iot&epoch=ms&q=SHOW+DATABASES"),
            Some(b"q=SELECT+mean%28%22value%22%29+FROM+%22cpu%22%3B%C3%A9&p=t%2Bk"),
        );
        assert_eq!(p.q.as_deref(), Some("SELECT mean(\"value\") FROM \"cpu\";é"));
        assert_eq!(p.db.as_deref(), Some("iot"));
        assert_eq!(p.epoch.as_deref(), Some("ms"));
        assert_eq!(p.p.as_deref(), Some("t+k"));
        let p = QueryParams::from_forms(Some("q=a%&u&q=second"), None);
        assert_eq!(p.q.as_deref(), Some("a%"));
        assert_eq!(p.u.as_deref(), Some(""));
        assert_eq!(form_pairs(b"x=%zz%4"), vec![("x".to_owned(), "%zz%4".to_owned())]);
    }
}
