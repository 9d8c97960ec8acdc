// functions/core/rate-limit.ts: configuration syntax, fixed windows, the 429 answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enforce, parseLimit, windowOf } from '../../functions/core/rate-limit.ts';
import { OAuthError } from '../../functions/core/errors.ts';

test('parseLimit: <count>/<seconds>', () => {
  assert.deepEqual(parseLimit('X', '10/300'), { count: 10, windowSeconds: 300 });
  assert.deepEqual(parseLimit('X', ' 1/1 '), { count: 1, windowSeconds: 1 });
  for (const bad of ['', '10', '0/60', '10/0', '-1/60', '1.5/60', '10/60s', 'ten/60']) assert.throws(() => parseLimit('CIBA_X', bad), /CIBA_X must be <count>\/<seconds>/, bad);
});

test('windowOf: fixed windows aligned to the epoch; Retry-After is what is left, at least 1 s', () => {
  assert.deepEqual(windowOf({ count: 1, windowSeconds: 60 }, 120), { start: 120, end: 180, retryAfter: 60 });
  assert.deepEqual(windowOf({ count: 1, windowSeconds: 60 }, 179), { start: 120, end: 180, retryAfter: 1 });
  assert.deepEqual(windowOf({ count: 1, windowSeconds: 300 }, 1000), { start: 900, end: 1200, retryAfter: 200 });
});

test('enforce: up to the limit passes; beyond it 429 slow_down with Retry-After', () => {
  const limit = { count: 3, windowSeconds: 60 };
  for (const n of [1, 2, 3]) assert.equal(enforce(limit, n, 'things', 130), undefined);
  assert.throws(() => enforce(limit, 4, 'things', 130), (e: unknown) => {
    assert.ok(e instanceof OAuthError);
    assert.equal(e.status, 429);
    assert.equal(e.error, 'slow_down');
    assert.equal(e.headers['Retry-After'], '50');
    assert.match(e.message, /too many things; retry after 50 s/);
    return true;
  });
});
