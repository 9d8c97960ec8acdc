// functions/core/tokens.ts (and crypto.halfHash): ID token (OIDC Core §2, §3.3.2.11; CIBA §10.1.1, §10.3.1),
// JWT access token (RFC 9068 §2.2) and userinfo (OIDC Core §5.4) claims.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { accessTokenClaims, acrFor, idTokenClaims, userinfoClaims, type Grant } from '../../functions/core/tokens.ts';
import { halfHash } from '../../functions/core/crypto.ts';
import type { User } from '../../functions/core/model.ts';

const ISSUER = 'https://op.example.com';
const NOW_S = 1_800_000_000;
const GRANT: Grant = {
  clientId: 'pos-terminal',
  sub: 'alice',
  scope: 'openid profile',
  authTime: NOW_S - 30,
  acr: 'urn:example:loa:2',
  amr: ['hwk'],
};

/** OIDC Core §3.3.2.11, computed here independently: left-most half of the SHA-2 hash, base64url. */
function leftHalf(value: string, bits: 256 | 384 | 512): string {
  const digest = createHash(`sha${bits}`).update(value, 'ascii').digest();
  return digest.subarray(0, bits / 16).toString('base64url');
}

test('OIDC Core §2 ID token: iss, sub, aud = client_id, iat, exp = iat + ttl, auth_time, acr, amr', () => {
  assert.deepEqual(idTokenClaims(ISSUER, GRANT, 'RS256', NOW_S, 600), {
    iss: ISSUER,
    sub: 'alice',
    aud: 'pos-terminal',
    iat: NOW_S,
    exp: NOW_S + 600,
    auth_time: NOW_S - 30,
    acr: 'urn:example:loa:2',
    amr: ['hwk'],
  });
});

test('OIDC Core §2 ID token: auth_time, acr and amr are omitted when unknown (no empty amr)', () => {
  const claims = idTokenClaims(ISSUER, { clientId: 'c', sub: 's', scope: 'openid', amr: [] }, 'ES256', NOW_S, 60);
  assert.deepEqual(claims, { iss: ISSUER, sub: 's', aud: 'c', iat: NOW_S, exp: NOW_S + 60 });
});

test('OIDC Core §3.1.3.6 ID token from the token endpoint carries no at_hash, rt_hash or auth_req_id without extras', () => {
  const claims = idTokenClaims(ISSUER, GRANT, 'RS256', NOW_S, 600);
  for (const k of ['at_hash', 'urn:openid:params:jwt:claim:rt_hash', 'urn:openid:params:jwt:claim:auth_req_id'])
    assert.equal(k in claims, false, k);
});

test('OIDC Core §3.3.2.11 at_hash: the published example (Appendix A) for RS256', () => {
  const claims = idTokenClaims(ISSUER, GRANT, 'RS256', NOW_S, 600, {
    accessToken: 'jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y',
  });
  assert.equal(claims.at_hash, '77QmUPtjPfzWtF2AnpK9RQ');
});

test('OIDC Core §3.3.2.11 at_hash for RS256, PS256 and ES256 = left 128 bits of SHA-256, base64url', () => {
  const at = 'eyJhbGciOiJSUzI1NiJ9.access-token.value_-';
  for (const alg of ['RS256', 'PS256', 'ES256'] as const) {
    const claims = idTokenClaims(ISSUER, GRANT, alg, NOW_S, 600, { accessToken: at });
    assert.equal(claims.at_hash, leftHalf(at, 256), alg);
    assert.equal((claims.at_hash as string).length, 22, alg);
  }
});

test('CIBA §10.3.1 push ID token: auth_req_id, at_hash and rt_hash (same construction as at_hash) for RS256 and ES256', () => {
  const extras = {
    authReqId: 'auth-req-id-value',
    accessToken: 'access-token-value',
    refreshToken: 'refresh-token-value',
  };
  for (const alg of ['RS256', 'ES256'] as const) {
    const claims = idTokenClaims(ISSUER, GRANT, alg, NOW_S, 600, extras);
    assert.equal(claims['urn:openid:params:jwt:claim:auth_req_id'], 'auth-req-id-value', alg);
    assert.equal(claims.at_hash, leftHalf('access-token-value', 256), alg);
    assert.equal(claims['urn:openid:params:jwt:claim:rt_hash'], leftHalf('refresh-token-value', 256), alg);
    assert.equal('rt_hash' in claims, false, 'the claim name is the URN, not rt_hash');
  }
});

test('OIDC Core §3.3.2.11 halfHash follows the alg hash size: *384 → SHA-384, *512 → SHA-512', () => {
  assert.equal(halfHash('v', 'ES384'), leftHalf('v', 384));
  assert.equal(halfHash('v', 'PS512'), leftHalf('v', 512));
  assert.equal(halfHash('v', 'RS256'), leftHalf('v', 256));
});

