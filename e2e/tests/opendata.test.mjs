// The open-data portal in the browser, as a reuser finds it on `agora demo` and its default
// catalogue: search and filters, a dataset's page (facts, schema, preview, chart, map, downloads,
// API examples), a download that is the API's export, and the reusers' API guide. Screenshots land
// in e2e/output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, shot, loginAsAdmin } from '../lib/harness.mjs';

let agora;
let b;
let page;

before(async () => {
  agora = await startAgora({ days: 3 });
  b = await startBrowser();
  page = await b.context.newPage();
  page.on('pageerror', (e) => { throw e; });
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

test('the catalogue lists, searches and filters the published datasets, in French', async () => {
  await page.goto(`${agora.base}/open-data`);
  assert.equal(await page.locator('h1').textContent(), 'Données ouvertes');
  const all = await page.locator('.dataset h3').allTextContents();
  assert.equal(all.length, 16, all.join(' | '));
  assert.ok(!all.some((x) => /brouillon/i.test(x)), 'the draft is not listed');
  assert.equal(await page.locator('.count').textContent(), '16');
  // Words without their accents, a theme, a place: each narrows the list.
  await page.fill('input[name=q]', 'frequentation');
  await page.click('form[role=search] button');
  assert.deepEqual(await page.locator('.dataset h3').allTextContents(),
    ['Fréquentation piétonne — passages par heure', 'Fréquentation piétonne — passages par jour']);
  await page.goto(`${agora.base}/open-data?theme=air&site=hotel-de-ville&format=parquet`);
  const air = await page.locator('.dataset h3').allTextContents();
  assert.equal(air.length, 2, air.join(' | '));
  const link = await page.locator('.dataset a[download]').first().getAttribute('href');
  assert.match(link, /\/exports\/parquet$/);
  await shot(page, '30-open-data-catalogue');
});

test("a dataset's page shows what it holds and how to get it", async () => {
  await page.goto(`${agora.base}/open-data/datasets/qualite-air-horaire`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30_000 });
  assert.match(await page.locator('h1').textContent(), /Qualité de l'air/);
  const facts = await page.locator('.facts').textContent();
  assert.match(facts, /Licence Ouverte/);
  assert.match(facts, /horaire/);
  // The schema names every field; the preview shows the latest hours.
  const fields = await page.locator('#schema-title + .table-wrap tbody td:first-child').allTextContents();
  assert.deepEqual(fields.slice(0, 2), ['date', 'device_id']);
  assert.ok(fields.includes('pm10') && !fields.includes('battery'), fields.join(' '));
  assert.equal(await page.locator('#preview-title + .table-wrap tbody tr').count(), 10);
  // The chart of daily means and the map of its 24 air sensors.
  await page.waitForSelector('#chart .plot canvas', { timeout: 30_000 });
  assert.equal(await page.locator('#map .leaflet-interactive').count(), 24);
  // Five downloads; the CSV is the API's export.
  const hrefs = await page.locator('.downloads a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(hrefs.map((h) => h.split('/').pop()), ['csv', 'json', 'jsonl', 'geojson', 'parquet']);
  // (Read as bytes: a text decoder would drop the byte-order mark.)
  const head = await page.evaluate(async (h) => [...new Uint8Array(await (await fetch(h)).arrayBuffer()).slice(0, 20)], hrefs[0]);
  assert.equal(Buffer.from(head).toString('utf8'), '\ufeffdate;device_id;si');
  // Examples to copy name this server.
  assert.match(await page.locator('#api-title + h3 + pre').textContent(), new RegExp(`curl '${agora.base}/api/explore/v2.1/catalog/datasets/qualite-air-horaire/records`));
  await shot(page, '31-open-data-dataset');
});

test('an unpublished dataset has no page, and the API guide is there for reusers', async () => {
  const r = await page.goto(`${agora.base}/open-data/datasets/qualite-air-quart-heure`);
  assert.equal(r.status(), 404);
  await page.goto(`${agora.base}/open-data/api?lang=en`);
  assert.equal(await page.locator('h1').textContent(), 'API for reusers');
  assert.match(await page.locator('main').textContent(), /Opendatasoft's Explore API v2.1/);
  await shot(page, '32-open-data-api');
});

test('an operator who may publish defines a draft and publishes it from the catalogue', async () => {
  const op = await b.context.browser().newContext();
  const p = await op.newPage();
  p.on('pageerror', (e) => { throw e; });
  await loginAsAdmin(p, agora.base);
  await p.goto(`${agora.base}/open-data`);
  await p.waitForSelector('body[data-ready="1"]');
  const draft = p.locator('#manage-list tr', { hasText: 'qualite-air-quart-heure' });
  assert.match(await draft.textContent(), /brouillon/);
  await draft.locator('button').click();
  await p.waitForFunction(() => /est publié/.test(document.getElementById('manage-status').textContent));
  // Public at once, for anyone.
  const r = await page.request.get(`${agora.base}/api/explore/v2.1/catalog/datasets/qualite-air-quart-heure/records?limit=1`);
  assert.equal(r.status(), 200);
  // A new draft from the form: refused by the rules when footfall is asked every quarter hour.
  await p.fill('#new-dataset input[name=id]', 'pietons-quart-heure');
  await p.fill('#new-dataset input[name=title]', 'Piétons au quart d\'heure');
  await p.fill('#new-dataset input[name=description]', 'Essai');
  await p.selectOption('#new-dataset select[name=theme]', 'footfall');
  await p.selectOption('#new-dataset select[name=resolution]', '15min');
  await p.click('#new-dataset button');
  await p.waitForFunction(() => /finer than hourly/.test(document.getElementById('manage-status').textContent));
  await p.selectOption('#new-dataset select[name=resolution]', 'hourly');
  await p.click('#new-dataset button');
  await p.waitForFunction(() => /pietons-quart-heure/.test(document.getElementById('manage-status').textContent));
  assert.match(await p.locator('#manage-list tr', { hasText: 'pietons-quart-heure' }).textContent(), /brouillon/);
  await shot(p, '33-open-data-publishing');
  await op.close();
});
