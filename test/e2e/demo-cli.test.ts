// `npm run demo` (scripts/demo.ts) as a child process against a local stack on a non-default port: `phone`, `approve`
// and `deny` reach the running server named by PORT or ISSUER (and fail clearly without one, instead of starting an
// empty in-process stack); the commands it and `npm start` print name the port and work as printed; without a
// terminal the phone decides only when told (--yes/--approve, --deny); no colour codes off a terminal (util.styleText);
// secrets (auth_req_id, tokens) never printed whole; a refused backchannel request shows error, description and
// Retry-After and exits non-zero.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';
import { DeviceClient, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { DEMO_CLIENT, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK, demoSeed } from '../../local/demo-seed.ts';
import { listen, readBody, type Listening } from '../../local/http-server.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { basic, postForm } from '../support/e2e.ts';

const PROJECT = new URL('../../', import.meta.url).pathname;
const DEMO = join(PROJECT, 'scripts/demo.ts');
const START = join(PROJECT, 'local/start.ts');
const ESC = '\x1b[';

/** `n` distinct free loopback ports: all held open at once, then released. */
async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createNetServer>>((resolve, reject) => {
          const s = createNetServer().listen(0, '127.0.0.1', () => resolve(s));
          s.on('error', reject);
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as { port: number }).port);
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  return ports;
}

// ---- the stack: demo seed on a non-default port; ping/push notify a recording proxy in front of the demo's receiver
// deadPort: nothing listens there. startPort, movedReceiver: for `npm start`.
const ports = await freePorts(5);
const [port, receiverPort, deadPort, startPort, movedReceiver] = ports as [number, number, number, number, number];
const issuer = `http://localhost:${port}`;

/** What the server POSTs to the push/ping endpoint, recorded, then passed on to the demo's receiver. */
type Delivered = { path: string; json: Record<string, unknown> };
const delivered: Delivered[] = [];
const proxy: Server = createHttpServer((req, res) => {
  void (async () => {
    const body = ((await readBody(req, 1024 * 1024)) ?? Buffer.alloc(0)).toString('utf8');
    const path = (req.url ?? '/').split('?')[0]!;
    delivered.push({ path, json: JSON.parse(body || '{}') as Record<string, unknown> });
    try {
      const headers: Record<string, string> = { 'content-type': String(req.headers['content-type'] ?? '') };
      if (req.headers.authorization) headers.authorization = req.headers.authorization;
      const answer = await fetch(`http://127.0.0.1:${receiverPort}${path}`, { method: 'POST', headers, body });
      res.writeHead(answer.status).end();
    } catch {
      res.writeHead(502).end();
    }
  })();
});

let stack: LocalStack;
let proxyListening: Listening;
const phone = new DeviceClient(issuer, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK);
const dirs: string[] = [];
const children = new Set<ChildProcess>();

before(async () => {
  proxyListening = await listen(proxy, '127.0.0.1', 0, true);
  const seed = demoSeed(proxyListening.port);
  const bobPhone = { device_id: 'bob-phone', jwk: publicDeviceJwk(generateDeviceKey()) };
  const bob = { sub: 'bob', email: 'bob@example.com', devices: [bobPhone] };
  stack = await startLocalStack({
    port,
    dataDir: null,
    quiet: true,
    seed: { ...seed, users: [...seed.users, bob] },
    // LOG_LEVEL=error: the 429 test's refusals are logged as warnings.
    env: { LOG_LEVEL: 'error', CIBA_POLL_INTERVAL: '1' },
  });
  assert.equal(stack.issuer, issuer);
});
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await stack?.close();
  await proxyListening?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// ---- running the demo ----------------------------------------------------------------------------------------------
type Run = { code: number | null; stdout: string; stderr: string };
type Running = {
  child: ChildProcess;
  output: () => Run;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<Run>;
};

/** The environment of a fresh terminal: no server choice, no colour settings (the test adds what it means). */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['PORT', 'ISSUER', 'CIBA_DEMO_RECEIVER_PORT', 'NO_COLOR', 'FORCE_COLOR', 'NODE_DISABLE_COLORS']) {
    delete env[k];
  }
  return { ...env, LOG_LEVEL: 'warn', ...extra };
}

