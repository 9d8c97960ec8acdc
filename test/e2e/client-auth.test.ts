// Client authentication at the backchannel AND token endpoints (CIBA Core §7.1, RFC 6749 §2.3, RFC 7523, RFC 8705):
// every registered method succeeds end to end (bc-authorize → device approval → CIBA grant), and each way of getting
// it wrong is refused with the status and error code the specs name. One stack with the mutual-TLS listener; its
// truststore is the test CA plus the one self-signed client certificate (API Gateway refuses a self-signed
// certificate at the TLS level unless it is in the truststore, and so does the local listener).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createRemoteJWKSet,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { basic, CIBA_GRANT, SECRET, startWorld, type World } from '../support/e2e.ts';
import {
  createCa,
  createClientCert,
  createSelfSignedCert,
  createServerCert,
  type IssuedCertificate,
} from '../support/certs.ts';
import { expectError, request, type Reply } from '../support/https-client.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const JWT_SECRET = 'client-secret-jwt-0123456789abcdefghijklmnop'; // ≥ 32 bytes (HS256, RFC 7518 §3.2)

// ---- certificates --------------------------------------------------------------------------------------------
const ca = createCa();
const serverCert = createServerCert(ca);
const DN = 'CN=dn-client.example.com,O=Example,C=US';
const dnCert = createClientCert(ca, {
  subject: [
    ['C', 'US'],
    ['O', 'Example'],
    ['CN', 'dn-client.example.com'],
  ],
});
const sanCert = createClientCert(ca, { subject: [['CN', 'san client']], san: { dns: ['san-client.example.com'] } });
const selfSigned = createSelfSignedCert({ subject: [['CN', 'self-signed client']] });
// Refused by the listener: same subject DN as dnCert but issued by a CA outside the truststore; a self-signed one not in it.
const rogueCa = createCa({ subject: [['CN', 'Rogue CA']] });
const untrusted = createClientCert(rogueCa, {
  subject: [
    ['C', 'US'],
    ['O', 'Example'],
    ['CN', 'dn-client.example.com'],
  ],
});
const straySelfSigned = createSelfSignedCert({ subject: [['CN', 'stray self-signed']] });

// ---- client keys -----------------------------------------------------------------------------------------------
type Signer = { key: CryptoKey | Uint8Array; alg: string; kid?: string };

async function keyPair(alg: 'ES256' | 'PS256', kid: string): Promise<{ signer: Signer; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { signer: { key: privateKey, alg, kid }, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}
const es = await keyPair('ES256', 'pk-es-1');
const ps = await keyPair('PS256', 'pk-ps-1');
const rotA = await keyPair('ES256', 'rot-a');
const rotB = await keyPair('ES256', 'rot-b');
const rotC = await keyPair('ES256', 'rot-c');
const secretSigner: Signer = { key: new TextEncoder().encode(JWT_SECRET), alg: 'HS256' };

// ---- the client's jwks_uri: a loopback server whose key set the test rotates -------------------------------------
let served: JWK[] = [rotA.jwk];
let jwksFetches = 0;
/** When the jwks_uri server last answered (the server's refetch cooldown runs from there). */
let lastJwksFetchAt = 0;
const jwksServer: Server = createServer((_req, res) => {
  jwksFetches++;
  lastJwksFetchAt = Date.now();
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: served }));
});
await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
const jwksUri = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;

const base = { grant_types: [CIBA_GRANT], scope: 'openid profile', backchannel_token_delivery_mode: 'poll' };
const clients = [
  { ...base, client_id: 'jwt-secret', token_endpoint_auth_method: 'client_secret_jwt', client_secret: JWT_SECRET },
  { ...base, client_id: 'pk-es', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [es.jwk] } },
  { ...base, client_id: 'pk-ps', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [ps.jwk] } },
  { ...base, client_id: 'pk-uri', token_endpoint_auth_method: 'private_key_jwt', jwks_uri: jwksUri },
  { ...base, client_id: 'tls-dn', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: DN },
  {
    ...base,
    client_id: 'tls-san',
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_san_dns: 'san-client.example.com',
  },
  {
    ...base,
    client_id: 'self-signed',
    token_endpoint_auth_method: 'self_signed_tls_client_auth',
    jwks: { keys: [selfSigned.jwk] },
  },
];

