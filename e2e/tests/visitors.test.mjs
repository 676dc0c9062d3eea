// Visitors in the browser, against `agora demo`: the places to see and the two tours on the
// map, a tour opened on a phone, the kiosk's "what to see" with QR codes that a real reader
// (zbarimg) decodes to the tour's page, and the cool route of last summer's heatwave afternoon,
// never hotter than the shortest. Screenshots land in e2e/output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgora, startBrowser, shot } from '../lib/harness.mjs';

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

test('the places to see, the tours and a cool route on the public pages', async () => {
  const page = await b.context.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.setViewportSize({ width: 1280, height: 1600 });
  await page.goto(`${agora.base}/visiter`);
  await page.waitForSelector('body[data-ready="1"]');
  assert.equal(await page.locator('#tours li').count(), 2);
  assert.match(await page.locator('#tours').textContent(), /Cœur de ville.*km/s);
  assert.ok(await page.locator('path.poi-marker').count() >= 9);
  assert.match(await page.locator('#pois').textContent(), /Horaires : mar\.–dim\. 10 h–18 h/);
  await page.selectOption('#cool-from', { label: 'Fontaine de la place de l\'Hôtel de Ville' });
  await page.selectOption('#cool-to', { label: 'Belvédère du Pôle' });
  await page.click('#cool-form button');
  await page.waitForSelector('#cool table');
  assert.match(await page.locator('#cool').textContent(), /Parcours frais.*Plus court chemin/s);
  await shot(page, 'visitors-visit');
  await page.close();
});

test('a tour on a phone: its map and its stops in order, in English too', async () => {
  const phone = await b.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'en-GB' });
  const page = await phone.newPage();
  await page.goto(`${agora.base}/visiter/parcours/coeur-de-ville?lang=en`);
  await page.waitForSelector('body[data-ready="1"]');
  assert.equal(await page.locator('#tour h1').textContent(), 'Heart of the town');
  const stops = await page.locator('#stops h3').allTextContents();
  assert.equal(stops.length, 4);
  assert.match(stops[0], /Town Hall square fountain/);
  assert.match(stops[3], /Fine Arts museum/);
  assert.ok(await page.locator('#map path.leaflet-interactive').count() >= 5);
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 0, `the tour is ${over} px too wide for a phone`);
  await shot(page, 'visitors-tour-phone');
  await phone.close();
});

test('the kiosk shows what to see nearby and QR codes that open the tours', async () => {
  const ctx = await b.browser.newContext({ viewport: { width: 1080, height: 1920 }, hasTouch: true, locale: 'fr-FR' });
  const page = await ctx.newPage();
  await page.goto(`${agora.base}/kiosk/hotel-de-ville`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.locator('a.kiosk-button', { hasText: 'Que voir ?' }).tap();
  await page.waitForURL('**/kiosk/hotel-de-ville/visiter');
  await page.waitForSelector('body[data-ready="1"]');
  assert.match(await page.locator('#near').textContent(), /Tour de l'Horloge/);
  const qrs = page.locator('.kiosk-tour img');
  assert.equal(await qrs.count(), 2);
  await shot(page, 'visitors-kiosk');
  // The same code as a PNG, read by a real decoder.
  const dir = mkdtempSync(join(tmpdir(), 'agora-qr-'));
  try {
    for (const id of ['coeur-de-ville', 'fontaines-et-ombre']) {
      const png = await page.request.get(`${agora.base}/api/v1/visitors/tours/${id}/qr?format=png`);
      assert.equal(png.status(), 200);
      const file = join(dir, `${id}.png`);
      writeFileSync(file, await png.body());
      const decoded = execFileSync('zbarimg', ['--raw', '-q', file], { encoding: 'utf8' }).trim();
      assert.equal(decoded, `${agora.base}/visiter/parcours/${id}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  await ctx.close();
});

test("last summer's heatwave afternoon: the cool route is never hotter than the shortest", async () => {
  const now = new Date();
  const year = now.getMonth() + 1 >= 8 ? now.getFullYear() : now.getFullYear() - 1;
  const at = encodeURIComponent(`${year}-07-20T16:00:00+02:00`);
  const r = await fetch(`${agora.base}/api/v1/visitors/cool-route?from=43.52995,5.44760&to=43.52330,5.43990&hours=3&at=${at}`);
  const v = await r.json();
  assert.equal(r.status, 200, JSON.stringify(v));
  assert.ok(v.sensors >= 4, JSON.stringify(v));
  assert.ok(v.cool.felt_c >= 30, `a heatwave afternoon: ${v.cool.felt_c} °C`);
  assert.ok(v.cool.felt_c <= v.shortest.felt_c, JSON.stringify(v));
  assert.ok(v.cool.distance_m >= v.shortest.distance_m);
});
