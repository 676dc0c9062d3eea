//! The pages: HTML shells in the visitor's language with the header, navigation and the settings
//! their script needs, plus login and logout. Operator pages redirect to the login form when no
//! session is open.

use std::fmt::Write as _;
use std::sync::Arc;

use agora_api::AppState;
use agora_api::policy::{Principal, Scoped};
use agora_api::session::safe_next;
use agora_api::session::{self, Session};
use agora_model::permissions::Action;
use agora_store::catalog::LoginRefusal;
use axum::Form;
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value as JsonValue, json};

use crate::WebConfig;
use crate::assets::version;
use crate::i18n::{self, Lang};

pub(crate) type Cfg = Extension<Arc<WebConfig>>;

/// Query parameters every page understands.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    pub(crate) lang: Option<String>,
    pub(crate) next: Option<String>,
    pub(crate) rotate: Option<u32>,
    /// `sso`: the single sign-on just failed (the server's log says why).
    pub(crate) error: Option<String>,
}

/// Escape text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// JSON to embed in a `<script type="application/json">`: `<` is escaped so that no string can
/// close the element.
fn embed(v: &JsonValue) -> String {
    serde_json::to_string(v).unwrap_or_default().replace('<', "\\u003c")
}

/// The origin of a tile URL template, for the Content Security Policy (`{s}` subdomains → `*`).
fn tile_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split('/').next()?.replace("{s}", "*");
    Some(format!("{scheme}://{host}"))
}

/// Who is looking at a page.
pub(crate) enum Viewer {
    Public,
    Operator(Box<Session>),
}

/// One page to render.
pub(crate) struct Page {
    /// Identifier, also the body's class and the script's `page` setting.
    id: &'static str,
    title: String,
    body: String,
    script: Option<&'static str>,
    leaflet: bool,
    uplot: bool,
    /// More settings for the script.
    data: JsonValue,
    /// Kiosk pages have no header.
    bare: bool,
}

impl Page {
    pub(crate) fn new(id: &'static str, title: String, body: String) -> Self {
        Self {
            id,
            title,
            body,
            script: None,
            leaflet: false,
            uplot: false,
            data: json!({}),
            bare: false,
        }
    }

    /// Its module in `assets/js/`.
    pub(crate) fn script(mut self, name: &'static str) -> Self {
        self.script = Some(name);
        self
    }

    /// It draws a map (Leaflet).
    pub(crate) fn map(mut self) -> Self {
        self.leaflet = true;
        self
    }

    /// It draws charts (uPlot).
    pub(crate) fn charts(mut self) -> Self {
        self.uplot = true;
        self
    }

    /// More settings for its script.
    pub(crate) fn data(mut self, v: JsonValue) -> Self {
        self.data = v;
        self
    }

    /// No header (kiosk).
    fn bare(mut self) -> Self {
        self.bare = true;
        self
    }
}

fn nav_link(o: &mut String, href: &str, label: &str, current: bool) {
    let aria = if current { " aria-current=\"page\"" } else { "" };
    let _ = write!(o, "<li><a href=\"{}\"{aria}>{}</a></li>", esc(href), esc(label));
}

fn header_html(lang: Lang, cfg: &WebConfig, viewer: &Viewer, page: &Page, path: &str) -> String {
    let t = |k: &str| lang.t(k).to_owned();
    let mut o = String::new();
    let city = if cfg.city.is_empty() { String::new() } else { format!(" · {}", esc(&cfg.city)) };
    let _ = write!(
        o,
        "<header class=\"top\"><a class=\"brand\" href=\"/\"><span aria-hidden=\"true\">◉</span> agora{city}</a><nav aria-label=\"{}\"><ul>",
        esc(&t("nav.label"))
    );
    match viewer {
        Viewer::Public => {
            nav_link(&mut o, "/", &t("nav.map"), page.id == "public-map");
            nav_link(&mut o, "/commerce", &t("nav.commerce"), page.id == "commerce");
            nav_link(&mut o, "/visiter", &t("nav.visit"), page.id.starts_with("visit"));
            nav_link(&mut o, "/signaler", &t("nav.report"), page.id.starts_with("report"));
            nav_link(&mut o, "/open-data", &t("nav.open_data"), page.id.starts_with("open-data"));
            nav_link(&mut o, "/login", &t("nav.operators"), page.id == "login");
        }
        Viewer::Operator(s) => {
            nav_link(&mut o, "/", &t("nav.public"), page.id == "public-map");
            nav_link(&mut o, "/supervision", &t("nav.supervision"), page.id == "supervision");
            nav_link(&mut o, "/supervision/fleet", &t("nav.fleet"), page.id == "fleet");
            nav_link(&mut o, "/supervision/forecasts", &t("nav.forecasts"), page.id == "forecasts");
            nav_link(&mut o, "/explorer", &t("nav.explorer"), page.id == "explorer");
            nav_link(&mut o, "/commerce", &t("nav.commerce"), page.id == "commerce");
            nav_link(
                &mut o,
                "/services/lighting",
                &t("nav.services"),
                page.id.starts_with("services"),
            );
            nav_link(&mut o, "/decideurs", &t("nav.decisions"), page.id.starts_with("decisions"));
            nav_link(&mut o, "/signalements", &t("nav.tickets"), page.id == "tickets");
            nav_link(&mut o, "/open-data", &t("nav.open_data"), page.id.starts_with("open-data"));
            if s.principal.grant.may(Action::ManagePeople) {
                nav_link(&mut o, "/admin", &t("nav.admin"), page.id == "admin");
            }
            let _ = write!(
                o,
                "<li><a href=\"/alerts\"{}>{} <span class=\"badge\" id=\"alert-badge\" hidden></span></a></li>",
                if page.id == "alerts" { " aria-current=\"page\"" } else { "" },
                esc(&t("nav.alerts"))
            );
            let _ = write!(
                o,
                "<li><form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" class=\"link\" title=\"{}\">{} ({})</button></form></li>",
                esc(&s.csrf),
                esc(&t("nav.logout")),
                esc(&t("nav.logout")),
                esc(&s.principal.actor)
            );
        }
    }
    let (other, label) = match lang {
        Lang::Fr => ("en", "English"),
        Lang::En => ("fr", "Français"),
    };
    let _ = write!(
        o,
        "<li><a href=\"{}?lang={other}\" hreflang=\"{other}\" lang=\"{other}\">{label}</a></li></ul></nav></header>",
        esc(path)
    );
    o
}

