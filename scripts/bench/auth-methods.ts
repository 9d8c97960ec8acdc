// `npm run bench` section 7: what each client authentication method costs at POST /bc-authorize. One server child
// (the local stack with in-memory DynamoDB and executions, plus its HTTPS listener asking for client certificates)
// serves one client per method; a closed loop of `concurrency` workers sends real backchannel requests (each creates a
// request row and starts a workflow) with credentials built before the measured window.
//
// This file is also the server child's entry point: `node scripts/bench/auth-methods.ts <config.json>` starts
// startLocalStack with the `https` option (which `local/start.ts` does not offer) and prints one READY line.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import {
  createCa,
  createClientCert,
  createSelfSignedCert,
  createServerCert,
  type IssuedCertificate,
} from '../../test/support/certs.ts';
import { encodeBasic } from '../../functions/core/client-auth.ts';
import { freePort, processCpuSeconds, stopChild, trackChild } from './child.ts';
import { BENCH_SERVER_ENV, benchSeed, CIBA_GRANT, type BenchUser } from './flow.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const SECRET = 'bench-auth-secret-0123456789abcdefghijklmnop'; // ≥ 32 bytes: also the HS256 key of client_secret_jwt

export type AuthMethodRow = {
  id: string;
  label: string;
  transport: 'http' | 'https' | 'mtls';
  requests: number;
  failed: number;
  errors: string[];
  wallS: number;
  requestsPerS: number;
  latencies: number[];
  serverCpuS: number;
  serverCpuMsPerRequest: number;
  loadgenCpuMsPerRequest: number;
  /** Client-side ms to build one request's credentials (assertion, request object), outside the measured window. */
  buildMsPerRequest: number;
};

export type AuthMethodsResult = {
  concurrency: number;
  requestsPerMethod: number;
  rounds: number;
  /** Unmeasured backchannel requests per method before the rounds (server warm-up). */
  warmupPerMethod: number;
  /** Server CPU ms per wall second with no load, after the warm-up (pending workflows idle). */
  idleCpuMsPerS: number;
  /** Certificates, keys, server child start and warm-up, seconds. */
  setupS: number;
  rows: AuthMethodRow[];
};

type Creds = { headers: Record<string, string>; params: Record<string, string> };

type Method = {
  id: string;
  label: string;
  transport: AuthMethodRow['transport'];
  /** The TLS client certificate the connection presents (mtls transport). */
  cert?: IssuedCertificate;
  /** The credentials (and, for signed requests, the whole request) for one request as `user`. */
  build(user: BenchUser, n: number): Promise<Creds>;
};

type Signer = { key: CryptoKey | Uint8Array; alg: string; kid?: string };

