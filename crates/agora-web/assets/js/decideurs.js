// The decision makers' view: the well-being index (per place, neighbourhood or commune, its
// dimensions, history, what moved it, how stable its ranks are, the communes compared), the
// 15-minute city (the map of each square's access, isochrones, gaps, the what-if tool), and the
// printable one-page summary. Every figure comes from the API (`/api/v1/wellbeing…`,
// `/api/v1/proximity/…`), which computes and tests them; this page only draws. A missing value
// is drawn as missing (—, ∅), never as zero.

import { settings, t, esc, num, api, announce, may, send } from './common.js';

const $ = (id) => document.getElementById(id);
const query = (o) => Object.entries(o).filter(([, v]) => v !== '' && v !== null && v !== undefined)
  .map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
const fail = (id, e) => { $(id).innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`; };
const card = (label, value, extra = '') =>
  `<div class="card"><p class="card-label">${esc(label)}</p><p class="card-value">${value}</p><p class="card-extra">${extra}</p></div>`;
const table = (head, rows, caption = '') =>
  `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(caption || head.join(', '))}"><table class="table">${caption ? `<caption>${esc(caption)}</caption>` : ''}<thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`;
const pct = (v) => (v === null || v === undefined ? '—' : `${num(100 * v, 0)} %`);
const score = (v) => (v === null || v === undefined ? '—' : num(v, 1));
const dim = (d) => t(`decisions.dim.${d}`);
const THEMES = ['commerce', 'health', 'social', 'leisure'];
const theme = (x) => t(`decisions.theme.${x}`);

/** The last complete month, `YYYY-MM`. */
function lastMonth() {
  const d = new Date(`${settings.today}T12:00:00Z`);
  d.setUTCDate(1);
  d.setUTCMonth(d.getUTCMonth() - 1);
  return d.toISOString().slice(0, 7);
}

/** A horizontal bar for a 0–100 score (empty and labelled when missing). */
function bar(v) {
  if (v === null || v === undefined) return `<span class="score-bar missing" title="${esc(t('decisions.missing'))}">∅</span>`;
  return `<span class="score-bar"><span style="width:${Math.max(0, Math.min(100, v)).toFixed(1)}%"></span></span> ${num(v, 1)}`;
}

/** A line chart (SVG) of the index month by month; missing months are gaps in the line. */
function lineChart(months, aria) {
  const W = 720, H = 220, L = 40, B = 30, T = 10, R = 10;
  const n = months.length;
  const x = (i) => L + (W - L - R) * (n <= 1 ? 0.5 : i / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / 100);
  let path = '';
  let pen = false;
  months.forEach((m, i) => {
    if (m.index === null || m.index === undefined) { pen = false; return; }
    path += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(m.index).toFixed(1)} `;
    pen = true;
  });
  const dots = months.map((m, i) => (m.index === null || m.index === undefined
    ? `<text x="${x(i)}" y="${H - B - 4}" font-size="10" text-anchor="middle">∅</text>`
    : `<circle cx="${x(i).toFixed(1)}" cy="${y(m.index).toFixed(1)}" r="3" fill="#1f5fa8"><title>${esc(m.month)} : ${num(m.index, 1)}</title></circle>`)).join('');
  const xt = months.map((m, i) => `<text x="${x(i)}" y="${H - B + 14}" font-size="10" text-anchor="middle">${esc(m.month.slice(2))}</text>`).join('');
  const yt = [0, 25, 50, 75, 100].map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 6}" y="${y(v) + 4}" font-size="10" text-anchor="end">${v}</text>`).join('');
  return `<figure><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(aria)}">${yt}<path d="${path}" fill="none" stroke="#1f5fa8" stroke-width="2"/>${dots}${xt}</svg></figure>`;
}

// ---- The well-being index -----------------------------------------------------------------------

const state = { level: 'place', month: lastMonth(), version: '', selected: null, definition: null };

