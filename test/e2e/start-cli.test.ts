// CONTRACT.md "Local stack": `npm start` (infra/local/start.ts) with PORT, CIBA_SEED and CIBA_DATA_DIR; ready when
// discovery answers 200; two servers side by side; the same seed loaded twice (a restart) is fine.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { basic, postForm, SECRET } from '../support/e2e.ts';

const START = new URL('../../infra/local/start.ts', import.meta.url).pathname;
const dirs: string[] = [];
const children = new Set<ChildProcess>();
after(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function seedFile(clientId: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'ciba-seed-'));
  dirs.push(dir);
  const file = join(dir, 'seed.json');
  writeFileSync(file, JSON.stringify({
    clients: [{ client_id: clientId, client_secret: SECRET, grant_types: ['urn:openid:params:grant-type:ciba'], scope: 'openid' }],
    users: [{ sub: 'carol', email: 'carol@example.com', user_code: '4711-0815' }],
  }));
  return file;
}

async function start(env: Record<string, string>): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [START], { env: { ...process.env, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const url = `http://localhost:${env.PORT}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`start.ts exited ${child.exitCode}: ${output}`);
    try {
      if ((await fetch(`${url}/.well-known/openid-configuration`)).status === 200) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`not ready after 30 s: ${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, url, output: () => output };
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  children.delete(child);
}

test('two servers with their own port, data dir and seed run side by side; a restart reloads the same seed', async () => {
  const [portA, portB] = [await freePort(), await freePort()];
  const [dataA, dataB] = [mkdtempSync(join(tmpdir(), 'ciba-a-')), mkdtempSync(join(tmpdir(), 'ciba-b-'))];
  dirs.push(dataA, dataB);
  const envA = { PORT: String(portA), CIBA_DATA_DIR: dataA, CIBA_SEED: seedFile('client-a') };
  const envB = { PORT: String(portB), CIBA_DATA_DIR: dataB, CIBA_SEED: seedFile('client-b') };
  let a = await start(envA);
  const b = await start(envB);

  const discoveryA = (await (await fetch(`${a.url}/.well-known/openid-configuration`)).json()) as { issuer: string };
  assert.equal(discoveryA.issuer, `http://localhost:${portA}`);
  const ask = (url: string, clientId: string) =>
    postForm(`${url}/bc-authorize`, { scope: 'openid', login_hint: 'carol@example.com' }, { authorization: basic(clientId, SECRET) });
  assert.equal((await ask(a.url, 'client-a')).status, 200);
  assert.equal((await ask(b.url, 'client-b')).status, 200);
  assert.equal((await ask(a.url, 'client-b')).status, 401, 'B\'s client is unknown to A');
  assert.equal((await ask(b.url, 'client-a')).status, 401, 'A\'s client is unknown to B');

  // Restart A on the same data dir with the same seed: loads again, keeps working, same signing keys.
  const jwksBefore = await (await fetch(`${a.url}/jwks`)).text();
  await stop(a.child);
  a = await start(envA);
  assert.equal((await ask(a.url, 'client-a')).status, 200);
  assert.equal(await (await fetch(`${a.url}/jwks`)).text(), jwksBefore, 'signing keys persist in the data dir');
  await stop(a.child);
  await stop(b.child);
});

test('without CIBA_SEED the demo seed is loaded and next steps are printed', async () => {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'ciba-demo-'));
  dirs.push(data);
  const s = await start({ PORT: String(port), CIBA_DATA_DIR: data, CIBA_SEED: '' });
  assert.match(s.output(), /npm run demo/);
  const res = await postForm(`${s.url}/bc-authorize`, { scope: 'openid', login_hint: 'alice@example.com' }, { authorization: basic('demo-rp', 'demo-rp-secret-0123456789abcdef') });
  assert.equal(res.status, 200);
  await stop(s.child);
});