pub(crate) fn render(
    lang: Lang,
    set_lang: bool,
    cfg: &WebConfig,
    viewer: &Viewer,
    path: &str,
    page: Page,
) -> Response {
    let v = version();
    let t = |k: &str| lang.t(k).to_owned();
    let mut css = format!("<link rel=\"stylesheet\" href=\"/assets/app.css?v={v}\">");
    let mut scripts = String::new();
    if page.leaflet {
        css.insert_str(
            0,
            &format!("<link rel=\"stylesheet\" href=\"/assets/vendor/leaflet/leaflet.css?v={v}\">"),
        );
        let _ =
            write!(scripts, "<script src=\"/assets/vendor/leaflet/leaflet.js?v={v}\"></script>");
    }
    if page.uplot {
        css.insert_str(
            0,
            &format!("<link rel=\"stylesheet\" href=\"/assets/vendor/uplot/uPlot.min.css?v={v}\">"),
        );
        let _ = write!(
            scripts,
            "<script src=\"/assets/vendor/uplot/uPlot.iife.min.js?v={v}\"></script>"
        );
    }
    if let Some(s) = page.script {
        let _ =
            write!(scripts, "<script type=\"module\" src=\"/assets/js/{s}.js?v={v}\"></script>");
    }
    let (operator, csrf) = match viewer {
        Viewer::Public => (JsonValue::Null, JsonValue::Null),
        Viewer::Operator(s) => {
            let g = &s.principal.grant;
            let may: Vec<&str> = agora_model::permissions::Action::ALL
                .into_iter()
                .filter(|a| g.may(*a))
                .map(|a| a.as_str())
                .collect();
            (
                json!({"name": s.principal.actor, "role": g.role(), "commune": g.tenant_name(),
                       "domain": g.domain(), "may": may}),
                json!(s.csrf),
            )
        }
    };
    let mut settings = json!({
        "page": page.id, "lang": lang.code(), "operator": operator, "csrf": csrf,
        "tile_url": cfg.tile_url, "tile_attribution": cfg.tile_attribution,
        "kiosk_rotate_secs": cfg.kiosk_rotate_secs, "asset_version": v,
    });
    if let (Some(o), Some(extra)) = (settings.as_object_mut(), page.data.as_object()) {
        o.extend(extra.clone());
    }
    let header =
        if page.bare { String::new() } else { header_html(lang, cfg, viewer, &page, path) };
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title} — agora</title><link rel=\"icon\" href=\"data:,\">{css}</head><body class=\"page-{id}\"><a class=\"skip\" href=\"#main\">{skip}</a>{header}<main id=\"main\" tabindex=\"-1\">{body}</main><div id=\"announcer\" class=\"sr-only\" aria-live=\"polite\"></div><script id=\"agora-settings\" type=\"application/json\">{settings}</script><script id=\"agora-i18n\" type=\"application/json\">{dict}</script>{scripts}</body></html>",
        lang = lang.code(),
        title = esc(&page.title),
        id = page.id,
        skip = esc(&t("skip")),
        body = page.body,
        settings = embed(&settings),
        dict = embed(&json!(lang.dict())),
    );
    let img = cfg.tile_url.as_deref().and_then(tile_origin).unwrap_or_default();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: {img}; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    );
    let mut resp = (StatusCode::OK, html).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(csp.trim()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if set_lang
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            i18n::COOKIE,
            lang.code()
        ))
    {
        h.append(header::SET_COOKIE, v);
    }
    resp
}

pub(crate) fn lang_of(q: &PageQuery, h: &HeaderMap) -> (Lang, bool) {
    let asked = q.lang.as_deref().and_then(Lang::parse);
    (Lang::of(q.lang.as_deref(), h), asked.is_some())
}

fn public_off(s: &AppState, lang: Lang) -> Option<Response> {
    (!s.config.public_map)
        .then(|| (StatusCode::NOT_FOUND, lang.t("public.off").to_owned()).into_response())
}

/// The open session allowing reads, or a redirect to the login form.
fn operator(s: &AppState, h: &HeaderMap, path: &str) -> Result<Session, Redirect> {
    match session::current(s, h) {
        Some((_, sess)) if sess.principal.grant.may(Action::View) => Ok(sess),
        _ => Err(Redirect::to(&format!("/login?next={}", urlencode(path)))),
    }
}

pub(crate) fn viewer(s: &AppState, h: &HeaderMap) -> Viewer {
    match session::current(s, h) {
        Some((_, sess)) if sess.principal.grant.may(Action::View) => {
            Viewer::Operator(Box::new(sess))
        }
        _ => Viewer::Public,
    }
}

fn urlencode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

fn map_body(lang: Lang, operator: bool) -> String {
    let t = |k: &str| esc(lang.t(k));
    let (title, intro) = if operator {
        (t("supervision.title"), t("supervision.intro"))
    } else {
        (t("map.title"), t("map.intro"))
    };
    format!(
        "<div class=\"map-layout\"><section class=\"side\" aria-labelledby=\"side-title\"><h1 id=\"side-title\">{title}</h1><p class=\"intro\">{intro}</p>\
<fieldset id=\"layers\"><legend>{layers}</legend></fieldset><div id=\"legend\" class=\"legend\" aria-live=\"polite\"></div>\
<div id=\"panel\" class=\"panel\" tabindex=\"-1\" aria-live=\"polite\"></div>\
<h2>{places}</h2><ul id=\"places\" class=\"places\"></ul><p class=\"updated\" id=\"updated\"></p></section>\
<div id=\"map\" class=\"map\" role=\"region\" aria-label=\"{map_label}\"></div></div>",
        layers = t("map.layers"),
        places = t("map.places"),
        map_label = t("map.label"),
    )
}

pub(crate) async fn public_map(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    if let Some(r) = public_off(&s, lang) {
        return r;
    }
    let page = Page::new("public-map", lang.t("map.title").to_owned(), map_body(lang, false))
        .script("map")
        .map()
        .charts()
        .data(json!({"mode": "public", "today": today_in_paris(&s)}));
    render(lang, set, &cfg, &viewer(&s, &h), "/", page)
}

pub(crate) async fn supervision(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/supervision") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let page =
        Page::new("supervision", lang.t("supervision.title").to_owned(), map_body(lang, true))
            .script("map")
            .map()
            .charts()
            .data(json!({"mode": "operator", "today": today_in_paris(&s)}));
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/supervision", page)
}

/// A place shown to the public: 404 when the public map is off or the place is unknown.
fn public_place(
    s: &AppState,
    site: &str,
    lang: Lang,
) -> Result<agora_store::catalog::Site, (StatusCode, String)> {
    let missing = |k: &str| (StatusCode::NOT_FOUND, lang.t(k).to_owned());
    if !s.config.public_map {
        return Err(missing("public.off"));
    }
    s.catalog
        .sites()
        .into_iter()
        .find(|x| x.id.as_str() == site)
        .ok_or_else(|| missing("place.unknown"))
}

pub(crate) async fn place(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(site): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    let place = match public_place(&s, &site, lang) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<article class=\"place\"><p class=\"crumbs\"><a href=\"/\">{back}</a></p><h1>{name}</h1>\
<section aria-labelledby=\"now-title\"><h2 id=\"now-title\">{now}</h2><div id=\"now\" class=\"cards\" aria-live=\"polite\"></div></section>\
<section id=\"tomorrow-box\" aria-labelledby=\"tomorrow-title\" hidden><h2 id=\"tomorrow-title\">{tomorrow}</h2><div id=\"tomorrow\" class=\"cards\" aria-live=\"polite\"></div><p class=\"intro\">{tomorrow_note}</p></section>\
<section aria-labelledby=\"env-title\"><h2 id=\"env-title\">{env}</h2><div id=\"environment\" aria-live=\"polite\"></div></section>\
<section aria-labelledby=\"charts-title\"><h2 id=\"charts-title\">{charts}</h2><div id=\"charts\" class=\"charts\"></div></section>\
<p class=\"data-links\"><a href=\"/signaler?site={id}\">{report}</a> · <a href=\"/kiosk/{id}\">{kiosk}</a> · <span id=\"downloads\"></span></p></article>",
        report = t("reports.file_here"),
        back = t("place.back"),
        name = esc(&place.name),
        now = t("place.now"),
        tomorrow = t("tomorrow.title"),
        tomorrow_note = t("tomorrow.note"),
        charts = t("place.charts"),
        env = t("env.title"),
        kiosk = t("place.kiosk"),
        id = esc(place.id.as_str()),
    );
    let page = Page::new("place", place.name.clone(), body)
        .script("place")
        .charts()
        .data(json!({"site": place.id, "site_name": place.name, "today": today_in_paris(&s)}));
    let path = format!("/places/{site}");
    render(lang, set, &cfg, &viewer(&s, &h), &path, page)
}

