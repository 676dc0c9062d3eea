//! The departments' services, read from their devices: street lighting ([`lighting`]), bins
//! ([`bins`]) and irrigation ([`irrigation`]). The figures are `agora_indicators`' pure
//! functions; here they are fed with readings and kept.

pub mod bins;
pub mod irrigation;
pub mod lighting;
pub mod schedules;

/// The services' settings (agora.toml's `[services.*]`).
#[derive(Debug, Clone, Default)]
pub struct ServicesConfig {
    /// Street lighting.
    pub lighting: lighting::LightingConfig,
    /// Bins.
    pub bins: bins::BinsConfig,
    /// Irrigation.
    pub irrigation: irrigation::IrrigationConfig,
}

/// Each device's readings of `property` in `[from, to]` (Unix s), oldest first, as `(s, value)`;
/// none for a device without that series.
pub async fn readings(
    catalog: &dyn agora_store::Catalog,
    store: &dyn agora_store::SeriesStore,
    devices: &[agora_store::catalog::Device],
    property: &str,
    from: i64,
    to: i64,
) -> crate::Result<Vec<Vec<(i64, f64)>>> {
    use agora_model::Timestamp;
    crate::summary::concurrently(devices, |d| async move {
        let Some(s) = catalog.lookup_series(&[(d.id.as_str(), property)])[0] else {
            return Ok::<_, crate::Error>(Vec::new());
        };
        let pts = store
            .read_numbers(
                s,
                Timestamp::from_nanos(from.saturating_mul(1_000_000_000)),
                Timestamp::from_nanos(to.saturating_add(1).saturating_mul(1_000_000_000)),
                1_000_000,
            )
            .await?;
        Ok(pts.into_iter().map(|(t, v)| (t.as_nanos().div_euclid(1_000_000_000), v)).collect())
    })
    .await
}
