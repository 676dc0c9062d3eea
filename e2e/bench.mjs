// Dashboard benchmark (not a test): first load of the public map with the demo's ~1,500 devices
// — time until the map is drawn and bytes transferred (compressed) — and the time to draw a
// device's one-year chart, in Debian's headless Chromium on loopback, each from a cold cache.
//
//   cargo build --release && AGORA_BIN=$CARGO_TARGET_DIR/release/agora E2E_DAYS=30 node bench.mjs

import { startAgora, startBrowser, ADMIN } from './lib/harness.mjs';

const RUNS = Number(process.env.RUNS ?? 7);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const agora = await startAgora();
const b = await startBrowser();
try {
  const loads = [];
  const bytes = [];
  for (let i = 0; i < RUNS; i++) {
    const ctx = await b.browser.newContext({ viewport: { width: 1440, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${agora.base}/`);
    await page.waitForSelector('body[data-ready="1"]');
    const m = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const res = performance.getEntriesByType('resource');
      return {
        ready: performance.now(),
        bytes: nav.transferSize + res.reduce((a, r) => a + r.transferSize, 0),
        markers: document.querySelectorAll('path.dev').length,
      };
    });
    loads.push(m.ready);
    bytes.push(m.bytes);
    if (i === 0) console.log(`public map: ${m.markers} device markers`);
    await ctx.close();
  }
  console.log(`| public map first load, until drawn (median of ${RUNS}, max) | ${median(loads).toFixed(0)} ms (max ${Math.max(...loads).toFixed(0)}) | ≤ 1 s |`);
  console.log(`| public map first load, bytes transferred (compressed) | ${(median(bytes) / 1024).toFixed(0)} KiB | ≤ 500 KB |`);

  // One-year chart on an operator's device page.
  const ctx = await b.browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await ctx.newPage();
  await page.goto(`${agora.base}/login`);
  await page.fill('#token', ADMIN);
  await Promise.all([page.waitForURL('**/supervision'), page.click('form[action="/login"] button')]);
  const charts = [];
  for (let i = 0; i < RUNS; i++) {
    await page.goto(`${agora.base}/supervision/devices/aq-hdv-01`);
    await page.waitForSelector('body[data-ready="1"]');
    await page.locator('#charts figure.chart canvas').first().waitFor();
    const ms = await page.evaluate(async () => {
      const box = document.getElementById('charts');
      const start = performance.now();
      document.querySelector('button[data-range="365d"]').click();
      // The first chart (no2) is redrawn when its figure is replaced and its canvas exists.
      await new Promise((ok) => {
        const check = () => {
          const fig = box.querySelector('figure.chart');
          if (fig && fig.dataset.points && Number(fig.dataset.points) > 0 && fig.querySelector('canvas') && fig.dataset.seen !== '1') { fig.dataset.seen = '1'; ok(); } else requestAnimationFrame(check);
        };
        box.querySelectorAll('figure.chart').forEach((f) => { f.dataset.seen = '1'; });
        requestAnimationFrame(check);
      });
      return performance.now() - start;
    });
    charts.push(ms);
  }
  const points = await page.locator('#charts figure.chart').first().getAttribute('data-points');
  console.log(`| one-year range, first chart drawn in the browser (${process.env.E2E_DAYS ?? 1} days of data, ${points} buckets) | ${median(charts).toFixed(0)} ms | ≤ 300 ms |`);
  await ctx.close();
} finally {
  await b.browser.close();
  await agora.stop();
}
