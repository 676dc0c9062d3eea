//! The heat indicators against values computed outside agora: the NWS's published heat-index
//! chart and online calculator, MetPy's implementation on the edge regions, and Environment
//! Canada's humidex formula evaluated in Python (see `tests/fixtures/README.md`).

use agora_indicators::heat::{heat_index_f, humidex, humidex_rh};

/// Rows of a CSV file: header names, then cells (empty cells as `None`).
fn csv(text: &str) -> (Vec<String>, Vec<Vec<Option<f64>>>) {
    let mut lines = text.lines();
    let head: Vec<String> = lines.next().unwrap().split(',').map(str::to_owned).collect();
    let rows = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(|c| c.trim().parse::<f64>().ok()).collect())
        .collect();
    (head, rows)
}

/// The chart's grid: (temperature °F, RH %, value) of each filled cell.
fn grid(text: &str) -> Vec<(f64, f64, f64)> {
    let (head, rows) = csv(text);
    let rh: Vec<f64> =
        head[1..].iter().map(|h| h.trim_start_matches("rh_").parse().unwrap()).collect();
    let mut out = Vec::new();
    for r in rows {
        let t = r[0].unwrap();
        for (i, v) in r[1..].iter().enumerate() {
            if let Some(v) = v {
                out.push((t, rh[i], *v));
            }
        }
    }
    out
}

#[test]
fn heat_index_matches_the_nws_calculator_on_every_cell() {
    let cells = grid(include_str!("fixtures/heat_index_nws_calculator.csv"));
    assert_eq!(cells.len(), 208);
    for (t, rh, want) in cells {
        let got = heat_index_f(t, rh).unwrap();
        assert!((got - want).abs() <= 0.05, "{t} °F, {rh} %: {got:.2} vs the calculator's {want}");
    }
}

#[test]
fn heat_index_matches_the_published_chart_rounded() {
    // The chart leaves out the high-humidity adjustment; one cell is off the regression.
    let off = [
        (80, 95),
        (80, 100),
        (82, 90),
        (82, 95),
        (82, 100),
        (84, 95),
        (84, 100),
        (86, 95),
        (90, 45),
    ];
    let cells = grid(include_str!("fixtures/heat_index_nws.csv"));
    assert!(cells.len() > 100);
    let mut checked = 0;
    for (t, rh, want) in cells {
        if off.contains(&(t as i32, rh as i32)) {
            continue;
        }
        let got = heat_index_f(t, rh).unwrap();
        // The chart rounds half up.
        assert_eq!((got + 0.5).floor(), want, "{t} °F, {rh} %: {got:.2}");
        checked += 1;
    }
    assert!(checked > 100);
}

#[test]
fn heat_index_matches_metpy_on_the_edges() {
    let text = include_str!("fixtures/heat_index_metpy.csv");
    let mut n = 0;
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let (t, rh, want): (f64, f64, f64) =
            (c[0].parse().unwrap(), c[1].parse().unwrap(), c[5].parse().unwrap());
        let got = heat_index_f(t, rh).unwrap();
        assert!((got - want).abs() < 1e-3, "{t} °F, {rh} % ({}): {got} vs MetPy's {want}", c[2]);
        n += 1;
    }
    assert!(n > 300, "{n} rows");
}

#[test]
fn humidex_matches_the_formula_evaluated_elsewhere() {
    let (head, rows) = csv(include_str!("fixtures/humidex_dewpoint.csv"));
    let td: Vec<f64> =
        head[1..].iter().map(|h| h.trim_start_matches("td_").parse().unwrap()).collect();
    let mut n = 0;
    for r in rows {
        let t = r[0].unwrap();
        for (i, v) in r[1..].iter().enumerate() {
            if let Some(want) = v {
                let got = humidex(t, td[i]).unwrap();
                assert!(
                    (got - want).abs() <= 0.005 + 1e-9,
                    "{t} °C, dew point {}: {got} vs {want}",
                    td[i]
                );
                n += 1;
            }
        }
    }
    assert!(n > 200);
    // By relative humidity, through Bolton's dew point (column humidex, 4 decimals).
    let text = include_str!("fixtures/humidex.csv");
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        let (t, rh, want): (f64, f64, f64) =
            (c[0].parse().unwrap(), c[1].parse().unwrap(), c[3].parse().unwrap());
        let got = humidex_rh(t, rh).unwrap();
        assert!((got - want).abs() <= 0.0005 + 1e-9, "{t} °C, {rh} %: {got} vs {want}");
    }
}
