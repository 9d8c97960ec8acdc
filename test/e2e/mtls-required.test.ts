// Clients that need a TLS client certificate (RFC 8705: tls_client_auth, certificate-bound access tokens, the
// fapi-ciba profile) on a server without an mTLS endpoint are refused early, never after the user has approved:
//  - `npm start` (local/start.ts) with such a client in the seed exits non-zero and says why; the same seed
//    with an mTLS port (--mtls-port, which sets CIBA_MTLS_BASE_URL) loads;
//  - startLocalStack rejects with the reason, nothing served;
//  - a client row stored earlier (before this check existed, or by a server that had mTLS) is refused at the
//    backchannel and token endpoints with 401 invalid_client and the reason.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { basic, CIBA_GRANT, postForm, SECRET, startWorld, type World } from '../support/e2e.ts';
import { hashClientSecret } from '../../functions/core/crypto.ts';
import type { Client } from '../../functions/core/model.ts';

const START = new URL('../../local/start.ts', import.meta.url).pathname;
const dirs: string[] = [];
const children = new Set<ChildProcess>();
let w: World | undefined;
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await w?.close();
});

const { publicKey } = await generateKeyPair('PS256', { extractable: true });
const jwk = { ...(await exportJWK(publicKey)), kid: 'fapi-1', alg: 'PS256', use: 'sig' };
const base = { grant_types: [CIBA_GRANT], scope: 'openid', backchannel_token_delivery_mode: 'poll' };
/** A FAPI-CIBA client authenticating with private_key_jwt: nothing in it mentions TLS, yet its tokens need it. */
const FAPI_CLIENT = {
  ...base,
  client_id: 'fapi-rp',
  token_endpoint_auth_method: 'private_key_jwt',
  jwks: { keys: [jwk] },
  security_profile: 'fapi-ciba',
  backchannel_authentication_request_signing_alg: 'PS256',
  id_token_signed_response_alg: 'PS256',
};
const SEED = {
  clients: [{ ...base, client_id: 'plain-rp', client_secret: SECRET }, FAPI_CLIENT],
  users: [{ sub: 'carol', email: 'carol@example.com' }],
};
const WHY = "needs an mTLS endpoint (CIBA_MTLS_BASE_URL / the construct's mtls prop); this server has none";
const FAPI_REASON = `client fapi-rp: security_profile fapi-ciba (requires certificate-bound access tokens, RFC 8705) ${WHY}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** `npm start` with SEED in a fresh data dir: resolves when it exits (code) or when discovery answers (ready). */
async function npmStart(args: string[]): Promise<{ code: number | null; ready: boolean; output: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ciba-mtls-required-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'seed.json'), JSON.stringify(SEED));
  const port = await freePort();
  const env = {
    ...process.env,
    LOG_LEVEL: 'warn',
    PORT: String(port),
    CIBA_DATA_DIR: join(dir, 'data'),
    CIBA_SEED: join(dir, 'seed.json'),
  };
  const child = spawn(process.execPath, [START, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
    if (child.exitCode !== null) return { code: child.exitCode, ready: false, output };
    const res = await fetch(`http://localhost:${port}/.well-known/openid-configuration`).catch(() => undefined);
    if (res?.status === 200) {
      child.kill('SIGTERM');
      await exited;
      children.delete(child);
      return { code: null, ready: true, output };
    }
  }
  throw new Error(`npm start neither exited nor became ready in 30 s: ${output}`);
}

test('npm start: a seeded fapi-ciba client, no mTLS port → exits non-zero, naming client, field, reason', async () => {
  const run = await npmStart([]);
  assert.equal(run.ready, false, run.output);
  assert.notEqual(run.code, 0, run.output);
  assert.ok(run.output.includes(`invalid seed in `), run.output);
  assert.ok(run.output.includes(FAPI_REASON), run.output);
});

test('npm start: the same seed with an mTLS port (--mtls-port) loads', async () => {
  const run = await npmStart(['--mtls-port', '0']);
  assert.equal(run.ready, true, run.output);
  assert.match(run.output, /\(2 clients, 1 users, 0 devices\)/);
});

test('startLocalStack rejects a seed with a client that needs mTLS, when it has no mTLS listener', async () => {
  for (const client of [
    FAPI_CLIENT,
    { ...base, client_id: 'bound-rp', client_secret: SECRET, tls_client_certificate_bound_access_tokens: true },
    { ...base, client_id: 'tls-rp', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=x' },
  ]) {
    const outcome = await startWorld({}, [client]).then(
      (world) => world,
      (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
    );
    if (!(outcome instanceof Error)) {
      await outcome.close();
      assert.fail(`the stack started with ${client.client_id} in its seed`);
    }
    assert.equal(outcome.name, 'SeedError');
    assert.match(outcome.message, new RegExp(`^client ${client.client_id}: `));
    assert.ok(outcome.message.endsWith(WHY), outcome.message);
  }
});

test('a stored client that needs mTLS, on a server without it → 401 invalid_client at both endpoints', async () => {
  // The same settings as the refused starts above (one stack configuration per process), with a seed that loads.
  w = await startWorld({}, []);
  // A row from an earlier load (e.g. before this check existed): written straight to the table, bypassing the seed.
  const { putClient } = await import('../../functions/adapters/store.ts');
  const stored: Client = {
    client_id: 'bound-rp',
    token_endpoint_auth_method: 'client_secret_basic',
    client_secret_hash: hashClientSecret(SECRET),
    tls_client_certificate_bound_access_tokens: true,
    grant_types: [CIBA_GRANT],
    scope: 'openid',
    backchannel_token_delivery_mode: 'poll',
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
  };
  await putClient(stored);
  const reason =
    'client bound-rp: tls_client_certificate_bound_access_tokens ' +
    `(binds access tokens to a TLS client certificate, RFC 8705) ${WHY}`;
  const headers = { authorization: basic('bound-rp', SECRET) };
  const started = w.stack.stepFunctions.executions().length;
  const bc = await postForm(`${w.issuer}/bc-authorize`, { scope: 'openid', login_hint: 'alice' }, headers);
  assert.equal(bc.status, 401, bc.text);
  assert.deepEqual(bc.json, { error: 'invalid_client', error_description: reason });
  assert.equal(w.stack.stepFunctions.executions().length, started, 'no request was started');
  const token = await postForm(`${w.issuer}/token`, { grant_type: CIBA_GRANT, auth_req_id: 'x'.repeat(43) }, headers);
  assert.equal(token.status, 401, token.text);
  assert.deepEqual(token.json, { error: 'invalid_client', error_description: reason });
  // Basic credentials that fail get the Basic challenge (RFC 6749 §5.2), as for any other invalid_client.
  assert.match(String(bc.headers.get('www-authenticate')), /^Basic /);
  // A client without such needs on the same server is unaffected: authenticated, on to the grant.
  const probe = { grant_type: CIBA_GRANT, auth_req_id: 'x'.repeat(43) };
  const ok = await postForm(`${w.issuer}/token`, probe, { authorization: basic('rp', SECRET) });
  assert.equal(ok.status, 400, ok.text);
  assert.equal(ok.json.error, 'invalid_grant');
});
