//! Secrets in rules are write-only: webhook secrets, passwords (and user names standing alone,
//! which are tokens) in webhook URLs, and credential-like query parameters are shown as
//! [`MASK`] by the API, in the delivery log and in logs. A rule sent back with masked values
//! (or without its webhook's secret) keeps the stored ones.

use crate::rule::{Action, Rule, RuleError};

/// What a secret looks like from the outside.
pub const MASK: &str = "********";

/// Query parameters whose value is a credential.
const SECRET_PARAMS: [&str; 12] = [
    "token",
    "access_token",
    "auth",
    "key",
    "api_key",
    "apikey",
    "secret",
    "password",
    "pass",
    "sig",
    "signature",
    "code",
];

/// A URL with its credentials masked: `https://user:********@host/…`, `https://********@host/`
/// for a user name alone, `?token=********`. Everything else is left as written (no
/// normalization), so a masked URL reads like the one the operator typed.
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let auth_len = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
    let authority = &rest[..auth_len];
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..start]);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            if let Some((user, _)) = userinfo.split_once(':') {
                out.push_str(user);
                out.push(':');
            }
            out.push_str(MASK);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let tail = &rest[auth_len..];
    let (before_fragment, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let (path, query) = match before_fragment.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (before_fragment, None),
    };
    out.push_str(&mask_path(path));
    if let Some(query) = query {
        out.push('?');
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v))
                    if !v.is_empty() && SECRET_PARAMS.iter().any(|s| k.eq_ignore_ascii_case(s)) =>
                {
                    format!("{k}={MASK}")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&masked.join("&"));
    }
    out.push_str(fragment);
    out
}

/// A URL path with its token-like segments masked: Slack (`/services/T…/B…/<token>`), Discord
/// (`/api/webhooks/<id>/<token>`), Teams and Telegram (`/bot<id>:<token>`) carry their secret
/// there. A segment is token-like when it is 16 characters or more and mixes letters and digits;
/// words and numeric ids stay readable.
fn mask_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            let letters = seg.chars().any(|c| c.is_ascii_alphabetic());
            let digits = seg.chars().any(|c| c.is_ascii_digit());
            if seg.len() >= 16 && letters && digits { MASK } else { seg }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `text` with every secret of `url` (and `secret`) replaced by the mask: for error messages
/// that may quote a URL.
pub fn mask_text(text: &str, url: &str, secret: Option<&str>) -> String {
    let mut out = text.replace(url, &mask_url(url));
    if let Some(s) = secret.filter(|s| s.len() >= 3) {
        out = out.replace(s, MASK);
    }
    out
}

impl Rule {
    /// The rule as shown through the API: secrets masked.
    pub fn redacted(&self) -> Rule {
        let mut r = self.clone();
        for a in &mut r.actions {
            if let Action::Webhook { url, secret, .. } = a {
                *url = mask_url(url);
                if secret.is_some() {
                    *secret = Some(MASK.to_owned());
                }
            }
        }
        r
    }
}

