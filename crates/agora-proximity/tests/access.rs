//! Walking access worked by hand on a straight street, and the what-if checked against the whole
//! computation done again with the facility added.

use agora_proximity::access::{Selector, Settings, Study, isochrone};
use agora_proximity::facilities::{Facility, Theme};
use agora_proximity::network::Network;
use agora_proximity::osm;
use agora_proximity::population::Square;
use proptest::prelude::*;

/// Metres per degree of longitude at 43.5° N on the haversine's sphere.
fn m_per_deg_lon() -> f64 {
    6_371_008.8f64.to_radians() * 43.5f64.to_radians().cos()
}

/// A straight east–west street of 10 segments of 150 m from (5.4 E, 43.5 N).
fn street() -> Network {
    let pts: Vec<(f64, f64)> =
        (0..11).map(|i| (5.4 + 150.0 * f64::from(i) / m_per_deg_lon(), 43.5)).collect();
    let edges: Vec<(u32, u32)> = (0..10).map(|i| (i, i + 1)).collect();
    Network::from_edges(pts, &edges)
}

fn at(metres_east: f64, metres_north: f64) -> (f64, f64) {
    (5.4 + metres_east / m_per_deg_lon(), 43.5 + metres_north / 6_371_008.8f64.to_radians())
}

fn facility(id: &str, theme: Theme, kind: &str, p: (f64, f64)) -> Facility {
    Facility {
        id: id.into(),
        name: None,
        theme,
        kind: kind.into(),
        lon: p.0,
        lat: p.1,
        commune: None,
    }
}

fn square(id: &str, p: (f64, f64), population: f64) -> Square {
    Square { id: id.into(), lon: p.0, lat: p.1, population, side_m: 200, commune: None }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.01
}

#[test]
fn times_shares_gaps_and_a_what_if_worked_by_hand() {
    let net = street();
    let facilities = vec![
        facility("pharmacy", Theme::Health, "pharmacie", at(0.0, 0.0)),
        facility("bakery", Theme::Commerce, "boulangerie", at(1500.0, 0.0)),
        // 50 m north of the street's middle: a 50 m walk to reach it.
        facility("park", Theme::Leisure, "parc", at(750.0, 50.0)),
    ];
    let squares = vec![
        square("west", at(0.0, 0.0), 100.0),
        square("middle", at(600.0, 0.0), 200.0),
        square("east", at(1500.0, 0.0), 300.0),
        square("hill", at(750.0, 1000.0), 50.0),
    ];
    let study = Study::new(&net, &facilities, &squares, Settings::default()).unwrap();
    // 4.5 km/h is 75 m a minute.
    let access = study.squares();
    let m = |i: usize, t: Theme| access[i].minutes.get(&t).copied();
    assert!(close(m(1, Theme::Health).unwrap(), 8.0));
    assert!(close(m(1, Theme::Commerce).unwrap(), 12.0));
    assert!(close(m(1, Theme::Leisure).unwrap(), 200.0 / 75.0));
    assert_eq!(m(1, Theme::Social), None);
    assert!(close(m(0, Theme::Commerce).unwrap(), 20.0));
    assert!(close(m(2, Theme::Leisure).unwrap(), 800.0 / 75.0));
    assert!(access[3].off_network && access[3].minutes.is_empty());
    let within: Vec<Option<u8>> = access.iter().map(|a| a.themes_within).collect();
    assert_eq!(within, vec![Some(2), Some(3), Some(2), None], "off the network: unknown");
    assert_eq!(access[1].all_themes, None);

    let shares = study.shares(|_, _| true);
    assert_eq!((shares.population, shares.off_network), (650.0, 50.0));
    assert!(close(shares.coverage.unwrap(), 600.0 / 650.0));
    assert!(close(shares.within[&Theme::Health].unwrap(), 0.5));
    assert!(close(shares.within[&Theme::Commerce].unwrap(), 500.0 / 600.0));
    assert!(close(shares.within[&Theme::Leisure].unwrap(), 1.0));
    // No social facility was imported: unknown, not 0 %; and so is the share with all four.
    assert_eq!((shares.within[&Theme::Social], shares.all_themes), (None, None));

    let health = study.field(&Selector::Theme(Theme::Health));
    let gaps = study.gaps(&health);
    assert_eq!(gaps.len(), 1);
    assert_eq!((gaps[0].population, gaps[0].squares.clone()), (300.0, vec!["east".to_string()]));
    assert!(close(gaps[0].best_minutes.unwrap(), 20.0));
    // No social facility at all: every populated square on the network is in a gap, none
    // reachable.
    let social = study.gaps(study.theme(Theme::Social));
    assert_eq!(social.iter().map(|g| g.population).sum::<f64>(), 600.0);
    assert!(social.iter().all(|g| g.best_minutes.is_none()));

    // A second pharmacy at the east end: only "east" changes, from 20 to 0 minutes.
    let w = study.what_if(&health, at(1500.0, 0.0).0, at(1500.0, 0.0).1);
    assert!(w.attached);
    assert_eq!(w.changed.len(), 1);
    assert_eq!(w.changed[0].0, "east");
    assert!(close(w.changed[0].1.unwrap(), 20.0) && close(w.changed[0].2, 0.0));
    assert_eq!((w.newly_within.clone(), w.population_gained), (vec!["east".to_string()], 300.0));
    assert!(close(w.share_before.unwrap(), 0.5) && close(w.share_after.unwrap(), 1.0));
    // One far from any street changes nothing, and says so.
    let far = at(750.0, 2000.0);
    assert!(!study.what_if(&health, far.0, far.1).attached);

    // Isochrones from the west end: 5 minutes is 375 m of street, 15 minutes 1125 m; "middle"
    // (600 m) is within 10 minutes.
    let bands = isochrone(&net, &squares, &Settings::default(), 5.4, 43.5).unwrap();
    assert!(
        close(bands[0].km, 0.375) && close(bands[2].km, 1.125),
        "{} {}",
        bands[0].km,
        bands[2].km
    );
    assert_eq!(
        (bands[0].population, bands[1].population, bands[2].population),
        (100.0, 300.0, 300.0)
    );
}

