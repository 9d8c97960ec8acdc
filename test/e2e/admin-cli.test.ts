// The admin CLI (docs/admin.md) against a real `npm start` child on its own data dir and port: `npm run admin` finds
// it through CIBA_DATA_DIR (and checks PORT), issues enrolment codes a new device enrols with, lists and removes
// devices, disables and enables users; --json prints one JSON value; every change writes one audit line to stderr
// (never the code); errors are one line with exit status 1 (failure) or 2 (usage); no running stack is an error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceClient, enrolDevice, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { basic, CIBA_GRANT, postForm, SECRET } from '../support/e2e.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const START = join(ROOT, 'local/start.ts');
const ADMIN = join(ROOT, 'scripts/admin.ts');

let dir: string;
let dataDir: string;
let port: number;
let server: ChildProcess;
let issuer: string;
const aliceKey = generateDeviceKey();
let alice: DeviceClient;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = s.address() as { port: number };
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ciba-admin-'));
  dataDir = join(dir, 'data');
  port = await freePort();
  issuer = `http://localhost:${port}`;
  const seed = join(dir, 'seed.json');
  writeFileSync(
    seed,
    JSON.stringify({
      clients: [{ client_id: 'rp', client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid' }],
      users: [
        {
          sub: 'alice',
          email: 'alice@example.com',
          devices: [{ device_id: 'alice-phone', name: 'Phone', jwk: publicDeviceJwk(aliceKey) }],
        },
      ],
    }),
  );
  server = spawn(process.execPath, [START, '--quiet'], {
    env: { ...process.env, PORT: String(port), CIBA_DATA_DIR: dataDir, CIBA_SEED: seed, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  server.stdout!.on('data', (d) => (output += d));
  server.stderr!.on('data', (d) => (output += d));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`npm start exited ${server.exitCode}: ${output}`);
    try {
      if ((await fetch(`${issuer}/.well-known/openid-configuration`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`not ready after 30 s: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  alice = new DeviceClient(issuer, 'alice-phone', aliceKey);
});
after(() => {
  if (server && server.exitCode === null) server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

type Run = { status: number | null; stdout: string; stderr: string };

/** `npm run --silent admin -- …` (npm's own banner would precede the output) with the server's environment. */
function npmAdmin(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync('npm', ['run', '--silent', 'admin', '--', ...args], {
    cwd: ROOT,
    env: { ...process.env, CIBA_DATA_DIR: dataDir, PORT: String(port), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same command without npm (faster), as `npm run admin` runs it. */
function admin(args: string[], env: Record<string, string> = {}): Run {
  const r = spawnSync(process.execPath, [ADMIN, ...args], {
    env: { ...process.env, CIBA_DATA_DIR: dataDir, PORT: String(port), ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The audit lines of a run's stderr. */
const audits = (r: Run) =>
  r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.audit === 'ciba-admin');

const ask = (hint: string) =>
  postForm(`${issuer}/bc-authorize`, { scope: 'openid', login_hint: hint }, { authorization: basic('rp', SECRET) });

test('devices code --json: one JSON value; a new device enrols with the code; the change is audited without the code', async () => {
  const r = npmAdmin(['devices', 'code', 'alice', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const code = JSON.parse(r.stdout) as { code: string; expires_at: number; enrol_url: string };
  assert.deepEqual(Object.keys(code).sort(), ['code', 'enrol_url', 'expires_at']);
  assert.match(code.code, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(code.enrol_url, `${issuer}/device/#enrol=${code.code}`);
  assert.ok(Math.abs(code.expires_at - (Math.floor(Date.now() / 1000) + 600)) <= 5);

  const [line, ...more] = audits(r);
  assert.equal(more.length, 0, 'one audit line');
  assert.equal(line?.action, 'devices.code');
  assert.equal(line?.sub, 'alice');
  assert.equal(typeof line?.who, 'string');
  assert.ok(!Number.isNaN(Date.parse(String(line?.time))));
  assert.ok(!r.stderr.includes(code.code), 'the code is not in the audit line');

  const enrolled = await enrolDevice(issuer, code.code, { name: 'Laptop' });
  assert.equal(enrolled.status, 201, enrolled.text);
  assert.equal((await enrolled.device!.devices()).status, 200);
  const again = await enrolDevice(issuer, code.code);
  assert.equal(again.json.error, 'invalid_grant', 'the admin code is single use too');

  const human = admin(['devices', 'code', 'alice']);
  assert.equal(human.status, 0);
  assert.match(human.stdout, /^code {8}[A-Za-z0-9_-]{43}\nexpires_at {2}\d+ \(.+Z\)\nenrol_url {3}http/);
});

test('devices list and remove; a removed device gets 401', async () => {
  const code = JSON.parse(admin(['devices', 'code', 'alice', '--json']).stdout) as { code: string };
  const tablet = (await enrolDevice(issuer, code.code, { name: 'Tablet' })).device!;

  const listed = admin(['devices', 'list', 'alice', '--json']);
  assert.equal(listed.status, 0, listed.stderr);
  const { sub, devices } = JSON.parse(listed.stdout) as {
    sub: string;
    devices: { device_id: string; name?: string; created_at: number; channel: string }[];
  };
  assert.equal(sub, 'alice');
  assert.deepEqual(
    devices.map((d) => [d.device_id, d.name, d.channel]).find(([id]) => id === tablet.deviceId),
    [tablet.deviceId, 'Tablet', 'none'],
  );
  assert.equal(devices[0]?.device_id, 'alice-phone', 'oldest first');
  assert.equal(audits(listed).length, 0, 'reading is not audited');

  const table = admin(['devices', 'list', 'alice']);
  const [header, ...rows] = table.stdout.trimEnd().split('\n');
  assert.match(header!, /^DEVICE_ID +NAME +CREATED +CHANNEL$/);
  assert.equal(rows.length, devices.length);
  const column = header!.indexOf('NAME');
  for (const row of rows) assert.ok(row[column - 1] === ' ' && row[column - 2] === ' ', `aligned: ${row}`);
  assert.ok(rows.some((row) => row.startsWith(tablet.deviceId) && row.includes('Tablet')));

  const removed = admin(['devices', 'remove', tablet.deviceId, '--json']);
  assert.equal(removed.status, 0, removed.stderr);
  assert.deepEqual(JSON.parse(removed.stdout), { device_id: tablet.deviceId, sub: 'alice' });
  assert.equal(audits(removed)[0]?.action, 'devices.remove');
  assert.equal((await tablet.devices()).status, 401);
  assert.equal((await alice.devices()).status, 200);

  const gone = admin(['devices', 'remove', tablet.deviceId]);
  assert.equal(gone.status, 1);
  assert.equal(audits(gone)[0]?.outcome, 'not_found');
  assert.equal(audits(removed)[0]?.outcome, 'done');
  assert.equal(
    gone.stderr
      .split('\n')
      .filter((l) => !l.startsWith('{'))
      .join('\n'),
    `npm run admin: no device "${tablet.deviceId}"\n`,
  );
});

test('users disable / enable', async () => {
  const disabled = npmAdmin(['users', 'disable', 'alice']);
  assert.equal(disabled.status, 0, disabled.stderr);
  assert.equal(disabled.stdout, 'user alice disabled\n');
  assert.equal(audits(disabled)[0]?.action, 'users.disable');
  const refused = await ask('alice@example.com');
  assert.equal(refused.status, 403);
  assert.equal(refused.json.error, 'access_denied');
  assert.equal((await alice.devices()).status, 401);
  const code = admin(['devices', 'code', 'alice']);
  assert.equal(code.status, 1, 'no enrolment code for a disabled user');
  assert.match(code.stderr, /user "alice" is disabled/);

  const enabled = admin(['users', 'enable', 'alice', '--json']);
  assert.equal(enabled.status, 0, enabled.stderr);
  assert.deepEqual(JSON.parse(enabled.stdout), { sub: 'alice', disabled: false });
  assert.equal(audits(enabled)[0]?.action, 'users.enable');
  assert.equal((await ask('alice@example.com')).status, 200);
  assert.equal((await alice.devices()).status, 200);
});

test('errors: one line, exit 1 for failures and 2 for usage; --help', () => {
  const oneLine = (r: Run) => r.stderr.split('\n').filter((l) => l && !l.startsWith('{'));
  const noUser = admin(['devices', 'code', 'nobody']);
  assert.equal(noUser.status, 1);
  assert.deepEqual(oneLine(noUser), ['npm run admin: no user "nobody"']);
  assert.equal(admin(['users', 'disable', 'nobody']).status, 1);

  for (const args of [
    [],
    ['devices'],
    ['devices', 'nope'],
    ['things', 'list'],
    ['devices', 'code'],
    ['devices', 'code', 'a', 'b'],
    ['devices', 'list', 'x', '--bogus'],
  ]) {
    const r = admin(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^npm run admin: /, args.join(' '));
    assert.equal(r.stdout, '');
  }

  // One request or device id in 64 starts with "-": it is an argument, not an unknown option (found flaky in CI).
  const dashId = `-${'A'.repeat(42)}`;
  for (const args of [
    ['requests', 'cancel', dashId],
    ['requests', 'cancel', '--json', dashId],
    ['devices', 'remove', dashId, '--json'],
    ['devices', 'remove', '--', dashId],
  ]) {
    const r = admin(args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(oneLine(r)[0]?.includes(dashId), r.stderr);
  }

  const help = admin(['--help']);
  assert.equal(help.status, 0);
  for (const c of [
    'devices code <sub>',
    'devices list <sub>',
    'devices remove <device_id>',
    'users disable <sub>',
    'users enable <sub>',
  ])
    assert.ok(help.stdout.includes(c), c);
  const codeHelp = admin(['devices', 'code', '--help']);
  assert.equal(codeHelp.status, 0);
  assert.match(codeHelp.stdout, /^usage: npm run admin -- devices code <sub> \[--json\]/);
  assert.match(codeHelp.stdout, /single use/i);
});

test('it finds the stack by CIBA_DATA_DIR and PORT; none running there is an error', async () => {
  const elsewhere = admin(['devices', 'list', 'alice'], { CIBA_DATA_DIR: join(dir, 'no-stack') });
  assert.equal(elsewhere.status, 1);
  assert.match(elsewhere.stderr, /^npm run admin: no local stack is running on the data dir .*no-stack/);
  const otherPort = admin(['devices', 'list', 'alice'], { PORT: String(port + 1) });
  assert.equal(otherPort.status, 1);
  assert.match(otherPort.stderr, new RegExp(`listens on port ${port}, not PORT=${port + 1}`));
  assert.equal(admin(['devices', 'list', 'alice', '--data-dir', dataDir], { CIBA_DATA_DIR: '' }).status, 0);

  // A clean stop removes the state file: the CLI then says no stack runs.
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  await exited;
  assert.equal(existsSync(join(dataDir, 'local-stack.json')), false);
  const stopped = admin(['users', 'disable', 'alice']);
  assert.equal(stopped.status, 1);
  assert.match(stopped.stderr, /no local stack is running/);
});
