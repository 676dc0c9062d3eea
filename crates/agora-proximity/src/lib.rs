//! The 15-minute city: where people live, where the facilities are, and how long it takes to walk
//! from one to the other on the streets.
//!
//! - [`osm`] reads an OpenStreetMap extract (`.osm.pbf` or OSM XML) into a walking
//!   [`network::Network`], keeping the ways pedestrians can use (one-way streets are walkable both
//!   ways; motorways and private ways are not);
//! - [`facilities`] reads facilities from CSV, GeoJSON or INSEE's *Base permanente des
//!   équipements*, each mapped to one of the four themes (commerce, health, social facilities,
//!   leisure);
//! - [`population`] reads INSEE's gridded population (Filosofi, 200 m squares) or addresses with a
//!   weight;
//! - [`access`] computes the walking time from every square to the nearest facility of each theme,
//!   the share of population within 15 minutes, the gaps, isochrones, and the effect of a facility
//!   added on the map;
//! - [`routes`] finds walks on the same network: the shortest, a tour through stops, and the
//!   cool route of a hot afternoon, weighed by the heat-island map, shade and fountains.
//!
//! Everything here is a pure function of files and values: the catalog keeps the imports, the API
//! serves the answers.

pub mod access;
mod error;
pub mod facilities;
mod files;
pub mod network;
pub mod osm;
pub mod population;
pub mod project;
pub mod routes;

pub use error::{Error, Result};
