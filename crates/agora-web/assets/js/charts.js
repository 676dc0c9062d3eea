// Charts with uPlot: the server sends at most ~2,000 buckets per series with min, max and mean,
// drawn as a band (so peaks stay visible) around the mean line. Every chart has a text
// alternative: a summary in its caption and, on demand, the table of its values.

import { settings, t, esc, num, unit, propName, api, downloadCsv, when, methodName } from './common.js';

// Times in the page's language, on the 24-hour clock, in Paris time ("sam. 28/11", "18:00"):
// uPlot's own formats are English.
const locale = settings.lang === 'en' ? 'en-GB' : 'fr-FR';
const fmt = (o) => new Intl.DateTimeFormat(locale, { timeZone: 'Europe/Paris', hourCycle: 'h23', ...o });
const DAY = fmt({ weekday: 'short', day: '2-digit', month: '2-digit' });
const HOUR = fmt({ hour: '2-digit', minute: '2-digit' });
const FULL = fmt({ weekday: 'short', day: '2-digit', month: '2-digit', hour: '2-digit', minute: '2-digit' });

/** The time axis: days when ticks are a day or more apart, else hours (days at midnight). */
const TIME_AXIS = {
  values: (_, splits, _axis, _space, incr) => splits.map((v) => {
    const d = new Date(v * 1000);
    if (incr >= 86_400) return DAY.format(d);
    return HOUR.format(d) === '00:00' ? DAY.format(d) : HOUR.format(d);
  }),
};

/** The time series of the legend. */
const TIME_SERIES = { label: t('chart.time'), value: (_, v) => (v === null || v === undefined ? '—' : FULL.format(new Date(v * 1000))) };

const BAND_COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

function summary(d, u, property) {
  const vals = d.mean.filter((v) => v !== null && Number.isFinite(v));
  if (!vals.length) return t('chart.empty');
  const lo = Math.min(...d.min.filter(Number.isFinite));
  const hi = Math.max(...d.max.filter(Number.isFinite));
  const last = vals[vals.length - 1];
  const s = unit(u, property);
  return t('chart.summary', { min: `${num(lo)} ${s}`, max: `${num(hi)} ${s}`, last: `${num(last)} ${s}` });
}

function sizeOf(el) {
  return { width: Math.max(260, el.clientWidth || 600), height: 220 };
}

/** Keep a chart as wide as its box. */
function follow(el, plot) {
  const ro = new ResizeObserver(() => plot.setSize(sizeOf(el)));
  ro.observe(el);
}

/**
 * Draw one downsampled series (`/api/v1/chart` answer) into `el`; with `ahead` (forecast hours:
 * `{time, value, interval_80}`), the forecast after the last measure, dashed, with its 80 % band,
 * over at most the span the chart shows.
 */
