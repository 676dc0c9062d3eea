// Citizens' reports: the form (on the web with a map to pick the spot, or on a kiosk at its
// place), the reporter's follow-up page, and the operators' tickets with their figures. Every
// text that came from someone is written as text (textContent or esc), never as markup.

import { settings, t, esc, api, announce, when, num, post } from './common.js';

const lang = settings.lang === 'en' ? 'en' : 'fr';
const catName = (c) => (lang === 'en' ? c.en ?? c.category_en : c.fr ?? c.category_fr);

/** POST a report without the session (citizens have none); the problem's detail on failure. */
async function sendReport(body) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
  if (settings.csrf) headers['X-CSRF-Token'] = settings.csrf;
  const r = await fetch('/api/v1/reports', { method: 'POST', credentials: 'same-origin', headers, body: JSON.stringify(body) });
  const v = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(v.detail ?? String(r.status));
  return v;
}

async function reportForm() {
  const kiosk = settings.kiosk === true;
  const form = await api('/api/v1/reports/form');
  const opened = Date.now();
  const box = document.getElementById('categories');
  box.innerHTML = form.categories.map((c) => `<label class="category"><input type="radio" name="category" value="${esc(c.id)}"> ${esc(catName(c))}</label>`).join('');
  const desc = document.getElementById('description');
  desc.maxLength = form.max_description_chars;
  const count = () => { document.getElementById('desc-count').textContent = t('reports.chars', { n: desc.value.length, max: form.max_description_chars }); };
  desc.addEventListener('input', count);
  count();
  if (form.email) {
    document.getElementById('contact').hidden = false;
    document.getElementById('consent-label').textContent = t('reports.consent', { days: form.contact_retention_days });
  }
  let position = null;
  let site = settings.site ?? null;
  if (!kiosk) {
    const data = await api('/api/v1/public/map');
    const sites = data.sites.filter((s) => s.lat != null);
    const select = document.getElementById('place');
    select.innerHTML += sites.map((s) => `<option value="${esc(s.id)}">${esc(s.name)}</option>`).join('');
    const center = settings.center ?? (sites[0] ? [sites[0].lat, sites[0].lon] : [43.53, 5.447]);
    const map = L.map('map', { zoomSnap: 0.5, attributionControl: Boolean(settings.tile_url) }).setView(center, 17);
    if (settings.tile_url) L.tileLayer(settings.tile_url, { attribution: esc(settings.tile_attribution), maxZoom: 19 }).addTo(map);
    else document.getElementById('map').classList.add('plain');
    for (const s of sites) L.circleMarker([s.lat, s.lon], { radius: 6, color: '#555', weight: 1, fillOpacity: 0.3 }).bindTooltip(esc(s.name)).addTo(map);
    let marker = null;
    const where = document.getElementById('where');
    const put = (lat, lon, label) => {
      position = [lat, lon];
      if (!marker) marker = L.marker([lat, lon], { keyboard: false, title: t('reports.picked') }).addTo(map);
      marker.setLatLng([lat, lon]);
      where.textContent = label ?? t('reports.picked_at', { lat: lat.toFixed(5), lon: lon.toFixed(5) });
    };
    map.on('click', (e) => { site = null; select.value = ''; put(e.latlng.lat, e.latlng.lng); });
    select.addEventListener('change', () => {
      const s = sites.find((x) => x.id === select.value);
      if (!s) return;
      site = s.id;
      map.setView([s.lat, s.lon], 18);
      put(s.lat, s.lon, t('reports.picked_place', { name: s.name }));
    });
    if (settings.site) {
      select.value = settings.site;
      const s = sites.find((x) => x.id === settings.site);
      if (s) put(s.lat, s.lon, t('reports.picked_place', { name: s.name }));
    }
    document.getElementById('locate').addEventListener('click', () => {
      if (!navigator.geolocation) { where.textContent = t('reports.no_location'); return; }
      navigator.geolocation.getCurrentPosition(
        (p) => { site = null; select.value = ''; map.setView([p.coords.latitude, p.coords.longitude], 18); put(p.coords.latitude, p.coords.longitude); },
        () => { where.textContent = t('reports.no_location'); },
        { enableHighAccuracy: true, timeout: 10_000 },
      );
    });
  }
  const error = document.getElementById('report-error');
  document.getElementById('report').addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const category = document.querySelector('input[name="category"]:checked')?.value;
    if (!category) { error.textContent = t('reports.need_category'); document.querySelector('input[name="category"]')?.focus(); return; }
    if (!kiosk && !position && !site) { error.textContent = t('reports.need_position'); return; }
    // A person takes a few seconds; the server refuses forms sent sooner.
    const wait = form.min_fill_secs * 1000 - (Date.now() - opened);
    if (wait > 0) await new Promise((ok) => setTimeout(ok, wait + 200));
    const body = { category, description: desc.value, key: form.key, lang, channel: kiosk ? 'kiosk' : 'web', website: document.getElementById('website').value };
    if (kiosk || (site && !position)) body.site = site;
    else { body.lat = position[0]; body.lon = position[1]; }
    const email = document.getElementById('email')?.value.trim();
    if (form.email && email) { body.email = email; body.consent = document.getElementById('consent').checked; }
    const button = document.getElementById('send');
    button.disabled = true;
    try {
      const done = await sendReport(body);
      const out = document.getElementById('done');
      const link = new URL(`/signalements/suivi/${encodeURIComponent(done.follow)}`, location.href).href;
      out.innerHTML = `<h2>${esc(done.duplicate ? t('reports.merged', { n: done.number, people: done.supporters }) : t('reports.sent', { n: done.number }))}</h2>
<p>${esc(t('reports.follow_link'))} <a id="follow-link" href="${esc(link)}">${esc(link)}</a></p>
${done.contact_kept ? `<p>${esc(t('reports.email_kept'))}</p>` : ''}
${kiosk ? `<p><a class="kiosk-button" href="/kiosk/${encodeURIComponent(settings.site)}">${esc(t('reports.kiosk_back'))}</a></p>` : ''}`;
      document.getElementById('report').hidden = true;
      out.hidden = false;
      out.focus();
      announce(out.querySelector('h2').textContent);
    } catch (err) {
      error.textContent = err.message;
      button.disabled = false;
    }
  });
  document.body.dataset.ready = '1';
}

