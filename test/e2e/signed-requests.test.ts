// Signed authentication requests end to end (CIBA Core §7.1.1, FAPI-CIBA §5.2.2), after the OpenID FAPI-CIBA
// conformance suite's request-object modules: every rule on the request object is one test, over HTTP, against the
// real backchannel endpoint; each refusal is 400 invalid_request and starts nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { createCa, createServerCert } from '../support/certs.ts';

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// Client keys: generated once for the file; the public halves are registered in the seed.
const signerKey = await generateKeyPair('PS256');
const fapiKey = await generateKeyPair('PS256', { extractable: true });
// The same RSA key, usable for RS256 (a WebCrypto key is bound to one algorithm).
const fapiRs256 = (await importJWK(await exportJWK(fapiKey.privateKey), 'RS256')) as CryptoKey;
const esKey = await generateKeyPair('ES256');
const plainKey = await generateKeyPair('PS256');
const strangerKey = await generateKeyPair('PS256');

const base = {
  grant_types: ['urn:openid:params:grant-type:ciba'],
  scope: 'openid profile email',
  backchannel_token_delivery_mode: 'poll',
};
const publicJwks = async (key: CryptoKey, kid: string, alg: string) => ({
  keys: [{ ...(await exportJWK(key)), kid, alg, use: 'sig' }],
});

// The fapi-ciba client gets certificate-bound access tokens, so the server needs an mTLS endpoint to register it.
const ca = createCa();
const serverCert = createServerCert(ca);

let w: World;
before(async () => {
  w = await startWorld(
    { CIBA_POLL_INTERVAL: '1' },
    [
      {
        ...base,
        client_id: 'signer',
        client_secret: SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        jwks: await publicJwks(signerKey.publicKey, 'signer-1', 'PS256'),
        backchannel_authentication_request_signing_alg: 'PS256',
      },
      {
        ...base,
        client_id: 'fapi',
        token_endpoint_auth_method: 'private_key_jwt',
        security_profile: 'fapi-ciba',
        jwks: await publicJwks(fapiKey.publicKey, 'fapi-1', 'PS256'),
        backchannel_authentication_request_signing_alg: 'PS256',
        id_token_signed_response_alg: 'PS256',
      },
      {
        ...base,
        client_id: 'es-signer',
        client_secret: SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        jwks: await publicJwks(esKey.publicKey, 'es-1', 'ES256'),
        backchannel_authentication_request_signing_alg: 'ES256',
      },
      // Keys, but no registered alg: may sign (with any asymmetric alg), need not.
      {
        ...base,
        client_id: 'plain-keys',
        client_secret: SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        jwks: await publicJwks(plainKey.publicKey, 'plain-1', 'PS256'),
      },
    ],
    [],
    { https: { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem } },
  );
});
after(() => w.close());

const bcUrl = () => `${w.issuer}/bc-authorize`;
const now = () => Math.floor(Date.now() / 1000);
const bm = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

/** A valid request object for `clientId`, with claims overridden or removed. */
function claims(clientId: string, over: Record<string, unknown> = {}, omit: string[] = []): JWTPayload {
  const t = now();
  const c: Record<string, unknown> = {
    iss: clientId,
    aud: w.issuer,
    exp: t + 300,
    iat: t,
    nbf: t,
    jti: randomUUID(),
    scope: 'openid',
    login_hint: 'alice',
    binding_message: bm('SIG'),
    ...over,
  };
  for (const k of omit) delete c[k];
  return c as JWTPayload;
}

const sign = (
  payload: JWTPayload,
  key: CryptoKey = signerKey.privateKey,
  header: { alg: string; kid?: string } = { alg: 'PS256', kid: 'signer-1' },
) => new SignJWT(payload).setProtectedHeader(header).sign(key);

/** POST to the backchannel endpoint; `started` counts the workflows started meanwhile (a refusal starts none). */
async function send(form: Record<string, string>, headers: Record<string, string> = {}) {
  const before = w.stack.stepFunctions.executions().length;
  const res = await postForm(bcUrl(), form, headers);
  return { ...res, started: w.stack.stepFunctions.executions().length - before };
}

