// The data explorer for business departments: one property, several devices, places or
// communes, an aggregation and a period; the series are compared on one chart and what is shown
// can be downloaded as CSV.

import { settings, t, esc, api, num, unit, propName, kindName, downloadCsv, announce } from './common.js';
import { drawMany } from './charts.js';

const MAX_SERIES = 8;
const MAX_BUCKETS = 1000;
const STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

const map = await api('/api/v1/map');
const units = map.units;
const form = document.getElementById('query');
const propSel = document.getElementById('property');
const items = document.getElementById('items');
const props = Object.keys(units).filter((p) => map.devices.some((d) => typeof d.latest?.[p]?.[1] === 'number' || typeof d.latest?.[p]?.[1] === 'boolean'));
propSel.innerHTML = props.sort((a, b) => propName(a).localeCompare(propName(b), settings.lang))
  .map((p) => `<option value="${esc(p)}">${esc(propName(p))}${unit(units[p], p) ? ` (${esc(unit(units[p], p))})` : ''}</option>`).join('');
propSel.value = props.includes('pm10') ? 'pm10' : props[0];

function fillItems() {
  const p = propSel.value;
  const scope = form.scope.value;
  const having = map.devices.filter((d) => d.latest?.[p]);
  let options;
  if (scope === 'device') {
    options = having.map((d) => [d.id, `${d.id} — ${kindName(d.kind)}${d.site ? ` · ${d.site}` : ''}`]);
  } else if (scope === 'site') {
    const ids = new Set(having.map((d) => d.site).filter(Boolean));
    options = map.sites.filter((s) => ids.has(s.id)).map((s) => [s.id, s.name]);
  } else {
    const ids = new Set(having.map((d) => d.commune).filter(Boolean));
    options = map.communes.filter((c) => ids.has(c.insee)).map((c) => [c.insee, `${c.name} (${c.insee})`]);
  }
  items.innerHTML = options.map(([v, l], i) => `<option value="${esc(v)}"${i === 0 ? ' selected' : ''}>${esc(l)}</option>`).join('');
}
fillItems();
propSel.addEventListener('change', fillItems);
form.addEventListener('change', (e) => { if (e.target.name === 'scope') fillItems(); });

function period(f) {
  const now = Date.now();
  const v = f.get('period');
  if (v === 'custom') {
    const from = new Date(f.get('from'));
    const to = new Date(f.get('to'));
    if (!(from < to)) throw new Error(t('range.invalid'));
    return [from.getTime(), to.getTime()];
  }
  const days = { '24h': 1, '7d': 7, '30d': 30, '365d': 365 }[v];
  return [now - days * 86400_000, now];
}

let shown = null;

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  const out = document.getElementById('result');
  const f = new FormData(form);
  try {
    const [from, to] = period(f);
    const need = (to - from) / 1000 / MAX_BUCKETS;
    const step = STEPS.find((s) => s >= need) ?? Math.ceil(need / 86400) * 86400;
    const chosen = [...items.selectedOptions].slice(0, MAX_SERIES);
    if (!chosen.length) throw new Error(t('explorer.pick'));
    const scope = f.get('scope');
    const p = f.get('property');
    out.innerHTML = `<p class="loading">${esc(t('loading'))}</p>`;
    const base = { property: p, from: new Date(from).toISOString(), to: new Date(to).toISOString(), every: `${step}s`, fn: f.get('fn') };
    if (step >= 86400) base.tz = 'Europe/Paris';
    const series = await Promise.all(chosen.map(async (o) => {
      const q = new URLSearchParams(base);
      if (scope === 'device') q.set('device', o.value);
      else { q.set('group_by', scope); q.set(scope, o.value); }
      const r = await api(`/api/v1/aggregate?${q}`);
      const pts = r.series[0]?.points ?? [];
      return { label: o.textContent, t: pts.map((x) => Date.parse(x.time) / 1000), v: pts.map((x) => x.value) };
    }));
    const chartBox = document.createElement('div');
    out.replaceChildren(chartBox);
    const caption = document.createElement('p');
    caption.className = 'muted';
    caption.textContent = t('explorer.caption', { property: propName(p), fn: t(`fn.${f.get('fn')}`), n: series.length, step: step >= 3600 ? `${num(step / 3600)} h` : `${num(step / 60)} min` });
    out.prepend(caption);
    const { times, cols } = drawMany(chartBox, series, { u: units[p], property: p });
    shown = { p, fn: f.get('fn'), labels: series.map((s) => s.label), times, cols };
    document.getElementById('csv').disabled = times.length === 0;
    announce(t('explorer.done', { n: times.length }));
  } catch (err) {
    out.innerHTML = `<p class="error" role="alert">${esc(err.message)}</p>`;
  }
});

document.getElementById('csv').addEventListener('click', () => {
  if (!shown) return;
  const rows = shown.times.map((x, i) => [new Date(x * 1000).toISOString(), ...shown.cols.map((c) => c[i])]);
  downloadCsv(`agora-${shown.p}-${shown.fn}.csv`, ['time', ...shown.labels], rows);
});
document.body.dataset.ready = '1';