function statusBadge(s) {
  return `<span class="status status-${esc(s)}">${esc(t(`reports.status.${s}`))}</span>`;
}

async function follow() {
  const box = document.getElementById('follow');
  try {
    const r = await api(`/api/v1/reports/follow/${encodeURIComponent(settings.follow)}`);
    const place = r.site_name ?? `${num(r.lat, 5)}, ${num(r.lon, 5)}`;
    box.innerHTML = `<p class="report-status">${esc(t('reports.number', { n: r.number }))} · ${esc(catName(r))} · ${esc(place)}</p>
<p>${statusBadge(r.status)}</p>
<p>${esc(t('reports.supporters', { n: r.supporters }))}</p>
${r.note ? `<p class="note"><strong>${esc(t('reports.note'))}</strong> <span id="public-note"></span></p>` : ''}
${r.description ? `<blockquote id="public-text"></blockquote>` : ''}
<h2>${esc(t('reports.history'))}</h2><ol class="history">${r.history.map((h) => `<li><time datetime="${esc(h.at)}">${esc(when(h.at))}</time> — ${esc(t(`reports.event.${h.event}`))}</li>`).join('')}</ol>`;
    if (r.note) document.getElementById('public-note').textContent = r.note;
    if (r.description) document.getElementById('public-text').textContent = r.description;
  } catch (e) {
    box.innerHTML = `<p class="error" role="alert">${esc(e.message)}</p>`;
  }
  document.body.dataset.ready = '1';
}

