//! The French calendar footfall is read against: the public holidays of metropolitan France
//! (Code du travail, article L3133-1), Easter and its moving feasts computed. Alsace-Moselle's
//! two extra days (Good Friday, 26 December) are not in it: agora's cities are in Provence.

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
}
