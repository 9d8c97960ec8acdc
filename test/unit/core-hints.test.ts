// functions/core/hints.ts: the user hints of a backchannel authentication request (CIBA Core §7.1): exactly one of
// login_hint, login_hint_token and id_token_hint; id_token_hint is an ID token of this server for this client;
// login_hint_token is a JWT signed by the client naming the user (RFC 9493 sub_id). Error codes from §13.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import {
  checkOneHint,
  verifyIdTokenHint,
  verifyLoginHintToken,
  type IdTokenHintPolicy,
  type LoginHintTokenPolicy,
} from '../../functions/core/hints.ts';
import { rejectsOAuth, throwsOAuth } from './helpers/oauth-assert.ts';

const ISSUER = 'https://op.example.com';
const CLIENT = 'client-1';
const NOW = 1_800_000_000;

// The server's ID token keys, and the client's registered keys.
const server = await generateKeyPair('RS256');
const serverEs = await generateKeyPair('ES256');
const forger = await generateKeyPair('RS256');
const SERVER_KEYS = createLocalJWKSet({
  keys: [
    { ...(await exportJWK(server.publicKey)), kid: 'srv-rs', alg: 'RS256' },
    { ...(await exportJWK(serverEs.publicKey)), kid: 'srv-es', alg: 'ES256' },
  ],
});
const client = await generateKeyPair('PS256');
const unregistered = await generateKeyPair('PS256');
const CLIENT_KEYS = createLocalJWKSet({
  keys: [{ ...(await exportJWK(client.publicKey)), kid: 'c-ps', alg: 'PS256' }],
});

const ID_POLICY: IdTokenHintPolicy = {
  issuer: ISSUER,
  clientId: CLIENT,
  now: NOW,
  expiredGrace: 3600,
  algorithms: ['RS256', 'PS256', 'ES256'],
};
const LHT_POLICY: LoginHintTokenPolicy = {
  issuer: ISSUER,
  clientId: CLIENT,
  now: NOW,
  clockTolerance: 30,
  algorithms: ['PS256', 'ES256'],
};

function idToken(over: Record<string, unknown> = {}, omit: string[] = []): JWTPayload {
  const c: Record<string, unknown> = {
    iss: ISSUER,
    sub: 'alice',
    aud: CLIENT,
    iat: NOW - 300,
    exp: NOW + 300,
    ...over,
  };
  for (const k of omit) delete c[k];
  return c as JWTPayload;
}

function hintClaims(over: Record<string, unknown> = {}, omit: string[] = []): JWTPayload {
  const c: Record<string, unknown> = {
    iss: CLIENT,
    aud: ISSUER,
    iat: NOW,
    exp: NOW + 300,
    sub_id: { format: 'email', email: 'alice@example.com' },
    ...over,
  };
  for (const k of omit) delete c[k];
  return c as JWTPayload;
}

const serverSigned = (payload: JWTPayload, key = server.privateKey, kid = 'srv-rs') =>
  new SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' }).sign(key);
const clientSigned = (payload: JWTPayload, key = client.privateKey, kid = 'c-ps') =>
  new SignJWT(payload).setProtectedHeader({ alg: 'PS256', kid }).sign(key);

async function idHintRejected(
  jwt: string | Promise<string>,
  error: string,
  message: RegExp,
  policy = ID_POLICY,
): Promise<void> {
  await rejectsOAuth(verifyIdTokenHint(await jwt, SERVER_KEYS, policy), error, 400, message);
}

async function loginHintTokenRejected(
  jwt: string | Promise<string>,
  error: string,
  message: RegExp,
  policy = LHT_POLICY,
): Promise<void> {
  await rejectsOAuth(verifyLoginHintToken(await jwt, CLIENT_KEYS, policy), error, 400, message);
}

// ---- checkOneHint ----

test('CIBA §7.1 exactly one hint: each of login_hint, login_hint_token and id_token_hint alone is returned', () => {
  for (const type of ['login_hint', 'login_hint_token', 'id_token_hint'] as const) {
    assert.deepEqual(
      checkOneHint(
        new Map([
          ['scope', 'openid'],
          [type, 'value'],
        ]),
      ),
      { type, value: 'value' },
    );
  }
});

test('CIBA §7.1 no hint at all → 400 invalid_request', () => {
  throwsOAuth(
    () => checkOneHint(new Map([['scope', 'openid']])),
    'invalid_request',
    400,
    /one of login_hint, login_hint_token and id_token_hint is required/,
  );
});

