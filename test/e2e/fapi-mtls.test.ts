// A FAPI-CIBA client end to end over the mutual-TLS listener (FAPI-CIBA §5.2.2, FAPI 1 Advanced §5.2.2, RFC 8705 §3):
// signed request objects (PS256), client authentication by tls_client_auth and by private_key_jwt, access tokens bound
// to the client certificate (cnf.x5t#S256) and enforced at userinfo, PS256 ID tokens, the discovery metadata for
// mTLS, and the registration rules of the profile.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import {
  createRemoteJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { CIBA_GRANT, basic, SECRET, startWorld, type World } from '../support/e2e.ts';
import { createCa, createClientCert, createServerCert, type IssuedCertificate } from '../support/certs.ts';
import { expectError, request, type Reply, type RequestOptions } from '../support/https-client.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const ca = createCa();
const serverCert = createServerCert(ca);
const FAPI_DN = 'CN=fapi-client.example.com,O=Bank,C=GB';
const fapiCert = createClientCert(ca, {
  subject: [
    ['C', 'GB'],
    ['O', 'Bank'],
    ['CN', 'fapi-client.example.com'],
  ],
});
const pkjwtCert = createClientCert(ca, { subject: [['CN', 'fapi-pkjwt transport']] });
const otherCert = createClientCert(ca, { subject: [['CN', 'someone else']] });

type Signer = { key: CryptoKey; alg: string; kid: string };
async function keyPair(alg: 'PS256' | 'ES256' | 'RS256', kid: string): Promise<{ signer: Signer; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { signer: { key: privateKey, alg, kid }, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}
const mtlsReqKey = await keyPair('PS256', 'fapi-mtls-req');
const pkjwtKey = await keyPair('PS256', 'fapi-pkjwt-1');
const rsKey = await keyPair('RS256', 'fapi-mtls-rs'); // registered, but RS256 is not a FAPI algorithm

const fapiBase = {
  security_profile: 'fapi-ciba',
  grant_types: [CIBA_GRANT, 'refresh_token'],
  scope: 'openid profile email',
  backchannel_token_delivery_mode: 'poll',
  backchannel_authentication_request_signing_alg: 'PS256',
  id_token_signed_response_alg: 'PS256',
};
const clients = [
  {
    ...fapiBase,
    client_id: 'fapi-mtls',
    token_endpoint_auth_method: 'tls_client_auth',
    tls_client_auth_subject_dn: FAPI_DN,
    jwks: { keys: [mtlsReqKey.jwk, rsKey.jwk] },
  },
  {
    ...fapiBase,
    client_id: 'fapi-pkjwt',
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: { keys: [pkjwtKey.jwk] },
  },
];

let w: World;
let mtls: string;
before(async () => {
  w = await startWorld({ CIBA_POLL_INTERVAL: '1' }, clients, [], {
    https: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem },
  });
  mtls = w.stack.mtlsUrl!;
});
after(() => w?.close());

// ---- HTTP ------------------------------------------------------------------------------------------------------
/** One request (see test/support/https-client.ts), trusting the test CA. */
const call = (method: 'GET' | 'POST', url: string, options: Omit<RequestOptions, 'ca'> = {}): Promise<Reply> =>
  request(method, url, { ...options, ca: ca.certPem });

// ---- the FAPI client side --------------------------------------------------------------------------------------
/** CIBA §7.1.1 signed authentication request with the FAPI-CIBA claims: iss, aud = issuer, exp, iat, nbf, jti. */
async function requestObject(clientId: string, signer: Signer, claims: Record<string, unknown>): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload = {
    iss: clientId,
    aud: w.issuer,
    iat: now,
    nbf: now,
    exp: now + 300,
    jti: randomUUID(),
    scope: 'openid profile email',
    login_hint: 'alice',
    ...claims,
  };
  return new SignJWT(payload).setProtectedHeader({ alg: signer.alg, kid: signer.kid, typ: 'JWT' }).sign(signer.key);
}

