// Single sign-on end to end: agora (code flow with PKCE) against a real OpenID Connect provider
// started here, in a real browser. A person is made at first login from the provider's role
// and commune claims; an existing person is linked by email; a token naming no agora role is
// refused with a message.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgora, startBrowser, freePort, shot } from '../lib/harness.mjs';
import { startProvider, CLIENT } from '../lib/oidc-provider.mjs';

let agora;
let idp;
let b;

before(async () => {
  const [port, idpPort] = [await freePort(), await freePort()];
  const redirect = `http://127.0.0.1:${port}/login/oidc/callback`;
  idp = await startProvider(idpPort, redirect);
  agora = await startAgora({
    port,
    config: `[auth.oidc]
issuer = "${idp.issuer}"
client_id = "${CLIENT.id}"
client_secret = "${CLIENT.secret}"
redirect_url = "${redirect}"
scopes = ["email", "profile", "agora"]
role_claim = "agora_role"
commune_claim = "agora_commune"
create_people = true
label = "Compte Métropole"

[auth.oidc.roles]
"agora-operateur" = "operator"
`,
  });
  b = await startBrowser();
});

after(async () => {
  await b?.browser.close();
  await agora?.stop();
  await idp?.stop();
});

/** Log in through the provider's pages as `login`; the page, where it ended. */
async function sso(login) {
  const context = await b.context.browser().newContext();
  const page = await context.newPage();
  page.on('pageerror', (e) => { throw e; });
  await page.goto(`${agora.base}/login`);
  await page.click('#sso');
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', 'ignored by the development login');
  await page.click('button[type="submit"]');
  // The consent page, the first time.
  await page.waitForLoadState();
  if (page.url().startsWith(idp.issuer)) await page.click('button[type="submit"]');
  await page.waitForURL((u) => u.toString().startsWith(agora.base), { timeout: 20_000 });
  await page.waitForLoadState();
  return { page, context };
}

test('the login page offers the single sign-on', async () => {
  const page = await b.context.newPage();
  await page.goto(`${agora.base}/login`);
  assert.match(await page.locator('#sso').textContent(), /Compte Métropole/);
  await shot(page, '12-login-sso');
  await page.close();
});

test('a person is made at first login from the role and commune the provider gives', async () => {
  const { page, context } = await sso('sso.operateur@aix.example');
  assert.ok(page.url().endsWith('/supervision'), page.url());
  const me = await page.evaluate(async () => (await fetch('/api/v1/me')).json());
  assert.equal(me.role, 'operator', JSON.stringify(me));
  assert.equal(me.commune, '13001');
  assert.equal(me.person.email, 'sso.operateur@aix.example');
  assert.equal(me.person.has_password, false);
  assert.match(me.person.subject, /^http:\/\/127\.0\.0\.1:\d+ sso\.operateur@aix\.example$/);
  await context.close();
});

test('an existing person is linked by email, and their role follows the provider', async () => {
  const { page, context } = await sso('elu@aix.example');
  const me = await page.evaluate(async () => (await fetch('/api/v1/me')).json());
  assert.equal(me.person.email, 'elu@aix.example');
  assert.equal(me.person.name, 'Élu d\'Aix', 'the demo person, not a new one');
  assert.equal(me.role, 'viewer');
  await context.close();
});

test('a token naming no agora role is refused with a message', async () => {
  const { page, context } = await sso('inconnu@ailleurs.example');
  assert.ok(page.url().includes('/login?error=sso'), page.url());
  assert.match(await page.locator('#login-error').textContent(), /authentification unique a échoué/);
  const cookies = await context.cookies();
  assert.ok(!cookies.some((c) => c.name === 'agora_session'), 'no session');
  await context.close();
});
