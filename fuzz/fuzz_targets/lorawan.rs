//! Fuzz target: ChirpStack events and Cayenne LPP payloads never panic the decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agora_ingest::cayenne_lpp::decode(data);
    let layouts = Default::default();
    let _ = agora_ingest::chirpstack::decode("application/a/device/0101010101010101/event/up", data, &layouts);
});