async function keyPair(alg: 'ES256' | 'PS256', kid: string): Promise<{ signer: Signer; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { signer: { key: privateKey, alg, kid }, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** Clients, certificates and how each method's credentials are built. */
async function setup(issuer: () => string) {
  const ca = createCa({
    subject: [
      ['O', 'CIBA bench'],
      ['CN', 'Bench CA'],
    ],
  });
  const serverCert = createServerCert(ca);
  const tlsCert = createClientCert(ca, {
    subject: [
      ['O', 'CIBA bench'],
      ['CN', 'bench-tls-client'],
    ],
  });
  const fapiCert = createClientCert(ca, {
    subject: [
      ['O', 'CIBA bench'],
      ['CN', 'bench-fapi-client'],
    ],
  });
  const selfSigned = createSelfSignedCert({ subject: [['CN', 'bench self-signed client']] });
  const es = await keyPair('ES256', 'am-es');
  const ps = await keyPair('PS256', 'am-ps');
  const ro = await keyPair('PS256', 'am-ro');
  const fapi = await keyPair('PS256', 'am-fapi');
  const hs: Signer = { key: new TextEncoder().encode(SECRET), alg: 'HS256' };

  const base = { grant_types: [CIBA_GRANT], scope: 'openid profile email', backchannel_token_delivery_mode: 'poll' };
  const clients = [
    { ...base, client_id: 'am-basic', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_basic' },
    { ...base, client_id: 'am-post', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_post' },
    { ...base, client_id: 'am-jwt', client_secret: SECRET, token_endpoint_auth_method: 'client_secret_jwt' },
    { ...base, client_id: 'am-pk-es', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [es.jwk] } },
    { ...base, client_id: 'am-pk-ps', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [ps.jwk] } },
    {
      ...base,
      client_id: 'am-tls',
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: 'CN=bench-tls-client,O=CIBA bench',
    },
    {
      ...base,
      client_id: 'am-self',
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [selfSigned.jwk] },
    },
    {
      ...base,
      client_id: 'am-signed',
      client_secret: SECRET,
      token_endpoint_auth_method: 'client_secret_basic',
      jwks: { keys: [ro.jwk] },
      backchannel_authentication_request_signing_alg: 'PS256',
    },
    {
      ...base,
      client_id: 'am-fapi',
      token_endpoint_auth_method: 'private_key_jwt',
      security_profile: 'fapi-ciba',
      jwks: { keys: [fapi.jwk] },
      backchannel_authentication_request_signing_alg: 'PS256',
      id_token_signed_response_alg: 'PS256',
    },
  ];

  const now = () => Math.floor(Date.now() / 1000);
  // Built up to a round before use: exp 5 minutes ahead (the server accepts assertions living at most 10 minutes).
  const assertion = (clientId: string, s: Signer) => {
    const t = now();
    return new SignJWT({ iss: clientId, sub: clientId, aud: issuer(), jti: randomUUID(), iat: t, exp: t + 300 })
      .setProtectedHeader({ alg: s.alg, ...(s.kid ? { kid: s.kid } : {}) })
      .sign(s.key);
  };
  const requestObject = (clientId: string, s: Signer, user: BenchUser, n: number) => {
    const t = now();
    return new SignJWT({
      iss: clientId,
      aud: issuer(),
      exp: t + 300,
      iat: t,
      nbf: t,
      jti: randomUUID(),
      scope: 'openid',
      login_hint: user.sub,
      binding_message: `AM ${n}`,
    })
      .setProtectedHeader({ alg: s.alg, kid: s.kid! })
      .sign(s.key);
  };
  const plain = (user: BenchUser, n: number) => ({ scope: 'openid', login_hint: user.sub, binding_message: `AM ${n}` });
  const viaJwt =
    (clientId: string, s: Signer) =>
    async (user: BenchUser, n: number): Promise<Creds> => ({
      headers: {},
      params: { ...plain(user, n), client_assertion_type: JWT_BEARER, client_assertion: await assertion(clientId, s) },
    });
  const viaCert =
    (clientId: string) =>
    async (user: BenchUser, n: number): Promise<Creds> => ({
      headers: {},
      params: { ...plain(user, n), client_id: clientId },
    });
  const basicHeader = encodeBasic('am-basic', SECRET);
  const signedHeader = encodeBasic('am-signed', SECRET);

  const methods: Method[] = [
    {
      id: 'client_secret_basic',
      label: 'client_secret_basic',
      transport: 'http',
      build: async (u, n) => ({ headers: { authorization: basicHeader }, params: plain(u, n) }),
    },
    {
      id: 'client_secret_post',
      label: 'client_secret_post',
      transport: 'http',
      build: async (u, n) => ({ headers: {}, params: { ...plain(u, n), client_id: 'am-post', client_secret: SECRET } }),
    },
    { id: 'client_secret_jwt', label: 'client_secret_jwt (HS256)', transport: 'http', build: viaJwt('am-jwt', hs) },
    {
      id: 'private_key_jwt_es256',
      label: 'private_key_jwt (ES256)',
      transport: 'http',
      build: viaJwt('am-pk-es', es.signer),
    },
    {
      id: 'private_key_jwt_ps256',
      label: 'private_key_jwt (PS256)',
      transport: 'http',
      build: viaJwt('am-pk-ps', ps.signer),
    },
    {
      id: 'client_secret_basic_https',
      label: 'client_secret_basic over HTTPS, no cert',
      transport: 'https',
      build: async (u, n) => ({ headers: { authorization: basicHeader }, params: plain(u, n) }),
    },
    {
      id: 'tls_client_auth',
      label: 'tls_client_auth (subject DN)',
      transport: 'mtls',
      cert: tlsCert,
      build: viaCert('am-tls'),
    },
    {
      id: 'self_signed_tls_client_auth',
      label: 'self_signed_tls_client_auth',
      transport: 'mtls',
      cert: selfSigned,
      build: viaCert('am-self'),
    },
    {
      id: 'signed_request_ps256_basic',
      label: 'request object (PS256) + secret_basic',
      transport: 'http',
      build: async (u, n) => ({
        headers: { authorization: signedHeader },
        params: { request: await requestObject('am-signed', ro.signer, u, n) },
      }),
    },
    {
      id: 'fapi_ciba',
      label: 'FAPI-CIBA: pk_jwt PS256 + PS256 req obj, mTLS',
      transport: 'mtls',
      cert: fapiCert,
      build: async (u, n) => ({
        headers: {},
        params: {
          request: await requestObject('am-fapi', fapi.signer, u, n),
          client_assertion_type: JWT_BEARER,
          client_assertion: await assertion('am-fapi', fapi.signer),
        },
      }),
    },
  ];
  // The listener's truststore: the CA, plus the self-signed certificate itself (as API Gateway needs it).
  const https = { key: serverCert.keyPem, cert: serverCert.certPem, ca: ca.certPem + selfSigned.certPem };
  return { clients, methods, https, caPem: ca.certPem };
}

// ---- the server child -----------------------------------------------------------------------------------------

type ChildConfig = { port: number; seed: unknown; https: { key: string; cert: string; ca: string } };

async function childMain(configFile: string): Promise<void> {
  const cfg = JSON.parse(await readFile(configFile, 'utf8')) as ChildConfig;
  const { startLocalStack } = await import('../../local/stack.ts');
  const env: Record<string, string> = {};
  for (const name of Object.keys(BENCH_SERVER_ENV)) if (process.env[name]) env[name] = process.env[name];
  const stack = await startLocalStack({
    port: cfg.port,
    ...(process.env.ISSUER ? { issuer: process.env.ISSUER } : {}),
    dataDir: null,
    quiet: true,
    seed: cfg.seed,
    env,
    https: { ...cfg.https, port: 0 },
  });
  const stop = () =>
    void stack.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`READY ${JSON.stringify({ url: stack.url, mtlsUrl: stack.mtlsUrl })}\n`);
}

