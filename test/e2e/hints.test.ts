// User hints end to end (CIBA Core §7.1, §7.2 steps 4-5, §13): id_token_hint (a real ID token of this server for this
// client), login_hint_token (a JWT the client signed, RFC 9493 sub_id), login_hint, and the exactly-one rule. Each
// accepted request is followed to the named user's device.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { basic, CIBA_GRANT, OTHER_SECRET, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

const lhtKey = await generateKeyPair('ES256');
const strangerKey = await generateKeyPair('ES256');
const forgerRsa = await generateKeyPair('RS256');

type SignJwt = (payload: Record<string, unknown>, alg: 'RS256' | 'PS256' | 'ES256', typ?: string) => Promise<string>;

let w: World;
/** The server's own signing function (the local stack runs in this process): mints ID tokens with chosen times. */
let serverSign: SignJwt;
let aliceIdToken: string;
let otherIdToken: string;

before(async () => {
  w = await startWorld({ CIBA_POLL_INTERVAL: '1' }, [
    {
      grant_types: [CIBA_GRANT],
      scope: 'openid profile email',
      backchannel_token_delivery_mode: 'poll',
      client_id: 'lht',
      client_secret: SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      jwks: { keys: [{ ...(await exportJWK(lhtKey.publicKey)), kid: 'lht-1', alg: 'ES256', use: 'sig' }] },
    },
  ]);
  ({ signJwt: serverSign } = (await import('../../functions/adapters/keys.ts')) as { signJwt: SignJwt });
  [aliceIdToken, otherIdToken] = await Promise.all([realIdToken('rp', SECRET), realIdToken('other', OTHER_SECRET)]);
});
after(() => w.close());

const bcUrl = () => `${w.issuer}/bc-authorize`;
const now = () => Math.floor(Date.now() / 1000);
const bm = (prefix: string) => `${prefix}-${Math.random().toString(36).slice(2, 8)}`;

const bc = (form: Record<string, string>, clientId = 'rp', secret = SECRET) =>
  postForm(bcUrl(), { scope: 'openid', ...form }, { authorization: basic(clientId, secret) });

/** A poll flow over raw HTTP for alice: backchannel request, approval on her device, token request; the ID token. */
async function realIdToken(clientId: string, secret: string): Promise<string> {
  const message = bm(`IDT-${clientId}`);
  const started = await bc({ login_hint: 'alice', binding_message: message }, clientId, secret);
  assert.equal(started.status, 200, started.text);
  const request = await w.alice.waitFor((r) => r.binding_message === message);
  assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
  for (let i = 0; i < 20; i++) {
    const res = await postForm(
      `${w.issuer}/token`,
      { grant_type: CIBA_GRANT, auth_req_id: String(started.json.auth_req_id) },
      { authorization: basic(clientId, secret) },
    );
    if (res.status === 200) return String(res.json.id_token);
    assert.ok(['authorization_pending', 'slow_down'].includes(String(res.json.error)), res.text);
    await new Promise((r) => setTimeout(r, 1100));
  }
  throw new Error(`no ID token for ${clientId}`);
}

type Res = Awaited<ReturnType<typeof postForm>>;
function refused(res: Res, error: string, description?: RegExp): void {
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json.error, error, res.text);
  assert.equal(res.json.auth_req_id, undefined);
  if (description) assert.match(String(res.json.error_description), description);
}

/** 200, and the request shows on `user`'s device (and not on the other one's). */
async function reaches(res: Res, message: string, user: 'alice' | 'bob'): Promise<void> {
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.auth_req_id);
  const request = await w[user].waitFor((r) => r.binding_message === message, 5000);
  const otherUser = user === 'alice' ? w.bob : w.alice;
  assert.equal(
    (await otherUser.list()).some((r) => r.id === request.id),
    false,
    `the request is not shown to the other user`,
  );
}

/** ID token claims as the server mints them (functions/core/tokens.ts), with chosen times. */
function idClaims(over: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now();
  return { iss: w.issuer, sub: 'alice', aud: 'rp', iat: t - 60, exp: t + 600, ...over };
}

