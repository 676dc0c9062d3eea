// A place's page for citizens: current conditions (air index, temperature, noise, footfall, bins,
// lighting) and 24-hour charts of the place, all from public data.

import { settings, t, esc, num, api, live, when, propName, scaleOf, placeFigures, eaqiNow, tomorrowCards } from './common.js';
import { chart } from './charts.js';

const site = settings.site;
const data = await api('/api/v1/public/map');
const devices = data.devices.filter((d) => d.site === site);
const byId = new Map(devices.map((d) => [d.id, d]));

function card(label, value, extra = '', colour = null) {
  const style = colour ? ` style="border-color:${colour}"` : '';
  return `<div class="card"${style}><p class="card-label">${esc(label)}</p><p class="card-value">${value}</p>${extra ? `<p class="card-extra">${extra}</p>` : ''}</div>`;
}

// The air colour is the server's European index of the latest hour (refreshed every 5 minutes),
// the same figure as the environment view's; the readings beside it are the latest ones.
let air = null;
const hourFmt = new Intl.DateTimeFormat(settings.lang === 'en' ? 'en-GB' : 'fr-FR', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'Europe/Paris' });
async function loadAir() {
  air = await eaqiNow(`site=${encodeURIComponent(site)}`);
  drawNow();
}

function drawNow() {
  const f = placeFigures(devices);
  const cards = [];
  if (air) {
    const detail = Object.entries(f.pollutants).map(([p, v]) => `${esc(propName(p))} ${num(v, 0)}`).join(' · ');
    cards.push(card(t('place.air'), `<span class="aq" style="background:${air.colour}">${esc(air.label)}</span>`,
      `${esc(t('place.eaqi_hour', { hour: hourFmt.format(new Date(air.hour)) }))}${detail ? ` · ${detail} µg/m³` : ''}`, air.colour));
  }
  if (f.temperature !== null) cards.push(card(t('prop.temperature'), `${num(f.temperature)} °C`, f.humidity !== null ? `${esc(t('prop.relative_humidity'))} ${num(f.humidity, 0)} %` : '', scaleOf('temperature').colour(f.temperature)));
  if (f.noise !== null) cards.push(card(t('place.noise'), `${num(f.noise)} dB(A)`, esc(t('place.noise_note')), scaleOf('laeq').colour(f.noise)));
  if (f.people !== null) cards.push(card(t('place.people'), num(f.people, 0), esc(t('place.people_note'))));
  if (footfall?.so_far !== null && footfall?.so_far !== undefined) {
    const usual = footfall.usual_so_far ? esc(t('place.people_usual', { weekday: t(`day.${footfall.weekday}`), n: num(footfall.usual_so_far, 0) })) : esc(t('commerce.no_usual'));
    cards.push(card(t('place.people_today'), num(footfall.so_far, 0), `${usual} · <a href="/commerce?site=${encodeURIComponent(site)}">${esc(t('nav.commerce'))}</a>`));
  }
  if (f.bins) cards.push(card(t('place.bins'), `${num(f.fill, 0)} %`, esc(t('place.bins_full', { n: f.full_bins, total: f.bins }))));
  if (f.lamps) cards.push(card(t('place.lights'), `${f.lamps_on} / ${f.lamps}`, esc(t('place.lights_note'))));
  if (f.soil !== null) cards.push(card(t('prop.soil_moisture'), `${num(f.soil, 0)} %`));
  document.getElementById('now').innerHTML = cards.join('') +
    `<p class="updated">${esc(t('map.updated_at'))} ${esc(when(f.latest || null))}</p>`;
}
// Passers-by today against the usual for the weekday (places with counters).
let footfall = null;
async function loadFootfall() {
  if (!devices.some((d) => d.latest?.people_in)) return;
  try { footfall = await api(`/api/v1/commerce/profile?site=${encodeURIComponent(site)}`); } catch { footfall = null; }
  drawNow();
}
// Tomorrow, from the place's forecasts: the ATMO class, the temperatures against the canicule
// thresholds, the footfall against the usual weekday.
async function loadTomorrow() {
  let d;
  try { d = await api(`/api/v1/forecast/tomorrow?site=${encodeURIComponent(site)}`); } catch { return; }
  const cards = tomorrowCards(d);
  document.getElementById('tomorrow-box').hidden = !cards.length;
  document.getElementById('tomorrow').innerHTML = cards.map((c) => card(c.label, c.value, esc(c.note), c.colour)).join('');
}

drawNow();
loadTomorrow();
setInterval(loadTomorrow, 30 * 60_000);
await loadFootfall();
setInterval(loadFootfall, 15 * 60_000);
await loadAir();
setInterval(loadAir, 5 * 60_000);

const present = new Set(devices.flatMap((d) => Object.keys(d.latest ?? {})));
const charts = ['pm10', 'pm2_5', 'no2', 'o3', 'temperature', 'laeq', 'people_in', 'fill_level', 'soil_moisture'].filter((p) => present.has(p));
const box = document.getElementById('charts');
box.innerHTML = charts.map((p) => `<div class="chart-box" id="chart-${p}"></div>`).join('');
for (const p of charts) {
  chart(document.getElementById(`chart-${p}`), {
    site, property: p, from: '-24h', title: `${propName(p)} — ${t('place.mean_of_place')}`,
    ahead: () => api(`/api/v1/forecast/place?site=${encodeURIComponent(site)}&property=${encodeURIComponent(p)}`).then((f) => f.hours),
  });
}
document.getElementById('downloads').innerHTML =
  `<a href="/api/v1/public/map">${esc(t('place.data_json'))}</a> · <a href="/api/v1/openapi.json">${esc(t('place.api'))}</a>`;

live({ site }, {
  values(rows) {
    for (const r of rows) {
      const d = byId.get(r.d);
      if (d && !(d.latest?.[r.p]?.[0] > r.t)) { d.latest ??= {}; d.latest[r.p] = [r.t, r.v]; }
    }
    drawNow();
  },
});
document.body.dataset.ready = '1';

// The official indices, noise, heat and the year's figures of the place, loaded after the rest
// (the module waits for its figures).
import('./environment.js');
