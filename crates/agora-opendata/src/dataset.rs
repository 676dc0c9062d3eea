//! What a dataset may hold and what its records look like: the publication rules (a theme's
//! public properties only, never a device's internals, footfall never finer than hourly, places
//! and communes that exist), each theme's devices and properties with how a period summarizes
//! them, and the fields of every kind of dataset.

use agora_model::PropertyName;
use agora_store::Catalog;
use agora_store::opendata::{Dataset, DatasetKind, Resolution, Theme};

use crate::odsql::{Field, FieldType};

/// How one property is summarized over a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    /// The mean (an energy mean for sound levels).
    Mean,
    /// The sum (counts of people).
    Sum,
    /// The largest value (LAmax).
    Max,
}

/// A property a theme publishes.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    /// Canonical name: the field's name.
    pub name: &'static str,
    /// French label.
    pub label: &'static str,
    /// Unit as people read it.
    pub unit: &'static str,
    /// How a period summarizes it.
    pub summary: Summary,
}

const fn p(
    name: &'static str,
    label: &'static str,
    unit: &'static str,
    summary: Summary,
) -> Published {
    Published { name, label, unit, summary }
}

use Summary::{Max, Mean, Sum};

const AIR: &[Published] = &[
    p("pm2_5", "Particules fines PM2,5", "µg/m³", Mean),
    p("pm10", "Particules PM10", "µg/m³", Mean),
    p("no2", "Dioxyde d'azote NO2", "µg/m³", Mean),
    p("o3", "Ozone O3", "µg/m³", Mean),
];
const NOISE: &[Published] = &[
    p("laeq", "Niveau sonore équivalent LAeq", "dB(A)", Mean),
    p("lamax", "Niveau sonore maximal LAmax", "dB(A)", Max),
];
const WEATHER: &[Published] = &[
    p("temperature", "Température", "°C", Mean),
    p("relative_humidity", "Humidité relative", "%", Mean),
    p("pressure", "Pression atmosphérique", "hPa", Mean),
    p("wind_speed", "Vitesse du vent", "m/s", Mean),
    p("illuminance", "Éclairement", "lx", Mean),
];
const FOOTFALL: &[Published] = &[
    p("people_in", "Passages (entrées)", "personnes", Sum),
    p("people_out", "Passages (sorties)", "personnes", Sum),
];
const LIGHTING: &[Published] = &[
    p("power_w", "Puissance consommée", "W", Mean),
    p("dimming_level", "Niveau de gradation", "%", Mean),
];
const BINS: &[Published] = &[p("fill_level", "Taux de remplissage", "%", Mean)];
const SOIL: &[Published] = &[
    p("soil_moisture", "Humidité du sol", "%", Mean),
    p("soil_temperature", "Température du sol", "°C", Mean),
];

/// The device kinds and public properties of a theme.
pub fn theme_devices(theme: Theme) -> (&'static [&'static str], &'static [Published]) {
    match theme {
        Theme::Air => (&["air_quality"], AIR),
        Theme::Noise => (&["noise"], NOISE),
        Theme::Weather => (&["weather"], WEATHER),
        Theme::Footfall => (&["pedestrian_counter"], FOOTFALL),
        Theme::Lighting => (&["streetlight"], LIGHTING),
        Theme::Bins => (&["waste_container"], BINS),
        Theme::Soil => (&["soil_moisture"], SOIL),
        Theme::Equipment => (&[], &[]),
    }
}

/// The theme of a device kind, if it has one.
pub fn theme_of_kind(kind: &str) -> Option<Theme> {
    Theme::ALL.into_iter().find(|t| theme_devices(*t).0.contains(&kind))
}