/** A signed request from the client_secret_basic client `signer` (or another secret client). */
const asSecretClient = (form: Record<string, string>, clientId = 'signer') =>
  send(form, { authorization: basic(clientId, SECRET) });

/** private_key_jwt (RFC 7523) for the FAPI client: iss = sub = client_id, aud = the backchannel endpoint. */
async function fapiAssertion(aud = bcUrl()): Promise<Record<string, string>> {
  const t = now();
  const assertion = await new SignJWT({ iss: 'fapi', sub: 'fapi', aud, iat: t, exp: t + 60, jti: randomUUID() })
    .setProtectedHeader({ alg: 'PS256', kid: 'fapi-1' })
    .sign(fapiKey.privateKey);
  return { client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion };
}
const asFapi = async (form: Record<string, string>, aud?: string) => send({ ...form, ...(await fapiAssertion(aud)) });
const fapiSigned = (over: Record<string, unknown> = {}, omit: string[] = [], alg = 'PS256') =>
  sign(claims('fapi', over, omit), alg === 'RS256' ? fapiRs256 : fapiKey.privateKey, { alg, kid: 'fapi-1' });

type Res = Awaited<ReturnType<typeof send>>;
function refused(res: Res, description?: RegExp, error = 'invalid_request', status = 400): void {
  assert.equal(res.status, status, res.text);
  assert.equal(res.json.error, error, res.text);
  assert.equal(res.json.auth_req_id, undefined);
  assert.equal(res.started, 0, 'no workflow started');
  if (description) assert.match(String(res.json.error_description), description);
}

/** The request was really created: 200, an auth_req_id, and alice's device shows it. */
async function accepted(res: Res, bindingMessage: string | undefined, user: 'alice' | 'bob' = 'alice') {
  assert.equal(res.status, 200, res.text);
  assert.match(String(res.json.auth_req_id), /^[A-Za-z0-9_-]{43,}$/);
  if (bindingMessage !== undefined) {
    const request = await w[user].waitFor((r) => r.binding_message === bindingMessage, 5000);
    return request;
  }
  return undefined;
}