let w: World;
let mtls: string;
/** The server refetches a jwks_uri on an unknown kid at most once per this many seconds (CIBA_JWKS_REFETCH_COOLDOWN). */
const COOLDOWN_S = 3;

before(async () => {
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', CIBA_JWKS_REFETCH_COOLDOWN: String(COOLDOWN_S) }, clients, [], {
    https: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem + selfSigned.certPem },
  });
  mtls = w.stack.mtlsUrl!;
  const probe = await send(w.issuer, '/token', { ...tokenProbe, ...jwtParams(await assertion('pk-uri', rotA.signer)) });
  assert.equal(probe.json.error, 'invalid_grant', probe.text);
  assert.equal(jwksFetches, 1);
});
after(async () => {
  await w?.close();
  await new Promise((resolve) => jwksServer.close(resolve));
});

// ---- HTTP ----------------------------------------------------------------------------------------------------------
/** A form POST over the plain listener or, for https base URLs, the mTLS listener (optional client certificate). */
function send(
  baseUrl: string,
  path: string,
  form: Record<string, string>,
  headers: Record<string, string> = {},
  cert?: IssuedCertificate,
): Promise<Reply> {
  return request('POST', baseUrl + path, { form, headers, ...(cert ? { cert } : {}), ca: ca.certPem });
}

// ---- credentials ---------------------------------------------------------------------------------------------------
async function assertion(clientId: string, signer: Signer, claims: Record<string, unknown> = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = {
    iss: clientId,
    sub: clientId,
    aud: w.issuer,
    jti: randomUUID(),
    iat: now,
    exp: now + 60,
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg: signer.alg, ...(signer.kid ? { kid: signer.kid } : {}) })
    .sign(signer.key);
}
const jwtParams = (jwt: string): Record<string, string> => ({
  client_assertion_type: JWT_BEARER,
  client_assertion: jwt,
});

type Credentials = { params: Record<string, string>; headers: Record<string, string> };
type Method = {
  label: string;
  clientId: string;
  baseUrl: () => string;
  cert?: IssuedCertificate;
  credentials(): Promise<Credentials>;
};

const viaJwt = (clientId: string, signer: Signer) => async (): Promise<Credentials> => ({
  params: jwtParams(await assertion(clientId, signer)),
  headers: {},
});
const viaCert = (clientId: string) => async (): Promise<Credentials> => ({
  params: { client_id: clientId },
  headers: {},
});

const METHODS: Method[] = [
  {
    label: 'client_secret_basic',
    clientId: 'rp',
    baseUrl: () => w.issuer,
    credentials: async () => ({ params: {}, headers: { authorization: basic('rp', SECRET) } }),
  },
  {
    label: 'client_secret_post',
    clientId: 'rp-post',
    baseUrl: () => w.issuer,
    credentials: async () => ({ params: { client_id: 'rp-post', client_secret: SECRET }, headers: {} }),
  },
  {
    label: 'client_secret_jwt (HS256)',
    clientId: 'jwt-secret',
    baseUrl: () => w.issuer,
    credentials: viaJwt('jwt-secret', secretSigner),
  },
  {
    label: 'private_key_jwt (ES256, jwks)',
    clientId: 'pk-es',
    baseUrl: () => w.issuer,
    credentials: viaJwt('pk-es', es.signer),
  },
  {
    label: 'private_key_jwt (PS256, jwks)',
    clientId: 'pk-ps',
    baseUrl: () => w.issuer,
    credentials: viaJwt('pk-ps', ps.signer),
  },
  {
    label: 'private_key_jwt (ES256, jwks_uri)',
    clientId: 'pk-uri',
    baseUrl: () => w.issuer,
    credentials: viaJwt('pk-uri', rotA.signer),
  },
  {
    label: 'tls_client_auth (subject DN)',
    clientId: 'tls-dn',
    baseUrl: () => mtls,
    cert: dnCert,
    credentials: viaCert('tls-dn'),
  },
  {
    label: 'tls_client_auth (SAN dNSName)',
    clientId: 'tls-san',
    baseUrl: () => mtls,
    cert: sanCert,
    credentials: viaCert('tls-san'),
  },
  {
    label: 'self_signed_tls_client_auth',
    clientId: 'self-signed',
    baseUrl: () => mtls,
    cert: selfSigned,
    credentials: viaCert('self-signed'),
  },
];

