//! The open-data portal: the catalogue of published datasets (search, filters by theme, place and
//! download format), each dataset's page (description, facts, schema, licence, preview table,
//! chart and map, downloads, API examples to copy, the DCAT-AP link) and a page for reusers
//! explaining the API. Rendered here in full, so that they read without scripts; the chart and
//! the map are added by `assets/js/opendata.js`.

use std::fmt::Write as _;

use agora_api::AppState;
use agora_api::policy::Scoped;
use agora_opendata::dataset::{LICENCES, fields, frequency};
use agora_opendata::explore;
use agora_opendata::odsql::Query as OdsQuery;
use agora_store::opendata::{Dataset, DatasetKind, Theme};
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::i18n::Lang;
use crate::pages::{Cfg, Page, PageQuery, esc, lang_of, render, viewer};

/// The catalogue's filters.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CatalogueQuery {
    lang: Option<String>,
    /// Words to find in titles, descriptions and keywords.
    q: Option<String>,
    theme: Option<String>,
    site: Option<String>,
    /// The format downloads are offered in.
    format: Option<String>,
}

const FORMATS: [(&str, &str); 5] = [
    ("csv", "CSV"),
    ("json", "JSON"),
    ("jsonl", "JSON Lines"),
    ("geojson", "GeoJSON"),
    ("parquet", "Parquet"),
];

fn theme_label(lang: Lang, t: Theme) -> String {
    lang.t(&format!("od.theme.{}", t.as_str())).to_owned()
}

fn resolution_label(lang: Lang, d: &Dataset) -> String {
    match d.kind {
        DatasetKind::Measurements => {
            lang.t(&format!("od.res.{}", d.resolution.as_str())).to_owned()
        }
        _ => lang.t("od.res.catalogue").to_owned(),
    }
}

fn scope_label(s: &AppState, lang: Lang, d: &Dataset) -> String {
    if let Some(site) = &d.site {
        return s
            .catalog
            .sites()
            .into_iter()
            .find(|x| x.id.as_str() == site)
            .map_or(site.clone(), |x| x.name);
    }
    if let Some(c) = &d.commune {
        return s
            .catalog
            .communes()
            .into_iter()
            .find(|x| x.insee.as_str() == c)
            .map_or(c.clone(), |x| x.name);
    }
    lang.t("od.all_communes").to_owned()
}

/// Folded for search: lowercase, without accents.
fn fold(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| match c {
            'à' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' => 'i',
            'ô' | 'ö' => 'o',
            'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            c => c,
        })
        .collect()
}

async fn published(s: &AppState) -> Vec<Dataset> {
    s.datasets
        .list()
        .await
        .map(|v| v.into_iter().filter(|d| d.published).collect())
        .unwrap_or_default()
}

