// Accessibility of every page, checked with axe-core (WCAG 2.0/2.1 A and AA rules) in the real
// browser against a running `agora demo`. axe is injected through the DevTools protocol, which
// the pages' Content Security Policy (scripts from the server only) does not cover.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { startAgora, startBrowser, loginAsAdmin } from '../lib/harness.mjs';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

let agora;
let b;
let page;

before(async () => {
  agora = await startAgora();
  b = await startBrowser();
  page = await b.context.newPage();
  await loginAsAdmin(page, agora.base);
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
});

async function audit(path, plant) {
  await page.goto(`${agora.base}${path}`);
  // Pages without a script (login, the open-data API guide, the operations guide) are whole as served.
  const whole = path.startsWith('/login') || path.startsWith('/alerts') || path === '/open-data/api' || path === '/docs';
  if (!whole) {
    await page.waitForSelector('body[data-ready="1"]', { timeout: 20_000 });
  }
  // The indicators of a place or commune arrive after the rest: audit them too.
  if (path.startsWith('/places/') || path.startsWith('/communes/')) {
    await page.waitForSelector('body[data-env-ready="1"]', { timeout: 30_000 });
  }
  if (plant) await page.evaluate(plant);
  await page.evaluate(AXE);
  const result = await page.evaluate(() => axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  }));
  const found = result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(' | ')}`);
  assert.deepEqual(found, [], `${path}:\n${found.join('\n')}`);
  assert.ok(result.passes.length > 10, `${path}: axe ran ${result.passes.length} passing rules`);
}

for (const path of ['/', '/places/la-rotonde', '/communes/13001', '/kiosk/la-rotonde', '/supervision', '/supervision/fleet', '/supervision/forecasts',
  '/supervision/devices/noise-hdv-01', '/explorer', '/alerts', '/admin', '/commerce', '/login?lang=en',
  '/services/lighting', '/services/cleanliness', '/services/green-spaces',
  '/decideurs', '/decideurs/fiche?level=commune&id=13001',
  '/open-data', '/open-data/datasets/qualite-air-horaire', '/open-data/datasets/lieux-equipes', '/open-data/api',
  '/signaler', '/kiosk/la-rotonde/signaler', '/signalements',
  '/visiter', '/visiter/parcours/coeur-de-ville', '/kiosk/la-rotonde/visiter', '/docs']) {
  test(`${path} passes the WCAG 2.1 AA rules of axe-core`, () => audit(path));
}

test('the audit does catch violations (a planted unlabelled field and faint text)', async () => {
  await assert.rejects(
    audit('/login', () => {
      document.querySelector('main').insertAdjacentHTML('beforeend', '<input type="text"><p style="color:#ccc;background:#fff">faint</p>');
    }),
    (e) => /label/.test(e.message) && /color-contrast/.test(e.message),
  );
});

test('pages fit a phone screen without sideways scrolling', async () => {
  const phone = await b.context.browser().newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const p = await phone.newPage();
  for (const path of ['/', '/places/la-rotonde', '/communes/13001', '/kiosk/la-rotonde', '/signaler', '/kiosk/la-rotonde/signaler', '/visiter', '/visiter/parcours/fontaines-et-ombre']) {
    await p.goto(`${agora.base}${path}`);
    await p.waitForSelector('body[data-ready="1"]');
    if (path.startsWith('/places/') || path.startsWith('/communes/')) {
      await p.waitForSelector('body[data-env-ready="1"]', { timeout: 30_000 });
    }
    const over = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(over <= 0, `${path} is ${over} px too wide`);
    // Nothing sticks out of the screen either (the map's own panes excepted, and wide tables,
    // which scroll sideways inside their own keyboard-reachable region).
    const cut = await p.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => !e.closest('.leaflet-container') && !e.parentElement?.closest('.table-wrap') && e.getClientRects().length)
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .map((e) => e.id || e.className || e.tagName));
    assert.deepEqual(cut, [], `${path}: cut off on a phone`);
  }
  await p.screenshot({ path: new URL('../output/11-phone-kiosk.png', import.meta.url).pathname });
  await phone.close();
});

test('the public map can be used from the keyboard', async () => {
  await page.goto(`${agora.base}/`);
  await page.waitForSelector('body[data-ready="1"]');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip', 'the skip link comes first');
  await page.keyboard.press('Enter');
  // From the main content, the layer controls, the device finder and the places are reachable.
  const reached = new Set();
  for (let i = 0; i < 30; i++) {
    await page.keyboard.press('Tab');
    reached.add(await page.evaluate(() => document.activeElement.id || document.activeElement.tagName));
  }
  assert.ok(reached.has('view') && reached.has('find'), [...reached].join(', '));
  await page.focus('#find');
  await page.keyboard.type('noise-hdv-01');
  await page.keyboard.press('Enter');
  await page.locator('#find').dispatchEvent('change');
  await page.waitForFunction(() => document.activeElement?.id === 'panel');
});
