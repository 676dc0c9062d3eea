//! `agora import csv FILE --mapping MAPPING.toml`: stream a CSV file to a running agora through
//! its HTTP API, with progress, and report each rejected row by its line in the file.

use std::io::{BufReader, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use agora_ingest::csv::CsvMapping;
use agora_model::Value;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value as JsonValue, json};

/// `agora import csv` arguments.
#[derive(Debug, Clone, Args)]
pub struct ImportCsvArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// The mapping (TOML): device, time and value columns.
    #[arg(long)]
    pub mapping: PathBuf,
    /// agora's URL.
    #[arg(long, env = "AGORA_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An ingest token.
    #[arg(long, env = "AGORA_TOKEN")]
    pub token: String,
    /// Rows per request.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
}

/// Counts the bytes read, for progress.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

fn json_of(v: &Value) -> JsonValue {
    match v {
        Value::F64(x) => json!(x),
        Value::I64(x) => json!(x),
        Value::Bool(x) => json!(x),
        Value::Str(x) => json!(x),
    }
}

/// What an import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: u64,
    /// Points stored.
    pub stored: u64,
    /// Rows or values refused.
    pub rejected: u64,
}

/// Run the import.
pub async fn run(args: ImportCsvArgs) -> anyhow::Result<ImportSummary> {
    let text = std::fs::read_to_string(&args.mapping)
        .with_context(|| format!("cannot read {}", args.mapping.display()))?;
    let mapping: CsvMapping = toml::from_str(&text)
        .with_context(|| format!("invalid mapping in {}", args.mapping.display()))?;
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    let mut sniff = vec![0u8; 4096];
    let n = std::fs::File::open(&args.file)?.read(&mut sniff)?;
    sniff.truncate(n);
    let read = Arc::new(AtomicU64::new(0));
    let input =
        Counting { inner: BufReader::new(std::fs::File::open(&args.file)?), read: read.clone() };
    let mut reader = mapping.reader(input, &sniff).map_err(anyhow::Error::msg)?;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/observations", args.url.trim_end_matches('/'));
    let mut summary = ImportSummary::default();
    let mut done = false;
    while !done {
        let mut items = Vec::new();
        let mut lines = Vec::new();
        let mut rows = 0;
        while rows < args.batch {
            match reader.next_record() {
                Some(Ok(r)) => {
                    rows += 1;
                    for f in &r.fields {
                        items.push(json!({
                            "device": r.device, "time": r.time.map(|t| t.to_rfc3339()),
                            "property": f.name, "value": json_of(&f.value), "unit": f.unit,
                            "kind": r.kind, "site": r.site, "commune": r.commune,
                        }));
                        lines.push(r.line);
                    }
                }
                Some(Err(e)) => {
                    rows += 1;
                    summary.rejected += 1;
                    eprintln!("line {}: {}", e.line, e.reason);
                }
                None => {
                    done = true;
                    break;
                }
            }
        }
        summary.rows += rows as u64;
        if items.is_empty() {
            continue;
        }
        let resp = client
            .post(&url)
            .bearer_auth(&args.token)
            .json(&items)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = resp.status();
        if status.as_u16() == 204 {
            summary.stored += items.len() as u64;
        } else {
            let body: JsonValue = resp.json().await.unwrap_or_default();
            if body["code"] != "partial_write" {
                bail!(
                    "agora refused the import ({status}): {}",
                    body["detail"].as_str().unwrap_or("no detail")
                );
            }
            summary.stored += body["accepted"].as_u64().unwrap_or(0);
            for e in body["rejected"].as_array().into_iter().flatten() {
                let item = e["line"].as_u64().unwrap_or(0) as usize;
                let line = item.checked_sub(1).and_then(|i| lines.get(i)).copied().unwrap_or(0);
                summary.rejected += 1;
                eprintln!("line {line}: {}", e["reason"].as_str().unwrap_or(""));
            }
        }
        let pct = if size > 0 {
            read.load(Ordering::Relaxed) as f64 / size as f64 * 100.0
        } else {
            100.0
        };
        eprintln!(
            "{} rows, {} points stored, {} rejected ({:.0} %)",
            summary.rows,
            summary.stored,
            summary.rejected,
            pct.min(100.0)
        );
    }
    Ok(summary)
}
