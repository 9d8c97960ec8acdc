// functions/core/refresh-grant.ts: RFC 6749 §6 refresh with rotation and reuse detection (RFC 9700 §4.14.2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decideRefresh,
  firstRefreshTokenRecord,
  firstRefreshTokenRequest,
  newFirstRefreshToken,
  type RefreshTokenRecord,
} from '../../functions/core/refresh-grant.ts';
import type { AuthRequest } from '../../functions/core/model.ts';

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

test('a first refresh token names its request; any other string names none', () => {
  const id = 'r'.repeat(43);
  const token = newFirstRefreshToken(id);
  assert.match(token, /^r{43}\.[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newFirstRefreshToken(id), token, '256 fresh random bits each time');
  assert.equal(firstRefreshTokenRequest(token), id);
  for (const other of ['x'.repeat(43), `${id}.short`, `${id}.${'a'.repeat(43)}.x`, `${id}.${'a'.repeat(42)}=`, ''])
    assert.equal(firstRefreshTokenRequest(other), undefined, other);
});

test("a request row holds its grant's first refresh token only once redeemed at the token endpoint", () => {
  const req: AuthRequest = {
    id: 'r'.repeat(43),
    client_id: 'rp',
    sub: 'alice',
    scope: 'openid email profile',
    granted_scope: 'openid email',
    mode: 'poll',
    status: 'approved',
    created_at: NOW - 60_000,
    expires_at: NOW + 60_000,
    interval: 5,
    next_poll_at: NOW,
    auth_time: 1_800_000_000,
    amr: ['hwk'],
    polls: 3,
    decided_polls: 2,
    polled_at: NOW,
    refresh_ttl_s: 3600,
    refresh_token_hash: 'h',
    refresh_jkt: 'jkt-1',
  };
  assert.deepEqual(firstRefreshTokenRecord(req), {
    client_id: 'rp',
    sub: 'alice',
    scope: 'openid email',
    family: req.id,
    auth_time: 1_800_000_000,
    amr: ['hwk'],
    jkt: 'jkt-1',
    expires_at: NOW + 3_600_000,
  });
  assert.equal(firstRefreshTokenRecord({ ...req, polls: 2 }), undefined, 'approved, not yet redeemed');
  assert.equal(firstRefreshTokenRecord({ ...req, status: 'pending', decided_polls: undefined }), undefined);
  assert.equal(firstRefreshTokenRecord({ ...req, refresh_ttl_s: undefined }), undefined, 'made for no refresh token');
  assert.equal(firstRefreshTokenRecord({ ...req, refresh_used_at: NOW })?.used_at, NOW, 'used: reuse is detectable');
});
