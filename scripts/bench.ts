// `npm run bench`: performance figures of the CIBA server, on this machine, against 127.0.0.1 only.
//   1. throughput and latency of complete poll flows on the local stack (server in a child process), c=1 and c=32
//   2. server CPU per complete flow (the child's utime+stime)
//   3. AWS calls per flow by endpoint, and their critical-path depth (stack in this process)
//   4. each Lambda bundle's size and cold module-load time (esbuild with the construct's options, infra/bundling.ts)
//   5. Step Functions state transitions per flow (poll, ping, push × approve, deny, expire; one retried delivery) and cost
//   6. approval-to-notification latency of ping and push flows (same server child as 1; receiver in this process)
//   7. cost of each client authentication method at POST /bc-authorize (own server child with the mTLS listener)
//   8. user notifications: request accepted → Web Push received at a loopback push service (same server child as 1),
//      and the AWS calls the dispatch-notifications function adds per flow (own in-process stack in a child process)
//   9. the device web app: transfer size (gzip) and time to interactive in headless Chromium (own server child)
//  10. the AWS calls DPoP (RFC 9449) adds per token request and userinfo, nonces off and on (child processes)
//  12. the local stack's own cost: server CPU per POST /bc-authorize at 0, 1,000 and 10,000 pending requests, heap per
//      pending request, p99 of pending polls and device lists at 10,000 pending, bytes written per request (own child)
// Every phase is bounded in count and time; child processes and temporary directories are removed on exit.
//
//   npm run bench [-- --quick] [--levels 1,32] [--flows 40,320] [--notify-levels 1,8] [--notify-flows 40,200]
//                 [--time-cap 60] [--cold-runs 5] [--no-expiry] [--auth-requests 300] [--auth-concurrency 16]
//                 [--no-auth-methods] [--device-app-runs 5] [--no-device-app] [--local-cost-pending 0,1000,10000]
//                 [--local-cost-requests 300] [--no-local-cost]
import { parseArgs } from 'node:util';
import { cpus, availableParallelism, platform, release, totalmem, tmpdir, loadavg } from 'node:os';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_SERVER_ENV, benchSeed, type Kind } from './bench/flow.ts';
import {
  cleanupAll,
  clkTck,
  freePort,
  installCleanupHandlers,
  startServerChild,
  stopChild,
  trackCleanup,
  trackDir,
  trackEmptyDir,
} from './bench/child.ts';
import { idleCpuRate, runLevel, warmServer, type LevelResult } from './bench/load.ts';
import { runInProcess, type AwsCallsResult, type TransitionsResult } from './bench/inprocess.ts';
import { BenchReceiver, runNotifyLevel, type NotifyLevelResult } from './bench/notify.ts';
import {
  buildBundles,
  bundlingSummary,
  coldSummary,
  measureColdImports,
  type BundleResult,
  type BundlingSummary,
} from './bench/bundles.ts';
import { runAuthMethods, type AuthMethodsResult } from './bench/auth-methods.ts';
import { formatDeviceApp, runDeviceAppBench, type DeviceAppResult } from './bench/device-app.ts';
import { notifyCalls, runWebPushLevel, webPushUsers, type WebPushLevelResult } from './bench/webpush.ts';
import { dpopCalls, formatDpopCalls, type DpopCallsRow } from './bench/dpop-calls.ts';
import { formatLifecycleLoad, lifecycleLoad, type LifecycleRow } from './bench/lifecycle-load.ts';
import { formatLocalCost, runLocalCost, type LocalCostResult } from './bench/local-cost.ts';
import type { NotifyCallsRow } from './bench/notify-calls.ts';
import { WebPushReceiver } from '../local/web-push-receiver.ts';
import { encodeBasic } from '../functions/core/client-auth.ts';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET } from './bench/flow.ts';
import { bytes, fmt, round, section, summarize, table } from './bench/report.ts';

const HELP = `usage: npm run bench [-- options]
  --levels <list>     concurrency levels (default 1,32)
  --flows <list>      measured flows per level (default 40,320)
  --warmup <list>     warm-up flows per level (default 4,32)
  --notify-levels <list>
                      concurrency levels of the ping and push flows for the approval-to-notification latency (default 1,8)
  --notify-flows <list>
                      measured ping flows and push flows per notify level (default 40,200; warm-up 2 × c each); the
                      same levels and counts measure request accepted → Web Push received (section 8)
  --time-cap <s>      cap per level for the measured flows, seconds (default 60)
  --inproc-flows <n>  flows recorded for the AWS call count (default 5)
  --cold-runs <n>     fresh processes per bundle for the cold import (default 5)
  --in-memory         load sections against an in-memory local stack (scripts/bench/memory-server.ts) instead of
                      \`node local/start.ts\` with an on-disk data dir
  --no-expiry         skip the 10 s expiry flows (section 5 then shows approve, deny and the retried delivery only)
  --auth-requests <n> measured POST /bc-authorize per client authentication method in section 7, over 3 rounds
                      (default 300; --quick: 100 in one round)
  --auth-concurrency <n>
                      concurrency of section 7 (default 16)
  --no-auth-methods   skip section 7 (client authentication methods)
  --device-app-runs <n>
                      page loads per kind in section 9, the device web app in headless Chromium (default 5; --quick: 2)
  --no-device-app     skip section 9
  --local-cost-pending <list>
                      pending-request levels of section 12, the local stack's own cost (default 0,1000,10000;
                      --quick: 0,500)
  --local-cost-requests <n>
                      measured POST /bc-authorize per level in section 12 (default 300; --quick: 100)
  --no-local-cost     skip section 12
  --quick             a fast smoke run (fewer flows and runs)
  -h, --help`;

