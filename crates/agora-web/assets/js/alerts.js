// The alerts area: alerts by state and severity, refreshed every 3 s; acknowledge (with a comment)
// and resolve by hand; each alert's action attempts on demand.

import { settings, t, esc, api, post, when, num, announce, may } from './common.js';

const form = document.getElementById('alert-filters');
const rows = document.getElementById('alert-rows');
const SEVERITY = { critical: 3, warning: 2, info: 1 };

async function load() {
  const f = new FormData(form);
  const q = new URLSearchParams({ state: f.get('state'), limit: '500' });
  const { alerts } = await api(`/api/v1/alerts?${q}`);
  const sev = f.get('severity');
  const list = alerts.filter((a) => !sev || a.severity === sev)
    .sort((a, b) => (SEVERITY[b.severity] ?? 0) - (SEVERITY[a.severity] ?? 0));
  rows.innerHTML = list.length ? list.map((a) => `<tr data-alert="${a.id}" data-state="${esc(a.state)}">
      <td><span class="sev sev-${esc(a.severity)}">${esc(t(`severity.${a.severity}`))}</span></td>
      <th scope="row">${esc(a.message)}<br><span class="muted">${esc(a.rule)}</span></th>
      <td>${a.device ? `<a href="/supervision/devices/${encodeURIComponent(a.device)}">${esc(a.device)}</a>` : ''}${a.site ? `<br><span class="muted">${esc(a.site)}</span>` : ''}</td>
      <td>${esc(when(a.opened_at))}${a.resolved_at ? ` → ${esc(when(a.resolved_at))}` : ''}</td>
      <td>${a.value === null ? '—' : num(a.value)}</td>
      <td>${esc(t(`alerts.${a.state}_one`))}${a.acknowledged_by ? `<br><span class="muted">${esc(a.acknowledged_by)}${a.ack_comment ? ` : « ${esc(a.ack_comment)} »` : ''}</span>` : ''}</td>
      <td class="actions">${a.state === 'open' && may('modify') ? `<button type="button" data-ack="${a.id}">${esc(t('alerts.ack'))}</button>` : ''}
        ${a.state !== 'resolved' && may('modify') ? `<button type="button" class="secondary" data-resolve="${a.id}">${esc(t('alerts.resolve'))}</button>` : ''}
        <button type="button" class="link" data-log="${a.id}">${esc(t('alerts.log'))}</button></td></tr>`).join('')
    : `<tr><td colspan="7" class="empty">${esc(t('alerts.none'))}</td></tr>`;
  document.body.dataset.ready = '1';
}

rows.addEventListener('click', async (e) => {
  const b = e.target.closest('button');
  if (!b) return;
  try {
    if (b.dataset.ack) {
      const comment = prompt(t('alerts.comment_prompt')) ?? '';
      await post(`/api/v1/alerts/${b.dataset.ack}/acknowledge`, { comment });
      announce(t('alerts.acked'));
    } else if (b.dataset.resolve) {
      await post(`/api/v1/alerts/${b.dataset.resolve}/resolve`, {});
      announce(t('alerts.resolved_done'));
    } else if (b.dataset.log) {
      const { deliveries } = await api(`/api/v1/alerts/${b.dataset.log}`);
      const tr = b.closest('tr');
      const text = deliveries.length
        ? deliveries.map((d) => `${when(d.at)} · ${d.event} · ${d.action} ${d.target} · #${d.attempt} ${d.ok ? '✔' : '✘'} ${d.detail}`).join('\n')
        : t('alerts.no_log');
      tr.insertAdjacentHTML('afterend', `<tr class="log"><td colspan="7"><pre>${esc(text)}</pre></td></tr>`);
      return;
    }
    await load();
  } catch (err) {
    announce(err.message);
    alert(err.message);
  }
});
form.addEventListener('change', () => load());
load().catch((e) => { rows.innerHTML = `<tr><td colspan="7" class="error">${esc(e.message)}</td></tr>`; });
setInterval(() => { if (!document.querySelector('tr.log')) load().catch(() => {}); }, 3000);

