// Fleet health for operators: devices by state and kind, silent devices, low batteries, weak
// radio links, devices reporting faults, anomalies the forecasts found, quality flags and dead
// letters. Refreshed every 30 s.

import { t, esc, api, when, num, kindName, propName, anomalyText, anomalyHref } from './common.js';

const link = (id) => `<a href="/supervision/devices/${encodeURIComponent(id)}">${esc(id)}</a>`;
const duration = (s) => (s === null || s === undefined ? '—' : s >= 86400 ? `${num(s / 86400, 1)} ${t('unit.days')}` : s >= 3600 ? `${num(s / 3600, 1)} h` : `${num(s / 60, 0)} min`);

function table(id, caption, head, rows, empty) {
  if (!rows.length) return `<section aria-labelledby="${id}"><h2 id="${id}">${esc(caption)} <span class="count">0</span></h2><p class="empty">${esc(empty)}</p></section>`;
  return `<section aria-labelledby="${id}"><h2 id="${id}">${esc(caption)} <span class="count">${rows.length}</span></h2>
    <div class="table-wrap"><table class="table"><caption class="sr-only">${esc(caption)}</caption><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')}</tbody></table></div></section>`;
}

// Pedestrian counters whose day is not believable against their typical day (the commerce
// observatory's check): zeros for hours when people usually pass, or far below the usual.
function counterProblem(p) {
  if (p.problem === 'zeros') return t('fleet.counter_zeros', { from: p.from_hour, to: p.to_hour + 1, usual: num(p.usual, 0) });
  return t('fleet.counter_far_below', { counted: num(p.counted, 0), usual: num(p.usual, 0) });
}

