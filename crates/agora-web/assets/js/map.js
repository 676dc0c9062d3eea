// The map: public (places, devices and their latest public values) and operator (the same with
// device states and every property). One layer per device kind; colour by kind, by state or by a
// property's scale; live updates; a side panel with the chosen device's values and 24 h chart.

import {
  settings, t, esc, api, when, withUnit, propName, kindName, scaleOf, legendHtml, live, announce,
  eaqiNow, STATE_COLOURS, KIND_COLOURS, MAIN_PROPERTY,
} from './common.js';
import { chart } from './charts.js';

const operator = settings.mode === 'operator';
const data = await api(operator ? '/api/v1/map' : '/api/v1/public/map');
const devices = new Map(data.devices.map((d) => [d.id, d]));
const sites = new Map(data.sites.map((s) => [s.id, s]));

// ---- Base map: tiles only when configured; otherwise communes, places and devices on a plain
// background, so nothing is fetched from outside the server.
const map = L.map('map', { zoomSnap: 0.5, attributionControl: Boolean(settings.tile_url) });
if (settings.tile_url) {
  L.tileLayer(settings.tile_url, { attribution: esc(settings.tile_attribution), maxZoom: 19 }).addTo(map);
} else {
  document.getElementById('map').classList.add('plain');
}
for (const c of data.communes) {
  if (c.boundary) {
    L.geoJSON(c.boundary, { interactive: false, style: { color: '#444', weight: 2, fill: false, dashArray: '6 4' } })
      .bindTooltip(c.name).addTo(map);
  }
  // The commune's name over its places, boundary or not.
  const own = data.sites.filter((s) => s.commune === c.insee && s.lat != null);
  if (own.length) {
    const lat = Math.max(...own.map((s) => s.lat)) + 0.004;
    const lon = own.reduce((a, s) => a + s.lon, 0) / own.length;
    L.marker([lat, lon], {
      icon: L.divIcon({ className: 'commune-label', html: `<span>${esc(c.name)}</span>`, iconSize: null }),
      keyboard: false, interactive: false,
    }).addTo(map);
  }
}
const placeLayer = L.layerGroup().addTo(map);
for (const s of data.sites) {
  if (s.geometry) {
    L.geoJSON(s.geometry, { interactive: false, style: { color: '#333', weight: 1, fillOpacity: 0.05 } }).addTo(placeLayer);
  }
  if (s.lat != null && s.lon != null) {
    L.circle([s.lat, s.lon], { radius: 120, color: '#333', weight: 1, fillOpacity: 0.04, interactive: false }).addTo(placeLayer);
    L.marker([s.lat, s.lon], {
      icon: L.divIcon({ className: 'place-label', html: `<span>${esc(s.name)}</span>`, iconSize: null }),
      keyboard: false, interactive: false,
    }).addTo(placeLayer);
  }
}

// ---- Devices: one layer group per kind.
const kinds = [...new Set(data.devices.map((d) => d.kind))].sort();
const layers = new Map(kinds.map((k) => [k, L.layerGroup().addTo(map)]));
const markers = new Map();
const present = new Set(Object.keys(data.units));
const propertyViews = ['pm10', 'pm2_5', 'no2', 'o3', 'temperature', 'laeq', 'people_in', 'fill_level', 'soil_moisture', 'lamp_on']
  .filter((p) => present.has(p));
let view = operator ? 'state' : 'kind';
let selected = null;
/** Devices with an open alert (operators): ringed in red on the map. */
const alerted = new Set();

function valueOf(d, p) {
  const l = d.latest?.[p];
  return l ? l[1] : undefined;
}

function colourOf(d) {
  if (view === 'kind') return KIND_COLOURS[d.kind] ?? '#555';
  if (view === 'state') return STATE_COLOURS[d.state] ?? '#555';
  const s = scaleOf(view);
  return s?.colour(valueOf(d, view)) ?? null;
}

function style(d) {
  const c = colourOf(d);
  const hidden = c === null;
  const ring = alerted.has(d.id);
  return {
    radius: d.kind === 'streetlight' ? (ring ? 6 : 4) : 7,
    color: d.id === selected ? '#000' : ring ? '#d00000' : '#1b1b1b',
    weight: d.id === selected ? 3 : ring ? 4 : 1,
    fillColor: c ?? '#999',
    fillOpacity: hidden ? 0 : 0.9,
    opacity: hidden ? 0 : 1,
  };
}

