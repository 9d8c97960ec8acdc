// functions/adapters/sealer.ts with the local key file (AES-256-GCM): values round-trip, are bound to their context,
// and any change is detected. The KMS key source cannot run locally (no KMS emulation); it shares the cipher code.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const dir = mkdtempSync(join(tmpdir(), 'sealer-'));
Object.assign(process.env, {
  ISSUER: 'http://localhost:8080',
  CIBA_LOCAL: 'true',
  TABLE_NAME: 't',
  KEYS_FILE: join(dir, 'signing-keys.json'),
});
const { seal, unseal } = await import('../../functions/adapters/sealer.ts');

test('round trip; fresh IV per seal; key file created once, private', async () => {
  const a = await seal('{"auth_req_id":"x"}', 'req1#delivery_secrets');
  const b = await seal('{"auth_req_id":"x"}', 'req1#delivery_secrets');
  assert.notEqual(a, b, 'random IV');
  assert.match(a, /^v1\.local\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
  assert.equal(await unseal(a, 'req1#delivery_secrets'), '{"auth_req_id":"x"}');
  assert.equal(await unseal(b, 'req1#delivery_secrets'), '{"auth_req_id":"x"}');
  const file = join(dir, 'sealing-key.json');
  assert.equal(Buffer.from((JSON.parse(readFileSync(file, 'utf8')) as { k: string }).k, 'base64url').length, 32);
  assert.equal(statSync(file).mode & 0o077, 0, 'not readable by others');
  assert.ok(!a.includes('auth_req_id'), 'ciphertext only');
});

test('bound to its context: another row or field cannot open it', async () => {
  const sealed = await seal('secret', 'req1#delivery_secrets');
  await assert.rejects(unseal(sealed, 'req2#delivery_secrets'));
  await assert.rejects(unseal(sealed, 'req1#push_tokens'));
});

test('tampering is detected', async () => {
  const sealed = await seal('secret value', 'ctx');
  const [v, ref, iv, body] = sealed.split('.');
  const flipped = Buffer.from(body!, 'base64url');
  flipped[0]! ^= 1;
  await assert.rejects(unseal([v, ref, iv, flipped.toString('base64url')].join('.'), 'ctx'));
  await assert.rejects(unseal(['v2', ref, iv, body].join('.'), 'ctx'), /not a sealed value/);
  await assert.rejects(unseal(['v1', 'kms-data-key', iv, body].join('.'), 'ctx'), /KMS/);
  await assert.rejects(unseal('garbage', 'ctx'), /not a sealed value/);
});