/// `/open-data`: the catalogue.
pub(crate) async fn catalogue(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(q): Query<CatalogueQuery>,
    h: HeaderMap,
) -> Response {
    let pq = PageQuery { lang: q.lang.clone(), ..Default::default() };
    let (lang, set) = lang_of(&pq, &h);
    let t = |k: &str| esc(lang.t(k));
    let all = published(&s).await;
    let words: Vec<String> =
        q.q.as_deref()
            .map(fold)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
    let theme = q.theme.as_deref().filter(|x| !x.is_empty());
    let site = q.site.as_deref().filter(|x| !x.is_empty());
    let format =
        q.format.as_deref().filter(|f| FORMATS.iter().any(|(x, _)| x == f)).unwrap_or("csv");
    let sites = s.catalog.sites();
    let shown: Vec<&Dataset> = all
        .iter()
        .filter(|d| {
            let text = fold(&format!("{} {} {}", d.title, d.description, d.keywords.join(" ")));
            words.iter().all(|w| text.contains(w.as_str()))
        })
        .filter(|d| theme.is_none_or(|x| d.theme.as_str() == x))
        .filter(|d| {
            site.is_none_or(|x| {
                d.site.as_deref() == Some(x)
                    || (d.site.is_none()
                        && d.commune.as_deref().is_none_or(|c| {
                            sites.iter().any(|p| p.id.as_str() == x && p.commune.as_str() == c)
                        }))
            })
        })
        .collect();
    let mut form = String::new();
    let _ = write!(
        form,
        "<form class=\"range\" method=\"get\" action=\"/open-data\" role=\"search\">\
<label>{search}<br><input type=\"search\" name=\"q\" value=\"{qv}\"></label>",
        search = t("od.search"),
        qv = esc(q.q.as_deref().unwrap_or("")),
    );
    let _ = write!(
        form,
        "<label>{}<br><select name=\"theme\"><option value=\"\">{}</option>",
        t("od.theme"),
        t("od.any")
    );
    for th in Theme::ALL {
        let sel = if theme == Some(th.as_str()) { " selected" } else { "" };
        let _ = write!(
            form,
            "<option value=\"{}\"{sel}>{}</option>",
            th.as_str(),
            esc(&theme_label(lang, th))
        );
    }
    let _ = write!(
        form,
        "</select></label><label>{}<br><select name=\"site\"><option value=\"\">{}</option>",
        t("od.place"),
        t("od.any")
    );
    for p in &sites {
        let sel = if site == Some(p.id.as_str()) { " selected" } else { "" };
        let _ =
            write!(form, "<option value=\"{}\"{sel}>{}</option>", esc(p.id.as_str()), esc(&p.name));
    }
    let _ = write!(form, "</select></label><label>{}<br><select name=\"format\">", t("od.format"));
    for (f, name) in FORMATS {
        let sel = if f == format { " selected" } else { "" };
        let _ = write!(form, "<option value=\"{f}\"{sel}>{name}</option>");
    }
    let _ =
        write!(form, "</select></label><button type=\"submit\">{}</button></form>", t("od.filter"));
    let mut list = String::new();
    if shown.is_empty() {
        let _ = write!(list, "<p class=\"empty\">{}</p>", t("od.none"));
    }
    for d in &shown {
        let href = format!("/open-data/datasets/{}", d.id);
        let _ = write!(
            list,
            "<li class=\"dataset\"><h3><a href=\"{href}\">{title}</a></h3><p>{desc}</p>\
<p class=\"muted\">{theme} · {scope} · {res} · {licence}</p>\
<p><a href=\"/api/explore/v2.1/catalog/datasets/{id}/exports/{format}\" download>{dl} {fname}<span class=\"sr-only\"> — {title}</span></a></p></li>",
            href = esc(&href),
            title = esc(&d.title),
            desc = esc(&d.description),
            theme = esc(&theme_label(lang, d.theme)),
            scope = esc(&scope_label(&s, lang, d)),
            res = esc(&resolution_label(lang, d)),
            licence = esc(LICENCES.iter().find(|l| l.0 == d.licence).map_or("", |l| l.1)),
            id = esc(&d.id),
            dl = t("od.download"),
            fname = FORMATS.iter().find(|(f, _)| *f == format).map_or("CSV", |x| x.1),
        );
    }
    let body = format!(
        "<article class=\"open-data\"><h1>{title}</h1><p class=\"intro\">{intro}</p>{form}\
<p aria-live=\"polite\"><span class=\"count\">{n}</span> {found}</p><ul class=\"datasets\">{list}</ul>\
<p class=\"data-links\"><a href=\"/open-data/api\">{api}</a> · <a href=\"/api/v1/open-data/dcat\">{dcat}</a></p>\
<section id=\"manage\" aria-labelledby=\"manage-title\" hidden><h2 id=\"manage-title\">{manage}</h2><p class=\"intro\">{manage_intro}</p><div id=\"manage-list\"></div>\
<form id=\"new-dataset\" class=\"range\"><label>{id_label}<br><input name=\"id\" required pattern=\"[a-z0-9][a-z0-9_-]*\"></label>\
<label>{title_label}<br><input name=\"title\" required></label><label>{desc_label}<br><input name=\"description\" required></label>\
<label>{theme_label}<br><select name=\"theme\">{theme_options}</select></label><label>{place_label}<br><select name=\"site\"><option value=\"\">{all}</option>{site_options}</select></label>\
<label>{res_label}<br><select name=\"resolution\"><option value=\"hourly\">{hourly}</option><option value=\"daily\">{daily}</option><option value=\"15min\">{quarter}</option><option value=\"raw\">{raw}</option></select></label>\
<button type=\"submit\">{create}</button></form><p id=\"manage-status\" role=\"status\"></p></section></article>",
        manage = t("od.manage"),
        manage_intro = t("od.manage_intro"),
        id_label = t("od.id"),
        title_label = t("od.title_field"),
        desc_label = t("od.description"),
        theme_label = t("od.theme"),
        theme_options = Theme::ALL
            .iter()
            .filter(|x| **x != Theme::Equipment)
            .map(|x| format!(
                "<option value=\"{}\">{}</option>",
                x.as_str(),
                esc(&theme_label(lang, *x))
            ))
            .collect::<String>(),
        place_label = t("od.place"),
        all = t("od.all_communes"),
        site_options = sites
            .iter()
            .map(|p| format!("<option value=\"{}\">{}</option>", esc(p.id.as_str()), esc(&p.name)))
            .collect::<String>(),
        res_label = t("od.resolution"),
        hourly = t("od.res.hourly"),
        daily = t("od.res.daily"),
        quarter = t("od.res.15min"),
        raw = t("od.res.raw"),
        create = t("od.create"),
        title = t("od.title"),
        intro = t("od.intro"),
        n = shown.len(),
        found = t("od.found"),
        api = t("od.api_link"),
        dcat = t("od.dcat_link"),
    );
    let page = Page::new("open-data", lang.t("od.title").to_owned(), body).script("opendata");
    render(lang, set, &cfg, &viewer(&s, &h), "/open-data", page)
}