async function clientAssertion(clientId: string, signer: Signer, aud: string): Promise<Record<string, string>> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = await new SignJWT({ iss: clientId, sub: clientId, aud, jti: randomUUID(), iat: now, exp: now + 60 })
    .setProtectedHeader({ alg: signer.alg, kid: signer.kid })
    .sign(signer.key);
  return { client_assertion_type: JWT_BEARER, client_assertion: jwt };
}

type FapiClient = {
  clientId: string;
  signer: Signer;
  cert: IssuedCertificate;
  auth(endpoint: string): Promise<Record<string, string>>;
};
const FAPI_CLIENTS: FapiClient[] = [
  { clientId: 'fapi-mtls', signer: mtlsReqKey.signer, cert: fapiCert, auth: async () => ({ client_id: 'fapi-mtls' }) },
  // aud: the mTLS alias of the endpoint the assertion is sent to (RFC 8705 §5 makes those the endpoints this client uses).
  {
    clientId: 'fapi-pkjwt',
    signer: pkjwtKey.signer,
    cert: pkjwtCert,
    auth: (endpoint) => clientAssertion('fapi-pkjwt', pkjwtKey.signer, endpoint),
  },
];

const thumbprint = (cert: IssuedCertificate) => createHash('sha256').update(cert.cert.raw).digest('base64url');

async function approve(bindingMessage: string) {
  const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
  const res = await w.alice.decide(request.id, 'approve');
  assert.equal(res.status, 204, res.body);
}

/** Signed request over mTLS → 200; the device approves. Returns the auth_req_id. */
async function startApproved(c: FapiClient): Promise<string> {
  const bindingMessage = `FAPI ${randomUUID().slice(0, 8)}`;
  const bc = await call('POST', `${mtls}/bc-authorize`, {
    form: {
      request: await requestObject(c.clientId, c.signer, { binding_message: bindingMessage }),
      ...(await c.auth(`${mtls}/bc-authorize`)),
    },
    cert: c.cert,
  });
  assert.equal(bc.status, 200, bc.text);
  assert.deepEqual(Object.keys(bc.json).sort(), ['auth_req_id', 'expires_in', 'interval']);
  await approve(bindingMessage);
  return String(bc.json.auth_req_id);
}

