//! What the pipeline keeps in memory between batches and must not forget at a restart: each
//! series' quality-check state, the fleet page's flag tallies, the deduplication ids of recent
//! ChirpStack uplinks. Saved as JSON in the catalog (`runtime_state`), periodically and at
//! shutdown, and read back at start-up.

use std::collections::{HashSet, VecDeque};

use agora_model::Timestamp;
use serde_json::{Value as Json, json};

use crate::pipeline::{FlagTally, QualityState};

/// Recently stored ChirpStack deduplication ids, oldest forgotten first.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl Seen {
    /// Ids remembered: a few hours of a large LoRaWAN fleet's uplinks, which is as long as a
    /// broker or ChirpStack redelivers.
    const CAPACITY: usize = 20_000;

    /// Whether `id` was seen already.
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// Remember `id` (once its uplink is stored).
    pub(crate) fn remember(&mut self, id: &str) {
        if self.set.contains(id) {
            return;
        }
        if self.order.len() == Self::CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.set.insert(id.to_owned());
    }

    /// The ids, oldest first.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.order.iter().cloned().collect()
    }
}

/// The pipeline's state as saved.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Saved {
    pub(crate) quality: Vec<(u32, QualityState)>,
    pub(crate) tallies: Vec<(u32, FlagTally)>,
    pub(crate) uplinks: Vec<String>,
}

impl Saved {
    /// The names it is saved under, one row each.
    pub(crate) const NAMES: [&'static str; 3] =
        ["quality_checks", "quality_flag_tallies", "chirpstack_uplinks"];

    /// Compact JSON: one array of numbers per series.
    pub(crate) fn to_json(&self) -> [(&'static str, String); 3] {
        let quality: Vec<Json> = self
            .quality
            .iter()
            .map(|(s, q)| {
                json!([s, q.last_t.as_nanos(), q.last_v, q.same_since.as_nanos(), q.jumps])
            })
            .collect();
        let tallies: Vec<Json> = self
            .tallies
            .iter()
            .map(|(s, t)| json!([s, t.stuck, t.jump, t.out_of_range, t.last.as_nanos()]))
            .collect();
        [
            (Self::NAMES[0], Json::Array(quality).to_string()),
            (Self::NAMES[1], Json::Array(tallies).to_string()),
            (Self::NAMES[2], json!(self.uplinks).to_string()),
        ]
    }

    /// Read back what `to_json` wrote; an entry that does not read is skipped (and said).
    pub(crate) fn from_json(texts: &[(&str, Option<String>)]) -> Self {
        let mut out = Self::default();
        for (name, text) in texts {
            let Some(text) = text else { continue };
            let rows = match serde_json::from_str::<Vec<Json>>(text) {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(state = name, error = %e, "saved state unreadable; started afresh");
                    continue;
                }
            };
            let mut bad = 0usize;
            for row in rows {
                let ok = match *name {
                    "quality_checks" => quality_of(&row).map(|q| out.quality.push(q)),
                    "quality_flag_tallies" => tally_of(&row).map(|t| out.tallies.push(t)),
                    "chirpstack_uplinks" => row.as_str().map(|id| out.uplinks.push(id.to_owned())),
                    _ => None,
                };
                bad += usize::from(ok.is_none());
            }
            if bad > 0 {
                tracing::warn!(
                    state = name,
                    entries = bad,
                    "saved state entries unreadable; skipped"
                );
            }
        }
        out
    }
}

fn nums(row: &Json, n: usize) -> Option<&[Json]> {
    row.as_array().map(Vec::as_slice).filter(|a| a.len() == n)
}

fn quality_of(row: &Json) -> Option<(u32, QualityState)> {
    let a = nums(row, 5)?;
    Some((
        u32::try_from(a[0].as_u64()?).ok()?,
        QualityState {
            last_t: Timestamp::from_nanos(a[1].as_i64()?),
            last_v: a[2].as_f64()?,
            same_since: Timestamp::from_nanos(a[3].as_i64()?),
            jumps: u8::try_from(a[4].as_u64()?).ok()?,
        },
    ))
}

fn tally_of(row: &Json) -> Option<(u32, FlagTally)> {
    let a = nums(row, 5)?;
    Some((
        u32::try_from(a[0].as_u64()?).ok()?,
        FlagTally {
            stuck: a[1].as_u64()?,
            jump: a[2].as_u64()?,
            out_of_range: a[3].as_u64()?,
            last: Timestamp::from_nanos(a[4].as_i64()?),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_reads_back_as_it_was_saved() {
        let t = |s: i64| Timestamp::from_secs(1_767_225_600 + s).unwrap();
        let saved = Saved {
            quality: vec![
                (7, QualityState { last_t: t(60), last_v: 23.4, same_since: t(0), jumps: 0 }),
                (9, QualityState { last_t: t(120), last_v: -0.8, same_since: t(120), jumps: 2 }),
            ],
            tallies: vec![(7, FlagTally { stuck: 3, jump: 1, out_of_range: 2, last: t(60) })],
            uplinks: vec!["up/a".into(), "up/b".into()],
        };
        let texts: Vec<(&str, Option<String>)> =
            saved.to_json().into_iter().map(|(n, j)| (n, Some(j))).collect();
        assert_eq!(Saved::from_json(&texts), saved);
    }

    #[test]
    fn unreadable_entries_are_skipped_and_the_rest_kept() {
        let texts = [
            ("quality_checks", Some("not json".to_owned())),
            ("quality_flag_tallies", Some("[[1,2,3,4,5],[\"x\"],[-1,0,0,0,0]]".to_owned())),
            ("chirpstack_uplinks", None),
        ];
        let s = Saved::from_json(&texts);
        assert!(s.quality.is_empty());
        assert_eq!(s.tallies.len(), 1);
        assert_eq!(s.tallies[0].0, 1);
        assert!(s.uplinks.is_empty());
    }

    #[test]
    fn the_oldest_ids_are_forgotten_first() {
        let mut seen = Seen::default();
        for i in 0..Seen::CAPACITY + 5 {
            seen.remember(&format!("up/{i}"));
        }
        assert!(!seen.contains("up/4"));
        assert!(seen.contains("up/5"));
        assert_eq!(seen.ids().len(), Seen::CAPACITY);
        assert_eq!(seen.ids()[0], "up/5");
    }
}