async function drawWeights() {
  try {
    const d = await api('/api/v1/wellbeing/definition');
    state.definition = d;
    const current = state.version === '' ? d.version : Number(state.version);
    const body = current === d.version ? d.definition : (current === 0 ? d.shipped : d.versions.find((v) => v.version === current)?.body ?? d.definition);
    const weights = Object.entries(body.weights).map(([k, w]) => `${esc(dim(k))} ${num(100 * w, 0)} %`).join(' · ');
    let html = `<p><strong>${esc(t('decisions.weights', { version: current }))}</strong> ${weights} · ${esc(t('decisions.min_coverage', { pct: num(100 * body.min_coverage, 0) }))}</p>`;
    if (may('modify')) {
      const inputs = Object.entries(d.definition.weights).map(([k, w]) =>
        `<label>${esc(dim(k))} <input type="number" min="0" max="1" step="0.01" data-weight="${esc(k)}" value="${w}"></label>`).join('');
      html += `<details><summary>${esc(t('decisions.edit_weights'))}</summary><form id="edit-weights" class="declare">${inputs}
<label>${esc(t('decisions.reason'))} <input type="text" id="reason" required maxlength="500"></label>
<button type="submit">${esc(t('decisions.save'))}</button><p id="weights-result" role="status"></p></form></details>`;
    }
    $('weights').innerHTML = html;
    const form = $('edit-weights');
    if (form) {
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const def = structuredClone(d.definition);
        form.querySelectorAll('input[data-weight]').forEach((i) => { def.weights[i.dataset.weight] = Number(i.value); });
        try {
          const r = await send('PUT', '/api/v1/wellbeing/definition', { definition: def, reason: $('reason').value });
          $('weights-result').textContent = t('decisions.saved', { version: r.version });
          state.version = '';
          await loadAll();
        } catch (e) { $('weights-result').textContent = e.message; }
      });
    }
    drawDefinition(d, body);
  } catch (e) { fail('weights', e); }
}

function drawDefinition(d, body) {
  const rows = body.indicators.map((i) => [esc(i.label || i.id), `<code>${esc(i.id)}</code>`, esc(dim(i.dimension)),
    esc(t(`decisions.better_${i.better}`)), `${num(i.min, 2)} – ${num(i.max, 2)}`, esc(i.unit)]);
  let html = `<p>${esc(t('decisions.method'))}</p>${table([t('decisions.indicator'), 'id', t('decisions.dimension'), t('decisions.better'), t('decisions.range'), t('decisions.unit')], rows, t('decisions.definition'))}`;
  const versions = d.versions.map((v) => [String(v.version), esc(new Date(v.changed_at).toLocaleString(settings.lang)), esc(v.changed_by), esc(v.reason)]);
  html += versions.length
    ? table([t('decisions.version'), t('decisions.when'), t('decisions.who'), t('decisions.why')], versions, t('decisions.versions'))
    : `<p>${esc(t('decisions.shipped_only'))}</p>`;
  html += `<p><a href="/api/v1/wellbeing/definition">${esc(t('decisions.definition_json'))}</a></p>`;
  $('definition').innerHTML = html;
}

async function drawIndex() {
  try {
    const d = await api(`/api/v1/wellbeing?${query({ level: state.level, month: state.month, version: state.version })}`);
    const dims = Object.keys(d.definition.weights);
    const label = (id) => d.definition.indicators.find((i) => i.id === id)?.label || id;
    const rows = d.units.map((u) => [
      u.rank ?? '—',
      esc(u.name),
      bar(u.index),
      ...dims.map((k) => score(u.dimensions[k])),
      pct(u.weight_coverage),
      u.missing.length ? `<span class="muted">${esc(u.missing.map(label).join(', '))}</span>` : '—',
      `<button type="button" data-history="${esc(u.id)}">${esc(t('decisions.see_history'))}</button> <a href="/decideurs/fiche?${query({ level: state.level, id: u.id, month: state.month })}">${esc(t('decisions.sheet'))}</a>`,
    ]);
    $('index').innerHTML = d.units.length
      ? `<p>${esc(t('decisions.index_note', { month: d.month, version: d.version }))}</p>${table(['#', t('decisions.unit_name'), t('decisions.index_col'), ...dims.map(dim), t('decisions.coverage'), t('decisions.missing'), ''], rows, t('decisions.index'))}`
      : `<p>${esc(t('decisions.none'))}</p>`;
    $('index').querySelectorAll('button[data-history]').forEach((b) => b.addEventListener('click', () => {
      state.selected = b.dataset.history;
      drawHistory();
      $('history-title').scrollIntoView();
    }));
    if (!state.selected || !d.units.some((u) => u.id === state.selected)) state.selected = d.units[0]?.id ?? null;
    announce(t('decisions.index_loaded', { n: d.units.length }));
  } catch (e) { fail('index', e); }
}

