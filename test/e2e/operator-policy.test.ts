// The operator policy (CibaServer.operatorPolicy; docs/admin.md, "Permissions") against what the admin CLI really
// calls: every command runs in this process against the local stack, through the same functions scripts/admin.ts
// runs for it, while every AWS call is recorded (calls outside any handler invocation are the command's; the
// handlers' own calls, e.g. the deliver function's after a redrive, carry their invocation). Each call's IAM action
// (service prefix + operation) must be allowed by the policy synthesized for a stack with the local stack's push
// platform applications, and every action the policy grants must be used by some command. `--stack` itself
// (DescribeStacks) and sealing a client_secret_jwt secret with KMS run in a child `clients add --stack`, against
// loopback CloudFormation and KMS stand-ins that record what they are asked (the local stack seals with a key file).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { CfnManagedPolicy } from 'aws-cdk-lib/aws-iam';
import {
  basic,
  CIBA_GRANT,
  describeStacksXml,
  postForm,
  runNode,
  SECRET,
  sleep,
  startWorld,
  type World,
} from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { type Json, normalize, type Statement, synth } from '../infra/support.ts';
import { DeviceClient, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { listen } from '../../local/http-server.ts';
import { readStateFile } from '../../local/state-file.ts';
import type { AwsCall } from '../../functions/adapters/aws.ts';
import { getAuthRequest, getClient, getUser, setUserDisabled } from '../../functions/adapters/store.ts';
import {
  addClients,
  addUsers,
  cancelRequest,
  createInitialAccessToken,
  listClients,
  listRequests,
  listUsers,
  removeClient,
  removeUser,
  showClient,
  showUser,
} from '../../functions/admin/operations.ts';
import { listDeadLetters, redriveDeadLetters } from '../../functions/admin/dead-letters.ts';
import { loadSeed } from '../../functions/admin/seed.ts';
import { listDevices, removeDeviceById } from '../../functions/usecases/devices.ts';
import { issueEnrolmentCode } from '../../functions/usecases/enrolment.ts';

const ADMIN = new URL('../../scripts/admin.ts', import.meta.url).pathname;
const JWT_SECRET = 'jwt-secret-0123456789abcdefghijklmnop';

let w: World;
let receiver: NotificationReceiver;
let dir: string;
let policy: Statement[];
const carolPhone = generateDeviceKey();
const carolTablet = generateDeviceKey();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ciba-operator-policy-'));
  receiver = await NotificationReceiver.start();
  receiver.respond('/op-ping', () => 401);
  w = await startWorld(
    {},
    [
      {
        client_id: 'op-ping',
        client_secret: SECRET,
        grant_types: [CIBA_GRANT],
        scope: 'openid',
        backchannel_token_delivery_mode: 'ping',
        backchannel_client_notification_endpoint: receiver.url('/op-ping'),
      },
    ],
    [],
    { dataDir: join(dir, 'data') },
  );
  // The policy of a deployment with this stack's push platform applications (so that the endpoints a removed
  // device's channel had are within its DeleteEndpoint grant, or not).
  const env = readStateFile(join(dir, 'data'))!.env;
  const app = (name: string) => {
    assert.ok(env[name], `the local stack has ${name}`);
    return env[name];
  };
  const s = synth({
    pushPlatforms: {
      fcm: app('CIBA_SNS_PLATFORM_FCM_ARN'),
      apns: app('CIBA_SNS_PLATFORM_APNS_ARN'),
      apnsSandbox: app('CIBA_SNS_PLATFORM_APNS_SANDBOX_ARN'),
    },
  });
  const id = s.stack.getLogicalId(s.stack.server.operatorPolicy.node.defaultChild as CfnManagedPolicy);
  policy = (s.json.Resources[id].Properties.PolicyDocument.Statement as Json[]).map(normalize);
  w.stack.awsCalls.record();
});
after(async () => {
  await w?.close();
  await receiver?.down();
  rmSync(dir, { recursive: true, force: true });
});