describe('discovery', () => {
  test('advertises asymmetric request object algorithms only', async () => {
    const res = await fetch(`${w.issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    const meta = (await res.json()) as Record<string, unknown>;
    const algs = meta.backchannel_authentication_request_signing_alg_values_supported as string[];
    assert.ok(Array.isArray(algs), 'backchannel_authentication_request_signing_alg_values_supported');
    assert.ok(algs.includes('PS256'));
    assert.ok(algs.includes('ES256'));
    assert.ok(!algs.includes('none'));
    assert.ok(!algs.some((a) => a.startsWith('HS')));
  });
});

describe('valid signed requests', () => {
  test('PS256 request object from a client_secret_basic client: 200, the request reaches alice', async () => {
    const payload = claims('signer', { scope: 'openid profile', acr_values: 'urn:example:pin' });
    const res = await asSecretClient({ request: await sign(payload) });
    const request = await accepted(res, String(payload.binding_message));
    assert.equal(request?.scope, 'openid profile', 'parameters come from the request object');
    assert.equal(res.json.expires_in, 300);
  });

  test('FAPI client: private_key_jwt assertion and a PS256 request object', async () => {
    const payload = claims('fapi');
    const res = await asFapi({ request: await sign(payload, fapiKey.privateKey, { alg: 'PS256', kid: 'fapi-1' }) });
    await accepted(res, String(payload.binding_message));
    assert.equal(res.started, 1);
  });

  test('FAPI client: a client assertion addressed to the token endpoint is accepted too', async () => {
    const payload = claims('fapi');
    const res = await asFapi(
      { request: await sign(payload, fapiKey.privateKey, { alg: 'PS256', kid: 'fapi-1' }) },
      `${w.issuer}/token`,
    );
    await accepted(res, String(payload.binding_message));
  });

  test('FAPI client: a client assertion for another audience is 401 invalid_client', async () => {
    const res = await asFapi({ request: await fapiSigned() }, 'https://elsewhere.example.com');
    refused(res, /aud/, 'invalid_client', 401);
  });

  test('ES256 request object from a client registered with an ES256 key', async () => {
    const payload = claims('es-signer');
    const res = await asSecretClient(
      { request: await sign(payload, esKey.privateKey, { alg: 'ES256', kid: 'es-1' }) },
      'es-signer',
    );
    await accepted(res, String(payload.binding_message));
  });

  test('a client with keys but no registered alg may sign (PS256) or not', async () => {
    const payload = claims('plain-keys');
    const signed = await asSecretClient(
      { request: await sign(payload, plainKey.privateKey, { alg: 'PS256', kid: 'plain-1' }) },
      'plain-keys',
    );
    await accepted(signed, String(payload.binding_message));
    const message = bm('PLAIN');
    const unsigned = await asSecretClient(
      { scope: 'openid', login_hint: 'alice', binding_message: message },
      'plain-keys',
    );
    await accepted(unsigned, message);
  });

  test('requested_expiry as a JSON number is honoured', async () => {
    const res = await asSecretClient({ request: await sign(claims('signer', { requested_expiry: 120 })) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.expires_in, 120);
  });

  test('requested_expiry as a string is honoured', async () => {
    const res = await asSecretClient({ request: await sign(claims('signer', { requested_expiry: '240' })) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.expires_in, 240);
  });

  test('FAPI: request_context as a JSON object stands in for binding_message', async () => {
    const res = await asFapi({
      request: await fapiSigned({ request_context: { location: 'store 12', amount: '10.00 EUR' } }, [
        'binding_message',
      ]),
    });
    assert.equal(res.status, 200, res.text);
    assert.ok(res.json.auth_req_id);
  });
});

describe('request object claims (§7.1.1)', () => {
  test('missing aud', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', {}, ['aud'])) }), /aud/));
  test('wrong aud', async () =>
    refused(
      await asSecretClient({ request: await sign(claims('signer', { aud: 'https://elsewhere.example.com' })) }),
      /aud/,
    ));
  test('aud = token endpoint, not the issuer', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', { aud: `${w.issuer}/token` })) }), /aud/));
  test('missing iss', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', {}, ['iss'])) }), /iss/));
  test('wrong iss', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', { iss: 'other' })) }), /iss/));
  test('missing exp', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', {}, ['exp'])) }), /exp/));
  test('expired exp', async () => {
    const t = now();
    refused(
      await asSecretClient({ request: await sign(claims('signer', { iat: t - 600, nbf: t - 600, exp: t - 120 })) }),
      /expired|exp/,
    );
  });
  test('exp 70 minutes ahead (nbf now): lifetime over 60 minutes', async () => {
    refused(await asSecretClient({ request: await sign(claims('signer', { exp: now() + 70 * 60 })) }), /lifetime/);
  });
  test('missing iat', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', {}, ['iat'])) }), /iat/));
  test('missing nbf', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', {}, ['nbf'])) }), /nbf/));
  test('nbf 10 minutes ahead', async () => {
    refused(
      await asSecretClient({ request: await sign(claims('signer', { nbf: now() + 600, exp: now() + 900 })) }),
      /nbf/,
    );
  });
  test('nbf 70 minutes old', async () => {
    const t = now();
    refused(
      await asSecretClient({
        request: await sign(claims('signer', { iat: t - 70 * 60, nbf: t - 70 * 60, exp: t + 300 })),
      }),
      /nbf|lifetime/,
    );
  });
  test('missing jti', async () =>
    refused(await asSecretClient({ request: await sign(claims('signer', {}, ['jti'])) }), /jti/));
  test('replayed jti: the same request object twice', async () => {
    const payload = claims('signer');
    const jwt = await sign(payload);
    await accepted(await asSecretClient({ request: jwt }), String(payload.binding_message));
    refused(await asSecretClient({ request: jwt }), /jti|used before/);
  });
  test('replayed jti in a new request object', async () => {
    const jti = randomUUID();
    assert.equal((await asSecretClient({ request: await sign(claims('signer', { jti })) })).status, 200);
    refused(await asSecretClient({ request: await sign(claims('signer', { jti })) }), /jti|used before/);
  });
});

describe('request object signature and algorithm', () => {
  test('alg none (unsigned JWT)', async () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const jwt = `${enc({ alg: 'none' })}.${enc(claims('signer'))}.`;
    refused(await asSecretClient({ request: jwt }), /none|signed/);
  });

  test('HS256 with the client secret (symmetric)', async () => {
    const jwt = await new SignJWT(claims('plain-keys'))
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(SECRET));
    refused(await asSecretClient({ request: jwt }, 'plain-keys'), /asymmetric/);
  });

  test('bad signature (one byte of the signature flipped)', async () => {
    const jwt = await sign(claims('signer'));
    const [h, p, s] = jwt.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    sig[10] = sig[10]! ^ 0x01;
    refused(await asSecretClient({ request: `${h}.${p}.${sig.toString('base64url')}` }), /signature|key/);
  });

  test('tampered payload under a valid signature', async () => {
    const jwt = await sign(claims('signer'));
    const [h, , s] = jwt.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify(claims('signer', { login_hint: 'bob' }))).toString('base64url');
    refused(await asSecretClient({ request: `${h}.${forged}.${s}` }), /signature|key/);
  });

  test('FAPI client: RS256 is not allowed', async () => {
    refused(await asFapi({ request: await fapiSigned({}, [], 'RS256') }), /alg/);
  });

  test('registered PS256, signed ES256', async () => {
    const jwt = await sign(claims('signer'), esKey.privateKey, { alg: 'ES256', kid: 'signer-1' });
    refused(await asSecretClient({ request: jwt }), /alg/);
  });

  test("signed with another client's key (its kid)", async () => {
    const jwt = await sign(claims('signer'), fapiKey.privateKey, { alg: 'PS256', kid: 'fapi-1' });
    refused(await asSecretClient({ request: jwt }), /key|signature/);
  });

  test("signed with a fresh key under the client's kid", async () => {
    const jwt = await sign(claims('signer'), strangerKey.privateKey, { alg: 'PS256', kid: 'signer-1' });
    refused(await asSecretClient({ request: jwt }), /signature|key/);
  });

  test('not a JWT at all', async () => {
    refused(await asSecretClient({ request: 'not-a-jwt' }), /JWT/);
  });
});

describe('form rules', () => {
  test('unsigned request from a client that registered a signing alg', async () => {
    refused(await asSecretClient({ scope: 'openid', login_hint: 'alice', binding_message: bm('UNSIGNED') }), /signed/);
  });

  test('unsigned request from the FAPI client', async () => {
    refused(await asFapi({ scope: 'openid', login_hint: 'alice', binding_message: bm('UNSIGNED') }), /signed/);
  });

  test('request plus scope outside it', async () => {
    refused(await asSecretClient({ request: await sign(claims('signer')), scope: 'openid' }), /scope/);
  });

  test('request plus login_hint outside it', async () => {
    refused(
      await asSecretClient({ request: await sign(claims('signer', {}, ['login_hint'])), login_hint: 'alice' }),
      /login_hint/,
    );
  });

  test('request_uri is not supported', async () => {
    refused(await asSecretClient({ request_uri: 'urn:example:request' }));
  });

  test('FAPI: neither binding_message nor request_context', async () => {
    refused(await asFapi({ request: await fapiSigned({}, ['binding_message']) }), /binding_message|request_context/);
  });

  test('a refused request object does not use up its jti', async () => {
    // The jti is recorded only once the request object has been verified: a refused one does not burn it.
    const jti = randomUUID();
    const bad = await asSecretClient({
      request: await sign(claims('signer', { jti, aud: 'https://elsewhere.example.com' })),
    });
    refused(bad, /aud/);
    const payload = claims('signer', { jti });
    await accepted(await asSecretClient({ request: await sign(payload) }), String(payload.binding_message));
  });
});