// ---- both endpoints ----------------------------------------------------------------------------------------------
const bcBody = { scope: 'openid', login_hint: 'alice' };
const tokenProbe = { grant_type: CIBA_GRANT, auth_req_id: 'no-such-auth-req-id-0123456789abcdefghijklmnop' };
/**
 * The same client authentication at each endpoint. Authenticated means: bc-authorize acknowledges (200); the token
 * endpoint gets past client authentication to the grant, answering invalid_grant for an unknown auth_req_id.
 */
const ENDPOINTS = [
  { path: '/bc-authorize', body: bcBody, authenticated: (r: Reply) => assert.equal(r.status, 200, r.text) },
  {
    path: '/token',
    body: tokenProbe,
    authenticated: (r: Reply) => expectError(r, 400, 'invalid_grant', 'authenticated, unknown auth_req_id'),
  },
] as const;

async function approve(bindingMessage: string) {
  const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
  const res = await w.alice.decide(request.id, 'approve');
  assert.equal(res.status, 204, res.body);
}

describe('each method: bc-authorize 200, device approval, CIBA grant 200 with the same method', () => {
  for (const m of METHODS) {
    test(m.label, async () => {
      const bindingMessage = `CA-${m.clientId}-${randomUUID().slice(0, 8)}`;
      const first = await m.credentials();
      const bc = await send(
        m.baseUrl(),
        '/bc-authorize',
        { ...bcBody, binding_message: bindingMessage, ...first.params },
        first.headers,
        m.cert,
      );
      assert.equal(bc.status, 200, bc.text);
      assert.equal(typeof bc.json.auth_req_id, 'string');
      await approve(bindingMessage);
      const creds = await m.credentials();
      const tokens = await send(
        m.baseUrl(),
        '/token',
        { grant_type: CIBA_GRANT, auth_req_id: String(bc.json.auth_req_id), ...creds.params },
        creds.headers,
        m.cert,
      );
      assert.equal(tokens.status, 200, tokens.text);
      const jwks = createRemoteJWKSet(new URL(`${w.issuer}/jwks`));
      const { payload: id } = await jwtVerify(String(tokens.json.id_token), jwks, {
        issuer: w.issuer,
        audience: m.clientId,
      });
      assert.equal(id.sub, 'alice');
      const { payload: at } = await jwtVerify(String(tokens.json.access_token), jwks, {
        issuer: w.issuer,
        audience: w.issuer,
        typ: 'at+jwt',
      });
      assert.equal(at.client_id, m.clientId);
      assert.equal(at.cnf, undefined, 'not registered for certificate-bound tokens');
      // The auth_req_id is single use whatever the method.
      const again = await m.credentials();
      expectError(
        await send(
          m.baseUrl(),
          '/token',
          { grant_type: CIBA_GRANT, auth_req_id: String(bc.json.auth_req_id), ...again.params },
          again.headers,
          m.cert,
        ),
        400,
        'invalid_grant',
      );
    });
  }
});

