//! Facilities and population files written by the tests: INSEE's BPE mapped to the themes as
//! configured, CSV and GeoJSON facilities, Filosofi squares, weighted addresses, neighbourhoods;
//! bad files refused whole, with the lines named.

use agora_proximity::facilities::{self, Mapping, Target, Theme};
use agora_proximity::population::{self, parse_square_id, square_id_at};
use agora_proximity::project::lambert93_to_wgs84;

const BPE: &str = "AN;DEPCOM;TYPEQU;NOMRS;LAMBERT_X;LAMBERT_Y;LONGITUDE;LATITUDE;QUALITE_XY;EPSG\n\
2023;13001;D301;PHARMACIE DU COURS;;;5.4474;43.5265;Bonne;2154\n\
2023;13001;B203;BOULANGERIE;893000;6270000;;;Bonne;2154\n\
2023;13001;E107;GARE;893100;6270100;;;Bonne;2154\n\
2023;13001;F111;;;;;;Non géolocalisé;\n\
2023;13001;C104;ECOLE;893200;6270200;;;Bonne;2154\n";

#[test]
fn bpe_codes_are_mapped_to_themes_as_configured() {
    let got = facilities::read_bpe(BPE.as_bytes(), &Mapping::default()).unwrap();
    assert_eq!((got.facilities.len(), got.ignored, got.not_located), (3, 1, 1));
    let f = &got.facilities;
    assert_eq!(
        (f[0].theme, f[0].kind.as_str(), f[0].name.as_deref()),
        (Theme::Health, "pharmacie", Some("PHARMACIE DU COURS"))
    );
    assert_eq!((f[0].lon, f[0].lat), (5.4474, 43.5265));
    assert_eq!((f[1].theme, f[1].kind.as_str()), (Theme::Commerce, "boulangerie"));
    let (lon, lat) = lambert93_to_wgs84(893_000.0, 6_270_000.0);
    assert_eq!((f[1].lon, f[1].lat), (lon, lat));
    assert_eq!((f[2].theme, f[2].kind.as_str()), (Theme::Social, "école élémentaire"));
    assert_eq!(f[2].commune.as_deref(), Some("13001"));

    // A city's own mapping: schools under leisure by a prefix, stations kept as social.
    let mut mine = Mapping::default();
    mine.0.insert("C1".into(), Target::Theme { theme: Theme::Leisure, label: None });
    mine.0.remove("C104");
    mine.0
        .insert("E107".into(), Target::Theme { theme: Theme::Social, label: Some("gare".into()) });
    let got = facilities::read_bpe(BPE.as_bytes(), &mine).unwrap();
    assert_eq!((got.facilities.len(), got.ignored), (4, 0));
    let school = got.facilities.iter().find(|f| f.name.as_deref() == Some("ECOLE")).unwrap();
    assert_eq!((school.theme, school.kind.as_str()), (Theme::Leisure, "C104"));
}

#[test]
fn a_bpe_file_with_unknown_codes_is_refused_whole_naming_them() {
    let bad = format!(
        "{BPE}2023;13001;Z999;X;;;5.4;43.5;Bonne;2154\n2023;13001;Z999;Y;;;5.4;43.5;Bonne;2154\n2023;13001;D301;Z;;;north;43.5;Bonne;2154\n"
    );
    let err = facilities::read_bpe(bad.as_bytes(), &Mapping::default()).unwrap_err().to_string();
    assert!(err.contains("nothing imported"), "{err}");
    assert!(err.contains("\"Z999\" (lines 7, 8)"), "{err}");
    assert!(err.contains("line 9: a coordinate is not a number"), "{err}");
    let err = facilities::read_bpe(b"DEPCOM;NOM\n13001;X\n", &Mapping::default()).unwrap_err();
    assert!(err.to_string().contains("no TYPEQU column"));
    let mut wrong = Mapping::default();
    wrong.0.insert("pharmacy".into(), Target::Theme { theme: Theme::Health, label: None });
    assert!(wrong.check().unwrap_err().to_string().contains("\"pharmacy\""));
    assert!(Mapping::default().check().is_ok());
}

