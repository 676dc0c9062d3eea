//! Fuzz target: the InfluxDB line-protocol decoder never panics, and accounts for every line.
#![no_main]

use agora_model::Precision;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let d = agora_ingest::line_protocol::decode(data, Precision::Nanoseconds);
    let lines = data.split(|&b| b == b'\n').count();
    assert!(d.records.len() + d.errors.len() <= lines);
});
