// `npm run demo` and the device app: `enrol` prints a one-time enrolment link and its QR code; an RP flow with
// --phone=other prints the request's link in the app (<issuer>/device/#request=<request id>) and its QR code. Off a
// terminal the QR codes are plain block characters, without escape codes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { DeviceClient } from '../../local/device-client.ts';
import { DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK, demoSeed } from '../../local/demo-seed.ts';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';

const DEMO = new URL('../../scripts/demo.ts', import.meta.url).pathname;
const ESC = '\u001b';
/** Four lines of QR blocks in a row: a QR code. */
const QR = /(?:^ *[█▀▄][█▀▄ ]+\n){4,}/m;

let stack: LocalStack;
let port: string;
before(async () => {
  stack = await startLocalStack({ port: 0, dataDir: null, quiet: true, seed: demoSeed(1), env: { LOG_LEVEL: 'warn' } });
  port = new URL(stack.url).port;
});
after(() => stack.close());

/** Runs the demo against the stack; `until` resolves with the output so far once it matches. */
function demo(args: string[]) {
  const { ISSUER: _issuer, FORCE_COLOR: _force, NO_COLOR: _no, ...env } = process.env;
  const child = spawn(process.execPath, [DEMO, ...args], {
    env: { ...env, PORT: port },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString('utf8');
    for (const w of [...waiters]) w();
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => resolve({ code, stdout, stderr })),
  );
  const until = (re: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(stdout);
        if (m) {
          waiters.delete(check);
          resolve(m);
        }
      };
      waiters.add(check);
      void exited.then(() => reject(new Error(`the demo exited before printing ${re}:\n${stdout}\n${stderr}`)));
      check();
    });
  return { until, exited };
}

test('`npm run demo -- enrol` prints a one-time enrolment link and its QR code', async () => {
  const run = await demo(['enrol']).exited;
  assert.equal(run.code, 0, run.stderr);
  const link = new RegExp(`^(${stack.issuer}/device/#enrol=([\\w-]{43}))$`, 'm').exec(run.stdout);
  assert.ok(link, run.stdout);
  assert.match(run.stdout, QR);
  assert.ok(!run.stdout.includes(ESC), 'no escape codes on a pipe');
  assert.match(run.stdout, /works once/);
});

test('an RP flow with --phone=other prints the request link (#request=<base64url(SHA-256(auth_req_id))>) as a QR code', async () => {
  const rp = demo(['--phone=other']);
  const [, requestId] = await rp.until(/request id ([\w-]{43})\n/);
  const [, linked] = await rp.until(new RegExp(`^${stack.issuer}/device/#request=([\\w-]{43})$`, 'm'));
  assert.equal(linked, requestId, 'the link names the request the RP started');
  const phone = new DeviceClient(stack.issuer, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK);
  assert.equal((await phone.decide(requestId!, 'approve')).status, 204);
  const run = await rp.exited;
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, QR);
  assert.match(run.stderr, /tokens received/);
});
