//! What the readers of CSV files share: the delimiter guessed from the header line (`;` as INSEE
//! writes, or `,`), a byte-order mark skipped, columns found by name whatever their case, and a
//! file refused whole with its first faults named.

use std::collections::BTreeMap;

use crate::Error;

/// At most this many faults are named in an error.
const NAMED: usize = 10;

/// The error refusing a whole file, naming its first faults and how many there are.
pub(crate) fn refuse(what: &str, faults: Vec<String>) -> Error {
    let n = faults.len();
    let mut listed: Vec<String> = faults.into_iter().take(NAMED).collect();
    if n > NAMED {
        listed.push(format!("and {} more", n - NAMED));
    }
    Error::invalid(format!("{what}: nothing imported, {n} faults: {}", listed.join("; ")))
}

/// A CSV reader over `bytes`, its delimiter guessed from the header line.
pub(crate) fn reader(bytes: &[u8]) -> csv::Reader<&[u8]> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let semi = first.iter().filter(|b| **b == b';').count();
    let comma = first.iter().filter(|b| **b == b',').count();
    csv::ReaderBuilder::new().delimiter(if semi > comma { b';' } else { b',' }).from_reader(bytes)
}

/// The header line's columns by lower-case name; `what` names the file in the error.
pub(crate) fn columns(
    rdr: &mut csv::Reader<&[u8]>,
    what: &str,
) -> crate::Result<BTreeMap<String, usize>> {
    let h = rdr
        .headers()
        .map_err(|e| Error::invalid(format!("{what}: the header line is unreadable: {e}")))?;
    Ok(h.iter().enumerate().map(|(i, h)| (h.trim().to_lowercase(), i)).collect())
}

/// The first of `names` that is a column.
pub(crate) fn column(cols: &BTreeMap<String, usize>, names: &[&str]) -> Option<usize> {
    names.iter().find_map(|n| cols.get(*n).copied())
}