describe('failures common to all methods (both endpoints)', () => {
  for (const ep of ENDPOINTS) {
    test(`${ep.path}: no credentials at all → 401 invalid_client`, async () => {
      expectError(await send(w.issuer, ep.path, ep.body), 401, 'invalid_client', 'nothing');
      expectError(
        await send(w.issuer, ep.path, { ...ep.body, client_id: 'rp' }),
        401,
        'invalid_client',
        'client_id only (secret client)',
      );
      expectError(
        await send(w.issuer, ep.path, { ...ep.body, client_id: 'pk-es' }),
        401,
        'invalid_client',
        'client_id only (private_key_jwt client)',
      );
      expectError(
        await send(mtls, ep.path, { ...ep.body, client_id: 'rp' }),
        401,
        'invalid_client',
        'client_id only over mTLS without a certificate',
      );
    });

    test(`${ep.path}: a method other than the registered one → 401 invalid_client`, async () => {
      const wrong: [string, Reply][] = [
        [
          'basic for a private_key_jwt client',
          await send(w.issuer, ep.path, ep.body, { authorization: basic('pk-es', SECRET) }),
        ],
        [
          'client_secret_post for a client_secret_basic client',
          await send(w.issuer, ep.path, { ...ep.body, client_id: 'rp', client_secret: SECRET }),
        ],
        [
          'client_secret_basic for a client_secret_post client',
          await send(w.issuer, ep.path, ep.body, { authorization: basic('rp-post', SECRET) }),
        ],
        [
          'private_key_jwt for a client_secret_basic client',
          await send(w.issuer, ep.path, { ...ep.body, ...jwtParams(await assertion('rp', es.signer)) }),
        ],
        [
          'HS256 with its secret for a client_secret_basic client',
          await send(w.issuer, ep.path, {
            ...ep.body,
            ...jwtParams(
              await assertion('rp', { key: new TextEncoder().encode(SECRET.padEnd(32, 'x')), alg: 'HS256' }),
            ),
          }),
        ],
        [
          'private_key_jwt (ES256) for a client_secret_jwt client',
          await send(w.issuer, ep.path, { ...ep.body, ...jwtParams(await assertion('jwt-secret', es.signer)) }),
        ],
        [
          'client_secret_basic for a tls_client_auth client',
          await send(mtls, ep.path, ep.body, { authorization: basic('tls-dn', SECRET) }, dnCert),
        ],
        [
          'a certificate for a client_secret_basic client',
          await send(mtls, ep.path, { ...ep.body, client_id: 'rp' }, {}, dnCert),
        ],
        [
          'a certificate for a private_key_jwt client',
          await send(mtls, ep.path, { ...ep.body, client_id: 'pk-es' }, {}, selfSigned),
        ],
        [
          'private_key_jwt for a self_signed_tls_client_auth client (its own key)',
          await send(
            mtls,
            ep.path,
            {
              ...ep.body,
              ...jwtParams(
                await assertion('self-signed', { key: await importPrivate(selfSigned.privateJwk), alg: 'ES256' }),
              ),
            },
            {},
            selfSigned,
          ),
        ],
      ];
      for (const [what, res] of wrong) expectError(res, 401, 'invalid_client', what);
      // RFC 6749 §5.2: Basic credentials that fail get the Basic challenge.
      assert.match(String(wrong[0]![1].headers['www-authenticate']), /^Basic /);
    });

    test(`${ep.path}: two methods in one request → 400 invalid_request`, async () => {
      const two: [string, Reply][] = [
        [
          'Basic header + client_secret in the body',
          await send(
            w.issuer,
            ep.path,
            { ...ep.body, client_id: 'rp', client_secret: SECRET },
            { authorization: basic('rp', SECRET) },
          ),
        ],
        [
          'Basic header + client_assertion',
          await send(
            w.issuer,
            ep.path,
            { ...ep.body, ...jwtParams(await assertion('pk-es', es.signer)) },
            { authorization: basic('rp', SECRET) },
          ),
        ],
        [
          'client_secret + client_assertion',
          await send(w.issuer, ep.path, {
            ...ep.body,
            client_id: 'pk-es',
            client_secret: SECRET,
            ...jwtParams(await assertion('pk-es', es.signer)),
          }),
        ],
      ];
      for (const [what, res] of two) expectError(res, 400, 'invalid_request', what);
    });
  }
});

/** A self-signed certificate's private JWK as a CryptoKey (for the "wrong method" case). */
const importPrivate = async (jwk: JWK) => (await importJWK(jwk, 'ES256')) as CryptoKey;

