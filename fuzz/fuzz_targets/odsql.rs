//! Fuzz target: ODSQL (the Explore API's `select`, `where`, `group_by`, `order_by`) never
//! panics, whatever the clauses hold: parsed, checked against a dataset's fields and answered
//! over a few records, or refused with a message. The input is split into four clauses at
//! newlines.
#![no_main]

use agora_opendata::odsql::{Field, FieldType, Query, V, compile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(4, '\n');
    let (s, w, g, o) = (parts.next(), parts.next(), parts.next(), parts.next());
    let wheres: Vec<&str> = w.into_iter().collect();
    let Ok(q) = Query::parse(s, &wheres, g, o) else { return };
    let f = |name: &str, ftype| Field { name: name.into(), label: name.into(), ftype, description: None, unit: None, facet: true };
    let fields = [
        f("date", FieldType::DateTime),
        f("day", FieldType::Date),
        f("site_name", FieldType::Text),
        f("pm10", FieldType::Double),
        f("people", FieldType::Int),
        f("geo_point_2d", FieldType::GeoPoint),
    ];
    let Ok(c) = compile(&q, &fields, chrono_tz::Europe::Paris) else { return };
    let rows = [
        vec![V::Time(1_700_000_000_000_000_000), V::Time(0), V::text("Hôtel de Ville"), V::Num(12.5), V::Num(3.0), V::Geo(43.5, 5.4)],
        vec![V::Null, V::Null, V::Null, V::Null, V::Null, V::Null],
        vec![V::Time(-1), V::Time(i64::MAX), V::text(""), V::Num(-0.0), V::Num(1e300), V::Null],
    ];
    let mut run = c.run(Some(10));
    for r in &rows {
        let _ = run.push(r);
    }
    let _ = run.finish();
});
