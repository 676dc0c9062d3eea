//! Fuzz target: the InfluxQL parser (and the regexes it compiles) never panics, whatever the
//! query string holds; what it accepts has at least one statement.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data)
        && let Ok(parsed) = agora_query::influxql::parse(q)
    {
        assert!(!parsed.statements.is_empty());
    }
});