const { values: args } = parseArgs({
  options: {
    levels: { type: 'string', default: '1,32' },
    flows: { type: 'string', default: '40,320' },
    warmup: { type: 'string', default: '4,32' },
    'notify-levels': { type: 'string', default: '1,8' },
    'notify-flows': { type: 'string', default: '40,200' },
    'time-cap': { type: 'string', default: '60' },
    'inproc-flows': { type: 'string', default: '5' },
    'cold-runs': { type: 'string', default: '5' },
    'no-expiry': { type: 'boolean', default: false },
    'auth-requests': { type: 'string', default: '300' },
    'auth-concurrency': { type: 'string', default: '16' },
    'no-auth-methods': { type: 'boolean', default: false },
    'device-app-runs': { type: 'string', default: '5' },
    'no-device-app': { type: 'boolean', default: false },
    'local-cost-pending': { type: 'string', default: '0,1000,10000' },
    'local-cost-requests': { type: 'string', default: '300' },
    'no-local-cost': { type: 'boolean', default: false },
    'in-memory': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(HELP);
  process.exit(0);
}

const PROJECT_DIR = fileURLToPath(new URL('../', import.meta.url));
const POLL_INTERVAL = Number(BENCH_SERVER_ENV.CIBA_POLL_INTERVAL);
/** The whole bench stops by itself after this long, whatever happens. */
const WATCHDOG_MS = 8 * 60_000;
/** Section 12 fills the server with up to 10,000 pending requests: it gets its own allowance on top. */
const LOCAL_COST_WATCHDOG_MS = 8 * 60_000;

const intList = (text: string, name: string): number[] => {
  const list = text.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 0))
    throw new Error(`--${name}: expected comma-separated integers, got ${text}`);
  return list;
};
const positive = (text: string, name: string, max: number): number => {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || n > max)
    throw new Error(`--${name}: expected a number in (0, ${max}], got ${text}`);
  return n;
};

const levels = intList(args.levels, 'levels');
const flowCounts = args.quick ? levels.map((c) => Math.max(4, c * 2)) : intList(args.flows, 'flows');
const warmups = args.quick ? levels.map((c) => Math.max(1, Math.min(c, 4))) : intList(args.warmup, 'warmup');
if (flowCounts.length !== levels.length || warmups.length !== levels.length)
  throw new Error('--levels, --flows and --warmup need the same number of entries');
if (levels.some((c) => c < 1 || c > 256) || flowCounts.some((n) => n > 5000))
  throw new Error('levels must be 1..256 and flows at most 5000');
const notifyLevels = intList(args['notify-levels'], 'notify-levels');
const notifyFlows = args.quick
  ? notifyLevels.map((c) => Math.max(4, c * 2))
  : intList(args['notify-flows'], 'notify-flows');
const notifyWarmups = notifyLevels.map((c) => (args.quick ? 1 : 2 * c));
if (notifyFlows.length !== notifyLevels.length)
  throw new Error('--notify-levels and --notify-flows need the same number of entries');
if (notifyLevels.some((c) => c < 1 || c > 256) || notifyFlows.some((n) => n > 5000))
  throw new Error('notify levels must be 1..256 and flows at most 5000');
const timeCapS = positive(args['time-cap'], 'time-cap', 300);
const inprocFlows = args.quick ? 2 : positive(args['inproc-flows'], 'inproc-flows', 50);
const coldRuns = args.quick ? 1 : positive(args['cold-runs'], 'cold-runs', 20);
const expiry = !args['no-expiry'] && !args.quick;
const authMethods = !args['no-auth-methods'];
const deviceApp = !args['no-device-app'];
const localCost = !args['no-local-cost'];
const localCostPending = args.quick ? [0, 500] : intList(args['local-cost-pending'], 'local-cost-pending');
const localCostRequests = args.quick ? 100 : positive(args['local-cost-requests'], 'local-cost-requests', 5000);
if (localCostPending.some((n) => n > 50_000)) throw new Error('--local-cost-pending: at most 50000 pending requests');
const deviceAppRuns = args.quick
  ? 2
  : Math.max(1, Math.round(positive(args['device-app-runs'], 'device-app-runs', 50)));
const authConcurrency = positive(args['auth-concurrency'], 'auth-concurrency', 256);
const authRequests = args.quick ? 100 : positive(args['auth-requests'], 'auth-requests', 20_000);
const authRounds = args.quick ? 1 : 3;
if (!Number.isInteger(authConcurrency) || !Number.isInteger(authRequests))
  throw new Error('--auth-requests and --auth-concurrency must be integers');
const inMemory = args['in-memory'];
const SERVER_DESCRIPTION = inMemory
  ? '`node scripts/bench/memory-server.ts` (startLocalStack, in-memory DynamoDB and executions)'
  : '`node local/start.ts` (on-disk data dir: LevelDB + executions.json, as `npm start`)';

const say = (line: string) => console.log(line);
const progress = (line: string) => process.stderr.write(`  … ${line}\n`);

type Results = {
  machine: Record<string, unknown>;
  load?: LevelResult[];
  /** Server CPU ms per wall second with no load. */
  idleCpuMsPerS?: number;
  awsCalls?: AwsCallsResult;
  transitions?: TransitionsResult;
  notify?: NotifyLevelResult[];
  webPush?: WebPushLevelResult[];
  notifyCalls?: NotifyCallsRow[];
  dpopCalls?: DpopCallsRow[];
  lifecycle?: LifecycleRow[];
  bundles?: { results: BundleResult[]; options: BundlingSummary };
  authMethods?: AuthMethodsResult;
  deviceApp?: DeviceAppResult;
  localCost?: LocalCostResult;
};