function launch(command: string, args: string[], env: Record<string, string>, shell = false): Running {
  const options: SpawnOptions = { cwd: PROJECT, env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] };
  const child = shell ? spawn('sh', ['-c', command], options) : spawn(process.execPath, [command, ...args], options);
  children.add(child);
  const run: Run = { code: null, stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const listener of listeners) listener();
  };
  child.stdout!.on('data', (d) => {
    run.stdout += d;
    notify();
  });
  child.stderr!.on('data', (d) => {
    run.stderr += d;
    notify();
  });
  const exited = new Promise<Run>((resolve) =>
    child.on('close', (code) => {
      run.code = code;
      children.delete(child);
      notify();
      resolve(run);
    }),
  );
  return {
    child,
    output: () => run,
    exited,
    waitFor: (pattern, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(run.stdout + run.stderr);
          if (m) return done(() => resolve(m[0]));
          if (run.code !== null) done(() => reject(new Error(`exited ${run.code} before ${pattern}: ${all()}`)));
        };
        const all = () => run.stdout + run.stderr;
        const late = () => done(() => reject(new Error(`no ${pattern} after ${timeoutMs} ms: ${all()}`)));
        const timer = setTimeout(late, timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      }),
  };
}

const demo = (args: string[], env: Record<string, string>) => launch(DEMO, args, env).exited;

/** A pending request of demo-rp for alice, with its binding message; returns the device API's request id. */
async function pendingRequest(bindingMessage: string): Promise<string> {
  const form = { scope: 'openid', login_hint: 'alice@example.com', binding_message: bindingMessage };
  const res = await postForm(`${issuer}/bc-authorize`, form, { authorization: rpAuth });
  assert.equal(res.status, 200, res.text);
  return (await phone.waitFor((r) => r.binding_message === bindingMessage)).id;
}

const rpAuth = basic(DEMO_CLIENT.client_id, DEMO_CLIENT.client_secret);
const pendingIds = async () => (await phone.list()).map((r) => r.id);

// ---- (a) phone, approve and deny: the running server, or a clear failure ------------------------------------------
test('phone, approve, deny with no server at PORT / ISSUER: a clear message, exit 1, no in-process stack', async () => {
  const cases: [string[], Record<string, string>, RegExp][] = [
    [['phone', '--yes'], { PORT: String(deadPort) }, new RegExp(`Start \`PORT=${deadPort} npm start\``)],
    [['approve', 'some-request-id'], { PORT: String(deadPort) }, /from PORT=/],
    // One request id in 64 starts with "-": an argument, as the console prints it, not an unknown option.
    [['approve', `-${'A'.repeat(42)}`], { PORT: String(deadPort) }, /from PORT=/],
    [['deny', 'some-request-id'], { ISSUER: `http://localhost:${deadPort}` }, /from ISSUER/],
  ];
  for (const [args, env, hint] of cases) {
    const run = await demo(args, env);
    assert.equal(run.code, 1, `${args.join(' ')}: ${run.stdout}${run.stderr}`);
    assert.match(run.stderr, new RegExp(`no CIBA server answers at http://localhost:${deadPort} `), args.join(' '));
    assert.match(run.stderr, hint, args.join(' '));
    assert.doesNotMatch(run.stdout, /No pending requests|starting the local stack/, args.join(' '));
  }
});

test("phone at PORT decides the running server's requests (ISSUER wins over PORT); approve/deny <id>", async () => {
  const denied = await pendingRequest('DENY-ME');
  const run = await demo(['phone', '--deny'], { PORT: String(port) });
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /DENY-ME/);
  assert.match(run.stdout, /→ denied \(HTTP 204\)/);
  assert.ok(!(await pendingIds()).includes(denied), 'decided on the server');

  const approved = await pendingRequest('APPROVE-ME');
  const viaIssuer = await demo(['phone', '--approve'], { ISSUER: issuer, PORT: String(deadPort) });
  assert.equal(viaIssuer.code, 0, viaIssuer.stderr);
  assert.match(viaIssuer.stdout, /APPROVE-ME[\s\S]*→ approved \(HTTP 204\)/);
  assert.ok(!(await pendingIds()).includes(approved));

  const byId = await pendingRequest('BY-ID');
  const one = await demo(['approve', byId], { PORT: String(port) });
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, new RegExp(`approved request ${byId}`));
  const again = await demo(['deny', byId], { PORT: String(port) });
  assert.equal(again.code, 1, 'an already decided request cannot be denied');
  assert.match(again.stderr, /could not deny request/);
});

