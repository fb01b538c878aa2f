// oidc-provider configured for the client_credentials interop tests.
//
// Started by the Rust tests (tests/interop.rs): binds 127.0.0.1 on a free port, prints one JSON
// line {"issuer": ..., "port": ...} on stdout when ready, and exits when its standard input
// closes, so it never outlives the test process that started it.
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import Provider, { errors } from 'oidc-provider';

const RESOURCE = 'https://api.example.com/';

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const port = Number(process.env.PORT) || await freePort();
const issuer = `http://127.0.0.1:${port}`;

// The public halves of the test keys that the Rust tests sign client assertions with
// (crates/client-credentials-core/tests/keys), as JWKs, converted here by Node's crypto.
const KEYS = new URL('../../crates/client-credentials-core/tests/keys/', import.meta.url);
const jwk = (file) => createPublicKey(readFileSync(new URL(file, KEYS))).export({ format: 'jwk' });
const jwtClient = (client_id, alg, file) => ({
  ...clientDefaults,
  client_id,
  token_endpoint_auth_method: 'private_key_jwt',
  token_endpoint_auth_signing_alg: alg,
  jwks: { keys: [jwk(file)] },
});

const clientDefaults = {
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'api:read api:write',
};

const provider = new Provider(issuer, {
  clients: [
    { ...clientDefaults, client_id: 'basic-client', client_secret: 'basic-secret', token_endpoint_auth_method: 'client_secret_basic' },
    { ...clientDefaults, client_id: 'post-client', client_secret: 'post-secret', token_endpoint_auth_method: 'client_secret_post' },
    { ...clientDefaults, client_id: 'encoded-client', client_secret: 'a+b/c:d%e f', token_endpoint_auth_method: 'client_secret_basic' },
    jwtClient('rs256-client', 'RS256', 'rsa-2048.pub.pem'),
    jwtClient('ps256-client', 'PS256', 'rsa-2048.pub.pem'),
    jwtClient('es256-client', 'ES256', 'ec-p256.pub.pem'),
    jwtClient('eddsa-client', 'EdDSA', 'ed25519.pub.pem'),
    // DPoP with server nonces required (features.dPoP.requireNonce below).
    { ...clientDefaults, client_id: 'nonce-client', client_secret: 'nonce-secret', token_endpoint_auth_method: 'client_secret_basic' },
    { ...clientDefaults, client_id: 'hs256-client', client_secret: 'a-client-secret-of-at-least-32-bytes-0123', token_endpoint_auth_method: 'client_secret_jwt', token_endpoint_auth_signing_alg: 'HS256' },
  ],
  scopes: ['api:read', 'api:write', 'admin'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    dPoP: {
      enabled: true,
      nonceSecret: Buffer.alloc(32, 7),
      requireNonce: (ctx) => ctx.oidc?.client?.clientId === 'nonce-client',
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => false,
      getResourceServerInfo: (ctx, resourceIndicator) => {
        if (resourceIndicator === RESOURCE) {
          return {
            scope: 'api:read api:write',
            audience: RESOURCE,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        }
        throw new errors.InvalidTarget();
      },
    },
  },
  ttl: { ClientCredentials: 300 },
});

const server = provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

process.stdin.resume();
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
