//! Fuzz target: the 15-minute city's readers (OSM PBF and XML, BPE, Filosofi, addresses,
//! facilities and neighbourhoods) answer an error or a value, never a panic.
#![no_main]

use agora_proximity::{facilities, osm, population};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = osm::read(data);
    let _ = osm::pbf::read(data);
    let _ = facilities::read_bpe(data, &facilities::Mapping::default());
    let _ = facilities::read_csv(data);
    let _ = facilities::read_geojson(data);
    let _ = population::read_filosofi(data);
    let _ = population::read_addresses(data);
    let _ = population::read_areas(data);
});