// ---- (c) no terminal: no decision unless told ----------------------------------------------------------------------
test('without a terminal the phone refuses to decide unless told (--yes/--approve/--deny)', async () => {
  const id = await pendingRequest('NO-TTY');
  const run = await demo(['phone'], { PORT: String(port) });
  assert.equal(run.code, 2, run.stdout);
  assert.match(run.stderr, /stdin is not a terminal.*--yes \(or --approve\).*--deny/);
  assert.doesNotMatch(run.stdout, /approved|denied/);
  assert.ok((await pendingIds()).includes(id), 'still pending');

  // The RP flow with this terminal as the phone refuses before it starts a request.
  const before = await pendingIds();
  const rp = await demo([], { PORT: String(port) });
  assert.equal(rp.code, 2, rp.stdout);
  assert.match(rp.stderr, /stdin is not a terminal/);
  assert.deepEqual(await pendingIds(), before, 'no new request');

  assert.equal((await phone.decide(id, 'deny')).status, 204, 'cleanup');
});

// ---- (b, d) printed commands work as written; no colour codes off a terminal -------------------------------------
test('the RP flow names the port in its phone hint; that command, as printed, approves on this server', async () => {
  const rp = launch(DEMO, ['--phone=other'], { PORT: String(port) });
  const hint = await rp.waitFor(/in another terminal run (.+)\n/);
  const command = /run (.+)\n/.exec(hint)![1]!;
  assert.equal(command, `PORT=${port} npm run demo -- phone`);
  await phone.waitFor(() => true); // the request is pending on the server
  // As printed, plus the decision a non-terminal needs.
  const phoneRun = await launch(`${command} --yes`, [], {}, true).exited;
  assert.equal(phoneRun.code, 0, phoneRun.stdout + phoneRun.stderr);
  assert.match(phoneRun.stdout, /→ approved \(HTTP 204\)/);

  const run = await rp.exited;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stderr, /tokens received/);
  assert.doesNotMatch(run.stdout, /No server at/);
  assert.ok(!(run.stdout + run.stderr).includes(ESC), 'no escape codes when stdout/stderr are pipes');
  assert.match(run.stdout, /← auth_req_id \(secret, not shown\) request id [\w-]{43}/);
  assert.match(run.stdout, /refresh_token: issued \(secret, not shown\)/);

  // With nothing pending, the phone's hint names the port too.
  const idle = await demo(['phone'], { PORT: String(port) });
  assert.equal(idle.code, 0, idle.stderr);
  assert.ok(idle.stdout.includes(`Start one with \`PORT=${port} npm run demo -- --phone=other\``), idle.stdout);
});

test('colours follow util.styleText: FORCE_COLOR=1 colours a pipe, NO_COLOR and plain pipes do not', async () => {
  for (const [env, coloured] of [
    [{ FORCE_COLOR: '1' }, true],
    [{ NO_COLOR: '1' }, false],
    [{}, false],
  ] as const) {
    const id = await pendingRequest(`COLOUR-${String(coloured)}-${Object.keys(env).join('')}`);
    const run = await demo(['phone', '--yes'], { PORT: String(port), ...env });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.includes(ESC), coloured, `${JSON.stringify(env)}: ${JSON.stringify(run.stdout)}`);
    assert.ok(!(await pendingIds()).includes(id));
  }
});

