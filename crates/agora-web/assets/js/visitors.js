// Visitors: what to see (points of interest on a map, the tours), one tour on a phone, the
// kiosk's "what to see nearby" with QR codes to take a tour along, and the cool route of a hot
// afternoon against the shortest. Texts come in the page's language, French when missing.

import { settings, t, esc, api, num, announce } from './common.js';

const lang = settings.lang === 'en' ? 'en' : 'fr';
const text = (m) => (m ? m[lang] ?? m.fr ?? m.en ?? Object.values(m)[0] ?? '' : '');
const COOL = '#1a6fb0';
const SHORT = '#c0392b';

function baseMap(center) {
  const map = L.map('map', { zoomSnap: 0.5, attributionControl: Boolean(settings.tile_url) }).setView(center, 16);
  if (settings.tile_url) L.tileLayer(settings.tile_url, { attribution: esc(settings.tile_attribution), maxZoom: 19 }).addTo(map);
  else document.getElementById('map').classList.add('plain');
  return map;
}

function poiMarker(p) {
  return L.circleMarker([p.lat, p.lon], { radius: 8, color: '#222', weight: 1, fillColor: '#f2c12b', fillOpacity: 0.9, className: 'poi-marker' })
    .bindTooltip(`${esc(text(p.name))} (${esc(t(`visit.kind.${p.kind}`))})`);
}

function poiHtml(p) {
  const desc = text(p.description);
  const access = text(p.accessibility);
  return `<h3>${esc(text(p.name))} <span class="tag">${esc(t(`visit.kind.${p.kind}`))}</span></h3>
${desc ? `<p>${esc(desc)}</p>` : ''}
${p.opening_hours ? `<p><strong>${esc(t('visit.hours'))}</strong> ${esc(p.opening_hours)}</p>` : ''}
${access ? `<p><strong>${esc(t('visit.access'))}</strong> ${esc(access)}</p>` : ''}
${p.distance_m != null ? `<p>${esc(t('visit.distance', { m: num(p.distance_m, 0) }))}</p>` : ''}`;
}

function tourLine(tour) {
  return `${esc(t('visit.length', { km: num(tour.distance_m / 1000, 1), min: num(tour.duration_min, 0), n: tour.points.length }))}${tour.straight ? ` ${esc(t('visit.straight'))}` : ''}`;
}

