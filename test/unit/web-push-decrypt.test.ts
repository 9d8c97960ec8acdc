// The e2e tests' Web Push service decrypts payloads itself (test/support/push-service.ts), from RFC 8291 and RFC 8188,
// so they do not have to trust the sending library. Checked here against the RFC's own example, then against what the
// server's library (web-push) sends.
import assert from 'node:assert/strict';
import { createECDH } from 'node:crypto';
import { test } from 'node:test';
import webpush from 'web-push';
import { decrypt } from '../support/push-service.ts';

test('RFC 8291 Appendix A: the example message decrypts to its plaintext', () => {
  const ua = createECDH('prime256v1');
  ua.setPrivateKey(Buffer.from('q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94', 'base64url'));
  assert.equal(
    ua.getPublicKey().toString('base64url'),
    'BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4',
  );
  const body = Buffer.from(
    'DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN',
    'base64url',
  );
  const plain = decrypt(body, { ecdh: ua, auth: Buffer.from('BTBZMqHH6r4Tts7J_aSIgg', 'base64url') });
  assert.equal(plain.toString('utf8'), 'When I grow up, I want to be a watermelon');
});

test('a tampered body or the wrong auth secret does not decrypt', () => {
  const ua = createECDH('prime256v1');
  ua.generateKeys();
  const auth = Buffer.from('0123456789abcdef');
  const { cipherText } = webpush.encrypt(
    ua.getPublicKey().toString('base64url'),
    auth.toString('base64url'),
    '{"a":1}',
    'aes128gcm',
  );
  assert.equal(decrypt(cipherText, { ecdh: ua, auth }).toString(), '{"a":1}');
  assert.throws(() => decrypt(cipherText, { ecdh: ua, auth: Buffer.from('fedcba9876543210') }));
  const tampered = Buffer.from(cipherText);
  tampered[tampered.length - 1]! ^= 1;
  assert.throws(() => decrypt(tampered, { ecdh: ua, auth }));
});