/** Assertions whose aud is an array naming this server and more: each must be refused (the sole-audience rule). */
const multiAudience = async (path: string): Promise<[string, string][]> => {
  const elsewhere = 'https://elsewhere.example/token';
  const ours = `${w.issuer}${path}`;
  return [
    ['aud: another server next to our endpoint', await assertion('pk-es', es.signer, { aud: [elsewhere, ours] })],
    ['aud: the issuer next to another server', await assertion('pk-es', es.signer, { aud: [w.issuer, elsewhere] })],
    ['aud: two of our own values', await assertion('pk-es', es.signer, { aud: [w.issuer, ours] })],
    [
      'aud: another server next to ours (client_secret_jwt)',
      await assertion('jwt-secret', secretSigner, { aud: [elsewhere, w.issuer] }),
    ],
  ];
};

describe('JWT assertions (RFC 7523 §3) at both endpoints', () => {
  for (const ep of ENDPOINTS) {
    const post = async (jwt: string, extra: Record<string, string> = {}) =>
      send(w.issuer, ep.path, { ...ep.body, ...jwtParams(jwt), ...extra });

    test(`${ep.path}: client_assertion_type missing or wrong → 401 invalid_client`, async () => {
      const jwt = await assertion('pk-es', es.signer);
      expectError(
        await send(w.issuer, ep.path, { ...ep.body, client_assertion: jwt }),
        401,
        'invalid_client',
        'missing type',
      );
      expectError(
        await send(w.issuer, ep.path, {
          ...ep.body,
          client_assertion: jwt,
          client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
        }),
        401,
        'invalid_client',
        'saml2 type',
      );
      expectError(
        await send(w.issuer, ep.path, { ...ep.body, client_assertion_type: JWT_BEARER }),
        401,
        'invalid_client',
        'type without assertion',
      );
    });

    test(`${ep.path}: every accepted aud succeeds (issuer, token endpoint, backchannel endpoint, their mTLS aliases)`, async () => {
      // A string, or a one-element array (still a single audience: draft-ietf-oauth-rfc7523bis, FAPI 2.0).
      const accepted = [
        w.issuer,
        `${w.issuer}/token`,
        `${w.issuer}/bc-authorize`,
        [`${w.issuer}${ep.path}`],
        [w.issuer],
        `${mtls}/token`,
        `${mtls}/bc-authorize`,
      ];
      for (const aud of accepted) {
        ep.authenticated(await post(await assertion('pk-es', es.signer, { aud })));
        ep.authenticated(await post(await assertion('jwt-secret', secretSigner, { aud })));
      }
      // The client_id parameter may accompany the assertion when it names the same client (RFC 7521 §4.2).
      ep.authenticated(await post(await assertion('pk-es', es.signer), { client_id: 'pk-es' }));
      expectError(
        await post(await assertion('pk-es', es.signer), { client_id: 'pk-ps' }),
        401,
        'invalid_client',
        'client_id names another client',
      );
    });

    test(`${ep.path}: bad assertions → 401 invalid_client`, async () => {
      const now = Math.floor(Date.now() / 1000);
      const valid = await assertion('pk-es', es.signer);
      const [h, p, s] = valid.split('.') as [string, string, string];
      const i = Math.floor(s.length / 2);
      const flipped = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const cases: [string, string][] = [
        ['wrong signature', flipped],
        ['aud of another server', await assertion('pk-es', es.signer, { aud: 'https://elsewhere.example/token' })],
        // draft-ietf-oauth-rfc7523bis, FAPI 2.0: this server as the sole audience; an array of several is refused.
        ...(await multiAudience(ep.path)),
        ['aud missing', await assertion('pk-es', es.signer, { aud: undefined })],
        ['expired', await assertion('pk-es', es.signer, { iat: now - 300, exp: now - 120 })],
        ['exp too far ahead (> 600 s)', await assertion('pk-es', es.signer, { exp: now + 3600 })],
        ['exp missing', await assertion('pk-es', es.signer, { exp: undefined })],
        ['jti missing', await assertion('pk-es', es.signer, { jti: undefined })],
        ['iss ≠ sub', await assertion('pk-es', es.signer, { iss: 'pk-ps' })],
        ['iss missing', await assertion('pk-es', es.signer, { iss: undefined })],
        ["signed with another client's key", await assertion('pk-es', ps.signer)],
        [
          "another client's key under this client's kid",
          await assertion('pk-es', { ...ps.signer, alg: 'PS256', kid: es.signer.kid! }),
        ],
        [
          'HS256 for a private_key_jwt client',
          await assertion('pk-es', { key: new TextEncoder().encode(JWT_SECRET), alg: 'HS256', kid: es.signer.kid! }),
        ],
        [
          'alg none',
          `${b64({ alg: 'none' })}.${b64({ iss: 'pk-es', sub: 'pk-es', aud: w.issuer, jti: randomUUID(), exp: now + 60 })}.`,
        ],
        [
          'client_secret_jwt with a wrong secret',
          await assertion('jwt-secret', { key: new TextEncoder().encode(JWT_SECRET.replace('0', '1')), alg: 'HS256' }),
        ],
        ['not a JWT', 'not.a.jwt'],
      ];
      for (const [what, jwt] of cases) {
        const res = await post(jwt, what === 'not a JWT' ? { client_id: 'pk-es' } : {});
        expectError(res, 401, 'invalid_client', what);
      }
      for (const [what, jwt] of await multiAudience(ep.path)) {
        assert.match(String((await post(jwt)).json.error_description), /aud must be a single audience/, what);
      }
    });

    test(`${ep.path}: a replayed assertion (same jti) is refused the second time`, async () => {
      const jwt = await assertion('pk-es', es.signer);
      ep.authenticated(await post(jwt));
      expectError(await post(jwt), 401, 'invalid_client', 'replay');
      const hs = await assertion('jwt-secret', secretSigner);
      ep.authenticated(await post(hs));
      expectError(await post(hs), 401, 'invalid_client', 'replay (client_secret_jwt)');
    });
  }

  test('an assertion used at the backchannel endpoint cannot be replayed at the token endpoint', async () => {
    const jwt = await assertion('pk-es', es.signer, { aud: [w.issuer] });
    assert.equal((await send(w.issuer, '/bc-authorize', { ...bcBody, ...jwtParams(jwt) })).status, 200);
    expectError(
      await send(w.issuer, '/token', { ...tokenProbe, ...jwtParams(jwt) }),
      401,
      'invalid_client',
      'cross-endpoint replay',
    );
  });
});