/// Put back into `new` the secrets it shows masked, or leaves out, from the stored `old`: a
/// dashboard sends a rule back as it received it. A webhook's URL is restored from the stored
/// webhook whose masked URL it is; its secret, absent or masked, from the stored webhook with
/// the same URL (at the same place first); an empty secret removes it.
pub fn restore(mut new: Rule, old: Option<&Rule>) -> Result<Rule, RuleError> {
    let stored: Vec<(usize, &str, Option<&str>)> = old
        .map(|o| {
            o.actions
                .iter()
                .enumerate()
                .filter_map(|(i, a)| match a {
                    Action::Webhook { url, secret, .. } => {
                        Some((i, url.as_str(), secret.as_deref()))
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    // The stored webhook matching `pred`, the one at index `i` first.
    let find = |i: usize, pred: &dyn Fn(&str) -> bool| {
        stored
            .iter()
            .find(|s| s.0 == i && pred(s.1))
            .or_else(|| stored.iter().find(|s| pred(s.1)))
            .copied()
    };
    for (i, a) in new.actions.iter_mut().enumerate() {
        let Action::Webhook { url, secret, .. } = a else { continue };
        if url.contains(MASK) {
            let Some((_, full, _)) = find(i, &|u| mask_url(u) == *url) else {
                return Err(RuleError(format!(
                    "webhook url {url:?} holds a masked value ({MASK:?}) that matches no stored \
                     webhook of this rule: send the whole URL"
                )));
            };
            *url = full.to_owned();
        }
        let same_url = find(i, &|u| u == url.as_str());
        match secret.as_deref() {
            Some(s) if s == MASK => match same_url.and_then(|s| s.2) {
                Some(kept) => *secret = Some(kept.to_owned()),
                None => {
                    return Err(RuleError(format!(
                        "webhook secret is masked ({MASK:?}) but no stored webhook to {} has one: \
                         send the secret itself",
                        mask_url(url)
                    )));
                }
            },
            Some("") => *secret = None,
            Some(_) => {}
            None => *secret = same_url.and_then(|s| s.2).map(str::to_owned),
        }
    }
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_masked() {
        for (u, shown) in [
            ("https://ops.example/hook", "https://ops.example/hook"),
            ("https://bob:hunter2@ops.example/hook", "https://bob:********@ops.example/hook"),
            ("http://tok3n@ops.example", "http://********@ops.example"),
            ("http://a:b:c@d@ops.example:81/x?y", "http://a:********@ops.example:81/x?y"),
            (
                "https://ops.example/h?token=abc&site=x&API_KEY=k#frag",
                "https://ops.example/h?token=********&site=x&API_KEY=********#frag",
            ),
            ("not a url", "not a url"),
            (
                "https://hooks.slack.com/services/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",
                "https://hooks.slack.com/services/T0AB12CD3/B0XY45ZW6/********",
            ),
            (
                "https://discord.com/api/webhooks/123456789012345678/AbC-dEf_123ghIJKlmnOPq",
                "https://discord.com/api/webhooks/123456789012345678/********",
            ),
            (
                "https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
                "https://api.telegram.org/********/sendMessage",
            ),
            (
                "https://ops.example/alerts/incoming-webhook",
                "https://ops.example/alerts/incoming-webhook",
            ),
        ] {
            assert_eq!(mask_url(u), shown, "{u}");
        }
    }

    fn rule(actions: serde_json::Value) -> Rule {
        serde_json::from_value(serde_json::json!({"id": "r", "condition": {"no_data": {"periods": 3}}, "actions": actions})).unwrap()
    }

    fn hook(r: &Rule, i: usize) -> (String, Option<String>) {
        match &r.actions[i] {
            Action::Webhook { url, secret, .. } => (url.clone(), secret.clone()),
            _ => panic!("not a webhook"),
        }
    }

    #[test]
    fn masked_or_absent_secrets_are_kept_on_update() {
        let old = rule(serde_json::json!([
            {"email": {"to": ["a@b.example"]}},
            {"webhook": {"url": "https://u:pw@a.example/h", "secret": "s1"}},
            {"webhook": {"url": "https://b.example/h", "secret": "s2"}},
        ]));
        let shown = old.redacted();
        let text = serde_json::to_string(&shown).unwrap();
        assert!(!text.contains("pw@") && !text.contains("s1") && !text.contains("s2"), "{text}");
        // Sent back as shown: everything kept.
        assert_eq!(restore(shown.clone(), Some(&old)).unwrap(), old);
        // Without the secrets: kept; an empty one removes it; a new one replaces it.
        let back = rule(serde_json::json!([
            {"webhook": {"url": "https://b.example/h"}},
            {"webhook": {"url": "https://u:********@a.example/h", "secret": ""}},
            {"webhook": {"url": "https://c.example/h", "secret": "s3"}},
        ]));
        let r = restore(back, Some(&old)).unwrap();
        assert_eq!(hook(&r, 0), ("https://b.example/h".into(), Some("s2".into())));
        assert_eq!(hook(&r, 1), ("https://u:pw@a.example/h".into(), None));
        assert_eq!(hook(&r, 2), ("https://c.example/h".into(), Some("s3".into())));
        // A masked secret for a new URL, or a masked URL with nothing behind it, is refused.
        let e = restore(
            rule(serde_json::json!([{"webhook": {"url": "https://c.example/h", "secret": MASK}}])),
            Some(&old),
        )
        .unwrap_err();
        assert!(e.0.contains("send the secret itself"), "{e}");
        let e = restore(
            rule(serde_json::json!([{"webhook": {"url": "https://x:********@c.example/"}}])),
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("send the whole URL"), "{e}");
    }
}