test('CIBA §7.1 two hints → 400 invalid_request', () => {
  throwsOAuth(
    () =>
      checkOneHint(
        new Map([
          ['login_hint', 'alice'],
          ['id_token_hint', 'a.b.c'],
        ]),
      ),
    'invalid_request',
    400,
    /only one .* \(got login_hint, id_token_hint\)/,
  );
});

test('CIBA §7.1 all three hints → 400 invalid_request', () => {
  throwsOAuth(
    () =>
      checkOneHint(
        new Map([
          ['login_hint', 'alice'],
          ['login_hint_token', 'a.b.c'],
          ['id_token_hint', 'a.b.c'],
        ]),
      ),
    'invalid_request',
    400,
    /only one .* \(got login_hint, login_hint_token, id_token_hint\)/,
  );
});

test('CIBA §7.1 hint size: login_hint at most 256 characters, tokens at most 8192 → 400 invalid_request beyond', () => {
  assert.equal(checkOneHint(new Map([['login_hint', 'a'.repeat(256)]])).value.length, 256);
  throwsOAuth(
    () => checkOneHint(new Map([['login_hint', 'a'.repeat(257)]])),
    'invalid_request',
    400,
    /login_hint must be at most 256/,
  );
  for (const type of ['login_hint_token', 'id_token_hint']) {
    assert.equal(checkOneHint(new Map([[type, 'a'.repeat(8192)]])).value.length, 8192);
    throwsOAuth(
      () => checkOneHint(new Map([[type, 'a'.repeat(8193)]])),
      'invalid_request',
      400,
      new RegExp(`${type} must be at most 8192`),
    );
  }
});

// ---- id_token_hint ----

test('CIBA §7.1 id_token_hint: a valid ID token this server issued to the client names its sub', async () => {
  assert.deepEqual(await verifyIdTokenHint(await serverSigned(idToken()), SERVER_KEYS, ID_POLICY), { sub: 'alice' });
});

test('CIBA §7.1 id_token_hint: ES256 server key, aud as an array with azp = client → accepted', async () => {
  const jwt = await new SignJWT(idToken({ aud: [CLIENT, 'other'], azp: CLIENT }))
    .setProtectedHeader({ alg: 'ES256', kid: 'srv-es' })
    .sign(serverEs.privateKey);
  assert.deepEqual(await verifyIdTokenHint(jwt, SERVER_KEYS, ID_POLICY), { sub: 'alice' });
});

test('CIBA §7.1 id_token_hint: an expired ID token within the grace period is accepted (up to exactly expiredGrace)', async () => {
  assert.deepEqual(
    await verifyIdTokenHint(await serverSigned(idToken({ iat: NOW - 2000, exp: NOW - 1000 })), SERVER_KEYS, ID_POLICY),
    { sub: 'alice' },
  );
  assert.deepEqual(
    await verifyIdTokenHint(await serverSigned(idToken({ iat: NOW - 4000, exp: NOW - 3600 })), SERVER_KEYS, ID_POLICY),
    { sub: 'alice' },
  );
});

test('CIBA §13 id_token_hint expired beyond the grace period → 400 unknown_user_id', async () => {
  await idHintRejected(
    serverSigned(idToken({ iat: NOW - 5000, exp: NOW - 3601 })),
    'unknown_user_id',
    /id_token_hint has expired/,
  );
  await idHintRejected(serverSigned(idToken({ iat: NOW - 100, exp: NOW - 1 })), 'unknown_user_id', /has expired/, {
    ...ID_POLICY,
    expiredGrace: 0,
  });
});

test('CIBA §13 id_token_hint issued to another client (aud) → 400 unknown_user_id', async () => {
  await idHintRejected(
    serverSigned(idToken({ aud: 'client-2' })),
    'unknown_user_id',
    /not issued to this client \(aud\)/,
  );
  await idHintRejected(
    serverSigned(idToken({ aud: ['client-2', 'client-3'] })),
    'unknown_user_id',
    /not issued to this client \(aud\)/,
  );
  await idHintRejected(serverSigned(idToken({}, ['aud'])), 'unknown_user_id', /not issued to this client \(aud\)/);
});

test('CIBA §13 id_token_hint whose azp names another client → 400 unknown_user_id', async () => {
  await idHintRejected(
    serverSigned(idToken({ aud: [CLIENT, 'client-2'], azp: 'client-2' })),
    'unknown_user_id',
    /not issued to this client \(azp\)/,
  );
});

