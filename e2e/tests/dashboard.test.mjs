// The dashboard in a real browser against a running `agora demo`: public map, device chart, live
// value, operator login (and a refused token), supervision, fleet, device page, explorer, kiosk,
// English, and no request leaving the machine. Screenshots of each page go to the output folder.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, isLocal, ingest, shot, ADMIN } from '../lib/harness.mjs';

let agora;
let b;
let page;

before(async () => {
  agora = await startAgora();
  // An alert rule on the device whose value the live test raises.
  const r = await fetch(`${agora.base}/api/v1/rules`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ id: 'e2e-no2', name: 'NO2 > 390', severity: 'critical', scope: { device: 'aq-rotonde-01' },
      condition: { threshold: { property: 'no2', op: '>', value: 390 } } }),
  });
  assert.equal(r.status, 201, await r.text());
  b = await startBrowser();
  page = await b.context.newPage();
  page.on('pageerror', (e) => { throw e; });
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

async function ready(p = page) {
  await p.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
}

test('the public map shows the places and devices of the demo', async () => {
  const resp = await page.goto(`${agora.base}/`);
  assert.equal(resp.status(), 200);
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  await ready();
  const places = await page.locator('#places li').allTextContents();
  assert.equal(places.length, 4, places.join('\n'));
  assert.ok(places.some((p) => p.includes('La Rotonde')));
  const markers = await page.locator('path.dev').count();
  assert.ok(markers >= 1400, `${markers} device markers`);
  await shot(page, '01-public-map');
});

test('clicking a device opens its 24 h chart with data', async () => {
  await page.locator('#find').fill('aq-rotonde-01');
  await page.locator('#find').dispatchEvent('change');
  await page.waitForSelector('#panel h2');
  await page.click('#close-panel');
  assert.equal(await page.locator('#panel h2').count(), 0);
  // A real click on the marker, now that the map is zoomed on it.
  await page.locator('path.dev-aq-rotonde-01').click();
  await page.waitForFunction(() => document.querySelector('#panel h2')?.textContent.includes('aq-rotonde-01'));
  const fig = page.locator('#device-chart figure.chart');
  await fig.waitFor({ timeout: 15_000 });
  const points = Number(await fig.getAttribute('data-points'));
  assert.ok(points > 100, `${points} points in the chart`);
  assert.equal(await fig.getAttribute('data-property'), 'pm10');
  assert.ok(await page.locator('#device-chart canvas').count() >= 1, 'uPlot drew on a canvas');
  await shot(page, '02-public-device-chart');
});

test('the heat-island layer draws the interpolated night with its legend and cross-validation', async () => {
  await page.check('#heat-layer');
  await page.waitForSelector('body[data-heat-ready="1"]', { timeout: 20_000 });
  assert.ok(Number(await page.getAttribute('body', 'data-heat-overlays')) >= 1);
  // The browser decoded the PNG overlay: it has the grid's size in pixels.
  const size = await page.$eval('img.heat-overlay', (img) => new Promise((ok) => {
    const done = () => ok([img.naturalWidth, img.naturalHeight]);
    if (img.complete) done(); else img.onload = done;
  }));
  assert.ok(size[0] > 10 && size[1] > 10, `overlay of ${size.join('×')} pixels`);
  const info = await page.locator('#heat-info').textContent();
  assert.match(info, /Validation croisée/);
  assert.match(info, /°C/);
  // The demo's last summer: the hottest night of its heatwave is offered.
  await page.waitForFunction(() => document.querySelectorAll('#heat-night option').length >= 2, null, { timeout: 20_000 });
  const night = await page.$eval('#heat-night option:nth-child(2)', (o) => [o.value, o.textContent]);
  assert.match(night[1], /canicule/);
  await page.evaluate(() => { document.body.dataset.heatReady = ''; });
  await page.selectOption('#heat-night', night[0]);
  await page.waitForSelector('body[data-heat-ready="1"]', { timeout: 20_000 });
  await shot(page, '02b-heat-island-layer');
  await page.uncheck('#heat-layer');
  assert.equal(await page.locator('img.heat-overlay').count(), 0);
});

test('a newly ingested value appears without reload', async () => {
  const cell = page.locator('dd[data-device="aq-rotonde-01"][data-prop="no2"]');
  const before = await cell.textContent();
  // A little in the future, so that the simulator's next point cannot be newer.
  const t = Date.now() + 60_000;
  await ingest(agora.base, `air,device=aq-rotonde-01 no2=397.5 ${t}`);
  const started = Date.now();
  await page.waitForFunction(() => document.querySelector('dd[data-device="aq-rotonde-01"][data-prop="no2"]')?.textContent.includes('397,5'), null, { timeout: 10_000 });
  const after = await cell.textContent();
  assert.notEqual(after, before);
  console.log(`live value shown ${Date.now() - started} ms after the write was acknowledged`);
});