async function drawHistory() {
  if (!state.selected) { $('history').innerHTML = `<p>${esc(t('decisions.none'))}</p>`; return; }
  try {
    const from = (() => { const d = new Date(`${state.month}-15T12:00:00Z`); d.setUTCMonth(d.getUTCMonth() - 11); return d.toISOString().slice(0, 7); })();
    const h = await api(`/api/v1/wellbeing/history?${query({ level: state.level, id: state.selected, from, to: state.month, version: state.version })}`);
    const last = [...h.months].reverse().find((m) => Object.keys(m.contributions).length);
    const dims = Object.keys(h.definition.weights);
    let html = `<h3>${esc(h.name)}</h3>${lineChart(h.months, t('decisions.history_aria', { name: h.name }))}`;
    html += `<p>${esc(h.trend_per_year === null ? t('decisions.no_trend') : t('decisions.trend', { pts: num(h.trend_per_year, 1) }))}</p>`;
    if (last) {
      const i = h.months.indexOf(last);
      const before = h.months[i - 1];
      const rows = dims.map((k) => [esc(dim(k)), score(before?.dimensions[k]), score(last.dimensions[k]),
        last.contributions[k] === null ? `<span class="muted">${esc(t('decisions.not_comparable'))}</span>` : `${last.contributions[k] >= 0 ? '+' : ''}${num(last.contributions[k], 1)}`]);
      html += table([t('decisions.dimension'), before?.month ?? '', last.month, t('decisions.contribution')], rows, t('decisions.what_moved', { from: before?.month ?? '', to: last.month }));
    }
    const rows = h.months.map((m) => [esc(m.month), score(m.index), ...dims.map((k) => score(m.dimensions[k])), pct(m.weight_coverage)]);
    html += `<details><summary>${esc(t('decisions.months_table'))}</summary>${table([t('decisions.month'), t('decisions.index_col'), ...dims.map(dim), t('decisions.coverage')], rows, t('decisions.history'))}</details>`;
    $('history').innerHTML = html;
  } catch (e) { fail('history', e); }
}

async function drawStability() {
  try {
    const d = await api(`/api/v1/wellbeing/sensitivity?${query({ level: state.level, month: state.month, version: state.version })}`);
    const dims = d.units.length ? Object.keys(d.units[0].rank_without) : [];
    const rows = d.units.map((u) => [esc(u.name), u.rank ?? '—', u.rank_equal_weights ?? '—',
      u.rank_range ? `${u.rank_range.best} – ${u.rank_range.worst}` : '—', ...dims.map((k) => u.rank_without[k] ?? '—')]);
    $('stability').innerHTML = `<p>${esc(t('decisions.stability_note', { n: d.trials }))}</p>${table([t('decisions.unit_name'), t('decisions.rank'), t('decisions.rank_equal'), t('decisions.rank_range'), ...dims.map((k) => t('decisions.without', { dim: dim(k) }))], rows, t('decisions.stability'))}`;
  } catch (e) { fail('stability', e); }
}

async function drawCommunes() {
  try {
    const d = await api(`/api/v1/wellbeing?${query({ level: 'commune', month: state.month, version: state.version })}`);
    const dims = Object.keys(d.definition.weights);
    const rows = d.units.map((u) => [u.rank ?? '—', esc(u.name), bar(u.index), ...dims.map((k) => score(u.dimensions[k])), String(u.places.length), pct(u.weight_coverage)]);
    $('communes').innerHTML = table(['#', t('decisions.commune'), t('decisions.index_col'), ...dims.map(dim), t('decisions.places'), t('decisions.coverage')], rows, t('decisions.communes'));
  } catch (e) { fail('communes', e); }
}

async function loadAll() {
  await drawWeights();
  await drawIndex();
  await Promise.all([drawHistory(), drawStability(), drawCommunes()]);
}