test("CIBA §13 id_token_hint with a forged signature (key not the server's) → 400 unknown_user_id", async () => {
  await idHintRejected(serverSigned(idToken(), forger.privateKey, 'srv-rs'), 'unknown_user_id', /signature is invalid/);
  await idHintRejected(
    serverSigned(idToken(), forger.privateKey, 'forger'),
    'unknown_user_id',
    /not signed by a key of this server/,
  );
  const [h, , s] = (await serverSigned(idToken())).split('.');
  const forged = Buffer.from(JSON.stringify(idToken({ sub: 'mallory' }))).toString('base64url');
  await idHintRejected(`${h}.${forged}.${s}`, 'unknown_user_id', /signature is invalid/);
});

test('CIBA §13 id_token_hint signed with a symmetric key or unsigned → 400 unknown_user_id', async () => {
  const hs = await new SignJWT(idToken()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(randomBytes(32)));
  await idHintRejected(hs, 'unknown_user_id', /not signed with an algorithm/);
  await idHintRejected(hs, 'unknown_user_id', /not signed with an algorithm/, {
    ...ID_POLICY,
    algorithms: ['HS256', 'RS256'],
  });
  await idHintRejected(new UnsecuredJWT(idToken()).encode(), 'unknown_user_id', /alg none/);
});

test('CIBA §13 id_token_hint from another issuer (wrong iss) → 400 unknown_user_id', async () => {
  await idHintRejected(
    serverSigned(idToken({ iss: 'https://other.example.com' })),
    'unknown_user_id',
    /not issued by this server/,
  );
  await idHintRejected(serverSigned(idToken({}, ['iss'])), 'unknown_user_id', /not issued by this server/);
});

test('CIBA §13 id_token_hint without sub or exp → 400 unknown_user_id', async () => {
  await idHintRejected(serverSigned(idToken({}, ['sub'])), 'unknown_user_id', /sub is required/);
  await idHintRejected(serverSigned(idToken({}, ['exp'])), 'unknown_user_id', /exp is required/);
});

test('CIBA §13 an id_token_hint that is not a JWT → 400 invalid_request', async () => {
  for (const jwt of [
    'alice',
    'a.b.c',
    'a.b',
    `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.bm90LWpzb24.c2ln`,
  ]) {
    await idHintRejected(jwt, 'invalid_request', /id_token_hint is not a JWT/);
  }
});

// ---- login_hint_token ----

test('CIBA §7.1 login_hint_token with sub_id format email (RFC 9493 §3.2.1) → kind email', async () => {
  assert.deepEqual(await verifyLoginHintToken(await clientSigned(hintClaims()), CLIENT_KEYS, LHT_POLICY), {
    kind: 'email',
    value: 'alice@example.com',
  });
});

test('CIBA §7.1 login_hint_token with sub_id format phone_number (RFC 9493 §3.2.5) → kind phone_number', async () => {
  const jwt = await clientSigned(hintClaims({ sub_id: { format: 'phone_number', phone_number: '+12025550139' } }));
  assert.deepEqual(await verifyLoginHintToken(jwt, CLIENT_KEYS, LHT_POLICY), {
    kind: 'phone_number',
    value: '+12025550139',
  });
});

test('CIBA §7.1 login_hint_token with sub_id format opaque (RFC 9493 §3.2.4) → kind sub', async () => {
  const jwt = await clientSigned(hintClaims({ sub_id: { format: 'opaque', id: 'alice' } }));
  assert.deepEqual(await verifyLoginHintToken(jwt, CLIENT_KEYS, LHT_POLICY), { kind: 'sub', value: 'alice' });
});

test('CIBA §7.1 login_hint_token with sub_id format iss_sub of this issuer (RFC 9493 §3.2.3) → kind sub', async () => {
  const jwt = await clientSigned(hintClaims({ sub_id: { format: 'iss_sub', iss: ISSUER, sub: 'alice' } }));
  assert.deepEqual(await verifyLoginHintToken(jwt, CLIENT_KEYS, LHT_POLICY), { kind: 'sub', value: 'alice' });
});

test('CIBA §13 login_hint_token iss_sub of another issuer → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims({ sub_id: { format: 'iss_sub', iss: 'https://other.example.com', sub: 'alice' } })),
    'unknown_user_id',
    /another issuer/,
  );
});

test('CIBA §7.1 login_hint_token with a plain sub and no sub_id → kind sub; iss and aud may be absent', async () => {
  const jwt = await clientSigned(hintClaims({ sub: 'alice' }, ['sub_id', 'iss', 'aud']));
  assert.deepEqual(await verifyLoginHintToken(jwt, CLIENT_KEYS, LHT_POLICY), { kind: 'sub', value: 'alice' });
});

