// A dataset's page: the chart of its first property (daily means, or sums for counts, over its
// last 60 days, read from the Explore API like any reuser would) and the map of its devices.
// The page reads without them: facts, schema, preview and downloads are in the HTML.

import { settings, t, esc, num, api, may } from './common.js';
import { drawMany } from './charts.js';

const base = `/api/explore/v2.1/catalog/datasets/${encodeURIComponent(settings.dataset)}`;

async function drawChart() {
  const p = settings.property;
  if (!p) return;
  const fn = settings.summed ? 'sum' : 'avg';
  const since = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
  const q = new URLSearchParams({
    select: `date_format(date, 'yyyy-MM-dd') as jour, ${fn}(${p}) as valeur`,
    where: `date >= date'${since}'`,
    group_by: "date_format(date, 'yyyy-MM-dd') as jour",
    order_by: 'jour',
    limit: '100',
    timezone: 'Europe/Paris',
  });
  const r = await fetch(`${base}/records?${q}`);
  if (!r.ok) return;
  const rows = (await r.json()).results.filter((x) => x.valeur !== null);
  if (!rows.length) return;
  const box = document.getElementById('chart-box');
  box.hidden = false;
  const label = t(settings.summed ? 'od.chart_sum' : 'od.chart_mean', { property: p });
  drawMany(document.getElementById('chart'), [{
    label,
    t: rows.map((x) => Date.parse(`${x.jour}T12:00:00Z`) / 1000),
    v: rows.map((x) => x.valeur),
  }], { u: '', property: p });
  const last = rows[rows.length - 1];
  const caption = document.createElement('p');
  caption.className = 'muted';
  caption.textContent = t('od.chart_caption', { n: rows.length, last: last.jour, value: num(last.valeur) });
  box.append(caption);
}

function drawMap() {
  const pos = settings.positions ?? [];
  if (!pos.length || typeof L === 'undefined') return;
  document.getElementById('map-box').hidden = false;
  const map = L.map('map', { attributionControl: Boolean(settings.tile_url) });
  if (settings.tile_url) {
    L.tileLayer(settings.tile_url, { attribution: esc(settings.tile_attribution), maxZoom: 19 }).addTo(map);
  } else {
    document.getElementById('map').classList.add('plain');
  }
  const markers = pos.map((d) => L.circleMarker([d.lat, d.lon], { radius: 5, color: '#1f4e79', weight: 1, fillOpacity: 0.7 })
    .bindTooltip(esc(d.id)).addTo(map));
  map.fitBounds(L.featureGroup(markers).getBounds().pad(0.2));
  document.getElementById('map').setAttribute('aria-label', t('od.map_label', { n: pos.length }));
  document.getElementById('map').setAttribute('role', 'region');
}

/** PUT or POST JSON with the session's CSRF token; throws with the problem's detail. */
async function send(method, path, body) {
  const r = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'X-CSRF-Token': settings.csrf ?? '' },
    body: JSON.stringify(body),
  });
  if (!r.ok) {
    let detail = `${r.status}`;
    try { detail = (await r.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
  return r.json();
}

/** Operators who may publish: every definition, drafts included, to publish or withdraw. */
async function manage() {
  if (!may('publish')) return;
  const box = document.getElementById('manage');
  const status = document.getElementById('manage-status');
  box.hidden = false;
  const list = async () => {
    const all = await api('/api/v1/open-data/datasets');
    const rows = all.map((d) => `<tr><td><a href="/open-data/datasets/${encodeURIComponent(d.id)}">${esc(d.id)}</a></td><td>${esc(d.title)}</td>
      <td>${esc(t(d.published ? 'od.published' : 'od.draft'))}</td>
      <td><button type="button" data-id="${esc(d.id)}">${esc(t(d.published ? 'od.unpublish' : 'od.publish'))}<span class="sr-only"> — ${esc(d.title)}</span></button></td></tr>`).join('');
    document.getElementById('manage-list').innerHTML = `<div class="table-wrap" tabindex="0" role="region" aria-labelledby="manage-title"><table class="table">
      <thead><tr><th scope="col">${esc(t('od.id'))}</th><th scope="col">${esc(t('od.title_field'))}</th><th scope="col">${esc(t('od.state'))}</th><th scope="col"><span class="sr-only">${esc(t('od.action'))}</span></th></tr></thead>
      <tbody>${rows}</tbody></table></div>`;
    for (const b of document.querySelectorAll('#manage-list button')) {
      b.addEventListener('click', async () => {
        const d = all.find((x) => x.id === b.dataset.id);
        try {
          await send('PUT', `/api/v1/open-data/datasets/${encodeURIComponent(d.id)}`, { ...d, published: !d.published });
          status.textContent = t(d.published ? 'od.withdrawn' : 'od.now_published', { id: d.id });
          await list();
        } catch (e) {
          status.textContent = e.message;
        }
      });
    }
  };
  await list();
  document.getElementById('new-dataset').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    const d = {
      id: f.get('id'), kind: 'measurements', title: f.get('title'), description: f.get('description'),
      theme: f.get('theme'), resolution: f.get('resolution'), published: false,
    };
    if (f.get('site')) d.site = f.get('site');
    try {
      await send('POST', '/api/v1/open-data/datasets', d);
      status.textContent = t('od.created', { id: d.id });
      ev.target.reset();
      await list();
    } catch (e) {
      status.textContent = e.message;
    }
  });
}

if (settings.page === 'open-data') {
  await manage();
} else {
  drawMap();
  await drawChart();
}
document.body.dataset.ready = '1';
