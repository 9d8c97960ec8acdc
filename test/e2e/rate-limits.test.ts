// Abuse limits at the backchannel endpoint (CIBA §14; FAPI-CIBA §8 unsolicited push spam): a cap on a user's
// pending requests, a rate per user, a quota per client (the server default or the client's own
// backchannel_rate_limit), and failed user_code attempts per user. 429 slow_down with Retry-After; nothing is
// started, and a refused request consumes nothing. Rate windows are a day long here, so a window boundary cannot
// fall inside this test in practice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

const CIBA = 'urn:openid:params:grant-type:ciba';
const quotaClient = {
  client_id: 'small-quota',
  client_secret: SECRET,
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: [CIBA],
  scope: 'openid',
  backchannel_token_delivery_mode: 'poll',
  backchannel_rate_limit: '3/86400',
};

type Res = Awaited<ReturnType<typeof postForm>>;

function assertLimited(res: Res, what: RegExp) {
  assert.equal(res.status, 429, res.text);
  assert.equal(res.json.error, 'slow_down');
  assert.match(String(res.json.error_description), what);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 86400, `Retry-After ${retryAfter}`);
  assert.equal(res.json.auth_req_id, undefined);
}

let w: World;
const bc = (login_hint: string, clientId = 'rp', extra: Record<string, string> = {}) =>
  postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint, ...extra },
    { authorization: basic(clientId, SECRET) },
  );
before(async () => {
  w = await startWorld(
    {
      CIBA_RATE_LIMIT_USER: '4/86400',
      CIBA_RATE_LIMIT_CLIENT: '7/86400',
      CIBA_USER_CODE_ATTEMPTS: '5/86400',
      CIBA_MAX_PENDING_PER_USER: '2',
    },
    [quotaClient],
    [
      { sub: 'carol', email: 'carol@example.com' },
      { sub: 'dave', email: 'dave@example.com' },
      { sub: 'erin', email: 'erin@example.com', user_code: '4417-2211' },
      { sub: 'frank', email: 'frank@example.com' },
    ],
  );
});
after(() => w.close());

test('pending cap: a third open request for alice is refused, a decision frees a slot', async () => {
  const first = await bc('alice');
  assert.equal((await bc('alice')).status, 200);
  const executions = w.stack.stepFunctions.executions().length;
  assertLimited(await bc('alice'), /pending requests for this user/);
  assert.equal(w.stack.stepFunctions.executions().length, executions, 'no workflow started, no device notified');
  const id = sha256b64u(String(first.json.auth_req_id));
  await w.alice.waitFor((r) => r.id === id);
  assert.equal((await w.alice.decide(id, 'deny')).status, 204);
  assert.equal((await bc('alice')).status, 200, 'the denied request no longer counts');
});

test('per user rate: refused pending requests did not count; the 5th request for alice in the window is refused', async () => {
  // alice: 3 accepted so far (the refusal above consumed nothing). Free her slots, then one more is accepted.
  for (const r of await w.alice.list()) assert.equal((await w.alice.decide(r.id, 'deny')).status, 204);
  assert.equal((await bc('alice')).status, 200);
  assertLimited(await bc('alice'), /for this user/);
  assert.equal((await bc('dave')).status, 200, 'dave has his own budget');
});

test('per client quota: refused requests consume none of it; beyond it 429 even for a user under the limit', async () => {
  // rp has 5 accepted requests (alice ×4, dave ×1); the refused ones did not count.
  assert.equal((await bc('carol')).status, 200);
  assert.equal((await bc('carol')).status, 200);
  assertLimited(await bc('frank'), /from this client/);
  assert.equal(
    (await bc('dave', 'rp-post-basic-unknown')).status,
    401,
    "an unauthenticated caller cannot spend a client's budget",
  );
});

test("a client's own backchannel_rate_limit overrides the server default", async () => {
  for (const sub of ['carol', 'dave', 'frank'])
    assert.equal((await bc(sub, 'small-quota')).status, sub === 'carol' ? 429 : 200);
  // carol is at her pending cap (2); that refusal consumed none of small-quota's 3.
  assert.equal((await bc('frank', 'small-quota')).status, 200);
  assertLimited(await bc('dave', 'small-quota'), /from this client/);
});

test('failed user_code attempts: 40 concurrent wrong codes get at most 5 checked, then even the right code is refused', async () => {
  const results = await Promise.all(
    Array.from({ length: 40 }, (_, i) => bc('erin', 'user-code', { user_code: `0000-${String(i).padStart(4, '0')}` })),
  );
  const checked = results.filter((r) => r.status === 400 && r.json.error === 'invalid_user_code').length;
  const refused = results.filter((r) => r.status === 429).length;
  assert.ok(checked <= 5, `${checked} wrong codes were checked`);
  assert.equal(checked + refused, 40, results.map((r) => r.status).join(','));
  assertLimited(await bc('erin', 'user-code', { user_code: '4417-2211' }), /failed user_code attempts/);
});