describe('FAPI-CIBA over mutual TLS: certificate-bound tokens', () => {
  for (const c of FAPI_CLIENTS) {
    test(`${c.clientId}: signed request, approval, bound access token, PS256 ID token, userinfo only with the same certificate`, async () => {
      const authReqId = await startApproved(c);

      // The token endpoint over plain HTTP (no certificate): refused, and the grant is not consumed.
      const plain = await call('POST', `${w.issuer}/token`, {
        form: { grant_type: CIBA_GRANT, auth_req_id: authReqId, ...(await c.auth(`${w.issuer}/token`)) },
      });
      if (c.clientId === 'fapi-mtls')
        expectError(plain, 401, 'invalid_client', 'tls_client_auth without a certificate cannot authenticate');
      else
        expectError(
          plain,
          400,
          'invalid_request',
          'private_key_jwt authenticated, but certificate-bound tokens need the certificate',
        );

      const res = await call('POST', `${mtls}/token`, {
        form: { grant_type: CIBA_GRANT, auth_req_id: authReqId, ...(await c.auth(`${mtls}/token`)) },
        cert: c.cert,
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers['cache-control'], 'no-store');
      const jwks = createRemoteJWKSet(new URL(`${w.issuer}/jwks`));

      // RFC 8705 §3.1: cnf.x5t#S256 = base64url(SHA-256(DER of the client certificate)).
      const { payload: at } = await jwtVerify(String(res.json.access_token), jwks, {
        issuer: w.issuer,
        audience: w.issuer,
        typ: 'at+jwt',
      });
      assert.deepEqual(at.cnf, { 'x5t#S256': thumbprint(c.cert) });
      assert.equal(at.client_id, c.clientId);
      assert.equal(at.sub, 'alice');

      // FAPI: PS256 ID token.
      const idToken = String(res.json.id_token);
      assert.equal(decodeProtectedHeader(idToken).alg, 'PS256');
      const { payload: id } = await jwtVerify(idToken, jwks, {
        issuer: w.issuer,
        audience: c.clientId,
        algorithms: ['PS256'],
      });
      assert.equal(id.sub, 'alice');

      const bearer = { authorization: `Bearer ${String(res.json.access_token)}` };
      const ok = await call('GET', `${mtls}/userinfo`, { headers: bearer, cert: c.cert });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.sub, 'alice');
      assert.equal(ok.json.email, 'alice@example.com');

      for (const [what, reply] of [
        ['plain HTTP, no certificate', await call('GET', `${w.issuer}/userinfo`, { headers: bearer })],
        ['mTLS listener, no certificate', await call('GET', `${mtls}/userinfo`, { headers: bearer })],
        [
          'mTLS with another trusted client certificate',
          await call('GET', `${mtls}/userinfo`, { headers: bearer, cert: otherCert }),
        ],
      ] as const) {
        expectError(reply, 401, 'invalid_token', what);
        assert.match(String(reply.headers['www-authenticate']), /^Bearer .*error="invalid_token"/, what);
      }

      // Refresh (RFC 8705 §3): over mTLS the new access token is bound again; without the certificate, refused.
      const refreshToken = String(res.json.refresh_token);
      const refreshedPlain = await call('POST', `${w.issuer}/token`, {
        form: { grant_type: 'refresh_token', refresh_token: refreshToken, ...(await c.auth(`${w.issuer}/token`)) },
      });
      if (c.clientId === 'fapi-mtls')
        expectError(refreshedPlain, 401, 'invalid_client', 'refresh without a certificate (tls_client_auth)');
      else
        expectError(
          refreshedPlain,
          400,
          'invalid_request',
          'refresh without a certificate (private_key_jwt, bound tokens)',
        );
      const refreshed = await call('POST', `${mtls}/token`, {
        form: { grant_type: 'refresh_token', refresh_token: refreshToken, ...(await c.auth(`${mtls}/token`)) },
        cert: c.cert,
      });
      assert.equal(refreshed.status, 200, refreshed.text);
      const { payload: at2 } = await jwtVerify(String(refreshed.json.access_token), jwks, {
        issuer: w.issuer,
        audience: w.issuer,
        typ: 'at+jwt',
      });
      assert.deepEqual(at2.cnf, { 'x5t#S256': thumbprint(c.cert) });
    });
  }

  test('the FAPI request rules hold over mTLS: unsigned, RS256-signed or context-free requests are refused', async () => {
    const c = FAPI_CLIENTS[0]!;
    const post = async (form: Record<string, string>) =>
      call('POST', `${mtls}/bc-authorize`, { form: { ...form, client_id: c.clientId }, cert: c.cert });
    expectError(
      await post({ scope: 'openid', login_hint: 'alice', binding_message: 'UNSIGNED' }),
      400,
      'invalid_request',
      'unsigned',
    );
    expectError(
      await post({ request: await requestObject(c.clientId, rsKey.signer, { binding_message: 'RS256' }) }),
      400,
      'invalid_request',
      'RS256 request object',
    );
    expectError(
      await post({ request: await requestObject(c.clientId, c.signer, {}) }),
      400,
      'invalid_request',
      'no binding_message nor request_context',
    );
    expectError(
      await post({
        request: await requestObject(c.clientId, c.signer, { binding_message: 'AUD', aud: `${mtls}/bc-authorize` }),
      }),
      400,
      'invalid_request',
      'aud not the issuer',
    );
  });
});