function pickForm() {
  $('pick').innerHTML = `<label>${esc(t('decisions.level'))} <select id="level">
<option value="place">${esc(t('decisions.level_place'))}</option><option value="neighbourhood">${esc(t('decisions.level_neighbourhood'))}</option><option value="commune">${esc(t('decisions.level_commune'))}</option></select></label>
<label>${esc(t('decisions.month'))} <input type="month" id="month" value="${state.month}" max="${lastMonth()}"></label>
<label>${esc(t('decisions.version'))} <input type="number" id="version" min="0" placeholder="${esc(t('decisions.current'))}"></label>
<button type="submit">${esc(t('decisions.show'))}</button>`;
  $('pick').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.level = $('level').value;
    state.month = $('month').value || lastMonth();
    state.version = $('version').value;
    state.selected = null;
    loadAll();
  });
}

// ---- The 15-minute city ------------------------------------------------------------------------

const THEME_COLOURS = { commerce: '#1f77b4', health: '#d62728', social: '#2ca02c', leisure: '#9467bd' };
const SCORE_COLOURS = ['#b3261e', '#e66101', '#fdb863', '#a6dba0', '#1a9850'];
const MINUTE_BANDS = [[5, '#1a9850'], [10, '#a6dba0'], [15, '#fdb863'], [Infinity, '#b3261e']];
const minuteColour = (m) => (m === null || m === undefined ? '#bbbbbb' : MINUTE_BANDS.find(([lim]) => m <= lim)[1]);

let map = null;
const layers = {};
function mapLayer(name) {
  if (typeof L === 'undefined') return null;
  if (!map) {
    map = L.map('map', { zoomSnap: 0.5, attributionControl: Boolean(settings.tile_url) });
    if (settings.tile_url) L.tileLayer(settings.tile_url, { attribution: esc(settings.tile_attribution), maxZoom: 19 }).addTo(map);
    else $('map').classList.add('plain');
    $('map').setAttribute('role', 'region');
    $('map').setAttribute('aria-label', t('decisions.map_aria'));
  }
  if (layers[name]) layers[name].remove();
  layers[name] = L.featureGroup().addTo(map);
  return layers[name];
}

const prox = { commune: null, colour: 'score', mode: 'isochrone', which: 'theme:health', squares: null };

function legend() {
  const items = prox.colour === 'score'
    ? SCORE_COLOURS.map((c, i) => [c, t('decisions.themes_within', { n: i })])
    : [...MINUTE_BANDS.map(([lim, c]) => [c, lim === Infinity ? t('decisions.more_than', { m: 15 }) : t('decisions.up_to', { m: lim })]), ['#bbbbbb', t('decisions.unreachable')]];
  const themes = THEMES.map((x) => [THEME_COLOURS[x], theme(x)]);
  const li = (pairs) => pairs.map(([c, l]) => `<li><span class="swatch" style="background:${c}"></span>${esc(l)}</li>`).join('');
  $('legend').innerHTML = `<div class="legend"><p>${esc(prox.colour === 'score' ? t('decisions.legend_score') : t('decisions.legend_minutes', { theme: theme(prox.colour) }))}</p><ul>${li(items)}</ul>
<p>${esc(t('decisions.legend_facilities'))}</p><ul>${li(themes)}</ul></div>`;
}

function drawSquares() {
  const g = mapLayer('squares');
  if (!g || !prox.squares) return;
  L.geoJSON(prox.squares, {
    style: (f) => {
      const p = f.properties;
      const c = p.off_network ? '#bbbbbb' : prox.colour === 'score' ? SCORE_COLOURS[p.themes_within] : minuteColour(p.minutes[prox.colour]);
      return { color: c, weight: 0.5, fillColor: c, fillOpacity: 0.45 };
    },
    pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 4 }),
    onEachFeature: (f, l) => {
      const p = f.properties;
      const m = THEMES.map((x) => `${theme(x)} : ${p.minutes[x] === undefined ? '—' : `${num(p.minutes[x], 0)} min`}`).join('<br>');
      l.bindTooltip(`${esc(t('decisions.people', { n: num(p.population, 0) }))}<br>${m}`);
    },
  }).addTo(g);
  const b = g.getBounds();
  if (b.isValid() && !prox.fitted) { map.fitBounds(b); prox.fitted = true; }
  legend();
}

