// Workflow executions running when the local stack stops resume when it starts again on the same data dir, as they
// keep running on AWS: `npm start` killed with SIGKILL in the middle of ping, push and poll flows, and the
// in-process stack closed and started again. Requests whose expiry passes while the server is down end expired
// (poll: expired_token; ping: the expiry is pinged).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { basic, CIBA_GRANT, postForm, SECRET, sleep, testSeed } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { DeviceClient, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { startLocalStack, type LocalStackOptions } from '../../local/stack.ts';
import { getAuthRequest } from '../../functions/adapters/store.ts';

const START = new URL('../../local/start.ts', import.meta.url).pathname;
const NOTIFICATION_TOKEN = 'restart-notification-token-0123456789';
const dirs: string[] = [];
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** `npm start` (local/start.ts) as a child process, once discovery answers. */
async function startServer(env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [START, '--quiet'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`start.ts exited ${child.exitCode}: ${output}`);
    try {
      if ((await fetch(`http://localhost:${env.PORT}/.well-known/openid-configuration`)).status === 200) return child;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`not ready after 30 s: ${output}`);
  }
}

async function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
  children.delete(child);
}

/** The notification on `path` for `authReqId` (waits for it). */
async function notification(receiver: NotificationReceiver, path: string, authReqId: string) {
  for (let n = 1; ; n++) {
    const hit = (await receiver.waitFor(path, n, 20_000)).find((r) => r.json.auth_req_id === authReqId);
    if (hit) return hit;
  }
}

/** A CIBA request of `clientId` for alice; returns its auth_req_id and binding message. */
async function ask(issuer: string, clientId: string, extra: Record<string, string> = {}) {
  const bindingMessage = `R-${Math.random().toString(36).slice(2, 8)}`;
  const res = await postForm(
    `${issuer}/bc-authorize`,
    { scope: 'openid', login_hint: 'alice', binding_message: bindingMessage, ...extra },
    {
      authorization: basic(clientId, SECRET),
    },
  );
  assert.equal(res.status, 200, res.text);
  return { authReqId: String(res.json.auth_req_id), bindingMessage, at: Date.now() };
}

const redeem = (issuer: string, clientId: string, authReqId: string) =>
  postForm(
    `${issuer}/token`,
    { grant_type: CIBA_GRANT, auth_req_id: authReqId },
    { authorization: basic(clientId, SECRET) },
  );

