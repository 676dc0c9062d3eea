// The commerce observatory: a place's passers-by today against its typical day, the day against
// the same weekdays and last year, the weekday × hour heat map, the ranking of places with their
// index, the calendar of markets and events, and the impact studies. Every figure comes from the
// API (`/api/v1/commerce/…`), which computes and tests them; this page only draws.

import { settings, t, esc, num, api, may, post, announce } from './common.js';

const $ = (id) => document.getElementById(id);
const pct = (v) => (v === null || v === undefined ? '—' : `${v > 0 ? '+' : ''}${num(v, 1)} %`);
const dayName = (w) => t(`day.${w}`);
const query = (o) => Object.entries(o).filter(([, v]) => v).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');

// Places with counters, busiest first: the ranking lists them.
const ranking = await api('/api/v1/commerce/ranking');
// A place (`site:…`) or a whole commune (`commune:…`).
const select = $('site');
const communes = [...new Map(ranking.places.map((p) => [p.commune, p.commune_name ?? p.commune])).entries()];
select.innerHTML = ranking.places.map((p) => `<option value="site:${esc(p.site)}">${esc(p.name)}</option>`).join('') +
  communes.map(([c, name]) => `<option value="commune:${esc(c)}">${esc(t('commerce.commune_option', { name }))}</option>`).join('');
const wanted = new URLSearchParams(location.search).get('site');
if (wanted && ranking.places.some((p) => p.site === wanted)) select.value = `site:${wanted}`;
const area = () => {
  const [kind, id] = select.value.split(':');
  return kind === 'commune' ? { commune: id } : { site: id };
};
$('date').value = settings.today;
$('date').max = settings.today;