/// The commerce observatory: footfall today against the usual, the week against last year, the
/// weekday × hour heat map, the ranking of places, the events calendar and the impact studies.
/// Public like the place pages (hourly figures at the finest); operators who may modify see the
/// forms to declare events and interventions.
pub(crate) async fn commerce(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    let viewer = viewer(&s, &h);
    if matches!(viewer, Viewer::Public) && !cfg.public_map {
        return Redirect::to("/login?next=/commerce").into_response();
    }
    let t = |k: &str| esc(lang.t(k));
    let section = |id: &str, title: &str| {
        format!(
            "<section aria-labelledby=\"{id}-title\"><h2 id=\"{id}-title\">{title}</h2><div id=\"{id}\" aria-live=\"polite\"></div></section>"
        )
    };
    let body = format!(
        "<article class=\"commerce\"><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<form id=\"pick\" class=\"explorer\"><label>{place} <select id=\"site\" name=\"site\"></select></label> \
<label>{date} <input type=\"date\" id=\"date\" name=\"date\"></label></form>\
{today}{compare}{heat}{ranking}{index}{events}{studies}</article>",
        title = t("commerce.title"),
        intro = t("commerce.intro"),
        place = t("commerce.place"),
        date = t("commerce.date"),
        today = section("today", &t("commerce.today")),
        compare = section("compare", &t("commerce.compare")),
        heat = section("heat", &t("commerce.heat")),
        ranking = section("ranking", &t("commerce.ranking")),
        index = section("index", &t("commerce.index_title")),
        events = section("events", &t("commerce.events")),
        studies = section("studies", &t("commerce.studies")),
    );
    let page = Page::new("commerce", lang.t("commerce.title").to_owned(), body)
        .script("commerce")
        .data(json!({"today": today_in_paris(&s)}));
    render(lang, set, &cfg, &viewer, "/commerce", page)
}

/// Today's date in Europe/Paris (the indicators' days).
fn today_in_paris(s: &AppState) -> String {
    s.clock.now().to_datetime().with_timezone(&chrono_tz::Europe::Paris).date_naive().to_string()
}

/// A commune's environment for citizens: its official indices, heat, noise and noisiest places,
/// and the year against the EU limits and WHO guidelines.
pub(crate) async fn commune(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(insee): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    if !s.config.public_map {
        return (StatusCode::NOT_FOUND, lang.t("public.off").to_owned()).into_response();
    }
    let Some(c) = s.catalog.communes().into_iter().find(|c| c.insee.as_str() == insee) else {
        return (StatusCode::NOT_FOUND, lang.t("env.unknown_commune").to_owned()).into_response();
    };
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<article class=\"place\"><p class=\"crumbs\"><a href=\"/\">{back}</a></p><h1>{name}</h1>\
<section aria-labelledby=\"env-title\"><h2 id=\"env-title\">{env}</h2><div id=\"environment\" aria-live=\"polite\"></div></section></article>",
        back = t("place.back"),
        name = esc(&c.name),
        env = t("env.title"),
    );
    let page = Page::new("commune", c.name.clone(), body)
        .script("environment")
        .data(json!({"commune": c.insee, "commune_name": c.name, "today": today_in_paris(&s)}));
    let path = format!("/communes/{insee}");
    render(lang, set, &cfg, &viewer(&s, &h), &path, page)
}

pub(crate) async fn kiosk(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(site): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    let place = match public_place(&s, &site, lang) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<div class=\"kiosk\"><header class=\"kiosk-head\"><h1>{name}</h1><p id=\"clock\" class=\"clock\"></p></header>\
<section id=\"slide\" class=\"slide\" aria-live=\"polite\" aria-atomic=\"true\"></section>\
<nav class=\"kiosk-nav\" aria-label=\"{nav}\"><button type=\"button\" id=\"prev\">‹ {prev}</button><ol id=\"dots\" class=\"dots\"></ol><button type=\"button\" id=\"next\">{next} ›</button></nav>\
<p class=\"kiosk-services\"><a class=\"kiosk-button\" href=\"/kiosk/{id}/visiter\">{visit}</a> <a class=\"kiosk-button\" href=\"/kiosk/{id}/signaler\">{report}</a></p></div>",
        visit = t("visit.kiosk_button"),
        id = esc(place.id.as_str()),
        report = t("reports.kiosk_button"),
        name = esc(&place.name),
        nav = t("kiosk.nav"),
        prev = t("kiosk.prev"),
        next = t("kiosk.next"),
    );
    let rotate = q.rotate.unwrap_or(cfg.kiosk_rotate_secs).clamp(3, 600);
    let page = Page::new("kiosk", place.name.clone(), body)
        .script("kiosk")
        .data(json!({"site": place.id, "site_name": place.name, "rotate": rotate, "today": today_in_paris(&s)}))
        .bare();
    let path = format!("/kiosk/{site}");
    render(lang, set, &cfg, &Viewer::Public, &path, page)
}

pub(crate) async fn fleet(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/supervision/fleet") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let body = format!(
        "<h1>{}</h1><div id=\"fleet\" aria-live=\"polite\"><p>{}</p></div>",
        esc(lang.t("fleet.title")),
        esc(lang.t("loading"))
    );
    let page = Page::new("fleet", lang.t("fleet.title").to_owned(), body).script("fleet");
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/supervision/fleet", page)
}

/// `GET /supervision/forecasts`: every series' forecasting model with its backtest accuracy, by
/// property and one by one, and the anomalies found; CSV exports of both.
pub(crate) async fn forecasts(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/supervision/forecasts") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<article class=\"forecasts\"><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<section aria-labelledby=\"accuracy-title\"><h2 id=\"accuracy-title\">{accuracy}</h2><div id=\"accuracy\" aria-live=\"polite\"><p>{loading}</p></div></section>\
<section aria-labelledby=\"found-title\"><h2 id=\"found-title\">{found}</h2><p class=\"intro\">{found_intro}</p><div id=\"found\" aria-live=\"polite\"></div></section>\
<section aria-labelledby=\"models-title\"><h2 id=\"models-title\">{models}</h2>\
<form id=\"pick\" class=\"explorer\"><label>{property} <select id=\"property\" name=\"property\"></select></label></form><div id=\"models\"></div></section>\
<p class=\"data-links\"><a href=\"/api/v1/forecast/models?format=csv\" download>{models_csv}</a> · <a href=\"/api/v1/anomalies?format=csv\" download>{found_csv}</a></p></article>",
        title = t("forecasts.title"),
        intro = t("forecasts.intro"),
        accuracy = t("forecasts.accuracy"),
        loading = t("loading"),
        found = t("fleet.anomalies"),
        found_intro = t("forecasts.found_intro"),
        models = t("forecasts.models"),
        property = t("device.property"),
        models_csv = t("forecasts.models_csv"),
        found_csv = t("forecasts.found_csv"),
    );
    let page =
        Page::new("forecasts", lang.t("forecasts.title").to_owned(), body).script("forecasts");
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/supervision/forecasts", page)
}

