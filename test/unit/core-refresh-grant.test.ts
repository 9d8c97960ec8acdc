// functions/core/refresh-grant.ts: RFC 6749 §6 refresh with rotation and reuse detection (RFC 9700 §4.14.2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideRefresh, type RefreshTokenRecord } from '../../functions/core/refresh-grant.ts';

const NOW = 1_800_000_000_000;
const record: RefreshTokenRecord = {
  client_id: 'rp',
  sub: 'alice',
  scope: 'openid email profile',
  family: 'f1',
  expires_at: NOW + 60_000,
};
const errorOf = (d: ReturnType<typeof decideRefresh>) => (d.kind === 'error' ? d.error.error : undefined);

test('a valid token is used with its own scope', () => {
  assert.deepEqual(decideRefresh(record, 'rp', undefined, NOW), { kind: 'use', scope: 'openid email profile' });
});

test('RFC 6749 §6 the scope may narrow, never widen (invalid_scope, token not used)', () => {
  assert.deepEqual(decideRefresh(record, 'rp', 'openid email', NOW), { kind: 'use', scope: 'openid email' });
  const wider = decideRefresh(record, 'rp', 'openid phone', NOW);
  assert.equal(errorOf(wider), 'invalid_scope');
  assert.equal(wider.kind === 'error' && wider.revokeFamily, undefined);
  assert.equal(errorOf(decideRefresh(record, 'rp', ' ', NOW)), 'invalid_scope');
});

test("unknown, expired or another client's token → invalid_grant, nothing revoked", () => {
  for (const d of [
    decideRefresh(undefined, 'rp', undefined, NOW),
    decideRefresh({ ...record, expires_at: NOW }, 'rp', undefined, NOW),
    decideRefresh(record, 'other', undefined, NOW),
  ]) {
    assert.equal(errorOf(d), 'invalid_grant');
    assert.equal(d.kind === 'error' && d.revokeFamily, undefined);
  }
});

test('RFC 9700 §4.14.2 a used token presented again by its client revokes the family', () => {
  const d = decideRefresh({ ...record, used_at: NOW - 1000 }, 'rp', undefined, NOW);
  assert.equal(errorOf(d), 'invalid_grant');
  assert.equal(d.kind === 'error' && d.revokeFamily, true);
  // Another client presenting a used token learns nothing and revokes nothing.
  assert.equal(
    (decideRefresh({ ...record, used_at: NOW - 1000 }, 'other', undefined, NOW) as { revokeFamily?: true })
      .revokeFamily,
    undefined,
  );
});