async function main(): Promise<void> {
  installCleanupHandlers();
  const watchdogMs = WATCHDOG_MS + (localCost ? LOCAL_COST_WATCHDOG_MS : 0);
  const watchdog = setTimeout(() => {
    console.error(`\nbench: still running after ${watchdogMs / 60_000} minutes; stopping.`);
    cleanupAll().finally(() => process.exit(1));
  }, watchdogMs);
  watchdog.unref();
  const began = performance.now();

  const cpuList = cpus();
  const machine = {
    cores: cpuList.length,
    availableParallelism: availableParallelism(),
    cpuModel: cpuList[0]?.model ?? 'unknown',
    node: process.version,
    os: `${platform()} ${release()}`,
    memoryGiB: round(totalmem() / 1024 ** 3, 1),
    loadAverage1m: round(loadavg()[0] ?? 0, 2),
    clkTck: clkTck(),
  };
  say(`CIBA server benchmark — ${new Date().toISOString()}`);
  say(
    `machine: ${machine.cores} cores (${machine.cpuModel}), ${machine.memoryGiB} GiB, ${machine.os}, node ${machine.node}, load avg ${machine.loadAverage1m}`,
  );
  say(
    `settings: ${Object.entries(BENCH_SERVER_ENV)
      .map(([k, v]) => `${k}=${v}`)
      .join(
        ', ',
      )}, levels ${levels.join(',')}, flows ${flowCounts.join(',')} (+ warm-up ${warmups.join(',')}), ping/push levels ${notifyLevels.join(',')}, flows ${notifyFlows.join(',')} per mode (+ warm-up ${notifyWarmups.join(',')}), cap ${timeCapS} s per level, server ${inMemory ? 'in-memory' : 'start.ts (on-disk)'}, ${authMethods ? `auth methods ${authRequests} requests each at c=${authConcurrency} in ${authRounds} round${authRounds === 1 ? '' : 's'}` : 'no auth methods'}${args.quick ? ', QUICK run' : ''}`,
  );
  const results: Results = { machine };

  const tmp = trackDir(await mkdtemp(join(tmpdir(), 'ciba-bench-')));

  // The ping/push clients' notification endpoint (sections 5 and 6), up before any seed names its URL.
  const receiver = await BenchReceiver.start();
  trackCleanup(() => receiver.close());
  // The loopback Web Push service of section 8, and users whose one device is subscribed there.
  const pushReceiver = await WebPushReceiver.start();
  trackCleanup(() => pushReceiver.close());
  const pushUsers = webPushUsers(Math.max(...notifyLevels), pushReceiver);

  // ---- 1 + 2 (+ 6): load on the local stack in a child process ------------------------------------------------
  const maxC = Math.max(...levels);
  const { seed, users } = benchSeed(Math.max(maxC, ...notifyLevels, 3) + 8, (path) => receiver.url(path));
  (seed as { users: unknown[] }).users.push(...pushUsers.seedUsers);
  const seedFile = join(tmp, 'seed.json');
  await writeFile(seedFile, JSON.stringify(seed));
  progress(
    `starting the server child (${inMemory ? 'memory-server.ts' : 'local/start.ts'}, seed of ${users.length} users with a device key each)`,
  );
  const port = await freePort();
  const server = await startServerChild({
    projectDir: PROJECT_DIR,
    port,
    dataDir: join(tmp, 'data'),
    seedFile,
    env: BENCH_SERVER_ENV,
    inMemory,
  });
  const load: LevelResult[] = [];
  try {
    const prewarm = 2 * maxC;
    progress(`server warm-up: ${prewarm} flows at c=${maxC} (not measured)`);
    const prewarmFailed = await warmServer({
      issuer: server.url,
      users,
      concurrency: maxC,
      flows: prewarm,
      timeCapMs: 20_000,
    });
    if (prewarmFailed > 0) say(`  warning: ${prewarmFailed} of ${prewarm} warm-up flows failed`);
    progress('server idle CPU over 2 s');
    results.idleCpuMsPerS = await idleCpuRate(server.pid, 2000);
    for (const [i, c] of levels.entries()) {
      progress(`c=${c}: ${warmups[i]} warm-up + ${flowCounts[i]} measured flows (cap ${timeCapS} s)`);
      const r = await runLevel({
        issuer: server.url,
        users,
        serverPid: server.pid,
        concurrency: c,
        flows: flowCounts[i]!,
        warmup: warmups[i]!,
        timeCapMs: timeCapS * 1000,
        staggerMs: POLL_INTERVAL * 1000,
      });
      load.push(r);
      progress(`c=${c}: ${r.completed} flows in ${r.wallS.toFixed(1)} s, ${r.failed} failed`);
    }
    // ---- 6: ping and push, approval → notification ----------------------------------------------------------
    const notify: NotifyLevelResult[] = [];
    for (const mode of ['ping', 'push'] as const) {
      for (const [i, c] of notifyLevels.entries()) {
        progress(
          `${mode} c=${c}: ${notifyWarmups[i]} warm-up + ${notifyFlows[i]} measured approve flows, approval → notification`,
        );
        const r = await runNotifyLevel({
          issuer: server.url,
          serverPid: server.pid,
          mode,
          users,
          receiver,
          concurrency: c,
          flows: notifyFlows[i]!,
          warmup: notifyWarmups[i]!,
          timeCapMs: timeCapS * 1000,
        });
        notify.push(r);
        progress(`${mode} c=${c}: ${r.completed} flows in ${r.wallS.toFixed(1)} s, ${r.failed} failed`);
      }
    }
    results.notify = notify;
    // ---- 8a: request accepted → Web Push received -----------------------------------------------------------
    const webPush: WebPushLevelResult[] = [];
    for (const [i, c] of notifyLevels.entries()) {
      progress(
        `Web Push c=${c}: ${notifyWarmups[i]} warm-up + ${notifyFlows[i]} measured requests, accepted → push received`,
      );
      const r = await runWebPushLevel({
        issuer: server.url,
        users: pushUsers.users,
        receiver: pushReceiver,
        authorization: encodeBasic(BENCH_CLIENT_ID, BENCH_CLIENT_SECRET),
        concurrency: c,
        flows: notifyFlows[i]!,
        warmup: notifyWarmups[i]!,
        timeCapMs: timeCapS * 1000,
      });
      webPush.push(r);
      progress(`Web Push c=${c}: ${r.completed} requests in ${r.wallS.toFixed(1)} s, ${r.failed} failed`);
    }
    results.webPush = webPush;
  } finally {
    await stopChild(server.child);
  }
  results.load = load;
  printLoad(load, results.idleCpuMsPerS);

  // ---- 7: client authentication methods, own server child (the first one is stopped: no CPU shared with it) ----
  if (authMethods) {
    results.authMethods = await runAuthMethods({
      projectDir: PROJECT_DIR,
      tmp,
      concurrency: authConcurrency,
      requestsPerMethod: authRequests,
      rounds: authRounds,
      progress,
    });
  }

  // ---- 9: the device web app, own server child and headless Chromium -------------------------------------------
  if (deviceApp) {
    results.deviceApp = await runDeviceAppBench({ projectDir: PROJECT_DIR, tmp, runs: deviceAppRuns, progress });
  }

  // ---- 3 + 5: in-process stack ------------------------------------------------------------------------------
  progress(
    `in-process stack: ${inprocFlows} recorded approve flows, a deny flow${expiry ? ', an expiry flow (requested_expiry=10, ~10 s)' : ''}; ping and push approve, deny${expiry ? ', expire' : ''}; one ping delivery retried (503, then 204)`,
  );
  const inprocSeed = benchSeed(3, (path) => receiver.url(path));
  const inproc = await runInProcess({
    seed: inprocSeed.seed,
    users: inprocSeed.users,
    flows: inprocFlows,
    expiry,
    notify: { receiver },
    log: say,
  });
  results.awsCalls = inproc.awsCalls;
  results.transitions = inproc.transitions;
  printAwsCalls(inproc.awsCalls);

  // ---- 8b: AWS calls added by notification (own in-process stack, in a child process) -----------------------
  progress('AWS calls of dispatch-notifications per kind of user, without and with the operator hook (child process)');
  results.notifyCalls = [...(await notifyCalls(PROJECT_DIR, false)), ...(await notifyCalls(PROJECT_DIR, true))];

  // ---- 10: AWS calls added by DPoP (own in-process stack per nonce setting, in a child process) ---------------
  progress('AWS calls DPoP adds per token request and userinfo, nonces off and on (child processes)');
  results.dpopCalls = [...(await dpopCalls(PROJECT_DIR, false)), ...(await dpopCalls(PROJECT_DIR, true))];

  // ---- 11: introspection, revocation and registration under load (child process) ------------------------------
  progress('introspection, revocation and registration: requests per second at c=8 (child process)');
  results.lifecycle = await lifecycleLoad(PROJECT_DIR, args.quick ? 40 : 300);

  // ---- 12: the local stack's own cost, by pending requests (own server child) -------------------------------
  if (localCost) {
    results.localCost = await runLocalCost({
      projectDir: PROJECT_DIR,
      tmp,
      pendingLevels: localCostPending,
      requests: localCostRequests,
      users: 1000,
      concurrency: 8,
      polls: args.quick ? 100 : 500,
      lists: args.quick ? 50 : 300,
      ...(args.quick ? { warmup: 300 } : {}),
      progress,
    });
  }

  // ---- 4: bundles -------------------------------------------------------------------------------------------
  const benchDir = join(PROJECT_DIR, '.bench');
  if (!existsSync(benchDir)) trackEmptyDir(benchDir);
  const bundleDir = trackDir(join(benchDir, 'bundles'));
  progress('bundling every function with esbuild');
  const options = bundlingSummary();
  const bundles = await buildBundles(PROJECT_DIR, bundleDir);
  progress(
    `cold imports: ${coldRuns} fresh node processes per bundle as deployed (NODE_OPTIONS=${options.nodeOptions || '(none)'}), and ${coldRuns} with source maps decoded at load`,
  );
  await measureColdImports(bundles, coldRuns, options.nodeOptions);
  results.bundles = { results: bundles, options };
  printBundles(bundles, options);
  await rm(bundleDir, { recursive: true, force: true });

  printTransitions(inproc.transitions, expiry);
  if (results.notify) printNotify(results.notify);
  if (results.authMethods) printAuthMethods(results.authMethods);
  printUserNotifications(results.webPush, results.notifyCalls);
  if (results.deviceApp) say(formatDeviceApp(results.deviceApp));
  if (results.dpopCalls) say(formatDpopCalls(results.dpopCalls));
  if (results.lifecycle) say(formatLifecycleLoad(results.lifecycle));
  if (results.localCost) say(await formatLocalCost(results.localCost));

  say(`\nbench time: ${((performance.now() - began) / 1000).toFixed(1)} s`);
  say('\n== JSON (all figures) ==');
  say(JSON.stringify(toJson(results), null, 2));
  await cleanupAll();
}

