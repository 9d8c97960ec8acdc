// The local stack (docs/configuration.md): `npm start` (local/start.ts) with PORT, CIBA_SEED and CIBA_DATA_DIR; ready when
// discovery answers 200; two servers side by side; the same seed loaded twice (a restart) is fine; one server per
// data dir (a second one says so and exits, a stale lock is taken over); without a seed the
// demo seed (poll, ping and push clients; ping/push notify the demo receiver port) and the next steps; --mtls-port
// with the local CA in the data dir and `npm run mtls-cert` (scripts/mtls-cert.ts); KEYS_SOURCE=sealed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { basic, postForm, SECRET } from '../support/e2e.ts';
import { NotificationReceiver } from '../support/receiver.ts';
import { DeviceClient } from '../../local/device-client.ts';
import {
  DEMO_CLIENT,
  DEMO_DEVICE_ID,
  DEMO_DEVICE_PRIVATE_JWK,
  DEMO_PING_CLIENT,
  DEMO_PUSH_CLIENT,
  demoReceiverPort,
  demoSeed,
} from '../../local/demo-seed.ts';
import { createCa, createClientCert, readIssued, type IssuedCertificate } from '../../local/certs.ts';

const START = new URL('../../local/start.ts', import.meta.url).pathname;
const MTLS_CERT = new URL('../../scripts/mtls-cert.ts', import.meta.url).pathname;
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
  writeFileSync(
    file,
    JSON.stringify({
      clients: [
        {
          client_id: clientId,
          client_secret: SECRET,
          grant_types: ['urn:openid:params:grant-type:ciba'],
          scope: 'openid',
        },
      ],
      users: [{ sub: 'carol', email: 'carol@example.com', user_code: '4711-0815' }],
    }),
  );
  return file;
}

async function start(
  env: Record<string, string>,
  args: string[] = [],
): Promise<{ child: ChildProcess; url: string; output: () => string }> {
  const child = spawn(process.execPath, [START, ...args], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
    postForm(
      `${url}/bc-authorize`,
      { scope: 'openid', login_hint: 'carol@example.com' },
      { authorization: basic(clientId, SECRET) },
    );
  assert.equal((await ask(a.url, 'client-a')).status, 200);
  assert.equal((await ask(b.url, 'client-b')).status, 200);
  assert.equal((await ask(a.url, 'client-b')).status, 401, "B's client is unknown to A");
  assert.equal((await ask(b.url, 'client-a')).status, 401, "A's client is unknown to B");

  // Restart A on the same data dir with the same seed: loads again, keeps working, same signing keys.
  const jwksBefore = await (await fetch(`${a.url}/jwks`)).text();
  await stop(a.child);
  a = await start(envA);
  assert.equal((await ask(a.url, 'client-a')).status, 200);
  assert.equal(await (await fetch(`${a.url}/jwks`)).text(), jwksBefore, 'signing keys persist in the data dir');
  await stop(a.child);
  await stop(b.child);
});

test('one server per data dir: a second one says so in one line and exits 1; a stale lock is taken over', async () => {
  const [port, otherPort] = [await freePort(), await freePort()];
  const data = mkdtempSync(join(tmpdir(), 'ciba-lock-'));
  dirs.push(data);
  const env = { PORT: String(port), CIBA_DATA_DIR: data, CIBA_SEED: seedFile('client-lock') };
  const first = await start(env);
  const lockFile = join(data, 'local-stack.lock');
  assert.equal(readFileSync(lockFile, 'utf8').trim(), String(first.child.pid));

  const second = spawnSync(process.execPath, [START], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, PORT: String(otherPort) },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(second.status, 1);
  assert.equal(
    `${second.stdout}${second.stderr}`,
    `npm start: the data dir ${data} is in use by another local stack (pid ${first.child.pid}): stop it first, ` +
      'or use another --data-dir / CIBA_DATA_DIR\n',
  );
  const discovery = '/.well-known/openid-configuration';
  await assert.rejects(fetch(`http://localhost:${otherPort}${discovery}`), 'the second server started nothing');
  assert.equal((await fetch(`${first.url}${discovery}`)).status, 200, 'the first one still serves');
  await stop(first.child);
  assert.equal(existsSync(lockFile), false, 'the lock is removed on a clean stop');

  // A lock left behind by a process that is gone (e.g. killed) is taken over.
  const gone = spawnSync(process.execPath, ['-e', '']).pid;
  writeFileSync(lockFile, `${gone}\n`);
  const again = await start(env);
  assert.equal(readFileSync(lockFile, 'utf8').trim(), String(again.child.pid));
  await stop(again.child);
});

