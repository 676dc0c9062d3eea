//! A declarative byte-layout decoder for LoRaWAN payloads without a codec: per device profile, a
//! list of fields at fixed offsets (`offset`, `type`, `scale`, `property`), as configured in
//! `agora.toml`.

use std::borrow::Cow;

use agora_model::Value;
use serde::Deserialize;

use crate::Refusal;
use crate::record::Field;

/// The binary type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteType {
    /// Unsigned byte.
    U8,
    /// Signed byte.
    I8,
    /// Unsigned 16-bit, big endian.
    U16be,
    /// Signed 16-bit, big endian.
    I16be,
    /// Unsigned 16-bit, little endian.
    U16le,
    /// Signed 16-bit, little endian.
    I16le,
    /// Unsigned 32-bit, big endian.
    U32be,
    /// Signed 32-bit, big endian.
    I32be,
    /// Unsigned 32-bit, little endian.
    U32le,
    /// Signed 32-bit, little endian.
    I32le,
    /// IEEE 754 single, big endian.
    F32be,
    /// IEEE 754 single, little endian.
    F32le,
}

impl ByteType {
    fn len(self) -> usize {
        match self {
            Self::U8 | Self::I8 => 1,
            Self::U16be | Self::I16be | Self::U16le | Self::I16le => 2,
            _ => 4,
        }
    }

    fn read(self, b: &[u8]) -> f64 {
        let a2 = |b: &[u8]| [b[0], b[1]];
        let a4 = |b: &[u8]| [b[0], b[1], b[2], b[3]];
        match self {
            Self::U8 => f64::from(b[0]),
            Self::I8 => f64::from(b[0] as i8),
            Self::U16be => f64::from(u16::from_be_bytes(a2(b))),
            Self::I16be => f64::from(i16::from_be_bytes(a2(b))),
            Self::U16le => f64::from(u16::from_le_bytes(a2(b))),
            Self::I16le => f64::from(i16::from_le_bytes(a2(b))),
            Self::U32be => f64::from(u32::from_be_bytes(a4(b))),
            Self::I32be => f64::from(i32::from_be_bytes(a4(b))),
            Self::U32le => f64::from(u32::from_le_bytes(a4(b))),
            Self::I32le => f64::from(i32::from_le_bytes(a4(b))),
            Self::F32be => f64::from(f32::from_be_bytes(a4(b))),
            Self::F32le => f64::from(f32::from_le_bytes(a4(b))),
        }
    }
}

/// One field of a layout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ByteField {
    /// Byte offset in the payload.
    pub offset: usize,
    /// Binary type.
    #[serde(rename = "type")]
    pub ty: ByteType,
    /// Multiplier applied to the raw number.
    #[serde(default = "one")]
    pub scale: f64,
    /// Property (or alias) the value is.
    pub property: String,
    /// Unit of the scaled value, if not the property's canonical one.
    #[serde(default)]
    pub unit: Option<String>,
}

fn one() -> f64 {
    1.0
}

/// Decode a payload with a layout. A payload shorter than the layout is refused whole.
pub fn decode(layout: &[ByteField], payload: &[u8]) -> Result<Vec<Field<'static>>, Refusal> {
    layout
        .iter()
        .map(|f| {
            let b = payload.get(f.offset..f.offset + f.ty.len()).ok_or_else(|| {
                format!(
                    "payload of {} bytes is too short for {} at offset {}",
                    payload.len(),
                    f.property,
                    f.offset
                )
            })?;
            let v = f.ty.read(b) * f.scale;
            Ok(Field {
                name: Cow::Owned(f.property.clone()),
                value: Value::F64((v * 1e6).round() / 1e6),
                unit: f.unit.clone().map(Cow::Owned),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_soil_probe_layout() {
        let layout: Vec<ByteField> = serde_json::from_str(
            r#"[{"offset":0,"type":"u16be","scale":0.1,"property":"soil_moisture"},
                {"offset":2,"type":"i16be","scale":0.01,"property":"soil_temperature"},
                {"offset":4,"type":"u8","property":"battery"}]"#,
        )
        .unwrap();
        let f = decode(&layout, &[0x01, 0x3B, 0xFF, 0x38, 0x5A]).unwrap();
        let v: Vec<(&str, &Value)> = f.iter().map(|f| (f.name.as_ref(), &f.value)).collect();
        assert_eq!(
            v,
            [
                ("soil_moisture", &Value::F64(31.5)),
                ("soil_temperature", &Value::F64(-2.0)),
                ("battery", &Value::F64(90.0))
            ]
        );
        assert!(decode(&layout, &[0x01]).unwrap_err().contains("too short"));
    }
}