test('a wrong token is refused at login', async () => {
  const resp = await page.goto(`${agora.base}/login`);
  assert.equal(resp.status(), 200);
  await page.fill('#token', 'not-a-token');
  const [answer] = await Promise.all([page.waitForNavigation(), page.click('form[action="/login"] button')]);
  assert.equal(answer.status(), 401);
  assert.match(await page.locator('#login-error').textContent(), /inconnu|révoqué/);
  const cookies = await b.context.cookies();
  assert.ok(!cookies.some((c) => c.name === 'agora_session'), 'no session for a wrong token');
  // Operator pages send visitors without a session to the login form.
  await page.goto(`${agora.base}/supervision/fleet`);
  assert.ok(page.url().includes('/login?next=/supervision/fleet'), page.url());
  await shot(page, '03-login-refused');
});

test('an operator logs in with a token and sees the supervision map', async () => {
  await page.goto(`${agora.base}/login`);
  await page.fill('#token', ADMIN);
  await Promise.all([page.waitForURL('**/supervision'), page.click('form[action="/login"] button')]);
  const cookie = (await b.context.cookies()).find((c) => c.name === 'agora_session');
  assert.ok(cookie, 'session cookie set');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  await ready();
  const legend = await page.locator('#legend').textContent();
  assert.match(legend, /En ligne \(\d+\)/);
  assert.match(legend, /Silencieux \(\d+\)/);
  assert.ok((await page.locator('path.dev').count()) >= 1400);
  assert.equal(await page.evaluate(() => document.cookie.includes('agora_session')), false, 'the cookie is out of reach of scripts');
  await shot(page, '04-supervision-map');
});

test('the alert raised by the new value is shown and acknowledged', async () => {
  await page.goto(`${agora.base}/alerts`);
  await ready();
  const row = page.locator('tr[data-state="open"]', { hasText: 'aq-rotonde-01' });
  await row.waitFor({ timeout: 10_000 });
  assert.match(await row.textContent(), /NO2 > 390/);
  assert.equal((await page.locator('#alert-badge').textContent()).trim(), '1');
  await shot(page, '10-alerts');
  page.once('dialog', (d) => d.accept('équipe prévenue'));
  await row.locator('button[data-ack]').click();
  await page.waitForFunction(() => !document.querySelector('tr[data-state="open"]'));
  await page.selectOption('#alert-filters select[name="state"]', 'acknowledged');
  const acked = page.locator('tr[data-state="acknowledged"]', { hasText: 'aq-rotonde-01' });
  await acked.waitFor();
  assert.match(await acked.textContent(), /équipe prévenue/);
  // The rules section: the test's rule is listed; a regulatory template is enabled for a place.
  await page.locator('#rules', { hasText: 'e2e-no2' }).waitFor();
  await page.selectOption('#template', 'bin-full');
  await page.selectOption('#new-rule select[name="scope_kind"]', 'site');
  await page.fill('#new-rule input[name="scope_value"]', 'hotel-de-ville');
  await page.click('#new-rule button[type="submit"]');
  await page.locator('#rules', { hasText: 'bin-full-hotel-de-ville' }).waitFor();
  assert.match(await page.locator('#rule-message').textContent(), /bin-full-hotel-de-ville/);
  // An email action needs an SMTP server, which the demo has not: the refusal says what to set.
  await page.selectOption('#template', 'soil-dry');
  await page.fill('#new-rule input[name="scope_value"]', 'parc-jourdan');
  await page.fill('#new-rule input[name="email"]', 'astreinte@aix.example');
  await page.click('#new-rule button[type="submit"]');
  await page.locator('#rule-message', { hasText: '[alerts.smtp]' }).waitFor();
  await shot(page, '10b-rules');
});

test('the fleet health page lists silent and faulty devices', async () => {
  await page.goto(`${agora.base}/supervision/fleet`);
  await ready();
  const total = await page.locator('#fleet .card-value').first().textContent();
  assert.ok(Number(total.replace(/\s/g, '')) >= 1400, total);
  // The demo's failed lamp reports defectiveLamp; its silent noise sensor stops sending.
  assert.ok(await page.locator('#faulty ~ * a, section:has(#faulty) a').count() >= 1, 'a faulty device is listed');
  // The storage says it accepts writes; below the reserve, it says so as an alert (the
  // server's own answer, with the disk made full: a real full disk is tested in faults.rs).
  assert.equal(await page.getAttribute('[data-storage]', 'data-storage'), 'ok');
  await shot(page, '05-fleet');
  await page.route('**/api/v1/fleet', async (route) => {
    const answer = await route.fetch();
    const fleet = await answer.json();
    fleet.storage.accepting_writes = false;
    fleet.storage.free_bytes = 100 * 1048576;
    await route.fulfill({ response: answer, json: fleet });
  });
  await page.reload();
  await ready();
  const alert = page.locator('[data-storage="refusing"][role="alert"]');
  await alert.waitFor();
  assert.match(await alert.textContent(), /refus/);
  await page.unroute('**/api/v1/fleet');
});

