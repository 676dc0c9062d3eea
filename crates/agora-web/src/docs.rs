//! `/docs`: the operations guide (`docs/exploitation.md`, built into the binary), rendered from
//! Markdown once. Open to everyone: it holds commands, no secret. Its commands are run by the
//! package test (`scripts/package/test.sh`).

use std::sync::OnceLock;

use agora_api::policy::Scoped;
use axum::extract::{Extension, Query};
use axum::http::HeaderMap;
use axum::response::Response;

use crate::pages::{Cfg, Page, PageQuery, lang_of, render, viewer};

/// The guide, as written in the repository.
const GUIDE: &str = include_str!("../../../docs/exploitation.md");

/// The guide as HTML. Raw HTML in the Markdown is shown as text, not passed through.
fn html() -> &'static str {
    static HTML: OnceLock<String> = OnceLock::new();
    HTML.get_or_init(|| {
        use pulldown_cmark::{Event, Options, Parser};
        let events = Parser::new_ext(GUIDE, Options::ENABLE_TABLES).map(|e| match e {
            Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
            e => e,
        });
        let mut out = String::with_capacity(GUIDE.len() * 3 / 2);
        pulldown_cmark::html::push_html(&mut out, events);
        // Wide tables scroll on a phone instead of widening the page.
        out.replace("<table>", "<div class=\"table-wrap\" tabindex=\"0\"><table class=\"table\">")
            .replace("</table>", "</table></div>")
    })
}

/// `GET /docs`: the operations guide (in French, as the city's technicians read it).
pub(crate) async fn guide(
    Scoped(s): Scoped,
    Extension(cfg): Cfg,
    Query(pq): Query<PageQuery>,
    h: HeaderMap,
) -> Response {
    let (lang, set) = lang_of(&pq, &h);
    let body = format!("<article class=\"docs\" lang=\"fr\">{}</article>", html());
    let page = Page::new("docs", "Guide d'exploitation".to_owned(), body);
    render(lang, set, &cfg, &viewer(&s, &h), "/docs", page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_renders_with_its_sections_tables_and_commands() {
        let h = html();
        assert!(h.starts_with("<h1>Guide d'exploitation d'agora</h1>"), "{}", &h[..80]);
        for section in
            ["1. Installer", "5. Activer TLS", "6. Sauvegarder et restaurer", "9. Dépannage"]
        {
            assert!(h.contains(&format!("<h2>{section}</h2>")), "{section}");
        }
        assert!(h.contains("<pre><code class=\"language-sh\">apt-get install -y ./agora_*.deb"));
        assert_eq!(h.matches("<table class=\"table\">").count(), 2);
        assert!(!h.contains("<script"), "no raw HTML");
    }
}
