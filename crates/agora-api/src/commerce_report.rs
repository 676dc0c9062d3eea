//! The printable report of an impact study, for the commerce department: what was done, the
//! estimated change in % and in visitors a day with its interval, what was compared with what,
//! a chart of the place against what it would have counted without the intervention, and the
//! caveats. One self-contained HTML page (no script, no outside resource), in French.

use std::fmt::Write as _;

use agora_store::commerce::Intervention;
use chrono::{Datelike, NaiveDate};

use crate::commerce::ImpactAnswer;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A CSV field, quoted when it must be (a comma, a quote or a line break).
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn pct(v: f64) -> String {
    format!("{v:+.1}").replace('.', ",") + " %"
}

fn num(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    if n < 0 { format!("−{out}") } else { out }
}

/// A week: its Monday, the treated place's mean a day, the counterfactual's.
type Week = (NaiveDate, Option<f64>, Option<f64>);
/// A sum and how many values it holds.
type Sum = (f64, usize);

/// Weekly means (Monday-based weeks) of the treated place and its counterfactual, over the days
/// kept; a week without a kept day is left out.
fn weekly(a: &ImpactAnswer) -> Vec<Week> {
    let mut out: Vec<(NaiveDate, Sum, Sum)> = Vec::new();
    for (d, t, c, excluded) in a.days() {
        let monday = d - chrono::Duration::days(i64::from(d.weekday().num_days_from_monday()));
        if out.last().is_none_or(|w| w.0 != monday) {
            out.push((monday, (0.0, 0), (0.0, 0)));
        }
        let w = out.last_mut().expect("pushed");
        if excluded {
            continue;
        }
        if let Some(t) = t {
            w.1.0 += t;
            w.1.1 += 1;
        }
        if let Some(c) = c {
            w.2.0 += c;
            w.2.1 += 1;
        }
    }
    let mean = |(s, n): Sum| (n > 0).then(|| s / n as f64);
    out.into_iter().map(|(d, t, c)| (d, mean(t), mean(c))).collect()
}

fn chart(a: &ImpactAnswer, start: NaiveDate) -> String {
    let weeks = weekly(a);
    let (w, h, pad) = (720.0, 260.0, 40.0);
    let max = weeks.iter().flat_map(|x| [x.1, x.2]).flatten().fold(0.0_f64, f64::max).max(1.0);
    let n = weeks.len().max(2) as f64 - 1.0;
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / n;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / max;
    let line = |pick: &dyn Fn(&Week) -> Option<f64>| {
        let mut d = String::new();
        let mut pen = false;
        for (i, wk) in weeks.iter().enumerate() {
            match pick(wk) {
                Some(v) => {
                    let _ = write!(d, "{}{:.1},{:.1} ", if pen { "L" } else { "M" }, x(i), y(v));
                    pen = true;
                }
                None => pen = false,
            }
        }
        d
    };
    let treated = line(&|w| w.1);
    let counterfactual = line(&|w| w.2);
    let at = weeks.iter().position(|w| w.0 + chrono::Duration::days(6) >= start).unwrap_or(0);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Fréquentation moyenne par jour, \
         semaine par semaine : le lieu et ce qu'il aurait compté sans l'intervention\">"
    );
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#666\"/>\
         <text x=\"{pad}\" y=\"{t}\" font-size=\"11\">{top} / jour</text>\
         <line x1=\"{sx:.1}\" y1=\"{pad}\" x2=\"{sx:.1}\" y2=\"{b}\" stroke=\"#b00\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"11\" fill=\"#b00\">intervention ({start})</text>\
         <path d=\"{treated}\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\"/>\
         <path d=\"{counterfactual}\" fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\" stroke-dasharray=\"6 4\" opacity=\"0.7\"/>",
        b = h - pad,
        r = w - pad,
        t = pad - 8.0,
        top = num(max),
        sx = x(at),
        tx = x(at) + 4.0,
        ty = pad + 12.0,
        start = start.format("%d/%m/%Y"),
    );
    svg.push_str("</svg>");
    svg
}

/// The report.
pub(crate) fn render(iv: &Intervention, a: &ImpactAnswer) -> String {
    let e = a.effect();
    let (lo, hi) = e.interval_pct;
    let verdict = if lo > 0.0 {
        "une hausse de la fréquentation"
    } else if hi < 0.0 {
        "une baisse de la fréquentation"
    } else {
        "aucun effet net : l'intervalle contient zéro"
    };
    let compared = if a.last_year() {
        "le lieu lui-même, aux mêmes jours de la semaine 52 semaines plus tôt (sans lieu témoin : \
         preuve plus faible)"
            .to_owned()
    } else {
        format!("les lieux témoins {}", esc(&iv.controls.join(", ")))
    };
    let mut caveats = String::new();
    for c in a.caveats() {
        let _ = write!(caveats, "<li>{}</li>", esc(c));
    }
    caveats.push_str(
        "<li>Les compteurs dénombrent des passages, pas des personnes distinctes ni des clients ; \
         aucune donnée personnelle n'est collectée.</li>",
    );
    format!(
        r#"<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>Étude d'impact — {name}</title>
<style>
body{{font:15px/1.5 system-ui,sans-serif;max-width:50rem;margin:2rem auto;padding:0 1rem;color:#111}}
h1{{font-size:1.5rem}} .big{{font-size:2rem;font-weight:700}} table{{border-collapse:collapse}}
td,th{{padding:.2rem .8rem .2rem 0;text-align:left;vertical-align:top}} svg{{width:100%;height:auto}}
.legend span{{margin-right:1.5rem}} @media print{{body{{margin:0}}}}
</style></head><body>
<p>agora — observatoire du commerce</p>
<h1>Étude d'impact : {name}</h1>
<p>{description}</p>
<p class="big">{change}</p>
<p>Estimation : <strong>{verdict}</strong> de {change} par jour en moyenne sur le lieu
<strong>{site}</strong> depuis le {start}, soit environ <strong>{visitors} passages par jour</strong>.
Intervalle de confiance à 95 % : de {lo} à {hi}.</p>
<table>
<tr><th>Lieu étudié</th><td>{site}</td></tr>
<tr><th>Comparé avec</th><td>{compared}</td></tr>
<tr><th>Période</th><td>{before} jours avant, {after} jours après (jours avec comptage complet)</td></tr>
<tr><th>Tendances avant</th><td>{parallel} (placebo : {placebo})</td></tr>
<tr><th>Méthode</th><td>{method}</td></tr>
</table>
<h2>Le lieu et ce qu'il aurait compté sans l'intervention</h2>
<p class="legend"><span>— fréquentation mesurée (moyenne par jour, par semaine)</span><span>- - sans l'intervention (estimée)</span></p>
{chart}
<h2>À garder en tête</h2>
<ul>{caveats}</ul>
<p><small>Données : <code>/api/v1/commerce/interventions/{id}/study?format=csv</code>. Rapport produit par agora.</small></p>
</body></html>
"#,
        name = esc(&iv.name),
        description = esc(&iv.description),
        change = pct(e.change_pct),
        site = esc(&iv.site),
        start = iv.start_day.format("%d/%m/%Y"),
        visitors = num(e.visitors_per_day),
        lo = pct(lo),
        hi = pct(hi),
        before = e.days_before,
        after = e.days_after,
        parallel = if e.parallel_before { "parallèles" } else { "non parallèles : prudence" },
        placebo = pct(e.placebo_pct),
        method = esc(a.method()),
        chart = chart(a, iv.start_day),
        id = iv.id,
    )
}
