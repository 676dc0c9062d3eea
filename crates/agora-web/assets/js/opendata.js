// A dataset's page: the chart of its first property (daily means, or sums for counts, over its
// last 60 days, read from the Explore API like any reuser would) and the map of its devices.
// The page reads without them: facts, schema, preview and downloads are in the HTML.

import { settings, t, esc, num } from './common.js';
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

drawMap();
await drawChart();
document.body.dataset.ready = '1';