test('RFC 9068 §2.2 access token: iss, sub, aud, client_id, scope, iat, exp, jti, auth_time, acr', () => {
  const claims = accessTokenClaims(ISSUER, GRANT, NOW_S, 600);
  const { jti, ...rest } = claims;
  assert.deepEqual(rest, {
    iss: ISSUER,
    sub: 'alice',
    aud: ISSUER,
    client_id: 'pos-terminal',
    scope: 'openid profile',
    iat: NOW_S,
    exp: NOW_S + 600,
    auth_time: NOW_S - 30,
    acr: 'urn:example:loa:2',
  });
  assert.match(jti as string, /^[A-Za-z0-9_-]{22,}$/);
});

test('RFC 9068 §2.2 access token jti is unique per token', () => {
  const a = accessTokenClaims(ISSUER, GRANT, NOW_S, 600).jti;
  const b = accessTokenClaims(ISSUER, GRANT, NOW_S, 600).jti;
  assert.notEqual(a, b);
});

test('RFC 9068 §2.2 access token without auth_time/acr omits them', () => {
  const claims = accessTokenClaims(ISSUER, { clientId: 'c', sub: 's', scope: 'openid' }, NOW_S, 60);
  assert.equal('auth_time' in claims, false);
  assert.equal('acr' in claims, false);
});

const USER: User = {
  sub: 'alice',
  email: 'alice@example.com',
  email_verified: false,
  phone_number: '+15551234567',
  name: 'Alice Example',
  given_name: 'Alice',
  family_name: 'Example',
  user_code_hash: 'scrypt$salt$key',
};

test('OIDC Core §5.4 openid alone releases only sub', () => {
  assert.deepEqual(userinfoClaims(USER, 'openid'), { sub: 'alice' });
});

test('OIDC Core §5.4 profile → name, given_name, family_name', () => {
  assert.deepEqual(userinfoClaims(USER, 'openid profile'), {
    sub: 'alice',
    name: 'Alice Example',
    given_name: 'Alice',
    family_name: 'Example',
  });
});

test('OIDC Core §5.4 email → email, email_verified (false is released, not dropped)', () => {
  assert.deepEqual(userinfoClaims(USER, 'openid email'), {
    sub: 'alice',
    email: 'alice@example.com',
    email_verified: false,
  });
});

test('OIDC Core §5.4 phone → phone_number (phone_number_verified only when known)', () => {
  assert.deepEqual(userinfoClaims(USER, 'openid phone'), { sub: 'alice', phone_number: '+15551234567' });
  assert.deepEqual(userinfoClaims({ ...USER, phone_number_verified: true }, 'phone'), {
    sub: 'alice',
    phone_number: '+15551234567',
    phone_number_verified: true,
  });
});

test('OIDC Core §5.4 all scopes together; offline_access and unknown scopes release nothing; the user code hash never leaks', () => {
  const claims = userinfoClaims(USER, 'openid profile email phone offline_access address');
  assert.deepEqual(claims, {
    sub: 'alice',
    name: 'Alice Example',
    given_name: 'Alice',
    family_name: 'Example',
    email: 'alice@example.com',
    email_verified: false,
    phone_number: '+15551234567',
  });
  assert.equal('user_code_hash' in claims, false);
});

test('OIDC Core §5.4 a claim the user does not have is omitted', () => {
  assert.deepEqual(userinfoClaims({ sub: 'bob' }, 'openid profile email phone'), { sub: 'bob' });
});

test('OIDC Core §5.4 scope names that are Object.prototype keys release nothing', () => {
  assert.deepEqual(userinfoClaims(USER, 'openid constructor toString'), { sub: 'alice' });
});

const SUPPORTED_ACR = ['urn:example:loa:2', 'urn:example:loa:3'];

test('CIBA §7.1 acrFor: no acr_values → no acr', () => {
  assert.equal(acrFor(undefined, SUPPORTED_ACR), undefined);
});

test("CIBA §7.1 acrFor: the most preferred supported value, in the client's order of preference", () => {
  assert.equal(acrFor('urn:example:loa:3 urn:example:loa:2', SUPPORTED_ACR), 'urn:example:loa:3');
  assert.equal(acrFor('urn:example:loa:9 urn:example:loa:2', SUPPORTED_ACR), 'urn:example:loa:2');
});

test('OIDC Core §2 acr names the class the authentication actually satisfied: a value the OP does not support is not asserted', () => {
  assert.equal(acrFor('urn:example:made-up-by-the-client', SUPPORTED_ACR), undefined);
});

test('CIBA §7.1 acrFor without a configured acr_values_supported: the most preferred requested value', () => {
  assert.equal(acrFor('urn:example:loa:3 urn:example:loa:2'), 'urn:example:loa:3');
  assert.equal(acrFor(undefined), undefined);
});