test('npm start on another port prints demo commands with PORT= (and CIBA_DEMO_RECEIVER_PORT if moved)', async () => {
  const data = mkdtempSync(join(tmpdir(), 'ciba-demo-cli-'));
  dirs.push(data);
  const env = { PORT: String(startPort), CIBA_DATA_DIR: data, CIBA_SEED: '' };
  Object.assign(env, { CIBA_DEMO_RECEIVER_PORT: String(movedReceiver) });
  const server = launch(START, [], env);
  await server.waitFor(/Ctrl\+C stops the server/, 60_000);
  const out = server.output().stdout;
  const poll = `PORT=${startPort} npm run demo`;
  assert.ok(out.includes(`run \`${poll}\` in another terminal`), out);
  const rpEnv = `PORT=${startPort} CIBA_DEMO_RECEIVER_PORT=${movedReceiver}`;
  for (const mode of ['ping', 'push']) assert.ok(out.includes(`\`${rpEnv} npm run demo -- --mode ${mode}\``), out);

  // The printed poll command, as printed (plus --yes: no terminal here), runs against this server.
  const run = await launch(`${poll} -- --yes`, [], {}, true).exited;
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stderr, /tokens received/);
  assert.doesNotMatch(run.stdout, /No server at/);
  server.child.kill('SIGTERM');
  await server.exited;
});

// ---- (e) secrets ---------------------------------------------------------------------------------------------------
test('push mode never prints the auth_req_id or tokens whole: the public request id, short prefixes', async () => {
  delivered.length = 0;
  const env = { PORT: String(port), CIBA_DEMO_RECEIVER_PORT: String(receiverPort) };
  const run = await demo(['--mode', 'push', '--yes'], env);
  assert.equal(run.code, 0, run.stdout + run.stderr);
  const push = delivered.find((d) => d.path === '/push');
  assert.ok(push, 'the server pushed the tokens');
  const { auth_req_id: authReqId, access_token: accessToken, refresh_token: refreshToken } = push.json;
  assert.equal(typeof authReqId, 'string');
  const printed = run.stdout + run.stderr;
  const secrets = [
    ['auth_req_id', authReqId],
    ['access_token', accessToken],
    ['refresh_token', refreshToken],
  ] as const;
  for (const [name, secret] of secrets) {
    if (typeof secret !== 'string') continue;
    assert.ok(!printed.includes(secret), `${name} printed whole`);
    assert.ok(!printed.includes(secret.slice(0, 16)), `${name}: more than a short prefix printed`);
  }
  assert.ok(printed.includes(`request id ${sha256b64u(String(authReqId))}`), 'the public request id stands for it');
  assert.match(run.stdout, /✔ urn:openid:params:jwt:claim:auth_req_id = the auth_req_id from bc-authorize/);
});

// ---- (f) a refused backchannel request -----------------------------------------------------------------------------
test('a refused backchannel request (429 slow_down): error, description and Retry-After shown, exit 1', async () => {
  // Use up bob's backchannel requests (the per-user limit), then let the demo ask for bob.
  let refused: Awaited<ReturnType<typeof postForm>> | undefined;
  for (let i = 0; i < 200 && !refused; i++) {
    const form = { scope: 'openid', login_hint: 'bob@example.com' };
    const res = await postForm(`${issuer}/bc-authorize`, form, { authorization: rpAuth });
    if (res.status === 429) refused = res;
    else assert.equal(res.status, 200, res.text);
  }
  assert.ok(refused, 'the per-user limit refuses at some point');
  assert.equal(refused.json.error, 'slow_down');
  assert.ok(refused.headers.get('retry-after'));

  const run = await demo(['--login-hint', 'bob@example.com', '--yes'], { PORT: String(port) });
  assert.equal(run.code, 1, run.stdout + run.stderr);
  assert.match(run.stderr, /refused the backchannel request \(HTTP 429\)/);
  assert.match(run.stderr, /error: +slow_down/);
  // The description as the server words it (its retry-after seconds may have moved on by one since).
  const description = String(refused.json.error_description).split(/\d/)[0]!;
  assert.ok(description.length > 10 && run.stderr.includes(`error_description: ${description}`), run.stderr);
  assert.match(run.stderr, /Retry-After: +\d+ s/);
});
