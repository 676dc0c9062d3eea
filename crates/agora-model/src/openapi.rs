//! OpenAPI schemas of the model's types, for the API document (feature `openapi`): each says what
//! its parser accepts, so that a client generated from the document sends what agora takes.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::{DeviceId, DeviceKind, InseeCode, PropertyName, SeriesId, SiteId, Timestamp, Value};

fn string(description: &str, pattern: &str, max: usize) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .min_length(Some(1))
        .max_length(Some(max))
        .into()
}

macro_rules! schema {
    ($t:ty, $name:literal, $body:expr) => {
        impl PartialSchema for $t {
            fn schema() -> RefOr<Schema> {
                $body
            }
        }
        impl ToSchema for $t {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

schema!(
    Timestamp,
    "Timestamp",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .description(Some("An instant in UTC, RFC 3339 with up to nanoseconds"))
        .into()
);
schema!(
    Value,
    "Value",
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::String))
        .item(ObjectBuilder::new().schema_type(Type::Boolean))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "A measured value: a number, a string (a state such as defectiveLamp) or a boolean; \
             null for a number that is not finite"
        ))
        .into()
);
schema!(
    DeviceId,
    "DeviceId",
    string(
        "A device identifier (e.g. aq-mairie-01 or a LoRaWAN DevEUI)",
        "^[A-Za-z0-9._:-]+$",
        128
    )
);
schema!(
    SiteId,
    "SiteId",
    string("A place (a square, a street section) identifier", "^[A-Za-z0-9._:-]+$", 128)
);
schema!(
    DeviceKind,
    "DeviceKind",
    string("A device kind (air_quality, noise, streetlight…)", "^[A-Za-z0-9._:-]+$", 64)
);
schema!(
    PropertyName,
    "PropertyName",
    string("A canonical property name in snake_case (pm2_5, laeq)", "^[a-z][a-z0-9_]*$", 64)
);
schema!(
    InseeCode,
    "InseeCode",
    string("A French commune's INSEE code (13001, 2A004)", "^([0-9]{2}|2[AB])[0-9]{3}$", 5)
);
schema!(
    SeriesId,
    "SeriesId",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .description(Some("The storage handle of a series (device × property)"))
        .into()
);