async function drawFacilities() {
  const g = mapLayer('facilities');
  if (!g) return;
  const f = await api(`/api/v1/proximity/${prox.commune}/facilities`);
  for (const x of f.features) {
    const [lon, lat] = x.geometry.coordinates;
    L.circleMarker([lat, lon], { radius: 2.5, color: THEME_COLOURS[x.properties.theme], weight: 1, fillOpacity: 0.9 })
      .bindTooltip(`${esc(x.properties.name || x.properties.kind)} (${esc(theme(x.properties.theme))})`).addTo(g);
  }
  prox.kinds = [...new Set(f.features.map((x) => x.properties.kind))].sort();
}

function selector() {
  const [kind, value] = prox.which.split(':');
  return kind === 'theme' ? { theme: value } : { kind: value };
}

async function onMapClick(e) {
  const { lat, lng } = e.latlng;
  const out = $('prox-result');
  try {
    if (prox.mode === 'isochrone') {
      const iso = await api(`/api/v1/proximity/${prox.commune}/isochrone?${query({ lon: lng.toFixed(6), lat: lat.toFixed(6) })}`);
      const g = mapLayer('overlay');
      const colours = { 5: '#08306b', 10: '#2171b5', 15: '#6baed6' };
      for (const f of iso.features) {
        L.geoJSON(f, { style: { color: colours[f.properties.minutes] ?? '#2171b5', weight: 3, opacity: 0.9 } }).addTo(g);
      }
      L.circleMarker([lat, lng], { radius: 6, color: '#000', fillColor: '#fff', fillOpacity: 1 }).addTo(g);
      out.innerHTML = table([t('decisions.minutes'), t('decisions.km_streets'), t('decisions.people_within')],
        [...iso.features].reverse().map((f) => [num(f.properties.minutes, 0), num(f.properties.km, 1), num(f.properties.population, 0)]), t('decisions.isochrone'));
    } else {
      const w = await api(`/api/v1/proximity/${prox.commune}/what-if?${query({ ...selector(), lon: lng.toFixed(6), lat: lat.toFixed(6) })}`);
      const g = mapLayer('overlay');
      L.marker([lat, lng], { title: t('decisions.new_facility') }).addTo(g);
      const changed = new Set(w.changed.map((c) => c[0]));
      const gained = new Set(w.newly_within);
      if (prox.squares) {
        L.geoJSON({ type: 'FeatureCollection', features: prox.squares.features.filter((f) => changed.has(f.properties.id)) }, {
          style: (f) => ({ color: gained.has(f.properties.id) ? '#00441b' : '#4292c6', weight: 2, fillOpacity: 0 }),
          pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 5 }),
        }).addTo(g);
      }
      out.innerHTML = w.attached
        ? `<p>${esc(t('decisions.what_if_result', { squares: w.changed.length, people: num(w.population_gained, 0), before: w.share_before === null ? '—' : num(100 * w.share_before, 1), after: w.share_after === null ? '—' : num(100 * w.share_after, 1) }))}</p>`
        : `<p class="error">${esc(t('decisions.off_network'))}</p>`;
    }
    announce(out.textContent);
  } catch (err) { out.innerHTML = `<p class="error" role="alert">${esc(err.message)}</p>`; }
}