describe('discovery (RFC 8705 §5)', () => {
  test('mtls_endpoint_aliases, certificate-bound tokens and all six client authentication methods', async () => {
    const res = await fetch(`${w.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, unknown>;
    assert.match(mtls, /^https:\/\/localhost:\d+$/);
    assert.deepEqual(meta.mtls_endpoint_aliases, {
      token_endpoint: `${mtls}/token`,
      backchannel_authentication_endpoint: `${mtls}/bc-authorize`,
      userinfo_endpoint: `${mtls}/userinfo`,
      revocation_endpoint: `${mtls}/revoke`,
      introspection_endpoint: `${mtls}/introspect`,
    });
    assert.equal(meta.tls_client_certificate_bound_access_tokens, true);
    assert.deepEqual([...(meta.token_endpoint_auth_methods_supported as string[])].sort(), [
      'client_secret_basic',
      'client_secret_jwt',
      'client_secret_post',
      'private_key_jwt',
      'self_signed_tls_client_auth',
      'tls_client_auth',
    ]);
    // The plain endpoints stay on the issuer; the same document is served over mTLS.
    assert.equal(meta.token_endpoint, `${w.issuer}/token`);
    const viaMtls = await call('GET', `${mtls}/.well-known/openid-configuration`, { cert: fapiCert });
    assert.equal(viaMtls.status, 200);
    assert.deepEqual(viaMtls.json, meta);
  });
});

describe('FAPI-CIBA registration rules (functions/admin/seed.ts)', () => {
  test('push mode, RS256 or a client secret method are refused with a SeedError; a refused seed writes nothing', async () => {
    const { loadSeed, SeedError } = await import('../../functions/admin/seed.ts');
    const valid = {
      ...fapiBase,
      client_id: 'fapi-new',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [pkjwtKey.jwk] },
    };
    const bystander = {
      client_id: 'never-written',
      client_secret: SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: [CIBA_GRANT],
      scope: 'openid',
    };
    const cases: [string, Record<string, unknown>, RegExp][] = [
      [
        'push mode',
        {
          ...valid,
          backchannel_token_delivery_mode: 'push',
          backchannel_client_notification_endpoint: 'https://rp.example/cb',
        },
        /push/,
      ],
      ['RS256 ID tokens', { ...valid, id_token_signed_response_alg: 'RS256' }, /id_token_signed_response_alg/],
      [
        'RS256 request objects',
        { ...valid, backchannel_authentication_request_signing_alg: 'RS256' },
        /backchannel_authentication_request_signing_alg/,
      ],
      [
        'no request signing alg',
        { ...valid, backchannel_authentication_request_signing_alg: undefined },
        /backchannel_authentication_request_signing_alg/,
      ],
      [
        'client_secret_basic',
        {
          ...valid,
          token_endpoint_auth_method: 'client_secret_basic',
          client_secret: SECRET,
          jwks: { keys: [pkjwtKey.jwk] },
        },
        /private_key_jwt, tls_client_auth or self_signed_tls_client_auth/,
      ],
      [
        'push + RS256 + client_secret_basic',
        {
          ...valid,
          token_endpoint_auth_method: 'client_secret_basic',
          client_secret: SECRET,
          backchannel_token_delivery_mode: 'push',
          backchannel_client_notification_endpoint: 'https://rp.example/cb',
          backchannel_authentication_request_signing_alg: 'RS256',
          id_token_signed_response_alg: 'RS256',
        },
        /fapi-ciba/,
      ],
    ];
    for (const [what, client, message] of cases) {
      await assert.rejects(loadSeed({ clients: [bystander, client], users: [] }), (e: unknown) => {
        assert.ok(e instanceof SeedError, `${what}: ${String(e)}`);
        assert.match(e.message, message, what);
        return true;
      });
    }
    // Nothing from the refused seeds was written: neither the FAPI client nor the valid bystander exists.
    expectError(
      await call('POST', `${w.issuer}/bc-authorize`, {
        form: { scope: 'openid', login_hint: 'alice' },
        headers: { authorization: basic('never-written', SECRET) },
      }),
      401,
      'invalid_client',
      'bystander',
    );
    expectError(
      await call('POST', `${mtls}/token`, {
        form: {
          grant_type: CIBA_GRANT,
          auth_req_id: 'x',
          ...(await clientAssertion('fapi-new', pkjwtKey.signer, w.issuer)),
        },
      }),
      401,
      'invalid_client',
      'fapi-new',
    );
    // The valid FAPI client itself loads.
    assert.deepEqual(await loadSeed({ clients: [valid], users: [] }), { clients: 1, users: 0, devices: 0 });
  });
});
