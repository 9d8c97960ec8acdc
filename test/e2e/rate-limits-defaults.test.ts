// Abuse limits with the default settings: ordinary use (an RP's integration suite, a newcomer exploring) is never
// throttled, while a flood of prompts to one user is (CIBA §14). The tight-limit cases are in rate-limits.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

describe('with the default limits', () => {
  let w: World;
  before(async () => {
    const serverDefaults = { CIBA_RATE_LIMIT_USER: '', CIBA_RATE_LIMIT_CLIENT: '', CIBA_MAX_PENDING_PER_USER: '' };
    w = await startWorld(serverDefaults, [], [{ sub: 'gina', email: 'gina@example.com' }]);
  });
  after(() => w.close());

  test('30 sequential flows for one user pass (a test suite or a newcomer exploring is not throttled)', async () => {
    const message = 'Please identify yourself for better help in our customer service.';
    for (let i = 0; i < 30; i++) {
      const res = await postForm(
        `${w.issuer}/bc-authorize`,
        { scope: 'openid', login_hint: 'alice@example.com', binding_message: message },
        { authorization: basic('rp', SECRET) },
      );
      assert.equal(res.status, 200, `flow ${i + 1}: ${res.text}`);
      const id = sha256b64u(String(res.json.auth_req_id));
      await w.alice.waitFor((r) => r.id === id);
      assert.equal((await w.alice.decide(id, i % 2 ? 'approve' : 'deny')).status, 204);
    }
  });

  test('a flood of 20 concurrent requests for one user: at most 5 are open at once, the rest refused', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        postForm(
          `${w.issuer}/bc-authorize`,
          { scope: 'openid', login_hint: 'gina' },
          { authorization: basic('rp', SECRET) },
        ),
      ),
    );
    const accepted = results.filter((r) => r.status === 200).length;
    assert.equal(accepted, 5, results.map((r) => r.status).join(','));
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 429, r.text);
      assert.equal(r.json.error, 'slow_down');
      assert.match(String(r.json.error_description), /pending requests for this user/);
      assert.ok(Number(r.headers.get('retry-after')) >= 1);
    }
  });
});
