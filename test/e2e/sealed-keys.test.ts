// KEYS_SOURCE=sealed (construct prop `signingKeys: 'sealed'`) on the local stack: the signing key pairs are made by the
// first signer, sealed with the local sealing key file (on AWS the KMS sealing key) and kept in one table item beside
// their public JWKs; every signer unseals them once and signs in memory. Checked here: concurrent first use agrees on
// one item, full poll flows verify against /jwks for RS256, PS256 and ES256, the item holds no private key in clear,
// and a stack started again on the same data dir (a new process) signs with the same keys.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { SECRET, startWorld, type World } from '../support/e2e.ts';
import { db, table } from '../../functions/adapters/store/table.ts';
import { SIGNING_KEYS_ITEM, sealedKeySource, type SigningKeysItem } from '../../functions/adapters/keys.ts';
import { SEAL_CONTEXT, SIGNING_KEYS_CONTEXT, sealContext, unseal } from '../../functions/adapters/sealer.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'ciba-sealed-keys-'));
let w: World;
let closed = false;
before(async () => {
  w = await startWorld({ KEYS_SOURCE: 'sealed', CIBA_POLL_INTERVAL: '1' }, [], [], { dataDir });
});
after(async () => {
  if (!closed) await w.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Every signing-keys item in the table (there is one key, so at most one; a scan proves there is no other). */
async function keyItems(): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await db().send(new ScanCommand({ TableName: table(), ExclusiveStartKey: start }));
    items.push(...(out.Items ?? []).filter((i) => String(i.pk).startsWith('SIGNINGKEYS')));
    start = out.LastEvaluatedKey;
  } while (start);
  return items;
}

const jwksOf = async (issuer: string) => (await (await fetch(`${issuer}/jwks`)).json()) as { keys: JWK[] };
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
let firstKids: string[] = [];

test('before any signer ran there is no key item and /jwks lists no keys', async () => {
  assert.equal((await keyItems()).length, 0);
  const res = await fetch(`${w.issuer}/jwks`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { keys: [] });
  assert.equal(res.headers.get('cache-control'), 'no-store', 'an empty set is not cached');
});

test('10 function instances signing for the first time at once make exactly one key item, and all use it', async () => {
  const instances = Array.from({ length: 10 }, () => sealedKeySource());
  const input = Buffer.from('eyJhbGciOiJFUzI1NiJ9.e30');
  const results = await Promise.all(
    instances.map(async (source) => {
      const signature = await source.sign('EC', 'ES256', input);
      return { kids: (await source.publicKeys()).map((k) => k.kid).sort(), signature };
    }),
  );
  const items = await keyItems();
  assert.equal(items.length, 1, 'one item');
  const item = items[0] as unknown as SigningKeysItem;
  const stored = item.publicKeys.map((k) => k.kid!).sort();
  for (const r of results) assert.deepEqual(r.kids, stored, 'every instance adopted the stored keys');
  // Every instance signs with the stored private key, not with a pair it made and lost the race with.
  const ec = item.publicKeys.find((k) => k.kty === 'EC')!;
  const { createPublicKey, verify } = await import('node:crypto');
  const publicKey = createPublicKey({ key: ec as import('node:crypto').JsonWebKey, format: 'jwk' });
  for (const r of results)
    assert.ok(verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, r.signature), 'verifies');
  // /jwks publishes exactly the stored public keys, with RFC 7638 thumbprints as kids.
  const published = await jwksOf(w.issuer);
  assert.deepEqual(published.keys.map((k) => k.kid).sort(), stored);
  const { calculateJwkThumbprint } = await import('jose');
  for (const k of published.keys) assert.equal(k.kid, await calculateJwkThumbprint(k));
  firstKids = stored;
});

test('poll flows: ID tokens (RS256, PS256, ES256) and access tokens verify against /jwks', async () => {
  const jwks = createRemoteJWKSet(new URL(`${w.issuer}/jwks`));
  for (const [clientId, alg] of [
    ['rp', 'RS256'],
    ['rp-ps256', 'PS256'],
    ['rp-post', 'ES256'],
  ] as const) {
    const config = await oidc.discovery(
      new URL(w.issuer),
      clientId,
      { id_token_signed_response_alg: alg },
      clientId === 'rp-post' ? oidc.ClientSecretPost(SECRET) : oidc.ClientSecretBasic(SECRET),
      { execute: [oidc.allowInsecureRequests] },
    );
    const bindingMessage = `SEALED-${alg}`;
    const started = await oidc.initiateBackchannelAuthentication(config, {
      scope: 'openid profile',
      login_hint: 'alice@example.com',
      binding_message: bindingMessage,
    });
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
    const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);

    const id = await jwtVerify(tokens.id_token!, jwks, { issuer: w.issuer, audience: clientId, algorithms: [alg] });
    assert.equal(id.payload.sub, 'alice');
    assert.ok(firstKids.includes(id.protectedHeader.kid!), 'signed with a stored key');
    const at = await jwtVerify(tokens.access_token, jwks, { issuer: w.issuer, audience: w.issuer, typ: 'at+jwt' });
    assert.equal(at.payload.client_id, clientId);
    assert.ok(firstKids.includes(decodeProtectedHeader(tokens.access_token).kid!));
    // The server's own verification (userinfo) reads the same keys.
    assert.equal((await oidc.fetchUserInfo(config, tokens.access_token, 'alice')).sub, 'alice');
  }
  assert.equal((await keyItems()).length, 1, 'signing made no other item');
});