// ---- printing -------------------------------------------------------------------------------------------------

const LATENCY_ROWS: [Kind | 'flow', string][] = [
  ['bc-authorize', 'POST /bc-authorize'],
  ['token-pending', 'POST /token (pending poll)'],
  ['token-redeem', 'POST /token (redemption)'],
  ['device-list', 'GET /device/requests'],
  ['device-decide', 'POST /device/requests/{id}'],
  ['flow', 'complete flow'],
];

function printLoad(load: LevelResult[], idleMsPerS: number | undefined): void {
  say(
    section(
      '1. Throughput and latency on the local stack',
      `server = ${SERVER_DESCRIPTION} in a child process,
       ISSUER on 127.0.0.1; load generator in this process.
       One flow = POST /bc-authorize (fetch, client_secret_basic) → device lists GET /device/requests every 20 ms until its
       request shows, then approves (ES256 device assertions) → the RP polls POST /token at once and then ${POLL_INTERVAL} s after each
       answer (the interval the server returned, so never slow_down) until it gets tokens. Worker i plays user i (own device).
       Closed loop: c workers run flows back to back, their starts spread over one poll interval so they do not poll in
       lockstep; flows/s = completed measured flows / wall time. Not measured: a server warm-up (2 × max c flows at max c)
       before the first level, then each level's own warm-up.
       A flow lasts ≥ ${POLL_INTERVAL} s by design (the poll interval), so c=1 measures latency, not capacity. Latencies are
       client-side (fetch round trip incl. the load generator's own queueing, which shares the CPUs at high c).`,
    ),
  );
  say(
    table(
      ['>c', '>flows', '>failed', '>wall s', '>flows/s', '>HTTP req/s', '>req/flow', '>slow_down', 'capped'],
      load.map((r) => [
        r.concurrency,
        r.completed,
        r.failed,
        fmt(r.wallS),
        fmt(r.flowsPerS, 2),
        fmt(r.requestsPerS, 1),
        fmt(r.requestsPerFlow, 2),
        r.slowDowns,
        r.capped ? 'yes' : 'no',
      ]),
    ),
  );
  for (const r of load) for (const e of r.errors) say(`  error at c=${r.concurrency}: ${e}`);
  say('');
  const rows: (string | number)[][] = [];
  for (const [kind, label] of LATENCY_ROWS) {
    for (const r of load) {
      const s = summarize(r.latencies[kind]);
      rows.push([label, r.concurrency, s.n, fmt(s.p50), fmt(s.p99), fmt(s.max)]);
    }
  }
  say(table(['endpoint', '>c', '>n', '>p50 ms', '>p99 ms', '>max ms'], rows));

  say(
    section(
      '2. Server CPU per complete flow',
      `utime+stime of the server child from /proc/<pid>/stat (CLK_TCK ${clkTck()}) across the measured flows only, divided by
       completed flows. The child is the whole local stack (handlers + dynalite + local Step Functions + SNS + HTTP), so this
       is an upper bound for the handlers' own CPU. "cores busy" = server CPU s / wall s. Idle server (2 s, no requests, ${1000 / clkTck()} ms
       tick): ${fmt(idleMsPerS, 1)} ms CPU per s; "net" subtracts that idle rate. "flows/s per core" = 1000 / net CPU ms per flow, the
       CPU-bound ceiling of one core (the server is one Node process: JS runs on one core).`,
    ),
  );
  const net = (r: LevelResult) => (r.serverCpuS * 1000 - (idleMsPerS ?? 0) * r.wallS) / Math.max(1, r.completed);
  say(
    table(
      [
        '>c',
        '>flows',
        '>server CPU s',
        '>CPU ms/flow',
        '>net ms/flow',
        '>cores busy',
        '>flows/s per core',
        '>load-gen CPU ms/flow',
      ],
      load.map((r) => [
        r.concurrency,
        r.completed,
        fmt(r.serverCpuS, 2),
        fmt(r.serverCpuMsPerFlow, 1),
        fmt(net(r), 1),
        fmt(r.serverCores, 2),
        fmt(1000 / net(r), 0),
        fmt((r.loadgenCpuS * 1000) / Math.max(1, r.completed), 1),
      ]),
    ),
  );
}