/// The departments' services: `lighting` (Éclairage), `cleanliness` (Propreté) and
/// `green-spaces` (Espaces verts), each a page of figures, tables, a map and what to do, drawn by
/// `services.js` from `/api/v1/lighting…`, `/api/v1/bins…` and `/api/v1/irrigation`.
async fn services_page(
    view: &'static str,
    s: AppState,
    cfg: std::sync::Arc<WebConfig>,
    q: PageQuery,
    h: HeaderMap,
) -> Response {
    let path = format!("/services/{view}");
    let sess = match operator(&s, &h, &path) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let t = |k: &str| esc(lang.t(k));
    let tabs: String = ["lighting", "cleanliness", "green-spaces"]
        .iter()
        .map(|v| {
            let current = if *v == view { " aria-current=\"page\"" } else { "" };
            format!(
                "<li><a href=\"/services/{v}\"{current}>{}</a></li>",
                t(&format!("services.{v}"))
            )
        })
        .collect();
    let section = |id: &str| {
        format!(
            "<section aria-labelledby=\"{id}-title\"><h2 id=\"{id}-title\">{}</h2><div id=\"{id}\" aria-live=\"polite\"><p>{}</p></div></section>",
            t(&format!("services.{view}.{id}")),
            t("loading")
        )
    };
    let sections: String = match view {
        "lighting" => ["energy", "streets", "maintenance", "scenario", "sun"].map(section).concat(),
        "cleanliness" => ["round", "bins", "visits"].map(section).concat(),
        _ => ["zones", "water"].map(section).concat(),
    };
    let body = format!(
        "<article class=\"services {view}\"><nav class=\"tabs\" aria-label=\"{label}\"><ul>{tabs}</ul></nav>\
<h1>{title}</h1><p class=\"intro\">{intro}</p><form id=\"pick\" class=\"explorer\"></form>\
<div id=\"cards\" class=\"cards\"></div><div id=\"map\" class=\"services-map\"></div>{sections}</article>",
        label = t("nav.services"),
        title = t(&format!("services.{view}.title")),
        intro = t(&format!("services.{view}.intro")),
    );
    let page = Page::new(
        if view == "lighting" {
            "services-lighting"
        } else if view == "cleanliness" {
            "services-cleanliness"
        } else {
            "services-green"
        },
        lang.t(&format!("services.{view}.title")).to_owned(),
        body,
    )
    .script("services")
    .map()
    .data(json!({"view": view, "today": today_in_paris(&s)}));
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), &path, page)
}

/// `GET /services/lighting`.
pub(crate) async fn lighting(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    services_page("lighting", s, cfg, q, h).await
}

/// `GET /services/cleanliness`.
pub(crate) async fn cleanliness(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    services_page("cleanliness", s, cfg, q, h).await
}

/// `GET /services/green-spaces`.
pub(crate) async fn green_spaces(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    services_page("green-spaces", s, cfg, q, h).await
}

/// `GET /decideurs`: the decision makers' view — the well-being index per place, neighbourhood
/// and commune with its dimensions, history, what moved it and how stable its ranks are; the
/// communes compared; the 15-minute city's map, gaps and what-if tool. Everything is drawn by
/// `decideurs.js` from the API, which computes and tests the figures.
pub(crate) async fn decisions(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let path = "/decideurs";
    let sess = match operator(&s, &h, path) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let t = |k: &str| esc(lang.t(k));
    let section = |id: &str| {
        format!(
            "<section id=\"{id}-section\" aria-labelledby=\"{id}-title\"><h2 id=\"{id}-title\">{}</h2><div id=\"{id}\" aria-live=\"polite\"><p>{}</p></div></section>",
            t(&format!("decisions.{id}")),
            t("loading")
        )
    };
    let body = format!(
        "<article class=\"decisions\"><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<form id=\"pick\" class=\"explorer\"></form><div id=\"weights\" class=\"weights\"></div>\
{index}{history}{stability}{communes}\
<section id=\"proximity-section\" aria-labelledby=\"proximity-title\"><h2 id=\"proximity-title\">{prox}</h2>\
<form id=\"prox-pick\" class=\"explorer\"></form><div id=\"prox-cards\" class=\"cards\"></div>\
<div id=\"map\" class=\"services-map decisions-map\"></div><div id=\"legend\"></div>\
<div id=\"proximity\" aria-live=\"polite\"><p>{loading}</p></div></section>\
{gaps}{definition}</article>",
        title = t("decisions.title"),
        intro = t("decisions.intro"),
        index = section("index"),
        history = section("history"),
        stability = section("stability"),
        communes = section("communes"),
        prox = t("decisions.proximity"),
        loading = t("loading"),
        gaps = section("gaps"),
        definition = section("definition"),
    );
    let page = Page::new("decisions", lang.t("decisions.title").to_owned(), body)
        .script("decideurs")
        .map()
        .data(json!({"view": "decisions", "today": today_in_paris(&s)}));
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), path, page)
}

/// Query of a printable summary.
#[derive(Debug, Deserialize)]
pub(crate) struct SummaryQuery {
    lang: Option<String>,
    /// `place`, `neighbourhood` or `commune`.
    level: Option<String>,
    /// The unit's id.
    id: Option<String>,
    /// The month.
    month: Option<String>,
}

/// `GET /decideurs/fiche`: a one-page summary of a place, neighbourhood or commune for a council
/// meeting — its index, dimensions, year, what moved it, its 15-minute city — laid out to print
/// on one A4 page.
pub(crate) async fn decisions_summary(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<SummaryQuery>,
    h: HeaderMap,
) -> Response {
    let path = "/decideurs/fiche";
    let sess = match operator(&s, &h, path) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let pq = PageQuery { lang: q.lang.clone(), next: None, rotate: None, error: None };
    let (lang, set) = lang_of(&pq, &h);
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<article class=\"decisions summary-sheet\"><p class=\"no-print\"><a href=\"/decideurs\">{back}</a> · <button type=\"button\" id=\"print\">{print}</button></p>\
<div id=\"sheet\" aria-live=\"polite\"><p>{loading}</p></div></article>",
        back = t("decisions.back"),
        print = t("decisions.print"),
        loading = t("loading"),
    );
    let page = Page::new("decisions-summary", lang.t("decisions.sheet").to_owned(), body)
        .script("decideurs")
        .data(json!({"view": "sheet", "level": q.level.unwrap_or_else(|| "place".into()),
            "id": q.id.unwrap_or_default(), "month": q.month, "today": today_in_paris(&s)}));
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), path, page)
}

