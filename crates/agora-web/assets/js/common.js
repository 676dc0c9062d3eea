// Shared by every page: settings and texts embedded by the server, API calls, number and date
// formats, units, colour scales with their legends, and the live stream.

export const settings = JSON.parse(document.getElementById('agora-settings').textContent);
const dict = JSON.parse(document.getElementById('agora-i18n').textContent);

/** The text of `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars) {
  let s = dict[key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, v);
  return s;
}

/** Escape text for HTML. */
export function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** GET a JSON endpoint of this server; throws an Error with the problem's detail. */
export async function api(path) {
  const r = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!r.ok) {
    let detail = `${r.status}`;
    try { detail = (await r.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return r.json();
}

/** Say something to screen-reader users without moving focus. */
export function announce(text) {
  const a = document.getElementById('announcer');
  if (a) a.textContent = text;
}

const locale = settings.lang === 'en' ? 'en-GB' : 'fr-FR';
const numberFormats = new Map();

/** A number with at most `digits` decimals, in the page's language. */
export function num(v, digits = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return '—';
  if (typeof v !== 'number') return String(v);
  let f = numberFormats.get(digits);
  if (!f) numberFormats.set(digits, (f = new Intl.NumberFormat(locale, { maximumFractionDigits: digits })));
  return f.format(v);
}

const dateTime = new Intl.DateTimeFormat(locale, { dateStyle: 'short', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(locale, { timeStyle: 'short' });

/** A date and time (milliseconds or ISO string). */
export function when(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  const today = new Date();
  return d.toDateString() === today.toDateString() ? timeOnly.format(d) : dateTime.format(d);
}

/** Units as people write them. */
const UNITS = { 'ug/m3': 'µg/m³', 'mg/m3': 'mg/m³', Cel: '°C', dB: 'dB(A)', '%': '%', hPa: 'hPa', 'm/s': 'm/s', W: 'W', lx: 'lx', '{count}': '', '1': '', dBm: 'dBm', V: 'V' };
export function unit(u, property) {
  if (property === 'snr') return 'dB';
  return UNITS[u] ?? u ?? '';
}

/** A value with its unit. */
export function withUnit(v, u, property) {
  if (typeof v === 'boolean') return v ? t('value.on') : t('value.off');
  if (typeof v === 'string') return t(`state.${v}`) === `state.${v}` ? v : t(`state.${v}`);
  const s = unit(u, property);
  return s ? `${num(v)} ${s}` : num(v);
}

/** The property's name in the page's language. */
export function propName(p) {
  const k = `prop.${p}`;
  const s = t(k);
  return s === k ? p.replaceAll('_', ' ') : s;
}

export function kindName(k) {
  const s = t(`kind.${k}`);
  return s === `kind.${k}` ? k.replaceAll('_', ' ') : s;
}

// ---- Colour scales -------------------------------------------------------------------------

// European Air Quality Index bands (EEA, 2024 revision, hourly values, µg/m³): upper bounds.
const AQ_BOUNDS = {
  pm2_5: [5, 15, 50, 90, 140],
  pm10: [15, 45, 120, 195, 270],
  no2: [10, 25, 60, 100, 150],
  o3: [60, 100, 120, 160, 180],
  so2: [20, 40, 125, 190, 275],
};
const AQ_COLOURS = ['#50f0e6', '#50ccaa', '#f0e641', '#ff5050', '#960032', '#7d2181'];
const AQ_KEYS = ['good', 'fair', 'moderate', 'poor', 'very_poor', 'extremely_poor'];

/** The air-quality band (0 good … 5 extremely poor) of a pollutant's value, or null. */
export function aqBand(property, v) {
  const b = AQ_BOUNDS[property];
  if (!b || typeof v !== 'number') return null;
  const i = b.findIndex((x) => v <= x);
  return i < 0 ? 5 : i;
}

function stepScale(bounds, colours, labels) {
  return {
    colour(v) {
      if (typeof v !== 'number') return null;
      const i = bounds.findIndex((x) => v < x);
      return colours[i < 0 ? colours.length - 1 : i];
    },
    legend: colours.map((c, i) => ({ colour: c, label: labels[i] })),
  };
}

function ranges(bounds, u) {
  const out = [`< ${num(bounds[0])} ${u}`];
  for (let i = 1; i < bounds.length; i++) out.push(`${num(bounds[i - 1])}–${num(bounds[i])} ${u}`);
  out.push(`≥ ${num(bounds[bounds.length - 1])} ${u}`);
  return out;
}

const TEMP = [0, 5, 10, 15, 20, 25, 30, 35];
const TEMP_C = ['#313695', '#4575b4', '#74add1', '#abd9e9', '#e0f3f8', '#fee090', '#fdae61', '#f46d43', '#a50026'];
const NOISE = [45, 50, 55, 60, 65, 70, 75];
const NOISE_C = ['#a6d96a', '#66bd63', '#fee08b', '#fdae61', '#f46d43', '#d73027', '#a50026', '#5e0031'];
const PEOPLE = [10, 50, 100, 250, 500];
const PEOPLE_C = ['#f2f0f7', '#cbc9e2', '#9e9ac8', '#756bb1', '#54278f', '#3f007d'];
const FILL = [50, 80];
const FILL_C = ['#1a9850', '#fdae61', '#d73027'];
const SOIL = [10, 20, 30, 40];
const SOIL_C = ['#8c510a', '#d8b365', '#c7eae5', '#5ab4ac', '#01665e'];

/** The colour scale of a property, with its legend; null when it has none. */
export function scaleOf(property) {
  if (AQ_BOUNDS[property]) {
    const b = AQ_BOUNDS[property];
    const labels = AQ_KEYS.map((k, i) => `${t(`aq.${k}`)} (${i === 0 ? '≤ ' + b[0] : i === 5 ? '> ' + b[4] : b[i - 1] + '–' + b[i]} µg/m³)`);
    return { colour: (v) => (typeof v === 'number' ? AQ_COLOURS[aqBand(property, v)] : null), legend: AQ_COLOURS.map((c, i) => ({ colour: c, label: labels[i] })) };
  }
  switch (property) {
    case 'temperature': return stepScale(TEMP, TEMP_C, ranges(TEMP, '°C'));
    case 'laeq': case 'lamax': return stepScale(NOISE, NOISE_C, ranges(NOISE, 'dB(A)'));
    case 'people_in': case 'people_out': case 'people_count': return stepScale(PEOPLE, PEOPLE_C, ranges(PEOPLE, ''));
    case 'fill_level': return stepScale(FILL, FILL_C, ranges(FILL, '%'));
    case 'soil_moisture': return stepScale(SOIL, SOIL_C, ranges(SOIL, '%'));
    case 'lamp_on': return {
      colour: (v) => (v === true ? '#ffd23f' : v === false ? '#4d4d4d' : null),
      legend: [{ colour: '#ffd23f', label: t('value.on') }, { colour: '#4d4d4d', label: t('value.off') }],
    };
    default: return null;
  }
}

/** The ATMO index's classes and the arrêté's colours (the EEA's index uses the same six). */
export const ATMO_COLOURS = { bon: '#50f0e6', moyen: '#50ccaa', degrade: '#f0e641', mauvais: '#ff5050', tres_mauvais: '#960032', extremement_mauvais: '#7d2181' };
/** The European index's bands and their colours. */
export const EAQI_COLOURS = { good: '#50f0e6', fair: '#50ccaa', moderate: '#f0e641', poor: '#ff5050', very_poor: '#960032', extremely_poor: '#7d2181' };

export const STATE_COLOURS = { online: '#1a9850', flagged: '#f28e2b', faulty: '#d62728', offline: '#7f7f7f', never_seen: '#c7c7c7' };
export const KIND_COLOURS = {
  air_quality: '#1f77b4', noise: '#9467bd', weather: '#17becf', pedestrian_counter: '#e377c2',
  streetlight: '#bcbd22', waste_container: '#8c564b', soil_moisture: '#2ca02c',
};

/** The property a device kind is best known by. */
export const MAIN_PROPERTY = {
  air_quality: 'pm10', noise: 'laeq', weather: 'temperature', pedestrian_counter: 'people_in',
  streetlight: 'lamp_on', waste_container: 'fill_level', soil_moisture: 'soil_moisture',
};

/** A legend: coloured swatches with text, so colour is never the only carrier of meaning. */
export function legendHtml(title, items) {
  return `<p class="legend-title">${esc(title)}</p><ul>${items
    .map((i) => `<li><span class="swatch" style="background:${i.colour}" aria-hidden="true"></span>${esc(i.label)}</li>`)
    .join('')}</ul>`;
}

// ---- Live updates ----------------------------------------------------------------------------

/** Follow new values and device states; `params` filters (site, device, kind). */
export function live(params, { values, states }) {
  const q = new URLSearchParams(params ?? {}).toString();
  const es = new EventSource(`/api/v1/live${q ? '?' + q : ''}`);
  if (values) es.addEventListener('values', (e) => values(JSON.parse(e.data)));
  if (states) es.addEventListener('states', (e) => states(JSON.parse(e.data)));
  return es;
}

/** Download rows as a CSV file (comma separated, UTF-8 with BOM so spreadsheets read accents). */
export function downloadCsv(name, header, rows) {
  const cell = (v) => {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  const text = [header, ...rows].map((r) => r.map(cell).join(',')).join('\r\n');
  const blob = new Blob(['\ufeff' + text], { type: 'text/csv;charset=utf-8' });
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
}

// ---- Figures of a place (place page and kiosk) -------------------------------------------------

function mean(xs) {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null;
}

/** Sound levels are averaged as energy, never arithmetically. */
function energyMean(xs) {
  return xs.length ? 10 * Math.log10(xs.reduce((a, b) => a + 10 ** (b / 10), 0) / xs.length) : null;
}

/**
 * The European Air Quality Index of the latest hour of a place (or `commune=`), as the server
 * computes it (`/api/v1/indicators/eaqi`: the worst device's hourly means, EEA bands), or null
 * when no pollutant was measured in the last two hours.
 */
export async function eaqiNow(query) {
  try {
    const r = await api(`/api/v1/indicators/eaqi?${query}&from=now-2h`);
    const h = r.hours.at(-1);
    if (!h?.index.class) return null;
    return { class: h.index.class, colour: EAQI_COLOURS[h.index.class], label: t(`eaqi.${h.index.class}`), hour: h.hour, responsible: h.index.responsible };
  } catch {
    return null;
  }
}

/** The current figures of a place from its devices' latest values. */
export function placeFigures(devices) {
  const vals = (p) => devices.map((d) => d.latest?.[p]?.[1]).filter((v) => typeof v === 'number');
  const pollutants = {};
  for (const p of ['pm2_5', 'pm10', 'no2', 'o3', 'so2']) {
    const m = mean(vals(p));
    if (m !== null) pollutants[p] = m;
  }
  const lamps = devices.map((d) => d.latest?.lamp_on?.[1]).filter((v) => typeof v === 'boolean');
  const fills = vals('fill_level');
  const latest = Math.max(0, ...devices.flatMap((d) => Object.values(d.latest ?? {}).map((l) => l[0])));
  return {
    pollutants,
    temperature: mean(vals('temperature')),
    humidity: mean(vals('relative_humidity')),
    noise: energyMean(vals('laeq')),
    people: vals('people_in').length ? vals('people_in').reduce((a, b) => a + b, 0) : null,
    fill: mean(fills),
    full_bins: fills.filter((f) => f >= 80).length,
    bins: fills.length,
    lamps_on: lamps.filter(Boolean).length,
    lamps: lamps.length,
    soil: mean(vals('soil_moisture')),
    latest,
  };
}

/**
 * Whether the logged-in person's role takes `action` (view, modify, delete, command, publish,
 * manage_people): buttons they may not use are not shown. The server decides in any case,
 * commune by commune and, for a business department, domain by domain.
 */
export function may(action) {
  return settings.operator?.may?.includes(action) ?? false;
}

/** POST JSON to this server with the session's CSRF token; throws with the problem's detail. */
export async function post(path, body) {
  const r = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': settings.csrf ?? '' },
    body: JSON.stringify(body ?? {}),
  });
  if (!r.ok) {
    let detail = `${r.status}`;
    try { detail = (await r.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return r.json();
}

/** A request with the session's CSRF token; throws with the problem's detail. */
export async function send(method, path, body) {
  const r = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': settings.csrf ?? '' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok) {
    let detail = `${r.status}`;
    try { detail = (await r.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return r.status === 204 ? null : r.json();
}

/** Operators: the number of open alerts on the navigation badge, refreshed every 10 s. */
async function alertBadge() {
  const badge = document.getElementById('alert-badge');
  if (!badge) return;
  try {
    const a = await api('/api/v1/alerts?state=open&limit=1000');
    badge.hidden = a.count === 0;
    badge.textContent = String(a.count);
    badge.setAttribute('aria-label', t('alerts.badge', { n: a.count }));
  } catch { /* alerting off or session over: no badge */ }
}
if (settings.operator) {
  alertBadge();
  setInterval(alertBadge, 10_000);
}

/** A forecasting method (`method_detail` of a forecast or model) in the page's language. */
export function methodName(m) {
  if (!m) return '—';
  if (m.method === 'naive_day') return t('method.naive_day');
  if (m.method === 'naive_week') return t('method.naive_week');
  return t('method.profile', { days: m.days, weekly: num(m.weekly, 1), alpha: num(m.alpha, 2), phi: num(m.phi, 2) });
}

/** Where to see an anomaly: the device's charts over its days (and two before). */
export function anomalyHref(a) {
  const from = new Date(Date.parse(a.from) - 2 * 86_400_000).toISOString();
  const q = new URLSearchParams({ from, to: a.to });
  return `/supervision/devices/${encodeURIComponent(a.device)}?${q}#chart-${encodeURIComponent(a.property)}`;
}

/** What an anomaly (`/api/v1/anomalies`) is, in words. */
export function anomalyText(a) {
  const u = a.property === 'temperature' ? '°C' : '%';
  if (a.kind === 'unlikely') {
    const hours = Math.round((Date.parse(a.to) - Date.parse(a.from)) / 3_600_000);
    const text = t('anomaly.unlikely_text', { value: num(a.value), expected: num(a.before), lo: num(a.interval?.[0]), hi: num(a.interval?.[1]), hours });
    const [k, n] = a.shared ?? [0, 0];
    return k >= 2 && 2 * k >= n ? `${text} — ${t('anomaly.event', { k, n })}` : text;
  }
  if (a.kind === 'level_shift') return t('anomaly.shift_text', { before: num(a.before), after: num(a.value) });
  const peers = a.peers.join(', ');
  const sign = (v) => `${v > 0 ? '+' : ''}${num(v, 1)}`;
  return t('anomaly.drift_text', { now: `${sign(a.value)} ${u}`, before: `${sign(a.before)} ${u}`, peers });
}

const ATMO_KEYS = Object.keys(ATMO_COLOURS);
/**
 * Tomorrow at a place (`/api/v1/forecast/tomorrow`) as cards: the forecast ATMO class with the
 * range its intervals allow, the temperatures against the canicule thresholds, the footfall
 * against the usual weekday. `{key, label, value (HTML), note, colour, text, warn}`.
 */
export function tomorrowCards(d) {
  const out = [];
  if (d.atmo?.index.class) {
    const c = d.atmo.index.class;
    const name = (l) => t(`atmo.${ATMO_KEYS[l - 1]}`);
    const range = d.atmo.level_low && d.atmo.level_high && d.atmo.level_low !== d.atmo.level_high
      ? t('tomorrow.range', { low: name(d.atmo.level_low), high: name(d.atmo.level_high) }) : '';
    const resp = `${t('env.responsible')} ${d.atmo.index.responsible.map((p) => t(`prop.${p}`)).join(', ')}`;
    const left = d.atmo.excluded?.length ? t('tomorrow.excluded', { devices: d.atmo.excluded.join(', ') }) : '';
    out.push({ key: 'atmo', label: t('tomorrow.atmo'), value: `<span class="aq" style="background:${ATMO_COLOURS[c]}">${esc(t(`atmo.${c}`))}</span>`, note: [range, resp, left].filter(Boolean).join(' · '), colour: ATMO_COLOURS[c], text: t(`atmo.${c}`) });
  }
  if (d.heat) {
    const h = d.heat;
    const note = h.reaches_thresholds ? t('tomorrow.heat_reaches', { min: num(h.threshold_min, 0), max: num(h.threshold_max, 0) }) : t('tomorrow.heat_below', { min: num(h.threshold_min, 0), max: num(h.threshold_max, 0) });
    out.push({ key: 'heat', label: t('tomorrow.heat'), value: `${num(h.t_min, 0)} / ${num(h.t_max, 0)} °C`, note, colour: h.reaches_thresholds ? '#d62728' : scaleOf('temperature').colour(h.t_max), warn: h.reaches_thresholds });
  }
  if (d.footfall) {
    const p = d.footfall.vs_usual_percent;
    const weekday = new Date(`${d.day}T12:00:00Z`).getUTCDay();
    const days = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
    out.push({ key: 'footfall', label: t('tomorrow.footfall'), value: `${p > 0 ? '+' : ''}${num(p, 0)} %`, note: t('tomorrow.footfall_note', { weekday: t(`day.${days[weekday]}`) }), colour: '#756bb1' });
  }
  return out;
}
