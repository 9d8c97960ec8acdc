// The admin CLI's registry commands (docs/admin.md) against a real `npm start` child: clients add/list/show/remove,
// users add/list/show/remove, requests list/cancel (a cancelled poll request answers access_denied),
// registration-tokens create (the token registers a client), seed load with a typo refused; and the same commands
// against a "deployed" stack with --stack, where only the CloudFormation lookup is stood in for (a loopback server
// answering DescribeStacks with outputs that point at the local stack's table).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { listen } from '../../local/http-server.ts';
import { readStateFile } from '../../local/state-file.ts';
import { basic, CIBA_GRANT, describeStacksXml, postForm, runNode, SECRET } from '../support/e2e.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const START = join(ROOT, 'local/start.ts');
const ADMIN = join(ROOT, 'scripts/admin.ts');
let dir: string;
let dataDir: string;
let issuer: string;
let server: ChildProcess;
let cfn: Server | undefined;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ciba-admin-registry-'));
  dataDir = join(dir, 'data');
  const seed = join(dir, 'seed.json');
  writeFileSync(
    seed,
    JSON.stringify({
      clients: [{ client_id: 'rp', client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid' }],
      users: [{ sub: 'alice', email: 'alice@example.com' }],
    }),
  );
  server = spawn(process.execPath, [START, '--quiet', '--port', '0'], {
    env: { ...process.env, CIBA_DATA_DIR: dataDir, CIBA_SEED: seed, LOG_LEVEL: 'warn', PORT: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = readStateFile(dataDir);
    if (state) {
      issuer = state.issuer;
      break;
    }
    if (server.exitCode !== null || Date.now() > deadline) throw new Error('the local stack did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
});
after(() => {
  if (server.exitCode === null) server.kill('SIGKILL');
  cfn?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The admin CLI as `npm run admin` runs it, without blocking this process (servers of this test run in it). */
const admin = (args: string[], env: Record<string, string> = {}) =>
  runNode([ADMIN, ...args], { ...process.env, CIBA_DATA_DIR: dataDir, PORT: '', ...env });

test('clients add/list/show/remove; a typo in the file is named and nothing is added', async () => {
  const file = join(dir, 'client.json');
  writeFileSync(
    file,
    JSON.stringify({ client_id: 'till-9', client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid' }),
  );
  const added = await admin(['clients', 'add', file]);
  assert.equal(added.status, 0, added.stderr);
  assert.match(added.stderr, /"action":"clients.add"/);
  assert.ok(!added.stderr.includes(SECRET), 'the secret never reaches the audit line');
  const list = await admin(['clients', 'list', '--json']);
  assert.deepEqual(
    (list.json() as { client_id: string }[]).map((c) => c.client_id),
    ['rp', 'till-9'],
  );
  assert.match((await admin(['clients', 'list'])).stdout, /^CLIENT_ID\s+NAME\s+MODE/);
  const shown = (await admin(['clients', 'show', 'till-9', '--json'])).json() as Record<string, unknown>;
  assert.equal(shown.client_id, 'till-9');
  assert.equal('client_secret_hash' in shown, false);
  writeFileSync(file, JSON.stringify({ client_id: 'typo', client_secret: SECRET, token_endpoint_auth_metod: 'x' }));
  const typo = await admin(['clients', 'add', file]);
  assert.equal(typo.status, 1);
  assert.match(
    typo.stderr,
    /token_endpoint_auth_metod is not a known field \(did you mean token_endpoint_auth_method\?\)/,
  );
  assert.equal((await admin(['clients', 'show', 'typo'])).status, 1);
  assert.equal((await admin(['clients', 'remove', 'till-9'])).status, 0);
  assert.equal((await admin(['clients', 'remove', 'till-9'])).status, 1);
});

test('users add/list/show/remove (devices and refresh tokens go with the user)', async () => {
  const file = join(dir, 'user.json');
  writeFileSync(
    file,
    JSON.stringify({ users: [{ sub: 'bruno', email: 'bruno@example.com', user_code: '4711-0815' }] }),
  );
  assert.equal((await admin(['users', 'add', file])).status, 0);
  const users = (await admin(['users', 'list', '--json'])).json() as { sub: string }[];
  assert.deepEqual(
    users.map((u) => u.sub),
    ['alice', 'bruno'],
  );
  const bruno = (await admin(['users', 'show', 'bruno', '--json'])).json() as Record<string, unknown>;
  assert.equal(bruno.user_code, 'set');
  assert.equal('user_code_hash' in bruno, false);
  const removed = await admin(['users', 'remove', 'bruno', '--json']);
  assert.equal(removed.status, 0, removed.stderr);
  assert.equal((await admin(['users', 'show', 'bruno'])).status, 1);
});

test('requests list/cancel: a cancelled poll request answers access_denied', async () => {
  const bc = await postForm(
    `${issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice' },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(bc.status, 200);
  const id = sha256b64u(String(bc.json.auth_req_id));
  const listed = (await admin(['requests', 'list', '--sub', 'alice', '--json'])).json() as { request_id: string }[];
  assert.ok(listed.some((r) => r.request_id === id));
  assert.equal((await admin(['requests', 'cancel', id])).status, 0);
  assert.equal((await admin(['requests', 'cancel', id])).status, 1, 'already decided');
  const token = await postForm(
    `${issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: String(bc.json.auth_req_id) },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(token.json.error, 'access_denied');
});

test('registration-tokens create: the token registers a client at /register', async () => {
  const created = await admin(['registration-tokens', 'create', '--expires-in', '600', '--single-use', '--json']);
  assert.equal(created.status, 0, created.stderr);
  const { token, single_use } = created.json() as { token: string; single_use: boolean };
  assert.equal(single_use, true);
  assert.ok(!created.stderr.includes(token), 'the token never reaches the audit line');
  const res = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ grant_types: [CIBA_GRANT], scope: 'openid' }),
  });
  assert.equal(res.status, 201);
  assert.equal((await admin(['registration-tokens', 'create', '--expires-in', '5'])).status, 2);
});

test('--stack: a deployed stack found through its CloudFormation outputs (only that lookup is stood in for)', async () => {
  const state = readStateFile(dataDir)!;
  const outputs = {
    TableName: state.tableName,
    IssuerUrl: state.issuer,
    SealingKeyId: 'arn:aws:kms:local:000000000000:key/x',
    DeliveryDeadLetterQueueUrl: state.env.DELIVERY_DLQ_URL!,
    // The deployed functions' settings: applied by the CLI (operator settings only; the other entry is ignored).
    ServerSettings: JSON.stringify({ CIBA_ENROLMENT_CODE_TTL: '120', TABLE_NAME: 'not-this-one' }),
  };
  const requests: string[] = [];
  cfn = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      requests.push(body);
      res.setHeader('content-type', 'text/xml');
      res.end(describeStacksXml('CibaProd', 'local', outputs));
    });
  });
  const { port } = await listen(cfn, '127.0.0.1', 0);
  const env = {
    CIBA_DATA_DIR: join(dir, 'no-stack-here'),
    AWS_REGION: state.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_CLOUDFORMATION: `http://127.0.0.1:${port}`,
    AWS_ENDPOINT_URL_DYNAMODB: state.dynamodbEndpoint,
    AWS_ENDPOINT_URL_SQS: state.awsEndpoint,
    // The "deployed" issuer is the local stack's http URL, which the settings accept in local mode only.
    CIBA_LOCAL: 'true',
  };
  const users = await admin(['users', 'list', '--json', '--stack', 'CibaProd'], env);
  assert.equal(users.status, 0, users.stderr);
  assert.deepEqual(
    (users.json() as { sub: string }[]).map((u) => u.sub),
    ['alice'],
  );
  assert.match(requests[0] ?? '', /Action=DescribeStacks/);
  assert.match(requests[0] ?? '', /StackName=CibaProd/);
  const token = await admin(['registration-tokens', 'create', '--json', '--stack', 'CibaProd'], env);
  assert.equal(token.status, 0, token.stderr);
  const res = await fetch(`${issuer}/register`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${(token.json() as { token: string }).token}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ grant_types: [CIBA_GRANT], scope: 'openid' }),
  });
  assert.equal(res.status, 201, 'the deployed path wrote to the same table the server reads');
  // A code lives as long as the deployed setting says (120 s, not the default 600 s).
  const code = await admin(['devices', 'code', 'alice', '--json', '--stack', 'CibaProd'], env);
  assert.equal(code.status, 0, code.stderr);
  const lifetime = (code.json() as { expires_at: number }).expires_at - Math.floor(Date.now() / 1000);
  assert.ok(lifetime > 100 && lifetime <= 120, `code lifetime ${lifetime} s`);
  // The dead-letter queue comes from the DeliveryDeadLetterQueueUrl output.
  const deadLetters = await admin(['dead-letters', 'list', '--json', '--stack', 'CibaProd'], env);
  assert.equal(deadLetters.status, 0, deadLetters.stderr);
  assert.deepEqual(deadLetters.json(), []);
  const noRegion = await admin(['users', 'list', '--stack', 'CibaProd'], {
    ...env,
    AWS_REGION: '',
    AWS_DEFAULT_REGION: '',
  });
  assert.equal(noRegion.status, 1);
  assert.match(noRegion.stderr, /AWS region/);
  assert.ok(readFileSync(join(ROOT, 'docs/admin.md'), 'utf8').includes('--stack'));
});