/// `GET /admin`: people, their roles and sessions, tokens and communes, for those who manage
/// people (the Métropole's administrators for everyone, a commune's for its own).
pub(crate) async fn admin(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/admin") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    if !sess.principal.grant.may(Action::ManagePeople) {
        return (StatusCode::FORBIDDEN, lang.t("admin.forbidden").to_owned()).into_response();
    }
    let t = |k: &str| esc(lang.t(k));
    // The roles a person may have (every one but a device's), and a token's (every one).
    let role_options = |people: bool| -> String {
        agora_model::permissions::Role::ALL
            .iter()
            .filter(|r| !people || **r != agora_model::permissions::Role::Device)
            .map(|r| {
                format!(
                    "<option value=\"{0}\">{1}</option>",
                    r.as_str(),
                    t(&format!("role.{}", r.as_str()))
                )
            })
            .collect()
    };
    let (roles, token_roles) = (role_options(true), role_options(false));
    let domains: String = std::iter::once("<option value=\"\">—</option>".to_owned())
        .chain(agora_model::permissions::Domain::ALL.iter().map(|d| {
            format!(
                "<option value=\"{0}\">{1}</option>",
                d.as_str(),
                t(&format!("domain.{}", d.as_str()))
            )
        }))
        .collect();
    let body = format!(
        "<h1>{title}</h1><p id=\"admin-message\" role=\"status\" aria-live=\"polite\"></p>\
<section aria-labelledby=\"people-h\"><h2 id=\"people-h\">{people}</h2><div id=\"people\"><p>{loading}</p></div>\
<form id=\"new-person\" class=\"rule-form\"><fieldset><legend>{add}</legend>\
<label>{email} <input name=\"email\" type=\"email\" required autocomplete=\"off\"></label> \
<label>{name} <input name=\"name\" required></label> \
<label>{role} <select name=\"role\">{roles}</select></label> \
<label>{commune} <select name=\"commune\" id=\"person-commune\"></select></label> \
<label>{domain} <select name=\"domain\">{domains}</select></label> \
<label>{password} <input name=\"password\" type=\"password\" minlength=\"12\" autocomplete=\"new-password\"></label> \
<button type=\"submit\">{create}</button></fieldset></form></section>\
<section aria-labelledby=\"sessions-h\"><h2 id=\"sessions-h\">{sessions}</h2><div id=\"sessions\"></div></section>\
<section aria-labelledby=\"tokens-h\"><h2 id=\"tokens-h\">{tokens}</h2><div id=\"tokens\"></div>\
<form id=\"new-token\" class=\"rule-form\"><fieldset><legend>{add_token}</legend>\
<label>{name} <input name=\"name\" required></label> \
<label>{role} <select name=\"role\">{token_roles}</select></label> \
<label>{commune} <select name=\"commune\" class=\"commune-choice\"></select></label> \
<label>{domain} <select name=\"domain\">{domains}</select></label> \
<label>{device} <input name=\"device\"></label> \
<label>{expires} <input name=\"expires_in_days\" type=\"number\" min=\"1\" max=\"3650\"></label> \
<button type=\"submit\">{create}</button></fieldset></form><p id=\"new-secret\" class=\"secret\" role=\"status\" aria-live=\"polite\"></p></section>\
<section aria-labelledby=\"communes-h\"><h2 id=\"communes-h\">{communes}</h2><div id=\"communes\"></div>{commune_form}</section>",
        title = t("admin.title"),
        people = t("admin.people"),
        loading = t("loading"),
        add = t("admin.add_person"),
        email = t("admin.email"),
        name = t("admin.name"),
        role = t("admin.role"),
        commune = t("admin.commune"),
        domain = t("admin.domain"),
        password = t("admin.password"),
        create = t("admin.create"),
        sessions = t("admin.sessions"),
        tokens = t("admin.tokens"),
        communes = t("admin.communes"),
        add_token = t("admin.add_token"),
        device = t("admin.device"),
        expires = t("admin.expires_days"),
        token_roles = token_roles,
        // Communes are made by the Métropole.
        commune_form = if sess.principal.grant.sees_all() {
            format!(
                "<form id=\"new-commune\" class=\"rule-form\"><fieldset><legend>{}</legend>\
<label>INSEE <input name=\"insee\" required pattern=\"[0-9][0-9AB][0-9]{{3}}\"></label> \
<label>{} <input name=\"name\" required></label> <button type=\"submit\">{}</button></fieldset></form>",
                t("admin.add_commune"),
                t("admin.name"),
                t("admin.create")
            )
        } else {
            String::new()
        },
    );
    let page = Page::new("admin", lang.t("admin.title").to_owned(), body).script("admin");
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/admin", page)
}

pub(crate) async fn device(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let path = format!("/supervision/devices/{}", urlencode(&id));
    let sess = match operator(&s, &h, &path) {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let Some(d) = s.catalog.device(&id) else {
        return (StatusCode::NOT_FOUND, lang.t("device.unknown").to_owned()).into_response();
    };
    let t = |k: &str| esc(lang.t(k));
    let name = d.name.clone().unwrap_or_else(|| d.id.to_string());
    let mut ranges = String::new();
    for (r, k) in
        [("24h", "range.24h"), ("7d", "range.7d"), ("30d", "range.30d"), ("365d", "range.1y")]
    {
        let _ = write!(
            ranges,
            "<button type=\"button\" data-range=\"{r}\" aria-pressed=\"false\">{}</button>",
            t(k)
        );
    }
    let body = format!(
        "<article class=\"device\"><p class=\"crumbs\"><a href=\"/supervision\">{back}</a></p><h1>{name}</h1>\
<dl id=\"facts\" class=\"facts\"></dl>\
<section aria-labelledby=\"latest-title\"><h2 id=\"latest-title\">{latest}</h2><div id=\"latest\" aria-live=\"polite\"></div></section>\
<section id=\"anomalies\" aria-labelledby=\"anomalies-title\" hidden><h2 id=\"anomalies-title\">{anomalies}</h2><ul id=\"anomaly-list\"></ul></section>\
<section aria-labelledby=\"charts-title\"><h2 id=\"charts-title\">{charts}</h2>\
<div class=\"range\" role=\"group\" aria-label=\"{period}\">{ranges}\
<form id=\"custom\" class=\"custom\"><label>{from} <input type=\"datetime-local\" name=\"from\" required></label> <label>{to} <input type=\"datetime-local\" name=\"to\" required></label> <button type=\"submit\">{show}</button></form></div>\
<div id=\"charts\" class=\"charts\"></div></section>\
<section aria-labelledby=\"forecast-title\"><h2 id=\"forecast-title\">{forecast}</h2><p class=\"intro\">{forecast_intro}</p><div id=\"forecasts\" class=\"charts\"></div></section></article>",
        forecast = t("forecast.title"),
        forecast_intro = t("forecast.intro"),
        anomalies = t("fleet.anomalies"),
        back = t("device.back"),
        name = esc(&name),
        latest = t("device.latest"),
        charts = t("device.charts"),
        period = t("range.label"),
        from = t("range.from"),
        to = t("range.to"),
        show = t("range.show"),
    );
    let page =
        Page::new("device", name, body).script("device").charts().data(json!({"device": d.id}));
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), &path, page)
}

pub(crate) async fn explorer(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/explorer") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<h1>{title}</h1><p class=\"intro\">{intro}</p><form id=\"query\" class=\"explorer\">\
<label>{property} <select name=\"property\" id=\"property\" required></select></label>\
<fieldset><legend>{scope}</legend><label><input type=\"radio\" name=\"scope\" value=\"device\" checked> {devices}</label> <label><input type=\"radio\" name=\"scope\" value=\"site\"> {sites}</label> <label><input type=\"radio\" name=\"scope\" value=\"commune\"> {communes}</label>\
<label class=\"block\">{choose} <select name=\"items\" id=\"items\" multiple size=\"8\" required></select></label></fieldset>\
<label>{agg} <select name=\"fn\"><option value=\"mean\">{mean}</option><option value=\"min\">{min}</option><option value=\"max\">{max}</option><option value=\"sum\">{sum}</option><option value=\"count\">{count}</option></select></label>\
<label>{period} <select name=\"period\"><option value=\"24h\">{r24}</option><option value=\"7d\" selected>{r7}</option><option value=\"30d\">{r30}</option><option value=\"365d\">{r1y}</option><option value=\"custom\">{custom}</option></select></label>\
<label>{from} <input type=\"datetime-local\" name=\"from\"></label> <label>{to} <input type=\"datetime-local\" name=\"to\"></label>\
<button type=\"submit\">{show}</button></form>\
<section aria-labelledby=\"result-title\"><h2 id=\"result-title\">{result}</h2><div id=\"result\" aria-live=\"polite\"></div><p><button type=\"button\" id=\"csv\" disabled>{csv}</button></p></section>",
        title = t("explorer.title"),
        intro = t("explorer.intro"),
        property = t("explorer.property"),
        scope = t("explorer.scope"),
        devices = t("explorer.devices"),
        sites = t("explorer.sites"),
        communes = t("explorer.communes"),
        choose = t("explorer.choose"),
        agg = t("explorer.fn"),
        mean = t("fn.mean"),
        min = t("fn.min"),
        max = t("fn.max"),
        sum = t("fn.sum"),
        count = t("fn.count"),
        period = t("range.label"),
        r24 = t("range.24h"),
        r7 = t("range.7d"),
        r30 = t("range.30d"),
        r1y = t("range.1y"),
        custom = t("range.custom"),
        from = t("range.from"),
        to = t("range.to"),
        show = t("range.show"),
        result = t("explorer.result"),
        csv = t("explorer.csv"),
    );
    let page = Page::new("explorer", lang.t("explorer.title").to_owned(), body)
        .script("explorer")
        .charts();
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/explorer", page)
}

