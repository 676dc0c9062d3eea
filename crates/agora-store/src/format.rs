//! The data directory's format version, so that an upgrade keeps a city's history and a
//! downgrade is refused before it can misread anything.
//!
//! `FORMAT` at the top of the data directory holds one line, `agora data directory format N`.
//! A directory without it was written before versions existed (format 1, up to the release of
//! issue 17): it is read as it is. Opening a directory of an older format migrates it in place,
//! then writes the new version last (atomically: a temporary file renamed over), so that a crash
//! during a migration runs it again at the next start. A directory of a newer format is refused
//! with a message that says what to do.
//!
//! | format | what changed |
//! |---|---|
//! | 1 | the first layout: `catalog.db`, `engine/` (manifest, segments, WAL) |
//! | 2 | `FORMAT` itself; the catalog's own migrations (0012 open data, 0013 runtime state) run as before |

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// The format this release writes.
pub const CURRENT: u32 = 2;

const FILE: &str = "FORMAT";
const PREFIX: &str = "agora data directory format ";

/// Check the data directory `dir` (created if missing) before anything in it is opened: refuse a
/// newer format, migrate an older one, stamp a new or older directory with [`CURRENT`]. Returns
/// the format the directory had (`None`: a new, empty directory).
pub fn open(dir: &Path) -> Result<Option<u32>> {
    fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let found = read(dir)?;
    match found {
        Some(v) if v > CURRENT => Err(Error::Invalid(format!(
            "the data directory {} was written by a newer agora (format {v}); this release reads \
             formats 1 to {CURRENT}. Run the newer release, or restore a backup this release made.",
            dir.display()
        ))),
        Some(v) if v == CURRENT => Ok(found),
        _ => {
            // Formats 1 → 2: nothing to convert (the catalog migrates itself when it opens).
            stamp(dir)?;
            if let Some(v) = found {
                tracing::info!(from = v, to = CURRENT, dir = %dir.display(), "data directory upgraded");
            }
            Ok(found)
        }
    }
}

/// The format of an existing data directory, changing nothing (`None`: new or empty).
pub fn read(dir: &Path) -> Result<Option<u32>> {
    let path = dir.join(FILE);
    let found = match fs::read_to_string(&path) {
        Ok(text) => Some(parse(&text).ok_or_else(|| Error::Corrupt {
            what: "format file",
            path: path.clone(),
            reason: format!("expected \"{PREFIX}N\", found {:?}", text.trim()),
        })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let used = ["catalog.db", "engine"].iter().any(|f| dir.join(f).exists());
            used.then_some(1)
        }
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    Ok(found)
}

fn parse(text: &str) -> Option<u32> {
    text.trim().strip_prefix(PREFIX)?.parse().ok().filter(|v| *v >= 1)
}

/// Write `FORMAT` atomically: a temporary file, synced, renamed over, the directory synced.
fn stamp(dir: &Path) -> Result<()> {
    let tmp = dir.join("FORMAT.tmp");
    let mut f = fs::File::create(&tmp).map_err(Error::io(&tmp))?;
    f.write_all(format!("{PREFIX}{CURRENT}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(Error::io(&tmp))?;
    fs::rename(&tmp, dir.join(FILE)).map_err(Error::io(dir))?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(Error::io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_is_stamped_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(open(dir.path()).unwrap(), None);
        let text = fs::read_to_string(dir.path().join("FORMAT")).unwrap();
        assert_eq!(text, format!("agora data directory format {CURRENT}\n"));
        assert_eq!(open(dir.path()).unwrap(), Some(CURRENT));
    }

    #[test]
    fn a_directory_from_before_versions_is_format_1_and_upgraded() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("engine")).unwrap();
        assert_eq!(open(dir.path()).unwrap(), Some(1));
        assert_eq!(open(dir.path()).unwrap(), Some(CURRENT));
    }

    #[test]
    fn a_newer_or_unreadable_format_is_refused_with_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("FORMAT"), format!("{PREFIX}{}\n", CURRENT + 1)).unwrap();
        let e = open(dir.path()).unwrap_err().to_string();
        assert!(e.contains(&format!("newer agora (format {})", CURRENT + 1)), "{e}");
        assert!(e.contains("restore a backup"), "{e}");
        // Left as it was.
        assert!(
            fs::read_to_string(dir.path().join("FORMAT"))
                .unwrap()
                .ends_with(&format!("{}\n", CURRENT + 1))
        );
        fs::write(dir.path().join("FORMAT"), "hello").unwrap();
        let e = open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("format file"), "{e}");
    }
}
