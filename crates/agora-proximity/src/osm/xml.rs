//! OSM XML (`.osm`, as exported by openstreetmap.org, Overpass or osmium), streamed: nodes with
//! `id`, `lat`, `lon`; ways with their `nd` references and `tag`s. Relations are skipped.

use quick_xml::events::{BytesStart, Event};

use super::{Collector, OsmStats, walkable};
use crate::network::Network;
use crate::{Error, Result};

fn attr(e: &BytesStart<'_>, key: &[u8]) -> Result<Option<String>> {
    for a in e.attributes() {
        let a = a.map_err(|err| Error::invalid(format!("OSM XML: a bad attribute: {err}")))?;
        if a.key.as_ref() == key {
            let v = a
                .unescape_value()
                .map_err(|err| Error::invalid(format!("OSM XML: a bad attribute value: {err}")))?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn number<T: std::str::FromStr>(e: &BytesStart<'_>, key: &str, what: &str) -> Result<T> {
    let v = attr(e, key.as_bytes())?.ok_or_else(|| {
        Error::invalid(format!("OSM XML: a {what} without its {key:?} attribute"))
    })?;
    v.parse()
        .map_err(|_| Error::invalid(format!("OSM XML: a {what}'s {key:?} is not a number: {v:?}")))
}

/// A way's tags.
type Tags = Vec<(String, String)>;

/// Reads an OSM XML extract into a walking network.
pub fn read(bytes: &[u8]) -> Result<(Network, OsmStats)> {
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut collector = Collector::new();
    let mut root_seen = false;
    let mut way: Option<(Vec<i64>, Tags)> = None;
    let mut buf = Vec::new();
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| Error::invalid(format!("OSM XML: unreadable at byte {at}: {e}")))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                match name.as_ref() {
                    b"osm" => root_seen = true,
                    _ if !root_seen => {
                        return Err(Error::invalid(
                            "OSM XML: the file does not begin with <osm>: is it an OpenStreetMap extract?",
                        ));
                    }
                    b"node" => {
                        let id: i64 = number(&e, "id", "node")?;
                        let lat: f64 = number(&e, "lat", "node")?;
                        let lon: f64 = number(&e, "lon", "node")?;
                        collector.node(id, lon, lat)?;
                    }
                    b"way" => way = Some((Vec::new(), Vec::new())),
                    b"nd" => {
                        if let Some((refs, _)) = way.as_mut() {
                            refs.push(number(&e, "ref", "way's nd")?);
                        }
                    }
                    b"tag" => {
                        if let Some((_, tags)) = way.as_mut() {
                            let k = attr(&e, b"k")?.unwrap_or_default();
                            let v = attr(&e, b"v")?.unwrap_or_default();
                            tags.push((k, v));
                        }
                    }
                    _ => {}
                }
                if empty
                    && name.as_ref() == b"way"
                    && let Some((refs, tags)) = way.take()
                {
                    finish_way(&mut collector, refs, &tags)?;
                }
            }
            Event::End(e) => {
                if e.name().as_ref() == b"way"
                    && let Some((refs, tags)) = way.take()
                {
                    finish_way(&mut collector, refs, &tags)?;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !root_seen {
        return Err(Error::invalid("OSM XML: no <osm> element: is it an OpenStreetMap extract?"));
    }
    collector.finish()
}

fn finish_way(collector: &mut Collector, refs: Vec<i64>, tags: &[(String, String)]) -> Result<()> {
    let ok = walkable(|k| tags.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()));
    collector.way(refs, ok)
}
