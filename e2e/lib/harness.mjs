// Starts a real `agora demo` (one day of history, on free ports, in a temporary data directory)
// and a real headless Chromium, and records every request the browser makes so tests can check
// that nothing leaves the machine.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { chromium } from 'playwright-core';

export const ADMIN = 'e2e-admin-token-0123456789abcdef';
export const OUT = resolve(process.env.E2E_OUT ?? new URL('../output', import.meta.url).pathname);
mkdirSync(OUT, { recursive: true });

export async function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => ok(port)); });
    s.on('error', fail);
  });
}

/**
 * Start `agora demo` and resolve once its city is ready; `port` and `config` (a TOML text, for
 * `--config`) are optional.
 */
export async function startAgora({ port: chosen, config, counterHistoryDays = 0, days } = {}) {
  const bin = process.env.AGORA_BIN;
  if (!bin) throw new Error('set AGORA_BIN to the agora binary');
  const data = mkdtempSync(join(tmpdir(), 'agora-e2e-'));
  const port = chosen ?? await freePort();
  // The tests make their own alert rules: the demo's built-in ones are left off.
  // Pedestrian counters' long history only where a test reads it (the commerce view): it
  // takes half a minute to write.
  const args = ['demo', '--days', String(days ?? process.env.E2E_DAYS ?? '1'), '--counter-history-days', String(counterHistoryDays),
    '--no-alert-templates', '--data', data, '--http', `127.0.0.1:${port}`];
  if (config) {
    const file = join(data, 'e2e.toml');
    writeFileSync(file, config);
    args.push('--config', file);
  }
  const child = spawn(bin, args, {
    env: { ...process.env, AGORA_ADMIN_TOKEN: ADMIN, AGORA_MQTT_LISTEN: 'off', RUST_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`agora demo not ready after 300 s:\n${log}`)), 300_000);
    const onData = (b) => {
      log += b;
      // The demo's people and their passwords are printed before the last line.
      if (log.includes('/supervision (log in')) { clearTimeout(timer); ok(); }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`agora exited with ${code}:\n${log}`)); });
  });
  const base = `http://127.0.0.1:${port}`;
  // "  email   role of commune   password" lines: the demo's people.
  const people = {};
  for (const m of log.matchAll(/^\s+(\S+@\S+)\s+.+?\s+(demo-[0-9a-f]+)\s*$/gm)) people[m[1]] = m[2];
  return {
    base,
    people,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => { child.once('exit', ok); setTimeout(ok, 10_000); });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with everything that would call home turned off. */
export async function startBrowser() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const requests = [];
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, locale: 'fr-FR', timezoneId: 'Europe/Paris' });
  context.on('request', (r) => requests.push(r.url()));
  return { browser, context, requests };
}

/** Whether a URL stays on this machine. */
export function isLocal(url) {
  if (url.startsWith('data:') || url.startsWith('blob:') || url === 'about:blank') return true;
  const h = new URL(url).hostname;
  return h === '127.0.0.1' || h === 'localhost' || h === '[::1]';
}

/** Write a point through the API, as a device would. */
export async function ingest(base, lines) {
  const r = await fetch(`${base}/api/v2/write?precision=ms`, {
    method: 'POST', headers: { Authorization: `Token ${ADMIN}` }, body: lines,
  });
  if (r.status !== 204) throw new Error(`write failed: ${r.status} ${await r.text()}`);
}

export async function shot(page, name) {
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage: false });
}

/** Log `page` in as the admin (the token form); resolves on the supervision page. */
export async function loginAsAdmin(page, base) {
  await page.goto(`${base}/login`);
  await page.fill('#token', ADMIN);
  await Promise.all([page.waitForURL('**/supervision'), page.click('form[action="/login"] button')]);
}