/// The alerts area: its layout is here; the alerts engine fills it.
pub(crate) async fn alerts(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/alerts") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<h1>{title}</h1><form class=\"filters\" id=\"alert-filters\" aria-label=\"{filters}\"><label>{state} <select name=\"state\"><option value=\"open\">{open}</option><option value=\"acknowledged\">{ack}</option><option value=\"resolved\">{resolved}</option></select></label> <label>{severity} <select name=\"severity\"><option value=\"\">{all}</option><option value=\"critical\">{s_crit}</option><option value=\"warning\">{s_warn}</option><option value=\"info\">{s_info}</option></select></label></form>\
<table class=\"table alerts\"><caption>{caption}</caption><thead><tr><th scope=\"col\">{c_sev}</th><th scope=\"col\">{c_rule}</th><th scope=\"col\">{c_scope}</th><th scope=\"col\">{c_since}</th><th scope=\"col\">{c_value}</th><th scope=\"col\">{c_state}</th><th scope=\"col\"><span class=\"sr-only\">{c_act}</span></th></tr></thead>\
<tbody id=\"alert-rows\" aria-live=\"polite\"><tr><td colspan=\"7\" class=\"empty\">{loading}</td></tr></tbody></table>\
<section aria-labelledby=\"rules-title\"><h2 id=\"rules-title\">{rules}</h2><div id=\"rules\"></div>\
<form id=\"new-rule\" class=\"rule-form\"><fieldset><legend>{enable}</legend><label>{template} <select name=\"template\" id=\"template\" required></select></label> \
<label>{scope_kind} <select name=\"scope_kind\"><option value=\"\">{everywhere}</option><option value=\"site\">{site}</option><option value=\"commune\">{commune}</option><option value=\"device\">{device}</option></select></label> \
<label>{scope_value} <input name=\"scope_value\"></label> <label>{webhook} <input name=\"webhook\" type=\"url\" placeholder=\"https://\"></label> <label>{email} <input name=\"email\" type=\"text\" inputmode=\"email\" autocomplete=\"off\" placeholder=\"nom@ville.fr, …\"></label> <button type=\"submit\">{create}</button></fieldset></form><p id=\"rule-message\" role=\"status\"></p></section>",
        title = t("alerts.title"),
        filters = t("alerts.filters"),
        state = t("alerts.state"),
        open = t("alerts.open"),
        ack = t("alerts.acknowledged"),
        resolved = t("alerts.resolved"),
        severity = t("alerts.severity"),
        all = t("alerts.all"),
        caption = t("alerts.caption"),
        c_sev = t("alerts.severity"),
        c_rule = t("alerts.rule"),
        c_scope = t("alerts.scope"),
        c_since = t("alerts.since"),
        c_value = t("alerts.value"),
        c_state = t("alerts.state"),
        c_act = t("alerts.actions"),
        s_crit = t("severity.critical"),
        s_warn = t("severity.warning"),
        s_info = t("severity.info"),
        loading = t("loading"),
        rules = t("rules.title"),
        enable = t("rules.enable"),
        template = t("rules.template"),
        scope_kind = t("rules.scope_kind"),
        everywhere = t("rules.everywhere"),
        site = t("device.site"),
        commune = t("explorer.communes"),
        device = t("device.id"),
        scope_value = t("rules.scope_value"),
        webhook = t("rules.webhook"),
        email = t("rules.email"),
        create = t("rules.create"),
    );
    let page = Page::new("alerts", lang.t("alerts.title").to_owned(), body).script("alerts");
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/alerts", page)
}

#[allow(clippy::too_many_arguments)]
fn login_page(
    lang: Lang,
    set: bool,
    cfg: &WebConfig,
    next: &str,
    session: Option<&Session>,
    error: Option<&str>,
    status: StatusCode,
    sso: Option<&str>,
) -> Response {
    let t = |k: &str| esc(lang.t(k));
    // Single sign-on first, when the city has it: most people log in there.
    let sso = sso
        .map(|label| {
            format!(
                "<p><a class=\"button\" id=\"sso\" href=\"/login/oidc?next={}\">{} {}</a></p><p class=\"muted\">{}</p>",
                urlencode(next),
                t("login.sso"),
                esc(label),
                t("login.or")
            )
        })
        .unwrap_or_default();
    let err = error
        .map(|e| format!("<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "<section class=\"login\"><h1>{title}</h1>{err}{sso}<p>{intro}</p>\
<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{next}\">{csrf}\
<label for=\"email\">{email}</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\"{invalid}>\
<label for=\"token\">{label}</label><input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required{invalid}>\
<button type=\"submit\">{submit}</button></form></section>",
        title = t("login.title"),
        intro = t("login.intro"),
        next = esc(next),
        // Logging in again over a live session is an unsafe request made with its cookie.
        csrf = session
            .map(|s| format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&s.csrf)))
            .unwrap_or_default(),
        label = t("login.token"),
        email = t("login.email"),
        invalid = if error.is_some() {
            " aria-invalid=\"true\" aria-describedby=\"login-error\""
        } else {
            ""
        },
        submit = t("login.submit"),
    );
    let page = Page::new("login", lang.t("login.title").to_owned(), body);
    let mut r = render(lang, set, cfg, &Viewer::Public, "/login", page);
    *r.status_mut() = status;
    r
}

pub(crate) async fn login_form(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    let session = session::current(&s, &h).map(|(_, s)| s);
    let next = safe_next(q.next.as_deref());
    let sso = s.oidc.as_ref().map(|o| o.label().to_owned());
    let error = (q.error.as_deref() == Some("sso")).then(|| lang.t("login.sso_failed"));
    let status = if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    login_page(lang, set, &cfg, next, session.as_ref(), error, status, sso.as_deref())
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    /// A person's email; empty: `token` is an access token.
    #[serde(default)]
    email: String,
    /// The person's password, or an access token.
    token: String,
    next: Option<String>,
}

