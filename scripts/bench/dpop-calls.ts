// `npm run bench` section 10, run in a child process per nonce setting (`--nonce`: CIBA_DPOP_NONCE=on; handlers read
// their configuration once per process): the AWS calls DPoP (RFC 9449) adds to a token request and to userinfo. Its
// own in-process local stack; each measured HTTP request gets an AsyncLocalStorage context (diagnostics_channel
// `http.server.request.start`, as in ./inprocess.ts), and every AWS call the handler makes is filed under it. The same
// requests are made with Bearer tokens and with DPoP proofs; a row is one request kind, warm (its third repetition).
// Prints one line `{"rows": [...]}`.
import { AsyncLocalStorage } from 'node:async_hooks';
import { execFile } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { promisify } from 'node:util';
import { exportJWK, SignJWT, type JWK } from 'jose';
import { setAwsCallObserver, type AwsCall } from '../../functions/adapters/aws.ts';
import { encodeBasic } from '../../functions/core/client-auth.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { startLocalStack } from '../../local/stack.ts';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SERVER_ENV, benchSeed, CIBA_GRANT, deviceFor } from './flow.ts';
import { criticalPathDepth } from './inprocess.ts';
import { freePort } from './child.ts';
import { section, table } from './report.ts';

export type DpopCallsRow = {
  request: string;
  nonce: boolean;
  /** `Service.Operation` → calls, with a Bearer token / with a DPoP proof. */
  bearer: Record<string, number>;
  dpop: Record<string, number>;
  /** What DPoP adds (DPoP minus Bearer, per operation). */
  added: Record<string, number>;
  bearerDepth: number;
  dpopDepth: number;
};

const REPETITIONS = 3;
type Answer = { status: number; json: Record<string, unknown>; nonce: string | null };

async function main(): Promise<void> {
  const nonce = process.argv.includes('--nonce');
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { seed, users } = benchSeed(1);
  const stack = await startLocalStack({
    port,
    issuer,
    dataDir: null,
    quiet: true,
    seed,
    env: { ...BENCH_SERVER_ENV, CIBA_MAX_PENDING_PER_USER: '50', CIBA_DPOP_NONCE: nonce ? 'on' : 'off' },
  });
  try {
    const als = new AsyncLocalStorage<AwsCall[]>();
    let recording = false;
    let contexts: AwsCall[][] = [];
    subscribe('http.server.request.start', (message) => {
      const { socket } = message as { request: IncomingMessage; socket: Socket };
      if (!recording || socket.localPort !== port) return;
      const calls: AwsCall[] = [];
      contexts.push(calls);
      als.enterWith(calls);
    });
    setAwsCallObserver((call) => {
      if (recording) als.getStore()?.push(call);
    });
    const measure = async <T>(act: () => Promise<T>): Promise<{ result: T; calls: AwsCall[] }> => {
      contexts = [];
      recording = true;
      const result = await act();
      await new Promise((r) => setTimeout(r, 20));
      recording = false;
      return { result, calls: contexts.flat() };
    };

    const user = users[0]!;
    const device = deviceFor(issuer, user);
    const authorization = encodeBasic(BENCH_CLIENT_ID, BENCH_CLIENT_SECRET);
    const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = (await exportJWK(keys.publicKey)) as JWK;
    let currentNonce: string | undefined;
    const proof = (htm: string, htu: string, extra: Record<string, unknown> = {}) =>
      new SignJWT({
        jti: randomUUID(),
        htm,
        htu,
        iat: Math.floor(Date.now() / 1000),
        ...(currentNonce ? { nonce: currentNonce } : {}),
        ...extra,
      })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
        .sign(keys.privateKey);
    const send = async (url: string, init: RequestInit): Promise<Answer> => {
      const res = await fetch(url, init);
      const answer = { status: res.status, json: (await res.json().catch(() => ({}))) as Record<string, unknown> };
      const given = res.headers.get('dpop-nonce');
      if (given) currentNonce = given;
      return { ...answer, nonce: given };
    };
    const token = async (params: Record<string, string>, dpop: boolean) =>
      send(`${issuer}/token`, {
        method: 'POST',
        headers: {
          authorization,
          'content-type': 'application/x-www-form-urlencoded',
          ...(dpop ? { dpop: await proof('POST', `${issuer}/token`) } : {}),
        },
        body: new URLSearchParams(params).toString(),
      });
    const userinfo = async (accessToken: string, dpop: boolean) =>
      send(`${issuer}/userinfo`, {
        headers: dpop
          ? {
              authorization: `DPoP ${accessToken}`,
              dpop: await proof('GET', `${issuer}/userinfo`, { ath: sha256b64u(accessToken) }),
            }
          : { authorization: `Bearer ${accessToken}` },
      });
    const started = async () => {
      const res = await send(`${issuer}/bc-authorize`, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ scope: 'openid', login_hint: user.sub, binding_message: 'BENCH-DPOP' }).toString(),
      });
      if (res.status !== 200) throw new Error(`bc-authorize: ${res.status} ${JSON.stringify(res.json)}`);
      return String(res.json.auth_req_id);
    };
    const approve = async (authReqId: string) => {
      const id = sha256b64u(authReqId);
      await device.waitFor((r) => r.id === id);
      const decided = await device.decide(id, 'approve');
      if (decided.status !== 204) throw new Error(`decide: ${decided.status}`);
    };
    const expect = (what: string, answer: Answer, status: number) => {
      if (answer.status !== status) throw new Error(`${what}: HTTP ${answer.status} ${JSON.stringify(answer.json)}`);
      return answer;
    };

    const samples = new Map<string, { bearer?: AwsCall[]; dpop?: AwsCall[] }>();
    const keep = (request: string, mode: 'bearer' | 'dpop', calls: AwsCall[]) =>
      samples.set(request, { ...samples.get(request), [mode]: calls });
    let firstUse: AwsCall[] | undefined;
    if (nonce) {
      // The first DPoP request of a function instance: the nonce key is read (here also created, once per server);
      // the answer is use_dpop_nonce with the nonce the client then uses.
      const authReqId = await started();
      const { calls, result } = await measure(() => token({ grant_type: CIBA_GRANT, auth_req_id: authReqId }, true));
      expect('first nonce', result, 400);
      firstUse = calls;
    }
    for (let i = 0; i < REPETITIONS; i++) {
      for (const mode of ['bearer', 'dpop'] as const) {
        const dpop = mode === 'dpop';
        const pending = await started();
        keep(
          'token: pending poll',
          mode,
          (await measure(() => token({ grant_type: CIBA_GRANT, auth_req_id: pending }, dpop))).calls,
        );
        const authReqId = await started();
        await approve(authReqId);
        const redeemed = await measure(() => token({ grant_type: CIBA_GRANT, auth_req_id: authReqId }, dpop));
        const tokens = expect('redeem', redeemed.result, 200).json;
        keep('token: CIBA grant redeemed', mode, redeemed.calls);
        const info = await measure(() => userinfo(String(tokens.access_token), dpop));
        expect('userinfo', info.result, 200);
        keep('userinfo', mode, info.calls);
        const refreshed = await measure(() =>
          token({ grant_type: 'refresh_token', refresh_token: String(tokens.refresh_token) }, dpop),
        );
        expect('refresh', refreshed.result, 200);
        keep('token: refresh', mode, refreshed.calls);
      }
    }
    const count = (calls: AwsCall[] = []) => {
      const out: Record<string, number> = {};
      for (const c of calls) out[`${c.service}.${c.operation}`] = (out[`${c.service}.${c.operation}`] ?? 0) + 1;
      return out;
    };
    const rows: DpopCallsRow[] = [...samples].map(([request, { bearer, dpop }]) => {
      const b = count(bearer);
      const d = count(dpop);
      const added: Record<string, number> = {};
      for (const op of new Set([...Object.keys(b), ...Object.keys(d)])) {
        const delta = (d[op] ?? 0) - (b[op] ?? 0);
        if (delta !== 0) added[op] = delta;
      }
      return {
        request,
        nonce,
        bearer: b,
        dpop: d,
        added,
        bearerDepth: criticalPathDepth(bearer ?? []),
        dpopDepth: criticalPathDepth(dpop ?? []),
      };
    });
    if (firstUse) {
      rows.push({
        request: 'first DPoP request of an instance (use_dpop_nonce)',
        nonce,
        bearer: {},
        dpop: count(firstUse),
        added: count(firstUse),
        bearerDepth: 0,
        dpopDepth: criticalPathDepth(firstUse),
      });
    }
    console.log(JSON.stringify({ rows }));
  } finally {
    setAwsCallObserver(undefined);
    await stack.close();
  }
}

