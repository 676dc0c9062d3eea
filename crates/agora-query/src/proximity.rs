//! The 15-minute city of each commune: its imports kept in the catalog (walking network,
//! facilities, population, neighbourhoods), read back once and kept in memory until the next
//! import, and the figures computed from them (`agora_proximity`): each square's walking times,
//! the shares within 15 minutes per commune and neighbourhood, the gaps, isochrones and what-ifs.
//!
//! An import is parsed whole before anything is kept, then kept in one statement: a bad file
//! changes nothing. Facilities are kept across the commune's border within 2 km of its streets
//! (the nearest pharmacy may be in the next commune); population only of the commune itself.

use std::collections::HashMap;
use std::sync::Arc;

use agora_model::Timestamp;
use agora_proximity::access::{Settings, Shares, SquareAccess, Study};
use agora_proximity::facilities::{self, Facility, Mapping};
use agora_proximity::network::Network;
use agora_proximity::population::{self, Area, Square};
use agora_proximity::project::haversine_m;
use agora_store::decisions::{DecisionStore, Layer};
use parking_lot::Mutex;
use serde::Serialize;

use crate::{Error, Result};

/// The layers a commune has.
pub const LAYERS: [&str; 4] = ["network", "facilities", "population", "areas"];

/// Kilometres around the commune's streets within which facilities of other communes are kept.
const FACILITY_MARGIN_M: f64 = 2_000.0;

/// How facilities and population files are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// INSEE's BPE CSV.
    Bpe,
    /// A CSV of facilities, or of addresses with a weight.
    Csv,
    /// A GeoJSON FeatureCollection.
    GeoJson,
    /// INSEE's Filosofi 200 m squares.
    Filosofi,
}

impl Format {
    /// The format of a name (`bpe`, `csv`, `geojson`, `filosofi`).
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "bpe" => Ok(Format::Bpe),
            "csv" | "addresses" => Ok(Format::Csv),
            "geojson" => Ok(Format::GeoJson),
            "filosofi" => Ok(Format::Filosofi),
            other => Err(Error::Invalid(format!(
                "format {other:?}: facilities are bpe, csv or geojson; population filosofi or csv"
            ))),
        }
    }
}

/// A commune's imports, parsed.
#[derive(Debug, Default)]
pub struct Data {
    /// The walking network, once imported.
    pub network: Option<Network>,
    /// Facilities of every dataset.
    pub facilities: Vec<Facility>,
    /// Populated squares or addresses.
    pub squares: Vec<Square>,
    /// Neighbourhoods.
    pub areas: Vec<Area>,
    /// The layers, as listed (no content).
    pub layers: Vec<Layer>,
    /// Each square's neighbourhood (index into `areas`).
    pub square_area: Vec<Option<usize>>,
    /// Figures computed once per import (the settings do not change while agora runs): each
    /// square's access, the shares per area, each place's share.
    squares_cache: std::sync::OnceLock<Vec<SquareAccess>>,
    shares_cache: std::sync::OnceLock<(Vec<AreaShares>, usize)>,
    place_cache: Mutex<HashMap<String, Option<f64>>>,
}

impl Data {
    /// A study of this commune, if its network, facilities and population are all there.
    pub fn study(&self, settings: &Settings) -> Result<Study<'_>> {
        let network = self.network.as_ref().ok_or_else(|| {
            Error::Invalid("no walking network imported for this commune yet".into())
        })?;
        if self.squares.is_empty() {
            return Err(Error::Invalid("no population imported for this commune yet".into()));
        }
        Study::new(network, &self.facilities, &self.squares, settings.clone())
            .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Each square's access (computed once).
    pub fn squares_access(&self, settings: &Settings) -> Result<&[SquareAccess]> {
        if let Some(v) = self.squares_cache.get() {
            return Ok(v);
        }
        let v = self.study(settings)?.squares();
        Ok(self.squares_cache.get_or_init(|| v))
    }

