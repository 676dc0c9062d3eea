// An operator's device page: facts, latest value of every series (live), and charts of each
// numeric series over 24 h, 7 d, 30 d, a year or a chosen range.

import { settings, t, esc, api, live, when, withUnit, propName, kindName, num, anomalyText, anomalyHref } from './common.js';
import { chart, drawForecast } from './charts.js';

const id = settings.device;
const { device: d, series } = await api(`/api/v1/devices/${encodeURIComponent(id)}`);
const units = Object.fromEntries(series.map((s) => [s.property, s.unit]));

function fact(label, value) {
  return `<dt>${esc(label)}</dt><dd>${value}</dd>`;
}
const meta = Object.entries(d.metadata ?? {}).map(([k, v]) => `${esc(k)}: ${esc(typeof v === 'object' ? JSON.stringify(v) : v)}`).join(', ');
document.getElementById('facts').innerHTML = [
  fact(t('device.id'), `<code>${esc(d.id)}</code>`),
  fact(t('device.kind'), esc(kindName(d.kind))),
  fact(t('device.site'), d.site ? `<a href="/places/${encodeURIComponent(d.site)}">${esc(d.site)}</a>` : '—'),
  fact(t('device.position'), d.lat != null ? `${num(d.lat, 5)}, ${num(d.lon, 5)}` : '—'),
  fact(t('device.status'), `<span class="state state-${esc(d.status)}" id="status">${esc(t(`status.${d.status}`))}</span>`),
  fact(t('device.last_seen'), `<span id="last-seen">${esc(when(d.last_seen))}</span>`),
  fact(t('device.metadata'), meta || '—'),
].join('');

document.getElementById('latest').innerHTML = `<table class="table"><caption class="sr-only">${esc(t('device.latest'))}</caption>
  <thead><tr><th scope="col">${esc(t('device.property'))}</th><th scope="col">${esc(t('device.value'))}</th><th scope="col">${esc(t('device.time'))}</th></tr></thead>
  <tbody>${series.map((s) => `<tr><th scope="row">${esc(propName(s.property))}</th>
    <td data-prop="${esc(s.property)}">${s.latest ? esc(withUnit(s.latest.value, s.unit, s.property)) : '—'}</td>
    <td data-time="${esc(s.property)}">${s.latest ? esc(when(s.latest.time)) : '—'}</td></tr>`).join('')}</tbody></table>`;

const numeric = series.filter((s) => s.kind !== 'string').map((s) => s.property);
const box = document.getElementById('charts');
box.innerHTML = numeric.map((p) => `<div class="chart-box" id="chart-${esc(p)}"></div>`).join('');

// Series agora forecasts: their charts up to now go on with the forecast.
const FORECASTABLE = ['pm10', 'pm2_5', 'no2', 'o3', 'laeq', 'temperature', 'people_in', 'people_out', 'fill_level', 'soil_moisture'];
const ahead = (p) => (FORECASTABLE.includes(p)
  ? () => api(`/api/v1/forecast?device=${encodeURIComponent(id)}&property=${encodeURIComponent(p)}`).then((f) => f.forecast)
  : null);
async function draw(from, to = 'now') {
  for (const p of numeric) await chart(document.getElementById(`chart-${p}`), { device: id, property: p, from, to, ahead: ahead(p) });
}

const buttons = [...document.querySelectorAll('[data-range]')];
function pick(range) {
  for (const b of buttons) b.setAttribute('aria-pressed', String(b.dataset.range === range));
  draw(`-${range}`);
}
for (const b of buttons) b.addEventListener('click', () => pick(b.dataset.range));
document.getElementById('custom').addEventListener('submit', (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const from = new Date(f.get('from'));
  const to = new Date(f.get('to'));
  if (!(from < to)) { alert(t('range.invalid')); return; }
  for (const b of buttons) b.setAttribute('aria-pressed', 'false');
  draw(from.toISOString(), to.toISOString());
});
// A link from an anomaly opens the charts over its days (`?from=…&to=…`).
const asked = new URLSearchParams(location.search);
if (asked.get('from')) {
  for (const b of buttons) b.setAttribute('aria-pressed', 'false');
  draw(asked.get('from'), asked.get('to') ?? 'now');
} else {
  pick('24h');
}

// What the forecasts found wrong with this device's readings.
api('/api/v1/anomalies').then((all) => {
  const mine = all.filter((a) => a.device === id);
  if (!mine.length) return;
  document.getElementById('anomaly-list').innerHTML = mine.map((a) => `<li><a href="${esc(anomalyHref(a))}">${esc(propName(a.property))} — ${esc(t(`anomaly.${a.kind}`))}</a>, ${esc(t('anomaly.since'))} ${esc(when(a.from))} : ${esc(anomalyText(a))}</li>`).join('');
  document.getElementById('anomalies').hidden = false;
}).catch(() => {});

// Forecasts of the series a city plans ahead with, each with the backtest that chose its method.
const forecastable = numeric.filter((p) => FORECASTABLE.includes(p));
const fbox = document.getElementById('forecasts');
fbox.innerHTML = forecastable.length ? forecastable.map((p) => `<div class="chart-box" id="forecast-${esc(p)}"></div>`).join('') : `<p>${esc(t('forecast.none'))}</p>`;
(async () => {
  for (const p of forecastable) {
    const el = document.getElementById(`forecast-${p}`);
    try {
      drawForecast(el, await api(`/api/v1/forecast?device=${encodeURIComponent(id)}&property=${encodeURIComponent(p)}`));
    } catch (e) {
      el.innerHTML = `<p class="empty">${esc(t('forecast.refused', { name: propName(p), detail: e.message }))}</p>`;
    }
  }
  document.body.dataset.forecastReady = '1';
})();

live({ device: id }, {
  values(rows) {
    for (const r of rows) {
      const v = document.querySelector(`td[data-prop="${CSS.escape(r.p)}"]`);
      if (v) v.textContent = withUnit(r.v, units[r.p], r.p);
      const tm = document.querySelector(`td[data-time="${CSS.escape(r.p)}"]`);
      if (tm) tm.textContent = when(r.t);
      document.getElementById('last-seen').textContent = when(r.t);
    }
  },
  states(rows) {
    for (const r of rows) {
      const el = document.getElementById('status');
      el.textContent = t(`status.${r.s}`);
      el.className = `state state-${r.s}`;
    }
  },
});
document.body.dataset.ready = '1';