#[test]
fn facilities_from_csv_and_geojson() {
    let csv = "id,name,theme,kind,lon,lat\nm1,Marché,commerces,marché,5.45,43.53\np1,Parc Jourdan,leisure,parc,5.443,43.522\n";
    let got = facilities::read_csv(csv.as_bytes()).unwrap().facilities;
    assert_eq!(
        (got[0].theme, got[1].theme, got[1].kind.as_str()),
        (Theme::Commerce, Theme::Leisure, "parc")
    );
    let err =
        facilities::read_csv(b"theme,lon,lat\nhealth,5.4,43.5\nsport,5.4,43.5\nhealth,5.4,95\n")
            .unwrap_err()
            .to_string();
    assert!(err.contains("line 3: theme \"sport\"") && err.contains("line 4: 5.4, 95"), "{err}");

    let gj = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"theme":"health","kind":"médecin","name":"Cabinet"},"geometry":{"type":"Point","coordinates":[5.44,43.52]}},
      {"type":"Feature","properties":{"theme":"leisure","kind":"parc"},"geometry":{"type":"Polygon","coordinates":[[[5.0,43.0],[5.2,43.0],[5.2,43.2],[5.0,43.2],[5.0,43.0]]]}}]}"#;
    let got = facilities::read_geojson(gj.as_bytes()).unwrap().facilities;
    assert_eq!(got.len(), 2);
    assert!((got[1].lon - 5.1).abs() < 1e-12 && (got[1].lat - 43.1).abs() < 1e-12);
    let err = facilities::read_geojson(br#"{"type":"FeatureCollection","features":[{"properties":{"theme":"health"},"geometry":{"type":"LineString","coordinates":[]}}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("feature 0") && err.contains("LineString"), "{err}");
}

#[test]
fn filosofi_squares_and_weighted_addresses() {
    let csv = "Idcar_200m;Idcar_1km;I_est_200;lcog_geo;Ind;Men\n\
CRS3035RES200mN2263400E3954200;CRS3035RES1000mN2263000E3954000;0;13001;120.5;55\n\
CRS3035RES200mN2263400E3954400;CRS3035RES1000mN2263000E3954000;1;1300113002;8;3\n";
    let sq = population::read_filosofi(csv.as_bytes()).unwrap();
    assert_eq!(sq.len(), 2);
    assert_eq!(
        (sq[0].population, sq[0].commune.as_deref(), sq[1].commune.as_deref()),
        (120.5, Some("13001"), Some("13001"))
    );
    // The centre falls in its own square, and neighbouring squares' centres are 200 m apart on
    // the grid, 199 m on the ground in Provence (the equal-area projection stretches east–west by
    // 0.5 % there).
    assert_eq!(square_id_at(sq[0].lon, sq[0].lat), sq[0].id);
    let d = agora_proximity::project::haversine_m((sq[0].lon, sq[0].lat), (sq[1].lon, sq[1].lat));
    assert!((d - 199.0).abs() < 0.5, "{d}");
    assert_eq!(
        parse_square_id("CRS3035RES200mN2263400E3954200"),
        Some((3_954_200.0, 2_263_400.0, 200))
    );
    assert_eq!(parse_square_id("N2263400E3954200"), None);

    let bad = format!(
        "{csv}CRS3035RES200mN2263400E3954200;x;0;13001;3;1\nnot-a-square;x;0;13001;3;1\nCRS3035RES200mN2263600E3954200;x;0;13001;-4;1\n"
    );
    let err = population::read_filosofi(bad.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("line 4: square CRS3035RES200mN2263400E3954200 is listed twice"), "{err}");
    assert!(err.contains("line 5: \"not-a-square\""), "{err}");
    assert!(err.contains("line 6: population \"-4\""), "{err}");

    let addr =
        population::read_addresses(b"id,lon,lat,logements\na1,5.44,43.52,12\na2,5.45,43.53,3\n")
            .unwrap();
    assert_eq!((addr.len(), addr[0].population, addr[0].side_m), (2, 12.0, 0));
    assert!(population::read_addresses(b"lon,lat,logements\n5.44,43.52,many\n").is_err());
}

#[test]
fn neighbourhoods_hold_their_points_and_not_their_holes() {
    let gj = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"code":"130010101","nom":"Centre","commune":"13001"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[4,4],[6,4],[6,6],[4,6],[4,4]]]}}]}"#;
    let areas = population::read_areas(gj.as_bytes()).unwrap();
    assert_eq!((areas[0].code.as_str(), areas[0].name.as_str()), ("130010101", "Centre"));
    assert!(areas[0].contains(1.0, 1.0));
    assert!(!areas[0].contains(5.0, 5.0));
    assert!(!areas[0].contains(11.0, 5.0));
    let twice = r#"{"type":"FeatureCollection","features":[
      {"properties":{"code":"A"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}},
      {"properties":{"code":"A"},"geometry":{"type":"Polygon","coordinates":[[[0,0],[1,0],[1,1],[0,0]]]}}]}"#;
    assert!(
        population::read_areas(twice.as_bytes()).unwrap_err().to_string().contains("used twice")
    );
}
