//! Integration tests of agora: the real server on port 0 with a temporary data directory, driven
//! over HTTP like any client would.

mod alerts;
mod audit;
mod backup;
mod chirpstack_fixtures;
mod commerce;
mod csv_import;
mod doctor;
mod email;
mod faults;
mod forecast;
mod hardening;
mod helpers;
mod indicators;
mod influxql;
mod ingest;
mod limits;
mod mqtt;
mod ngsi;
mod open_data;
mod people;
mod permissions;
mod proximity;
mod query;
mod recovery;
mod reports;
mod services;
mod snapshots;
mod sources;
mod sta;
mod tokens;
mod upgrade;
mod visitors;
mod web;
mod wellbeing;
