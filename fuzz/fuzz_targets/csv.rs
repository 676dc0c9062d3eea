//! Fuzz target: the CSV reader never panics, whatever the file holds.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mapping: agora_ingest::csv::CsvMapping = serde_json::from_str(
        r#"{"device_column": "device", "time_column": "time", "timezone": "Europe/Paris", "columns": {"pm10": "pm10", "t": {"property": "temperature", "unit": "°F"}}}"#,
    )
    .expect("valid mapping");
    if let Ok(mut r) = mapping.reader(data, data) {
        while r.next_record().is_some() {}
    }
});
