// The departments' services: Éclairage (energy, cost, burning against the sun, lamps to visit,
// dimming scenarios), Propreté (the round of the bins due, each bin's fill rate and time to full,
// visits made against needed) and Espaces verts (each zone's advice for tonight, water saved).
// Every figure comes from the API (`/api/v1/lighting…`, `/api/v1/bins…`, `/api/v1/irrigation`),
// which computes and tests them; this page only draws.

import { settings, t, esc, num, api, announce, may, post, send } from './common.js';

const $ = (id) => document.getElementById(id);
const query = (o) => Object.entries(o).filter(([, v]) => v !== '' && v !== null && v !== undefined)
  .map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
const addDays = (iso, n) => {
  const d = new Date(`${iso}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
};
const fail = (id, e) => { $(id).innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`; };
const card = (label, value, extra = '') =>
  `<div class="card"><p class="card-label">${esc(label)}</p><p class="card-value">${value}</p><p class="card-extra">${extra}</p></div>`;
const table = (head, rows, caption = '') =>
  `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(caption || head.join(', '))}"><table class="table">${caption ? `<caption>${esc(caption)}</caption>` : ''}<thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
const hours = (h) => (h === null || h === undefined ? '—' : h < 48 ? `${num(h, 1)} h` : `${num(h / 24, 1)} ${t('unit.days')}`);

/** A bar chart (SVG) of values by label; `null` values are drawn as gaps, never as zero. */
function bars(items, unitLabel, aria) {
  const W = 720, H = 200, L = 52, B = 34, T = 8;
  const top = Math.max(1e-9, ...items.map((i) => i.value ?? 0));
  const w = (W - L - 8) / Math.max(1, items.length);
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const rects = items.map((i, k) => (i.value === null || i.value === undefined
    ? `<text x="${L + k * w + w / 2}" y="${H - B - 4}" font-size="10" text-anchor="middle">∅</text>`
    : `<rect x="${(L + k * w + 1).toFixed(1)}" y="${y(i.value).toFixed(1)}" width="${Math.max(1, w - 2).toFixed(1)}" height="${(H - B - y(i.value)).toFixed(1)}" fill="${i.colour ?? '#1f5fa8'}"><title>${esc(i.label)} : ${num(i.value, 2)} ${esc(unitLabel)}</title></rect>`)).join('');
  const step = Math.ceil(items.length / 10);
  const xt = items.map((i, k) => (k % step ? '' : `<text x="${L + k * w + w / 2}" y="${H - B + 14}" font-size="10" text-anchor="middle">${esc(i.short ?? i.label)}</text>`)).join('');
  const yt = [0, top / 2, top].map((v) => `<text x="${L - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${num(v, 1)}</text>`).join('');
  return `<figure><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(aria)}">${rects}<line x1="${L}" y1="${H - B}" x2="${W - 8}" y2="${H - B}" stroke="#888"/>${xt}${yt}<text x="4" y="12" font-size="10">${esc(unitLabel)}</text></svg></figure>`;
}