/// The licences a dataset may carry: id, name, URL, and the EU authority table's IRI.
pub const LICENCES: &[(&str, &str, &str, &str)] = &[
    (
        "etalab-2.0",
        "Licence Ouverte / Open Licence version 2.0",
        "https://www.etalab.gouv.fr/wp-content/uploads/2017/04/ETALAB-Licence-Ouverte-v2.0.pdf",
        "http://publications.europa.eu/resource/authority/licence/ETALAB_2_0",
    ),
    (
        "odbl-1.0",
        "Open Database License (ODbL) 1.0",
        "https://opendatacommons.org/licenses/odbl/1-0/",
        "http://publications.europa.eu/resource/authority/licence/ODBL_1_0",
    ),
];

/// The properties a measurements dataset publishes, in its field order.
pub fn published(d: &Dataset) -> Vec<Published> {
    let (_, all) = theme_devices(d.theme);
    all.iter()
        .filter(|p| d.properties.is_empty() || d.properties.iter().any(|x| x == p.name))
        .copied()
        .collect()
}

/// Check a definition against the publication rules and the catalog; the message names what is
/// wrong.
pub fn check(d: &Dataset, catalog: &dyn Catalog) -> Result<(), String> {
    let id_ok = !d.id.is_empty()
        && d.id.len() <= 100
        && d.id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !d.id.starts_with('-');
    if !id_ok {
        return Err(format!(
            "id {:?}: 1 to 100 lowercase letters, digits, - and _ (it is the dataset's URL)",
            d.id
        ));
    }
    let texts = std::iter::once(&d.title)
        .chain([&d.description])
        .chain(&d.keywords)
        .chain(d.publisher.as_ref());
    for t in texts {
        if t.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
            return Err(format!("{t:?} holds a control character"));
        }
    }
    if d.title.trim().is_empty() || d.title.len() > 200 {
        return Err("title: 1 to 200 characters".into());
    }
    if d.description.trim().is_empty() || d.description.len() > 10_000 {
        return Err("description: 1 to 10,000 characters".into());
    }
    if d.keywords.len() > 30 || d.keywords.iter().any(|k| k.trim().is_empty() || k.len() > 100) {
        return Err("keywords: at most 30, each 1 to 100 characters".into());
    }
    if !LICENCES.iter().any(|l| l.0 == d.licence) {
        let known: Vec<&str> = LICENCES.iter().map(|l| l.0).collect();
        return Err(format!("licence {:?}: one of {}", d.licence, known.join(", ")));
    }
    if d.publisher.as_deref().is_some_and(|p| p.trim().is_empty() || p.len() > 200) {
        return Err("publisher: 1 to 200 characters".into());
    }
    if let Some(e) = &d.contact_email
        && (e.len() > 200
            || e.split('@').count() != 2
            || e.starts_with('@')
            || e.ends_with('@')
            || !e.chars().all(|c| c.is_alphanumeric() || ".-_+@".contains(c)))
    {
        return Err(format!("contact_email {e:?} is not an e-mail address"));
    }
    if d.embargo_hours > 24 * 366 {
        return Err("embargo_hours: at most a year (8784)".into());
    }
    if let Some(c) = &d.commune
        && !catalog.communes().iter().any(|x| x.insee.as_str() == c)
    {
        return Err(format!("commune {c} is not in the catalog"));
    }
    if let Some(s) = &d.site {
        let Some(site) = catalog.sites().into_iter().find(|x| x.id.as_str() == s) else {
            return Err(format!("place {s} is not in the catalog"));
        };
        if d.commune.as_deref().is_some_and(|c| c != site.commune.as_str()) {
            return Err(format!(
                "place {s} is not in commune {}",
                d.commune.as_deref().unwrap_or("")
            ));
        }
    }
    let equipment = d.theme == Theme::Equipment;
    match d.kind {
        DatasetKind::Measurements if equipment => {
            return Err("theme equipment is for the places and devices catalogues".into());
        }
        DatasetKind::Places
        | DatasetKind::Devices
        | DatasetKind::Wellbeing
        | DatasetKind::Accessibility
        | DatasetKind::Reports
        | DatasetKind::PointsOfInterest
        | DatasetKind::Tours
            if !equipment =>
        {
            return Err(format!("kind {:?} takes theme equipment", d.kind));
        }
        DatasetKind::Accessibility if d.commune.is_none() || d.site.is_some() => {
            return Err("an accessibility dataset is one commune's (commune, no place)".into());
        }
        _ => {}
    }
    if d.kind != DatasetKind::Measurements {
        if !d.properties.is_empty() {
            return Err("properties: only measurements datasets have them".into());
        }
        return Ok(());
    }
    let (_, public) = theme_devices(d.theme);
    for prop in &d.properties {
        if PropertyName::parse(prop).is_ok_and(|p| agora_model::is_device_internal(p.as_str())) {
            return Err(format!(
                "property {prop} is about the device itself and is never published"
            ));
        }
        if !public.iter().any(|p| p.name == prop) {
            let names: Vec<&str> = public.iter().map(|p| p.name).collect();
            return Err(format!(
                "property {prop} is not published with theme {}: one of {}",
                d.theme.as_str(),
                names.join(", ")
            ));
        }
    }
    if d.theme == Theme::Footfall && d.resolution < Resolution::Hourly {
        return Err(format!(
            "footfall is never published finer than hourly (resolution {} asked): counts per \
             quarter of an hour could follow a person",
            d.resolution.as_str()
        ));
    }
    Ok(())
}

