// Citizens' reports in the browser, against `agora demo` with an SMTP server of the test's: a
// citizen files a report on a phone (a script in the text, an address to be told), another on
// a kiosk by touch, a third person reports the same lamp and is merged; an operator resolves the
// ticket; the reporter's email arrives with the follow-up link, which shows it resolved; the
// public map shows the reports without anything personal. Screenshots land in e2e/output/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { startAgora, startBrowser, shot, loginAsAdmin, freePort } from '../lib/harness.mjs';
import { startSmtp, bodyText } from '../lib/smtp.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let agora;
let smtp;
let b;
let phone;
let state = {};

before(async () => {
  smtp = await startSmtp();
  // Links in messages point to the configured public address, never to a request's Host.
  const port = await freePort();
  agora = await startAgora({
    port,
    config: `[open_data]\nbase_url = "http://127.0.0.1:${port}"\n[alerts.smtp]\nhost = "127.0.0.1"\nport = ${smtp.port}\nsecurity = "none"\nfrom = "Ville d'Aix <signalements@aix.example>"\ndigest_secs = 0\n`,
  });
  b = await startBrowser();
  phone = await b.browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: 'fr-FR', timezoneId: 'Europe/Paris' });
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
  await smtp?.close();
});

async function axeClean(page, what) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }));
  const found = result.violations.map((v) => `${v.id}: ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  assert.deepEqual(found, [], `${what}:\n${found.join('\n')}`);
}

test('a citizen files a report on a phone, with a script in the text and an address', async () => {
  const page = await phone.newPage();
  page.on('dialog', () => { throw new Error('a dialog opened: the text was run'); });
  await page.goto(`${agora.base}/signaler?site=la-rotonde`);
  await page.waitForSelector('body[data-ready="1"]');
  assert.match(await page.locator('#where').textContent(), /La Rotonde/);
  await page.locator('label.category', { hasText: 'Éclairage public en panne' }).tap();
  await page.fill('#description', 'Lampadaire éteint <img src=x onerror=alert(1)><script>alert(2)</script>');
  await page.fill('#email', 'camille@example.org');
  await page.check('#consent');
  await axeClean(page, '/signaler on a phone');
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 0, `the form is ${over} px too wide for a phone`);
  await shot(page, 'reports-phone-form');
  await page.locator('#send').tap();
  await page.waitForSelector('#done:not([hidden])', { timeout: 15_000 });
  const done = await page.locator('#done').textContent();
  const m = done.match(/n° (\d+) enregistré/);
  assert.ok(m, done);
  state.number = Number(m[1]);
  state.follow = await page.locator('#follow-link').getAttribute('href');
  assert.match(state.follow, /\/signalements\/suivi\/[A-Za-z0-9_-]{22}$/);
  assert.match(done, /message quand il sera traité/);
  await shot(page, 'reports-phone-sent');
  await page.close();
});

test('the same lamp reported by someone else joins the first report', async () => {
  const page = await phone.newPage();
  await page.goto(`${agora.base}/signaler?site=la-rotonde`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.locator('label.category', { hasText: 'Éclairage public en panne' }).tap();
  await page.locator('#send').tap();
  await page.waitForSelector('#done:not([hidden])', { timeout: 15_000 });
  assert.match(await page.locator('#done').textContent(), new RegExp(`Déjà signalé.*n° ${state.number} \\(2 personnes\\)`));
  await page.close();
});

test('a visitor files a report on the kiosk, by touch', async () => {
  const ctx = await b.browser.newContext({ viewport: { width: 1080, height: 1920 }, hasTouch: true, locale: 'fr-FR', timezoneId: 'Europe/Paris' });
  const page = await ctx.newPage();
  await page.goto(`${agora.base}/kiosk/pole-culturel`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.locator('a.kiosk-button', { hasText: 'Signaler un problème' }).tap();
  await page.waitForURL('**/kiosk/pole-culturel/signaler');
  await page.waitForSelector('body[data-ready="1"]');
  // Touch targets are large.
  const h = await page.locator('label.category').first().evaluate((e) => e.getBoundingClientRect().height);
  assert.ok(h >= 44, `a category is ${h} px high`);
  await page.locator('label.category', { hasText: 'Mobilier urbain dégradé' }).tap();
  await page.fill('#description', 'Le plan de la borne est rayé.');
  await axeClean(page, '/kiosk/pole-culturel/signaler');
  await page.locator('#send').tap();
  await page.waitForSelector('#done:not([hidden])', { timeout: 15_000 });
  assert.match(await page.locator('#done').textContent(), /enregistré/);
  await shot(page, 'reports-kiosk-sent');
  // Back to the kiosk's pages.
  await page.locator('#done a.kiosk-button').tap();
  await page.waitForURL('**/kiosk/pole-culturel');
  await ctx.close();
});

test('an operator resolves the ticket; the reporter is told and their link shows it resolved', async () => {
  const page = await b.context.newPage();
  page.on('dialog', () => { throw new Error('a dialog opened: the text was run'); });
  await page.setViewportSize({ width: 1280, height: 1400 });
  await loginAsAdmin(page, agora.base);
  await page.goto(`${agora.base}/signalements`);
  await page.waitForSelector('body[data-ready="1"]');
  // The demo's tickets and the new ones, with the figures by category.
  assert.ok(await page.locator('#tickets tbody tr').count() >= 5);
  assert.match(await page.locator('#stats').textContent(), /Éclairage public en panne/);
  await axeClean(page, '/signalements');
  await page.click(`button[data-open="${state.number}"]`);
  await page.waitForSelector('#ticket:not([hidden])');
  // The text is shown as text: the markup is visible, nothing of it runs or renders.
  assert.match(await page.locator('#ticket-text').textContent(), /<img src=x onerror=alert\(1\)><script>/);
  assert.equal(await page.locator('#ticket img').count(), 0);
  assert.match(await page.locator('#ticket').textContent(), /2 personne/);
  await page.selectOption('#next-status', 'resolved');
  await page.fill('#note', 'Lampe changée par l’équipe de nuit');
  await page.fill('#public-note', 'La lampe a été remplacée.');
  await page.click('#move button[type="submit"]');
  await page.waitForFunction(() => /Enregistré/.test(document.querySelector('#move-result')?.textContent ?? ''));
  assert.match(await page.locator('#ticket').textContent(), /Résolu/);
  await shot(page, 'reports-tickets');

  const mail = await smtp.waitFor('camille@example.org');
  assert.match(mail.headers.subject, /=\?utf-8\?|Votre signalement/i);
  const text = bodyText(mail);
  assert.ok(text.includes(state.follow), `${state.follow} not in\n${text}`);
  assert.match(text, /La lampe a été remplacée\./);
  // Only the reporter: the second person left no address.
  assert.deepEqual(mail.to, ['camille@example.org']);

  const follow = await phone.newPage();
  await follow.goto(state.follow);
  await follow.waitForSelector('body[data-ready="1"]');
  const shown = await follow.locator('#follow').textContent();
  assert.match(shown, /Résolu/);
  assert.match(shown, /La lampe a été remplacée\./);
  assert.doesNotMatch(shown, /camille|Lampadaire éteint|équipe de nuit/);
  await axeClean(follow, 'the follow-up page');
  await shot(follow, 'reports-follow');
  await follow.close();
  await page.close();
});

test('the public map shows the reports, with nothing personal', async () => {
  const page = await phone.newPage();
  await page.goto(`${agora.base}/`);
  await page.waitForSelector('body[data-ready="1"]');
  assert.ok(await page.locator('path.report-marker').count() >= 5);
  const r = await page.evaluate(async () => (await fetch('/api/v1/public/reports')).text());
  assert.doesNotMatch(r, /camille|Lampadaire éteint|onerror/);
  assert.match(await page.locator('#layers').textContent(), /Signalements/);
  await page.close();
});