// ---- Rules: the list, a regulatory template to enable with a scope, deletion. Changing rules
// needs an admin token; others see the list and the server's refusal.

const rulesBox = document.getElementById('rules');
const message = document.getElementById('rule-message');

function scopeText(s) {
  return Object.entries(s ?? {}).map(([k, v]) => `${k} = ${v}`).join(', ') || t('rules.everywhere');
}

// What a rule does besides raising the alert: "webhook, email".
function actionsText(actions) {
  const kinds = [...new Set((actions ?? []).map((a) => Object.keys(a)[0]))];
  return kinds.length ? ` → ${kinds.join(', ')}` : '';
}

async function loadRules() {
  const [{ rules }, { templates }] = await Promise.all([api('/api/v1/rules'), api('/api/v1/rules/templates')]);
  rulesBox.innerHTML = rules.length ? `<table class="table"><caption class="sr-only">${esc(t('rules.title'))}</caption>
    <thead><tr><th scope="col">${esc(t('rules.id'))}</th><th scope="col">${esc(t('alerts.severity'))}</th><th scope="col">${esc(t('rules.scope_kind'))}</th><th scope="col">${esc(t('rules.origin'))}</th><th scope="col"><span class="sr-only">${esc(t('alerts.actions'))}</span></th></tr></thead>
    <tbody>${rules.map((r) => `<tr><th scope="row">${esc(r.name || r.id)}<br><span class="muted">${esc(r.id)}${r.enabled ? '' : ' (off)'}${actionsText(r.actions)}</span></th>
      <td><span class="sev sev-${esc(r.severity)}">${esc(t(`severity.${r.severity}`))}</span></td><td>${esc(scopeText(r.scope))}</td><td>${esc(r.origin)}</td>
      <td>${r.origin === 'api' && may('delete') ? `<button type="button" class="secondary" data-delete="${esc(r.id)}">${esc(t('rules.delete'))}</button>` : ''}</td></tr>`).join('')}</tbody></table>`
    : `<p class="empty">${esc(t('rules.none'))}</p>`;
  const sel = document.getElementById('template');
  if (!sel.options.length) sel.innerHTML = templates.map((x) => `<option value="${esc(x.id)}">${esc(x.name)}</option>`).join('');
}

rulesBox.addEventListener('click', async (e) => {
  const id = e.target.closest('button')?.dataset.delete;
  if (!id) return;
  try {
    const r = await fetch(`/api/v1/rules/${encodeURIComponent(id)}`, { method: 'DELETE', credentials: 'same-origin', headers: { 'X-CSRF-Token': settings.csrf ?? '' } });
    if (!r.ok) throw new Error((await r.json()).detail);
    message.textContent = t('rules.deleted', { id });
    await loadRules();
  } catch (err) { message.textContent = err.message; }
});

// Making rules is for roles that modify; the others read them.
document.getElementById('new-rule').hidden = !may('modify');
document.getElementById('new-rule').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const template = f.get('template');
  const body = { template };
  const kind = f.get('scope_kind');
  const value = String(f.get('scope_value') ?? '').trim();
  if (kind && value) {
    body.scope = { [kind]: value };
    body.id = `${template}-${value}`.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').slice(0, 64);
  }
  const actions = [];
  const hook = String(f.get('webhook') ?? '').trim();
  if (hook) actions.push({ webhook: { url: hook } });
  const to = String(f.get('email') ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  if (to.length) actions.push({ email: { to } });
  if (actions.length) body.actions = actions;
  try {
    const r = await post('/api/v1/rules', body);
    message.textContent = t('rules.created', { id: r.id });
    await loadRules();
  } catch (err) { message.textContent = err.message; }
});

loadRules().catch((e) => { rulesBox.innerHTML = `<p class="error">${esc(e.message)}</p>`; });
