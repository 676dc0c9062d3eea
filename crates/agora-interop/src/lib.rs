//! The languages of the standard APIs agora speaks, kept apart from HTTP so that they can be
//! tested and fuzzed alone:
//!
//! - [`geo`]: geometries from GeoJSON and WKT, and the spatial predicates both OGC SensorThings
//!   (`geo.intersects`, `st_within`, `geo.distance`) and NGSI-LD (`georel`) filter with;
//! - [`sta`]: OGC SensorThings API 1.1 resource paths and the `$filter` expression language;
//! - [`ngsi`]: the NGSI-LD query language (`q`); [`jsonld`]: the `@context` terms NGSI-LD
//!   names are expanded and compacted with, and `idPattern`.
//!
//! Every parser here takes text from outside: it refuses garbage with a message naming the
//! problem and its position, bounds what it builds (nesting, vertices, length), and never panics.

pub mod geo;
pub mod jsonld;
pub mod ngsi;
pub mod sta;