fn field(name: &str, label: &str, ftype: FieldType, description: &str, facet: bool) -> Field {
    Field {
        name: name.into(),
        label: label.into(),
        ftype,
        description: Some(description.into()),
        unit: None,
        facet,
    }
}

/// The fields of a dataset's records, in order.
pub fn fields(d: &Dataset) -> Vec<Field> {
    use FieldType::{DateTime, GeoPoint, Int, Text};
    let place = [
        field("site_id", "Identifiant du lieu", Text, "Identifiant du lieu équipé", true),
        field("site_name", "Lieu", Text, "Nom du lieu équipé", true),
        field("commune", "Code INSEE", Text, "Code INSEE de la commune", true),
        field("commune_name", "Commune", Text, "Nom de la commune", true),
    ];
    let double = |name: &str, label: &str, description: &str| Field {
        name: name.into(),
        label: label.into(),
        ftype: FieldType::Double,
        description: Some(description.into()),
        unit: None,
        facet: false,
    };
    match d.kind {
        DatasetKind::PointsOfInterest | DatasetKind::Tours => {
            let mut f = Vec::new();
            if d.kind == DatasetKind::Tours {
                f.extend([
                    field("tour_id", "Parcours", Text, "Identifiant du parcours", true),
                    field("tour_title_fr", "Titre", Text, "Titre du parcours en français", true),
                    field("tour_title_en", "Title", Text, "Titre du parcours en anglais", false),
                    field(
                        "stop",
                        "Étape",
                        Int,
                        "Rang de l'étape dans le parcours, à partir de 1",
                        false,
                    ),
                    double(
                        "tour_distance_m",
                        "Longueur (m)",
                        "Longueur du parcours à pied, en mètres",
                    ),
                    double(
                        "tour_duration_min",
                        "Durée (min)",
                        "Durée du parcours à 4 km/h, haltes comprises",
                    ),
                ]);
            }
            f.extend([
                field("poi_id", "Lieu", Text, "Identifiant du lieu", false),
                field("kind", "Type", Text, "heritage, museum, fountain, viewpoint, shade, toilets, drinking_water ou other", true),
                field("name_fr", "Nom", Text, "Nom en français", false),
                field("name_en", "Name", Text, "Nom en anglais", false),
                field("description_fr", "Description", Text, "Description en français", false),
                field("description_en", "Description (en)", Text, "Description en anglais", false),
                field("opening_hours", "Horaires", Text, "Horaires d'ouverture", false),
                field("accessibility_fr", "Accessibilité", Text, "Accessibilité, en français", false),
                field("commune", "Code INSEE", Text, "Code INSEE de la commune", true),
                field("geo_point_2d", "Position", GeoPoint, "Position du lieu (WGS 84)", false),
            ]);
            f
        }
        DatasetKind::Reports => {
            let mut f = vec![
                field("report_id", "Numéro", Text, "Numéro du signalement", false),
                field("category", "Catégorie", Text, "Identifiant de la catégorie", true),
                field("category_label", "Type de problème", Text, "Catégorie en clair", true),
            ];
            f.extend(place.iter().cloned());
            f.push(field(
                "geo_point_2d",
                "Position",
                GeoPoint,
                "Position du problème arrondie à environ 100 m (WGS 84)",
                false,
            ));
            f.push(field(
                "status",
                "État",
                Text,
                "new, acknowledged, in_progress, resolved ou rejected",
                true,
            ));
            f.push(field(
                "filed_at",
                "Signalé le",
                DateTime,
                "Date et heure du signalement",
                false,
            ));
            f.push(field(
                "closed_at",
                "Clos le",
                DateTime,
                "Date et heure de la résolution ou du rejet, vide s'il est ouvert",
                false,
            ));
            f.push(double(
                "hours_to_close",
                "Délai de traitement (h)",
                "Heures entre le signalement et sa clôture, vide s'il est ouvert",
            ));
            f.push(field(
                "supporters",
                "Personnes",
                Int,
                "Personnes ayant signalé le même problème",
                false,
            ));
            f.push(field("channel", "Canal", Text, "web, kiosk (borne) ou api", true));
            f
        }
        DatasetKind::Wellbeing => {
            let mut f = vec![field("period", "Mois", Text, "Mois (AAAA-MM, heure de Paris)", true)];
            f.extend(place.iter().cloned());
            f.push(field("geo_point_2d", "Position", GeoPoint, "Centre du lieu (WGS 84)", false));
            f.push(double(
                "index",
                "Indice de bien-être",
                "Indice sur 100 (méthode OCDE), vide sous la couverture minimale",
            ));
            for (k, label) in [
                ("environment", "Environnement"),
                ("vitality", "Vitalité urbaine"),
                ("services", "Services et proximité"),
                ("cleanliness", "Propreté et éclairage"),
                ("perceived", "Bien-être perçu"),
            ] {
                f.push(double(
                    k,
                    label,
                    &format!("Dimension « {label} » sur 100, vide sans indicateur mesuré"),
                ));
            }
            f.push(double(
                "weight_coverage",
                "Couverture",
                "Part des poids dont la dimension est mesurée (0 à 1)",
            ));
            f.push(field(
                "missing",
                "Indicateurs manquants",
                Text,
                "Indicateurs sans valeur ce mois, séparés par des virgules",
                false,
            ));
            f.push(field(
                "definition_version",
                "Version de la définition",
                Int,
                "Version des indicateurs, plages et poids (0 : livrée)",
                false,
            ));
            f
        }
        DatasetKind::Accessibility => {
            let mut f = vec![
                field(
                    "square_id",
                    "Carreau",
                    Text,
                    "Identifiant INSEE du carreau de 200 m (ou de l'adresse)",
                    false,
                ),
                field("commune", "Code INSEE", Text, "Code INSEE de la commune", true),
                field("neighbourhood", "Quartier", Text, "Code du quartier importé", true),
                field("geo_point_2d", "Position", GeoPoint, "Centre du carreau (WGS 84)", false),
                double(
                    "population",
                    "Population",
                    "Habitants estimés (Filosofi) ou poids de l'adresse",
                ),
            ];
            for (k, label) in [
                ("commerce_min", "Commerces"),
                ("health_min", "Santé"),
                ("social_min", "Équipements sociaux"),
                ("leisure_min", "Loisirs"),
            ] {
                f.push(double(k, &format!("{label} (min)"), &format!("Minutes à pied jusqu'à l'équipement « {label} » le plus proche, vide si aucun n'est joignable")));
            }
            f.push(field(
                "themes_within",
                "Thèmes à 15 min",
                Int,
                "Nombre de thèmes à moins de la limite (0 à 4)",
                true,
            ));
            f.push(field(
                "off_network",
                "Hors réseau",
                Text,
                "oui : trop loin des rues pour que l'accès soit connu",
                true,
            ));
            f
        }
        DatasetKind::Places => {
            let mut f = vec![field("site_id", "Identifiant", Text, "Identifiant du lieu", false)];
            f.push(field("name", "Nom", Text, "Nom du lieu", false));
            f.extend(place[2..].iter().cloned());
            f.push(field("geo_point_2d", "Position", GeoPoint, "Centre du lieu (WGS 84)", false));
            f.push(field(
                "themes",
                "Thèmes",
                Text,
                "Ce qui y est mesuré, séparé par des virgules",
                false,
            ));
            f.push(field("devices", "Capteurs", Int, "Nombre de capteurs publics du lieu", false));
            f
        }
        DatasetKind::Devices => {
            let mut f = vec![
                field("device_id", "Identifiant", Text, "Identifiant du capteur", false),
                field("name", "Nom", Text, "Nom du capteur", false),
                field("kind", "Type", Text, "Type de capteur", true),
                field("theme", "Thème", Text, "Thème de ses mesures", true),
            ];
            f.extend(place.iter().cloned());
            f.push(field(
                "geo_point_2d",
                "Position",
                GeoPoint,
                "Position du capteur (WGS 84)",
                false,
            ));
            f.push(field(
                "properties",
                "Grandeurs",
                Text,
                "Grandeurs publiées, séparées par des virgules",
                false,
            ));
            f
        }
        DatasetKind::Measurements => {
            let (date_type, date_text) = match d.resolution {
                Resolution::Raw => (DateTime, "Instant de la mesure (UTC)"),
                Resolution::QuarterHour => (DateTime, "Début du quart d'heure (UTC)"),
                Resolution::Hourly => (DateTime, "Début de l'heure (UTC)"),
                Resolution::Daily => (FieldType::Date, "Jour (heure de Paris)"),
            };
            let mut f = vec![
                field("date", "Date", date_type, date_text, false),
                field("device_id", "Capteur", Text, "Identifiant du capteur", true),
            ];
            f.extend(place.iter().cloned());
            f.push(field(
                "geo_point_2d",
                "Position",
                GeoPoint,
                "Position du capteur (WGS 84)",
                false,
            ));
            for p in published(d) {
                let how = match (d.resolution, p.summary) {
                    (Resolution::Raw, _) => "valeur mesurée",
                    (_, Summary::Mean) if p.unit == "dB(A)" => "moyenne énergétique sur la période",
                    (_, Summary::Mean) => "moyenne sur la période",
                    (_, Summary::Sum) => "somme sur la période",
                    (_, Summary::Max) => "maximum sur la période",
                };
                let ftype = if p.summary == Summary::Sum { Int } else { FieldType::Double };
                f.push(Field {
                    name: p.name.into(),
                    label: format!("{} ({})", p.label, p.unit),
                    ftype,
                    description: Some(format!("{}, {how}, en {}", p.label, p.unit)),
                    unit: Some(p.unit.into()),
                    facet: false,
                });
            }
            f
        }
    }
}

/// How often a dataset changes, as DCAT's frequency vocabulary names it.
pub fn frequency(d: &Dataset) -> &'static str {
    match (d.kind, d.resolution) {
        (DatasetKind::Wellbeing, _) => "MONTHLY",
        (DatasetKind::Reports, _) => "DAILY",
        (DatasetKind::PointsOfInterest | DatasetKind::Tours, _) => "IRREG",
        (DatasetKind::Measurements, Resolution::Raw | Resolution::QuarterHour) => "CONT",
        (DatasetKind::Measurements, Resolution::Hourly) => "HOURLY",
        (DatasetKind::Measurements, Resolution::Daily) => "DAILY",
        _ => "IRREG",
    }
}
