//! Fuzz target: ThingsBoard device and gateway telemetry never panic the decoders.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agora_ingest::thingsboard::decode_device("device-1", data);
    let _ = agora_ingest::thingsboard::decode_gateway(data);
});