async function startChild(
  projectDir: string,
  configFile: string,
  issuer: string,
): Promise<{ stop(): Promise<void>; pid: number; httpsPort: number }> {
  const child = trackChild(
    spawn(process.execPath, ['scripts/bench/auth-methods.ts', configFile], {
      cwd: projectDir,
      env: { ...process.env, ...BENCH_SERVER_ENV, ISSUER: issuer, NODE_OPTIONS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  child.stderr?.on('data', (c: Buffer) => {
    output = (output + c.toString('utf8')).slice(-8000);
  });
  const ready = await new Promise<{ mtlsUrl?: string }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the auth-methods server child did not become ready within 30 s:\n${output}`)),
      30_000,
    );
    let buffered = '';
    child.stdout?.on('data', (c: Buffer) => {
      buffered += c.toString('utf8');
      const line = buffered.split('\n').find((l) => l.startsWith('READY '));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line.slice(6)) as { mtlsUrl?: string });
      }
      output = (output + c.toString('utf8')).slice(-8000);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the auth-methods server child exited (${code ?? signal}):\n${output}`));
    });
  }).catch(async (err: unknown) => {
    await stopChild(child);
    throw err;
  });
  if (!ready.mtlsUrl) throw new Error('the auth-methods server child has no HTTPS listener');
  return { stop: () => stopChild(child), pid: child.pid!, httpsPort: Number(new URL(ready.mtlsUrl).port) };
}

// ---- the load generator ---------------------------------------------------------------------------------------

type Reply = { status: number; text: string };