async function drawProximity() {
  try {
    const d = await api(`/api/v1/proximity/${prox.commune}`);
    if (d.missing) {
      $('prox-cards').innerHTML = '';
      $('proximity').innerHTML = `<p>${esc(t('decisions.proximity_missing', { why: d.missing }))}</p>`;
      $('gaps').innerHTML = `<p>${esc(t('decisions.none'))}</p>`;
      if (layers.squares) layers.squares.remove();
      return;
    }
    const c = d.areas[0].shares;
    $('prox-cards').innerHTML = card(t('decisions.population'), num(c.population, 0), t('decisions.coverage_of', { pct: num(100 * c.coverage, 1) }))
      + card(t('decisions.all_four'), pct(c.all_themes), t('decisions.within_min', { m: d.settings.limit_min, speed: num(d.settings.speed_kmh, 1) }))
      + THEMES.map((x) => card(theme(x), pct(c.within[x]), t('decisions.facilities_n', { n: d.facilities[x] ?? 0 }))).join('');
    const rows = d.areas.map((a) => [esc(a.name), num(a.shares.population, 0), ...THEMES.map((x) => pct(a.shares.within[x])), pct(a.shares.all_themes), pct(a.shares.coverage)]);
    const layersRows = d.layers.map((l) => [esc(t(`decisions.layer_${l.layer}`)), esc(l.name), num(l.items, 0), esc(new Date(l.imported_at).toLocaleString(settings.lang)), esc(l.imported_by)]);
    $('proximity').innerHTML = `<div id="prox-result" aria-live="polite"><p>${esc(t('decisions.click_map'))}</p></div>`
      + table([t('decisions.area'), t('decisions.population'), ...THEMES.map(theme), t('decisions.all_four'), t('decisions.coverage')], rows, t('decisions.shares'))
      + `<details><summary>${esc(t('decisions.imports'))}</summary>${table([t('decisions.layer'), t('decisions.dataset'), t('decisions.items'), t('decisions.when'), t('decisions.who')], layersRows, t('decisions.imports'))}</details>`;
    prox.squares = await api(`/api/v1/proximity/${prox.commune}/squares?format=geojson`);
    prox.fitted = false;
    drawSquares();
    await drawFacilities();
    const kinds = $('which');
    if (kinds && prox.kinds) {
      kinds.innerHTML = THEMES.map((x) => `<option value="theme:${x}">${esc(theme(x))}</option>`).join('')
        + prox.kinds.map((k) => `<option value="kind:${esc(k)}">${esc(k)}</option>`).join('');
      kinds.value = prox.which;
    }
    drawGaps();
  } catch (e) { fail('proximity', e); }
}

async function drawGaps() {
  try {
    const g = await api(`/api/v1/proximity/${prox.commune}/gaps?${query(selector())}`);
    const what = prox.which.split(':')[1];
    const label = prox.which.startsWith('theme:') ? theme(what) : what;
    const rows = g.gaps.slice(0, 15).map((x) => [num(x.population, 0), esc(x.neighbourhood ?? '—'), String(x.squares.length),
      x.best_minutes === null ? esc(t('decisions.unreachable')) : `${num(x.best_minutes, 0)} min`]);
    $('gaps').innerHTML = `<p>${esc(t('decisions.gaps_total', { people: num(g.population_in_gaps, 0), what: label, m: g.limit_min }))}</p>`
      + (rows.length ? table([t('decisions.people_col'), t('decisions.area'), t('decisions.squares'), t('decisions.best_walk')], rows, t('decisions.gaps')) : '');
    const layer = mapLayer('gaps');
    if (layer) {
      for (const x of g.gaps.slice(0, 15)) {
        L.circleMarker([x.lat, x.lon], { radius: 6 + Math.sqrt(x.population) / 4, color: '#b3261e', weight: 2, fillOpacity: 0.1 })
          .bindTooltip(esc(t('decisions.gap_tip', { people: num(x.population, 0), what: label, m: g.limit_min }))).addTo(layer);
      }
    }
  } catch (e) { fail('gaps', e); }
}

async function proximity() {
  const communes = await api('/api/v1/communes');
  const list = communes.communes ?? communes;
  prox.commune = list[0]?.insee ?? null;
  $('prox-pick').innerHTML = `<label>${esc(t('decisions.commune'))} <select id="prox-commune">${list.map((c) => `<option value="${esc(c.insee)}">${esc(c.name)}</option>`).join('')}</select></label>
<label>${esc(t('decisions.colour_by'))} <select id="colour"><option value="score">${esc(t('decisions.colour_score'))}</option>${THEMES.map((x) => `<option value="${x}">${esc(t('decisions.colour_theme', { theme: theme(x) }))}</option>`).join('')}</select></label>
<label>${esc(t('decisions.on_click'))} <select id="mode"><option value="isochrone">${esc(t('decisions.mode_isochrone'))}</option><option value="what-if">${esc(t('decisions.mode_what_if'))}</option></select></label>
<label>${esc(t('decisions.facility'))} <select id="which">${THEMES.map((x) => `<option value="theme:${x}">${esc(theme(x))}</option>`).join('')}</select></label>`;
  $('which').value = prox.which;
  $('prox-commune').addEventListener('change', () => { prox.commune = $('prox-commune').value; drawProximity(); });
  $('colour').addEventListener('change', () => { prox.colour = $('colour').value; drawSquares(); });
  $('mode').addEventListener('change', () => { prox.mode = $('mode').value; });
  $('which').addEventListener('change', () => { prox.which = $('which').value; drawGaps(); });
  if (!prox.commune) { $('proximity').innerHTML = `<p>${esc(t('decisions.none'))}</p>`; return; }
  await drawProximity();
  if (map) map.on('click', onMapClick);
}

