// `npm run seed -- --table … --issuer … <file>` (the admin CLI's `seed load` aimed at a deployed table, scripts/admin.ts)
// as a child process: one clear line and a non-zero exit, never a stack trace, when the region, the credentials, the
// table or the seed file is missing; usage errors exit 2; client_secret_jwt secrets sealed through the
// KMS path of functions/adapters/sealer.ts (GenerateDataKey with purpose=ciba-sealing under the --seal-key-id key),
// here against DynamoDB (dynalite) and a small stand-in for KMS's GenerateDataKey, as the deployed functions would
// find them.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runNode } from '../support/e2e.ts';
import { createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { startLocalDynamoDb, type LocalDynamoDb } from '../../local/dynamodb.ts';
import { listen, readBody, type Listening } from '../../local/http-server.ts';
import { TABLE } from '../../infra/table.ts';
import { CIBA_GRANT } from '../../functions/core/model.ts';

const ADMIN_CLI = new URL('../../scripts/admin.ts', import.meta.url).pathname;
const TABLE_NAME = 'ciba-seed-cli';
const ISSUER = 'https://ciba.example.com';
const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/0b1e5b0c-5eed-4e1a-9f00-000000000001';
const JWT_SECRET = 'client-secret-jwt-0123456789abcdefghijklmnop';

const dir = mkdtempSync(join(tmpdir(), 'ciba-seed-cli-'));
const home = join(dir, 'home');
const seedFile = join(dir, 'seed.json');
const plainSeedFile = join(dir, 'plain-seed.json');
const base = { grant_types: [CIBA_GRANT], scope: 'openid', backchannel_token_delivery_mode: 'poll' };
const basicClient = { ...base, client_id: 'basic-rp', client_secret: 'basic-secret-0123456789abcdefghij' };
writeFileSync(
  seedFile,
  JSON.stringify({
    clients: [
      { ...base, client_id: 'jwt-rp', token_endpoint_auth_method: 'client_secret_jwt', client_secret: JWT_SECRET },
      basicClient,
    ],
    users: [{ sub: 'carol', email: 'carol@example.com' }],
  }),
);
writeFileSync(plainSeedFile, JSON.stringify({ clients: [basicClient] }));

// ---- a stand-in for KMS GenerateDataKey (AWS JSON 1.1 protocol): records the calls, hands out known data keys -----
type KmsCall = { target: string; body: Record<string, unknown>; plaintext: Buffer; blob: Buffer };
const kmsCalls: KmsCall[] = [];
const kms: Server = createServer((req, res) => {
  void (async () => {
    const target = String(req.headers['x-amz-target'] ?? '');
    const text = ((await readBody(req, 65536)) ?? Buffer.alloc(0)).toString('utf8');
    const body = JSON.parse(text || '{}') as Record<string, unknown>;
    if (target !== 'TrentService.GenerateDataKey') {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: 'UnsupportedOperationException', message: `not in this stand-in: ${target}` }));
      return;
    }
    if (body.KeyId !== KEY_ARN) {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify({ __type: 'NotFoundException', message: `Key '${String(body.KeyId)}' does not exist` }));
      return;
    }
    const call = { target, body, plaintext: randomBytes(32), blob: randomBytes(64) };
    kmsCalls.push(call);
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    const { plaintext, blob } = call;
    const reply = { KeyId: KEY_ARN, Plaintext: plaintext.toString('base64'), CiphertextBlob: blob.toString('base64') };
    res.end(JSON.stringify(reply));
  })();
});