/** The schedules of a service, with their last command and, for lighting, the savings measured. */
async function drawSchedules(id, service) {
  const box = $(id);
  try {
    const list = await api(`/api/v1/${service}/schedules`);
    if (!list.length) { box.innerHTML = `<p>${esc(t('services.schedules.none'))}</p>`; return; }
    const last = (x) => (x.commands.length ? `${esc(new Date(x.commands[0].at).toLocaleString(settings.lang))} — ${esc(x.commands[0].outcome)}` : '—');
    const rows = list.map((x) => {
      const b = x.body;
      const what = service === 'lighting'
        ? `${esc(t(`services.scenario.${b.kind}_what`, { start: b.start, end: b.end, level: b.level ?? '' }))} · ${esc(b.streets.map((p) => p[1]).join(', '))}`
        : `${esc(b.zone)} · ${esc(t(`services.schedules.mode_${b.mode}`))} · ${esc(b.valves.join(', '))}`;
      const saving = service === 'lighting'
        ? `${num(b.estimate.kwh_per_year, 0)} kWh/an${x.measured ? ` · ${esc(t('services.schedules.measured', { kwh: num(x.measured.kwh_per_year, 0), pct: num(100 * (x.measured.of_estimate ?? 0), 0) }))}` : ''}`
        : (x.commands.length && x.commands[0].soil_rise !== undefined ? esc(t('services.schedules.soil_rise', { pts: num(x.commands[0].soil_rise, 1) })) : '—');
      const buttons = may('command')
        ? `<button type="button" data-toggle="${x.id}" data-active="${x.active}">${esc(t(x.active ? 'services.schedules.stop' : 'services.schedules.start'))}</button> <button type="button" data-delete="${x.id}">${esc(t('services.schedules.delete'))}</button>`
        : '';
      return [esc(x.name), what, x.active ? esc(t('services.yes')) : esc(t('services.no')), saving, last(x), buttons];
    });
    box.innerHTML = table([t('services.schedules.name'), t('services.schedules.what'), t('services.schedules.active'), t('services.schedules.effect'), t('services.schedules.last'), ''], rows);
    box.querySelectorAll('button[data-toggle]').forEach((b) => b.addEventListener('click', async () => {
      await send('PATCH', `/api/v1/schedules/${b.dataset.toggle}`, { active: b.dataset.active !== 'true' });
      drawSchedules(id, service);
    }));
    box.querySelectorAll('button[data-delete]').forEach((b) => b.addEventListener('click', async () => {
      await send('DELETE', `/api/v1/schedules/${b.dataset.delete}`);
      drawSchedules(id, service);
    }));
  } catch (e) { fail(id, e); }
}

let map = null;
let layer = null;
/** The page's map with `draw(layer)` on it, fitted to what was drawn. */
function drawMap(draw, label) {
  if (typeof L === 'undefined') return;
  if (!map) {
    map = L.map('map', { zoomSnap: 0.5, attributionControl: Boolean(settings.tile_url) });
    if (settings.tile_url) L.tileLayer(settings.tile_url, { attribution: esc(settings.tile_attribution), maxZoom: 19 }).addTo(map);
    else $('map').classList.add('plain');
    $('map').setAttribute('role', 'region');
  }
  if (layer) layer.remove();
  layer = L.featureGroup().addTo(map);
  draw(layer);
  $('map').setAttribute('aria-label', label);
  const b = layer.getBounds();
  if (b.isValid()) map.fitBounds(b.pad(0.15));
}

// ---- Éclairage ---------------------------------------------------------------------------------

