//! The French calendar footfall is read against: the public holidays of metropolitan France
//! (Code du travail, article L3133-1), Easter and its moving feasts computed (Alsace-Moselle's
//! two extra days, Good Friday and 26 December, are not in it: agora's cities are in Provence);
//! and the school holidays of a zone, which are decided each year by the ministry and so are data:
//! zone B's (Aix-Marseille) ships in `data/school-holidays-zone-b.csv`, an operator can load
//! another calendar ([`SchoolHolidays::parse_csv`]).

use chrono::{Datelike, Days, NaiveDate};

/// A public holiday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Holiday {
    /// 1 January.
    NewYear,
    /// Easter Monday (Lundi de Pâques).
    EasterMonday,
    /// 1 May.
    LabourDay,
    /// 8 May, 1945.
    VictoryDay,
    /// Ascension Thursday, 39 days after Easter.
    Ascension,
    /// Whit Monday (Lundi de Pentecôte), 50 days after Easter.
    WhitMonday,
    /// 14 July.
    BastilleDay,
    /// 15 August.
    Assumption,
    /// 1 November.
    AllSaints,
    /// 11 November, 1918.
    Armistice,
    /// 25 December.
    Christmas,
}

impl Holiday {
    /// Its French name.
    pub fn name_fr(self) -> &'static str {
        match self {
            Holiday::NewYear => "Jour de l'an",
            Holiday::EasterMonday => "Lundi de Pâques",
            Holiday::LabourDay => "Fête du Travail",
            Holiday::VictoryDay => "Victoire 1945",
            Holiday::Ascension => "Ascension",
            Holiday::WhitMonday => "Lundi de Pentecôte",
            Holiday::BastilleDay => "Fête nationale",
            Holiday::Assumption => "Assomption",
            Holiday::AllSaints => "Toussaint",
            Holiday::Armistice => "Armistice 1918",
            Holiday::Christmas => "Noël",
        }
    }
}

/// Easter Sunday of a year of the Gregorian calendar (the anonymous algorithm of 1876, as Meeus
/// gives it); `None` outside the years chrono represents.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    let a = year.rem_euclid(19);
    let b = year.div_euclid(100);
    let c = year.rem_euclid(100);
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32)
}

/// The public holidays of a year, in date order.
pub fn public_holidays(year: i32) -> Vec<(NaiveDate, Holiday)> {
    let fixed = [
        (1, 1, Holiday::NewYear),
        (5, 1, Holiday::LabourDay),
        (5, 8, Holiday::VictoryDay),
        (7, 14, Holiday::BastilleDay),
        (8, 15, Holiday::Assumption),
        (11, 1, Holiday::AllSaints),
        (11, 11, Holiday::Armistice),
        (12, 25, Holiday::Christmas),
    ];
    let mut out: Vec<(NaiveDate, Holiday)> = fixed
        .iter()
        .filter_map(|&(m, d, h)| NaiveDate::from_ymd_opt(year, m, d).map(|x| (x, h)))
        .collect();
    if let Some(easter) = easter_sunday(year) {
        for (after, h) in
            [(1, Holiday::EasterMonday), (39, Holiday::Ascension), (50, Holiday::WhitMonday)]
        {
            if let Some(x) = easter.checked_add_days(Days::new(after)) {
                out.push((x, h));
            }
        }
    }
    out.sort();
    out
}

/// The public holiday a date is, if any.
pub fn holiday(date: NaiveDate) -> Option<Holiday> {
    public_holidays(date.year()).into_iter().find(|(d, _)| *d == date).map(|(_, h)| h)
}

/// A school holiday: its name and its days without school (first and last inclusive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchoolHoliday {
    /// Its name (`Vacances de Noël`).
    pub name: String,
    /// The first day without school (`YYYY-MM-DD`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub first_day: NaiveDate,
    /// The last day without school.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Date))]
    pub last_day: NaiveDate,
}

/// A calendar of school holidays, in date order, without overlaps.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SchoolHolidays {
    periods: Vec<SchoolHoliday>,
}

/// The calendar agora ships: zone B, from the ministry's published calendar.
const ZONE_B: &str = include_str!("../data/school-holidays-zone-b.csv");

impl SchoolHolidays {
    /// Zone B's calendar (the académie d'Aix-Marseille's), for the school years agora ships.
    pub fn zone_b() -> Self {
        Self::parse_csv(ZONE_B).expect("the shipped calendar parses")
    }