test('a device page draws its series over 24 h and 7 days', async () => {
  await page.goto(`${agora.base}/supervision/devices/aq-hdv-01`);
  await ready();
  // Charts are drawn one after the other.
  await page.waitForFunction(() => document.querySelectorAll('#charts figure.chart').length >= 4, null, { timeout: 15_000 });
  await page.click('button[data-range="7d"]');
  assert.equal(await page.getAttribute('button[data-range="7d"]', 'aria-pressed'), 'true');
  await page.locator('#charts figure.chart').first().waitFor();
  await shot(page, '06-device');
});

test('the explorer compares places and offers the result as CSV', async () => {
  await page.goto(`${agora.base}/explorer`);
  await ready();
  await page.selectOption('#property', 'temperature');
  await page.check('input[name="scope"][value="site"]');
  const values = await page.locator('#items option').evaluateAll((os) => os.map((o) => o.value));
  assert.equal(values.length, 4);
  await page.selectOption('#items', values);
  await page.selectOption('select[name="period"]', '24h');
  await page.click('#query button[type="submit"]');
  await page.locator('#result canvas').waitFor({ timeout: 15_000 });
  assert.equal(await page.isDisabled('#csv'), false);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#csv')]);
  const path = await download.path();
  const { readFileSync } = await import('node:fs');
  const csv = readFileSync(path, 'utf8').replace(/^\ufeff/, '').split('\r\n');
  // Columns: time and the four places (one name holds a comma, so it is quoted).
  const header = csv[0].match(/("[^"]*"|[^,]+)/g);
  assert.equal(header.length, 5, csv[0]);
  assert.ok(csv.length > 10, `${csv.length} lines`);
  await shot(page, '07-explorer');
});

test('the kiosk page renders and rotates', async () => {
  const kiosk = await b.context.newPage();
  await kiosk.goto(`${agora.base}/kiosk/hotel-de-ville?rotate=3`);
  await ready(kiosk);
  await kiosk.waitForSelector('body[data-official-ready="1"]', { timeout: 30_000 });
  // Back to the first slide (it pauses the rotation).
  await kiosk.click('#dots li:first-child button');
  const first = await kiosk.getAttribute('#slide', 'data-slide');
  assert.equal(first, 'air');
  assert.ok((await kiosk.locator('.kiosk-value').textContent()).trim().length > 0);
  await shot(kiosk, '08-kiosk');
  // The official index of the day follows the live colour when today has enough hours of data.
  const keys = (await kiosk.getAttribute('#slide', 'data-slides')).split(',');
  assert.ok(['atmo', 'temperature'].includes(keys[1]), keys.join(','));
  await kiosk.click('#next');
  assert.equal(await kiosk.getAttribute('#slide', 'data-slide'), keys[1]);
  if (keys[1] === 'atmo') assert.match(await kiosk.locator('.kiosk-title').textContent(), /Indice ATMO du jour/);
  await kiosk.close();
});

test('a place page and the English version', async () => {
  await page.goto(`${agora.base}/places/la-rotonde?lang=en`);
  await ready();
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  assert.match(await page.locator('#now').textContent(), /Air quality/);
  await page.locator('#charts figure.chart').first().waitFor({ timeout: 15_000 });
  // The official indices, computed by the server and labelled as such, and the year's figures.
  await page.waitForSelector('body[data-env-ready="1"]', { timeout: 30_000 });
  const env = await page.locator('#environment').textContent();
  assert.match(env, /ATMO index of the day/);
  assert.match(env, /EU limit values and WHO guidelines/);
  await shot(page, '09-place-en');
  // A commune's page, in French: its indices and its noisiest places.
  await page.goto(`${agora.base}/communes/13001?lang=fr`);
  await page.waitForSelector('body[data-env-ready="1"]', { timeout: 30_000 });
  const commune = await page.locator('#environment').textContent();
  assert.match(commune, /Indice ATMO du jour/);
  // Last summer's heatwave in the demo city, as an episode of the past twelve months.
  assert.ok(await page.locator('#env-canicule ~ div tbody tr, section:has(#env-canicule) tbody tr').count() >= 1, commune);
  await shot(page, '11-commune-environment');
  await page.goto(`${agora.base}/?lang=fr`);
});

test('no request left the machine', () => {
  const away = b.requests.filter((u) => !isLocal(u));
  assert.deepEqual(away, []);
  assert.ok(b.requests.length > 20, `${b.requests.length} requests seen`);
});