test('KEYS_SOURCE=sealed: no key file, the key pairs are made sealed by the first signer; kms is refused in one line', async () => {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'ciba-sealed-'));
  dirs.push(data);
  const env = { PORT: String(port), CIBA_DATA_DIR: data, CIBA_SEED: seedFile('client-sealed') };
  const sealed = await start({ ...env, KEYS_SOURCE: 'sealed' });
  // Sealed key pairs are made by the first function that signs (test/e2e/sealed-keys.test.ts): none yet. Key files
  // would have been made for this JWKS (two keys, and <data dir>/signing-keys.json).
  const jwks = (await (await fetch(`${sealed.url}/jwks`)).json()) as { keys: unknown[] };
  assert.deepEqual(jwks.keys, []);
  const bc = await postForm(
    `${sealed.url}/bc-authorize`,
    { scope: 'openid', login_hint: 'carol' },
    { authorization: basic('client-sealed', SECRET) },
  );
  assert.equal(bc.status, 200, 'the stack serves requests');
  assert.equal(existsSync(join(data, 'signing-keys.json')), false, 'no signing key file: the keys are sealed');
  await stop(sealed.child);

  const kms = spawnSync(process.execPath, [START], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, KEYS_SOURCE: 'kms' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  assert.equal(kms.status, 1);
  assert.match(kms.stderr, /^npm start: KEYS_SOURCE=kms is not available locally: use file .* or sealed/);
});

test('without CIBA_SEED the demo seed is loaded and next steps are printed', async () => {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'ciba-demo-'));
  dirs.push(data);
  // The demo ping/push clients notify the demo receiver; here a test receiver on CIBA_DEMO_RECEIVER_PORT plays it.
  const receiver = await NotificationReceiver.start();
  try {
    const s = await start({
      PORT: String(port),
      CIBA_DATA_DIR: data,
      CIBA_SEED: '',
      CIBA_DEMO_RECEIVER_PORT: String(receiver.port),
    });
    const out = s.output();
    assert.match(out, /npm run demo/);
    assert.match(out, /--mode ping/);
    assert.match(out, /--mode push/);
    for (const c of [DEMO_CLIENT, DEMO_PING_CLIENT, DEMO_PUSH_CLIENT])
      assert.ok(out.includes(`${c.client_id} / ${c.client_secret}`), `${c.client_id} printed`);
    assert.ok(
      out.includes(receiver.url('/ping')) && out.includes(receiver.url('/push')),
      'the receiver URLs are printed',
    );

    const discovery = (await (await fetch(`${s.url}/.well-known/openid-configuration`)).json()) as {
      backchannel_token_delivery_modes_supported?: string[];
    };
    assert.deepEqual([...(discovery.backchannel_token_delivery_modes_supported ?? [])].sort(), [
      'ping',
      'poll',
      'push',
    ]);

    const bc = (client: { client_id: string; client_secret: string }, extra: Record<string, string> = {}) =>
      postForm(
        `${s.url}/bc-authorize`,
        { scope: 'openid', login_hint: 'alice@example.com', ...extra },
        { authorization: basic(client.client_id, client.client_secret) },
      );
    const poll = await bc(DEMO_CLIENT);
    assert.equal(poll.status, 200);
    assert.equal(typeof poll.json.interval, 'number', 'demo-rp polls');

    // demo-ping and demo-push are registered in their modes: both need a client_notification_token (§7.1).
    for (const client of [DEMO_PING_CLIENT, DEMO_PUSH_CLIENT]) {
      const missing = await bc(client);
      assert.equal(missing.status, 400, `${client.client_id} without client_notification_token`);
      assert.match(String(missing.json.error_description), /client_notification_token/);
    }
    const push = await bc(DEMO_PUSH_CLIENT, { client_notification_token: 'push-token-0123456789' });
    assert.equal(push.status, 200);
    assert.equal(push.json.interval, undefined, '§7.3: a push client gets no interval');

    // demo-ping notifies the receiver port: approve on the demo phone, the ping arrives with the bearer token.
    const bindingMessage = `START-${Math.random().toString(36).slice(2, 8)}`;
    const ping = await bc(DEMO_PING_CLIENT, {
      client_notification_token: 'ping-token-0123456789',
      binding_message: bindingMessage,
    });
    assert.equal(ping.status, 200);
    const phone = new DeviceClient(s.url, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK);
    const request = await phone.waitFor((r) => r.binding_message === bindingMessage);
    assert.equal(request.client_name, 'Demo Kiosk (ping)');
    assert.equal((await phone.decide(request.id, 'approve')).status, 204);
    const [got] = await receiver.waitFor('/ping', 1, 20_000);
    assert.equal(got!.headers.authorization, 'Bearer ping-token-0123456789');
    assert.deepEqual(got!.json, { auth_req_id: ping.json.auth_req_id });
    await stop(s.child);
  } finally {
    await receiver.down();
  }
});