/** An SVG line chart of 24 hours: the typical day's 10–90 % band and median, and the day. */
function dayChart(profile) {
  const W = 640, H = 220, L = 48, R = 24, T = 10, B = 26;
  const typ = profile.typical;
  const top = Math.max(1, ...typ.map((h) => h.p90 ?? 0), ...profile.today.map((v) => v ?? 0));
  const x = (h) => L + ((W - L - R) * h) / 23;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const path = (vals) => {
    let d = '', pen = false;
    vals.forEach((v, h) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(h).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    return d;
  };
  const band = typ.every((h) => h.p10 !== null)
    ? `M${typ.map((h) => `${x(h.hour).toFixed(1)},${y(h.p90).toFixed(1)}`).join(' L')} L${typ.slice().reverse().map((h) => `${x(h.hour).toFixed(1)},${y(h.p10).toFixed(1)}`).join(' L')} Z`
    : '';
  const ticks = [0, 6, 12, 18, 23].map((h) => `<text x="${x(h)}" y="${H - 8}" font-size="11" text-anchor="middle">${h} h</text>`).join('');
  const yt = [0, top / 2, top].map((v) => `<text x="${L - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${num(v, 0)}</text>`).join('');
  const wd = dayName(profile.weekday);
  return `<figure class="day-chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t('commerce.chart_label'))}">
<path d="${band}" fill="#1f5fa8" opacity="0.15"/>
<path d="${path(typ.map((h) => h.median))}" fill="none" stroke="#1f5fa8" stroke-width="1.5" stroke-dasharray="5 4"/>
<path d="${path(profile.today)}" fill="none" stroke="#b3261e" stroke-width="2.5"/>
<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/>${ticks}${yt}</svg>
<figcaption><span class="key today">— ${esc(t('commerce.legend_today'))}</span> <span class="key median">- - ${esc(t('commerce.legend_median'))}</span> <span class="key band">▇ ${esc(t('commerce.legend_band', { weekday: wd }))}</span></figcaption></figure>`;
}

function drawToday(p) {
  const hour = p.today.reduce((last, v, h) => (v !== null ? h + 1 : last), 0);
  const notes = [];
  if (p.holiday) notes.push(t('commerce.holiday', { name: p.holiday }));
  if (p.school_holiday) notes.push(t('commerce.school', { name: p.school_holiday }));
  if (p.events.length) notes.push(t('commerce.event_today', { names: p.events.join(', ') }));
  const usual = p.usual_so_far
    ? t('commerce.usual', { weekday: dayName(p.weekday), n: num(p.usual_so_far, 0), pct: pct(100 * (p.so_far / p.usual_so_far - 1)) })
    : t('commerce.no_usual');
  $('today').innerHTML = `<div class="cards"><div class="card"><p class="card-label">${esc(t('commerce.today'))}</p>
<p class="card-value" id="so-far">${num(p.so_far, 0)}</p><p class="card-extra">${esc(t('commerce.so_far', { n: num(p.so_far, 0), hour }))}<br>${esc(usual)}</p></div></div>
${notes.length ? `<p>${notes.map(esc).join(' · ')}</p>` : ''}${dayChart(p)}`;
}

function yesterday() {
  const d = new Date(`${settings.today}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() - 1);
  return d.toISOString().slice(0, 10);
}

function drawCompare(c) {
  const rows = ['vs_last_week', 'vs_4_weeks', 'vs_last_year', 'week_to_date', 'month_to_date', 'year_to_date'].map((k) => {
    const x = c[k];
    // Up to three days named; more as a count and a span.
    const m = x.missing ?? [];
    const days = m.length <= 3 ? m.join(', ') : t('commerce.missing_span', { n: m.length, first: m[0], last: m.at(-1) });
    const missing = m.length ? `<br><small>${esc(t('commerce.missing', { days }))}</small>` : '';
    return `<tr><th scope="row">${esc(t(`commerce.${k}`))}${missing}</th><td>${num(x.value, 0)}</td><td>${num(x.reference, 0)}</td><td>${pct(x.change_pct)}</td></tr>`;
  }).join('');
  const day = new Date(`${c.date}T12:00:00`).toLocaleDateString(settings.lang === 'en' ? 'en-GB' : 'fr-FR', { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
  $('compare').innerHTML = `<p id="compare-day">${esc(t('commerce.compare_day', { day }))}</p><div class="table-wrap" tabindex="0" role="region" aria-labelledby="compare-title"><table class="table"><thead><tr><th></th><th scope="col">${esc(t('commerce.value'))}</th><th scope="col">${esc(t('commerce.reference'))}</th><th scope="col">${esc(t('commerce.change'))}</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function drawHeat(p) {
  const max = Math.max(1, ...p.heat_map.flat().map((c) => c.mean ?? 0));
  const days = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
  const head = Array.from({ length: 24 }, (_, h) => `<th scope="col">${h}</th>`).join('');
  const rows = p.heat_map.map((row, d) => `<tr><th scope="row">${esc(dayName(days[d]))}</th>${row.map((c) => {
    const a = c.mean === null ? 0 : 0.08 + 0.92 * (c.mean / max);
    // The blended colour, and the text (black or white) that contrasts most with it (WCAG).
    const rgb = [31, 95, 168].map((v) => Math.round(255 - a * (255 - v)));
    const lum = rgb.map((v) => { const x = v / 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    const L = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    const fg = (L + 0.05) / 0.05 >= 1.05 / (L + 0.05) ? '#000' : '#fff';
    return `<td style="background:rgb(${rgb.join(',')});color:${fg}" title="${esc(num(c.mean, 0))}">${c.mean === null ? '—' : num(c.mean, 0)}</td>`;
  }).join('')}</tr>`).join('');
  $('heat').innerHTML = `<div class="table-wrap" tabindex="0" role="region" aria-labelledby="heat-title"><table class="table heat"><caption>${esc(t('commerce.heat_caption'))}</caption><thead><tr><th></th>${head}</tr></thead><tbody>${rows}</tbody></table></div>`;
}

function drawRanking() {
  const rows = ranking.places.map((p, i) => `<tr><td>${i + 1}</td><th scope="row"><a href="/commerce?site=${encodeURIComponent(p.site)}">${esc(p.name)}</a></th><td>${num(p.per_day, 0)}</td><td>${num(p.index, 0)}</td><td>${p.days_missing}</td></tr>`).join('');
  $('ranking').innerHTML = `<div class="table-wrap" tabindex="0" role="region" aria-labelledby="ranking-title"><table class="table"><thead><tr><th scope="col">${esc(t('commerce.rank'))}</th><th scope="col">${esc(t('commerce.place'))}</th><th scope="col">${esc(t('commerce.per_day'))}</th><th scope="col">${esc(t('commerce.index'))}</th><th scope="col">${esc(t('commerce.days_missing'))}</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** The places' weekly index over the last year, one line each (100 = each place's mean). */
async function drawIndex() {
  const data = await api('/api/v1/commerce/index');
  const W = 720, H = 240, L = 40, R = 24, T = 10, B = 26;
  const all = data.places.flatMap((p) => p.buckets.map((b) => b.index)).filter((v) => v !== null);
  if (!all.length) { $('index').innerHTML = `<p>${esc(t('commerce.none'))}</p>`; return; }
  const lo = Math.min(80, ...all), hi = Math.max(120, ...all);
  const n = Math.max(2, ...data.places.map((p) => p.buckets.length)) - 1;
  const x = (i) => L + ((W - L - R) * i) / n;
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const colours = ['#1f5fa8', '#b3261e', '#2e7d32', '#6a1b9a', '#ef6c00', '#00838f'];
  const lines = data.places.map((p, k) => {
    let d = '', pen = false;
    p.buckets.forEach((b, i) => {
      if (b.index === null) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)},${y(b.index).toFixed(1)} `;
      pen = true;
    });
    return `<path d="${d}" fill="none" stroke="${colours[k % colours.length]}" stroke-width="2"/>`;
  }).join('');
  const first = data.places[0]?.buckets[0]?.start ?? '';
  const last = data.places[0]?.buckets.at(-1)?.start ?? '';
  const legend = data.places.map((p, k) => `<span class="key" style="color:${colours[k % colours.length]}">— ${esc(p.name)}</span>`).join(' ');
  $('index').innerHTML = `<p>${esc(t('commerce.index_intro'))}</p><figure class="day-chart"><svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(t('commerce.index_title'))}">
<line x1="${L}" y1="${y(100)}" x2="${W - R}" y2="${y(100)}" stroke="#888" stroke-dasharray="3 3"/>
<text x="${L - 6}" y="${y(100) + 4}" font-size="11" text-anchor="end">100</text>
<text x="${L - 6}" y="${y(hi) + 4}" font-size="11" text-anchor="end">${num(hi, 0)}</text>
<text x="${L - 6}" y="${y(lo) + 4}" font-size="11" text-anchor="end">${num(lo, 0)}</text>
<text x="${L}" y="${H - 8}" font-size="11">${esc(first)}</text><text x="${W - R}" y="${H - 8}" font-size="11" text-anchor="end">${esc(last)}</text>
${lines}</svg><figcaption>${legend}</figcaption></figure>`;
}