async function load() {
  // Today's hours that are over, and yesterday's whole day.
  const yesterday = new Date(Date.now() - 86_400_000).toLocaleDateString('en-CA', { timeZone: 'Europe/Paris' });
  const none = { counters: [] };
  const [f, today, before, anomalies] = await Promise.all([
    api('/api/v1/fleet'),
    api('/api/v1/commerce/counters').catch(() => none),
    api(`/api/v1/commerce/counters?date=${yesterday}`).catch(() => none),
    api('/api/v1/anomalies').catch(() => []),
  ]);
  const toCheck = [today, before].flatMap((d) => d.counters.filter((c) => c.problems.length).map((c) => ({ ...c, date: d.date })));
  const states = ['online', 'offline', 'never_seen', 'flagged', 'faulty'];
  const cards = [`<div class="card"><p class="card-label">${esc(t('fleet.total'))}</p><p class="card-value">${num(f.counts.total ?? 0, 0)}</p></div>`,
    ...states.map((s) => `<div class="card state-card state-${s}"><p class="card-label">${esc(t(`status.${s}`))}</p><p class="card-value" data-count="${s}">${num(f.counts[s] ?? 0, 0)}</p></div>`)];
  const kinds = Object.entries(f.by_kind).map(([k, c]) => [esc(kindName(k)), num(c.total ?? 0, 0), ...states.map((s) => num(c[s] ?? 0, 0))]);
  const st = f.storage;
  const gib = (b) => `${num(b / 1073741824, 1)} GiB`;
  const storageOk = st.accepting_writes && !st.wal_failing && !st.last_error;
  const storage = `<section aria-labelledby="storage"><h2 id="storage">${esc(t('fleet.storage'))}</h2>
    <p class="${storageOk ? 'storage-ok' : 'error'}" ${storageOk ? '' : 'role="alert"'} data-storage="${storageOk ? 'ok' : 'refusing'}">${esc(
      !st.accepting_writes ? t('fleet.storage_full', { free: gib(st.free_bytes), reserve: gib(st.reserve_bytes) })
        : st.wal_failing ? t('fleet.storage_failing')
          : t('fleet.storage_ok', { free: gib(st.free_bytes), total: gib(st.total_bytes) }))}</p>
    ${st.unflushed_points ? `<p class="error">${esc(t('fleet.storage_unflushed', { n: num(st.unflushed_points, 0) }))}</p>` : ''}
    ${st.last_error ? `<p class="error">${esc(t('fleet.storage_error'))} ${esc(st.last_error)}</p>` : ''}</section>`;
  document.getElementById('fleet').innerHTML = `<div class="cards">${cards.join('')}</div>
    ${storage}
    ${table('by-kind', t('fleet.by_kind'), [t('fleet.kind'), t('fleet.total'), ...states.map((s) => t(`status.${s}`))], kinds, '')}
    ${table('silent', t('fleet.silent'), [t('device.id'), t('device.kind'), t('device.site'), t('device.last_seen'), t('fleet.silent_for')],
      f.silent.map((d) => [link(d.id), esc(kindName(d.kind)), esc(d.site ?? '—'), esc(when(d.last_seen)), esc(duration(d.silent_for_s))]), t('fleet.none_silent'))}
    ${table('faulty', t('fleet.faulty'), [t('device.id'), t('device.kind'), t('device.site'), t('device.property'), t('device.value'), t('device.time')],
      f.faulty.map((d) => [link(d.id), esc(kindName(d.kind)), esc(d.site ?? '—'), esc(propName(d.property)), esc(d.value), esc(when(d.time))]), t('fleet.none_faulty'))}
    ${table('quality', t('fleet.quality'), [t('device.id'), t('device.property'), t('fleet.stuck'), t('fleet.jump'), t('fleet.out_of_range'), t('fleet.last_flag')],
      f.quality_flags.map((q) => [link(q.device), esc(propName(q.property)), num(q.stuck, 0), num(q.jump, 0), num(q.out_of_range, 0), esc(when(q.last))]), t('fleet.none_quality'))}
    ${table('anomalies', t('fleet.anomalies'), [t('device.id'), t('device.site'), t('device.property'), t('anomaly.kind'), t('anomaly.since'), t('fleet.problem')],
      anomalies.map((a) => [link(a.device), esc(a.site ?? '—'), esc(propName(a.property)), `<a href="${esc(anomalyHref(a))}">${esc(t(`anomaly.${a.kind}`))}</a>`, esc(when(a.from)), esc(anomalyText(a))]), t('fleet.none_anomalies'))}
    ${table('counters', t('fleet.counters'), [t('device.id'), t('device.site'), t('fleet.day'), t('fleet.problem')],
      toCheck.map((c) => [link(c.device), esc(c.site ?? '—'), esc(c.date), esc(c.problems.map(counterProblem).join(' ; '))]), t('fleet.none_counters'))}
    ${table('battery', t('fleet.battery', { pct: f.thresholds.battery_pct }), [t('device.id'), t('device.kind'), t('device.site'), t('prop.battery'), t('device.time')],
      f.low_battery.map((d) => [link(d.id), esc(kindName(d.kind)), esc(d.site ?? '—'), `${num(d.battery, 0)} %`, esc(when(d.time))]), t('fleet.none_battery'))}
    ${table('radio', t('fleet.radio'), [t('device.id'), t('device.kind'), t('device.site'), 'RSSI (dBm)', 'SNR (dB)'],
      f.weak_radio.map((d) => [link(d.id), esc(kindName(d.kind)), esc(d.site ?? '—'), num(d.rssi, 0), num(d.snr, 1)]), t('fleet.none_radio'))}
    ${table('review', t('fleet.sites_to_review'), [t('device.site'), t('fleet.commune')],
      (f.sites_to_review ?? []).map((s) => [esc(s.id), esc(s.commune)]), t('fleet.none_to_review'))}
    ${table('rejects', t('fleet.rejects'), [t('fleet.received'), t('fleet.source'), t('fleet.reason')],
      f.dead_letters.recent.map((r) => [esc(when(r.received_at)), esc(r.source), esc(r.reason)]), t('fleet.none_rejects'))}
    <p class="updated">${esc(t('map.updated_at'))} ${esc(when(f.now))}</p>`;
  document.body.dataset.ready = '1';
}

load().catch((e) => { document.getElementById('fleet').innerHTML = `<p class="error" role="alert">${esc(t('error.load'))}: ${esc(e.message)}</p>`; });
setInterval(() => load().catch(() => {}), 30_000);
