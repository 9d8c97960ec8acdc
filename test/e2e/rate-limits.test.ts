// Abuse limits at the backchannel endpoint (CIBA §14; FAPI-CIBA §8 unsolicited push spam): per user, per client,
// and failed user_code attempts per user. 429 with error slow_down and Retry-After; nothing is started.
// Windows are a day long, so a window boundary cannot fall inside this sub-second test in practice.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld(
    { CIBA_RATE_LIMIT_USER: '3/86400', CIBA_RATE_LIMIT_CLIENT: '5/86400', CIBA_USER_CODE_ATTEMPTS: '2/86400' },
    [],
    [
      { sub: 'carol', email: 'carol@example.com' },
      { sub: 'dave', email: 'dave@example.com' },
      { sub: 'erin', email: 'erin@example.com', user_code: '4417-2211' },
    ],
  );
});
after(() => w.close());

const bc = (login_hint: string, clientId = 'rp', extra: Record<string, string> = {}) =>
  postForm(`${w.issuer}/bc-authorize`, { scope: 'openid', login_hint, ...extra }, { authorization: basic(clientId, SECRET) });

function assertLimited(res: Awaited<ReturnType<typeof bc>>, what: RegExp) {
  assert.equal(res.status, 429, res.text);
  assert.equal(res.json.error, 'slow_down');
  assert.match(String(res.json.error_description), what);
  const retryAfter = Number(res.headers.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 86400, `Retry-After ${retryAfter}`);
  assert.equal(res.json.auth_req_id, undefined);
}

test('per user: the 4th request for carol is refused; another user is not affected', async () => {
  for (let i = 0; i < 3; i++) assert.equal((await bc('carol')).status, 200);
  const executions = w.stack.stepFunctions.executions().length;
  assertLimited(await bc('carol'), /for this user/);
  assert.equal(w.stack.stepFunctions.executions().length, executions, 'no workflow started, no device notified');
  assert.equal((await bc('dave')).status, 200, 'dave has his own budget');
});

test('per client: the 6th request from rp is refused even for a user under the limit', async () => {
  // rp has made 5 counted requests (carol ×4, dave ×1).
  assertLimited(await bc('dave'), /from this client/);
  assert.equal((await bc('dave', 'rp-post-basic-unknown')).status, 401, 'an unauthenticated caller cannot spend a client\'s budget');
});

test('failed user_code attempts: after 2 failures even the right code is refused until the window ends', async () => {
  for (let i = 0; i < 2; i++) {
    const wrong = await bc('erin', 'user-code', { user_code: `0000-000${i}` });
    assert.equal(wrong.status, 400);
    assert.equal(wrong.json.error, 'invalid_user_code');
  }
  assertLimited(await bc('erin', 'user-code', { user_code: '4417-2211' }), /failed user_code attempts/);
});
