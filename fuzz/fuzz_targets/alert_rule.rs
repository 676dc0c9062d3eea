//! Fuzz target: any alert rule a client sends (JSON, as `POST /api/v1/rules` takes it) is
//! refused with a message or checked without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rule) = serde_json::from_slice::<agora_alerts::Rule>(data) else { return };
    if let Err(e) = rule.check(&|p: &str| matches!(p, "o3" | "pm10" | "laeq" | "lamp_status")) {
        assert!(!e.0.is_empty(), "a refusal says why");
    }
});
