// The departments' services in the browser, against `agora demo` with two weeks of history: the
// lighting department's Éclairage (the lamp of the Hôtel de Ville that failed, the one of la
// Rotonde lit by day, the one of the Pôle failed and repaired, a scenario's savings), the
// cleanliness department's Propreté (the round of the bins due, drawn on the map, and the wasted
// visits of the quiet bins emptied daily) and the green-space department's Espaces verts (the
// Hôtel de Ville's flower bed, dry since its valve failed, to water tonight). Screenshots land in
// e2e/output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, shot, loginAsAdmin } from '../lib/harness.mjs';

let agora;
let b;
let page;

before(async () => {
  // 14 days: the Pôle's lamp failed 12 days ago and was repaired 9 days ago.
  agora = await startAgora({ days: 14 });
  b = await startBrowser();
  page = await b.context.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.setViewportSize({ width: 1280, height: 1400 });
  await loginAsAdmin(page, agora.base);
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

async function ready() {
  await page.waitForSelector('body[data-ready="1"]', { timeout: 120_000 });
}

test('Éclairage: energy, the lamps to visit, a repair, and what switching off at night saves', async () => {
  await page.goto(`${agora.base}/services/lighting`);
  await ready();
  assert.equal(await page.locator('h1').textContent(), 'Éclairage public');
  // The cards: energy in kWh, measured over most of the time.
  assert.match(await page.locator('#cards').textContent(), /\d kWh.*données sur (9\d|100)[,\d]* % du temps/s);
  // Lamps to visit: the Hôtel de Ville's failed lamp (unlit at night, and its status says so)
  // and la Rotonde's lit by day.
  const visits = await page.locator('#maintenance table').last().textContent();
  assert.match(visits, /lamp-hdv-017/);
  assert.match(visits, /lamp-rotonde-042.*allumée de jour/s);
  assert.doesNotMatch(visits, /lamp-pole-101/, 'repaired, not to visit');
  // The repair of the Pôle's lamp: about 3 days and 10 hours.
  const months = await page.locator('#maintenance table').first().textContent();
  assert.match(months, /\d+ h/);
  // Streets: ten per place, the lamp lit by day shows on Cours Mirabeau.
  assert.ok(await page.locator('#streets tbody tr').count() >= 30);
  // The map: streets and the lamps to visit.
  assert.ok(await page.locator('#map path.leaflet-interactive').count() >= 30);
  // Switching off from 01:00 to 05:00 everywhere saves energy, money and CO2e, per year.
  await page.selectOption('#sc-kind', 'off');
  await page.fill('#sc-start', '01:00');
  await page.fill('#sc-end', '05:00');
  await page.click('#scenario-form button[type="submit"]');
  await page.waitForSelector('#sc-result strong');
  const saved = await page.locator('#sc-result').textContent();
  assert.match(saved, /Éteindre de 01:00 à 05:00 — [\d\s  ]+ kWh, [\d\s  ]+ € et [\d\s  ]+ kg CO₂e économisés par an/);
  // Scaled to a year from the days measured (the demo's 14 or 15), not from a year of zeros.
  assert.match(saved, /profil mesuré sur 1[45] jours/);
  // A window off the quarter-hours is refused with the reason.
  await page.fill('#sc-start', '01:07');
  await page.click('#scenario-form button[type="submit"]');
  await page.waitForSelector('#sc-result .error');
  assert.match(await page.locator('#sc-result').textContent(), /quarter-hour/);
  await page.fill('#sc-start', '01:00');
  await page.click('#scenario-form button[type="submit"]');
  await page.waitForSelector('#sc-result strong');
  // Applied as a schedule to one street: it is listed with its estimate, ready to send its
  // commands at 01:00 and 05:00.
  await page.selectOption('#sc-streets', ['Cours Mirabeau']);
  await page.fill('#sc-name', 'Extinction Cours Mirabeau');
  await page.click('#sc-apply');
  await page.waitForSelector('#schedules tbody tr');
  const sched = await page.locator('#schedules tbody tr').first().textContent();
  assert.match(sched, /Extinction Cours Mirabeau.*Éteindre de 01:00 à 05:00 · Cours Mirabeau.*oui.*kWh\/an/s);
  // The sun at each place today.
  assert.equal(await page.locator('#sun tbody tr').count(), 4);
  await shot(page, '30-services-eclairage');
});

test('Propreté: the round of the bins due, on the map, and the wasted visits', async () => {
  await page.goto(`${agora.base}/services/cleanliness`);
  await ready();
  assert.equal(await page.locator('h1').textContent(), 'Propreté : bacs connectés');
  // Aix's bins due within 24 h, ordered from the depot: a numbered round with its length.
  const stops = await page.locator('#round tbody tr').count();
  assert.ok(stops >= 10, `${stops} stops`);
  assert.equal(await page.locator('#map .stop-number').count(), stops);
  assert.match(await page.locator('#cards').textContent(), /Tournée[\d,\s  ]+km/);
  // The quiet bins emptied every day a third full: wasted visits, month by month.
  const wasted = Number((await page.locator('#cards .card').nth(3).locator('.card-value').textContent()).replace(/\s/g, ''));
  assert.ok(wasted > 50, `${wasted} wasted visits`);
  assert.ok(await page.locator('#visits tbody tr').count() >= 1);
  // Each bin's time to full with its range.
  assert.match(await page.locator('#bins tbody tr').first().textContent(), /\(.+–.+\)/);
  await shot(page, '31-services-proprete');
});

test('Espaces verts: the dry flower bed is to be watered tonight, the others not', async () => {
  await page.goto(`${agora.base}/services/green-spaces`);
  await ready();
  assert.equal(await page.locator('h1').textContent(), 'Espaces verts : arrosage');
  const rows = page.locator('#zones tbody tr');
  assert.equal(await rows.count(), 12, 'three zones in each of four places');
  // Sorted: zones to water first. The Hôtel de Ville's flower bed, dry for days.
  const first = await rows.first().textContent();
  assert.match(first, /Massif fleuri — Hôtel de Ville.*massif fleuri.*oui/s);
  assert.equal(await page.locator('#zones strong.advice-yes').count(), 1);
  // The water a fixed schedule used against the advice.
  assert.match(await page.locator('#cards').textContent(), /Eau, calendrier fixe[\d,\s  ]+m³/);
  await shot(page, '32-services-espaces-verts');
});