const SERVICES = ['DynamoDB', 'StepFunctions', 'SNS', 'KMS'];

function printAwsCalls(a: AwsCallsResult): void {
  say(
    section(
      '3. AWS calls per complete poll flow',
      `${a.flows} approve flows at c=1 with the local stack in this process; every DynamoDB / Step Functions / SNS call the
       handlers make is observed (setAwsCallObserver) and filed under the HTTP request it was made for (causal, via an
       AsyncLocalStorage context per request), or, when notify-device (the workflow) or dispatch-notifications (the device
       topic's subscriber; these users' devices poll, so it only reads them: section 8) made it, under that invocation.
       Steady state: the functions have already read the client, the login name's user and the device's key (what they
       keep: docs/architecture.md, "Few round trips"); a cold instance reads each once more (+1 call, +1 depth).
       depth = longest chain of calls each starting after the previous ended (sequential round trips; parallel calls
       count once), median over requests (min–max if they differ). Cross-check by time: ${a.timeWindowAgreement.agree} of the API handlers'
       ${a.timeWindowAgreement.total} calls lie between the start and end (API request log) of the request they are filed under; requests
       overlap (the RP polls while the device answers), so time alone could not file them. ${a.timeWindowAgreement.backgroundInsideRequest} of the
       workflow's and dispatcher's ${a.timeWindowAgreement.background} calls ran while some API request was open (in-process, alongside the request that
       started them).
       Not counted: KMS (the local stack signs with a key file; on AWS with the default signingKeys 'kms' each redemption
       adds 2 KMS Sign calls, one after the other; with 'sealed' none).`,
    ),
  );
  const services = SERVICES.filter((s) =>
    a.categories.some((c) => Object.keys(c.callsPerRequest).some((k) => k.startsWith(`${s}.`))),
  );
  const opsOf = (c: AwsCallsResult['categories'][number], service: string) =>
    Object.entries(c.callsPerRequest)
      .filter(([k]) => k.startsWith(`${service}.`))
      .map(([k, v]) => `${k.slice(service.length + 1)}×${Number.isInteger(v) ? v : v.toFixed(2)}`)
      .join(', ') || '–';
  say(
    table(
      ['endpoint', '>per flow', ...services, '>calls/req', '>depth'],
      a.categories.map((c) => [
        c.category,
        fmt(c.perFlow, 2),
        ...services.map((s) => opsOf(c, s)),
        fmt(c.totalPerRequest, 2),
        c.depth.min === c.depth.max ? String(c.depth.median) : `${c.depth.median} (${c.depth.min}–${c.depth.max})`,
      ]),
    ),
  );
  say('');
  const toTopic = toDeviceTopic(a);
  say(
    table(
      ['per complete flow', ...services.map((s) => `>${s}`), '>total calls', '>sequential round trips'],
      [
        [
          'calls',
          ...services.map((s) => fmt(a.perFlowByService[s] ?? 0, 2)),
          fmt(a.perFlowByService.total ?? 0, 2),
          fmt(a.sequentialPerFlow, 2),
        ],
        [
          'to the device topic',
          ...services.map((s) => fmt(toTopic.byService[s] ?? 0, 2)),
          fmt(toTopic.calls, 2),
          fmt(toTopic.sequential, 2),
        ],
      ],
    ),
  );
  say('  (sequential round trips = Σ over endpoints of depth × requests per flow; "to the device topic" leaves out');
  say("   dispatch-notifications, whose calls depend on the user's channels: section 8)");
}

/** The flow's calls up to the device topic: without the dispatcher's, which depend on the user's channels. */
function toDeviceTopic(a: AwsCallsResult): { calls: number; sequential: number; byService: Record<string, number> } {
  const kept = a.categories.filter((c) => c.category !== 'device topic (dispatch-notifications)');
  const byService: Record<string, number> = {};
  for (const c of kept)
    for (const [op, n] of Object.entries(c.callsPerRequest)) {
      const service = op.slice(0, op.indexOf('.'));
      byService[service] = (byService[service] ?? 0) + n * c.perFlow;
    }
  return {
    calls: kept.reduce((n, c) => n + c.totalPerRequest * c.perFlow, 0),
    sequential: kept.reduce((n, c) => n + c.depth.median * c.perFlow, 0),
    byService,
  };
}

const SDK_SHORT: Record<string, string> = {
  '@aws-sdk/client-dynamodb': 'ddb',
  '@aws-sdk/lib-dynamodb': 'lib-ddb',
  '@aws-sdk/client-kms': 'kms',
  '@aws-sdk/client-sfn': 'sfn',
  '@aws-sdk/client-sns': 'sns',
  '@aws-sdk/client-sesv2': 'ses',
  '@aws-sdk/client-secrets-manager': 'secrets',
};

