// functions/core/crypto.ts: identifiers (CIBA §7.3 auth_req_id rules) and the hashes kept at rest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hashClientSecret,
  hashUserCode,
  randomId,
  safeEqual,
  sha256,
  sha256b64u,
  verifyClientSecret,
  verifyUserCode,
} from '../../functions/core/crypto.ts';

/** CIBA §7.3: auth_req_id characters are restricted to A-Z a-z 0-9 . - _ */
const CIBA_ID_CHARS = /^[A-Za-z0-9._-]+$/;

test('§7.3 randomId() is 32 bytes (256 bits ≥ 160 recommended) as 43 base64url characters', () => {
  const id = randomId();
  assert.equal(id.length, 43);
  assert.match(id, CIBA_ID_CHARS);
  assert.equal(Buffer.from(id, 'base64url').length, 32);
});

test('§7.3 randomId(16) is 128 bits (the minimum) as 22 characters', () => {
  const id = randomId(16);
  assert.equal(id.length, 22);
  assert.equal(Buffer.from(id, 'base64url').length, 16);
});

test('§7.3 randomId uses only the allowed characters, no padding', () => {
  for (let i = 0; i < 200; i++) {
    const id = randomId();
    assert.match(id, CIBA_ID_CHARS);
    assert.ok(!id.includes('='));
  }
});

test('§7.3 randomId is unique (10,000 draws, no collision) and uses the whole alphabet', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 10_000; i++) ids.add(randomId());
  assert.equal(ids.size, 10_000);
  const chars = new Set([...ids].join(''));
  assert.equal(chars.size, 64, 'all 64 base64url characters appear');
});

test('sha256 / sha256b64u: FIPS 180-2 "abc" vector', () => {
  assert.equal(sha256('abc').toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256b64u('abc'), 'ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0');
});

test('client secret: hash verifies the right secret', () => {
  const stored = hashClientSecret('s3cret-value-0123456789');
  assert.match(stored, /^hs256\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]{43}$/);
  assert.equal(verifyClientSecret('s3cret-value-0123456789', stored), true);
});

test('client secret: the hash does not contain the secret and is salted (two hashes differ)', () => {
  const a = hashClientSecret('s3cret-value-0123456789');
  const b = hashClientSecret('s3cret-value-0123456789');
  assert.notEqual(a, b);
  assert.ok(!a.includes('s3cret'));
  assert.equal(hashClientSecret('x', 'fixed-salt'), hashClientSecret('x', 'fixed-salt'));
});

test('client secret: wrong, empty, prefixed and case-changed secrets are rejected', () => {
  const stored = hashClientSecret('s3cret-value-0123456789');
  for (const wrong of [
    's3cret-value-012345678',
    's3cret-value-01234567890',
    '',
    'S3CRET-VALUE-0123456789',
    ' s3cret-value-0123456789',
  ]) {
    assert.equal(verifyClientSecret(wrong, stored), false, JSON.stringify(wrong));
  }
});

test('client secret: a tampered stored hash (mac, salt or scheme) is rejected', () => {
  const stored = hashClientSecret('s3cret-value-0123456789', 'saltsaltsalt');
  const [scheme, salt, mac] = stored.split('$') as [string, string, string];
  const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
  assert.equal(verifyClientSecret('s3cret-value-0123456789', `${scheme}$${salt}$${flip(mac)}`), false);
  assert.equal(verifyClientSecret('s3cret-value-0123456789', `${scheme}$${flip(salt)}$${mac}`), false);
  assert.equal(verifyClientSecret('s3cret-value-0123456789', `hs512$${salt}$${mac}`), false);
  assert.equal(verifyClientSecret('s3cret-value-0123456789', `${scheme}$${salt}$${mac.slice(0, -1)}`), false);
});

test('client secret: malformed stored values are rejected, not thrown', () => {
  for (const stored of ['', 'hs256', 'hs256$', 'hs256$salt', 'hs256$$mac', 'plain-secret']) {
    assert.equal(verifyClientSecret('plain-secret', stored), false, stored);
  }
});

test('user code: scrypt hash verifies the right code and rejects a wrong one', async () => {
  const stored = await hashUserCode('675325');
  assert.match(stored, /^scrypt\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]{43}$/);
  assert.ok(!stored.includes('675325'));
  assert.equal(await verifyUserCode('675325', stored), true);
  assert.equal(await verifyUserCode('675326', stored), false);
  assert.equal(await verifyUserCode('', stored), false);
});

test('user code: compatibility-equivalent input (full-width digits) verifies after NFKC', async () => {
  const stored = await hashUserCode('675325', 'fixed-salt');
  assert.equal(await verifyUserCode('６７５３２５', stored), true);
});

test('user code: tampered or malformed stored hashes are rejected', async () => {
  const stored = await hashUserCode('1234', 'fixed-salt');
  const [, salt, key] = stored.split('$') as [string, string, string];
  assert.equal(await verifyUserCode('1234', `scrypt$other-salt$${key}`), false);
  assert.equal(await verifyUserCode('1234', `hs256$${salt}$${key}`), false);
  assert.equal(await verifyUserCode('1234', ''), false);
  assert.equal(await verifyUserCode('1234', 'scrypt$salt'), false);
});

test('safeEqual: equal strings only', () => {
  assert.equal(safeEqual('abc', 'abc'), true);
  assert.equal(safeEqual('', ''), true);
  assert.equal(safeEqual('abc', 'abd'), false);
  assert.equal(safeEqual('abc', 'abcd'), false);
  assert.equal(safeEqual('abcd', 'abc'), false);
  assert.equal(safeEqual('é', 'e'), false);
  assert.equal(safeEqual('é', 'é'), true);
});