    /// Read a calendar: a header `name,first_day,last_day`, then one holiday per line (dates
    /// `YYYY-MM-DD`); lines starting with `#` and blank lines are skipped. Every line's problem is
    /// named (`line 4: last_day 2026-01-02 is before first_day 2026-02-14`); a calendar with any
    /// problem is refused whole, so that a half-read one never replaces a good one.
    pub fn parse_csv(text: &str) -> Result<Self, Vec<String>> {
        let mut errors = Vec::new();
        let mut periods = Vec::new();
        let mut header = false;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim().trim_start_matches('\u{feff}');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = n + 1;
            if !header {
                header = true;
                let cols: Vec<&str> = line.split(',').map(str::trim).collect();
                if cols != ["name", "first_day", "last_day"] {
                    errors.push(format!(
                        "line {n}: the header must be `name,first_day,last_day`, not `{line}`"
                    ));
                    break;
                }
                continue;
            }
            let Some((rest, last)) = line.rsplit_once(',') else {
                errors.push(format!("line {n}: expected `name,first_day,last_day`"));
                continue;
            };
            let Some((name, first)) = rest.rsplit_once(',') else {
                errors.push(format!("line {n}: expected `name,first_day,last_day`"));
                continue;
            };
            let name = name.trim().trim_matches('"').trim();
            let date = |what: &str, v: &str| {
                NaiveDate::parse_from_str(v.trim(), "%Y-%m-%d").map_err(|_| {
                    format!("line {n}: {what} `{}` is not a date (YYYY-MM-DD)", v.trim())
                })
            };
            match (date("first_day", first), date("last_day", last)) {
                _ if name.is_empty() => errors.push(format!("line {n}: the name is empty")),
                _ if name.starts_with('#')
                    || name.chars().count() > 100
                    || name.chars().any(|c| c.is_control() || c == '"') =>
                {
                    errors.push(format!(
                        "line {n}: the name must be at most 100 characters, without quotes or \
                         control characters, and not start with #"
                    ))
                }
                (Ok(first_day), Ok(last_day)) if last_day < first_day => errors
                    .push(format!("line {n}: last_day {last_day} is before first_day {first_day}")),
                (Ok(first_day), Ok(last_day)) => {
                    periods.push((n, SchoolHoliday { name: name.to_owned(), first_day, last_day }))
                }
                (a, b) => errors.extend([a.err(), b.err()].into_iter().flatten()),
            }
        }
        if !header && errors.is_empty() {
            errors
                .push("the calendar is empty: expected a header `name,first_day,last_day`".into());
        }
        periods.sort_by_key(|(_, p)| p.first_day);
        for w in periods.windows(2) {
            let ((na, a), (nb, b)) = (&w[0], &w[1]);
            if b.first_day <= a.last_day {
                errors.push(format!(
                    "line {nb}: {} ({} to {}) overlaps line {na}: {} ({} to {})",
                    b.name, b.first_day, b.last_day, a.name, a.first_day, a.last_day
                ));
            }
        }
        if errors.is_empty() {
            Ok(Self { periods: periods.into_iter().map(|(_, p)| p).collect() })
        } else {
            Err(errors)
        }
    }

    /// The calendar as CSV, as [`SchoolHolidays::parse_csv`] reads it.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("name,first_day,last_day\n");
        for p in &self.periods {
            out.push_str(&format!("{},{},{}\n", p.name, p.first_day, p.last_day));
        }
        out
    }

    /// The holidays, in date order.
    pub fn periods(&self) -> &[SchoolHoliday] {
        &self.periods
    }

    /// The school holiday a date falls in, if any.
    pub fn on(&self, date: NaiveDate) -> Option<&SchoolHoliday> {
        let i = self.periods.partition_point(|p| p.last_day < date);
        self.periods.get(i).filter(|p| p.first_day <= date)
    }

    /// Whether the calendar covers a date: it lies between the first and the last holiday it
    /// lists (outside, that a day is not a holiday is unknown).
    pub fn covers(&self, date: NaiveDate) -> bool {
        match (self.periods.first(), self.periods.last()) {
            (Some(a), Some(b)) => a.first_day <= date && date <= b.last_day,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn easter_on_the_dates_the_calendars_print() {
        // Easter Sundays as printed in the French calendars (and the ecclesiastical tables):
        // the earliest and latest possible dates are reached in 2285 (22 March) and 2038 (25
        // April).
        let known = [
            (2000, d(2000, 4, 23)),
            (2019, d(2019, 4, 21)),
            (2024, d(2024, 3, 31)),
            (2025, d(2025, 4, 20)),
            (2026, d(2026, 4, 5)),
            (2027, d(2027, 3, 28)),
            (2038, d(2038, 4, 25)),
            (2285, d(2285, 3, 22)),
        ];
        for (y, e) in known {
            assert_eq!(easter_sunday(y), Some(e), "{y}");
        }
    }

    #[test]
    fn the_holidays_of_2026_and_2025() {
        // 2026: Easter Monday 6 April, Ascension 14 May, Whit Monday 25 May (service-public.fr).
        assert_eq!(holiday(d(2026, 4, 6)), Some(Holiday::EasterMonday));
        assert_eq!(holiday(d(2026, 5, 14)), Some(Holiday::Ascension));
        assert_eq!(holiday(d(2026, 5, 25)), Some(Holiday::WhitMonday));
        assert_eq!(holiday(d(2026, 7, 14)), Some(Holiday::BastilleDay));
        assert_eq!(holiday(d(2026, 4, 5)), None, "Easter Sunday is a Sunday, not a holiday");
        assert_eq!(holiday(d(2026, 7, 13)), None);
        // 2025: Easter Monday 21 April, Ascension 29 May, Whit Monday 9 June.
        assert_eq!(holiday(d(2025, 4, 21)), Some(Holiday::EasterMonday));
        assert_eq!(holiday(d(2025, 5, 29)), Some(Holiday::Ascension));
        assert_eq!(holiday(d(2025, 6, 9)), Some(Holiday::WhitMonday));
        assert_eq!(public_holidays(2026).len(), 11);
        // Ascension is a Thursday and Easter and Whit Mondays are Mondays, every year.
        for y in 1990..2100 {
            for (date, h) in public_holidays(y) {
                let wd = date.weekday();
                match h {
                    Holiday::Ascension => assert_eq!(wd, chrono::Weekday::Thu, "{y}"),
                    Holiday::EasterMonday | Holiday::WhitMonday => {
                        assert_eq!(wd, chrono::Weekday::Mon, "{y}")
                    }
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn zone_b_school_holidays_on_known_dates() {
        let c = SchoolHolidays::zone_b();
        // Zone B 2025-2026 (arrêté of the ministry): winter from 14 February to 1 March 2026
        // (classes resume on Monday 2 March), Christmas from 20 December 2025 to 4 January 2026.
        assert_eq!(c.on(d(2026, 2, 14)).map(|p| p.name.as_str()), Some("Vacances d'hiver"));
        assert_eq!(c.on(d(2026, 3, 1)).map(|p| p.name.as_str()), Some("Vacances d'hiver"));
        assert_eq!(c.on(d(2026, 3, 2)), None);
        assert_eq!(c.on(d(2026, 2, 13)), None);
        assert_eq!(c.on(d(2025, 12, 25)).map(|p| p.name.as_str()), Some("Vacances de Noël"));
        assert_eq!(c.on(d(2026, 1, 4)).map(|p| p.name.as_str()), Some("Vacances de Noël"));
        assert_eq!(c.on(d(2026, 1, 5)), None);
        assert!(c.covers(d(2026, 11, 30)));
        assert!(!c.covers(d(2020, 1, 1)));
        // Round trip.
        assert_eq!(SchoolHolidays::parse_csv(&c.to_csv()), Ok(c));
    }

    #[test]
    fn a_bad_calendar_is_refused_with_every_problem_named() {
        let text = "name,first_day,last_day\nNoël,2025-12-20,2026-01-04\nHiver,2026-02-31,2026-03-01\nPrintemps,2026-04-26,2026-04-11\nBis,2026-01-01,2026-01-10\n,2026-05-01,2026-05-02\nnothing\n";
        let errors = SchoolHolidays::parse_csv(text).unwrap_err();
        assert!(
            errors.iter().any(|e| e.starts_with("line 3: first_day `2026-02-31`")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("line 4: last_day 2026-04-11 is before")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.starts_with("line 5: Bis") && e.contains("overlaps line 2")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| e == "line 6: the name is empty"), "{errors:?}");
        assert!(errors.iter().any(|e| e.starts_with("line 7: expected")), "{errors:?}");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(SchoolHolidays::parse_csv("first,last\n").unwrap_err()[0].contains("header"));
        assert!(SchoolHolidays::parse_csv("").unwrap_err()[0].contains("empty"));
    }
}
