// A real OpenID provider (node oidc-provider 9) shaped like Auth0, Entra ID or a generic IdP.
// Configured by the JSON in OP_CONFIG (see tests/peers/oidc.py); listens on 127.0.0.1 only.
import Provider, { errors } from 'oidc-provider';

const cfg = JSON.parse(process.env.OP_CONFIG);
const shape = cfg.shape; // "auth0" | "entra" | "generic"

// Entra v2 names an API's delegated scopes `api://<app>/<scope>`; the access token's `scp` has the short names.
const entraResource = (scope) => (scope ?? '').split(' ').map((s) => s.match(/^(api:\/\/[^/]+)\//)?.[1]).find(Boolean);

const provider = new Provider(cfg.issuer, {
  clients: cfg.clients,
  routes: cfg.routes ?? {},
  // Resource scopes too, so that dynamically registered clients may ask for them.
  scopes: ['openid', 'offline_access', ...new Set(Object.values(cfg.resources).flatMap((r) => r.scope.split(' ').filter(Boolean)))],
  cookies: { keys: ['peers-test-cookie-key'] },
  extraParams: shape === 'auth0' ? ['audience'] : [],
  pkce: { required: () => true },
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    registration: { enabled: shape === 'generic' },
    resourceIndicators: {
      enabled: true,
      defaultResource(ctx) {
        if (shape === 'auth0') return ctx.oidc.params?.audience ?? undefined;
        if (shape === 'entra') return entraResource(ctx.oidc.params?.scope);
        return undefined;
      },
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        const server = cfg.resources[indicator];
        if (!server) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        return {
          scope: server.scope,
          audience: server.audience ?? indicator,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Per-user and per-machine claims: Auth0 `permissions` + `org_id`, Entra `roles` + `tid`, generic `tenant`.
  async extraTokenClaims(ctx, token) {
    if (token.kind === 'ClientCredentials') return cfg.machines?.[token.clientId] ?? {};
    if (token.kind === 'AccessToken') return cfg.users?.[token.accountId] ?? {};
    return undefined;
  },
  formats: {
    customizers: {
      jwt(ctx, token, jwt) {
        if (shape === 'entra') {
          const scope = jwt.payload.scope;
          delete jwt.payload.scope;
          if (scope) jwt.payload.scp = scope.split(' ').map((s) => s.replace(/^api:\/\/[^/]+\//, '')).join(' ');
          jwt.payload.ver = '2.0';
        }
        return jwt;
      },
    },
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.listen(cfg.port, '127.0.0.1', () => console.log(`ready ${cfg.issuer}`));