    /// The shares of the commune and of each neighbourhood, and the facilities off the network
    /// (computed once).
    pub fn area_shares(
        &self,
        settings: &Settings,
        commune: &str,
        name: &str,
    ) -> Result<&(Vec<AreaShares>, usize)> {
        if let Some(v) = self.shares_cache.get() {
            return Ok(v);
        }
        let study = self.study(settings)?;
        let v = (shares(self, &study, commune, name), study.facilities_off_network().len());
        Ok(self.shares_cache.get_or_init(|| v))
    }

    /// The share of a place's people within the limit of all four themes: those of its
    /// neighbourhood, or within 1 km when it is in none; `None` when unknown (a theme without
    /// facilities, nobody on the network there). Kept per place until the next import.
    pub fn place_share(
        &self,
        settings: &Settings,
        id: &str,
        lon: f64,
        lat: f64,
    ) -> Result<Option<f64>> {
        let key = format!("{id}@{lon},{lat}");
        if let Some(v) = self.place_cache.lock().get(&key) {
            return Ok(*v);
        }
        let study = self.study(settings)?;
        let sh = match self.areas.iter().position(|a| a.contains(lon, lat)) {
            Some(k) => study.shares(|i, _| self.square_area[i] == Some(k)),
            None => study.shares(|_, sq| haversine_m((lon, lat), (sq.lon, sq.lat)) <= 1000.0),
        };
        self.place_cache.lock().insert(key, sh.all_themes);
        Ok(sh.all_themes)
    }

    /// The neighbourhood holding a point.
    pub fn area_at(&self, lon: f64, lat: f64) -> Option<&Area> {
        self.areas.iter().find(|a| a.contains(lon, lat))
    }
}

/// Shares of one area.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AreaShares {
    /// The area's code (the commune's INSEE code for the whole commune; `-` for squares in no
    /// neighbourhood).
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its figures.
    pub shares: Shares,
}

/// The shares of the whole commune, then of each neighbourhood (and of the squares in none).
pub fn shares(
    data: &Data,
    study: &Study<'_>,
    commune: &str,
    commune_name: &str,
) -> Vec<AreaShares> {
    let mut out = vec![AreaShares {
        code: commune.to_string(),
        name: commune_name.to_string(),
        shares: study.shares(|_, _| true),
    }];
    for (k, a) in data.areas.iter().enumerate() {
        out.push(AreaShares {
            code: a.code.clone(),
            name: a.name.clone(),
            shares: study.shares(|i, _| data.square_area[i] == Some(k)),
        });
    }
    if !data.areas.is_empty() && data.square_area.iter().any(Option::is_none) {
        out.push(AreaShares {
            code: "-".into(),
            name: "hors quartiers".into(),
            shares: study.shares(|i, _| data.square_area[i].is_none()),
        });
    }
    out
}

/// The communes' 15-minute city: imports and the cache of what they parse to.
#[derive(Debug)]
pub struct Proximity {
    store: Arc<dyn DecisionStore>,
    /// How walks are measured.
    pub settings: Settings,
    /// BPE codes to themes.
    pub mapping: Mapping,
    /// Each commune's parsed layers, and a generation bumped by every import: a read that
    /// started before an import does not put back what it replaced.
    cache: Mutex<HashMap<String, Cached>>,
}

/// A commune's generation and its parsed layers, when read since.
type Cached = (u64, Option<Arc<Data>>);