/** DELETE on this server with the session's CSRF token. */
async function remove(path) {
  const r = await fetch(path, { method: 'DELETE', credentials: 'same-origin', headers: { 'X-CSRF-Token': settings.csrf ?? '' } });
  if (!r.ok) {
    let detail = `${r.status}`;
    try { detail = (await r.json()).detail ?? detail; } catch { /* not JSON */ }
    throw new Error(detail);
  }
}

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const WEEKDAY_NAMES = { mon: 'monday', tue: 'tuesday', wed: 'wednesday', thu: 'thursday', fri: 'friday', sat: 'saturday', sun: 'sunday' };
const placeOptions = (selected) => ranking.places.map((p) => `<option value="${esc(p.site)}"${p.site === selected ? ' selected' : ''}>${esc(p.name)}</option>`).join('');

/** Operators who may modify declare events and interventions here. */
function eventForm(current) {
  if (!may('modify')) return '';
  return `<form id="new-event" class="explorer declare"><h3>${esc(t('commerce.declare_event'))}</h3>
<label>${esc(t('commerce.kind'))} <select name="kind"><option value="event">${esc(t('commerce.kind_event'))}</option><option value="market">${esc(t('commerce.kind_market'))}</option></select></label>
<label>${esc(t('commerce.name'))} <input name="name" required maxlength="200"></label>
<label>${esc(t('commerce.place'))} <select name="where">${placeOptions(current)}${communes.map(([c, name]) => `<option value="commune:${esc(c)}">${esc(t('commerce.commune_option', { name }))}</option>`).join('')}</select></label>
<label>${esc(t('commerce.first_day'))} <input type="date" name="first_day" required></label>
<label>${esc(t('commerce.last_day'))} <input type="date" name="last_day"></label>
<fieldset><legend>${esc(t('commerce.market_days'))}</legend>${WEEKDAYS.map((w) => `<label><input type="checkbox" name="weekdays" value="${w}"> ${esc(dayName(WEEKDAY_NAMES[w]))}</label>`).join(' ')}</fieldset>
<button type="submit">${esc(t('commerce.declare'))}</button><p class="error" role="alert" hidden></p></form>`;
}

function interventionForm() {
  if (!may('modify')) return '';
  return `<form id="new-intervention" class="explorer declare"><h3>${esc(t('commerce.declare_intervention'))}</h3>
<label>${esc(t('commerce.place'))} <select name="site">${placeOptions()}</select></label>
<label>${esc(t('commerce.name'))} <input name="name" required maxlength="200"></label>
<label>${esc(t('commerce.description'))} <input name="description" maxlength="4000"></label>
<label>${esc(t('commerce.start_day'))} <input type="date" name="start_day" required max="${esc(settings.today)}"></label>
<label>${esc(t('commerce.controls'))} <select name="controls" multiple size="4">${placeOptions()}</select></label>
<button type="submit">${esc(t('commerce.declare'))}</button><p class="error" role="alert" hidden></p></form>`;
}

/** Send a form's declaration; its error shown in the form, nothing lost. */
function onSubmit(form, build, path, done) {
  form?.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const err = form.querySelector('.error');
    try {
      await post(path, build(new FormData(form)));
      err.hidden = true;
      announce(t('commerce.declared'));
      await done();
    } catch (e) {
      err.hidden = false;
      err.textContent = e.message;
    }
  });
}