fn quarter() -> Network {
    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quarter.osm")).unwrap();
    osm::read(&bytes).unwrap().0
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The what-if changes exactly the squares whose time falls when the whole study is done
    /// again with the facility added, to the same new times.
    #[test]
    fn a_what_if_changes_exactly_the_squares_a_full_recomputation_changes(
        existing in prop::collection::vec((0.0f64..1.0, 0.0f64..1.0), 0..4),
        people in prop::collection::vec((0.0f64..1.0, 0.0f64..1.0, 1.0f64..500.0), 1..30),
        new in (0.0f64..1.0, 0.0f64..1.0),
    ) {
        let net = quarter();
        let (w, s, e, n) = net.bbox();
        let place = |p: (f64, f64)| (w + (e - w) * p.0, s + (n - s) * p.1);
        let facilities: Vec<Facility> = existing
            .iter()
            .enumerate()
            .map(|(i, p)| facility(&format!("f{i}"), Theme::Health, "pharmacie", place(*p)))
            .collect();
        let squares: Vec<Square> = people
            .iter()
            .enumerate()
            .map(|(i, (x, y, pop))| square(&format!("s{i}"), place((*x, *y)), *pop))
            .collect();
        let settings = Settings { limit_min: 5.0, ..Settings::default() };
        let study = Study::new(&net, &facilities, &squares, settings.clone()).unwrap();
        let field = study.field(&Selector::Kind("pharmacie".into()));
        let p = place(new);
        let what = study.what_if(&field, p.0, p.1);

        let mut more = facilities.clone();
        more.push(facility("new", Theme::Health, "pharmacie", p));
        let again = Study::new(&net, &more, &squares, settings).unwrap();
        let after = again.field(&Selector::Kind("pharmacie".into()));
        let mut expected = Vec::new();
        let mut gained = 0.0;
        for (i, sq) in squares.iter().enumerate() {
            let (old, new) = (study.minutes(i, &field), again.minutes(i, &after));
            if let Some(new) = new && old.is_none_or(|o| new < o - 1e-9) {
                expected.push((sq.id.clone(), new));
                if new <= 5.0 && old.is_none_or(|o| o > 5.0) {
                    gained += sq.population;
                }
            }
        }
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        let got: Vec<(String, f64)> = what.changed.iter().map(|c| (c.0.clone(), c.2)).collect();
        prop_assert_eq!(got.len(), expected.len(), "{:?} vs {:?}", got, expected);
        for (g, x) in got.iter().zip(&expected) {
            prop_assert_eq!(&g.0, &x.0);
            prop_assert!((g.1 - x.1).abs() < 1e-9);
        }
        prop_assert!((what.population_gained - gained).abs() < 1e-9);
    }
}
