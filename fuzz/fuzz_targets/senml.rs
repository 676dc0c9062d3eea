//! Fuzz target: the SenML decoder never panics.
#![no_main]

use agora_model::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agora_ingest::senml::decode(data, Timestamp::from_nanos(1_767_225_600_000_000_000));
});