test('the key item holds the public JWKs and sealed ciphertext only, openable only in the signing-keys context', async () => {
  const [raw] = await keyItems();
  assert.deepEqual(Object.keys(raw!).sort(), ['createdAt', 'pk', 'publicKeys', 'sealed', 'sk']);
  assert.deepEqual({ pk: raw!.pk, sk: raw!.sk }, SIGNING_KEYS_ITEM);
  const item = raw as unknown as SigningKeysItem;
  assert.deepEqual(item.publicKeys.map((k) => k.kty).sort(), ['EC', 'RSA']);
  for (const jwk of item.publicKeys)
    for (const member of PRIVATE_MEMBERS) assert.equal(member in jwk, false, `public JWK has no "${member}"`);
  assert.match(item.sealed, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/, 'a sealed value');
  assert.doesNotMatch(JSON.stringify(raw), /"d"|PRIVATE KEY/, 'no private key material in clear');

  // What is sealed is the private halves of exactly the published keys...
  const opened = JSON.parse(await unseal(item.sealed, sealContext.signingKeys(), SIGNING_KEYS_CONTEXT)) as {
    keys: JWK[];
  };
  const { createPrivateKey, createPublicKey } = await import('node:crypto');
  const { calculateJwkThumbprint } = await import('jose');
  const kids = await Promise.all(
    opened.keys.map((jwk) => {
      assert.ok(jwk.d, 'a private key');
      const pub = createPublicKey(createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' }));
      return calculateJwkThumbprint(pub.export({ format: 'jwk' }) as JWK);
    }),
  );
  assert.deepEqual(kids.sort(), firstKids);
  // ...bound to their own context: the context of another sealed value does not open them.
  await assert.rejects(unseal(item.sealed, sealContext.clientSecret('x')));
  await assert.rejects(unseal(item.sealed, 'signing-keys#other', SEAL_CONTEXT));
});

test('a signer refuses an item whose public keys were replaced (a table writer cannot publish a key of its own)', async () => {
  const { PutCommand } = await import('@aws-sdk/lib-dynamodb');
  const [raw] = await keyItems();
  const item = raw as unknown as SigningKeysItem & typeof SIGNING_KEYS_ITEM;
  const { generateKeyPairSync } = await import('node:crypto');
  const { calculateJwkThumbprint } = await import('jose');
  const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as JWK;
  const foreignKey = { ...foreign, kid: await calculateJwkThumbprint(foreign), use: 'sig' };
  const forged = item.publicKeys.map((k) => (k.kty === 'EC' ? foreignKey : k));
  const put = (value: unknown) =>
    db().send(new PutCommand({ TableName: table(), Item: value as Record<string, unknown> }));
  await put({ ...item, publicKeys: forged });
  try {
    await assert.rejects(sealedKeySource().sign('EC', 'ES256', Buffer.from('x')), /do not match/);
    await put({ ...item, publicKeys: [...item.publicKeys, { ...foreign, kid: 'extra' }] });
    await assert.rejects(sealedKeySource().publicKeys(), /one RSA and one EC/);
  } finally {
    await put(item);
  }
  assert.deepEqual((await sealedKeySource().publicKeys(true)).map((k) => k.kid).sort(), firstKids);
});

test('a stack started again on the same data dir, in a new process, signs with the same keys', async () => {
  const before = await jwksOf(w.issuer);
  await w.close();
  closed = true;
  const root = new URL('../../', import.meta.url).pathname;
  const script = `
    const { startLocalStack } = await import(${JSON.stringify(join(root, 'local/stack.ts'))});
    const stack = await startLocalStack({ port: 0, dataDir: process.env.DATA_DIR, quiet: true,
      env: { KEYS_SOURCE: 'sealed', LOG_LEVEL: 'warn' } });
    try {
      const { signJwt } = await import(${JSON.stringify(join(root, 'functions/adapters/keys.ts'))});
      const tokens = { ES256: await signJwt({ sub: 'restart' }, 'ES256'), PS256: await signJwt({ sub: 'restart' }, 'PS256') };
      const jwks = await (await fetch(stack.issuer + '/jwks')).json();
      process.stdout.write(JSON.stringify({ tokens, jwks }));
    } finally {
      await stack.close();
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  assert.equal(code, 0, err);
  const { tokens, jwks } = JSON.parse(out) as { tokens: Record<string, string>; jwks: { keys: JWK[] } };
  assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), firstKids, 'same kids');
  assert.deepEqual(jwks, before, 'same JWKS');
  // Signed in the new process with the unsealed private keys: verifiable with the keys published before the restart.
  const original = createLocalJWKSet(before);
  for (const [alg, token] of Object.entries(tokens)) {
    const { payload } = await jwtVerify(token, original, { algorithms: [alg] });
    assert.equal(payload.sub, 'restart');
  }
});