fn fact(o: &mut String, label: &str, value: &str) {
    let _ = write!(o, "<dt>{}</dt><dd>{value}</dd>", esc(label));
}

/// `/open-data/datasets/{id}`: a dataset's page.
pub(crate) async fn dataset(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Path(id): Path<String>,
    Query(pq): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&pq, &h);
    let t = |k: &str| esc(lang.t(k));
    let d = match s.datasets.get(&id).await {
        Ok(Some(d)) if d.published => d,
        _ => return (StatusCode::NOT_FOUND, lang.t("od.unknown").to_owned()).into_response(),
    };
    let Ok(rec) = agora_api::dataset_records(&s, &d).await else {
        return (StatusCode::SERVICE_UNAVAILABLE, lang.t("od.unavailable").to_owned())
            .into_response();
    };
    let cfg_od = &s.config.open_data;
    let licence = LICENCES.iter().find(|l| l.0 == d.licence);
    let mut facts = String::from("<dl class=\"facts\">");
    fact(&mut facts, lang.t("od.theme"), &esc(&theme_label(lang, d.theme)));
    fact(&mut facts, lang.t("od.place"), &esc(&scope_label(&s, lang, &d)));
    fact(&mut facts, lang.t("od.resolution"), &esc(&resolution_label(lang, &d)));
    fact(&mut facts, lang.t("od.frequency"), &esc(lang.t(&format!("od.freq.{}", frequency(&d)))));
    if let Some((_, name, url, _)) = licence {
        fact(
            &mut facts,
            lang.t("od.licence"),
            &format!("<a href=\"{}\">{}</a>", esc(url), esc(name)),
        );
    }
    fact(
        &mut facts,
        lang.t("od.publisher"),
        &esc(d.publisher.as_deref().unwrap_or(&cfg_od.publisher)),
    );
    let mail = d.contact_email.as_deref().unwrap_or(&cfg_od.contact_email);
    fact(&mut facts, lang.t("od.contact"), &format!("<a href=\"mailto:{0}\">{0}</a>", esc(mail)));
    if let Some(r) = rec.range() {
        let day = |t: agora_model::Timestamp| {
            t.to_datetime()
                .with_timezone(&chrono_tz::Europe::Paris)
                .format("%d/%m/%Y %H:%M")
                .to_string()
        };
        fact(&mut facts, lang.t("od.coverage"), &esc(&format!("{} → {}", day(r.from), day(r.to))));
    }
    if d.embargo_hours > 0 {
        fact(
            &mut facts,
            lang.t("od.embargo"),
            &esc(&lang.t("od.embargo_hours").replace("{n}", &d.embargo_hours.to_string())),
        );
    }
    if !d.keywords.is_empty() {
        fact(&mut facts, lang.t("od.keywords"), &esc(&d.keywords.join(", ")));
    }
    facts.push_str("</dl>");

    let mut schema = format!(
        "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-labelledby=\"schema-title\"><table class=\"table\"><caption class=\"sr-only\">{}</caption><thead><tr><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead><tbody>",
        t("od.schema"),
        t("od.field"),
        t("od.label"),
        t("od.type"),
        t("od.description")
    );
    for f in fields(&d) {
        let _ = write!(
            schema,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.name),
            esc(&f.label),
            f.ftype.as_str(),
            esc(f.description.as_deref().unwrap_or(""))
        );
    }
    schema.push_str("</tbody></table></div>");

    // A preview: the latest records (the first ones for catalogues), as the API answers them.
    let (query, preview_title) = if let Some(r) = rec.range() {
        // The last day only: the latest records without reading the whole history.
        let since =
            explore::datetime_text(r.to.as_nanos() - 86_400_000_000_000, chrono_tz::Tz::UTC);
        let recent = format!("date >= date'{since}'");
        (OdsQuery::parse(None, &[&recent], None, Some("date desc")), t("od.preview_latest"))
    } else {
        (OdsQuery::parse(None, &[], None, None), t("od.preview_first"))
    };
    let mut preview = String::new();
    if let Ok(q) = query
        && let Ok(a) =
            explore::answer(&rec, s.store.as_ref(), &q, chrono_tz::Europe::Paris, 0, 10, None).await
    {
        if rec.range().is_none() {
            let _ = write!(
                preview,
                "<p>{}</p>",
                esc(&lang.t("od.records").replace("{n}", &a.total.to_string()))
            );
        }
        let _ = write!(
            preview,
            "<div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-labelledby=\"preview-title\"><table class=\"table\"><caption class=\"sr-only\">{preview_title}</caption><thead><tr>"
        );
        for k in &a.keys {
            let _ = write!(preview, "<th scope=\"col\">{}</th>", esc(k));
        }
        preview.push_str("</tr></thead><tbody>");
        for r in &a.rows {
            preview.push_str("<tr>");
            for (v, ty) in r.iter().zip(&a.types) {
                let cell = match explore::json_value(v, *ty, chrono_tz::Europe::Paris) {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(x) => x,
                    serde_json::Value::Object(o) => format!("{}, {}", o["lat"], o["lon"]),
                    x => x.to_string(),
                };
                let _ = write!(preview, "<td>{}</td>", esc(&cell));
            }
            preview.push_str("</tr>");
        }
        preview.push_str("</tbody></table></div>");
    }

    let api = format!("/api/explore/v2.1/catalog/datasets/{}", d.id);
    let mut downloads = String::from("<ul class=\"downloads\">");
    for (f, name) in FORMATS {
        let _ = write!(
            downloads,
            "<li><a class=\"button\" href=\"{api}/exports/{f}\" download>{name}<span class=\"sr-only\"> — {}</span></a></li>",
            esc(&d.title)
        );
    }
    downloads.push_str("</ul>");
    let base = agora_api::open_data_base_url(&s, &h);
    let first_prop = rec.fields.get(7).map(|f| f.name.clone());
    let example_select = match (&d.kind, &first_prop) {
        (DatasetKind::Measurements, Some(p)) => {
            format!("select=date,device_id,{p}&order_by=date%20desc&limit=20")
        }
        _ => "limit=20".into(),
    };
    let examples = format!(
        "<h3>curl</h3><pre><code>curl '{base}{api}/records?{example_select}'\n\
curl -o {id}.csv '{base}{api}/exports/csv'</code></pre>\
<h3>Python</h3><pre><code>import pandas as pd\n\
df = pd.read_csv(\"{base}{api}/exports/csv\", sep=\";\")\n\
# ou / or: pd.read_parquet(\"{base}{api}/exports/parquet\")</code></pre>\
<h3>{sql}</h3><pre><code>{base}{api}/records?select=count(*)%20as%20n&amp;group_by=month(date)%20as%20m</code></pre>",
        base = esc(&base),
        api = esc(&api),
        id = esc(&d.id),
        example_select = esc(&example_select),
        sql = t("od.example_aggregate"),
    );
    let body = format!(
        "<article class=\"open-data\"><p class=\"crumbs\"><a href=\"/open-data\">{back}</a></p><h1>{title}</h1>\
<p class=\"intro\">{desc}</p>{facts}\
<section aria-labelledby=\"dl-title\"><h2 id=\"dl-title\">{dl}</h2>{downloads}<p class=\"muted\">{dl_note}</p></section>\
<section aria-labelledby=\"chart-title\" id=\"chart-box\" hidden><h2 id=\"chart-title\">{chart}</h2><div id=\"chart\" class=\"chart-box\"></div></section>\
<section aria-labelledby=\"map-title\" id=\"map-box\" hidden><h2 id=\"map-title\">{map}</h2><div id=\"map\" class=\"map small-map\"></div></section>\
<section aria-labelledby=\"preview-title\"><h2 id=\"preview-title\">{preview_title}</h2>{preview}</section>\
<section aria-labelledby=\"schema-title\"><h2 id=\"schema-title\">{schema_title}</h2>{schema}</section>\
<section aria-labelledby=\"api-title\"><h2 id=\"api-title\">{api_title}</h2>{examples}<p><a href=\"/open-data/api\">{api_link}</a> · <a href=\"/api/v1/open-data/dcat\">{dcat}</a></p></section></article>",
        back = t("od.back"),
        title = esc(&d.title),
        desc = esc(&d.description),
        dl = t("od.downloads"),
        dl_note = t("od.downloads_note"),
        chart = t("od.chart"),
        map = t("od.map"),
        schema_title = t("od.schema"),
        api_title = t("od.api_examples"),
        api_link = t("od.api_link"),
        dcat = t("od.dcat_link"),
    );
    // What the script draws: the first property's daily means (or sums) and the positions.
    let positions: Vec<serde_json::Value> = if d.kind == DatasetKind::Places {
        Vec::new()
    } else {
        let mut seen = std::collections::BTreeMap::new();
        let devices = s.catalog.devices(&Default::default());
        let kinds = agora_opendata::dataset::theme_devices(d.theme).0;
        let props: Vec<&str> =
            agora_opendata::dataset::published(&d).iter().map(|p| p.name).collect();
        let sites = s.catalog.sites();
        for dev in devices {
            // The sensors whose records the dataset holds: of its theme, with a published
            // property (any public sensor for the devices' catalogue), in its place or commune
            // (a device's commune, or its place's).
            let in_theme = d.kind == DatasetKind::Devices
                || (kinds.contains(&dev.kind.as_str())
                    && s.catalog
                        .device_series(dev.id.as_str())
                        .iter()
                        .any(|x| props.contains(&x.property.as_str())));
            let commune = dev.commune.as_ref().map(|c| c.as_str().to_owned()).or_else(|| {
                let site = dev.site.as_ref()?;
                sites.iter().find(|x| &x.id == site).map(|x| x.commune.as_str().to_owned())
            });
            let here = d
                .site
                .as_deref()
                .is_none_or(|x| dev.site.as_ref().is_some_and(|y| y.as_str() == x))
                && d.commune.as_deref().is_none_or(|c| commune.as_deref() == Some(c));
            if in_theme
                && here
                && agora_opendata::dataset::theme_of_kind(dev.kind.as_str()).is_some()
                && let (Some(lat), Some(lon)) = (dev.lat, dev.lon)
            {
                seen.insert(
                    dev.id.as_str().to_owned(),
                    json!({"id": dev.id, "lat": lat, "lon": lon, "kind": dev.kind}),
                );
            }
        }
        seen.into_values().take(2000).collect()
    };
    let sum = d.theme == Theme::Footfall;
    let page = Page::new("open-data-dataset", d.title.clone(), body)
        .script("opendata")
        .charts()
        .map()
        .data(json!({"dataset": d.id, "property": if d.kind == DatasetKind::Measurements { first_prop } else { None },
                     "summed": sum, "positions": positions}));
    render(lang, set, &cfg, &viewer(&s, &h), &format!("/open-data/datasets/{id}"), page)
}