function printBundles(bundles: BundleResult[], options: BundlingSummary): void {
  const runs = bundles[0]?.importMs.length ?? 0;
  const file = options.format === 'esm' ? 'index.mjs' : 'index.js';
  const over = bundles.filter((b) => coldSummary(b.importMs).median > options.budgetMs);
  say(
    section(
      '4. Lambda bundles: size and cold module-load time',
      `esbuild JS API with the construct's bundling options (infra/bundling.ts, imported): ${options.format === 'esm' ? 'ESM' : 'CommonJS'}, target
       ${options.target}, minify ${options.minify}, sourcemap ${options.sourcemap} (sourcesContent ${options.sourcesContent}), mainFields ${options.mainFields.join(',')},
       external ${options.external.join(',') || 'none: the AWS SDK is bundled'}; the device app injected into device-app as deployed; into
       .bench/bundles/ (removed afterwards). gzip = gzip -9 of ${file}. Cold load = performance.now() around loading the bundle
       the way the Lambda Node.js runtime does (${options.format === 'esm' ? '`await import()`' : '`require()` of a CommonJS index.js'}) in a fresh node ${process.version} process (${runs} run${runs === 1 ? '' : 's'}
       each, interleaved, after one unmeasured round), with NODE_OPTIONS=${options.nodeOptions || '(none)'} as the construct deploys it;
       "cpu" = that load's CPU time (user + system), steadier than wall time on a busy machine. "maps at load" = the load
       with --enable-source-maps (Node decoding the .map as it loads; deployed, a stack is mapped only when an error is logged). "ready" = process start to handler loaded. "!" marks a p50 over the ${options.budgetMs} ms budget.
       AWS SDK bundled: * = reached only through \`await import()\`, so evaluated on first use, not at load; "not bundled" =
       an optional require esbuild cannot resolve (web-push's supports-color), which fails and is caught at run time.`,
    ),
  );
  say(
    table(
      [
        'function',
        `>${file}`,
        '>gzip',
        '>.map',
        '>load p50 ms',
        '>min ms',
        '>cpu p50',
        '>maps at load p50',
        '>ready p50 ms',
        `≤${options.budgetMs}`,
        'AWS SDK bundled',
      ],
      bundles.map((b) => {
        const d = coldSummary(b.importMs);
        return [
          b.name,
          bytes(b.bytes),
          bytes(b.gzipBytes),
          b.mapBytes ? bytes(b.mapBytes) : '–',
          fmt(d.median),
          fmt(d.min),
          fmt(coldSummary(b.importCpuMs).median),
          b.importMsMapsAtLoad.length ? fmt(coldSummary(b.importMsMapsAtLoad).median) : '–',
          fmt(coldSummary(b.readyMs).median),
          d.median > options.budgetMs ? '!' : 'ok',
          [
            ...b.sdkPackages.map(
              (e) => (SDK_SHORT[e] ?? e.replace('@aws-sdk/', '')) + (b.lazySdkPackages.includes(e) ? '*' : ''),
            ),
            ...b.externals.map((e) => `(not bundled: ${e})`),
          ].join(' ') || '–',
        ];
      }),
    ),
  );
  say(
    over.length
      ? `  over ${options.budgetMs} ms (p50): ${over.map((b) => b.name).join(', ')}`
      : `  every function loads in ${options.budgetMs} ms or less (p50)`,
  );
}

function printTransitions(t: TransitionsResult, withExpiry: boolean): void {
  say(
    section(
      '5. Step Functions state transitions per flow',
      `StateEntered and StateRetried events in the local Step Functions history of one execution per row (same ASL as
       deployed). Billing (aws.amazon.com/step-functions/pricing, Standard workflows): "Step Functions counts a state transition
       each time a step of your workflow is executed", retries included: each retry is charged as one more transition. So
       billed = states entered + retries; cost at $0.025 per 1,000 transitions (us-east-1) = billed × $25 per million flows.
       A ping/push delivery retried after a 503 stays in Deliver (a Retry of that Task state), so it adds 1 per retry.${
         withExpiry
           ? ''
           : `
       Expiry flows skipped (--no-expiry/--quick): per the ASL an expired poll request enters AwaitDecision, Expired (2);
       ping/push AwaitDecision, Deliver (2).`
       }`,
    ),
  );
  say(
    table(
      ['mode', 'flow', 'states entered', '>retries', '>billed transitions', '>$ per million flows'],
      t.map((r) => [r.mode, r.flow, r.states.join(' → '), r.retries, r.transitions, fmt(r.costPerMillionFlows, 2)]),
    ),
  );
}

function printNotify(n: NotifyLevelResult[]): void {
  say(
    section(
      '6. Approval-to-notification latency, ping and push',
      `same server child as section 1 (${inMemory ? 'in-memory' : 'start.ts, on-disk'}), after its load levels; a loopback notification receiver in
       this process answers 204. One flow = POST /bc-authorize as bench-ping or bench-push with a fresh client_notification_token
       → the device lists until its request shows and approves → the notification arrives (bearer token and body checked)
       → a ping client redeems at POST /token. approve → notification = from the approve POST being sent (device assertion
       already signed) to the notification body received, both on this process's clock: device-decide → SendTaskSuccess →
       Deliver → enqueue-delivery → SNS → deliver → POST. approve → tokens = until the client holds tokens (push: the same
       moment; ping: + the redemption round trip). Closed loop at c workers (worker i = user i), after 2 × c warm-up flows.
       Includes the load generator's own queueing (it shares the CPUs with the server child). "server cores" = the child's
       CPU s / wall s over the measured flows: near 1.0 the one-process server is saturated and latency is mostly queueing.`,
    ),
  );
  say(
    table(
      [
        'mode',
        '>c',
        '>flows',
        '>failed',
        '>wall s',
        '>flows/s',
        '>server cores',
        '>approve→notif p50',
        '>p99',
        '>max',
        '>approve→tokens p50',
        '>p99',
        '>decide POST p50',
      ],
      n.map((r) => {
        const a = summarize(r.approveToNotification);
        const tk = summarize(r.approveToTokens);
        return [
          r.mode,
          r.concurrency,
          r.completed,
          r.failed,
          fmt(r.wallS),
          fmt(r.completed / r.wallS, 1),
          fmt((r.serverCpuS ?? Number.NaN) / r.wallS, 2),
          fmt(a.p50),
          fmt(a.p99),
          fmt(a.max),
          fmt(tk.p50),
          fmt(tk.p99),
          fmt(summarize(r.deviceDecide).p50),
        ];
      }),
    ),
  );
  say('  (ms; p99 is nearest-rank: with n flows it is the ⌈0.99 n⌉-th smallest)');
  for (const r of n) for (const e of r.errors) say(`  error in ${r.mode} at c=${r.concurrency}: ${e}`);
}