/// `POST /login`: exchange a read (or admin) token for a session cookie.
pub(crate) async fn login(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    h: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let lang = Lang::of(None, &h);
    let next = safe_next(f.next.as_deref()).to_owned();
    let session = session::current(&s, &h).map(|(_, s)| s);
    let refuse = |key: &str| {
        let error = Some(lang.t(key));
        let sso = s.oidc.as_ref().map(|o| o.label().to_owned());
        login_page(
            lang,
            false,
            &cfg,
            &next,
            session.as_ref(),
            error,
            StatusCode::UNAUTHORIZED,
            sso.as_deref(),
        )
    };
    let principal = if f.email.trim().is_empty() {
        let Some(token) = s.catalog.authenticate(f.token.trim()) else {
            tracing::info!("dashboard login refused: unknown or revoked token");
            return refuse("login.wrong");
        };
        if !token.grant.may(Action::View) {
            return refuse("login.scope");
        }
        Principal::of_token(token)
    } else {
        match s.catalog.password_login(&f.email, &f.token, s.clock.now()).await {
            Ok(Ok(person)) => Principal::of_person(&person),
            Ok(Err(LoginRefusal::Wrong)) => {
                tracing::info!("dashboard login refused: wrong email or password");
                return refuse("login.wrong_password");
            }
            Ok(Err(LoginRefusal::Locked(_))) => {
                tracing::warn!("dashboard login refused: account locked after repeated failures");
                return refuse("login.locked");
            }
            Ok(Err(LoginRefusal::Disabled)) => return refuse("login.disabled"),
            Err(e) => {
                tracing::error!(error = %e, "dashboard login failed");
                return refuse("login.failed");
            }
        }
    };
    tracing::info!(who = %principal.actor, "dashboard login");
    let actor = principal.actor.clone();
    let (id, _) = s.sessions.create(principal);
    let mut r = Redirect::to(&next).into_response();
    r.extensions_mut()
        .insert(agora_api::audit::AuditNote { actor: Some(actor), ..Default::default() });
    if let Ok(v) = HeaderValue::from_str(&session::set_cookie(&id, s.sessions.ttl())) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Debug, Deserialize)]
pub(crate) struct LogoutForm {
    csrf: String,
}

/// `POST /logout`: end the session (the form carries the session's CSRF token).
pub(crate) async fn logout(Scoped(s): Scoped, h: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    match session::current(&s, &h) {
        Some((id, sess)) if sess.csrf == f.csrf => {
            s.sessions.remove(&id);
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&session::clear_cookie()) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(_) => (StatusCode::FORBIDDEN, "wrong CSRF token").into_response(),
        None => Redirect::to("/").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_next_targets() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(embed(&json!({"a": "</script>"})), "{\"a\":\"\\u003c/script>\"}");
        assert_eq!(safe_next(Some("/explorer")), "/explorer");
        assert_eq!(safe_next(Some("//evil.example")), "/supervision");
        assert_eq!(safe_next(Some("https://evil.example")), "/supervision");
        assert_eq!(safe_next(None), "/supervision");
        // Browsers drop tabs and newlines from URLs: `/\t/evil.example` would be `//evil.example`.
        for bad in
            ["/\t/evil.example", "/\n/evil.example", "/x\r\nSet-Cookie: a=b", "/\\evil", "/\u{7f}"]
        {
            assert_eq!(safe_next(Some(bad)), "/supervision", "{bad:?}");
        }
        assert_eq!(safe_next(Some("/places/h%C3%B4tel?lang=en")), "/places/h%C3%B4tel?lang=en");
        assert_eq!(
            tile_origin("https://{s}.tile.openstreetmap.org/{z}/{x}/{y}.png").as_deref(),
            Some("https://*.tile.openstreetmap.org")
        );
    }
}

/// Where a report form starts: a place's (`site`) or a position.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ReportQuery {
    pub(crate) lang: Option<String>,
    pub(crate) site: Option<String>,
}

/// `GET /signaler`: the public report form (a category, a position picked on the map or the
/// place given, a short text, an optional address with consent).
pub(crate) async fn report_form(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<ReportQuery>,
    h: HeaderMap,
) -> Response {
    let pq = PageQuery { lang: q.lang.clone(), ..PageQuery::default() };
    let (lang, set) = lang_of(&pq, &h);
    if let Some(r) = public_off(&s, lang) {
        return r;
    }
    if !s.reports.settings.enabled {
        return (StatusCode::NOT_FOUND, lang.t("reports.off").to_owned()).into_response();
    }
    let site = q.site.as_deref().and_then(|id| public_place(&s, id, lang).ok());
    let body = report_form_html(lang, false);
    let page = Page::new("report-form", lang.t("reports.title").to_owned(), body)
        .script("reports")
        .map()
        .data(json!({"site": site.as_ref().map(|x| x.id.as_str()),
                     "site_name": site.as_ref().map(|x| x.name.clone()),
                     "center": site.as_ref().and_then(|x| Some([x.lat?, x.lon?]))}));
    render(lang, set, &cfg, &viewer(&s, &h), "/signaler", page)
}

/// The form, for the web (with a map) or a kiosk (at its place, large).
fn report_form_html(lang: Lang, kiosk: bool) -> String {
    let t = |k: &str| esc(lang.t(k));
    let position = if kiosk {
        String::new()
    } else {
        format!(
            "<fieldset class=\"report-where\"><legend>{where_}</legend><p id=\"where-help\" class=\"intro\">{where_help}</p>\
<div id=\"map\" class=\"report-map\" role=\"application\" aria-describedby=\"where-help\" aria-label=\"{map}\"></div>\
<p><button type=\"button\" id=\"locate\">{locate}</button> <span id=\"where\" aria-live=\"polite\"></span></p>\
<p><label for=\"place\">{place_label}</label> <select id=\"place\"><option value=\"\">—</option></select></p></fieldset>",
            where_ = t("reports.where"),
            where_help = t("reports.where_help"),
            map = t("reports.map"),
            locate = t("reports.locate"),
            place_label = t("reports.place"),
        )
    };
    format!(
        "<article class=\"report{kclass}\"><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<form id=\"report\" novalidate><fieldset><legend>{what}</legend><div id=\"categories\" class=\"categories\"></div></fieldset>\
{position}\
<p><label for=\"description\">{desc}</label><br><textarea id=\"description\" rows=\"4\" maxlength=\"1000\" aria-describedby=\"desc-count\"></textarea><br><span id=\"desc-count\" class=\"intro\"></span></p>\
<fieldset id=\"contact\" hidden><legend>{contact}</legend><p><label for=\"email\">{email}</label><br><input id=\"email\" type=\"email\" autocomplete=\"email\"></p>\
<p><input id=\"consent\" type=\"checkbox\"> <label for=\"consent\" id=\"consent-label\">{consent}</label></p></fieldset>\
<p class=\"hp\" aria-hidden=\"true\"><label for=\"website\">{hp}</label><input id=\"website\" name=\"website\" tabindex=\"-1\" autocomplete=\"off\"></p>\
<p><button type=\"submit\" id=\"send\">{send}</button></p><p id=\"report-error\" class=\"error\" role=\"alert\"></p></form>\
<section id=\"done\" hidden tabindex=\"-1\" aria-live=\"polite\"></section></article>",
        kclass = if kiosk { " kiosk-report" } else { "" },
        title = t("reports.title"),
        intro = t("reports.intro"),
        what = t("reports.what"),
        desc = t("reports.description"),
        contact = t("reports.contact"),
        email = t("reports.email"),
        consent = t("reports.consent"),
        hp = t("reports.honeypot"),
        send = t("reports.send"),
    )
}

/// `GET /kiosk/{site}/signaler`: the report form on a kiosk, at its place, for touch and
/// keyboard.
pub(crate) async fn kiosk_report(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(site): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    let place = match public_place(&s, &site, lang) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    if !s.reports.settings.enabled {
        return (StatusCode::NOT_FOUND, lang.t("reports.off").to_owned()).into_response();
    }
    let body = format!(
        "<div class=\"kiosk\"><header class=\"kiosk-head\"><h2 class=\"kiosk-place\">{name}</h2><p><a class=\"kiosk-button\" href=\"/kiosk/{id}\">‹ {back}</a></p></header>{form}</div>",
        name = esc(&place.name),
        id = esc(place.id.as_str()),
        back = esc(lang.t("reports.kiosk_back")),
        form = report_form_html(lang, true),
    );
    let page = Page::new("report-kiosk", lang.t("reports.title").to_owned(), body)
        .script("reports")
        .data(json!({"site": place.id, "site_name": place.name, "kiosk": true}))
        .bare();
    let path = format!("/kiosk/{site}/signaler");
    render(lang, set, &cfg, &Viewer::Public, &path, page)
}

