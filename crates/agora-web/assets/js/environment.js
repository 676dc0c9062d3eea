// The environment of a place or a commune, from agora's indicators (/api/v1/indicators/…): the
// official air-quality indices (ATMO of the day, the European index of the hour, labelled as
// such), the year against the EU limits and WHO guidelines, noise by day and period, the noisiest
// places, and heat by day (heatwave and tropical nights). Gaps are shown as gaps.

import { settings, t, esc, num, api, ATMO_COLOURS, EAQI_COLOURS } from './common.js';

const area = settings.commune ? `commune=${encodeURIComponent(settings.commune)}` : `site=${encodeURIComponent(settings.site)}`;
const box = document.getElementById('environment');


const day = new Intl.DateTimeFormat(settings.lang === 'en' ? 'en-GB' : 'fr-FR', { weekday: 'short', day: '2-digit', month: '2-digit', timeZone: 'Europe/Paris' });
const dayName = (iso) => day.format(new Date(`${iso}T12:00:00Z`));
const hourFmt = new Intl.DateTimeFormat(settings.lang === 'en' ? 'en-GB' : 'fr-FR', { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'Europe/Paris' });

function table(id, caption, head, rows, empty) {
  if (!rows.length) return `<section aria-labelledby="${id}"><h3 id="${id}">${esc(caption)}</h3><p class="empty">${esc(empty)}</p></section>`;
  return `<section aria-labelledby="${id}"><h3 id="${id}">${esc(caption)}</h3><div class="table-wrap" tabindex="0" role="region" aria-label="${esc(caption)}"><table class="table"><caption class="sr-only">${esc(caption)}</caption>
    <thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')}</tbody></table></div></section>`;
}

const badge = (colour, label) => `<span class="aq" style="background:${esc(colour)}">${esc(label)}</span>`;
const pollutants = (ps) => ps.map((p) => esc(t(`prop.${p}`))).join(', ');

async function section(fn) {
  try {
    return await fn();
  } catch (e) {
    return `<p class="error">${esc(t('error.load'))}: ${esc(e.message)}</p>`;
  }
}