/// `/open-data/api`: the API for reusers.
pub(crate) async fn api_guide(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(pq): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&pq, &h);
    let t = |k: &str| esc(lang.t(k));
    let base = esc(&agora_api::open_data_base_url(&s, &h));
    let example = published(&s)
        .await
        .into_iter()
        .find(|d| d.kind == DatasetKind::Measurements)
        .map_or("qualite-air-horaire".to_owned(), |d| d.id);
    let ds = format!("{base}/api/explore/v2.1/catalog/datasets/{}", esc(&example));
    let body = format!(
        "<article class=\"open-data\"><p class=\"crumbs\"><a href=\"/open-data\">{back}</a></p><h1>{title}</h1><p class=\"intro\">{intro}</p>\
<section><h2 id=\"endpoints-title\">{endpoints}</h2><div class=\"table-wrap\" tabindex=\"0\" role=\"region\" aria-labelledby=\"endpoints-title\"><table class=\"table\"><caption class=\"sr-only\">{endpoints}</caption><thead><tr><th scope=\"col\">{url}</th><th scope=\"col\">{what}</th></tr></thead><tbody>\
<tr><td><code>/api/explore/v2.1/catalog/datasets</code></td><td>{e_list}</td></tr>\
<tr><td><code>/api/explore/v2.1/catalog/datasets/{{id}}</code></td><td>{e_one}</td></tr>\
<tr><td><code>/api/explore/v2.1/catalog/datasets/{{id}}/records</code></td><td>{e_records}</td></tr>\
<tr><td><code>/api/explore/v2.1/catalog/datasets/{{id}}/records/{{record_id}}</code></td><td>{e_record}</td></tr>\
<tr><td><code>/api/explore/v2.1/catalog/datasets/{{id}}/facets</code></td><td>{e_facets}</td></tr>\
<tr><td><code>/api/explore/v2.1/catalog/datasets/{{id}}/exports/{{csv|json|jsonl|geojson|parquet}}</code></td><td>{e_exports}</td></tr>\
<tr><td><code>/api/v1/open-data/dcat</code> (<code>.ttl</code>, <code>.jsonld</code>, <code>.rdf</code>)</td><td>{e_dcat}</td></tr>\
</tbody></table></div></section>\
<section><h2>{odsql}</h2><p>{odsql_intro}</p><ul>\
<li><code>select=site_name, avg(pm10) as moyenne, count(*) as n</code></li>\
<li><code>where=pm10 &gt; 50 and date &gt;= date'2026-01-01'</code></li>\
<li><code>where=site_id in (\"la-rotonde\", \"hotel-de-ville\")</code> · <code>where=pm10 in [20..50[</code> · <code>where=no2 is not null</code></li>\
<li><code>where=search(site_name, \"rotonde\")</code></li>\
<li><code>group_by=year(date) as annee, month(date) as mois</code> · <code>group_by=date_format(date, 'yyyy-MM-dd') as jour</code></li>\
<li><code>order_by=moyenne desc</code> · <code>limit</code> ≤ 100, <code>offset + limit</code> ≤ 10 000 · <code>refine=date:2026/05</code> · <code>exclude=device_id:aq-hdv-02</code> · <code>timezone=Europe/Paris</code></li>\
</ul><p>{limits}</p></section>\
<section><h2>{examples}</h2><pre><code>curl '{ds}/records?select=date,device_id,pm10&amp;where=pm10%3E50&amp;limit=20'\n\
curl '{ds}/records?select=month(date)%20as%20m,avg(pm10)%20as%20pm10&amp;group_by=month(date)%20as%20m'\n\
curl -o air.parquet '{ds}/exports/parquet?where=date%3E%3Ddate%272026%27'</code></pre>\
<pre><code>import requests, pandas as pd\n\
r = requests.get(\"{ds}/records\", params={{\"where\": \"pm10 &gt; 50\", \"limit\": 100}})\n\
rows = r.json()[\"results\"]\n\
df = pd.read_parquet(\"{ds}/exports/parquet\")</code></pre></section>\
<section><h2>{errors}</h2><p>{errors_text}</p><pre><code>{{\"error_code\": \"ODSQLError\", \"message\": \"ODSQL query is malformed: Unknown field: departement. Clause(s) containing the error(s): where.\"}}</code></pre></section>\
</article>",
        back = t("od.back"),
        title = t("od.api_title"),
        intro = t("od.api_intro"),
        endpoints = t("od.endpoints"),
        url = t("od.url"),
        what = t("od.what"),
        e_list = t("od.e_list"),
        e_one = t("od.e_one"),
        e_records = t("od.e_records"),
        e_record = t("od.e_record"),
        e_facets = t("od.e_facets"),
        e_exports = t("od.e_exports"),
        e_dcat = t("od.e_dcat"),
        odsql = t("od.odsql"),
        odsql_intro = t("od.odsql_intro"),
        limits = t("od.limits"),
        examples = t("od.api_examples"),
        errors = t("od.errors"),
        errors_text = t("od.errors_text"),
    );
    let page = Page::new("open-data-api", lang.t("od.api_title").to_owned(), body);
    render(lang, set, &cfg, &viewer(&s, &h), "/open-data/api", page)
}