/// `GET /signalements/suivi/{key}`: a reporter follows their report.
pub(crate) async fn report_follow(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(key): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    if !s.reports.settings.enabled {
        return (StatusCode::NOT_FOUND, lang.t("reports.off").to_owned()).into_response();
    }
    let body = format!(
        "<article class=\"report\"><p class=\"crumbs\"><a href=\"/\">{back}</a></p><h1>{title}</h1><div id=\"follow\" aria-live=\"polite\"><p>{loading}</p></div></article>",
        back = esc(lang.t("place.back")),
        title = esc(lang.t("reports.follow_title")),
        loading = esc(lang.t("loading")),
    );
    let page = Page::new("report-follow", lang.t("reports.follow_title").to_owned(), body)
        .script("reports")
        .data(json!({"follow": key}));
    let path = format!("/signalements/suivi/{key}");
    render(lang, set, &cfg, &viewer(&s, &h), &path, page)
}

/// `GET /signalements`: the operators' tickets, their figures, and what to do with each.
pub(crate) async fn tickets(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let sess = match operator(&s, &h, "/signalements") {
        Ok(x) => x,
        Err(r) => return r.into_response(),
    };
    let (lang, set) = lang_of(&q, &h);
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<article class=\"tickets\"><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<section aria-labelledby=\"stats-title\"><h2 id=\"stats-title\">{stats}</h2><div id=\"stats\" aria-live=\"polite\"></div></section>\
<section aria-labelledby=\"list-title\"><h2 id=\"list-title\">{list}</h2>\
<p><label for=\"status-filter\">{filter}</label> <select id=\"status-filter\"><option value=\"open\">{open}</option><option value=\"\">{all}</option><option value=\"resolved\">{resolved}</option><option value=\"rejected\">{rejected}</option></select></p>\
<div id=\"tickets\" aria-live=\"polite\"><p>{loading}</p></div></section>\
<section id=\"ticket\" aria-labelledby=\"ticket-title\" tabindex=\"-1\" hidden></section></article>",
        title = t("tickets.title"),
        intro = t("tickets.intro"),
        stats = t("tickets.stats"),
        list = t("tickets.list"),
        filter = t("tickets.filter"),
        open = t("tickets.open"),
        all = t("tickets.all"),
        resolved = t("reports.status.resolved"),
        rejected = t("reports.status.rejected"),
        loading = t("loading"),
    );
    let page = Page::new("tickets", lang.t("tickets.title").to_owned(), body).script("reports");
    render(lang, set, &cfg, &Viewer::Operator(Box::new(sess)), "/signalements", page)
}

/// `GET /visiter`: what to see — the points of interest on a map, the tours, and on a hot day a
/// cool route between two points.
pub(crate) async fn visit(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    if let Some(r) = public_off(&s, lang) {
        return r;
    }
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<article class=\"visit\"><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<div id=\"map\" class=\"visit-map\" role=\"region\" aria-label=\"{map}\"></div>\
<section aria-labelledby=\"cool-title\"><h2 id=\"cool-title\">{cool}</h2><p class=\"intro\">{cool_intro}</p>\
<form id=\"cool-form\"><p><label for=\"cool-from\">{from}</label> <select id=\"cool-from\"></select> <label for=\"cool-to\">{to}</label> <select id=\"cool-to\"></select> <button type=\"submit\">{go}</button></p></form>\
<div id=\"cool\" aria-live=\"polite\"></div></section>\
<section aria-labelledby=\"tours-title\"><h2 id=\"tours-title\">{tours}</h2><div id=\"tours\" aria-live=\"polite\"></div></section>\
<section aria-labelledby=\"pois-title\"><h2 id=\"pois-title\">{pois}</h2><div id=\"pois\"></div></section></article>",
        title = t("visit.title"),
        intro = t("visit.intro"),
        map = t("visit.map"),
        tours = t("visit.tours"),
        pois = t("visit.pois"),
        cool = t("visit.cool"),
        cool_intro = t("visit.cool_intro"),
        from = t("visit.from"),
        to = t("visit.to"),
        go = t("visit.go"),
    );
    let page = Page::new("visit", lang.t("visit.title").to_owned(), body).script("visitors").map();
    render(lang, set, &cfg, &viewer(&s, &h), "/visiter", page)
}

/// `GET /visiter/parcours/{id}`: one tour on a phone — its map, its stops with their texts.
pub(crate) async fn visit_tour(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    if let Some(r) = public_off(&s, lang) {
        return r;
    }
    let body = format!(
        "<article class=\"visit\"><p class=\"crumbs\"><a href=\"/visiter\">{back}</a></p><div id=\"tour\" aria-live=\"polite\"><p>{loading}</p></div>\
<div id=\"map\" class=\"visit-map\" role=\"region\" aria-label=\"{map}\"></div><ol id=\"stops\" class=\"stops\"></ol></article>",
        back = esc(lang.t("visit.back")),
        loading = esc(lang.t("loading")),
        map = esc(lang.t("visit.map")),
    );
    let page = Page::new("visit-tour", lang.t("visit.tour").to_owned(), body)
        .script("visitors")
        .map()
        .data(json!({"tour": id}));
    let path = format!("/visiter/parcours/{id}");
    render(lang, set, &cfg, &viewer(&s, &h), &path, page)
}

/// `GET /kiosk/{site}/visiter`: the kiosk as a small service point — what to see nearby, the
/// tours with a QR code to take them on a phone, and the cool route from here on a hot day.
pub(crate) async fn kiosk_visit(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(site): Path<String>,
    Query(q): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&q, &h);
    let place = match public_place(&s, &site, lang) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let t = |k: &str| esc(lang.t(k));
    let body = format!(
        "<div class=\"kiosk kiosk-visit\"><header class=\"kiosk-head\"><h1 class=\"kiosk-place\">{name}</h1><p><a class=\"kiosk-button\" href=\"/kiosk/{id}\">‹ {back}</a></p></header>\
<section aria-labelledby=\"tours-title\"><h2 id=\"tours-title\">{tours}</h2><div id=\"kiosk-tours\" class=\"kiosk-tours\"></div></section>\
<section id=\"cool-box\" aria-labelledby=\"cool-title\" hidden><h2 id=\"cool-title\">{cool}</h2><div id=\"cool\"></div></section>\
<section aria-labelledby=\"near-title\"><h2 id=\"near-title\">{near}</h2><ul id=\"near\" class=\"kiosk-list\"></ul></section>\
</div>",
        name = esc(&place.name),
        id = esc(place.id.as_str()),
        back = t("reports.kiosk_back"),
        near = t("visit.nearby"),
        tours = t("visit.tours"),
        cool = t("visit.cool"),
    );
    let page = Page::new("kiosk-visit", lang.t("visit.title").to_owned(), body)
        .script("visitors")
        .data(json!({"site": place.id, "site_name": place.name, "center": [place.lat, place.lon], "kiosk": true}))
        .bare();
    let path = format!("/kiosk/{site}/visiter");
    render(lang, set, &cfg, &Viewer::Public, &path, page)
}
