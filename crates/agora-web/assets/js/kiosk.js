// Kiosk mode for street furniture: full screen, large type, touch-friendly. Rotates through the
// place's air quality, temperature, noise, footfall and tomorrow's forecasts; a touch (or the buttons, or the arrow
// keys) moves by hand and pauses the rotation for a while. Values update live.

import { settings, t, esc, num, api, live, placeFigures, scaleOf, eaqiNow, ATMO_COLOURS, tomorrowCards } from './common.js';

const site = settings.site;
const data = await api('/api/v1/public/map');
const devices = data.devices.filter((d) => d.site === site);
const byId = new Map(devices.map((d) => [d.id, d]));
const PAUSE_MS = 30_000;

// The official indices (the European index of the hour, ATMO of the day) and a heatwave warning,
// from the server's indicators (refreshed every 5 minutes; the other slides do not wait for them).
let official = null;
async function loadOfficial() {
  try {
    const q = `site=${encodeURIComponent(site)}&to=${settings.today}`;
    const [atmo, heat, eaqi] = await Promise.all([
      api(`/api/v1/indicators/atmo?${q}&from=${settings.today}`),
      api(`/api/v1/indicators/heat?${q}`),
      eaqiNow(`site=${encodeURIComponent(site)}`),
    ]);
    const day = atmo.days.at(-1);
    official = { atmo: day?.index.class ? day.index : null, canicule: heat.days.at(-1)?.status.canicule === true, eaqi };
  } catch {
    official = null;
  }
  document.body.dataset.officialReady = '1';
}
loadOfficial();
setInterval(loadOfficial, 5 * 60_000);

// Passers-by today against the usual for the weekday (places with counters), every 15 minutes.
let footfall = null;
async function loadFootfall() {
  if (!devices.some((d) => d.latest?.people_in)) return;
  try { footfall = await api(`/api/v1/commerce/profile?site=${encodeURIComponent(site)}`); } catch { footfall = null; }
}
loadFootfall();
setInterval(loadFootfall, 15 * 60_000);

// Tomorrow from the place's forecasts (ATMO class and heat; footfall is the commerce pages'),
// every 30 minutes.
let tomorrow = [];
async function loadTomorrow() {
  try {
    const d = await api(`/api/v1/forecast/tomorrow?site=${encodeURIComponent(site)}`);
    tomorrow = tomorrowCards(d).filter((c) => c.key !== 'footfall');
  } catch { tomorrow = []; }
}
loadTomorrow();
setInterval(loadTomorrow, 30 * 60_000);

function slides() {
  const f = placeFigures(devices);
  const out = [];
  if (official?.canicule) out.push({ key: 'heatwave', title: t('kiosk.heatwave'), value: '⚠', colour: '#d62728', note: t('kiosk.heatwave_note') });
  const air = official?.eaqi;
  if (air) out.push({ key: 'air', title: t('kiosk.air'), value: esc(air.label), colour: air.colour, note: t('kiosk.air_note') });
  if (official?.atmo) {
    out.push({ key: 'atmo', title: t('env.atmo'), value: esc(t(`atmo.${official.atmo.class}`)), colour: ATMO_COLOURS[official.atmo.class],
      note: `${t('env.responsible')} ${official.atmo.responsible.map((p) => t(`prop.${p}`)).join(', ')}` });
  }
  if (f.temperature !== null) out.push({ key: 'temperature', title: t('kiosk.temperature'), value: `${num(f.temperature)} °C`, colour: scaleOf('temperature').colour(f.temperature), note: f.humidity !== null ? `${t('prop.relative_humidity')} ${num(f.humidity, 0)} %` : '' });
  if (f.noise !== null) out.push({ key: 'noise', title: t('kiosk.noise'), value: `${num(f.noise, 0)} dB(A)`, colour: scaleOf('laeq').colour(f.noise), note: t('place.noise_note') });
  if (f.people !== null) out.push({ key: 'people', title: t('kiosk.people'), value: num(f.people, 0), colour: '#756bb1', note: t('place.people_note') });
  if (footfall?.so_far !== null && footfall?.so_far !== undefined) {
    const note = footfall.usual_so_far ? t('place.people_usual', { weekday: t(`day.${footfall.weekday}`), n: num(footfall.usual_so_far, 0) }) : t('commerce.no_usual');
    out.push({ key: 'people_today', title: t('place.people_today'), value: num(footfall.so_far, 0), colour: '#756bb1', note });
  }
  for (const c of tomorrow) out.push({ key: `tomorrow_${c.key}`, title: `${t('tomorrow.title')} · ${c.label}`, value: c.key === 'atmo' ? esc(c.text) : c.value, colour: c.colour, note: c.note });
  return out;
}

let index = 0;
let pausedUntil = 0;

function show() {
  const all = slides();
  const slide = document.getElementById('slide');
  if (!all.length) { slide.innerHTML = `<p class="kiosk-value">${esc(t('kiosk.none'))}</p>`; return; }
  index = ((index % all.length) + all.length) % all.length;
  const s = all[index];
  slide.dataset.slide = s.key;
  slide.dataset.slides = all.map((x) => x.key).join(',');
  slide.innerHTML = `<p class="kiosk-title">${esc(s.title)}</p>
    <p class="kiosk-value" style="border-color:${s.colour ?? '#fff'}">${s.value}</p>
    <p class="kiosk-note">${esc(s.note)}</p>`;
  document.getElementById('dots').innerHTML = all.map((x, i) =>
    `<li><button type="button" data-i="${i}" aria-label="${esc(x.title)}" aria-current="${i === index}"></button></li>`).join('');
}

function move(step) {
  index += step;
  pausedUntil = Date.now() + PAUSE_MS;
  show();
}

document.getElementById('prev').addEventListener('click', () => move(-1));
document.getElementById('next').addEventListener('click', () => move(1));
document.getElementById('dots').addEventListener('click', (e) => {
  if (e.target.dataset.i !== undefined) { index = Number(e.target.dataset.i); pausedUntil = Date.now() + PAUSE_MS; show(); }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'ArrowRight') move(1);
  if (e.key === 'ArrowLeft') move(-1);
});
let touchX = null;
document.addEventListener('touchstart', (e) => { touchX = e.touches[0].clientX; }, { passive: true });
document.addEventListener('touchend', (e) => {
  if (touchX === null) return;
  const dx = e.changedTouches[0].clientX - touchX;
  if (Math.abs(dx) > 50) move(dx < 0 ? 1 : -1);
  touchX = null;
});

setInterval(() => {
  if (Date.now() >= pausedUntil) { index += 1; show(); }
}, settings.rotate * 1000);

const clock = document.getElementById('clock');
const tick = () => { clock.textContent = new Date().toLocaleTimeString(settings.lang, { hour: '2-digit', minute: '2-digit' }); };
tick();
setInterval(tick, 10_000);

show();
live({ site }, {
  values(rows) {
    for (const r of rows) {
      const d = byId.get(r.d);
      if (d && !(d.latest?.[r.p]?.[0] > r.t)) { d.latest ??= {}; d.latest[r.p] = [r.t, r.v]; }
    }
    show();
  },
});
document.body.dataset.ready = '1';
