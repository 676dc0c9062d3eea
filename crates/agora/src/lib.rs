//! The agora binary as a library: configuration, the wiring of all components (`serve`), the demo
//! city and the benchmark. `main.rs` only parses the command line.

pub mod backup;
pub mod bench;
pub mod bench_fleet;
pub mod config;
pub mod demo;
pub mod demo_city;
pub mod doctor;
pub mod forecasts;
pub mod import;
pub mod s3;
pub mod schedules;
pub mod serve;
pub mod soak;

/// The version of this build.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The commit this build comes from (`unknown` outside a git checkout).
pub const COMMIT: &str = env!("AGORA_COMMIT");