/** Section 10's rows for one nonce setting (this module in a child process: its own stack and settings). */
export async function dpopCalls(projectDir: string, nonce: boolean): Promise<DpopCallsRow[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['scripts/bench/dpop-calls.ts', ...(nonce ? ['--nonce'] : [])],
    { cwd: projectDir, env: { ...process.env, NODE_OPTIONS: '' }, timeout: 120_000, maxBuffer: 4 * 1024 * 1024 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('{"rows":'));
  if (!line) throw new Error(`dpop-calls printed no result:\n${stdout.slice(-2000)}`);
  return (JSON.parse(line) as { rows: DpopCallsRow[] }).rows;
}

const ops = (calls: Record<string, number>) =>
  Object.entries(calls)
    .map(([op, n]) => `${op} ${n > 0 ? '×' : ''}${n}`)
    .join(', ') || '—';
const total = (calls: Record<string, number>) => Object.values(calls).reduce((a, b) => a + b, 0);

/** Section 10 as printed. */
export function formatDpopCalls(rows: readonly DpopCallsRow[]): string {
  return [
    section(
      '10. DPoP (RFC 9449): AWS calls added per token request and userinfo',
      `\`node scripts/bench/dpop-calls.ts\` in a child process, without and with CIBA_DPOP_NONCE=on: its own in-process
       stack, the same requests with Bearer tokens and with DPoP proofs (ES256), every AWS call each request's handler
       makes (causal attribution), warm. A redeemed or refreshed token request and userinfo add the proof's jti to the
       replay cache (one conditional PutItem, on the critical path: it is written only after every other check and
       before the grant is used); a pending poll records nothing. Nonces cost no call per request (an HMAC checked in
       memory); each function instance reads the nonce key once (GetItem; the server's very first use also creates it,
       PutItem, as in the last row).`,
    ),
    table(
      ['request', 'nonce', '>Bearer', '>DPoP', '>depth B/D', 'added by DPoP'],
      rows.map((r) => [
        r.request,
        r.nonce ? 'on' : 'off',
        total(r.bearer),
        total(r.dpop),
        `${r.bearerDepth}/${r.dpopDepth}`,
        ops(r.added),
      ]),
    ),
  ].join('\n');
}

if (import.meta.main) {
  await main();
  process.exit(0);
}