impl Proximity {
    /// On a store, with settings and a BPE mapping (checked).
    pub fn new(
        store: Arc<dyn DecisionStore>,
        settings: Settings,
        mapping: Mapping,
    ) -> Result<Self> {
        settings.check().map_err(|e| Error::Invalid(e.to_string()))?;
        mapping.check().map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(Proximity { store, settings, mapping, cache: Mutex::new(HashMap::new()) })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn DecisionStore> {
        &self.store
    }

    /// A commune's imports, parsed (kept until the next import).
    pub async fn data(&self, commune: &str) -> Result<Arc<Data>> {
        let generation = {
            let cache = self.cache.lock();
            match cache.get(commune) {
                Some((_, Some(d))) => return Ok(d.clone()),
                Some((g, None)) => *g,
                None => 0,
            }
        };
        let layers = self.store.layers(commune).await?;
        let mut contents = Vec::new();
        for kind in LAYERS {
            contents.push(self.store.layer_contents(commune, kind).await?);
        }
        let data = tokio::task::spawn_blocking(move || parse(layers, contents))
            .await
            .map_err(|e| Error::Invalid(format!("reading the layers failed: {e}")))??;
        let data = Arc::new(data);
        let mut cache = self.cache.lock();
        let entry = cache.entry(commune.to_string()).or_insert((0, None));
        if entry.0 == generation {
            entry.1 = Some(data.clone());
        }
        Ok(data)
    }

    fn forget(&self, commune: &str) {
        let mut cache = self.cache.lock();
        let entry = cache.entry(commune.to_string()).or_insert((0, None));
        entry.0 += 1;
        entry.1 = None;
    }

    /// Imports a walking network (OSM PBF or XML), replacing the commune's.
    pub async fn import_network(
        &self,
        commune: &str,
        bytes: Vec<u8>,
        by: &str,
        at: Timestamp,
    ) -> Result<Layer> {
        let (net, stats) = tokio::task::spawn_blocking(move || agora_proximity::osm::read(&bytes))
            .await
            .map_err(|e| Error::Invalid(format!("reading the extract failed: {e}")))?
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let mut summary = serde_json::to_value(&stats).unwrap_or_default();
        summary["nodes_kept"] = net.nodes().into();
        summary["island_nodes_left_out"] = net.islands().into();
        let layer = Layer {
            items: net.segments() as i64,
            summary,
            content: net.to_bytes(),
            ..layer(commune, "network", "network", by, at)
        };
        self.store.put_layer(&layer).await?;
        self.forget(commune);
        Ok(layer)
    }

    /// Imports a dataset of facilities, replacing the commune's dataset of that name.
    pub async fn import_facilities(
        &self,
        commune: &str,
        dataset: &str,
        format: Format,
        bytes: &[u8],
        by: &str,
        at: Timestamp,
    ) -> Result<Layer> {
        check_name(dataset)?;
        let read = match format {
            Format::Bpe => facilities::read_bpe(bytes, &self.mapping),
            Format::Csv => facilities::read_csv(bytes),
            Format::GeoJson => facilities::read_geojson(bytes),
            Format::Filosofi => {
                return Err(Error::Invalid("facilities are bpe, csv or geojson".into()));
            }
        }
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let data = self.data(commune).await?;
        let read_count = read.facilities.len();
        let near = |f: &Facility| match &data.network {
            Some(n) => {
                let (w, s, e, no) = n.bbox();
                let (cx, cy) = (f.lon.clamp(w, e), f.lat.clamp(s, no));
                haversine_m((f.lon, f.lat), (cx, cy)) <= FACILITY_MARGIN_M
            }
            None => false,
        };
        let kept: Vec<Facility> = read
            .facilities
            .into_iter()
            .filter(|f| f.commune.as_deref().is_none_or(|c| c == commune) || near(f))
            .collect();
        if kept.is_empty() {
            return Err(Error::Invalid(format!(
                "none of the {read_count} facilities read is in commune {commune} or near its streets"
            )));
        }
        let summary = serde_json::json!({
            "read": read_count,
            "kept": kept.len(),
            "other_communes_far_left_out": read_count - kept.len(),
            "ignored_codes": read.ignored,
            "not_located": read.not_located,
        });
        let layer = Layer {
            items: kept.len() as i64,
            summary,
            content: serde_json::to_vec(&kept).unwrap_or_default(),
            ..layer(commune, "facilities", dataset, by, at)
        };
        self.store.put_layer(&layer).await?;
        self.forget(commune);
        Ok(layer)
    }

    /// Imports the population (Filosofi squares or weighted addresses), replacing the commune's.
    pub async fn import_population(
        &self,
        commune: &str,
        format: Format,
        bytes: &[u8],
        by: &str,
        at: Timestamp,
    ) -> Result<Layer> {
        let read = match format {
            Format::Filosofi => population::read_filosofi(bytes),
            Format::Csv => population::read_addresses(bytes),
            _ => return Err(Error::Invalid("population is filosofi or csv (addresses)".into())),
        }
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let read_count = read.len();
        let kept: Vec<Square> = read
            .into_iter()
            .filter(|s| s.commune.as_deref().is_none_or(|c| c == commune))
            .collect();
        if kept.is_empty() {
            return Err(Error::Invalid(format!(
                "none of the {read_count} squares or addresses read is in commune {commune}"
            )));
        }
        let people: f64 = kept.iter().map(|s| s.population).sum();
        let summary = serde_json::json!({
            "read": read_count,
            "kept": kept.len(),
            "other_communes_left_out": read_count - kept.len(),
            "population": people,
        });
        let layer = Layer {
            items: kept.len() as i64,
            summary,
            content: serde_json::to_vec(&kept).unwrap_or_default(),
            ..layer(commune, "population", "population", by, at)
        };
        self.store.put_layer(&layer).await?;
        self.forget(commune);
        Ok(layer)
    }

    /// Imports neighbourhoods (GeoJSON polygons), replacing the commune's.
    pub async fn import_areas(
        &self,
        commune: &str,
        bytes: &[u8],
        by: &str,
        at: Timestamp,
    ) -> Result<Layer> {
        let areas = population::read_areas(bytes).map_err(|e| Error::Invalid(e.to_string()))?;
        if areas.is_empty() {
            return Err(Error::Invalid("the file has no neighbourhood".into()));
        }
        let layer = Layer {
            items: areas.len() as i64,
            summary: serde_json::json!({"read": areas.len()}),
            content: serde_json::to_vec(&areas).unwrap_or_default(),
            ..layer(commune, "areas", "areas", by, at)
        };
        self.store.put_layer(&layer).await?;
        self.forget(commune);
        Ok(layer)
    }

    /// Removes a layer; whether it existed.
    pub async fn delete(&self, commune: &str, layer: &str, name: &str) -> Result<bool> {
        let gone = self.store.delete_layer(commune, layer, name).await?;
        self.forget(commune);
        Ok(gone)
    }
}

/// A layer of a commune imported by `by` at `at`, empty.
fn layer(commune: &str, kind: &str, name: &str, by: &str, at: Timestamp) -> Layer {
    Layer {
        commune: commune.into(),
        layer: kind.into(),
        name: name.into(),
        items: 0,
        summary: serde_json::Value::Null,
        imported_by: by.into(),
        imported_at: at,
        content: Vec::new(),
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!("dataset name {name:?}: 1 to 64 letters, digits, '-' or '_'")))
    }
}

fn parse(layers: Vec<Layer>, contents: Vec<Vec<Layer>>) -> Result<Data> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::Invalid(format!("stored {what} damaged: {e}"))
    };
    let mut data = Data { layers, ..Data::default() };
    for (kind, list) in LAYERS.iter().zip(contents) {
        for l in list {
            match *kind {
                "network" => {
                    data.network =
                        Some(Network::from_bytes(&l.content).map_err(|e| bad("network", &e))?)
                }
                "facilities" => data.facilities.extend(
                    serde_json::from_slice::<Vec<Facility>>(&l.content)
                        .map_err(|e| bad("facilities", &e))?,
                ),
                "population" => {
                    data.squares =
                        serde_json::from_slice(&l.content).map_err(|e| bad("population", &e))?
                }
                _ => {
                    data.areas = serde_json::from_slice(&l.content).map_err(|e| bad("areas", &e))?
                }
            }
        }
    }
    data.square_area = data
        .squares
        .iter()
        .map(|s| data.areas.iter().position(|a| a.contains(s.lon, s.lat)))
        .collect();
    Ok(data)
}
