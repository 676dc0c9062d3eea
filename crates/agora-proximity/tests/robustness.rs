//! Every reader of outside files, given random bytes or a real file damaged at random: an error
//! or a value, never a panic (a property test run in CI; the fuzz target `proximity` goes further
//! where cargo-fuzz is installed).

use agora_proximity::{facilities, osm, population};
use proptest::prelude::*;

const XML: &[u8] = include_bytes!("fixtures/quarter.osm");
const PBF: &[u8] = include_bytes!("fixtures/quarter-raw.osm.pbf");
const BPE: &str = "AN;DEPCOM;TYPEQU;NOMRS;LAMBERT_X;LAMBERT_Y;LONGITUDE;LATITUDE\n2023;13001;D301;P;;;5.44;43.52\n2023;13001;B203;B;893000;6270000;;\n";
const FILOSOFI: &str = "Idcar_200m;lcog_geo;Ind\nCRS3035RES200mN2263400E3954200;13001;120.5\nCRS3035RES200mN2263400E3954400;13001;8\n";
const AREAS: &str = r#"{"type":"FeatureCollection","features":[{"properties":{"code":"A","name":"A"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,1],[0,0]]]}}]}"#;

fn all_readers(bytes: &[u8]) {
    let _ = osm::read(bytes);
    let _ = osm::pbf::read(bytes);
    let _ = osm::xml::read(bytes);
    let _ = facilities::read_bpe(bytes, &facilities::Mapping::default());
    let _ = facilities::read_csv(bytes);
    let _ = facilities::read_geojson(bytes);
    let _ = population::read_filosofi(bytes);
    let _ = population::read_addresses(bytes);
    let _ = population::read_areas(bytes);
}

/// `base` with bytes replaced, inserted or removed at the given places.
fn damage(base: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut v = base.to_vec();
    for &(at, byte, how) in edits {
        if v.is_empty() {
            v.push(byte);
            continue;
        }
        let i = at % v.len();
        match how % 3 {
            0 => v[i] = byte,
            1 => v.insert(i, byte),
            _ => {
                v.remove(i);
            }
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        all_readers(&bytes);
    }

    #[test]
    fn damaged_files_never_panic(
        which in 0usize..5,
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..12),
    ) {
        let base: &[u8] = match which {
            0 => XML,
            1 => PBF,
            2 => BPE.as_bytes(),
            3 => FILOSOFI.as_bytes(),
            _ => AREAS.as_bytes(),
        };
        all_readers(&damage(base, &edits));
    }
}