async function tickets() {
  const list = document.getElementById('tickets');
  const filter = document.getElementById('status-filter');
  const detail = document.getElementById('ticket');
  const names = new Map((await api('/api/v1/reports/form')).categories.map((c) => [c.id, catName(c)]));
  async function stats() {
    try {
      const v = await api('/api/v1/reports/stats?by=category');
      const rows = v.rows.map((r) => `<tr><th scope="row">${esc(names.get(r.group[0]) ?? r.group[0])}</th><td>${r.reports}</td><td>${r.supporters}</td><td>${r.open}</td><td>${r.resolved}</td><td>${r.rejected}</td><td>${r.median_hours_to_resolve == null ? '—' : num(r.median_hours_to_resolve, 1)}</td></tr>`).join('');
      document.getElementById('stats').innerHTML = v.rows.length
        ? `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(t('tickets.stats'))}"><table><thead><tr><th scope="col">${esc(t('tickets.col.category'))}</th><th scope="col">${esc(t('tickets.col.reports'))}</th><th scope="col">${esc(t('tickets.col.supporters'))}</th><th scope="col">${esc(t('tickets.open'))}</th><th scope="col">${esc(t('reports.status.resolved'))}</th><th scope="col">${esc(t('reports.status.rejected'))}</th><th scope="col">${esc(t('tickets.col.median'))}</th></tr></thead><tbody>${rows}</tbody></table></div>
<p><a href="/api/v1/reports/stats?by=category,month&format=csv" download>${esc(t('tickets.csv'))}</a></p>`
        : `<p>${esc(t('tickets.none'))}</p>`;
    } catch (e) { document.getElementById('stats').textContent = e.message; }
  }
  async function load() {
    const q = filter.value ? `?status=${encodeURIComponent(filter.value)}` : '';
    const rows = await api(`/api/v1/reports${q}`);
    if (!rows.length) { list.innerHTML = `<p>${esc(t('tickets.none'))}</p>`; return; }
    list.innerHTML = `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(t('tickets.list'))}"><table><thead><tr><th scope="col">${esc(t('tickets.col.number'))}</th><th scope="col">${esc(t('tickets.col.category'))}</th><th scope="col">${esc(t('tickets.col.place'))}</th><th scope="col">${esc(t('tickets.col.status'))}</th><th scope="col">${esc(t('tickets.col.filed'))}</th><th scope="col">${esc(t('tickets.col.supporters'))}</th></tr></thead><tbody>
${rows.map((r) => `<tr><td><button type="button" class="link" data-open="${r.id}">n° ${r.id}</button></td><td>${esc(catName(r))}</td><td>${esc(r.site ?? `${num(r.lat, 5)}, ${num(r.lon, 5)}`)}</td><td>${statusBadge(r.status)}</td><td>${esc(when(r.created_at))}</td><td>${r.supporters}</td></tr>`).join('')}
</tbody></table></div>`;
  }
  async function open(id) {
    const r = await api(`/api/v1/reports/${id}`);
    detail.hidden = false;
    detail.innerHTML = `<h2 id="ticket-title">${esc(t('reports.number', { n: r.id }))} — ${esc(catName(r))}</h2>
<p>${statusBadge(r.status)} · ${esc(t('reports.supporters', { n: r.supporters }))} · ${esc(r.site ?? '')} (${esc(r.commune)}) · ${esc(r.channel)}</p>
<p><strong>${esc(t('tickets.description'))}</strong></p><blockquote id="ticket-text"></blockquote>
${r.devices.length ? `<p>${esc(t('tickets.devices'))} ${r.devices.map((d) => `<a href="/supervision/devices/${encodeURIComponent(d)}">${esc(d)}</a>`).join(', ')}</p>` : ''}
${r.alert_id ? `<p><a href="/alerts?alert=${r.alert_id}">${esc(t('tickets.alert', { n: r.alert_id }))}</a></p>` : ''}
<h3>${esc(t('tickets.events'))}</h3><ol class="history">${r.events.map((e) => `<li>${esc(when(e.at))} — ${esc(t(`reports.event.${e.event}`))} (${esc(e.actor)})${e.note ? ` : <q class="ev-note"></q>` : ''}</li>`).join('')}</ol>
<form id="move"><fieldset><legend>${esc(t('tickets.move'))}</legend>
<p><label for="next-status">${esc(t('tickets.col.status'))}</label> <select id="next-status"><option value="${esc(r.status)}">${esc(t(`reports.status.${r.status}`))}</option>${r.next.map((s) => `<option value="${esc(s)}">${esc(t(`reports.status.${s}`))}</option>`).join('')}</select></p>
<p><label for="note">${esc(t('tickets.note'))}</label><br><textarea id="note" rows="2"></textarea></p>
<p><label for="public-note">${esc(t('tickets.public_note'))}</label><br><textarea id="public-note" rows="2"></textarea></p>
<p><input type="checkbox" id="publish"${r.description_public ? ' checked' : ''}> <label for="publish">${esc(t('tickets.publish'))}</label></p>
<p><button type="submit">${esc(t('tickets.save'))}</button> <span id="move-result" role="status"></span></p></fieldset></form>`;
    document.getElementById('ticket-text').textContent = r.description || '—';
    document.getElementById('public-note').value = r.public_note ?? '';
    detail.querySelectorAll('.ev-note').forEach((q, i) => { q.textContent = r.events.filter((e) => e.note)[i].note; });
    detail.focus();
    document.getElementById('move').addEventListener('submit', async (e) => {
      e.preventDefault();
      const out = document.getElementById('move-result');
      try {
        await post(`/api/v1/reports/${r.id}/status`, {
          status: document.getElementById('next-status').value,
          note: document.getElementById('note').value || null,
          public_note: document.getElementById('public-note').value,
          publish_description: document.getElementById('publish').checked,
        });
        await Promise.all([load(), stats()]);
        await open(r.id);
        document.getElementById('move-result').textContent = t('tickets.saved');
        announce(t('tickets.saved'));
      } catch (err) { out.textContent = err.message; }
    });
  }
  list.addEventListener('click', (e) => {
    const b = e.target.closest('button[data-open]');
    if (b) open(b.dataset.open);
  });
  filter.addEventListener('change', load);
  await Promise.all([load(), stats()]);
  const asked = new URLSearchParams(location.search).get('report');
  if (asked && /^\d{1,12}$/.test(asked)) await open(asked);
  document.body.dataset.ready = '1';
}

if (settings.page === 'report-form' || settings.page === 'report-kiosk') await reportForm();
else if (settings.page === 'report-follow') await follow();
else if (settings.page === 'tickets') await tickets();
