// No secret (auth_req_id, access/ID/refresh tokens, client secret, user code, task token, client notification token)
// appears in any execution's input, output or history, in any SNS message, dead letter, or log line
// (docs/security.md), for poll, ping and push flows including a retried push and a dead-lettered one.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { getAuthRequest } from '../../functions/adapters/store.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, USER_CODE, type World } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';

let w: World;
let receiver: NotificationReceiver;
const logs: string[] = [];
const writes = { out: process.stdout.write.bind(process.stdout), err: process.stderr.write.bind(process.stderr) };

before(async () => {
  // Capture everything the handlers and local services write, at the most verbose level.
  process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => (
    logs.push(String(chunk)), writes.out(chunk, ...rest)
  )) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: never[]) => (
    logs.push(String(chunk)), writes.err(chunk, ...rest)
  )) as typeof process.stderr.write;
  receiver = await NotificationReceiver.start();
  const base = { client_secret: SECRET, grant_types: [CIBA_GRANT, 'refresh_token'], scope: 'openid profile' };
  w = await startWorld({ CIBA_POLL_INTERVAL: '1', LOG_LEVEL: 'debug', CIBA_MIN_EXPIRES_IN: '2' }, [
    {
      ...base,
      client_id: 'ping-ns',
      backchannel_token_delivery_mode: 'ping',
      backchannel_client_notification_endpoint: receiver.url('/ping'),
    },
    {
      ...base,
      client_id: 'push-ns',
      backchannel_token_delivery_mode: 'push',
      backchannel_client_notification_endpoint: receiver.url('/push'),
    },
    {
      ...base,
      client_id: 'push-401',
      backchannel_token_delivery_mode: 'push',
      backchannel_client_notification_endpoint: receiver.url('/push-401'),
    },
  ]);
});
after(async () => {
  await w.close();
  await receiver.down();
  process.stdout.write = writes.out;
  process.stderr.write = writes.err;
});

test('secrets stay out of executions, SNS messages and logs', async () => {
  const secrets = new Map<string, string>([
    ['client secret', SECRET],
    ['user code', USER_CODE],
  ]);
  const config = await w.rp();

  // approve (with refresh), deny, expire-by-timeout and a user-code request: every workflow path.
  for (const [i, outcome] of (['approve', 'deny', 'expire'] as const).entries()) {
    const bindingMessage = `SECRETS-${i}`;
    const started = await oidc.initiateBackchannelAuthentication(config, {
      scope: 'openid profile',
      login_hint: 'alice',
      binding_message: bindingMessage,
      ...(outcome === 'expire' ? { requested_expiry: '10' } : {}),
    });
    secrets.set(`auth_req_id ${outcome}`, started.auth_req_id);
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const row = await getAuthRequest(sha256b64u(started.auth_req_id));
    assert.ok(row?.task_token, 'the task token is stored server-side');
    secrets.set(`task token ${outcome}`, row.task_token);
    if (outcome === 'expire') {
      await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED', 20_000);
      continue;
    }
    assert.equal((await w.alice.decide(request.id, outcome)).status, 204);
    if (outcome === 'approve') {
      const tokens = await oidc.pollBackchannelAuthenticationGrant(config, started);
      secrets.set('access token', tokens.access_token);
      secrets.set('id token', tokens.id_token!);
      secrets.set('refresh token', tokens.refresh_token!);
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      secrets.set('refreshed refresh token', refreshed.refresh_token!);
    }
    await w.stack.stepFunctions.waitForStatus(request.id, 'SUCCEEDED');
  }
  const withCode = await postForm(
    `${w.issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice', user_code: USER_CODE },
    { authorization: basic('user-code', SECRET) },
  );
  assert.equal(withCode.status, 200);
  secrets.set('auth_req_id user-code', String(withCode.json.auth_req_id));
  const wrong = await postForm(
    `${w.issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: String(withCode.json.auth_req_id) },
    { authorization: basic('rp', SECRET) },
  );
  assert.equal(wrong.json.error, 'invalid_grant');

  // Ping and push: approve (push retried once after a 503, so the token set is re-sent), deny, expire, dead-lettered.
  receiver.respond('/push', (n) => (n === 0 ? 503 : 204));
  receiver.respond('/push-401', () => 401);
  for (const [clientId, outcome] of [
    ['ping-ns', 'approve'],
    ['push-ns', 'approve'],
    ['push-ns', 'deny'],
    ['ping-ns', 'expire'],
    ['push-401', 'approve'],
  ] as const) {
    const bindingMessage = `SECRETS-${clientId}-${outcome}`;
    const notificationToken = `nt-${clientId}-${outcome}-${Math.random().toString(36).slice(2)}`;
    secrets.set(`notification token ${clientId} ${outcome}`, notificationToken);
    const res = await postForm(
      `${w.issuer}/bc-authorize`,
      {
        scope: 'openid profile',
        login_hint: 'alice',
        binding_message: bindingMessage,
        client_notification_token: notificationToken,
        ...(outcome === 'expire' ? { requested_expiry: '2' } : {}),
      },
      { authorization: basic(clientId, SECRET) },
    );
    assert.equal(res.status, 200, res.text);
    secrets.set(`auth_req_id ${clientId} ${outcome}`, String(res.json.auth_req_id));
    const request = await w.alice.waitFor((r) => r.binding_message === bindingMessage);
    const row = await getAuthRequest(request.id);
    assert.ok(row?.delivery_secrets, 'the notification secrets are kept sealed');
    if (outcome !== 'expire') assert.equal((await w.alice.decide(request.id, outcome)).status, 204);
    await w.stack.stepFunctions.waitForStatus(request.id, clientId === 'push-401' ? 'FAILED' : 'SUCCEEDED', 20_000);
  }
  for (const push of receiver.received('/push')) {
    for (const field of ['access_token', 'id_token', 'refresh_token'] as const) {
      if (typeof push.json[field] === 'string') secrets.set(`pushed ${field}`, push.json[field]);
    }
  }
  assert.ok(
    secrets.has('pushed access_token') && receiver.received('/push').length >= 3,
    'a retried push and a denied push arrived',
  );
  assert.ok(w.stack.sqs.deadLetters().length >= 1, 'the 401 push was dead-lettered');

  const executions = w.stack.stepFunctions.executions();
  assert.ok(executions.length >= 4);
  const places: [string, string][] = [
    ...executions.map((e): [string, string] => [
      `execution ${e.name}`,
      JSON.stringify(e) + JSON.stringify(w.stack.stepFunctions.history(e.executionArn)),
    ]),
    ...w.stack.sns.messages().map((m, i): [string, string] => [`SNS message ${i}`, JSON.stringify(m)]),
    ...w.stack.sqs.deadLetters().map((m, i): [string, string] => [`dead letter ${i}`, JSON.stringify(m)]),
    ['logs', logs.join('')],
  ];
  assert.ok(w.stack.sns.messages().length >= 3, 'device notifications were published');
  assert.ok(logs.join('').includes('backchannel request accepted'), 'handler logs were captured');
  for (const [where, text] of places) {
    for (const [what, secret] of secrets) {
      assert.ok(!text.includes(secret), `${what} appears in ${where}`);
      // also the URL-encoded and JSON-escaped forms
      assert.ok(!text.includes(encodeURIComponent(secret)), `${what} (url-encoded) appears in ${where}`);
    }
  }
});