/** POST the form (creds undefined: GET the discovery document, to open a connection). */
function post(url: URL, agent: HttpAgent, creds: Creds | undefined): Promise<Reply> {
  const body = creds ? new URLSearchParams(creds.params).toString() : '';
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      creds ? url : new URL('/.well-known/openid-configuration', url),
      creds
        ? {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/x-www-form-urlencoded',
              'content-length': Buffer.byteLength(body),
              ...creds.headers,
            },
          }
        : { method: 'GET', agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const accepted = (r: Reply) => r.status === 200 && r.text.includes('"auth_req_id"');

/**
 * One slice of one method: fresh keep-alive connections, then either `warmup` unmeasured requests (the server
 * warm-up) or, for a measured slice, one GET of the discovery document per worker (opens every connection, TLS
 * handshake included, without a backchannel request) followed by `count` measured requests at `concurrency`.
 * Credentials are all built first, timed apart (client-side cost, outside the measured window).
 */
async function runSlice(o: {
  method: Method;
  url: URL;
  caPem: string;
  users: BenchUser[];
  concurrency: number;
  warmup: number;
  count: number;
  serverPid: number;
  row?: AuthMethodRow;
  serial: { n: number };
}): Promise<void> {
  const { method, concurrency } = o;
  const total = o.warmup + o.count;
  const b0 = performance.now();
  const creds: Creds[] = [];
  for (let i = 0; i < total; i++) creds.push(await method.build(o.users[i % concurrency]!, o.serial.n++));
  const buildMs = performance.now() - b0;
  const agent =
    method.transport === 'http'
      ? new HttpAgent({ keepAlive: true, maxSockets: concurrency })
      : new HttpsAgent({
          keepAlive: true,
          maxSockets: concurrency,
          ca: o.caPem,
          ...(method.cert ? { key: method.cert.keyPem, cert: method.cert.certPem } : {}),
        });
  const errors = o.row?.errors ?? [];
  const noteError = (e: string) => void (errors.length < 3 && errors.push(e));
  const failure = (e: unknown): Reply => ({ status: 0, text: e instanceof Error ? e.message : String(e) });
  try {
    let next = 0;
    if (o.warmup > 0) {
      let warmFailed = 0;
      let example = '';
      const warmWorker = async () => {
        while (next < o.warmup) {
          const r = await post(o.url, agent, creds[next++]!).catch(failure);
          if (!accepted(r)) {
            warmFailed++;
            example ||= `${r.status} ${r.text.slice(0, 300)}`;
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, warmWorker));
      if (warmFailed > o.warmup / 2)
        throw new Error(`${method.label}: ${warmFailed} of ${o.warmup} warm-up requests failed, e.g. ${example}`);
    } else {
      const opened = await Promise.all(
        Array.from({ length: concurrency }, () => post(o.url, agent, undefined).catch(failure)),
      );
      const bad = opened.find((r) => r.status !== 200);
      if (bad) throw new Error(`${method.label}: opening a connection failed: ${bad.status} ${bad.text.slice(0, 300)}`);
    }
    if (!o.row) return;
    const row = o.row;
    const cpu0 = processCpuSeconds(o.serverPid);
    const gen0 = process.cpuUsage();
    const t0 = performance.now();
    const worker = async () => {
      while (next < total) {
        const c = creds[next++]!;
        const s = performance.now();
        try {
          const r = await post(o.url, agent, c);
          if (accepted(r)) {
            row.latencies.push(performance.now() - s);
            row.requests++;
          } else {
            row.failed++;
            noteError(`${r.status} ${r.text.slice(0, 200)}`);
          }
        } catch (e) {
          row.failed++;
          noteError((e as Error).message);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    row.wallS += (performance.now() - t0) / 1000;
    row.serverCpuS += processCpuSeconds(o.serverPid) - cpu0;
    const gen = process.cpuUsage(gen0);
    row.loadgenCpuMsPerRequest += (gen.user + gen.system) / 1000; // summed here, divided at the end
    row.buildMsPerRequest += (buildMs * o.count) / total; // the measured share, divided at the end
  } finally {
    agent.destroy();
  }
}

export async function runAuthMethods(opts: {
  projectDir: string;
  tmp: string;
  concurrency: number;
  requestsPerMethod: number;
  rounds: number;
  warmupPerMethod?: number;
  progress: (line: string) => void;
}): Promise<AuthMethodsResult> {
  const began = performance.now();
  const { concurrency, rounds } = opts;
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { clients, methods, https, caPem } = await setup(() => issuer);
  const { seed, users } = benchSeed(concurrency);
  (seed as { clients: unknown[] }).clients.push(...clients);
  const configFile = join(opts.tmp, 'auth-methods-child.json');
  await writeFile(configFile, JSON.stringify({ port, seed, https } satisfies ChildConfig), { mode: 0o600 });
  opts.progress(
    `auth methods: starting the server child (in-memory local stack + HTTPS listener with client certificates), ${methods.length} clients`,
  );
  const server = await startChild(opts.projectDir, configFile, issuer);
  const urlOf = (m: Method) =>
    new URL('/bc-authorize', m.transport === 'http' ? issuer : `https://127.0.0.1:${server.httpsPort}`);
  const serial = { n: 0 };
  try {
    // Server warm-up (JIT of every method's path, first-use imports): one unmeasured slice per method.
    const warmupPerMethod = opts.warmupPerMethod ?? 2 * concurrency;
    opts.progress(`auth methods: warm-up, ${warmupPerMethod} requests per method (not measured)`);
    for (const method of methods) {
      await runSlice({
        method,
        url: urlOf(method),
        caPem,
        users,
        concurrency,
        warmup: warmupPerMethod,
        count: 0,
        serverPid: server.pid,
        serial,
      });
    }
    const setupS = (performance.now() - began) / 1000;
    await new Promise((r) => setTimeout(r, 300)); // the warm-up's last workflows finish
    const idle0 = processCpuSeconds(server.pid);
    const idleT0 = performance.now();
    await new Promise((r) => setTimeout(r, 500));
    const idleCpuMsPerS = ((processCpuSeconds(server.pid) - idle0) * 1000) / ((performance.now() - idleT0) / 1000);

    const rows: AuthMethodRow[] = methods.map((m) => ({
      id: m.id,
      label: m.label,
      transport: m.transport,
      requests: 0,
      failed: 0,
      errors: [],
      wallS: 0,
      requestsPerS: 0,
      latencies: [],
      serverCpuS: 0,
      serverCpuMsPerRequest: 0,
      loadgenCpuMsPerRequest: 0,
      buildMsPerRequest: 0,
    }));
    const perSlice = Math.ceil(opts.requestsPerMethod / rounds);
    for (let round = 0; round < rounds; round++) {
      // Rotate (and alternate the direction of) the order each round, so slow drift in the server (more pending
      // workflows, GC) does not favour any method.
      const order = methods.map((_, i) => (i + round * 3) % methods.length);
      if (round % 2 === 1) order.reverse();
      opts.progress(
        `auth methods: round ${round + 1}/${rounds}, ${perSlice} measured requests per method at c=${concurrency}`,
      );
      for (const i of order) {
        const method = methods[i]!;
        await runSlice({
          method,
          url: urlOf(method),
          caPem,
          users,
          concurrency,
          warmup: 0,
          count: perSlice,
          serverPid: server.pid,
          row: rows[i]!,
          serial,
        });
      }
    }
    for (const r of rows) {
      const n = r.requests + r.failed;
      r.requestsPerS = r.requests / r.wallS;
      r.serverCpuMsPerRequest = (r.serverCpuS * 1000) / Math.max(1, n);
      r.loadgenCpuMsPerRequest /= Math.max(1, n);
      r.buildMsPerRequest /= Math.max(1, n);
    }
    return { concurrency, requestsPerMethod: perSlice * rounds, rounds, warmupPerMethod, idleCpuMsPerS, setupS, rows };
  } finally {
    await server.stop();
    opts.progress(`auth methods: done in ${((performance.now() - began) / 1000).toFixed(1)} s`);
  }
}

if (import.meta.main) {
  const configFile = process.argv[2];
  if (!configFile) {
    console.error('usage: node scripts/bench/auth-methods.ts <config.json> (started by npm run bench)');
    process.exit(2);
  }
  childMain(configFile).catch((err: unknown) => {
    console.error('auth-methods server child failed:', err);
    process.exit(1);
  });
}
