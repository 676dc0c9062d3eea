// Forecasts and anomalies in the browser, against `agora demo` with four weeks of history: the
// operators' page of models and their accuracy, the anomalies the demo planted (a PM sensor of the
// Hôtel de Ville drifting from its neighbours, a sound level meter of the Pôle read 6 dB higher)
// on the fleet page with a link to the device's charts over those days, and "Demain" on a place
// page (its charts going on after now with the forecast) and its kiosk. Screenshots land in
// e2e/output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, shot, loginAsAdmin } from '../lib/harness.mjs';

let agora;
let b;
let page;

before(async () => {
  // 26 days: a week to fit on and 28 origins 12 hours apart to replay.
  agora = await startAgora({ days: 26 });
  b = await startBrowser();
  page = await b.context.newPage();
  page.on('pageerror', (e) => { throw e; });
  // The demo models every series once its backfill is written: wait for that sweep.
  const deadline = Date.now() + 300_000;
  for (;;) {
    const r = await fetch(`${agora.base}/metrics`);
    const m = (await r.text()).match(/^agora_forecast_sweeps_total (\d+)/m);
    if (m && Number(m[1]) >= 1) break;
    if (Date.now() > deadline) throw new Error('no forecast sweep after 300 s');
    await new Promise((ok) => setTimeout(ok, 1000));
  }
  await loginAsAdmin(page, agora.base);
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

async function ready() {
  await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
}

test('operators see every model with its accuracy, and the planted anomalies', async () => {
  await page.goto(`${agora.base}/supervision/forecasts`);
  await ready();
  assert.equal(await page.locator('h1').textContent(), 'Prévisions et anomalies');
  // One row per forecastable property, each with a median MASE.
  const rows = page.locator('#accuracy tbody tr');
  const names = await rows.locator('th').allTextContents();
  for (const p of ['PM10', 'Température', 'Bruit (LAeq)']) assert.ok(names.some((n) => n.startsWith(p)), names.join(' | '));
  const mase = await rows.locator('td').nth(3).textContent();
  assert.match(mase, /^\d,\d\d$/, mase);
  // The anomalies: the drift and the change of level, and nothing on a quiet sensor.
  const found = await page.locator('#found tbody').textContent();
  assert.match(found, /aq-hdv-02.*Dérive par rapport aux voisins/s);
  assert.match(found, /noise-pole-03.*Changement de niveau/s);
  const flagged = await page.locator('#found tbody tr th').allTextContents();
  assert.ok(!flagged.includes('aq-hdv-01'), flagged.join(' | '));
  // Models one by one, in French.
  await page.selectOption('#property', 'pm10');
  assert.match(await page.locator('#models tbody').textContent(), /profil horaire sur|répétition de la veille/);
  await shot(page, '26-forecasts');
});

test('the fleet page lists the anomalies, each linking to the device charts over its days', async () => {
  await page.goto(`${agora.base}/supervision/fleet`);
  await ready();
  const row = page.locator('#anomalies').locator('..').locator('tbody tr', { hasText: 'aq-hdv-02' }).first();
  assert.match(await row.textContent(), /écart habituel retiré : \+\d/);
  await shot(page, '27-fleet-anomalies');
  await Promise.all([page.waitForURL(/\/supervision\/devices\/aq-hdv-02\?from=/), row.locator('a', { hasText: 'Dérive' }).click()]);
  await page.waitForSelector('#anomalies:not([hidden])');
  assert.match(await page.locator('#anomaly-list').textContent(), /(PM10|PM2,5) — Dérive par rapport aux voisins/);
});

test('a place page and its kiosk say what tomorrow holds', async () => {
  await page.goto(`${agora.base}/places/hotel-de-ville`);
  await ready();
  await page.waitForSelector('#tomorrow-box:not([hidden])', { timeout: 30_000 });
  const cards = await page.locator('#tomorrow .card-label').allTextContents();
  assert.ok(cards.includes("Qualité de l'air (indice ATMO prévu)"), cards.join(' | '));
  assert.ok(cards.includes('Températures (min / max)'), cards.join(' | '));
  assert.match(await page.locator('#tomorrow').textContent(), /-?\d+ \/ -?\d+ °C/);
  await page.locator('#tomorrow-box').scrollIntoViewIfNeeded();
  await shot(page, '28-place-tomorrow');
  // Its charts go on after now with the place's forecast, dashed, with its 80 % band.
  await page.waitForSelector('#chart-pm10 .plot[data-ahead]', { timeout: 30_000 });
  const ahead = Number(await page.getAttribute('#chart-pm10 .plot', 'data-ahead'));
  assert.ok(ahead >= 20 && ahead <= 24, `${ahead} hours forecast on a 24-hour chart`);
  assert.match(await page.locator('#chart-pm10 figcaption').textContent(), /en pointillés : la prévision/);
  await page.locator('#chart-pm10').scrollIntoViewIfNeeded();
  await shot(page, '29-place-chart-forecast');
  await page.goto(`${agora.base}/kiosk/hotel-de-ville`);
  await page.waitForFunction(() => (document.getElementById('slide')?.dataset.slides ?? '').includes('tomorrow_atmo'), null, { timeout: 30_000 });
});
