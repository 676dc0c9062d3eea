//! agora's open data: the datasets an operator publishes and their records, ODSQL (the query
//! language of the Opendatasoft Explore API v2.1, which reusers' code speaks), the DCAT-AP 3
//! catalogue national portals harvest, and exports written as they are read.

pub mod dataset;
pub mod dcat;
pub mod explore;
pub mod odsql;
pub mod parquet;
pub mod records;

pub use records::Records;
