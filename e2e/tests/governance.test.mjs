// Tenancy and roles in the browser, against `agora demo` and its people: a commune's
// administrator logs in with a password and sees their commune only (the demo files the Vallée de
// la Torse under Le Tholonet), manages their commune's people on the administration page; an
// elected official reads without buttons to change anything; repeated wrong passwords lock an
// account.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, shot, ADMIN } from '../lib/harness.mjs';

let agora;
let b;

before(async () => {
  agora = await startAgora();
  b = await startBrowser();
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

async function login(email, password) {
  const context = await b.context.browser().newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(`${agora.base}/login`);
  await page.fill('#email', email);
  await page.fill('#token', password);
  const [answer] = await Promise.all([page.waitForNavigation(), page.click('form[action="/login"] button')]);
  return { page, context, status: answer.status() };
}

async function ready(page) {
  await page.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
}

test('the demo prints a person of each role', () => {
  for (const email of ['metropole.admin@ampmetropole.example', 'admin@aix.example', 'operateur@aix.example',
    'environnement@aix.example', 'elu@aix.example', 'admin@letholonet.example']) {
    assert.match(agora.people[email] ?? '', /^demo-[0-9a-f]{18}$/, email);
  }
});

test("a commune's administrator sees their commune only and manages its people", async () => {
  const all = await (await fetch(`${agora.base}/api/v1/devices`, { headers: { Authorization: `Bearer ${ADMIN}` } })).json();
  const total = all.devices.length;
  const torse = all.devices.filter((d) => d.site === 'vallee-de-la-torse').length;
  assert.ok(torse > 100 && total > torse, `${torse} of ${total}`);

  const { page, context, status } = await login('admin@aix.example', agora.people['admin@aix.example']);
  assert.equal(status, 200);
  assert.ok(page.url().endsWith('/supervision'), page.url());
  await ready(page);
  // The supervision map draws Aix's devices, not Le Tholonet's.
  assert.equal(await page.locator('path.dev').count(), total - torse);
  const seen = await page.evaluate(async () => (await (await fetch('/api/v1/devices')).json()).devices);
  assert.equal(seen.length, total - torse);
  assert.ok(seen.every((d) => d.commune === '13001'));

  await page.click('a[href="/admin"]');
  await ready(page);
  const listed = await page.locator('#people tbody th').allTextContents();
  assert.ok(listed.includes('elu@aix.example'), listed.join());
  assert.ok(!listed.some((e) => e.includes('letholonet')), listed.join());
  // Their commune only: no Métropole, no Le Tholonet to choose.
  const communes = await page.locator('#person-commune option').allTextContents();
  assert.deepEqual(communes, ['Aix-en-Provence (13001)']);
  await page.fill('#new-person input[name="email"]', 'agent.voirie@aix.example');
  await page.fill('#new-person input[name="name"]', 'Agent de voirie');
  await page.selectOption('#new-person select[name="role"]', 'operator');
  await page.fill('#new-person input[name="password"]', 'un mot de passe de démonstration');
  await page.click('#new-person button[type="submit"]');
  await page.waitForSelector('#people th:text("agent.voirie@aix.example")');
  // A token for a device of the commune: its secret shown once; no commune to make here.
  await page.fill('#new-token input[name="name"]', 'capteur de la place');
  await page.selectOption('#new-token select[name="role"]', 'device');
  await page.click('#new-token button[type="submit"]');
  await page.waitForFunction(() => document.getElementById('new-secret').textContent.includes('agora_'));
  // The list is drawn again once the token is made.
  await page.waitForSelector('#tokens th:has-text("capteur de la place")');
  assert.equal(await page.locator('#new-commune').count(), 0);
  await shot(page, '10-admin-commune');
  await context.close();

  // The person just made logs in with the password given.
  const op = await login('agent.voirie@aix.example', 'un mot de passe de démonstration');
  assert.equal(op.status, 200);
  assert.equal(await op.page.locator('a[href="/admin"]').count(), 0, 'operators manage nobody');
  await op.context.close();
});

test('an elected official reads without buttons to change anything', async () => {
  // An open alert in Aix for them to see.
  await fetch(`${agora.base}/api/v1/rules`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: 'e2e-gov', severity: 'warning', scope: { device: 'aq-rotonde-01' },
      condition: { threshold: { property: 'no2', op: '>', value: -1 } } }),
  });
  const { page, context } = await login('elu@aix.example', agora.people['elu@aix.example']);
  await page.goto(`${agora.base}/alerts`);
  await ready(page);
  // The rule opens at the device's next reading (once a minute), which the page's refresh shows.
  await page.waitForSelector('tr[data-state="open"]', { timeout: 120_000 });
  assert.equal(await page.locator('button[data-ack], button[data-resolve], button[data-delete]').count(), 0);
  assert.equal(await page.locator('#new-rule').isVisible(), false);
  const answer = await page.evaluate(async () => {
    const csrf = JSON.parse(document.getElementById('agora-settings').textContent).csrf;
    const a = await (await fetch('/api/v1/alerts?state=open')).json();
    const r = await fetch(`/api/v1/alerts/${a.alerts[0].id}/acknowledge`, { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
    return r.status;
  });
  assert.equal(answer, 403, 'and the server refuses what the page does not offer');
  await shot(page, '11-alerts-viewer');
  await context.close();
});

test('five wrong passwords lock an account', async () => {
  for (let i = 0; i < 5; i++) {
    const { page, context, status } = await login('elue@letholonet.example', 'not the password at all');
    assert.equal(status, 401);
    const said = await page.locator('#login-error').textContent();
    if (i < 4) assert.match(said, /incorrect/);
    else assert.match(said, /verrouillé/);
    await context.close();
  }
  const { page, status } = await login('elue@letholonet.example', agora.people['elue@letholonet.example']);
  assert.equal(status, 401, 'even the right password, while locked');
  assert.match(await page.locator('#login-error').textContent(), /verrouillé/);
});
