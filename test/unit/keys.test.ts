// The KMS signing path's one piece of hand-written encoding: KMS returns ECDSA signatures DER-encoded, JWS needs
// R||S (RFC 7518 §3.4). Checked against node's own DER and P1363 encodings of real signatures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { derToJose } from '../../functions/core/crypto.ts';

test('RFC 7518 §3.4 DER ECDSA signatures become 64-byte R||S that verify as JWS ES256', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // Many signatures, so that R or S with a leading zero byte (shorter INTEGER) and with the high bit set (padded INTEGER) both occur.
  for (let i = 0; i < 300; i++) {
    const data = Buffer.from(`payload-${i}`);
    const der = sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
    const jose = derToJose(der);
    assert.equal(jose.length, 64);
    assert.ok(verify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose), `signature ${i}`);
  }
});

test('a malformed DER signature is rejected', () => {
  assert.throws(() => derToJose(Buffer.from([0x30, 0x04, 0x05, 0x00, 0x02, 0x00])), /invalid DER/);
});