// ---- recording what each command calls ----------------------------------------------------------------------

/** An AWS call as IAM authorizes it; `resource` and `context` where they are known. */
type Call = { action: string; resource?: string; context?: Record<string, string> };
const IAM_PREFIX: Record<string, string> = {
  DynamoDB: 'dynamodb',
  StepFunctions: 'states',
  SQS: 'sqs',
  SNS: 'sns',
  KMS: 'kms',
  CloudFormation: 'cloudformation',
};
const iamAction = (c: Pick<AwsCall, 'service' | 'operation'>): string =>
  `${IAM_PREFIX[c.service] ?? `unknown-service(${c.service})`}:${c.operation}`;

/** Every command's calls, by the command as an operator types it. */
const made = new Map<string, Call[]>();
const record = (command: string, calls: Call[]) => made.set(command, [...(made.get(command) ?? []), ...calls]);

/** Runs one command's code path and keeps the calls made outside every handler invocation: the command's own. */
async function command<T>(name: string, run: () => Promise<T>): Promise<T> {
  w.stack.awsCalls.reset();
  const out = await run();
  record(
    name,
    w.stack.awsCalls
      .calls()
      .filter((c) => !c.invocation)
      .map((c) => ({ action: iamAction(c) })),
  );
  return out;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms`);
    await sleep(50);
  }
}

// scripts/admin.ts: `requireUser` before `devices code` (enabled) and `devices list`.
async function requireUser(sub: string, enabled = false): Promise<void> {
  const user = await getUser(sub);
  assert.ok(user && !(enabled && user.disabled), `user ${sub}`);
}

// ---- the commands, each through the functions scripts/admin.ts runs for it --------------------------------------

test('clients add, list, show, remove', async () => {
  const clients = [
    { client_id: 'op-basic', client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid' },
    {
      client_id: 'op-jwt',
      client_secret: JWT_SECRET,
      token_endpoint_auth_method: 'client_secret_jwt',
      grant_types: [CIBA_GRANT],
      scope: 'openid',
    },
  ];
  assert.equal(await command('clients add', () => addClients(clients)), 2);
  const listed = await command('clients list', () => listClients());
  assert.ok(listed.some((c) => c.client_id === 'op-jwt'));
  assert.equal((await command('clients show', () => showClient('op-jwt')))?.client_id, 'op-jwt');
  assert.equal(await command('clients remove', () => removeClient('op-basic')), true);
});

test('users add, list, show, disable, enable (carol, two devices with SNS push channels)', async () => {
  const devices = [
    { device_id: 'carol-phone', jwk: publicDeviceJwk(carolPhone) },
    { device_id: 'carol-tablet', jwk: publicDeviceJwk(carolTablet) },
  ];
  const users = [{ sub: 'carol', email: 'carol@example.com', devices }];
  assert.equal(await command('users add', () => addUsers(users)), 1);
  // Each device registers a push token: an SNS endpoint in the local FCM application (the device API's calls).
  for (const [id, key] of [
    ['carol-phone', carolPhone],
    ['carol-tablet', carolTablet],
  ] as const) {
    const set = await new DeviceClient(w.issuer, id, key).setChannel({
      type: 'sns',
      platform: 'fcm',
      token: `t-${id}`,
    });
    assert.equal(set.status, 204, set.text);
  }
  assert.equal(w.stack.sns.platformEndpoints().length, 2);

  assert.ok((await command('users list', () => listUsers())).some((u) => u.sub === 'carol'));
  assert.equal((await command('users show', () => showUser('carol')))?.sub, 'carol');
  assert.equal(await command('users disable', () => setUserDisabled('carol', true)), true);
  assert.equal(await command('users enable', () => setUserDisabled('carol', false)), true);
});

/** The endpoints a removal deleted, checked against the policy's DeleteEndpoint resources below. */
const deletedEndpoints: string[] = [];
const endpointsNow = () => w.stack.sns.platformEndpoints().map((e) => e.endpointArn);

test('devices code, list, remove (its SNS endpoint deleted)', async () => {
  const code = await command('devices code', async () => {
    await requireUser('carol', true);
    return issueEnrolmentCode('carol', 'admin:operator-policy-test');
  });
  assert.ok(code.code);
  const devices = await command('devices list', async () => {
    await requireUser('carol');
    return listDevices('carol');
  });
  assert.deepEqual(devices.map((d) => d.device_id).sort(), ['carol-phone', 'carol-tablet']);
  const before = endpointsNow();
  assert.equal((await command('devices remove', () => removeDeviceById('carol-tablet')))?.sub, 'carol');
  const deleted = before.filter((arn) => !endpointsNow().includes(arn));
  assert.equal(deleted.length, 1, 'the tablet’s endpoint is deleted');
  deletedEndpoints.push(...deleted);
});

test('requests list, cancel (a poll request waiting for its decision)', async () => {
  const started = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'bob@example.com', binding_message: 'OP-CANCEL' },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(started.status, 200, started.text);
  const request = await w.bob.waitFor((r) => r.binding_message === 'OP-CANCEL');
  // The workflow has stored its task token: the cancel resumes it (SendTaskSuccess).
  await until('the task token', async () => (await getAuthRequest(request.id))?.task_token);
  assert.ok((await command('requests list', () => listRequests())).some((r) => r.id === request.id));
  assert.ok((await command('requests list', () => listRequests('bob'))).some((r) => r.id === request.id));
  assert.equal(await command('requests cancel', () => cancelRequest(request.id)), 'cancelled');
  await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED');
});

test('registration-tokens create, seed load', async () => {
  const token = await command('registration-tokens create', () => createInitialAccessToken(600, true));
  assert.equal(token.single_use, true);
  const counts = await command('seed load', () =>
    loadSeed({
      clients: [{ client_id: 'op-seeded', client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid' }],
      users: [{ sub: 'dave', email: 'dave@example.com' }],
    }),
  );
  assert.deepEqual(counts, { clients: 1, users: 1, devices: 0 });
});

test('users remove (carol, with the phone: its SNS endpoint deleted too)', async () => {
  const before = endpointsNow();
  const removed = await command('users remove', () => removeUser('carol'));
  assert.deepEqual(removed, { devices: 1, refreshTokens: 0 });
  const deleted = before.filter((arn) => !endpointsNow().includes(arn));
  assert.equal(deleted.length, 1, 'the phone’s endpoint is deleted');
  deletedEndpoints.push(...deleted);
});

test('dead-letters list, redrive (a ping delivery the client refused, redriven once its endpoint answers)', async () => {
  const res = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice', binding_message: 'OP-DL', client_notification_token: 'cnt-op-0123456789' },
    { authorization: basic('op-ping', SECRET) },
  );
  assert.equal(res.status, 200, res.text);
  const request = await w.alice.waitFor((r) => r.binding_message === 'OP-DL');
  assert.equal((await w.alice.decide(request.id, 'approve')).status, 204);
  await w.stack.stepFunctions.waitForStatus(request.id, 'FAILED', 20_000);
  await until('the dead letter', async () => (w.stack.sqs.deadLetters().length > 0 ? true : undefined));

  const letters = await command('dead-letters list', () => listDeadLetters());
  assert.deepEqual(
    letters.map((l) => l.request_id),
    [request.id],
  );
  receiver.respond('/op-ping', () => 204);
  const [outcome] = await command('dead-letters redrive', () => redriveDeadLetters([request.id]));
  assert.equal(outcome?.outcome, 'redriven', JSON.stringify(outcome));
  const execution = await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED', 20_000);
  assert.equal(execution.redriveCount, 1);
});

test('--stack: DescribeStacks, then clients add seals a client_secret_jwt secret with KMS (a child process)', async () => {
  const state = readStateFile(join(dir, 'data'))!;
  const sealingKeyArn = `arn:aws:kms:${state.region}:000000000000:key/11111111-2222-3333-4444-555555555555`;
  const blob = randomBytes(48);
  const asked: { service: string; operation: string; body: string; target?: string }[] = [];
  const stub = (answer: (target: string | undefined, body: string) => { type: string; body: string }) =>
    createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const target = req.headers['x-amz-target'] as string | undefined;
        const reply = answer(target, body);
        res.setHeader('content-type', reply.type);
        res.end(reply.body);
      });
    });
  const cfn: Server = stub((_target, body) => {
    asked.push({ service: 'CloudFormation', operation: new URLSearchParams(body).get('Action') ?? '?', body });
    const outputs = { TableName: state.tableName, IssuerUrl: state.issuer, SealingKeyId: sealingKeyArn };
    return { type: 'text/xml', body: describeStacksXml('CibaProd', state.region, outputs) };
  });
  const kms: Server = stub((target, body) => {
    const operation = target?.replace(/^TrentService\./, '') ?? '?';
    asked.push({ service: 'KMS', operation, body, ...(target ? { target } : {}) });
    if (operation !== 'GenerateDataKey')
      return { type: 'application/x-amz-json-1.1', body: JSON.stringify({ __type: 'UnsupportedOperationException' }) };
    return {
      type: 'application/x-amz-json-1.1',
      body: JSON.stringify({
        KeyId: sealingKeyArn,
        Plaintext: randomBytes(32).toString('base64'),
        CiphertextBlob: blob.toString('base64'),
      }),
    };
  });
  const cfnPort = (await listen(cfn, '127.0.0.1', 0)).port;
  const kmsPort = (await listen(kms, '127.0.0.1', 0)).port;
  try {
    const file = join(dir, 'stack-client.json');
    writeFileSync(
      file,
      JSON.stringify({
        client_id: 'op-jwt-stack',
        client_secret: JWT_SECRET,
        token_endpoint_auth_method: 'client_secret_jwt',
        grant_types: [CIBA_GRANT],
        scope: 'openid',
      }),
    );
    const run = await runNode([ADMIN, 'clients', 'add', file, '--json', '--stack', 'CibaProd'], {
      ...process.env,
      CIBA_DATA_DIR: join(dir, 'no-local-stack'),
      PORT: '',
      AWS_REGION: state.region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_ENDPOINT_URL_CLOUDFORMATION: `http://127.0.0.1:${cfnPort}`,
      AWS_ENDPOINT_URL_KMS: `http://127.0.0.1:${kmsPort}`,
      AWS_ENDPOINT_URL_DYNAMODB: state.dynamodbEndpoint,
      // The "deployed" issuer is the local stack's http URL, which the settings accept in local mode only.
      CIBA_LOCAL: 'true',
    });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { clients: ['op-jwt-stack'] });
  } finally {
    cfn.close();
    kms.close();
  }
  // What the child asked AWS besides DynamoDB: the stack's outputs, then one data key under the sealing context.
  assert.deepEqual(
    asked.map((a) => `${a.service}.${a.operation}`),
    ['CloudFormation.DescribeStacks', 'KMS.GenerateDataKey'],
  );
  assert.match(asked[0]!.body, /StackName=CibaProd/);
  const generate = JSON.parse(asked[1]!.body) as { KeyId: string; EncryptionContext?: Record<string, string> };
  assert.equal(generate.KeyId, sealingKeyArn, 'the key the SealingKeyId output names');
  record('--stack', [{ action: 'cloudformation:DescribeStacks' }]);
  record('clients add --stack', [{ action: 'kms:GenerateDataKey', context: generate.EncryptionContext ?? {} }]);
  // And the secret is stored sealed with that data key (its KMS-encrypted copy is the sealed value's key ref).
  const stored = await getClient('op-jwt-stack');
  assert.ok(
    stored?.client_secret_sealed?.startsWith(`v1.${blob.toString('base64url')}.`),
    'sealed with the KMS data key',
  );
});