// ---- The one-page summary ----------------------------------------------------------------------

async function sheet() {
  const d = settings;
  $('print').addEventListener('click', () => window.print());
  try {
    const month = d.month || lastMonth();
    const idx = await api(`/api/v1/wellbeing?${query({ level: d.level, month })}`);
    const u = idx.units.find((x) => x.id === d.id);
    if (!u) throw new Error(t('decisions.no_unit', { id: d.id }));
    const from = (() => { const x = new Date(`${month}-15T12:00:00Z`); x.setUTCMonth(x.getUTCMonth() - 11); return x.toISOString().slice(0, 7); })();
    const h = await api(`/api/v1/wellbeing/history?${query({ level: d.level, id: d.id, from, to: month })}`);
    const dims = Object.keys(idx.definition.weights);
    const label = (id) => idx.definition.indicators.find((i) => i.id === id)?.label || id;
    const ranked = idx.units.filter((x) => x.rank).length;
    let html = `<header class="sheet-head"><h1>${esc(u.name)}</h1><p>${esc(t('decisions.sheet_sub', { month: idx.month, level: t(`decisions.level_${d.level}`), version: idx.version }))}</p></header>`;
    html += `<div class="cards">${card(t('decisions.index_col'), score(u.index), u.rank ? esc(t('decisions.rank_of', { rank: u.rank, n: ranked })) : esc(t('decisions.no_index')))}${card(t('decisions.coverage'), pct(u.weight_coverage), esc(t('decisions.trend_short', { pts: h.trend_per_year === null ? '—' : num(h.trend_per_year, 1) })))}</div>`;
    html += table([t('decisions.dimension'), t('decisions.weight'), t('decisions.score')], dims.map((k) => [esc(dim(k)), `${num(100 * idx.definition.weights[k], 0)} %`, bar(u.dimensions[k])]), t('decisions.dimensions'));
    html += lineChart(h.months, t('decisions.history_aria', { name: u.name }));
    const last = [...h.months].reverse().find((m) => Object.keys(m.contributions).length);
    if (last) {
      const moved = dims.filter((k) => last.contributions[k] !== null).map((k) => `${dim(k)} ${last.contributions[k] >= 0 ? '+' : ''}${num(last.contributions[k], 1)}`);
      html += `<p>${esc(t('decisions.moved_sentence', { month: last.month, list: moved.length ? moved.join(', ') : t('decisions.not_comparable') }))}</p>`;
    }
    html += table([t('decisions.indicator'), t('decisions.value'), t('decisions.score')], idx.definition.indicators.map((i) => [esc(label(i.id)),
      u.values[i.id] === undefined ? `<span class="muted">${esc(t('decisions.missing'))}</span>` : `${num(u.values[i.id], 2)} ${esc(i.unit)}`, score(u.normalised[i.id])]), t('decisions.indicators'));
    const commune = u.commune;
    try {
      const p = await api(`/api/v1/proximity/${commune}`);
      if (!p.missing) {
        const a = p.areas[0].shares;
        html += `<h2>${esc(t('decisions.proximity'))}</h2><p>${esc(t('decisions.sheet_prox', { name: p.name, all: pct(a.all_themes), m: p.settings.limit_min }))}</p>`
          + table([theme('commerce'), theme('health'), theme('social'), theme('leisure')], [THEMES.map((x) => pct(a.within[x]))], t('decisions.shares'));
      }
    } catch { /* no 15-minute city for this commune */ }
    html += `<p class="method">${esc(t('decisions.method'))} ${esc(t('decisions.sheet_missing'))}</p>`;
    $('sheet').innerHTML = html;
    document.title = `${u.name} — ${t('decisions.sheet')}`;
  } catch (e) { fail('sheet', e); }
}

// ---- Start -------------------------------------------------------------------------------------

(async () => {
  if (settings.view === 'sheet') {
    await sheet();
  } else {
    pickForm();
    await Promise.all([loadAll(), proximity().catch((e) => fail('proximity', e))]);
  }
  document.body.dataset.ready = '1';
})();