describe('id_token_hint', () => {
  test('a real ID token of alice for rp: the request goes to alice', async () => {
    const claims = decodeJwt(aliceIdToken);
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.aud, 'rp');
    const message = bm('IDH');
    await reaches(await bc({ id_token_hint: aliceIdToken, binding_message: message }), message, 'alice');
  });

  test('the same ID token can be used again (it is a hint, not a credential)', async () => {
    const message = bm('IDH2');
    await reaches(await bc({ id_token_hint: aliceIdToken, binding_message: message }), message, 'alice');
  });

  test('an ID token of bob (ES256, server key) sends the request to bob', async () => {
    const token = await serverSign(idClaims({ sub: 'bob' }), 'ES256', 'JWT');
    const message = bm('IDB');
    await reaches(await bc({ id_token_hint: token, binding_message: message }), message, 'bob');
  });

  test("an ID token issued to another client ('other') used by rp", async () => {
    assert.equal(decodeJwt(otherIdToken).aud, 'other');
    refused(await bc({ id_token_hint: otherIdToken }), 'unknown_user_id');
  });

  test('the owner of that ID token may use it', async () => {
    const message = bm('IDO');
    await reaches(
      await bc({ id_token_hint: otherIdToken, binding_message: message }, 'other', OTHER_SECRET),
      message,
      'alice',
    );
  });

  test('tampered payload (sub changed to bob) under the real signature', async () => {
    const [h, , s] = aliceIdToken.split('.') as [string, string, string];
    const payload = Buffer.from(JSON.stringify({ ...decodeJwt(aliceIdToken), sub: 'bob' })).toString('base64url');
    refused(await bc({ id_token_hint: `${h}.${payload}.${s}` }), 'unknown_user_id');
  });

  test("forged: signed by a key of ours under the server's kid", async () => {
    const { kid } = JSON.parse(Buffer.from(aliceIdToken.split('.')[0]!, 'base64url').toString()) as { kid: string };
    const forged = await new SignJWT(idClaims() as JWTPayload)
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .sign(forgerRsa.privateKey);
    refused(await bc({ id_token_hint: forged }), 'unknown_user_id');
  });

  test('alg none', async () => {
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    refused(await bc({ id_token_hint: `${enc({ alg: 'none' })}.${enc(idClaims())}.` }), 'unknown_user_id');
  });

  test('garbage that is not a JWT', async () => {
    refused(await bc({ id_token_hint: 'this-is-not-a-jwt' }), 'invalid_request');
    refused(await bc({ id_token_hint: 'a.b.c' }), 'invalid_request');
  });

  test('expired 1 hour ago: within the grace window (default 24 h), accepted', async () => {
    const t = now();
    const token = await serverSign(idClaims({ iat: t - 3600 - 600, exp: t - 3600 }), 'RS256', 'JWT');
    const message = bm('IDX');
    await reaches(await bc({ id_token_hint: token, binding_message: message }), message, 'alice');
  });

  test('expired 2 days ago: beyond the grace window', async () => {
    const t = now();
    refused(
      await bc({
        id_token_hint: await serverSign(idClaims({ iat: t - 2 * 86400 - 600, exp: t - 2 * 86400 }), 'RS256', 'JWT'),
      }),
      'unknown_user_id',
    );
  });

  test('server-signed, but another issuer', async () => {
    refused(
      await bc({ id_token_hint: await serverSign(idClaims({ iss: 'https://elsewhere.example.com' }), 'RS256', 'JWT') }),
      'unknown_user_id',
    );
  });

  test('server-signed, naming a user who does not exist', async () => {
    refused(
      await bc({ id_token_hint: await serverSign(idClaims({ sub: 'mallory' }), 'RS256', 'JWT') }),
      'unknown_user_id',
    );
  });
});