// ---- the policy ----------------------------------------------------------------------------------------------------

const escapeRegExp = (s: string) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
const glob = (pattern: string, value: string) =>
  new RegExp(`^${pattern.split('*').map(escapeRegExp).join('.*')}$`).test(value);

/** The policy's KMS encryption context conditions hold for `context`; any other condition is not understood: no. */
function conditionHolds(condition: Json, context: Record<string, string> | undefined): boolean {
  if (!condition) return true;
  return Object.entries(condition as Record<string, Record<string, string>>).every(
    ([operator, keys]) =>
      operator === 'StringEquals' &&
      Object.entries(keys).every(
        ([key, value]) =>
          key.startsWith('kms:EncryptionContext:') && context?.[key.slice('kms:EncryptionContext:'.length)] === value,
      ),
  );
}

/** Whether the operator policy allows the call (its resource and encryption context checked where they are known). */
const allowed = (call: Call): boolean =>
  policy.some(
    (st) =>
      st.Effect === 'Allow' &&
      st.Action.some((a) => glob(a, call.action)) &&
      (call.resource === undefined || st.Resource.some((r) => typeof r === 'string' && glob(r, call.resource!))) &&
      conditionHolds(st.Condition, call.context),
  );

const COMMANDS = [
  'clients add',
  'clients list',
  'clients show',
  'clients remove',
  'users add',
  'users list',
  'users show',
  'users disable',
  'users enable',
  'users remove',
  'devices code',
  'devices list',
  'devices remove',
  'requests list',
  'requests cancel',
  'registration-tokens create',
  'seed load',
  'dead-letters list',
  'dead-letters redrive',
  '--stack',
  'clients add --stack',
];

