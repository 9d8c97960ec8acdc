// functions/core/token-grant.ts: what a poll at the token endpoint gets (CIBA Core §10.1, §11).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  decidePoll,
  POLL_TOLERANCE_MS,
  SLOW_DOWN_PENALTY_S,
  type PollDecision,
} from '../../functions/core/token-grant.ts';
import { tokenError } from '../../functions/core/errors.ts';
import type { AuthRequest, AuthRequestStatus } from '../../functions/core/model.ts';
import { isOAuthError } from './helpers/oauth-assert.ts';

const NOW = 1_800_000_000_000;

function req(extra: Partial<AuthRequest> = {}): AuthRequest {
  return {
    id: 'x'.repeat(43),
    client_id: 'pos-terminal',
    sub: 'alice',
    scope: 'openid',
    mode: 'poll',
    status: 'pending',
    created_at: NOW - 10_000,
    expires_at: NOW + 290_000,
    interval: 5,
    next_poll_at: NOW,
    ...extra,
  };
}

function assertError(d: PollDecision, error: string, message?: RegExp): void {
  assert.equal(d.kind, 'error', `expected an error, got ${d.kind}`);
  if (d.kind === 'error') isOAuthError(d.error, error, 400, message);
}

test('§11 pending → authorization_pending path (poll is recorded)', () => {
  assert.deepEqual(decidePoll(req(), 'pos-terminal', NOW), { kind: 'pending' });
});

test('§10.1.1 approved → redeem (tokens are issued)', () => {
  assert.deepEqual(decidePoll(req({ status: 'approved' }), 'pos-terminal', NOW), { kind: 'redeem' });
});

test('§11 denied → access_denied (400 at the token endpoint)', () => {
  assertError(decidePoll(req({ status: 'denied' }), 'pos-terminal', NOW), 'access_denied', /denied/);
});

test('§11 failed (device unreachable) → access_denied (400)', () => {
  assertError(decidePoll(req({ status: 'failed' }), 'pos-terminal', NOW), 'access_denied');
});

test('§11 expired status → expired_token (400)', () => {
  assertError(decidePoll(req({ status: 'expired' }), 'pos-terminal', NOW), 'expired_token');
});

test('§10.1.1 redeemed → invalid_grant: "the auth_req_id ... is no longer valid" once redeemed', () => {
  assertError(decidePoll(req({ status: 'redeemed' }), 'pos-terminal', NOW), 'invalid_grant', /redeemed/);
});

test('§10.1 an auth_req_id issued to another client → invalid_grant', () => {
  for (const status of ['pending', 'approved', 'denied', 'expired', 'failed', 'redeemed'] as AuthRequestStatus[]) {
    assertError(decidePoll(req({ status }), 'other-client', NOW), 'invalid_grant', /unknown/);
  }
});

test('§10.1 another client learns nothing: even an expired foreign request is invalid_grant', () => {
  assertError(decidePoll(req({ expires_at: NOW - 1 }), 'other-client', NOW), 'invalid_grant', /unknown/);
});

test('§11 an unknown auth_req_id → invalid_grant', () => {
  assertError(decidePoll(undefined, 'pos-terminal', NOW), 'invalid_grant', /unknown/);
});

test('§10.3 a push-mode auth_req_id is never redeemed at the token endpoint → invalid_grant', () => {
  for (const status of ['pending', 'approved'] as AuthRequestStatus[]) {
    assertError(decidePoll(req({ mode: 'push', status }), 'pos-terminal', NOW), 'invalid_grant', /push/);
  }
});

test('§10.2 ping mode polls like poll mode', () => {
  assert.deepEqual(decidePoll(req({ mode: 'ping' }), 'pos-terminal', NOW), { kind: 'pending' });
  assert.deepEqual(decidePoll(req({ mode: 'ping', status: 'approved' }), 'pos-terminal', NOW), { kind: 'redeem' });
});

test('§7.3/§11 expiry boundary: now == expires_at → expired_token', () => {
  assertError(decidePoll(req({ expires_at: NOW }), 'pos-terminal', NOW), 'expired_token');
});

test('§7.3/§11 one millisecond before expires_at the request is still pending', () => {
  assert.deepEqual(decidePoll(req({ expires_at: NOW + 1 }), 'pos-terminal', NOW), { kind: 'pending' });
});

test('§11 expiry is checked on read: a stored pending/approved/denied request past expires_at → expired_token', () => {
  for (const status of ['pending', 'approved', 'denied', 'failed'] as AuthRequestStatus[]) {
    assertError(decidePoll(req({ status, expires_at: NOW - 1 }), 'pos-terminal', NOW), 'expired_token');
  }
});

test('§10.1.1 a redeemed request stays invalid_grant after expiry (one-time use is final)', () => {
  assertError(
    decidePoll(req({ status: 'redeemed', expires_at: NOW - 1 }), 'pos-terminal', NOW),
    'invalid_grant',
    /redeemed/,
  );
});

test('§11 slow_down: "the interval MUST be increased by at least 5 seconds"', () => {
  assert.ok(SLOW_DOWN_PENALTY_S >= 5, `penalty ${SLOW_DOWN_PENALTY_S}`);
  isOAuthError(tokenError('slow_down'), 'slow_down', 400);
});

test('§11 slow_down: the early-poll tolerance is well under one second', () => {
  assert.ok(POLL_TOLERANCE_MS >= 0 && POLL_TOLERANCE_MS < 1000, `tolerance ${POLL_TOLERANCE_MS}`);
});

test('§7.3 a late-pinged approved ping request stays redeemable until redeemable_until, and only when approved', () => {
  const late = { mode: 'ping' as const, expires_at: NOW - 1_000, redeemable_until: NOW + 60_000 };
  assert.deepEqual(decidePoll(req({ ...late, status: 'approved' }), 'pos-terminal', NOW), { kind: 'redeem' });
  assertError(decidePoll(req({ ...late, status: 'approved' }), 'pos-terminal', NOW + 60_000), 'expired_token');
  assertError(decidePoll(req({ ...late, status: 'pending' }), 'pos-terminal', NOW), 'expired_token');
  assertError(decidePoll(req({ ...late, status: 'denied' }), 'pos-terminal', NOW), 'expired_token');
});