async function drawEvents() {
  const a = area();
  const all = await api(`/api/v1/commerce/events?${query({ site: a.site })}`);
  const events = a.commune ? all.filter((e) => e.commune === a.commune) : all;
  const fmt = (d) => new Date(`${d}T12:00:00`).toLocaleDateString(settings.lang === 'en' ? 'en-GB' : 'fr-FR');
  const items = events.map((e) => {
    const when = e.first_day === e.last_day ? fmt(e.first_day) : `${fmt(e.first_day)} → ${fmt(e.last_day)}`;
    const days = e.weekdays.length ? ` (${esc(t('commerce.weekdays', { days: e.weekdays.map((w) => dayName({ mon: 'monday', tue: 'tuesday', wed: 'wednesday', thu: 'thursday', fri: 'friday', sat: 'saturday', sun: 'sunday' }[w])).join(', ') }))})` : '';
    const del = may('modify') ? ` <button type="button" class="link" data-remove-event="${e.id}">${esc(t('commerce.remove'))}</button>` : '';
    return `<li><strong>${esc(e.name)}</strong> — ${esc(when)}${days} · ${esc(e.site ?? t('commerce.whole_commune'))}${del}</li>`;
  });
  $('events').innerHTML = (items.length ? `<ul>${items.join('')}</ul>` : `<p>${esc(t('commerce.none'))}</p>`) + eventForm(a.site);
  for (const b of document.querySelectorAll('[data-remove-event]')) {
    b.addEventListener('click', async () => {
      try { await remove(`/api/v1/commerce/events/${b.dataset.removeEvent}`); await drawEvents(); } catch (e) { announce(e.message); }
    });
  }
  onSubmit($('new-event'), (f) => {
    const where = f.get('where');
    const body = { kind: f.get('kind'), name: f.get('name'), first_day: f.get('first_day'), weekdays: f.getAll('weekdays') };
    if (f.get('last_day')) body.last_day = f.get('last_day');
    if (where.startsWith('commune:')) body.commune = where.slice(8); else body.site = where;
    return body;
  }, '/api/v1/commerce/events', drawEvents);
}

async function drawStudies() {
  const list = await api('/api/v1/commerce/interventions');
  const parts = [];
  for (const i of list) {
    const base = `/api/v1/commerce/interventions/${i.id}/study`;
    let result;
    try {
      const s = await api(base);
      const e = s.effect;
      result = `<p class="study-result"><strong>${esc(t('commerce.study_result', { change: pct(e.change_pct), lo: pct(e.interval_pct[0]), hi: pct(e.interval_pct[1]), visitors: num(e.visitors_per_day, 0) }))}</strong></p>
${s.design === 'last_year' ? `<p><em>${esc(t('commerce.weaker'))}</em></p>` : ''}${s.caveats.length ? `<ul>${s.caveats.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>` : ''}`;
    } catch (err) {
      result = `<p>${esc(t('commerce.study_error', { detail: err.message }))}</p>`;
    }
    const since = t('commerce.since', { date: i.start_day, controls: i.controls.length ? i.controls.join(', ') : t('commerce.itself') });
    parts.push(`<article class="study" data-id="${i.id}"><h3>${esc(i.name)} — ${esc(i.site)}</h3><p>${esc(i.description)}</p><p>${esc(since)}</p>${result}
<p><a href="${base}?format=html">${esc(t('commerce.report'))}</a> · <a href="${base}?format=csv">${esc(t('commerce.csv'))}</a></p></article>`);
  }
  $('studies').innerHTML = (parts.length ? parts.join('') : `<p>${esc(t('commerce.none'))}</p>`) + interventionForm();
  onSubmit($('new-intervention'), (f) => ({
    site: f.get('site'), name: f.get('name'), description: f.get('description') ?? '', start_day: f.get('start_day'), controls: f.getAll('controls'),
  }), '/api/v1/commerce/interventions', drawStudies);
}

async function drawPlace() {
  const date = $('date').value || settings.today;
  const [profile, compare] = await Promise.all([
    api(`/api/v1/commerce/profile?${query({ ...area(), date })}`),
    // A day under way is not compared with whole days: the comparisons are of the last whole day.
    api(`/api/v1/commerce/compare?${query({ ...area(), date: date === settings.today ? yesterday() : date })}`),
  ]);
  drawToday(profile);
  drawCompare(compare);
  drawHeat(profile);
  await drawEvents();
}

drawRanking();
select.addEventListener('change', () => drawPlace());
$('date').addEventListener('change', () => drawPlace());
await Promise.all([drawPlace(), drawStudies(), drawIndex()]);
document.body.dataset.ready = '1';