describe('mutual TLS (RFC 8705 §2) at both endpoints', () => {
  for (const ep of ENDPOINTS) {
    test(`${ep.path}: no certificate → 401 invalid_client`, async () => {
      for (const id of ['tls-dn', 'tls-san', 'self-signed']) {
        expectError(
          await send(w.issuer, ep.path, { ...ep.body, client_id: id }),
          401,
          'invalid_client',
          `${id} over plain HTTP`,
        );
        expectError(
          await send(mtls, ep.path, { ...ep.body, client_id: id }),
          401,
          'invalid_client',
          `${id} over mTLS without a certificate`,
        );
      }
    });

    test(`${ep.path}: a trusted certificate of another client → 401 invalid_client`, async () => {
      for (const [id, cert, owner] of [
        ['tls-san', dnCert, 'tls-dn'],
        ['tls-dn', sanCert, 'tls-san'],
        ['tls-dn', selfSigned, 'self-signed'],
        ['self-signed', dnCert, 'tls-dn'],
      ] as const) {
        expectError(
          await send(mtls, ep.path, { ...ep.body, client_id: id }, {}, cert),
          401,
          'invalid_client',
          `${owner}'s certificate used as ${id}`,
        );
      }
      // Each certificate still works for its own client.
      ep.authenticated(await send(mtls, ep.path, { ...ep.body, client_id: 'tls-dn' }, {}, dnCert));
      ep.authenticated(await send(mtls, ep.path, { ...ep.body, client_id: 'self-signed' }, {}, selfSigned));
    });

    test(`${ep.path}: an untrusted certificate is refused by the listener (403, like API Gateway)`, async () => {
      for (const [what, cert] of [
        ['CA outside the truststore (same subject DN as tls-dn)', untrusted],
        ['self-signed, not in the truststore', straySelfSigned],
      ] as const) {
        const res = await send(mtls, ep.path, { ...ep.body, client_id: 'tls-dn' }, {}, cert);
        assert.equal(res.status, 403, `${what}: ${res.text}`);
        assert.deepEqual(res.json, { message: 'Forbidden' }, what);
      }
    });
  }

  test('an expired certificate from the trusted CA is refused by the listener (403, like API Gateway)', async () => {
    // tls-dn's subject DN, issued by the truststore's CA, but valid only from two days ago until yesterday.
    const day = 24 * 60 * 60 * 1000;
    const expired = createClientCert(ca, {
      subject: [
        ['C', 'US'],
        ['O', 'Example'],
        ['CN', 'dn-client.example.com'],
      ],
      validity: { notBefore: new Date(Date.now() - 2 * day), notAfter: new Date(Date.now() - day) },
    });
    assert.ok(expired.cert.validToDate.getTime() < Date.now(), 'the certificate has expired');
    assert.ok(expired.cert.checkIssued(ca.cert) && expired.cert.verify(ca.cert.publicKey), 'issued by the trusted CA');
    for (const ep of ENDPOINTS) {
      const res = await send(mtls, ep.path, { ...ep.body, client_id: 'tls-dn' }, {}, expired);
      assert.equal(res.status, 403, `${ep.path}: ${res.text}`);
      assert.deepEqual(res.json, { message: 'Forbidden' }, ep.path);
    }
  });
});

