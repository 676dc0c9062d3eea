//! The departments' services, read from their devices: street lighting ([`lighting`]), bins
//! ([`bins`]) and irrigation ([`irrigation`]). The figures are `agora_indicators`' pure
//! functions; here they are fed with readings and kept.

pub mod bins;
pub mod irrigation;
pub mod lighting;

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