function printAuthMethods(a: AuthMethodsResult): void {
  const basic = a.rows.find((r) => r.id === 'client_secret_basic');
  say(
    section(
      '7. Cost of each client authentication method at POST /bc-authorize',
      `own server child: \`node scripts/bench/auth-methods.ts\` = startLocalStack in memory (dynalite in memory, executions
       in memory: on disk, executions.json is rewritten whole as executions pile up, a cost that grows through the section
       and is not the method's) plus its HTTPS listener asking for client certificates (truststore = a test CA + the
       self-signed certificate; TLS terminated by the child, as API Gateway would for an mTLS domain). One client per
       method; ${a.concurrency} users. Each request is a real backchannel request (login_hint of a seeded user, binding_message;
       rate limits lifted): a request row, a workflow started, the device notified. Closed loop at c=${a.concurrency}, one keep-alive
       connection per worker (node:http/https agents, TLS handshakes done before measuring by one GET per connection).
       ${a.requestsPerMethod} measured requests per method in ${a.rounds} round${a.rounds === 1 ? '' : 's'} (slices of ${Math.ceil(a.requestsPerMethod / a.rounds)}, method order rotated each round), after
       ${a.warmupPerMethod} unmeasured requests per method. Credentials (assertions with a fresh jti each, exp 5 min; request objects)
       are built before each slice, outside the measured window: "client build" is that client-side cost, not server
       cost. rps = measured requests / wall time of the slices; latency = client-side round trip (with the server
       saturated it is mostly queueing: ≈ c / rps). server CPU = utime+stime of the child over the measured windows /
       requests: the whole local stack (dynalite, Step Functions, SNS, TLS), so differences between rows are the
       method's own cost (the workflow tail of one slice spills into the next, equal whatever the method). Idle server
       after the warm-up: ${fmt(a.idleCpuMsPerS, 1)} ms CPU per s.`,
    ),
  );
  say(
    table(
      [
        'method',
        'transport',
        '>n',
        '>failed',
        '>rps',
        '>p50 ms',
        '>p99 ms',
        '>server CPU ms/req',
        '>Δ vs basic',
        '>load-gen CPU ms/req',
        '>client build ms',
      ],
      a.rows.map((r) => {
        const s = summarize(r.latencies);
        return [
          r.label,
          r.transport === 'mtls' ? 'HTTPS+cert' : r.transport === 'https' ? 'HTTPS' : 'HTTP',
          r.requests,
          r.failed,
          fmt(r.requestsPerS, 0),
          fmt(s.p50),
          fmt(s.p99),
          fmt(r.serverCpuMsPerRequest, 2),
          basic && r !== basic
            ? `${r.serverCpuMsPerRequest >= basic.serverCpuMsPerRequest ? '+' : ''}${fmt(r.serverCpuMsPerRequest - basic.serverCpuMsPerRequest, 2)}`
            : '',
          fmt(r.loadgenCpuMsPerRequest, 2),
          fmt(r.buildMsPerRequest, 2),
        ];
      }),
    ),
  );
  for (const r of a.rows) for (const e of r.errors) say(`  error (${r.label}): ${e}`);
}

function printUserNotifications(webPush: WebPushLevelResult[] | undefined, calls: NotifyCallsRow[] | undefined): void {
  say(
    section(
      '8. User notifications: request accepted → Web Push received; AWS calls added per flow',
      `(a) same server child as section 1, users whose one device has a Web Push subscription at a loopback push service in
       this process (local/web-push-receiver.ts: answers 201 and decrypts the RFC 8291 payload as the browser would). One
       flow = POST /bc-authorize (poll client) → the workflow's notify-device publishes to the device topic → the
       dispatch-notifications subscriber reads the user's devices, claims the send in its ledger, signs a VAPID JWT (cached
       per push service), encrypts and POSTs → the push arrives; then the device denies (ending the execution). Latency =
       this process's performance.now() from the bc-authorize answer received (and from the request sent) to the push body
       received. Closed loop at c workers (worker i = user i) after the warm-up flows; p99 is nearest-rank.
       (b) \`node scripts/bench/notify-calls.ts\`: its own in-process stack with SMS and e-mail on (and, second run, the operator
       hook), one request per kind of user, every AWS call the dispatcher makes for it (causal attribution). On AWS add, once
       per container, KMS GetPublicKey + one KMS Sign per push-service origin every 11 hours (VAPID) and, with the hook, one
       Secrets Manager GetSecretValue every 5 minutes.`,
    ),
  );
  if (webPush) {
    say(
      table(
        ['>c', '>requests', '>failed', '>wall s', '>accepted→push p50', '>p99', '>max', '>sent→push p50', '>p99'],
        webPush.map((r) => {
          const a = summarize(r.acceptedToPush);
          const s = summarize(r.sentToPush);
          return [
            r.concurrency,
            r.completed,
            r.failed,
            fmt(r.wallS),
            fmt(a.p50),
            fmt(a.p99),
            fmt(a.max),
            fmt(s.p50),
            fmt(s.p99),
          ];
        }),
      ),
    );
    say('  (ms)');
    for (const r of webPush) for (const e of r.errors) say(`  error in Web Push at c=${r.concurrency}: ${e}`);
  }
  if (calls) {
    say('');
    say(
      table(
        ['user', 'hook', '>AWS calls', '>depth', 'calls'],
        calls.map((r) => [
          r.scenario,
          r.webhook ? 'yes' : 'no',
          r.total,
          r.depth,
          Object.entries(r.calls)
            .map(([op, n]) => `${op} ×${n}`)
            .join(', '),
        ]),
      ),
    );
  }
}