describe('jwks_uri key rotation (private_key_jwt)', () => {
  const viaKey = async (signer: typeof rotA.signer) => jwtParams(await assertion('pk-uri', signer));
  const afterCooldown = async () => {
    const wait = lastJwksFetchAt + COOLDOWN_S * 1000 + 200 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };

  test('an unknown kid refetches jwks_uri (at most once per cooldown); retired keys then fail', async () => {
    // A → B: once the cooldown since the last fetch has passed, B's kid triggers exactly one refetch and is accepted.
    served = [rotB.jwk];
    await afterCooldown();
    const before = jwksFetches;
    ENDPOINTS[1].authenticated(await send(w.issuer, '/token', { ...tokenProbe, ...(await viaKey(rotB.signer)) }));
    assert.equal(jwksFetches, before + 1, 'exactly one refetch');
    const bm = `ROT-${randomUUID().slice(0, 8)}`;
    const bc = await send(w.issuer, '/bc-authorize', {
      ...bcBody,
      binding_message: bm,
      ...(await viaKey(rotB.signer)),
    });
    assert.equal(bc.status, 200, bc.text);
    await approve(bm);
    const tokens = await send(w.issuer, '/token', {
      grant_type: CIBA_GRANT,
      auth_req_id: String(bc.json.auth_req_id),
      ...(await viaKey(rotB.signer)),
    });
    assert.equal(tokens.status, 200, tokens.text);
    assert.equal(decodeJwt(String(tokens.json.access_token)).client_id, 'pk-uri');
    // The retired key A is gone from the refreshed set.
    expectError(
      await send(w.issuer, '/token', { ...tokenProbe, ...(await viaKey(rotA.signer)) }),
      401,
      'invalid_client',
      'retired key A',
    );

    // B → C right after a fetch: within the cooldown an unknown kid is refused without hammering jwks_uri.
    served = [rotC.jwk];
    const refused = await send(w.issuer, '/token', { ...tokenProbe, ...(await viaKey(rotC.signer)) });
    if (Date.now() - lastJwksFetchAt < COOLDOWN_S * 1000 - 500) {
      expectError(refused, 401, 'invalid_client', 'new kid within the cooldown');
      assert.equal(jwksFetches, before + 1, 'no refetch within the cooldown');
    }
    await afterCooldown();
    ENDPOINTS[1].authenticated(await send(w.issuer, '/token', { ...tokenProbe, ...(await viaKey(rotC.signer)) }));
    expectError(
      await send(w.issuer, '/token', { ...tokenProbe, ...(await viaKey(rotB.signer)) }),
      401,
      'invalid_client',
      'retired key B',
    );
  });
});
