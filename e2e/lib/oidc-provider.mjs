// A real OpenID Connect provider for the single sign-on tests: npm's `oidc-provider` (the
// library ProConnect itself runs on), with its development login and consent pages, one client
// for agora (code flow, PKCE required, client_secret_post) and accounts whose claims carry an
// agora role and commune, as a city's Keycloak would put them in its tokens.

import Provider from 'oidc-provider';

export const CLIENT = { id: 'agora', secret: 'e2e-oidc-client-secret-0123456789' };

/** Claims by login name (the development login page takes any name; the password is ignored). */
const ACCOUNTS = {
  'sso.operateur@aix.example': { name: 'Opérateur SSO', agora_role: 'agora-operateur', agora_commune: '13001' },
  'elu@aix.example': { name: 'Élu d\'Aix', agora_role: 'viewer', agora_commune: '13001' },
  'inconnu@ailleurs.example': { name: 'Sans rôle', agora_role: 'mayor', agora_commune: '13001' },
};

/** Start the provider on `port`, agora's callback being `redirect`. */
export async function startProvider(port, redirect) {
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uris: [redirect],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    }],
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile', 'agora'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      agora: ['agora_role', 'agora_commune'],
    },
    // The claims go in the ID token itself, not only behind the userinfo endpoint.
    conformIdTokenClaims: false,
    cookies: { keys: ['e2e-oidc-cookie-key'] },
    async findAccount(_ctx, id) {
      const a = ACCOUNTS[id] ?? { name: id };
      return { accountId: id, claims: async () => ({ sub: id, email: id, email_verified: true, ...a }) };
    },
  });
  const server = provider.listen(port);
  await new Promise((ok) => server.once('listening', ok));
  return { issuer, stop: () => new Promise((ok) => server.close(ok)) };
}
