//! Fuzz target: the native JSON batch decoder never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agora_ingest::json::decode(data);
});
