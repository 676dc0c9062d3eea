//! Fuzz target: Sensor.Community pushes never panic the decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = agora_ingest::sensor_community::decode("esp8266-1234567", Some("1"), data);
});