test('the demo receiver port: CIBA_DEMO_RECEIVER_PORT, else the server port + 1', () => {
  assert.equal(demoReceiverPort(8080, {}), 8081);
  assert.equal(demoReceiverPort(18080, { CIBA_DEMO_RECEIVER_PORT: '9999' }), 9999);
  assert.throws(() => demoReceiverPort(8080, { CIBA_DEMO_RECEIVER_PORT: 'x' }), /CIBA_DEMO_RECEIVER_PORT/);
  const seed = demoSeed(8081);
  const endpoints = Object.fromEntries(
    seed.clients.map((c) => [
      c.client_id,
      (c as { backchannel_client_notification_endpoint?: string }).backchannel_client_notification_endpoint,
    ]),
  );
  assert.deepEqual(endpoints, {
    'demo-rp': undefined,
    'demo-ping': 'http://127.0.0.1:8081/ping',
    'demo-push': 'http://127.0.0.1:8081/push',
  });
});

/** One HTTPS request on a fresh connection, presenting `cert` as the TLS client certificate. */
function httpsGet(url: string, ca: string, cert: IssuedCertificate): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent: false, ca, key: cert.keyPem, cert: cert.certPem }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('--mtls-port: a local CA in the data dir, mtls_endpoint_aliases, client certificates from `npm run mtls-cert`', async () => {
  const port = await freePort();
  const data = mkdtempSync(join(tmpdir(), 'ciba-mtls-'));
  dirs.push(data);
  const seed = join(data, 'seed.json');
  writeFileSync(
    seed,
    JSON.stringify({
      clients: [
        {
          client_id: 'e2e-rp',
          token_endpoint_auth_method: 'tls_client_auth',
          tls_client_auth_subject_dn: 'CN=e2e-rp',
          scope: 'openid',
        },
      ],
      users: [{ sub: 'carol', email: 'carol@example.com' }],
    }),
  );
  const s = await start({ PORT: String(port), CIBA_DATA_DIR: data, CIBA_SEED: seed }, ['--mtls-port', '0']);
  let mtlsUrl: string | undefined;
  for (
    const deadline = Date.now() + 5_000;
    !mtlsUrl && Date.now() < deadline;
    await new Promise((r) => setTimeout(r, 50))
  ) {
    mtlsUrl = /^ {2}mtls {7}(https:\/\/localhost:\d+) /m.exec(s.output())?.[1];
  }
  assert.ok(mtlsUrl, `the mTLS URL is printed: ${s.output()}`);
  const mtlsPort = new URL(mtlsUrl).port;
  assert.notEqual(mtlsPort, String(port));
  const caFile = join(data, 'mtls', 'ca.pem');
  assert.ok(s.output().includes(caFile), 'the CA file is printed');
  assert.match(s.output(), /npm run mtls-cert -- --data-dir \S+ --cn my-rp/);
  for (const key of ['ca-key.pem', 'server-key.pem'])
    assert.equal(statSync(join(data, 'mtls', key)).mode & 0o077, 0, `${key} is private`);

  // Discovery over plain HTTP points its RFC 8705 §5 aliases at the mTLS listener.
  const discovery = (await (await fetch(`${s.url}/.well-known/openid-configuration`)).json()) as {
    mtls_endpoint_aliases?: Record<string, string>;
  };
  assert.equal(discovery.mtls_endpoint_aliases?.token_endpoint, `${mtlsUrl}/token`);
  assert.equal(discovery.mtls_endpoint_aliases?.backchannel_authentication_endpoint, `${mtlsUrl}/bc-authorize`);

  // A client certificate from the data dir's CA, by the script; it prints the client to register and a curl command.
  const script = spawnSync(
    process.execPath,
    [MTLS_CERT, '--data-dir', data, '--cn', 'e2e-rp', '--mtls-port', mtlsPort],
    { encoding: 'utf8' },
  );
  assert.equal(script.status, 0, script.stderr);
  const certFile = join(data, 'mtls', 'clients', 'e2e-rp.pem');
  const keyFile = join(data, 'mtls', 'clients', 'e2e-rp-key.pem');
  assert.ok(script.stdout.includes('"token_endpoint_auth_method": "tls_client_auth"'), script.stdout);
  assert.ok(script.stdout.includes('"tls_client_auth_subject_dn": "CN=e2e-rp"'), script.stdout);
  assert.ok(script.stdout.includes(`curl --cert ${certFile} --key ${keyFile} --cacert ${caFile}`), script.stdout);
  assert.ok(
    script.stdout.includes(`${mtlsUrl}/bc-authorize -d client_id=e2e-rp -d scope=openid -d login_hint=alice`),
    script.stdout,
  );
  assert.equal(statSync(keyFile).mode & 0o077, 0, 'the client key is private');
  const client = readIssued(certFile, keyFile);
  assert.ok(client, 'the certificate and key were written');

  const ca = readFileSync(caFile, 'utf8');
  const ok = await httpsGet(`${mtlsUrl}/.well-known/openid-configuration`, ca, client);
  assert.equal(ok.status, 200);
  assert.equal((JSON.parse(ok.body) as { issuer: string }).issuer, s.url);
  // The same subject from another CA is refused before any handler, like API Gateway with a truststore.
  const stranger = createClientCert(createCa({ subject: [['CN', 'Other CA']] }), { subject: [['CN', 'e2e-rp']] });
  const refused = await httpsGet(`${mtlsUrl}/.well-known/openid-configuration`, ca, stranger);
  assert.equal(refused.status, 403);
  assert.deepEqual(JSON.parse(refused.body), { message: 'Forbidden' });

  // And the registered client authenticates by its certificate alone (tls_client_auth, RFC 8705 §2.1).
  const bc = await new Promise<number>((resolve, reject) => {
    const req = httpsRequest(
      `${mtlsUrl}/bc-authorize`,
      {
        method: 'POST',
        agent: false,
        ca,
        key: client.keyPem,
        cert: client.certPem,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(new URLSearchParams({ client_id: 'e2e-rp', scope: 'openid', login_hint: 'carol' }).toString());
  });
  assert.equal(bc, 200);
  await stop(s.child);
});
