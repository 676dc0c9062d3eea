// Administration: people (made, disabled, given a new password, logged out everywhere, erased),
// their open sessions, access tokens (revoked) and communes. What is listed is what the server
// lets this person see: everyone for the Métropole's administrators, their commune's for a
// commune's. Every change goes through the API, which checks it again.
import { settings, t, esc, api, post, send, when } from './common.js';

const message = document.getElementById('admin-message');
const me = settings.operator ?? {};

const roleText = (x) => `${t(`role.${x.role}`)}${x.domain ? ` — ${t(`domain.${x.domain}`)}` : ''}`;
const communeText = (c) => (c ? esc(c) : esc(t('admin.metropole')));

function table(caption, head, rows) {
  if (!rows.length) return `<p class="empty">${esc(t('admin.none'))}</p>`;
  return `<table class="table"><caption class="sr-only">${esc(caption)}</caption><thead><tr>${head.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

async function load() {
  const [{ people, sessions }, { tokens }, { communes }] = await Promise.all([
    api('/api/v1/people'), api('/api/v1/tokens'), api('/api/v1/communes')]);
  document.getElementById('people').innerHTML = table(t('admin.people'),
    [t('admin.email'), t('admin.name'), t('admin.role'), t('admin.commune'), '', ''],
    people.map((p) => `<tr data-person="${esc(p.id)}" data-email="${esc(p.email)}"><th scope="row">${esc(p.email)}</th><td>${esc(p.name)}</td>
      <td>${esc(roleText(p))}</td><td>${communeText(p.commune)}</td>
      <td>${p.disabled ? esc(t('admin.disabled')) : ''}${p.locked_until ? ` ${esc(t('admin.locked'))}` : ''}${p.last_login ? `<br><span class="muted">${esc(t('admin.last_login'))} ${esc(when(p.last_login))}</span>` : ''}</td>
      <td class="actions"><button type="button" class="secondary" data-act="${p.disabled ? 'enable' : 'disable'}">${esc(t(p.disabled ? 'admin.enable' : 'admin.disable'))}</button>
        <button type="button" class="secondary" data-act="password">${esc(t('admin.reset'))}</button>
        <button type="button" class="secondary" data-act="logout">${esc(t('admin.logout'))}</button>
        <button type="button" class="secondary" data-act="erase">${esc(t('admin.erase'))}</button></td></tr>`));
  document.getElementById('sessions').innerHTML = table(t('admin.sessions'),
    [t('admin.name'), t('admin.commune'), 'opened'],
    sessions.map((s) => `<tr><th scope="row">${esc(s.actor)}</th><td>${communeText(s.commune === 'metropole' ? null : s.commune)}</td><td>${esc(when(s.opened))}</td></tr>`));
  document.getElementById('tokens').innerHTML = table(t('admin.tokens'),
    [t('admin.name'), t('admin.role'), t('admin.commune'), ''],
    tokens.map((k) => `<tr data-token="${esc(k.id)}"><th scope="row">${esc(k.name)}${k.device ? `<br><span class="muted">${esc(k.device)}</span>` : ''}${k.expires_at ? `<br><span class="muted">${esc(t('admin.expires'))} ${esc(when(k.expires_at))}</span>` : ''}</th>
      <td>${esc(roleText(k))}</td><td>${communeText(k.commune)}</td>
      <td><button type="button" class="secondary" data-act="revoke">${esc(t('admin.revoke'))}</button></td></tr>`));
  document.getElementById('communes').innerHTML = table(t('admin.communes'), ['INSEE', t('admin.name')],
    communes.map((c) => `<tr><th scope="row">${esc(c.insee)}</th><td>${esc(c.name)}</td></tr>`));
  const options = communes.map((c) => `<option value="${esc(c.insee)}">${esc(c.name)} (${esc(c.insee)})</option>`);
  if (me.commune === 'metropole') options.unshift(`<option value="metropole">${esc(t('admin.metropole'))}</option>`);
  for (const sel of [document.getElementById('person-commune'), ...document.querySelectorAll('select.commune-choice')]) {
    const chosen = sel.value;
    sel.innerHTML = options.join('');
    if (chosen) sel.value = chosen;
  }
  document.body.dataset.ready = '1';
}

document.querySelector('main').addEventListener('click', async (e) => {
  const b = e.target.closest('button[data-act]');
  if (!b) return;
  const row = b.closest('tr');
  const id = row.dataset.person ?? row.dataset.token;
  const email = row.dataset.email;
  try {
    switch (b.dataset.act) {
      case 'disable': await send('PATCH', `/api/v1/people/${id}`, { disabled: true }); break;
      case 'enable': await send('PATCH', `/api/v1/people/${id}`, { disabled: false }); break;
      case 'logout': await post(`/api/v1/people/${id}/logout`, {}); break;
      case 'password': {
        const password = window.prompt(t('admin.new_password', { email }));
        if (!password) return;
        await send('POST', `/api/v1/people/${id}/password`, { password });
        break;
      }
      case 'erase':
        if (!window.confirm(t('admin.erase_confirm', { email }))) return;
        await send('DELETE', `/api/v1/people/${id}`);
        break;
      case 'revoke': await send('DELETE', `/api/v1/tokens/${id}`); break;
      default: return;
    }
    message.textContent = t('admin.done');
    await load();
  } catch (err) { message.textContent = err.message; }
});

document.getElementById('new-person').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = { email: f.get('email'), name: f.get('name'), role: f.get('role'), commune: f.get('commune') };
  if (f.get('domain')) body.domain = f.get('domain');
  if (f.get('password')) body.password = f.get('password');
  try {
    await post('/api/v1/people', body);
    message.textContent = t('admin.created', { email: body.email });
    e.target.reset();
    await load();
  } catch (err) { message.textContent = err.message; }
});

// A token: its secret is shown this once, here.
document.getElementById('new-token').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const body = { name: f.get('name'), role: f.get('role'), commune: f.get('commune') };
  for (const k of ['domain', 'device']) if (f.get(k)) body[k] = f.get(k);
  if (f.get('expires_in_days')) body.expires_in_days = Number(f.get('expires_in_days'));
  try {
    const made = await post('/api/v1/tokens', body);
    document.getElementById('new-secret').textContent = t('admin.secret_once', { name: made.info.name, secret: made.token });
    e.target.reset();
    await load();
  } catch (err) { message.textContent = err.message; }
});

document.getElementById('new-commune')?.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  try {
    await post('/api/v1/communes', { insee: f.get('insee'), name: f.get('name') });
    message.textContent = t('admin.done');
    e.target.reset();
    await load();
  } catch (err) { message.textContent = err.message; }
});

load().catch((err) => { message.textContent = err.message; });
