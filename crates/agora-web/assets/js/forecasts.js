// Forecasts for operators: every series' model and how accurate its backtest found it, summed up
// by property (the median MASE against repeating yesterday, the share of series where a model beat
// it, the intervals' coverage), one by one, and the anomalies the models found.

import { t, esc, api, when, num, propName, methodName, anomalyText, anomalyHref } from './common.js';

const link = (id, property) => `<a href="/supervision/devices/${encodeURIComponent(id)}#forecast-${encodeURIComponent(property)}">${esc(id)}</a>`;
const pct = (v) => (v === null || v === undefined ? '—' : `${num(100 * v, 0)} %`);

function table(caption, head, rows, empty) {
  if (!rows.length) return `<p class="empty">${esc(empty)}</p>`;
  return `<div class="table-wrap" tabindex="0" role="region" aria-label="${esc(caption)}"><table class="table"><caption class="sr-only">${esc(caption)}</caption><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead>
    <tbody>${rows.map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${c}</th>` : `<td>${c}</td>`)).join('')}</tr>`).join('')}</tbody></table></div>`;
}

function median(xs) {
  const v = xs.filter((x) => x !== null && x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const [models, anomalies] = await Promise.all([api('/api/v1/forecast/models'), api('/api/v1/anomalies')]);

// By property.
const properties = [...new Set(models.map((m) => m.property))].sort();
const summary = properties.map((p) => {
  const ms = models.filter((m) => m.property === p);
  const ok = ms.filter((m) => m.method);
  return [esc(propName(p)), num(ms.length, 0), num(ok.length, 0),
    ok.length ? pct(ok.filter((m) => m.beats_naive).length / ok.length) : '—',
    num(median(ok.map((m) => m.mase)), 2), pct(median(ok.map((m) => m.coverage_80))), pct(median(ok.map((m) => m.coverage_95)))];
});
document.getElementById('accuracy').innerHTML = table(t('forecasts.accuracy'),
  [t('device.property'), t('forecasts.series'), t('forecasts.forecast'), t('forecasts.beats'), t('forecasts.median_mase'), t('forecasts.cov80'), t('forecasts.cov95')],
  summary, t('forecasts.none'));

document.getElementById('found').innerHTML = table(t('fleet.anomalies'),
  [t('device.id'), t('device.site'), t('device.property'), t('anomaly.kind'), t('anomaly.since'), t('fleet.problem')],
  anomalies.map((a) => [esc(a.device), esc(a.site ?? '—'), esc(propName(a.property)), `<a href="${esc(anomalyHref(a))}">${esc(t(`anomaly.${a.kind}`))}</a>`, esc(when(a.from)), esc(anomalyText(a))]),
  t('fleet.none_anomalies'));

// One by one, a property at a time.
const select = document.getElementById('property');
select.innerHTML = properties.map((p) => `<option value="${esc(p)}">${esc(propName(p))}</option>`).join('');
function drawModels() {
  const p = select.value;
  const rows = models.filter((m) => m.property === p).map((m) => [link(m.device, m.property), esc(m.site ?? '—'),
    m.method ? esc(methodName(m.method_detail)) : `<span class="empty">${esc(m.refused)}</span>`,
    num(m.mase, 2), m.smape === null ? '—' : `${num(m.smape, 1)} %`, pct(m.coverage_80), pct(m.coverage_95), esc(when(m.fitted))]);
  document.getElementById('models').innerHTML = table(t('forecasts.models'),
    [t('device.id'), t('device.site'), t('forecast.method'), 'MASE', 'sMAPE', t('forecasts.cov80'), t('forecasts.cov95'), t('forecasts.fitted')], rows, t('forecasts.none'));
}
select.addEventListener('change', drawModels);
if (properties.length) drawModels();
document.body.dataset.ready = '1';