let dynamo: LocalDynamoDb;
let kmsListening: Listening;
before(async () => {
  dynamo = await startLocalDynamoDb({ tableName: TABLE_NAME });
  kmsListening = await listen(kms, '127.0.0.1', 0, true);
});
after(async () => {
  await kmsListening?.close();
  await dynamo?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The environment of a user with nothing configured: no region, no credentials, no AWS profile files, no IMDS. */
function bareEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const configured = /^(AWS_|CIBA_|KMS_|KEYS_|SEAL_|TABLE_NAME$|ISSUER$)/;
  for (const [k, v] of Object.entries(process.env)) if (!configured.test(k)) env[k] = v;
  return {
    ...env,
    HOME: home,
    AWS_CONFIG_FILE: join(home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(home, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** A configured user, with the AWS endpoints pointed at dynalite and the KMS stand-in. */
function awsEnv(): NodeJS.ProcessEnv {
  return {
    ...bareEnv(),
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDSEEDTEST',
    AWS_SECRET_ACCESS_KEY: 'seed-test-secret',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_KMS: `http://127.0.0.1:${kmsListening.port}`,
  };
}

type Run = { code: number | null; stdout: string; stderr: string };

/** As `npm run seed -- <args>` runs it (npm sets npm_lifecycle_event, which names the command in errors). */
async function seed(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const { status, stdout, stderr } = await runNode([ADMIN_CLI, 'seed', 'load', ...args], {
    ...env,
    npm_lifecycle_event: 'seed',
  });
  return { code: status, stdout, stderr };
}

const table = ['--table', TABLE_NAME, '--issuer', ISSUER];

/** One line on stderr, no stack trace. */
function oneLineError(run: Run, pattern: RegExp): void {
  assert.notEqual(run.code, 0, run.stderr);
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, /^npm run seed: /);
  assert.match(lines[0]!, pattern);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
}

test('without a region: says so (--region / AWS_REGION), exit 1, no stack trace', async () => {
  const credentials = { AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' };
  const run = await seed([...table, plainSeedFile], { ...bareEnv(), ...credentials });
  oneLineError(run, /no AWS region: pass --region .* or set AWS_REGION/);
  assert.equal(run.code, 1);
});

test('without credentials: says so, exit 1', async () => {
  const run = await seed([...table, '--region', 'eu-west-1', plainSeedFile], bareEnv());
  oneLineError(run, /no AWS credentials/);
  assert.equal(run.code, 1);
});

test('an unreadable or invalid seed file: says which and why, exit 1', async () => {
  const missing = await seed([...table, join(dir, 'missing.json')], awsEnv());
  oneLineError(missing, /cannot read the seed file .*missing\.json: no such file/);
  oneLineError(await seed([...table, dir], awsEnv()), /cannot read the seed file .*: it is a directory/);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, '{"clients": [');
  oneLineError(await seed([...table, bad], awsEnv()), /bad\.json is not valid JSON/);
});

test('a table that does not exist: names it, exit 1', async () => {
  const run = await seed(['--table', 'no-such-table', '--issuer', ISSUER, plainSeedFile], awsEnv());
  oneLineError(run, /table no-such-table not found in eu-west-1/);
  assert.equal(run.code, 1);
});

test('client_secret_jwt clients without --seal-key-id: refused before anything is written (exit 2)', async () => {
  const run = await seed([...table, seedFile], awsEnv());
  oneLineError(run, /client_secret_jwt clients \(jwt-rp\).*--seal-key-id <the stack's SealingKeyId output>/);
  assert.equal(run.code, 2);
});

test('a wrong --seal-key-id: the KMS error, exit 1', async () => {
  const wrong = KEY_ARN.replace(/1$/, '2');
  const run = await seed([...table, '--seal-key-id', wrong, seedFile], awsEnv());
  oneLineError(run, new RegExp(`cannot seal the client_secret_jwt secrets with the KMS key ${wrong} .*NotFoundExcep`));
});

test('client_secret_jwt secrets are sealed under the --seal-key-id KMS key (purpose=ciba-sealing)', async () => {
  kmsCalls.length = 0;
  const run = await seed([...table, '--seal-key-id', KEY_ARN, seedFile], awsEnv());
  assert.equal(run.code, 0, run.stderr);
  assert.match(
    run.stdout,
    new RegExp(`loaded 2 client\\(s\\), 1 user\\(s\\), 0 device\\(s\\) into ${TABLE_NAME} \\(eu-west-1\\)`),
  );
  assert.match(run.stdout, new RegExp(`client_secret_jwt secrets of jwt-rp sealed with the KMS key ${KEY_ARN}`));
  assert.ok(!run.stderr.includes(JWT_SECRET), 'the secret never reaches the audit line');
  assert.match(run.stderr, /"action":"seed.load"/);

  assert.equal(kmsCalls.length, 1, 'one data key for the seed');
  const [call] = kmsCalls;
  assert.equal(call!.body.KeyId, KEY_ARN);
  assert.deepEqual(call!.body.EncryptionContext, { purpose: 'ciba-sealing' });
  assert.equal(call!.body.KeySpec, 'AES_256');

  const db = DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    }),
  );
  try {
    const { Item } = await db.send(
      new GetCommand({
        TableName: TABLE_NAME,
        Key: { [TABLE.partitionKey]: 'CLIENT#jwt-rp', [TABLE.sortKey]: 'CLIENT' },
      }),
    );
    const sealed = String(Item?.client_secret_sealed);
    // v1.<key ref>.<iv>.<ciphertext+tag>: the key ref is the KMS-encrypted data key, which the functions Decrypt.
    const [version, ref, iv, body] = sealed.split('.');
    assert.equal(version, 'v1');
    assert.equal(ref, call!.blob.toString('base64url'), 'sealed with the KMS data key, not a local key file');
    const data = Buffer.from(body!, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', call!.plaintext, Buffer.from(iv!, 'base64url'));
    decipher.setAAD(Buffer.from('ciba-seal:client#jwt-rp#client_secret'));
    decipher.setAuthTag(data.subarray(data.length - 16));
    const opened = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    assert.equal(opened.toString('utf8'), JWT_SECRET);
    assert.ok(!JSON.stringify(Item).includes(JWT_SECRET), 'the secret itself is not stored');
  } finally {
    db.destroy();
  }
});

test('usage errors exit 2 with one line: --table without --issuer, a non-https issuer, --table with --stack', async () => {
  const noIssuer = await seed(['--table', TABLE_NAME, plainSeedFile], awsEnv());
  oneLineError(noIssuer, /missing --issuer/);
  assert.equal(noIssuer.code, 2);
  const http = await seed(['--table', TABLE_NAME, '--issuer', 'http://ciba.example.com', plainSeedFile], awsEnv());
  oneLineError(http, /--issuer must be the stack's IssuerUrl output \(https:\/\/…\)/);
  assert.equal(http.code, 2);
  const both = await seed([...table, '--stack', 'CibaStack', plainSeedFile], awsEnv());
  oneLineError(both, /--stack and --table\/--issuer/);
  assert.equal(both.code, 2);
});
