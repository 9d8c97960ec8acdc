// functions/core/rate-limit.ts and the limit syntax of functions/settings.ts: fixed windows, quotas, the 429 answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  clientQuota,
  pendingRetryAfter,
  tooManyRequests,
  windowOf,
  withinLimit,
} from '../../functions/core/rate-limit.ts';
import { parseLimit } from '../../functions/settings.ts';
import { OAuthError } from '../../functions/core/errors.ts';

test('parseLimit: <count>/<seconds>', () => {
  assert.deepEqual(parseLimit('10/300'), { count: 10, windowSeconds: 300 });
  assert.deepEqual(parseLimit(' 1/1 '), { count: 1, windowSeconds: 1 });
  for (const bad of ['', '10', '0/60', '10/0', '-1/60', '1.5/60', '10/60s', 'ten/60'])
    assert.equal(parseLimit(bad), undefined, bad);
});

test('windowOf: fixed windows aligned to the epoch; Retry-After is what is left, at least 1 s', () => {
  assert.deepEqual(windowOf({ count: 1, windowSeconds: 60 }, 120), { start: 120, end: 180, retryAfter: 60 });
  assert.deepEqual(windowOf({ count: 1, windowSeconds: 60 }, 179), { start: 120, end: 180, retryAfter: 1 });
  assert.deepEqual(windowOf({ count: 1, windowSeconds: 300 }, 1000), { start: 900, end: 1200, retryAfter: 200 });
});

test('withinLimit: up to the limit passes; tooManyRequests is 429 slow_down with Retry-After', () => {
  const limit = { count: 3, windowSeconds: 60 };
  for (const n of [1, 2, 3]) assert.equal(withinLimit(limit, n), true);
  assert.equal(withinLimit(limit, 4), false);
  const e = tooManyRequests('things', 50);
  assert.ok(e instanceof OAuthError);
  assert.equal(e.status, 429);
  assert.equal(e.error, 'slow_down');
  assert.equal(e.headers['Retry-After'], '50');
  assert.match(e.message, /too many things; retry after 50 s/);
});

test("clientQuota: the client's registered backchannel_rate_limit, else the server default", () => {
  const fallback = { count: 12000, windowSeconds: 60 };
  assert.deepEqual(clientQuota(undefined, fallback), fallback);
  assert.deepEqual(clientQuota('100/1', fallback), { count: 100, windowSeconds: 1 });
  assert.deepEqual(clientQuota('nonsense', fallback), fallback);
  assert.equal(clientQuota(undefined, undefined), undefined, 'no quota at all');
  assert.deepEqual(clientQuota('100/1', undefined), { count: 100, windowSeconds: 1 });
});

test('pendingRetryAfter: seconds until the earliest pending request expires, at least 1', () => {
  assert.equal(pendingRetryAfter(10_500, 1_000), 10);
  assert.equal(pendingRetryAfter(1_000, 1_000), 1);
  assert.equal(pendingRetryAfter(0, 1_000), 1);
});