test('npm start killed and restarted: ping, push and poll complete; expiries while down end expired', async () => {
  const receiver = await NotificationReceiver.start();
  try {
    const port = await freePort();
    const dataDir = tempDir('ciba-restart-');
    const aliceKey = generateDeviceKey();
    const client = { client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid' };
    const seed = join(tempDir('ciba-restart-seed-'), 'seed.json');
    writeFileSync(
      seed,
      JSON.stringify({
        clients: [
          { ...client, client_id: 'rr-poll', backchannel_token_delivery_mode: 'poll' },
          {
            ...client,
            client_id: 'rr-ping',
            backchannel_token_delivery_mode: 'ping',
            backchannel_client_notification_endpoint: receiver.url('/ping'),
          },
          {
            ...client,
            client_id: 'rr-push',
            backchannel_token_delivery_mode: 'push',
            backchannel_client_notification_endpoint: receiver.url('/push'),
          },
        ],
        users: [
          {
            sub: 'alice',
            email: 'alice@example.com',
            devices: [{ device_id: 'alice-phone', jwk: publicDeviceJwk(aliceKey) }],
          },
        ],
      }),
    );
    const env = {
      PORT: String(port),
      CIBA_DATA_DIR: dataDir,
      CIBA_SEED: seed,
      CIBA_POLL_INTERVAL: '1',
      CIBA_MIN_EXPIRES_IN: '2',
      LOG_LEVEL: 'warn',
    };
    const issuer = `http://localhost:${port}`;
    const alice = new DeviceClient(issuer, 'alice-phone', aliceKey);
    const notify = { client_notification_token: NOTIFICATION_TOKEN };

    let server = await startServer(env);
    const poll = await ask(issuer, 'rr-poll');
    const ping = await ask(issuer, 'rr-ping', notify);
    const push = await ask(issuer, 'rr-push', notify);
    const pollShort = await ask(issuer, 'rr-poll', { requested_expiry: '3' });
    const pingShort = await ask(issuer, 'rr-ping', { ...notify, requested_expiry: '3' });
    const all = [poll, ping, push, pollShort, pingShort];
    for (const r of all) await alice.waitFor((d) => d.binding_message === r.bindingMessage);
    // Killed mid-flow: each workflow waits for the device, or is still notifying it (then that task runs again).
    await stop(server, 'SIGKILL');
    // Down until the short requests have expired.
    await sleep(Math.max(0, pingShort.at + 3_500 - Date.now()));
    server = await startServer(env);

    for (const r of [poll, ping, push]) {
      const request = await alice.waitFor((d) => d.binding_message === r.bindingMessage);
      assert.equal((await alice.decide(request.id, 'approve')).status, 204);
    }
    const pinged = await notification(receiver, '/ping', ping.authReqId);
    assert.equal(pinged.headers.authorization, `Bearer ${NOTIFICATION_TOKEN}`);
    assert.equal((await redeem(issuer, 'rr-ping', ping.authReqId)).status, 200, 'the pinged client gets its tokens');
    const pushed = await notification(receiver, '/push', push.authReqId);
    assert.equal(typeof pushed.json.access_token, 'string', 'the token set is pushed');
    assert.equal(typeof pushed.json.id_token, 'string');
    const polled = await redeem(issuer, 'rr-poll', poll.authReqId);
    assert.equal(polled.status, 200, polled.text);
    assert.equal(typeof polled.json.access_token, 'string');

    // Expired while the server was down: the ping client is told, and both get expired_token.
    await notification(receiver, '/ping', pingShort.authReqId);
    assert.equal((await redeem(issuer, 'rr-ping', pingShort.authReqId)).json.error, 'expired_token');
    assert.equal((await redeem(issuer, 'rr-poll', pollShort.authReqId)).json.error, 'expired_token');
    await stop(server, 'SIGTERM');
  } finally {
    await receiver.down();
  }
});

test('the in-process stack closed and started again: a waiting poll request waits on with its task token', async () => {
  const aliceKey = generateDeviceKey();
  const options: LocalStackOptions = {
    port: 0,
    dataDir: tempDir('ciba-restart-inproc-'),
    quiet: true,
    seed: testSeed(aliceKey, generateDeviceKey()),
    env: { LOG_LEVEL: 'warn', CIBA_POLL_INTERVAL: '1', CIBA_MIN_EXPIRES_IN: '2' },
  };
  let stack = await startLocalStack(options);
  try {
    const alice = new DeviceClient(stack.issuer, 'alice-phone', aliceKey);
    const long = await ask(stack.issuer, 'rp');
    const short = await ask(stack.issuer, 'rp', { requested_expiry: '2' });
    const [longReq, shortReq] = [
      await alice.waitFor((d) => d.binding_message === long.bindingMessage),
      await alice.waitFor((d) => d.binding_message === short.bindingMessage),
    ];
    for (const { id } of [longReq, shortReq]) {
      while (!stack.stepFunctions.position(id)?.waiting) await sleep(20);
    }
    const taskToken = (await getAuthRequest(longReq.id))?.task_token;
    assert.ok(taskToken);
    await stack.close();
    await sleep(Math.max(0, short.at + 2_500 - Date.now())); // the short request expires while the stack is down

    stack = await startLocalStack(options);
    const entered = async (id: string) => {
      const rec = await stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', 10_000);
      return stack.stepFunctions
        .history(rec.executionArn)
        .filter((e) => e.type === 'StateEntered')
        .map((e) => e.stateName);
    };
    // Its timeout passed while down: it times out at once (the row's own expires_at makes it expired).
    assert.deepEqual(await entered(shortReq.id), ['AwaitDecision', 'Expired']);
    assert.equal((await redeem(stack.issuer, 'rp', short.authReqId)).json.error, 'expired_token');

    assert.equal(stack.stepFunctions.position(longReq.id)?.state, 'AwaitDecision');
    assert.equal((await getAuthRequest(longReq.id))?.task_token, taskToken, 'the same task token, not notified again');
    assert.equal((await alice.decide(longReq.id, 'approve')).status, 204);
    assert.deepEqual(await entered(longReq.id), ['AwaitDecision']);
    assert.equal((await redeem(stack.issuer, 'rp', long.authReqId)).status, 200);
  } finally {
    await stack.close();
  }
});