const parts = await Promise.all([
  // Official indices: today's ATMO, this hour's EAQI.
  section(async () => {
    const [atmo, eaqi] = await Promise.all([
      api(`/api/v1/indicators/atmo?${area}&from=${settings.today}&to=${settings.today}`),
      api(`/api/v1/indicators/eaqi?${area}&from=now-3h`),
    ]);
    const cards = [];
    const d = atmo.days.at(-1);
    if (d?.index.class) {
      const colour = ATMO_COLOURS[d.index.class];
      cards.push(`<div class="card" style="border-color:${colour}"><p class="card-label">${esc(t('env.atmo'))}</p>
        <p class="card-value">${badge(colour, t(`atmo.${d.index.class}`))}</p>
        <p class="card-extra">${esc(t('env.responsible'))} ${pollutants(d.index.responsible)}${d.index.missing.length ? ` · ${esc(t('env.missing'))} ${pollutants(d.index.missing)}` : ''}</p></div>`);
    } else {
      cards.push(`<div class="card"><p class="card-label">${esc(t('env.atmo'))}</p><p class="card-value">—</p><p class="card-extra">${esc(t('env.not_enough'))}</p></div>`);
    }
    const h = eaqi.hours.at(-1);
    if (h?.index.class) {
      const colours = EAQI_COLOURS;
      cards.push(`<div class="card" style="border-color:${colours[h.index.class]}"><p class="card-label">${esc(t('env.eaqi'))} · ${esc(hourFmt.format(new Date(h.hour)))}</p>
        <p class="card-value">${badge(colours[h.index.class], t(`eaqi.${h.index.class}`))}</p>
        <p class="card-extra">${esc(t('env.responsible'))} ${pollutants(h.index.responsible)}</p></div>`);
    }
    return `<div class="cards">${cards.join('')}</div>`;
  }),
  // Heat, the last 7 days.
  section(async () => {
    const h = await api(`/api/v1/indicators/heat?${area}&to=${settings.today}`);
    const rows = h.days.filter((d) => d.hours > 0).map((d) => [
      esc(dayName(d.day)), num(d.t_min), num(d.t_max), num(d.heat_index_max), num(d.humidex_max, 0),
      d.status.canicule === null ? '—' : d.status.canicule ? `<strong class="warn">${esc(t('env.canicule'))}</strong>` : esc(t('env.no')),
      d.status.tropical_night === null ? '—' : esc(t(d.status.tropical_night ? 'env.yes' : 'env.no')),
    ]);
    return table('env-heat', t('env.heat'), [t('env.day'), 'T min (°C)', 'T max (°C)', t('env.heat_index'), 'Humidex', t('env.canicule'), t('env.tropical_night')], rows, t('env.no_heat'));
  }),
  // Heatwave episodes of the past twelve months: runs of canicule days.
  section(async () => {
    const from = new Date(Date.parse(`${settings.today}T12:00:00Z`) - 365 * 86400000).toISOString().slice(0, 10);
    const h = await api(`/api/v1/indicators/heat?${area}&from=${from}&to=${settings.today}`);
    const episodes = [];
    let prev = null;
    for (const d of h.days) {
      if (d.status.canicule) {
        const next = prev && Date.parse(`${d.day}T12:00:00Z`) - Date.parse(`${prev}T12:00:00Z`) === 86400000;
        if (next && episodes.length) episodes.at(-1).push(d); else episodes.push([d]);
        prev = d.day;
      } else {
        prev = null;
      }
    }
    const rows = episodes.reverse().map((e) => [
      esc(t('env.canicule_episode', { from: dayName(e[0].day), to: dayName(e.at(-1).day), n: e.length })),
      num(Math.max(...e.map((d) => d.t_max))), num(Math.max(...e.map((d) => d.t_min))),
      num(Math.max(...e.map((d) => d.status.ibm_max))), num(Math.max(...e.map((d) => d.status.ibm_min))),
    ]);
    return table('env-canicule', t('env.canicule_year'), [t('env.episode'), t('env.hottest_day'), t('env.warmest_night'), t('env.ibm_max'), t('env.ibm_min')], rows, t('env.no_canicule'));
  }),
  // Noise, the last 7 days.
  section(async () => {
    const n = await api(`/api/v1/indicators/noise?${area}&to=${settings.today}`);
    const rows = n.days.map((d) => [esc(dayName(d.day)), num(d.levels.ld), num(d.levels.le), num(d.levels.ln),
      d.levels.lden === null ? '—' : `${num(d.levels.lden)}${d.above_who_lden ? ` <span class="warn" title="${esc(t('env.who_note'))}">▲</span>` : ''}`,
      num(d.l90), d.night_events ?? '—']);
    return table('env-noise', t('env.noise'), [t('env.day'), 'Ld', 'Le', 'Ln', 'Lden', 'L90', t('env.night_events')], rows, t('env.no_noise'));
  }),
  // The year so far against the EU limits and the WHO guidelines.
  section(async () => {
    const y = await api(`/api/v1/indicators/air-statistics?${area}`);
    const rows = y.sensors.flatMap((s) => s.statistics.map((st) => [
      `${esc(s.device)} · ${esc(t(`prop.${s.pollutant}`))}`,
      esc(t(`stat.${st.name}`, { threshold: num(st.threshold, 0) })),
      num(st.value, st.name === 'annual_mean' ? 1 : 0) + (st.allowed !== null ? ` / ${st.allowed}` : ''),
      st.exceeded ? `<strong class="warn">${esc(t('env.exceeded'))}</strong>` : esc(t('env.respected')),
      esc(st.source) + (s.coverage_ok ? '' : ` · ${esc(t('env.low_coverage', { pct: num((100 * s.hours) / s.of, 0) }))}`),
    ]));
    return table('env-year', t('env.year', { year: y.year }), [t('env.sensor'), t('env.statistic'), t('env.value'), t('env.verdict'), t('env.source')], rows, t('env.no_air'));
  }),
]);

box.innerHTML = parts.join('');
if (settings.commune) {
  const r = await section(async () => {
    const k = await api(`/api/v1/indicators/noise/ranking?commune=${encodeURIComponent(settings.commune)}&to=${settings.today}&limit=10`);
    const rows = k.places.map((p) => [esc(p.id), num(p.levels.lden), num(p.levels.ln)]);
    return table('env-ranking', t('env.noisiest'), [t('env.place'), 'Lden', 'Ln'], rows, t('env.no_noise'));
  });
  box.insertAdjacentHTML('beforeend', r);
}
document.body.dataset.envReady = '1';
// On a commune's page this is the page's own script.
if (settings.commune) document.body.dataset.ready = '1';