function toJson(r: Results): unknown {
  const lat = (values: number[]) => {
    const s = summarize(values);
    return { n: s.n, p50: round(s.p50), p99: round(s.p99), max: round(s.max), mean: round(s.mean) };
  };
  return {
    machine: r.machine,
    settings: {
      server: inMemory ? 'in-memory' : 'start.ts on-disk',
      pollIntervalS: POLL_INTERVAL,
      logLevel: 'warn',
      serverEnv: BENCH_SERVER_ENV,
      levels,
      flows: flowCounts,
      warmup: warmups,
      notifyLevels,
      notifyFlows,
      notifyWarmup: notifyWarmups,
      timeCapS,
      authMethods: authMethods
        ? { requestsPerMethod: authRequests, concurrency: authConcurrency, rounds: authRounds }
        : false,
      quick: args.quick,
    },
    throughput: r.load?.map((l) => ({
      concurrency: l.concurrency,
      flowsTarget: l.target,
      flowsCompleted: l.completed,
      flowsFailed: l.failed,
      capped: l.capped,
      wallS: round(l.wallS),
      flowsPerS: round(l.flowsPerS),
      httpRequestsPerS: round(l.requestsPerS),
      requestsPerFlow: round(l.requestsPerFlow),
      slowDowns: l.slowDowns,
    })),
    latencyMs: Object.fromEntries(
      (r.load ?? []).map((l) => [
        `c${l.concurrency}`,
        Object.fromEntries(LATENCY_ROWS.map(([kind]) => [kind, lat(l.latencies[kind])])),
      ]),
    ),
    serverIdleCpuMsPerS: r.idleCpuMsPerS === undefined ? undefined : round(r.idleCpuMsPerS),
    serverCpu: r.load?.map((l) => ({
      concurrency: l.concurrency,
      serverCpuS: round(l.serverCpuS, 3),
      cpuMsPerFlow: round(l.serverCpuMsPerFlow),
      netCpuMsPerFlow: round((l.serverCpuS * 1000 - (r.idleCpuMsPerS ?? 0) * l.wallS) / Math.max(1, l.completed)),
      coresBusy: round(l.serverCores),
      loadgenCpuMsPerFlow: round((l.loadgenCpuS * 1000) / Math.max(1, l.completed)),
    })),
    awsCallsPerFlow: r.awsCalls && {
      flows: r.awsCalls.flows,
      byEndpoint: r.awsCalls.categories.map((c) => ({
        endpoint: c.category,
        requestsPerFlow: round(c.perFlow),
        callsPerRequest: Object.fromEntries(Object.entries(c.callsPerRequest).map(([k, v]) => [k, round(v)])),
        totalPerRequest: round(c.totalPerRequest),
        criticalPathDepth: c.depth,
      })),
      byService: Object.fromEntries(Object.entries(r.awsCalls.perFlowByService).map(([k, v]) => [k, round(v)])),
      sequentialRoundTripsPerFlow: round(r.awsCalls.sequentialPerFlow),
      toDeviceTopic: (({ calls, sequential }) => ({ calls: round(calls), sequentialRoundTrips: round(sequential) }))(
        toDeviceTopic(r.awsCalls),
      ),
      timeWindowAgreement: r.awsCalls.timeWindowAgreement,
    },
    bundles: r.bundles?.results.map((b) => ({
      function: b.name,
      bytes: b.bytes,
      gzipBytes: b.gzipBytes,
      mapBytes: b.mapBytes,
      coldImportMs: {
        median: round(coldSummary(b.importMs).median),
        min: round(coldSummary(b.importMs).min),
        runs: b.importMs.map((v) => round(v)),
      },
      coldImportCpuMs: { median: round(coldSummary(b.importCpuMs).median) },
      coldImportSourceMapsAtLoadMs: {
        median: round(coldSummary(b.importMsMapsAtLoad).median),
        min: round(coldSummary(b.importMsMapsAtLoad).min),
      },
      overBudget: coldSummary(b.importMs).median > r.bundles!.options.budgetMs,
      sdkPackages: b.sdkPackages,
      sdkPackagesLoadedOnFirstUse: b.lazySdkPackages,
      externals: b.externals,
      processToReadyMs: { median: round(coldSummary(b.readyMs).median) },
    })),
    bundling: r.bundles && { ...r.bundles.options },
    stateTransitions: r.transitions?.map((t) => ({
      mode: t.mode,
      flow: t.flow,
      states: t.states,
      retries: t.retries,
      transitions: t.transitions,
      usdPerMillionFlows: t.costPerMillionFlows,
    })),
    approvalToNotificationMs: r.notify?.map((n) => ({
      mode: n.mode,
      concurrency: n.concurrency,
      flowsTarget: n.target,
      flowsCompleted: n.completed,
      flowsFailed: n.failed,
      capped: n.capped,
      wallS: round(n.wallS),
      serverCoresBusy: n.serverCpuS === undefined ? undefined : round(n.serverCpuS / n.wallS),
      approveToNotification: lat(n.approveToNotification),
      approveToTokens: lat(n.approveToTokens),
      deviceDecide: lat(n.deviceDecide),
      ...(n.mode === 'ping' ? { pingRedeem: lat(n.redeem) } : {}),
    })),
    webPushMs: r.webPush?.map((w) => ({
      concurrency: w.concurrency,
      requests: w.completed,
      failed: w.failed,
      wallS: round(w.wallS),
      acceptedToPush: lat(w.acceptedToPush),
      sentToPush: lat(w.sentToPush),
    })),
    notificationAwsCalls: r.notifyCalls,
    dpopAwsCalls: r.dpopCalls,
    deviceApp: r.deviceApp,
    localCost: r.localCost,
    clientAuthMethods: r.authMethods && {
      server: 'in-memory local stack in a child process, HTTPS listener with client certificates',
      concurrency: r.authMethods.concurrency,
      requestsPerMethod: r.authMethods.requestsPerMethod,
      rounds: r.authMethods.rounds,
      warmupPerMethod: r.authMethods.warmupPerMethod,
      setupS: round(r.authMethods.setupS),
      serverIdleCpuMsPerS: round(r.authMethods.idleCpuMsPerS),
      methods: r.authMethods.rows.map((m) => ({
        method: m.id,
        label: m.label,
        transport: m.transport,
        requests: m.requests,
        failed: m.failed,
        wallS: round(m.wallS),
        requestsPerS: round(m.requestsPerS, 1),
        latencyMs: lat(m.latencies),
        serverCpuMsPerRequest: round(m.serverCpuMsPerRequest, 3),
        loadgenCpuMsPerRequest: round(m.loadgenCpuMsPerRequest, 3),
        clientBuildMsPerRequest: round(m.buildMsPerRequest, 3),
        ...(m.errors.length ? { errors: m.errors } : {}),
      })),
    },
  };
}

main().catch(async (err: unknown) => {
  console.error('\nbench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
  await cleanupAll();
  process.exit(1);
});