export function drawBand(el, d, { title, colour = BAND_COLOURS[0], ahead = null } = {}) {
  const u = unit(d.unit, d.property);
  const name = title ?? propName(d.property);
  el.innerHTML = `<figure class="chart" data-property="${esc(d.property)}" data-points="${d.t.length}">
    <figcaption><strong>${esc(name)}</strong>${u ? ` <span class="unit">(${esc(u)})</span>` : ''}
    <span class="summary">${esc(summary(d, d.unit, d.property))}</span>${ahead?.length ? ` <span class="ahead">${esc(t('chart.ahead'))}</span>` : ''}</figcaption>
    <div class="plot" role="img" aria-label="${esc(`${name}: ${summary(d, d.unit, d.property)}`)}"></div>
    <details><summary>${esc(t('chart.table'))}</summary><div class="table-wrap"></div></details>
    <button type="button" class="link csv">${esc(t('chart.csv'))}</button></figure>`;
  const plotEl = el.querySelector('.plot');
  if (!d.t.length) {
    plotEl.innerHTML = `<p class="empty">${esc(t('chart.empty'))}</p>`;
    return null;
  }
  const fill = colour + '33';
  const series = [
    TIME_SERIES,
    { label: t('chart.min'), stroke: colour + '66', width: 1, points: { show: false }, value: (_, v) => num(v) },
    { label: t('chart.max'), stroke: colour + '66', width: 1, points: { show: false }, value: (_, v) => num(v) },
    { label: t('chart.mean'), stroke: colour, width: 2, points: { show: false }, value: (_, v) => num(v) },
  ];
  let data = [d.t, d.min, d.max, d.mean];
  const bands = [{ series: [2, 1], fill }];
  const last = d.t[d.t.length - 1];
  const span = last - d.t[0];
  const next = (ahead ?? []).map((h) => ({ ...h, ts: Date.parse(h.time) / 1000 }))
    .filter((h) => h.ts > last && h.ts - last <= Math.max(span, 3600) && h.value !== null);
  if (next.length) {
    // The forecast joins the last mean measured; measures stop where it starts.
    const pad = next.map(() => null);
    const lastMean = d.mean[d.mean.length - 1];
    data = [[...d.t, ...next.map((h) => h.ts)], [...d.min, ...pad], [...d.max, ...pad], [...d.mean, ...pad],
      [...d.t.map((_, i) => (i === d.t.length - 1 ? lastMean : null)), ...next.map((h) => h.value)],
      [...d.t.map(() => null), ...next.map((h) => h.interval_80?.[0] ?? null)],
      [...d.t.map(() => null), ...next.map((h) => h.interval_80?.[1] ?? null)]];
    series.push(
      { label: t('forecast.forecast'), stroke: colour, width: 2, dash: [6, 4], points: { show: false }, value: (_, v) => num(v) },
      { label: '80 %', stroke: colour + '44', width: 1, points: { show: false }, value: (_, v) => num(v) },
      { label: '80 %', stroke: colour + '44', width: 1, points: { show: false }, value: (_, v) => num(v) },
    );
    bands.push({ series: [6, 5], fill: colour + '22' });
  }
  const plot = new uPlot({
    ...sizeOf(plotEl),
    series,
    bands,
    axes: [TIME_AXIS, { values: (_, vals) => vals.map((v) => num(v)), size: 60 }],
  }, data, plotEl);
  plotEl.dataset.ahead = String(next.length);
  follow(plotEl, plot);
  const details = el.querySelector('details');
  details.addEventListener('toggle', () => {
    if (!details.open || details.dataset.done) return;
    details.dataset.done = '1';
    const rows = d.t.map((ts, i) => `<tr><th scope="row">${esc(when(ts * 1000))}</th><td>${num(d.min[i])}</td><td>${num(d.mean[i])}</td><td>${num(d.max[i])}</td></tr>`);
    details.querySelector('.table-wrap').innerHTML = `<table class="table"><caption>${esc(name)}</caption><thead><tr><th scope="col">${esc(t('chart.time'))}</th><th scope="col">${esc(t('chart.min'))}</th><th scope="col">${esc(t('chart.mean'))}</th><th scope="col">${esc(t('chart.max'))}</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  });
  el.querySelector('.csv').addEventListener('click', () => {
    const rows = d.t.map((ts, i) => [new Date(ts * 1000).toISOString(), d.min[i], d.mean[i], d.max[i], d.count[i]]);
    downloadCsv(`${d.device ?? d.site}-${d.property}.csv`, ['time', 'min', 'mean', 'max', 'count'], rows);
  });
  return plot;
}

/** Fetch and draw the chart of a device's or a site's property over [from, to). */
export async function chart(el, { device, site, property, from = '-24h', to = 'now', title, colour, ahead }) {
  el.innerHTML = `<p class="loading">${esc(t('loading'))}</p>`;
  const q = new URLSearchParams({ property, from, to, points: '1500' });
  if (device) q.set('device', device);
  if (site) q.set('site', site);
  try {
    const d = await api(`/api/v1/chart?${q}`);
    // Up to now: the forecast after it, when there is one (a failed forecast leaves the chart be).
    const hours = ahead && to === 'now' ? await ahead().catch(() => null) : null;
    return drawBand(el, d, { title, colour, ahead: hours });
  } catch (e) {
    el.innerHTML = `<p class="error" role="alert">${esc(t('error.load'))}: ${esc(e.message)}</p>`;
    return null;
  }
}

/**
 * A forecast (`/api/v1/forecast` answer): the last 48 hours measured, then the forecast with its
 * 80 % and 95 % bands, and the backtest that chose the method, as a table beside the chart.
 */
export function drawForecast(el, f) {
  const name = propName(f.property);
  const pct = (v) => `${num(100 * v, 0)} %`;
  const rows = f.backtest.map((s) => `<tr${s.name === f.method ? ' class="chosen"' : ''}><th scope="row">${esc(methodName(s.method))}</th><td>${num(s.mase, 2)}</td><td>${num(s.mae, 2)}</td><td>${num(s.smape, 1)} %</td></tr>`).join('');
  const verdict = f.beats_naive ? t('forecast.beats', { method: methodName(f.method_detail) }) : t('forecast.naive');
  el.innerHTML = `<figure class="chart forecast" data-property="${esc(f.property)}">
    <figcaption><strong>${esc(t('forecast.chart', { name }))}</strong> <span class="summary">${esc(verdict)}
    ${esc(t('forecast.coverage', { c80: pct(f.coverage_80), c95: pct(f.coverage_95), n: f.origins }))}</span></figcaption>
    <div class="plot" role="img" aria-label="${esc(t('forecast.chart', { name }))}"></div>
    <details><summary>${esc(t('forecast.backtest'))}</summary><div class="table-wrap"><table class="table"><caption>${esc(t('forecast.backtest'))}</caption>
    <thead><tr><th scope="col">${esc(t('forecast.method'))}</th><th scope="col">MASE</th><th scope="col">MAE</th><th scope="col">sMAPE</th></tr></thead><tbody>${rows}</tbody></table></div></details></figure>`;
  const hours = [...f.recent, ...f.forecast];
  const ts = hours.map((h) => Date.parse(h.time) / 1000);
  const measured = hours.map((h, i) => (i < f.recent.length ? h.value : null));
  const pick = (k, j) => hours.map((h, i) => (i < f.recent.length ? null : h[k]?.[j] ?? null));
  // The forecast line starts at the last hour measured, so that the two join.
  const forecast = hours.map((h, i) => (i < f.recent.length - 1 ? null : h.value));
  const colour = BAND_COLOURS[0];
  const plotEl = el.querySelector('.plot');
  const plot = new uPlot({
    ...sizeOf(plotEl),
    series: [
      TIME_SERIES,
      { label: t('forecast.measured'), stroke: '#333', width: 2, points: { show: false }, value: (_, v) => num(v) },
      { label: t('forecast.forecast'), stroke: colour, width: 2, dash: [6, 4], points: { show: false }, value: (_, v) => num(v) },
      { label: '95 %', stroke: colour + '33', width: 1, points: { show: false }, value: (_, v) => num(v) },
      { label: '95 %', stroke: colour + '33', width: 1, points: { show: false }, value: (_, v) => num(v) },
      { label: '80 %', stroke: colour + '66', width: 1, points: { show: false }, value: (_, v) => num(v) },
      { label: '80 %', stroke: colour + '66', width: 1, points: { show: false }, value: (_, v) => num(v) },
    ],
    bands: [{ series: [4, 3], fill: colour + '22' }, { series: [6, 5], fill: colour + '44' }],
    axes: [TIME_AXIS, { values: (_, vals) => vals.map((v) => num(v)), size: 60 }],
  }, [ts, measured, forecast, pick('interval_95', 0), pick('interval_95', 1), pick('interval_80', 0), pick('interval_80', 1)], plotEl);
  follow(plotEl, plot);
  return plot;
}

/** Several series on one chart (the explorer): `series` = [{label, t: [s], v: [..]}]. */
export function drawMany(el, series, { u, property }) {
  const times = [...new Set(series.flatMap((s) => s.t))].sort((a, b) => a - b);
  const index = new Map(times.map((x, i) => [x, i]));
  const cols = series.map((s) => {
    const col = new Array(times.length).fill(null);
    s.t.forEach((x, i) => { col[index.get(x)] = s.v[i]; });
    return col;
  });
  el.innerHTML = '<div class="plot" role="img"></div>';
  const plotEl = el.querySelector('.plot');
  plotEl.setAttribute('aria-label', series.map((s) => s.label).join(', '));
  const plot = new uPlot({
    ...sizeOf(plotEl),
    series: [TIME_SERIES, ...series.map((s, i) => ({
      label: s.label, stroke: BAND_COLOURS[i % BAND_COLOURS.length], width: 2,
      points: { show: false }, spanGaps: false, value: (_, v) => `${num(v)} ${unit(u, property)}`,
    }))],
    axes: [TIME_AXIS, { values: (_, vals) => vals.map((v) => num(v)), size: 60 }],
  }, [times, ...cols], plotEl);
  follow(plotEl, plot);
  return { times, cols };
}