test('CIBA §13 login_hint_token expired (beyond the clock tolerance) → 400 expired_login_hint_token', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims({ iat: NOW - 600, exp: NOW - 31 })),
    'expired_login_hint_token',
    /has expired/,
  );
  // Within the tolerance it still passes.
  await verifyLoginHintToken(
    await clientSigned(hintClaims({ iat: NOW - 600, exp: NOW - 20 })),
    CLIENT_KEYS,
    LHT_POLICY,
  );
});

test('CIBA §13 an expired login_hint_token with a bad signature is unknown_user_id, not expired_login_hint_token', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims({ exp: NOW - 600 }), unregistered.privateKey, 'c-ps'),
    'unknown_user_id',
    /signature is invalid/,
  );
});

test('CIBA §13 login_hint_token signed by a key the client did not register → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims(), unregistered.privateKey, 'other'),
    'unknown_user_id',
    /not signed by a key registered/,
  );
  await loginHintTokenRejected(
    clientSigned(hintClaims(), unregistered.privateKey, 'c-ps'),
    'unknown_user_id',
    /signature is invalid/,
  );
});

test('CIBA §13 login_hint_token signed with a symmetric algorithm, a disallowed alg, or unsigned → 400 unknown_user_id', async () => {
  const hs = await new SignJWT(hintClaims()).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(randomBytes(32)));
  await loginHintTokenRejected(hs, 'unknown_user_id', /asymmetric/);
  await loginHintTokenRejected(clientSigned(hintClaims()), 'unknown_user_id', /alg is not allowed/, {
    ...LHT_POLICY,
    algorithms: ['ES256'],
  });
  await loginHintTokenRejected(new UnsecuredJWT(hintClaims()).encode(), 'unknown_user_id', /alg none/);
});

test('CIBA §13 login_hint_token naming no subject (neither sub_id nor sub) → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(clientSigned(hintClaims({}, ['sub_id'])), 'unknown_user_id', /names no subject/);
});

test('CIBA §13 login_hint_token with an unsupported or malformed sub_id → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims({ sub_id: { format: 'did', url: 'did:example:123' } })),
    'unknown_user_id',
    /format is not supported/,
  );
  await loginHintTokenRejected(
    clientSigned(hintClaims({ sub_id: { email: 'alice@example.com' } })),
    'unknown_user_id',
    /format is not supported/,
  );
  await loginHintTokenRejected(
    clientSigned(hintClaims({ sub_id: 'alice@example.com' })),
    'unknown_user_id',
    /must be a subject identifier object/,
  );
  await loginHintTokenRejected(
    clientSigned(hintClaims({ sub_id: { format: 'email' } })),
    'unknown_user_id',
    /email is missing or invalid/,
  );
  await loginHintTokenRejected(
    clientSigned(hintClaims({ sub_id: { format: 'opaque', id: 'x'.repeat(257) } })),
    'unknown_user_id',
    /subject is missing or invalid/,
  );
});

test('CIBA §13 login_hint_token iss other than the client, or aud not naming this server → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims({ iss: 'client-2' })),
    'unknown_user_id',
    /iss must be the client_id/,
  );
  await loginHintTokenRejected(
    clientSigned(hintClaims({ aud: 'https://other.example.com' })),
    'unknown_user_id',
    /aud must name this server/,
  );
  const ok = await verifyLoginHintToken(await clientSigned(hintClaims({ aud: [ISSUER] })), CLIENT_KEYS, LHT_POLICY);
  assert.equal(ok.kind, 'email');
});

test('draft-ietf-oauth-rfc7523bis: login_hint_token aud naming this server and more → 400', async () => {
  for (const aud of [
    ['https://other.example.com', ISSUER],
    [ISSUER, 'https://other.example.com'],
    [ISSUER, ISSUER],
  ]) {
    await loginHintTokenRejected(clientSigned(hintClaims({ aud })), 'unknown_user_id', /aud must be a single audience/);
  }
});

test('CIBA §13 login_hint_token without exp → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(clientSigned(hintClaims({}, ['exp'])), 'unknown_user_id', /exp is required/);
});

test('CIBA §13 login_hint_token with nbf in the future → 400 unknown_user_id', async () => {
  await loginHintTokenRejected(
    clientSigned(hintClaims({ nbf: NOW + 300, exp: NOW + 600 })),
    'unknown_user_id',
    /nbf is in the future/,
  );
});

test('CIBA §13 a login_hint_token that is not a JWT → 400 invalid_request', async () => {
  for (const jwt of ['alice@example.com', 'a.b.c', 'a.b.c.d.e']) {
    await loginHintTokenRejected(jwt, 'invalid_request', /login_hint_token is not a JWT/);
  }
});