const bounds = [];
// Kinds with many devices (street lights, bins) are drawn first, so that the rarer ones (air,
// noise, weather) stay on top and clickable.
const perKind = {};
for (const d of data.devices) perKind[d.kind] = (perKind[d.kind] ?? 0) + 1;
const drawOrder = [...data.devices].sort((a, b) => perKind[b.kind] - perKind[a.kind]);
for (const d of drawOrder) {
  if (d.lat == null || d.lon == null) continue;
  const m = L.circleMarker([d.lat, d.lon], { ...style(d), className: `dev dev-${d.id}` });
  m.on('click', () => openDevice(d.id));
  m.bindTooltip(() => tooltip(d), { direction: 'top' });
  m.addTo(layers.get(d.kind));
  markers.set(d.id, m);
  bounds.push([d.lat, d.lon]);
}
for (const s of data.sites) if (s.lat != null) bounds.push([s.lat, s.lon]);
if (bounds.length) map.fitBounds(bounds, { padding: [30, 30] });
else map.setView([46.6, 2.4], 6);

function tooltip(d) {
  const p = view !== 'kind' && view !== 'state' ? view : MAIN_PROPERTY[d.kind];
  const v = p ? valueOf(d, p) : undefined;
  const val = v === undefined ? '' : ` — ${propName(p)} ${withUnit(v, data.units[p], p)}`;
  return `${esc(d.name ?? d.id)}${esc(val)}`;
}

function restyle(id) {
  const d = devices.get(id);
  const m = markers.get(id);
  if (d && m) m.setStyle(style(d));
}

// ---- Controls: layers per kind, colour mode, legend.
const fs = document.getElementById('layers');
fs.insertAdjacentHTML('beforeend', `<div class="kinds">${kinds.map((k) => `<label><input type="checkbox" name="kind" value="${esc(k)}" checked>
  <span class="swatch" style="background:${KIND_COLOURS[k] ?? '#555'}" aria-hidden="true"></span> ${esc(kindName(k))}
  (${data.devices.filter((d) => d.kind === k).length})</label>`).join('')}</div>
  <label class="block">${esc(t('map.colour'))} <select id="view">
    <option value="kind">${esc(t('map.by_kind'))}</option>
    ${operator ? `<option value="state">${esc(t('map.by_state'))}</option>` : ''}
    ${propertyViews.map((p) => `<option value="${p}">${esc(propName(p))}</option>`).join('')}
  </select></label>
  <label class="block">${esc(t('map.find'))} <input id="find" list="device-ids" autocomplete="off"></label>
  <datalist id="device-ids">${data.devices.map((d) => `<option value="${esc(d.id)}">${esc(d.name ?? '')}</option>`).join('')}</datalist>`);
fs.addEventListener('change', (e) => {
  if (e.target.name === 'kind') {
    const g = layers.get(e.target.value);
    e.target.checked ? g.addTo(map) : g.remove();
  }
});
const viewSelect = document.getElementById('view');
viewSelect.value = view;
viewSelect.addEventListener('change', () => {
  view = viewSelect.value;
  for (const id of markers.keys()) restyle(id);
  drawLegend();
});
document.getElementById('find').addEventListener('change', (e) => {
  if (devices.has(e.target.value)) openDevice(e.target.value, true);
});

function drawLegend() {
  const el = document.getElementById('legend');
  if (view === 'kind') {
    el.innerHTML = legendHtml(t('map.by_kind'), kinds.map((k) => ({ colour: KIND_COLOURS[k] ?? '#555', label: kindName(k) })));
  } else if (view === 'state') {
    const counts = {};
    for (const d of data.devices) counts[d.state] = (counts[d.state] ?? 0) + 1;
    el.innerHTML = legendHtml(t('map.by_state'), Object.entries(STATE_COLOURS)
      .map(([s, c]) => ({ colour: c, label: `${t(`status.${s}`)} (${counts[s] ?? 0})` })));
  } else {
    const s = scaleOf(view);
    el.innerHTML = s ? legendHtml(propName(view), s.legend) : '';
  }
}
drawLegend();

// ---- Heat islands: each commune's interpolated temperature (/api/v1/indicators/heat-map, a PNG
// overlay under the devices, shown from a blob: URL, which the pages' CSP allows) for a night, with
// its colour scale and its leave-one-out error.
const heatInfo = document.createElement('div');
heatInfo.id = 'heat-info';
heatInfo.setAttribute('aria-live', 'polite');
document.getElementById('legend').after(heatInfo);
fs.insertAdjacentHTML('beforeend', `<div class="kinds"><label><input type="checkbox" id="heat-layer"> ${esc(t('heat.layer'))}</label></div>
  <label class="block">${esc(t('heat.night'))} <select id="heat-night"></select></label>`);
