//! French (the default) and English texts. One flat dictionary per language, shared by the server
//! (page titles, navigation, forms) and the scripts (embedded in each page). A key missing in
//! English falls back to French, and a test checks both dictionaries have the same keys.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::HeaderMap;

/// A language of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Fr,
    En,
}

/// Name of the cookie remembering the chosen language.
pub(crate) const COOKIE: &str = "agora_lang";

static FR: &str = include_str!("../assets/i18n/fr.json");
static EN: &str = include_str!("../assets/i18n/en.json");

fn parse(src: &str) -> BTreeMap<String, String> {
    serde_json::from_str(src).expect("the embedded dictionaries are valid JSON (tested)")
}

impl Lang {
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Fr => "fr",
            Self::En => "en",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "fr" => Some(Self::Fr),
            "en" => Some(Self::En),
            _ => None,
        }
    }

    /// The language asked by `?lang=`, else the cookie, else French.
    pub(crate) fn of(query: Option<&str>, headers: &HeaderMap) -> Self {
        query
            .and_then(Self::parse)
            .or_else(|| agora_api::session::cookie(headers, COOKIE).and_then(Self::parse))
            .unwrap_or(Self::Fr)
    }

    /// The whole dictionary, for the scripts.
    pub(crate) fn dict(self) -> &'static BTreeMap<String, String> {
        static D: OnceLock<[BTreeMap<String, String>; 2]> = OnceLock::new();
        let d = D.get_or_init(|| {
            let fr = parse(FR);
            let mut en = fr.clone();
            en.extend(parse(EN));
            [fr, en]
        });
        match self {
            Self::Fr => &d[0],
            Self::En => &d[1],
        }
    }

    /// The text of `key` (the key itself when missing, so a gap shows rather than breaks).
    pub(crate) fn t(self, key: &str) -> &str {
        self.dict().get(key).map_or(key, String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let fr = parse(FR);
        let en = parse(EN);
        let only_fr: Vec<_> = fr.keys().filter(|k| !en.contains_key(*k)).collect();
        let only_en: Vec<_> = en.keys().filter(|k| !fr.contains_key(*k)).collect();
        assert!(only_fr.is_empty(), "missing in English: {only_fr:?}");
        assert!(only_en.is_empty(), "missing in French: {only_en:?}");
        assert_eq!(Lang::Fr.t("nav.map"), "Carte");
        assert_eq!(Lang::En.t("nav.map"), "Map");
    }

    #[test]
    fn language_choice() {
        let mut h = HeaderMap::new();
        assert_eq!(Lang::of(None, &h), Lang::Fr);
        h.insert(axum::http::header::COOKIE, "agora_lang=en".parse().unwrap());
        assert_eq!(Lang::of(None, &h), Lang::En);
        assert_eq!(Lang::of(Some("fr"), &h), Lang::Fr);
        assert_eq!(Lang::of(Some("de"), &h), Lang::En);
    }
}
