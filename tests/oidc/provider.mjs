// A real OpenID Connect provider (npm oidc-provider) for hpcwaas's SSO tests.
//
// Started by tests/sso_support.py as `node tests/oidc/provider.mjs <settings>`, where
// <settings> is a JSON object, or the path of a JSON file; without an argument the JSON
// is read from the OIDC_PROVIDER_SETTINGS environment variable. Settings:
//
//   port                        required; the provider listens on 127.0.0.1:<port> only
//   issuer                      default http://127.0.0.1:<port>
//   client: {                   the one confidential client
//     client_id, client_secret, redirect_uris: [...],   required
//     grant_types               default [authorization_code, refresh_token, device_code]
//     token_endpoint_auth_method  client_secret_basic (default) or client_secret_post
//   }
//   users: {<login>: {groups, given_name, family_name, name, email}}   all optional;
//                               any other login is accepted too (devInteractions), with
//                               names derived from the login and no groups
//   resource                    default urn:hpcwaas:api: a token request naming it
//                               (`resource=`) gets a JWT access token (typ at+jwt,
//                               aud = resource); other access tokens are opaque
//   resource_scope              default "hpcwaas": the scope of that resource server
//   groups_scope                default "groups": the scope that releases `groups`
//   extra_scopes                default []: more scopes accepted, releasing no claim
//   jwt_access_token_claims     default []: account claims copied into JWT access tokens
//   access_token_ttl, id_token_ttl   seconds; default: oidc-provider's (1 h)
//   pkce_required               default false: when true, the authorization endpoint
//                               refuses requests without an S256 code_challenge
//   require_openid              default true: an authorization request whose scope lacks
//                               `openid` gets error=invalid_scope
//   always_issue_refresh_token  default false (oidc-provider's rule: only with the
//                               offline_access scope, which needs prompt=consent)
//   strict_client_auth          default true: the client must authenticate with its
//                               registered method (oidc-provider 9 itself takes
//                               client_secret_basic and client_secret_post for each other)
//
// Prints `READY <issuer>` on stdout once listening, then one line per request; exits on
// SIGTERM or SIGINT.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';

function readSettings() {
  const raw = process.argv[2] ?? process.env.OIDC_PROVIDER_SETTINGS;
  if (!raw) {
    throw new Error('usage: node provider.mjs <settings JSON or file> (or OIDC_PROVIDER_SETTINGS)');
  }
  return JSON.parse(raw.trimStart().startsWith('{') ? raw : readFileSync(raw, 'utf8'));
}

const settings = readSettings();
const port = Number(settings.port);
if (!Number.isInteger(port) || port <= 0) throw new Error('settings.port is required');
const issuer = settings.issuer ?? `http://127.0.0.1:${port}`;
const client = settings.client ?? {};
for (const key of ['client_id', 'client_secret', 'redirect_uris']) {
  if (!client[key]) throw new Error(`settings.client.${key} is required`);
}
const users = settings.users ?? {};
const resource = settings.resource ?? 'urn:hpcwaas:api';
const resourceScope = settings.resource_scope ?? 'hpcwaas';
const groupsScope = settings.groups_scope ?? 'groups';
const jwtClaims = settings.jwt_access_token_claims ?? [];
const requireOpenid = settings.require_openid ?? true;

function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

// All the claims of an account; oidc-provider releases those the granted scopes map to.
function accountClaims(sub) {
  const user = users[sub] ?? {};
  const given = user.given_name ?? user.firstname ?? capitalize(sub);
  const family = user.family_name ?? user.surname ?? 'Tester';
  return {
    sub,
    given_name: given,
    family_name: family,
    name: user.name ?? `${given} ${family}`,
    firstname: given, // Unity's names for the same claims
    surname: family,
    email: user.email ?? `${sub}@example.org`,
    email_verified: true,
    groups: [...(user.groups ?? [])],
  };
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: `test-${randomBytes(4).toString('hex')}`,
  use: 'sig',
  alg: 'RS256',
};

const ttl = {};
if (settings.access_token_ttl) ttl.AccessToken = Number(settings.access_token_ttl);
if (settings.id_token_ttl) ttl.IdToken = Number(settings.id_token_ttl);