test('every call of every command is allowed by the operator policy, and every action it grants is used', (t) => {
  assert.deepEqual([...made.keys()].sort(), [...COMMANDS].sort(), 'every command ran');
  for (const [name, calls] of made) {
    assert.ok(calls.length > 0, `${name} made AWS calls`);
    t.diagnostic(`${name}: ${[...new Set(calls.map((c) => c.action))].sort().join(' ')}`);
  }
  const refused = [...made].flatMap(([name, calls]) =>
    calls
      .filter((c) => !allowed(c))
      .map((c) => `${name}: ${c.action}${c.context ? ` ${JSON.stringify(c.context)}` : ''}`),
  );
  assert.deepEqual(refused, [], 'calls the operator policy does not allow');

  // The endpoints the removals deleted are within DeleteEndpoint's resources (the configured applications' endpoints).
  assert.equal(deletedEndpoints.length, 2);
  for (const arn of deletedEndpoints) assert.ok(allowed({ action: 'sns:DeleteEndpoint', resource: arn }), arn);
  assert.ok(
    !allowed({ action: 'sns:DeleteEndpoint', resource: 'arn:aws:sns:us-east-1:000000000000:endpoint/GCM/other-app/x' }),
    'not the endpoints of another application',
  );
  // A data key under another context (the sealed signing keys') is not allowed.
  assert.ok(!allowed({ action: 'kms:GenerateDataKey', context: { purpose: 'ciba-signing-keys' } }));

  // The paths that matter were taken.
  const actionsOf = (name: string) => new Set(made.get(name)!.map((c) => c.action));
  assert.ok(actionsOf('clients list').has('dynamodb:Scan'));
  assert.ok(actionsOf('requests cancel').has('states:SendTaskSuccess'));
  for (const name of ['devices remove', 'users remove']) assert.ok(actionsOf(name).has('sns:DeleteEndpoint'), name);
  for (const action of [
    'sqs:ReceiveMessage',
    'states:DescribeExecution',
    'states:RedriveExecution',
    'sqs:DeleteMessage',
  ])
    assert.ok(actionsOf('dead-letters redrive').has(action), action);

  // Nothing granted in vain: BatchGetItem only comes with the table grant the functions' store adapters share.
  const used = new Set([...made.values()].flat().map((c) => c.action));
  const granted = new Set(policy.flatMap((st) => st.Action));
  assert.deepEqual(
    [...granted].filter((a) => !used.has(a)),
    ['dynamodb:BatchGetItem'],
  );
});
