// GET /device/requests lists at most 100 requests: the newest pending ones, so a user with many pending requests
// (and older decided or expired ones still in the index) always sees the request that was just made.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { basic, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld({ CIBA_MAX_PENDING_PER_USER: '0' });
});
after(() => w.close());

const ask = (bindingMessage: string, expiry?: number) =>
  postForm(
    `${w.issuer}/bc-authorize`,
    {
      scope: 'openid',
      login_hint: 'bob@example.com',
      binding_message: bindingMessage,
      ...(expiry ? { requested_expiry: String(expiry) } : {}),
    },
    { authorization: basic('rp', SECRET) },
  );

test('more than 100 pending requests: the newest 100 are listed, oldest first, the newest included', async () => {
  // Some that expire at once: they stay in the index until their rows go, and must not take places in the list.
  for (let i = 0; i < 5; i++) assert.equal((await ask(`GONE-${i}`, 1)).status, 200);
  for (let i = 0; i < 110; i += 10)
    await Promise.all(
      Array.from({ length: 10 }, async (_, j) => assert.equal((await ask(`MANY-${i + j}`)).status, 200)),
    );
  const newest = await ask('NEWEST');
  assert.equal(newest.status, 200);
  await new Promise((r) => setTimeout(r, 1_100));

  const listed = await w.bob.list();
  assert.equal(listed.length, 100);
  assert.ok(
    listed.some((r) => r.binding_message === 'NEWEST'),
    'the request just made is listed',
  );
  assert.ok(!listed.some((r) => r.binding_message?.startsWith('GONE-')), 'expired requests are not');
  for (let i = 1; i < listed.length; i++) assert.ok(listed[i - 1]!.created_at <= listed[i]!.created_at, 'oldest first');
  // The oldest pending ones are the ones left out.
  assert.ok(!listed.some((r) => r.binding_message === 'MANY-0'));
});
