// The demo stack's OpenID Connect provider: oidc-provider (a certified
// OpenID implementation) with a login form of ours that really checks the
// user name and password. It stands where GitLab's OIDC provider stands in
// RAVE. Started by `spinup-smoke demo up`:
//
//   node server.mjs CONFIG.json
//
// CONFIG.json: { "issuer", "port", "jwks_path", "cookie_key_file",
//   "clients": [{ "client_id", "client_secret_file", "redirect_uris": [],
//                 "pkce_required": bool }],
//   "users": [{ "username", "password_file" }] }
// Secrets are read from files, never from the command line.
//
// Routes besides the provider's own (/.well-known/openid-configuration,
// /auth, /token, /me, /jwks, ...):
//   GET  /healthz                      200 "ok"
//   GET  /interaction/:uid             the login form (prompt=login), or the
//                                      consent, granted automatically for
//                                      these first-party clients
//   POST /interaction/:uid/login       form fields `username`, `password`
//                                      (application/x-www-form-urlencoded);
//                                      wrong ones: 401 and the form again;
//                                      right ones: 303 back to /auth/:uid
// The interaction is bound to the `_interaction` cookie set by /auth; a
// headless client keeps cookies across the redirects.

import http from 'node:http';
import crypto from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const read = (file) => readFileSync(file, 'utf8').trim();

// A stable signing key: made once, kept in the state directory.
if (!existsSync(config.jwks_path)) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = crypto.randomBytes(8).toString('hex');
  jwk.use = 'sig';
  jwk.alg = 'RS256';
  writeFileSync(config.jwks_path, JSON.stringify({ keys: [jwk] }), { mode: 0o600 });
}
const jwks = JSON.parse(readFileSync(config.jwks_path, 'utf8'));

const users = new Map(config.users.map((u) => [u.username, read(u.password_file)]));
const digest = (text) => crypto.createHash('sha256').update(text).digest();
function passwordMatches(username, password) {
  const expected = users.get(username);
  // Compare digests in constant time; unknown users cost the same.
  const ok = crypto.timingSafeEqual(digest(expected ?? crypto.randomBytes(16).toString('hex')), digest(password ?? ''));
  return expected !== undefined && ok;
}

const pkceClients = new Set(config.clients.filter((c) => c.pkce_required).map((c) => c.client_id));
const provider = new Provider(config.issuer, {
  clients: config.clients.map((c) => ({
    client_id: c.client_id,
    client_secret: read(c.client_secret_file),
    redirect_uris: c.redirect_uris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks,
  cookies: { keys: [read(config.cookie_key_file)] },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  features: { devInteractions: { enabled: false } },
  pkce: { required: (ctx, client) => pkceClients.has(client.clientId) },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    if (!users.has(id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, name: id, preferred_username: id, email: `${id}@rave.local`, email_verified: true };
      },
    };
  },
});
provider.proxy = true;
provider.on('server_error', (ctx, err) => console.error('server_error', err));

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function loginPage(uid, client, error) {
  return `<!doctype html><html><head><title>Sign in - RAVE demo IdP</title></head><body>
<h1>Sign in to ${escape(client)}</h1>${error ? `<p class="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></body></html>`;
}

async function body(req) {
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 16384) throw new Error('form too large');
  }
  return new URLSearchParams(text);
}

function send(res, status, type, text) {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch');
  const { prompt, params, session } = details;
  if (action === 'login' && req.method === 'POST') {
    const form = await body(req);
    const username = form.get('username') ?? '';
    if (!passwordMatches(username, form.get('password'))) {
      console.log(`login refused for ${JSON.stringify(username)} (client ${params.client_id})`);
      return send(res, 401, 'text/html', loginPage(uid, params.client_id, 'Invalid user name or password.'));
    }
    console.log(`login of ${username} (client ${params.client_id})`);
    return provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === 'login') return send(res, 200, 'text/html', loginPage(uid, params.client_id));
  if (prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, 'text/plain', `unsupported prompt ${prompt.name}`);
}

const callback = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://idp');
    if (url.pathname === '/healthz') return send(res, 200, 'text/plain', 'ok');
    const m = url.pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/);
    if (m) return await interaction(req, res, m[1], m[2]);
    return callback(req, res);
  } catch (err) {
    console.error(err);
    if (!res.headersSent) send(res, 400, 'text/plain', `error: ${err.message}`);
  }
});
server.listen(config.port, '127.0.0.1', () => console.log(`demo IdP listening, issuer ${config.issuer}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
