// `npm run bench` section 11, in a child process with its own in-process local stack: requests per second and
// latency of token introspection (RFC 7662), revocation (RFC 7009) and dynamic registration (RFC 7591) at a fixed
// concurrency. The tokens are minted beforehand through the real use case (not measured). Prints one line
// `{"rows": [...]}`.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { encodeBasic } from '../../functions/core/client-auth.ts';
import { randomId } from '../../functions/core/crypto.ts';
import { getClient } from '../../functions/adapters/store.ts';
import { mintTokens } from '../../functions/usecases/tokens.ts';
import { startLocalStack } from '../../local/stack.ts';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SERVER_ENV, benchSeed } from './flow.ts';
import { freePort } from './child.ts';
import { fmt, section, summarize, table, type Summary } from './report.ts';

export type LifecycleRow = {
  endpoint: string;
  requests: number;
  concurrency: number;
  perSecond: number;
  latency: Summary;
};

const CONCURRENCY = 8;

async function measure(name: string, bodies: (() => RequestInit)[], url: string): Promise<LifecycleRow> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const init = bodies[next++]!();
        const t0 = performance.now();
        const res = await fetch(url, init);
        await res.arrayBuffer();
        if (res.status >= 300) throw new Error(`${name}: HTTP ${res.status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return {
    endpoint: name,
    requests: bodies.length,
    concurrency: CONCURRENCY,
    perSecond: bodies.length / seconds,
    latency: summarize(latencies),
  };
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 300);
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const { seed, users } = benchSeed(1);
  const stack = await startLocalStack({
    port,
    issuer,
    dataDir: null,
    quiet: true,
    seed,
    env: { ...BENCH_SERVER_ENV, CIBA_OPEN_REGISTRATION: 'true' },
  });
  try {
    const client = (await getClient(BENCH_CLIENT_ID))!;
    const grant = { clientId: BENCH_CLIENT_ID, sub: users[0]!.sub, scope: 'openid' };
    const tokens = [];
    for (let i = 0; i < count * 2; i++) tokens.push(await mintTokens(client, grant, randomId(16)));
    const form = (token: string): RequestInit => ({
      method: 'POST',
      headers: {
        authorization: encodeBasic(BENCH_CLIENT_ID, BENCH_CLIENT_SECRET),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }),
    });
    const rows = [
      await measure(
        'introspection (access token)',
        tokens.slice(0, count).map((t) => () => form(t.access_token)),
        `${issuer}/introspect`,
      ),
      await measure(
        'revocation (access token)',
        tokens.slice(count).map((t) => () => form(t.access_token)),
        `${issuer}/revoke`,
      ),
      await measure(
        'registration (open)',
        Array.from({ length: count }, () => () => ({
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            grant_types: ['urn:openid:params:grant-type:ciba'],
            scope: 'openid',
            client_name: 'bench',
          }),
        })),
        `${issuer}/register`,
      ),
    ];
    console.log(JSON.stringify({ rows }));
  } finally {
    await stack.close();
  }
}

export async function lifecycleLoad(projectDir: string, count: number): Promise<LifecycleRow[]> {
  const { stdout } = await promisify(execFile)(process.execPath, ['scripts/bench/lifecycle-load.ts', String(count)], {
    cwd: projectDir,
    env: { ...process.env, NODE_OPTIONS: '' },
    timeout: 180_000,
    maxBuffer: 4 * 1024 * 1024,
  });
  const line = stdout.split('\n').find((l) => l.startsWith('{"rows":'));
  if (!line) throw new Error(`lifecycle-load printed no result:\n${stdout.slice(-2000)}`);
  return (JSON.parse(line) as { rows: LifecycleRow[] }).rows;
}

/** Section 11 as printed. */
export function formatLifecycleLoad(rows: readonly LifecycleRow[]): string {
  return [
    section(
      '11. Token lifecycle and registration endpoints under load',
      `in-process local stack in a child process, ${CONCURRENCY} concurrent clients, basic client authentication`,
    ),
    table(
      ['endpoint', 'requests', 'req/s', 'p50 ms', 'p99 ms'],
      rows.map((r) => [r.endpoint, r.requests, fmt(r.perSecond, 0), fmt(r.latency.p50), fmt(r.latency.p99)]),
    ),
  ].join('\n');
}

if (import.meta.main) await main();
