// oidc-provider configured for the client_credentials interop tests.
//
// Started by the Rust tests (tests/interop.rs): binds 127.0.0.1 on a free port, prints one JSON
// line {"issuer": ..., "port": ..., "tls": ...} on stdout when ready, and exits when its
// standard input closes, so it never outlives the test process that started it.
//
// Mutual TLS (RFC 8705): oidc-provider terminates no TLS, so the same provider is also served
// by an HTTPS front on a second port ("tls", an https:// base URL), which asks every client for
// a certificate, verifies it against the test CA without refusing the handshake, and lets the
// provider read it (features.mTLS below). The certificates are tests/interop/certs.
import { X509Certificate, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
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
const tlsPort = await freePort();
const tls = `https://127.0.0.1:${tlsPort}`;

const CERTS = new URL('certs/', import.meta.url);
const cert = (file) => readFileSync(new URL(file, CERTS));
// The client certificate of this request, as PEM; none on the plain HTTP port.
const peerCertificate = (ctx) => {
  const peer = ctx.socket.getPeerCertificate?.(false);
  return peer?.raw ? new X509Certificate(peer.raw) : undefined;
};
const selfSigned = new X509Certificate(cert('self-signed.pem'));

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
    // Mutual TLS: a certificate issued by the test CA, matched by its subject, and a
    // self-signed one registered as x5c; both get certificate-bound tokens.
    {
      ...clientDefaults,
      client_id: 'mtls-client',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=mtls-client',
      tls_client_certificate_bound_access_tokens: true,
    },
    {
      ...clientDefaults,
      client_id: 'self-signed-client',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [{ ...selfSigned.publicKey.export({ format: 'jwk' }), x5c: [selfSigned.raw.toString('base64')] }] },
      tls_client_certificate_bound_access_tokens: true,
    },
  ],
  // Announced like a server with a separate mutual-TLS host (RFC 8705 §5).
  discovery: {
    mtls_endpoint_aliases: {
      token_endpoint: `${tls}/token`,
      introspection_endpoint: `${tls}/token/introspection`,
      revocation_endpoint: `${tls}/token/revocation`,
    },
  },
  scopes: ['api:read', 'api:write', 'admin'],
  clientAuthMethods: [
    'none', 'client_secret_basic', 'client_secret_jwt', 'client_secret_post', 'private_key_jwt',
    'tls_client_auth', 'self_signed_tls_client_auth',
  ],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    mTLS: {
      enabled: true,
      tlsClientAuth: true,
      selfSignedTlsClientAuth: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => peerCertificate(ctx)?.toString(),
      // Verified against the test CA by the TLS front (`ca` below).
      certificateAuthorized: (ctx) => ctx.socket.authorized === true,
      certificateSubjectMatches: (ctx, property, expected) => property === 'tls_client_auth_subject_dn'
        && peerCertificate(ctx)?.subject === expected,
    },
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
  const front = https.createServer({
    key: cert('server.key'),
    cert: cert('server.pem'),
    ca: cert('ca.pem'),
    requestCert: true,
    rejectUnauthorized: false,
  }, provider.callback());
  front.listen(tlsPort, '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ issuer, port, tls })}\n`);
  });
});

process.stdin.resume();
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