const configuration = {
  clients: [
    {
      client_id: client.client_id,
      client_secret: client.client_secret,
      redirect_uris: client.redirect_uris,
      grant_types: client.grant_types ?? [
        'authorization_code',
        'refresh_token',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      response_types: ['code'],
      token_endpoint_auth_method: client.token_endpoint_auth_method ?? 'client_secret_basic',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return accountClaims(sub);
      },
    };
  },
  scopes: ['openid', 'offline_access', groupsScope, ...(settings.extra_scopes ?? [])],
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'firstname', 'surname'],
    email: ['email', 'email_verified'],
    [groupsScope]: ['groups'],
  },
  features: {
    devInteractions: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    deviceFlow: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A resource is used only when a request names it: default tokens stay opaque.
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => false,
      getResourceServerInfo(_ctx, indicator) {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: resourceScope,
          audience: resource,
          accessTokenFormat: 'jwt',
          ...(ttl.AccessToken ? { accessTokenTTL: ttl.AccessToken } : {}),
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // oidc-provider verifies an S256 code_challenge whenever one was sent; it requires one
  // only of public clients unless told to.
  pkce: { required: () => Boolean(settings.pkce_required) },
  async extraTokenClaims(_ctx, token) {
    if (!jwtClaims.length || token.kind !== 'AccessToken' || !token.resourceServer) {
      return undefined;
    }
    const claims = accountClaims(token.accountId);
    return Object.fromEntries(jwtClaims.filter((c) => c in claims).map((c) => [c, claims[c]]));
  },
  ...(settings.always_issue_refresh_token
    ? { issueRefreshToken: (_ctx, c) => c.grantTypeAllowed('refresh_token') }
    : {}),
  ttl,
};

const provider = new Provider(issuer, configuration);

// Log every request (after READY, so the Python side can tell them apart from start-up).
provider.use(async (ctx, next) => {
  await next();
  console.log(`${ctx.method} ${ctx.path} ${ctx.status}`);
});

// `openid` is required in authorization requests: answer like a provider would, with an
// error redirect when the client and redirect URI are known, a 400 otherwise.
provider.use(async (ctx, next) => {
  if (requireOpenid && ctx.method === 'GET' && ctx.path === '/auth') {
    const scope = String(ctx.query.scope ?? '').split(' ');
    if (!scope.includes('openid')) {
      const description = 'the openid scope is required';
      const redirectUri = ctx.query.redirect_uri;
      if (ctx.query.client_id === client.client_id && client.redirect_uris.includes(redirectUri)) {
        const target = new URL(redirectUri);
        target.searchParams.set('error', 'invalid_scope');
        target.searchParams.set('error_description', description);
        if (ctx.query.state) target.searchParams.set('state', ctx.query.state);
        target.searchParams.set('iss', issuer);
        ctx.status = 303;
        ctx.redirect(target.href);
      } else {
        ctx.status = 400;
        ctx.body = { error: 'invalid_scope', error_description: description };
      }
      return;
    }
  }
  await next();
});

// oidc-provider accepts client_secret_basic and client_secret_post interchangeably: hold
// the client to the method it registered, so that tests catch a client using the other.
const authMethod = configuration.clients[0].token_endpoint_auth_method;
const clientAuthPaths = new Set(['/token', '/token/introspection', '/token/revocation', '/device/auth']);
provider.use(async (ctx, next) => {
  if ((settings.strict_client_auth ?? true) && ctx.method === 'POST' && clientAuthPaths.has(ctx.path)
      && ctx.is('application/x-www-form-urlencoded')) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const raw = Buffer.concat(chunks).toString('utf8');
    ctx.request.body = raw; // oidc-provider parses an already read body from here
    const viaPost = new URLSearchParams(raw).has('client_secret');
    const viaBasic = /^basic /i.test(ctx.get('authorization'));
    const used = viaPost ? 'client_secret_post' : viaBasic ? 'client_secret_basic' : undefined;
    if (used && used !== authMethod) {
      ctx.status = 401;
      if (viaBasic) ctx.set('WWW-Authenticate', `Basic realm="${new URL(issuer).host}"`);
      ctx.body = {
        error: 'invalid_client',
        error_description: `client authentication failed: the client is registered for ${authMethod}, not ${used}`,
      };
      return;
    }
  }
  await next();
});

provider.on('server_error', (_ctx, err) => console.error('server_error', err));

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});
server.on('error', (err) => {
  console.error(`cannot listen on 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections?.();
    server.close();
    process.exit(0);
  });
}