async function lighting() {
  const yesterday = addDays(settings.today, -1);
  $('pick').innerHTML = `<label>${esc(t('services.from'))} <input type="date" id="from" value="${addDays(yesterday, -29)}" max="${yesterday}"></label>
<label>${esc(t('services.to'))} <input type="date" id="to" value="${yesterday}" max="${yesterday}"></label>
<button type="submit">${esc(t('services.show'))}</button>`;
  const period = () => ({ from: $('from').value, to: $('to').value });
  const load = async () => {
    const q = query(period());
    try {
      const [o, m] = await Promise.all([
        api(`/api/v1/lighting?${q}&by=street`),
        api(`/api/v1/lighting/maintenance?${q}`),
      ]);
      const tt = o.totals;
      $('cards').innerHTML = card(t('services.kwh'), `${num(tt.kwh, 0)} kWh`, t('services.coverage', { pct: num(100 * tt.energy_coverage, 1) }))
        + card(t('services.cost'), `${num(tt.eur, 0)} €`, t('services.lamps', { n: tt.lamps }))
        + card(t('services.co2'), `${num(tt.kg_co2e, 0)} kg CO₂e`, '')
        + card(t('services.lit_by_day'), `${num(tt.lit_by_day_h, 0)} h`, t('services.days_lit_by_day', { n: tt.days_lit_by_day }))
        + card(t('services.dark_unlit'), `${num(tt.dark_unlit_h, 0)} h`, t('services.days_unlit', { n: tt.days_unlit_at_night }))
        + card(t('services.to_visit'), String(m.to_visit.length), m.mttr_h === null ? '' : t('services.mttr', { h: num(m.mttr_h, 1) }));
      $('energy').innerHTML = bars(o.days.map((d) => ({ label: d.period, short: d.period.slice(5), value: d.kwh })), 'kWh', t('services.lighting.energy'))
        + `<p class="data-links"><a href="/api/v1/lighting?${q}&by=lamp&format=csv" download>${esc(t('services.csv_lamps'))}</a> · <a href="/api/v1/lighting?${q}&by=street&format=csv" download>${esc(t('services.csv_streets'))}</a></p>`;
      const streets = o.groups.slice().sort((a, b) => b.kwh - a.kwh);
      $('streets').innerHTML = table(
        [t('services.street'), t('services.place'), t('services.lamps_h'), 'kWh', '€', t('services.coverage_h'), t('services.lit_by_day'), t('services.dark_unlit'), t('services.fault_days')],
        streets.map((g) => [esc(g.key), esc(g.place ?? ''), g.lamps, num(g.kwh, 1), num(g.eur, 2), `${num(100 * g.energy_coverage, 0)} %`,
          `${num(g.lit_by_day_h, 1)} h`, `${num(g.dark_unlit_h, 1)} h`, g.fault_days]),
      );
      $('maintenance').innerHTML = table([t('services.month'), t('services.failures'), t('services.repaired'), t('services.mttr_h')],
        m.months.map((x) => [x.month, x.failures, x.repaired, x.mttr_h === null ? '—' : `${num(x.mttr_h, 1)} h`]))
        + (m.repeated.length ? `<p>${esc(t('services.repeated'))} ${m.repeated.map((r) => `${esc(r.lamp)} (${r.faults})`).join(', ')}</p>` : '')
        + `<h3>${esc(t('services.to_visit'))}</h3>`
        + (m.to_visit.length ? table([t('services.place'), t('services.street'), t('services.lamp'), t('services.since'), t('services.why')],
          m.to_visit.map((v) => [esc(v.place), esc(v.street), `<a href="/supervision/devices/${encodeURIComponent(v.lamp)}">${esc(v.lamp)}</a>`, esc(new Date(v.since).toLocaleString(settings.lang)), esc(t(`services.why.${v.why}`))]))
          : `<p>${esc(t('services.none_to_visit'))}</p>`)
        + `<p class="data-links"><a href="/api/v1/lighting/maintenance?${q}&format=csv" download>${esc(t('services.csv_visits'))}</a> · <a href="/api/v1/lighting/maintenance?${q}&format=geojson" download>GeoJSON</a></p>`;
      drawMap((g) => {
        for (const s of o.groups) {
          if (s.lat === null) continue;
          L.circleMarker([s.lat, s.lon], { radius: 6 + Math.sqrt(s.kwh / Math.max(1, tt.kwh)) * 30, color: '#1f4e79', weight: 1, fillOpacity: 0.35 })
            .bindTooltip(`${esc(s.key)} : ${num(s.kwh, 0)} kWh`).addTo(g);
        }
        for (const v of m.to_visit) {
          if (v.lat === null) continue;
          L.circleMarker([v.lat, v.lon], { radius: 7, color: '#b3261e', weight: 2, fillColor: '#b3261e', fillOpacity: 0.9 })
            .bindTooltip(`${esc(v.lamp)} — ${esc(t(`services.why.${v.why}`))}`).addTo(g);
        }
      }, t('services.lighting.map_label', { n: m.to_visit.length }));
      scenarioForm(streets);
      announce(t('services.loaded'));
    } catch (e) { fail('energy', e); }
  };
  $('pick').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
  try {
    const sun = await api('/api/v1/lighting/sun');
    const hm = (s) => (s ? new Date(s).toLocaleTimeString(settings.lang, { hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Paris' }) : '—');
    $('sun').innerHTML = table([t('services.place'), t('services.civil_dawn'), t('services.sunrise'), t('services.sunset'), t('services.civil_dusk'), t('services.daylight')],
      sun.map((x) => [esc(x.name ?? ''), hm(x.civil_dawn), hm(x.sunrise), hm(x.sunset), hm(x.civil_dusk), `${num(x.daylight_h, 2)} h`]));
  } catch (e) { fail('sun', e); }
}

function scenarioForm(streets) {
  const names = [...new Set(streets.map((s) => s.key))].sort();
  $('scenario').innerHTML = `<form id="scenario-form" class="declare">
<label>${esc(t('services.scenario.kind'))} <select id="sc-kind"><option value="dim">${esc(t('services.scenario.dim'))}</option><option value="off">${esc(t('services.scenario.off'))}</option><option value="presence">${esc(t('services.scenario.presence'))}</option></select></label>
<label>${esc(t('services.scenario.start'))} <input id="sc-start" value="23:00" pattern="[0-2][0-9]:[0-5][0-9]" size="5"></label>
<label>${esc(t('services.scenario.end'))} <input id="sc-end" value="05:00" pattern="[0-2][0-9]:[0-5][0-9]" size="5"></label>
<label>${esc(t('services.scenario.level'))} <input id="sc-level" type="number" min="0" max="100" value="50" size="4"> %</label>
<label>${esc(t('services.scenario.streets'))} <select id="sc-streets" multiple size="4">${names.map((n) => `<option>${esc(n)}</option>`).join('')}</select></label>
<button type="submit">${esc(t('services.scenario.compute'))}</button>${may('command') ? `<label>${esc(t('services.schedules.name'))} <input id="sc-name" size="24"></label> <button type="button" id="sc-apply">${esc(t('services.schedules.apply'))}</button>` : ''}<div id="sc-result" aria-live="polite"></div></form>
<p class="note">${esc(t('services.scenario.note'))}</p><h3>${esc(t('services.schedules.title'))}</h3><div id="schedules" aria-live="polite"></div>`;
  drawSchedules('schedules', 'lighting');
  $('sc-apply')?.addEventListener('click', async () => {
    const chosen = [...$('sc-streets').selectedOptions].map((o) => o.value);
    const places = [...new Set(streets.filter((g) => chosen.includes(g.key)).map((g) => g.place))];
    if (places.length !== 1) {
      $('sc-result').innerHTML = `<p class="error" role="alert">${esc(t('services.schedules.one_place'))}</p>`;
      return;
    }
    try {
      const kind = $('sc-kind').value;
      await post('/api/v1/lighting/schedules', {
        name: $('sc-name').value || t(`services.scenario.${kind}_what`, { start: $('sc-start').value, end: $('sc-end').value, level: $('sc-level').value }),
        kind, start: $('sc-start').value, end: $('sc-end').value,
        level: kind === 'off' ? undefined : Number($('sc-level').value), place: places[0], streets: chosen,
      });
      $('sc-result').innerHTML = `<p>${esc(t('services.schedules.applied'))}</p>`;
      drawSchedules('schedules', 'lighting');
    } catch (err) { $('sc-result').innerHTML = `<p class="error" role="alert">${esc(err.message)}</p>`; }
  });
  $('scenario-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const chosen = [...$('sc-streets').selectedOptions].map((o) => o.value).join(';');
    try {
      const r = await api(`/api/v1/lighting/scenario?${query({ kind: $('sc-kind').value, start: $('sc-start').value, end: $('sc-end').value, level: $('sc-level').value, streets: chosen })}`);
      const kind = $('sc-kind').value;
      const what = t(`services.scenario.${kind}_what`, { start: $('sc-start').value, end: $('sc-end').value, level: $('sc-level').value });
      $('sc-result').innerHTML = `<p><strong>${esc(what)}</strong> — ${esc(t('services.scenario.result', {
        kwh: num(r.kwh_per_year, 0), eur: num(r.eur_per_year, 0), co2: num(r.kg_co2e_per_year, 0), share: num(100 * r.share, 1), days: num(r.days, 0),
      }))}</p>`;
    } catch (err) { $('sc-result').innerHTML = `<p class="error" role="alert">${esc(err.message)}</p>`; }
  });
}

// ---- Propreté ----------------------------------------------------------------------------------

async function cleanliness() {
  const communes = [...new Set((await api('/api/v1/bins?days=1')).bins.map((b) => b.commune).filter(Boolean))].sort();
  $('pick').innerHTML = `<label>${esc(t('services.commune'))} <select id="commune">${communes.map((c) => `<option>${esc(c)}</option>`).join('')}</select></label>
<label>${esc(t('services.within'))} <input type="number" id="within" value="24" min="1" max="168" size="4"> h</label>
<label>${esc(t('services.threshold'))} <input type="number" id="threshold" value="80" min="1" max="100" size="4"> %</label>
<button type="submit">${esc(t('services.show'))}</button>`;
  const load = async () => {
    const commune = $('commune').value;
    try {
      const b = await api(`/api/v1/bins?${query({ commune })}`);
      const rq = query({ commune, within_h: $('within').value, threshold: $('threshold').value });
      let r = null;
      try { r = await api(`/api/v1/bins/round?${rq}`); } catch (e) { $('round').innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`; }
      const full = b.bins.filter((x) => (x.level ?? 0) >= 100).length;
      const wasted = b.bins.reduce((a, x) => a + x.wasted_visits, 0);
      const made = b.bins.reduce((a, x) => a + x.collections, 0);
      $('cards').innerHTML = card(t('services.bins_n'), String(b.bins.length), t('services.full_now', { n: full }))
        + card(t('services.due'), r ? String(r.stops.length) : '—', t('services.within_h', { h: $('within').value }))
        + card(t('services.round_km'), r ? `${num(r.metres / 1000, 2)} km` : '—', r ? t('services.nn_km', { km: num(r.nearest_neighbour_metres / 1000, 2) }) : '')
        + card(t('services.wasted'), String(wasted), t('services.of_visits', { n: made, pct: num(made ? 100 * wasted / made : 0, 0) }));
      if (r) {
        $('round').innerHTML = (r.stops.length
          ? table(['#', t('services.bin'), t('services.place'), t('services.level'), t('services.eta'), t('services.leg')],
            r.stops.map((s) => [s.order, esc(s.id), esc(s.place ?? ''), `${num(s.level, 0)} %`, hours(s.hours_to_threshold), `${num(s.leg_m, 0)} m`]))
          : `<p>${esc(t('services.no_bin_due'))}</p>`)
          + `<p class="data-links"><a href="/api/v1/bins/round?${rq}&format=csv" download>${esc(t('services.csv_round'))}</a> · <a href="/api/v1/bins/round?${rq}&format=geojson" download>GeoJSON</a></p>`;
      }
      const rows = b.bins.slice().sort((a, c) => (a.to_full?.hours ?? 1e9) - (c.to_full?.hours ?? 1e9));
      $('bins').innerHTML = table([t('services.bin'), t('services.place'), t('services.level'), t('services.rate'), t('services.to_threshold'), t('services.to_full'), t('services.collections'), t('services.level_at_collection'), t('services.hours_full')],
        rows.map((x) => [esc(x.id), esc(x.place ?? ''), x.level === null ? '—' : `${num(x.level, 0)} %`, x.rate_per_h === null ? '—' : `${num(x.rate_per_h, 2)} %/h`,
          x.to_threshold ? hours(x.to_threshold.hours) : '—',
          x.to_full ? `${hours(x.to_full.hours)} <small>(${hours(x.to_full.earliest_h)} – ${hours(x.to_full.latest_h)})</small>` : '—',
          x.collections, x.level_at_collection === null ? '—' : `${num(x.level_at_collection, 0)} %`, num(x.hours_full, 1)]))
        + `<p class="data-links"><a href="/api/v1/bins?${query({ commune })}&format=csv" download>${esc(t('services.csv_bins'))}</a></p>`;
      $('visits').innerHTML = table([t('services.month'), t('services.made'), t('services.needed'), t('services.avoidable'), t('services.missing'), t('services.wasted')],
        b.months.map((m) => [m.month, m.made, m.needed, m.avoidable, m.missing, m.wasted])) + `<p class="note">${esc(t('services.visits_note', { threshold: num(b.threshold, 0) }))}</p>`;
      drawMap((g) => {
        const colour = (lv) => (lv === null ? '#888' : lv >= 100 ? '#b3261e' : lv >= 80 ? '#f28e2b' : '#1a9850');
        for (const x of b.bins) {
          if (x.lat === null) continue;
          L.circleMarker([x.lat, x.lon], { radius: 5, color: colour(x.level), weight: 1, fillOpacity: 0.8 })
            .bindTooltip(`${esc(x.id)} : ${num(x.level, 0)} %`).addTo(g);
        }
        if (r && r.stops.length) {
          const path = [r.depot, ...r.stops.map((s) => [s.lat, s.lon]), r.depot];
          L.polyline(path, { color: '#1f5fa8', weight: 3 }).addTo(g);
          L.marker(r.depot, { title: t('services.depot') }).addTo(g);
          for (const s of r.stops) {
            L.marker([s.lat, s.lon], { icon: L.divIcon({ className: 'stop-number', html: String(s.order), iconSize: [20, 20] }) }).addTo(g);
          }
        }
      }, t('services.cleanliness.map_label', { n: r ? r.stops.length : 0 }));
      announce(t('services.loaded'));
    } catch (e) { fail('bins', e); }
  };
  $('pick').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
}

// ---- Espaces verts -----------------------------------------------------------------------------

async function greenSpaces() {
  $('pick').innerHTML = `<label>${esc(t('services.days'))} <input type="number" id="days" value="30" min="1" max="92" size="4"></label>
<button type="submit">${esc(t('services.show'))}</button>`;
  const load = async () => {
    try {
      const r = await api(`/api/v1/irrigation?days=${encodeURIComponent($('days').value)}`);
      const tonight = r.zones.filter((z) => z.irrigate_tonight).length;
      const saved = r.fixed_m3 - r.advised_m3;
      $('cards').innerHTML = card(t('services.zones'), String(r.zones.length), '')
        + card(t('services.tonight'), String(tonight), t('services.tonight_extra'))
        + card(t('services.water_fixed'), `${num(r.fixed_m3, 1)} m³`, t('services.over_days', { n: r.days }))
        + card(t('services.water_saved'), `${num(saved, 1)} m³`, t('services.water_advised', { m3: num(r.advised_m3, 1) }));
      const rows = r.zones.slice().sort((a, b) => (b.irrigate_tonight === true) - (a.irrigate_tonight === true) || (a.moisture ?? 0) - (b.moisture ?? 0));
      $('zones').innerHTML = table([t('services.zone'), t('services.plant'), t('services.moisture'), t('services.threshold'), t('services.rate'), t('services.tonight'), t('services.why_advice'), t('services.waterings')],
        rows.map((z) => [esc(z.zone), esc(z.plant ? t(`services.plant.${z.plant}`) : '—'), z.moisture === null ? '—' : `${num(z.moisture, 1)} %`, `${num(z.threshold, 0)} %`,
          z.rate_per_h === null ? '—' : `${num(z.rate_per_h, 2)} %/h`,
          z.irrigate_tonight === null ? `<span class="state">${esc(t('services.no_data'))}</span>` : z.irrigate_tonight ? `<strong class="advice-yes">${esc(t('services.yes'))}</strong>` : esc(t('services.no')),
          esc(z.advice ? t(`services.advice.${z.advice}`, { projected: num(z.projected, 1), threshold: num(z.threshold, 0) }) : '')
            + (z.drying_factor ? ` <small>${esc(t('services.drying', { f: num(z.drying_factor, 2) }))}</small>` : ''), z.waterings.length]))
        + `<p class="data-links"><a href="/api/v1/irrigation?days=${encodeURIComponent($('days').value)}&format=csv" download>${esc(t('services.csv_zones'))}</a></p>`;
      $('water').innerHTML = table([t('services.zone'), t('services.fixed_nights'), t('services.advised_nights'), t('services.unjudged'), t('services.water_fixed'), t('services.water_advised_h')],
        r.zones.map((z) => [esc(z.zone), z.fixed_nights, z.advised_nights, z.unjudged_nights, `${num(z.fixed_m3, 1)} m³`, `${num(z.advised_m3, 1)} m³`]))
        + `<p class="note">${esc(t('services.water_note'))}</p><h3>${esc(t('services.schedules.title'))}</h3><div id="schedules" aria-live="polite"></div>`;
      drawSchedules('schedules', 'irrigation');
      drawMap((g) => {
        for (const z of r.zones) {
          if (z.lat === null) continue;
          const c = z.irrigate_tonight ? '#b3261e' : z.irrigate_tonight === false ? '#1a9850' : '#888';
          L.circleMarker([z.lat, z.lon], { radius: 9, color: c, weight: 2, fillOpacity: 0.6 })
            .bindTooltip(`${esc(z.zone)} : ${num(z.moisture, 1)} %`).addTo(g);
        }
      }, t('services.green-spaces.map_label', { n: tonight }));
      announce(t('services.loaded'));
    } catch (e) { fail('zones', e); }
  };
  $('pick').addEventListener('submit', (e) => { e.preventDefault(); load(); });
  await load();
}

const views = { lighting, cleanliness, 'green-spaces': greenSpaces };
await views[settings.view]();
document.body.dataset.ready = '1';