const nightSelect = document.getElementById('heat-night');
const shiftDay = (iso, n) => new Date(Date.parse(`${iso}T12:00:00Z`) + n * 86400000).toISOString().slice(0, 10);
const dayFmt = new Intl.DateTimeFormat(settings.lang === 'en' ? 'en-GB' : 'fr-FR', { weekday: 'short', day: '2-digit', month: '2-digit', year: 'numeric', timeZone: 'UTC' });
const nights = [{ date: shiftDay(settings.today, -1), label: t('heat.last_night') }];
nightSelect.innerHTML = nights.map((n) => `<option value="${n.date}">${esc(n.label)}</option>`).join('');
// The hottest night of the latest heatwave of the past year, when there was one.
(async () => {
  for (const c of data.communes) {
    try {
      const h = await api(`/api/v1/indicators/heat?commune=${encodeURIComponent(c.insee)}&from=${shiftDay(settings.today, -365)}&to=${settings.today}`);
      const hot = h.days.filter((d) => d.status.canicule && d.t_min !== null);
      if (!hot.length) continue;
      // The latest episode: consecutive canicule days up to the last one.
      const episode = [hot.at(-1)];
      for (let i = hot.length - 2; i >= 0 && hot[i].day === shiftDay(episode[0].day, -1); i--) episode.unshift(hot[i]);
      const hottest = episode.reduce((a, d) => (d.t_min > a.t_min ? d : a));
      // Its minimum is the night before the day's noon: the evening of the previous day.
      const date = shiftDay(hottest.day, -1);
      if (!nights.some((n) => n.date === date)) {
        nights.push({ date, label: t('heat.canicule_night', { date: dayFmt.format(new Date(`${date}T12:00:00Z`)) }) });
        nightSelect.insertAdjacentHTML('beforeend', `<option value="${date}">${esc(nights.at(-1).label)}</option>`);
      }
    } catch { /* no temperature there */ }
  }
})();
const heatOverlays = [];
// Each drawing has a number: one started later (the box unticked, another night chosen) makes an
// earlier one still loading drop what it fetched.
let heatRun = 0;
async function drawHeat() {
  const run = ++heatRun;
  for (const o of heatOverlays.splice(0)) { o.remove(); URL.revokeObjectURL(o._url); }
  heatInfo.innerHTML = '';
  if (!document.getElementById('heat-layer').checked) return;
  const night = nightSelect.value;
  const parts = [];
  for (const c of data.communes) {
    let url = null;
    try {
      const r = await fetch(`/api/v1/indicators/heat-map?commune=${encodeURIComponent(c.insee)}&night=${night}&format=png`, { credentials: 'same-origin' });
      if (!r.ok) {
        let detail = `${r.status}`;
        try { detail = (await r.json()).detail ?? detail; } catch { /* not JSON */ }
        parts.push(`<p class="muted">${esc(c.name)} : ${esc(detail)}</p>`);
        continue;
      }
      const about = JSON.parse(r.headers.get('X-Agora-Map') ?? 'null');
      const blob = await r.blob();
      if (run !== heatRun) return;
      if (!about?.bbox) throw new Error('X-Agora-Map');
      url = URL.createObjectURL(blob);
      const [w, s, e, n] = about.bbox;
      const o = L.imageOverlay(url, [[s, w], [n, e]], { opacity: 0.8, interactive: false, className: 'heat-overlay', alt: t('heat.layer') });
      o._url = url;
      o.addTo(map).bringToBack();
      heatOverlays.push(o);
      const m = about.method;
      const chosen = m.method === 'idw' ? t('heat.idw') : t('heat.kriging', { model: t(`heat.model.${m.variogram?.model}`) });
      const idw = about.cross_validation.find((a) => a.method === 'idw');
      const gradient = about.legend.stops.map((x) => x.colour).join(', ');
      parts.push(`<p class="legend-title">${esc(t('heat.layer'))} — ${esc(c.name)}</p>
        <div class="heat-scale" style="background:linear-gradient(to right, ${gradient})" aria-hidden="true"></div>
        <div class="heat-ticks">${about.legend.stops.map((x) => `<span>${esc(num1(x.value))}</span>`).join('')}</div>
        <p class="muted heat-method">${esc(t('heat.about', { sensors: about.sensors, method: chosen, rmse: num2(m.rmse), bias: num2(m.bias), idw: num2(idw?.rmse) }))}</p>`);
    } catch (err) {
      if (run !== heatRun) return;
      parts.push(`<p class="muted">${esc(c.name)} : ${esc(t('error.load'))} (${esc(err.message)})</p>`);
    }
  }
  if (run !== heatRun) return;
  heatInfo.innerHTML = parts.join('');
  // Drawn (ready: 1), with how many communes' overlays (a commune may have too few sensors).
  document.body.dataset.heatOverlays = String(heatOverlays.length);
  document.body.dataset.heatReady = '1';
}
const num1 = (v) => (v ?? NaN).toLocaleString(settings.lang, { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const num2 = (v) => (v == null ? '—' : v.toLocaleString(settings.lang, { maximumFractionDigits: 2, minimumFractionDigits: 2 }));
document.getElementById('heat-layer').addEventListener('change', drawHeat);
nightSelect.addEventListener('change', drawHeat);

// ---- Places list with the European air index of each place's latest hour, as the server computes
// it (refreshed every 5 minutes).
const placeAir = new Map();
async function loadPlaceAir() {
  await Promise.all(data.sites.map(async (s) => placeAir.set(s.id, await eaqiNow(`site=${encodeURIComponent(s.id)}`))));
  drawPlaces();
}

function drawPlaces() {
  document.getElementById('places').innerHTML = data.sites.map((s) => {
    const aq = placeAir.get(s.id);
    const n = data.devices.filter((d) => d.site === s.id).length;
    const badge = aq ? `<span class="aq" style="background:${aq.colour}" title="${esc(t('env.eaqi'))}">${esc(t('aq.short'))} : ${esc(aq.label)}</span>` : '';
    return `<li><a href="/places/${encodeURIComponent(s.id)}">${esc(s.name)}</a> ${badge}
      <span class="muted">${esc(t('map.devices', { n }))}</span>
      <button type="button" class="link zoom" data-site="${esc(s.id)}">${esc(t('map.zoom'))}</button></li>`;
  }).join('');
}
drawPlaces();
// Not awaited: the map and its live updates do not wait for the indices.
loadPlaceAir();
setInterval(loadPlaceAir, 5 * 60_000);
document.getElementById('places').addEventListener('click', (e) => {
  const s = sites.get(e.target.dataset?.site);
  if (s?.lat != null) map.setView([s.lat, s.lon], 18);
});

// ---- Device panel.
async function openDevice(id, zoom = false) {
  const d = devices.get(id);
  if (!d) return;
  const previous = selected;
  selected = id;
  if (previous) restyle(previous);
  restyle(id);
  if (zoom && d.lat != null) map.setView([d.lat, d.lon], 19);
  const panel = document.getElementById('panel');
  const place = sites.get(d.site);
  const props = Object.keys(d.latest ?? {}).sort();
  const chosen = view !== 'kind' && view !== 'state' && d.latest?.[view] ? view : MAIN_PROPERTY[d.kind] ?? props[0];
  panel.innerHTML = `<h2>${esc(d.name ?? d.id)}</h2>
    <p class="muted">${esc(kindName(d.kind))}${place ? ` · <a href="/places/${encodeURIComponent(place.id)}">${esc(place.name)}</a>` : ''}
      · <span class="state state-${esc(d.state)}" data-state-of="${esc(d.id)}">${esc(t(`status.${d.state}`))}</span></p>
    <dl class="values">${props.map((p) => `<dt>${esc(propName(p))}</dt><dd data-device="${esc(d.id)}" data-prop="${esc(p)}">${esc(withUnit(d.latest[p][1], data.units[p], p))}</dd>`).join('')}</dl>
    <p class="muted">${esc(t('map.updated_at'))} <span data-time-of="${esc(d.id)}">${esc(when(Math.max(0, ...props.map((p) => d.latest[p][0]))))}</span></p>
    ${operator ? `<p><a href="/supervision/devices/${encodeURIComponent(d.id)}">${esc(t('map.device_page'))}</a></p>` : ''}
    <div class="chart-box" id="device-chart"></div>
    <button type="button" class="link" id="close-panel">${esc(t('map.close'))}</button>`;
  panel.querySelector('#close-panel').addEventListener('click', () => {
    panel.innerHTML = '';
    const was = selected;
    selected = null;
    restyle(was);
  });
  panel.focus();
  announce(t('map.opened', { name: d.name ?? d.id }));
  if (chosen && typeof d.latest?.[chosen]?.[1] !== 'string') {
    await chart(document.getElementById('device-chart'), { device: d.id, property: chosen, from: '-24h' });
  }
}

// ---- Live updates.
const updated = document.getElementById('updated');
function stamp() {
  updated.textContent = t('map.live', { time: new Date().toLocaleTimeString(settings.lang) });
}
stamp();
live({}, {
  values(rows) {
    for (const r of rows) {
      const d = devices.get(r.d);
      if (!d) continue;
      d.latest ??= {};
      if (d.latest[r.p] && d.latest[r.p][0] > r.t) continue; // a late point
      d.latest[r.p] = [r.t, r.v];
      if (d.state === 'offline' || d.state === 'never_seen') d.state = 'online';
      if (view === r.p || view === 'state') restyle(r.d);
      const cell = document.querySelector(`dd[data-device="${CSS.escape(r.d)}"][data-prop="${CSS.escape(r.p)}"]`);
      if (cell) {
        cell.textContent = withUnit(r.v, data.units[r.p], r.p);
        cell.classList.add('flash');
        setTimeout(() => cell.classList.remove('flash'), 1200);
        const time = document.querySelector(`[data-time-of="${CSS.escape(r.d)}"]`);
        if (time) time.textContent = when(r.t);
      }
    }
    stamp();
  },
  states(rows) {
    for (const r of rows) {
      const d = devices.get(r.d);
      if (!d) continue;
      d.state = r.s;
      restyle(r.d);
      const el = document.querySelector(`[data-state-of="${CSS.escape(r.d)}"]`);
      if (el) { el.textContent = t(`status.${r.s}`); el.className = `state state-${r.s}`; }
    }
    if (view === 'state') drawLegend();
    stamp();
  },
});
// Operators: devices with open alerts, refreshed every 5 s.
async function loadAlerts() {
  try {
    const { alerts } = await api('/api/v1/alerts?state=open&limit=1000');
    const now = new Set(alerts.map((a) => a.device).filter(Boolean));
    const changed = [...new Set([...alerted, ...now])].filter((id) => alerted.has(id) !== now.has(id));
    alerted.clear();
    for (const id of now) alerted.add(id);
    for (const id of changed) restyle(id);
    const el = document.getElementById('alert-count');
    if (el) el.textContent = alerts.length ? t('map.alerts', { n: alerts.length }) : '';
  } catch { /* alerting off */ }
}
if (operator) {
  document.getElementById('legend').insertAdjacentHTML('afterend', '<p id="alert-count" class="alert-count" aria-live="polite"></p>');
  await loadAlerts();
  setInterval(loadAlerts, 5000);
}
// ---- Citizens' reports: open ones and those closed lately, nothing personal; a link to report.
const REPORT_COLOURS = { new: '#d62728', acknowledged: '#f28e2b', in_progress: '#f2c12b', resolved: '#1a9850', rejected: '#7f7f7f' };
async function loadReports() {
  let reports;
  try { reports = await api('/api/v1/public/reports'); } catch { return; /* reports off */ }
  const group = L.layerGroup();
  for (const f of reports.features) {
    const p = f.properties;
    const [lon, lat] = f.geometry.coordinates;
    const name = settings.lang === 'en' ? p.category_en : p.category_fr;
    L.circleMarker([lat, lon], { radius: 7, color: '#222', weight: 1, fillColor: REPORT_COLOURS[p.status] ?? '#555', fillOpacity: 0.9, className: 'report-marker' })
      .bindTooltip(`${esc(t('reports.number', { n: p.number }))} · ${esc(name)} · ${esc(t(`reports.status.${p.status}`))}`)
      .addTo(group);
  }
  if (!operator) group.addTo(map);
  fs.insertAdjacentHTML('beforeend', `<label><input type="checkbox" id="reports-layer"${operator ? '' : ' checked'}> ${esc(t('reports.layer'))} (${reports.features.length})</label>
    <p><a class="button" href="/signaler">${esc(t('reports.file'))}</a></p>`);
  document.getElementById('reports-layer').addEventListener('change', (e) => { e.target.checked ? group.addTo(map) : group.remove(); });
}
await loadReports();
document.body.dataset.ready = '1';