describe('login_hint_token', () => {
  const hintToken = (over: Record<string, unknown> = {}, key: CryptoKey = lhtKey.privateKey, kid = 'lht-1') => {
    const t = now();
    const claims = {
      iss: 'lht',
      aud: w.issuer,
      iat: t,
      exp: t + 300,
      jti: randomUUID(),
      sub_id: { format: 'email', email: 'alice@example.com' },
      ...over,
    };
    return new SignJWT(claims as JWTPayload).setProtectedHeader({ alg: 'ES256', kid }).sign(key);
  };
  const asLht = async (token: string | Promise<string>, message?: string) =>
    bc({ login_hint_token: await token, ...(message ? { binding_message: message } : {}) }, 'lht');

  test('sub_id email → alice', async () => {
    const message = bm('LHE');
    await reaches(await asLht(hintToken(), message), message, 'alice');
  });

  test('sub_id phone_number → alice', async () => {
    const message = bm('LHP');
    await reaches(
      await asLht(hintToken({ sub_id: { format: 'phone_number', phone_number: '+15551234567' } }), message),
      message,
      'alice',
    );
  });

  test('sub_id opaque bob → bob', async () => {
    const message = bm('LHO');
    await reaches(await asLht(hintToken({ sub_id: { format: 'opaque', id: 'bob' } }), message), message, 'bob');
  });

  test('sub_id iss_sub of this issuer → bob', async () => {
    const message = bm('LHI');
    await reaches(
      await asLht(hintToken({ sub_id: { format: 'iss_sub', iss: w.issuer, sub: 'bob' } }), message),
      message,
      'bob',
    );
  });

  test('plain sub alice → alice', async () => {
    const message = bm('LHS');
    await reaches(await asLht(hintToken({ sub_id: undefined, sub: 'alice' }), message), message, 'alice');
  });

  test('expired → expired_login_hint_token', async () => {
    const t = now();
    refused(await asLht(hintToken({ iat: t - 600, exp: t - 120 })), 'expired_login_hint_token');
  });

  test('signed by an unregistered key (registered kid)', async () => {
    refused(await asLht(hintToken({}, strangerKey.privateKey)), 'unknown_user_id');
  });

  test('signed by an unregistered key (unknown kid)', async () => {
    refused(await asLht(hintToken({}, strangerKey.privateKey, 'stranger')), 'unknown_user_id');
  });

  test('naming an unknown user (email, opaque, sub)', async () => {
    refused(await asLht(hintToken({ sub_id: { format: 'email', email: 'nobody@example.com' } })), 'unknown_user_id');
    refused(await asLht(hintToken({ sub_id: { format: 'opaque', id: 'mallory' } })), 'unknown_user_id');
    refused(await asLht(hintToken({ sub_id: undefined, sub: 'mallory' })), 'unknown_user_id');
  });

  test('iss_sub of another issuer', async () => {
    refused(
      await asLht(hintToken({ sub_id: { format: 'iss_sub', iss: 'https://elsewhere.example.com', sub: 'alice' } })),
      'unknown_user_id',
    );
  });

  test('wrong iss, wrong aud', async () => {
    refused(await asLht(hintToken({ iss: 'rp' })), 'unknown_user_id');
    refused(await asLht(hintToken({ aud: 'https://elsewhere.example.com' })), 'unknown_user_id');
  });

  test('a client without registered keys sending a login_hint_token', async () => {
    refused(await bc({ login_hint_token: await hintToken({ iss: 'rp' }) }), 'unknown_user_id');
  });

  test('not a JWT', async () => {
    refused(await asLht('not-a-jwt'), 'invalid_request');
  });
});

describe('exactly one hint (§7.1)', () => {
  const lhtToken = async () => {
    const t = now();
    return new SignJWT({
      iss: 'lht',
      aud: w.issuer,
      exp: t + 300,
      sub_id: { format: 'email', email: 'alice@example.com' },
    })
      .setProtectedHeader({ alg: 'ES256', kid: 'lht-1' })
      .sign(lhtKey.privateKey);
  };

  test('login_hint + id_token_hint', async () => {
    refused(await bc({ login_hint: 'alice', id_token_hint: aliceIdToken }), 'invalid_request', /only one/);
  });

  test('login_hint_token + id_token_hint', async () => {
    refused(
      await bc({ login_hint_token: await lhtToken(), id_token_hint: aliceIdToken }, 'lht'),
      'invalid_request',
      /only one/,
    );
  });

  test('login_hint + login_hint_token', async () => {
    refused(
      await bc({ login_hint: 'alice', login_hint_token: await lhtToken() }, 'lht'),
      'invalid_request',
      /only one/,
    );
  });

  test('all three', async () => {
    refused(
      await bc({ login_hint: 'alice', login_hint_token: await lhtToken(), id_token_hint: aliceIdToken }, 'lht'),
      'invalid_request',
      /only one/,
    );
  });

  test('no hint', async () => {
    refused(await bc({ binding_message: 'NOHINT' }), 'invalid_request', /required/);
  });

  test('login_hint of an unknown user', async () => {
    refused(await bc({ login_hint: 'nobody@example.com' }), 'unknown_user_id');
  });

  test('login_hint by sub, email and phone number all reach alice', async () => {
    for (const hint of ['alice', 'alice@example.com', '+15551234567']) {
      const message = bm('LH');
      await reaches(await bc({ login_hint: hint, binding_message: message }), message, 'alice');
    }
  });
});
