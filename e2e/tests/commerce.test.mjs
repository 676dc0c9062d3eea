// The commerce observatory in the browser, as the public and the commerce department see it,
// against `agora demo` with its counters' long history: today against the typical day, the
// comparisons, the heat map, the ranking, the calendar, and the finished impact study of the
// demo's planted pedestrianisation (+12 % at the Hôtel de Ville, nothing elsewhere) with its
// printable report. Screenshots land in e2e/output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, shot, ADMIN } from '../lib/harness.mjs';

let agora;
let b;
let page;

before(async () => {
  // 200 days of counters: the intervention (120 days ago) has 80 days before it.
  agora = await startAgora({ counterHistoryDays: 200 });
  b = await startBrowser();
  page = await b.context.newPage();
  page.on('pageerror', (e) => { throw e; });
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

async function ready() {
  await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
}

test('the public sees the observatory of a place, in French', async () => {
  await page.goto(`${agora.base}/commerce`);
  await ready();
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  assert.equal(await page.locator('h1').textContent(), 'Observatoire du commerce');
  // The four places, busiest first: the Hôtel de Ville (footfall 1.6, and +12 %) leads.
  const places = await page.locator('#site option[value^="site:"]').allTextContents();
  assert.equal(places.length, 4, places.join(' | '));
  // And the whole communes: Aix, and Le Tholonet (the Torse valley).
  assert.deepEqual(await page.locator('#site option[value^="commune:"]').allTextContents(),
    ['Toute la commune : Aix-en-Provence', 'Toute la commune : Le Tholonet']);
  assert.match(places[0], /Hôtel de Ville/);
  // Today so far against the usual for the weekday, drawn against the typical day's band.
  const soFar = await page.locator('#so-far').textContent();
  assert.match(soFar, /^[\d\s  ]+$/, soFar);
  assert.match(await page.locator('#today').textContent(), /d'habitude un (lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)/);
  assert.ok(await page.locator('#today svg path[stroke="#b3261e"]').count() === 1);
  // The six comparisons, each with a value and a change.
  // Comparisons are of the last whole day, not of today under way.
  assert.match(await page.locator('#compare-day').textContent(), /^Journée complète du /);
  const rows = page.locator('#compare tbody tr');
  assert.equal(await rows.count(), 6);
  assert.match(await rows.nth(0).locator('td').nth(2).textContent(), /%$/);
  // 200 days of history: no same day a year ago, said as such rather than a zero.
  assert.match(await rows.nth(2).textContent(), /Même jour, il y a 52 semaines/);
  assert.equal((await rows.nth(2).locator('td').nth(0).textContent()).trim() !== '0', true);
  assert.equal(await rows.nth(2).locator('td').nth(1).textContent(), '—');
  // The heat map: 7 weekdays × 24 hours, Saturday noon busier than 4 in the morning.
  assert.equal(await page.locator('#heat tbody tr').count(), 7);
  assert.equal(await page.locator('#heat tbody tr').first().locator('td').count(), 24);
  const cell = async (d, h) => Number((await page.locator('#heat tbody tr').nth(d).locator('td').nth(h).getAttribute('title')).replace(/\s/g, '').replace(',', '.'));
  assert.ok(await cell(5, 12) > 10 * Math.max(1, await cell(5, 4)), 'Saturday noon against 4 a.m.');
  // The ranking with its index, and the market in the calendar.
  assert.equal(await page.locator('#ranking tbody tr').count(), 4);
  assert.match(await page.locator('#events').textContent(), /Marché de producteurs/);
  // The index chart: one line per place.
  await page.waitForSelector('#index svg');
  assert.equal(await page.locator('#index svg path').count(), 4);
  await shot(page, '20-commerce');
  await page.locator('#heat').scrollIntoViewIfNeeded();
  await shot(page, '20b-commerce-heat-map');
  await page.locator('#index').scrollIntoViewIfNeeded();
  await shot(page, '20c-commerce-index');
});

test('the impact study finds the planted pedestrianisation, and its report prints', async () => {
  await page.goto(`${agora.base}/commerce`);
  await ready();
  const study = page.locator('#studies article.study').first();
  assert.match(await study.locator('h3').textContent(), /Piétonnisation de la rue Paul Bert/);
  // "+11,6 % par jour (intervalle à 95 % : +9,8 % à +13,4 %)": the planted 12 % inside.
  const text = await study.locator('.study-result').textContent();
  const m = text.match(/([+−-][\d,]+) % par jour \(intervalle à 95 % : ([+−-][\d,]+) % à ([+−-][\d,]+) %\)/);
  assert.ok(m, text);
  const n = (s) => Number(s.replace('−', '-').replace(',', '.'));
  assert.ok(n(m[2]) < 12 && 12 < n(m[3]) && n(m[2]) > 0, text);
  await study.scrollIntoViewIfNeeded();
  await shot(page, '21-commerce-impact-study');
  // The report, for the commerce department.
  const [report] = await Promise.all([page.waitForEvent('popup').catch(() => null), study.locator('a', { hasText: 'Rapport imprimable' }).click()]);
  const r = report ?? page;
  await r.waitForLoadState();
  assert.match(await r.locator('h1').textContent(), /Étude d'impact : Piétonnisation de la rue Paul Bert/);
  assert.match(await r.locator('body').textContent(), /Comparé avec\s*les lieux témoins la-rotonde, pole-culturel/);
  assert.equal(await r.locator('svg path').count(), 2, 'the place and its counterfactual');
  await shot(r, '22-commerce-impact-report');
  // The control places show nothing of the kind (studied against the Torse valley).
  const start = (await (await fetch(`${agora.base}/api/v1/commerce/interventions`)).json())[0].start_day;
  for (const site of ['la-rotonde', 'pole-culturel']) {
    const s = await (await fetch(`${agora.base}/api/v1/commerce/impact?site=${site}&controls=vallee-de-la-torse&start=${start}`)).json();
    assert.ok(s.effect.interval_pct[0] < 0 && s.effect.interval_pct[1] > 0, `${site}: ${JSON.stringify(s.effect)}`);
  }
});

test('another place, its calendar, and the place page shows passers-by today', async () => {
  await page.goto(`${agora.base}/commerce?site=la-rotonde`);
  await ready();
  assert.equal(await page.locator('#site').inputValue(), 'site:la-rotonde');
  assert.match(await page.locator('#events').textContent(), /Marché de Noël/);
  await page.goto(`${agora.base}/places/hotel-de-ville`);
  await ready();
  await page.waitForFunction(() => document.getElementById('now').textContent.includes("Passants aujourd'hui"), null, { timeout: 30_000 });
  assert.match(await page.locator('#now').textContent(), /d'habitude à cette heure un/);
});

test("the fleet page lists the demo's blocked counter", async () => {
  await page.goto(`${agora.base}/login`);
  await page.fill('#token', ADMIN);
  await Promise.all([page.waitForURL('**/supervision'), page.click('form[action="/login"] button')]);
  await page.goto(`${agora.base}/supervision/fleet`);
  await ready();
  // Blocked for 30 hours: yesterday's day at least shows it counting zero when people pass.
  const section = page.locator('section:has(#counters)');
  assert.match(await section.textContent(), /ped-pole-04/);
  assert.match(await section.textContent(), /zéro de \d+ h à \d+ h/);
  assert.doesNotMatch(await section.textContent(), /ped-pole-03/);
  await section.scrollIntoViewIfNeeded();
  await shot(page, '23-fleet-counters');
});

test('an operator declares an event and an intervention, and reads the whole commune', async () => {
  // Logged in by the test before.
  await page.goto(`${agora.base}/commerce?site=pole-culturel`);
  await ready();
  const day = (n) => new Date(Date.now() - n * 86_400_000).toLocaleDateString('en-CA', { timeZone: 'Europe/Paris' });
  const ev = page.locator('#new-event');
  await ev.locator('select[name="kind"]').selectOption('event');
  await ev.locator('input[name="name"]').fill('Fête des voisins');
  await ev.locator('input[name="first_day"]').fill(day(1));
  await ev.locator('button[type="submit"]').click();
  await page.waitForFunction(() => document.getElementById('events').textContent.includes('Fête des voisins'));
  // A market without its days is refused, said in the form, and nothing else changes.
  await ev.locator('select[name="kind"]').selectOption('market');
  await ev.locator('input[name="name"]').fill('Marché sans jour');
  await ev.locator('input[name="first_day"]').fill(day(1));
  await ev.locator('button[type="submit"]').click();
  await page.waitForSelector('#new-event .error:not([hidden])');
  assert.match(await page.locator('#new-event .error').textContent(), /weekdays/);
  // The event removed again.
  await page.locator('#events li', { hasText: 'Fête des voisins' }).locator('button').click();
  await page.waitForFunction(() => !document.getElementById('events').textContent.includes('Fête des voisins'));
  // An intervention at the Pôle Culturel, against two places: its study appears.
  const iv = page.locator('#new-intervention');
  await iv.locator('select[name="site"]').selectOption('pole-culturel');
  await iv.locator('input[name="name"]').fill('Nouveaux bancs');
  await iv.locator('input[name="start_day"]').fill(day(60));
  await iv.locator('select[name="controls"]').selectOption(['la-rotonde']);
  await iv.locator('button[type="submit"]').click();
  await page.waitForSelector('#studies article.study h3:text("Nouveaux bancs")', { timeout: 60_000 });
  const study = page.locator('#studies article.study', { hasText: 'Nouveaux bancs' });
  // Nothing was planted there: no effect beyond the places' own ups and downs (a few %; the
  // interval's coverage is measured on a thousand synthetic places in agora-indicators).
  const m = (await study.locator('.study-result').textContent()).match(/([+−-][\d,]+) % par jour \(intervalle à 95 % : ([+−-][\d,]+) % à ([+−-][\d,]+) %\)/);
  const n = (s) => Number(s.replace('−', '-').replace(',', '.'));
  assert.ok(m && Math.abs(n(m[1])) < 6 && n(m[2]) < n(m[1]) && n(m[1]) < n(m[3]), await study.textContent());
  await shot(page, '24-commerce-declare');
  // The whole commune of Aix.
  await page.selectOption('#site', 'commune:13001');
  await page.waitForFunction(() => document.getElementById('today').textContent.includes("d'habitude"));
});

test("a counter's page shows its forecast with the backtest that chose it", async () => {
  // Logged in by the tests before; the counters have 200 days of history.
  await page.goto(`${agora.base}/supervision/devices/ped-hdv-01`);
  await ready();
  await page.waitForSelector('body[data-forecast-ready="1"]', { timeout: 60_000 });
  const fig = page.locator('#forecasts figure.forecast[data-property="people_in"]');
  await fig.waitFor();
  // A weekly rhythm with markets: a profile beats repeating yesterday, and says so.
  assert.match(await fig.locator('figcaption').textContent(), /meilleure que la répétition de la veille/);
  assert.match(await fig.locator('figcaption').textContent(), /Intervalles 80 % \/ 95 % tenus \d+ % \/ \d+ % du temps sur 28 rejeux/);
  // Every candidate's scores.
  assert.equal(await fig.locator('details table.table tbody tr').count(), 12);
  await fig.scrollIntoViewIfNeeded();
  await shot(page, '25-device-forecast');
});