async function coolRoute(from, to, map, layers) {
  const out = document.getElementById('cool');
  out.textContent = t('loading');
  try {
    const r = await api(`/api/v1/visitors/cool-route?from=${from.lat},${from.lon}&to=${to.lat},${to.lon}`);
    if (map) {
      for (const l of layers.splice(0)) l.remove();
      layers.push(L.geoJSON(r.shortest.route, { style: { color: SHORT, weight: 4, dashArray: '6 6' } }).addTo(map));
      layers.push(L.geoJSON(r.cool.route, { style: { color: COOL, weight: 6 } }).addTo(map));
    }
    const felt = (w) => (w.felt_c == null ? '—' : `${num(w.felt_c, 1)} °C`);
    out.innerHTML = `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(t('visit.cool'))}"><table><thead><tr><th scope="col"></th><th scope="col">${esc(t('visit.col.length'))}</th><th scope="col">${esc(t('visit.col.time'))}</th><th scope="col">${esc(t('visit.col.felt'))}</th></tr></thead><tbody>
<tr><th scope="row"><span class="swatch" style="background:${COOL}" aria-hidden="true"></span> ${esc(t('visit.cool_route'))}</th><td>${num(r.cool.distance_m, 0)} m</td><td>${num(r.cool.duration_min, 0)} min</td><td>${felt(r.cool)}</td></tr>
<tr><th scope="row"><span class="swatch" style="background:${SHORT}" aria-hidden="true"></span> ${esc(t('visit.shortest'))}</th><td>${num(r.shortest.distance_m, 0)} m</td><td>${num(r.shortest.duration_min, 0)} min</td><td>${felt(r.shortest)}</td></tr></tbody></table></div>
<p id="cool-summary">${esc(r.cooler_by_c == null ? t('visit.no_heat') : t('visit.cool_summary', { c: num(r.cooler_by_c, 1), m: num(r.longer_by_m, 0) }))}</p>
${r.cool.cool_stops.length ? `<p>${esc(t('visit.cool_stops', { n: r.cool.cool_stops.length }))}</p>` : ''}`;
    announce(document.getElementById('cool-summary').textContent);
  } catch (e) {
    out.innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`;
  }
}

async function visit() {
  const [pois, tours] = await Promise.all([api('/api/v1/visitors/pois'), api('/api/v1/visitors/tours')]);
  const center = pois[0] ? [pois[0].lat, pois[0].lon] : [43.5299, 5.4474];
  const map = baseMap(center);
  for (const p of pois) poiMarker(p).addTo(map);
  for (const tour of tours) L.geoJSON(tour.route, { style: { color: '#6a3d9a', weight: 3 } }).addTo(map);
  if (pois.length) map.fitBounds(L.latLngBounds(pois.map((p) => [p.lat, p.lon])).pad(0.2));
  document.getElementById('tours').innerHTML = tours.length
    ? `<ul class="tours">${tours.map((x) => `<li><a href="/visiter/parcours/${encodeURIComponent(x.id)}">${esc(text(x.title))}</a> — ${tourLine(x)}<br>${esc(text(x.description))}</li>`).join('')}</ul>`
    : `<p>${esc(t('visit.no_tours'))}</p>`;
  document.getElementById('pois').innerHTML = `<ul class="pois">${pois.map((p) => `<li>${poiHtml(p)}</li>`).join('')}</ul>`;
  const options = pois.map((p, i) => `<option value="${i}">${esc(text(p.name))}</option>`).join('');
  document.getElementById('cool-from').innerHTML = options;
  document.getElementById('cool-to').innerHTML = options;
  if (pois.length > 1) document.getElementById('cool-to').value = String(pois.length - 1);
  const layers = [];
  document.getElementById('cool-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const a = pois[Number(document.getElementById('cool-from').value)];
    const b = pois[Number(document.getElementById('cool-to').value)];
    if (a && b) coolRoute(a, b, map, layers);
  });
  document.body.dataset.ready = '1';
}

async function visitTour() {
  const box = document.getElementById('tour');
  try {
    const tour = await api(`/api/v1/visitors/tours/${encodeURIComponent(settings.tour)}`);
    document.title = `${text(tour.title)} — agora`;
    box.innerHTML = `<h1>${esc(text(tour.title))}</h1><p>${esc(text(tour.description))}</p><p>${tourLine(tour)}</p>`;
    const map = baseMap([tour.points[0].lat, tour.points[0].lon]);
    const line = L.geoJSON(tour.route, { style: { color: '#6a3d9a', weight: 5 } }).addTo(map);
    tour.points.forEach((p, i) => {
      L.circleMarker([p.lat, p.lon], { radius: 10, color: '#222', weight: 1, fillColor: '#f2c12b', fillOpacity: 1, className: 'poi-marker' })
        .bindTooltip(`${i + 1}. ${esc(text(p.name))}`, { permanent: true, direction: 'right' }).addTo(map);
    });
    map.fitBounds(line.getBounds().pad(0.15));
    document.getElementById('stops').innerHTML = tour.points.map((p) => `<li>${poiHtml(p)}</li>`).join('');
  } catch (e) {
    box.innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`;
  }
  document.body.dataset.ready = '1';
}

async function kioskVisit() {
  const [lat, lon] = settings.center;
  const [near, tours] = await Promise.all([
    api(`/api/v1/visitors/pois?near=${lat},${lon}&radius=1500`),
    api('/api/v1/visitors/tours'),
  ]);
  document.getElementById('near').innerHTML = near.length
    ? near.slice(0, 6).map((p) => `<li>${poiHtml(p)}</li>`).join('')
    : `<li>${esc(t('visit.nothing_near'))}</li>`;
  // Each tour with its QR code, made by the server: scanned, it opens the tour on the phone.
  document.getElementById('kiosk-tours').innerHTML = tours.length
    ? tours.map((x) => `<figure class="kiosk-tour"><img src="/api/v1/visitors/tours/${encodeURIComponent(x.id)}/qr" alt="${esc(t('visit.qr_alt', { name: text(x.title) }))}" width="220" height="220">
<figcaption><strong>${esc(text(x.title))}</strong><br>${tourLine(x)}<br>${esc(t('visit.scan'))}</figcaption></figure>`).join('')
    : `<p>${esc(t('visit.no_tours'))}</p>`;
  // On a hot afternoon (28 °C or more here now), the cool route from the kiosk to the nearest
  // fountain or shade farther than 150 m.
  try {
    const heat = await api(`/api/v1/indicators/heat?site=${encodeURIComponent(settings.site)}&to=${new Date().toISOString().slice(0, 10)}`);
    const day = heat.days?.at(-1);
    const hot = (day?.t_max ?? -Infinity) >= 28 || day?.status?.canicule === true;
    const spot = near.find((p) => ['fountain', 'shade', 'drinking_water'].includes(p.kind) && p.distance_m > 150);
    if (hot && spot) {
      document.getElementById('cool-box').hidden = false;
      document.getElementById('cool').insertAdjacentHTML('beforebegin', `<p>${esc(t('visit.cool_to', { name: text(spot.name) }))}</p>`);
      await coolRoute({ lat, lon }, spot, null, []);
    }
  } catch { /* no heat figures here */ }
  document.body.dataset.ready = '1';
}

if (settings.page === 'visit') await visit();
else if (settings.page === 'visit-tour') await visitTour();
else if (settings.page === 'kiosk-visit') await kioskVisit();
