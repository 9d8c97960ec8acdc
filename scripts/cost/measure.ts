// The measured half of `npm run cost`: real CIBA flows (poll, ping, push × approved, denied, expired) on the local
// stack in this process, one at a time, each recorded from its first request until everything it set off has
// finished (its executions ended, SNS drained, no function running). Everything billed is counted here, none of it
// assumed:
//
// - API requests: the local API's request log (startLocalStack's onRequest).
// - Lambda invocations and their durations: each handler module's middy handler (the very object the local stack
//   invokes) gets before/after/onError hooks that time the invocation and open an AsyncLocalStorage context for it.
//   HTTP handlers, workflow tasks and topic subscribers alike. Durations are this machine's, in process.
// - AWS calls per function: functions/adapters/aws.ts's call observer, filed under the invocation's context (the
//   causal attribution of scripts/bench/inprocess.ts, with one context per Lambda invocation instead of per request).
// - DynamoDB request units: dynalite's own action functions are wrapped (before dynalite is loaded) to see every
//   request the table serves, including the workflows' direct dynamodb:updateItem integrations, with the items
//   before and after each write; units follow DynamoDB's rules (pricing.ts), global secondary index writes included.
// - State transitions: each new execution's history from the local Step Functions (states entered + retries), and
//   its error events by their AWS names (GetExecutionHistory on the local endpoint) for the state machine's log.
// - SNS: the local topics' messages and the outbox (SNS mobile push, SMS); SQS: the dead-letter queue.
// - Signatures: node:crypto's sign is observed (syncBuiltinESMExports, so functions/adapters/keys.ts's own import
//   sees the observer) and only signatures with the stack's signing keys or VAPID key are counted; behaviour unchanged.
// - Log lines: what the functions write to stdout/stderr inside an invocation (functions/runtime/log.ts, EMF metrics)
//   is counted and kept off the terminal.
import { AsyncLocalStorage } from 'node:async_hooks';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { dirname, join } from 'node:path';
import { GetExecutionHistoryCommand, SFNClient, type HistoryEvent as SfnHistoryEvent } from '@aws-sdk/client-sfn';
import type { AwsCall, LocalStack, RequestLogEntry } from '../../local/stack.ts';
import { setAwsCallObserver } from '../../functions/adapters/aws.ts';
import { ROUTES, TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../../functions/routes.ts';
import { SETTINGS } from '../../functions/settings.ts';
import {
  BENCH_SERVER_ENV,
  CIBA_GRANT,
  benchSeed,
  deviceFor,
  postForm,
  runFlow,
  sleep,
  type BenchUser,
} from '../bench/flow.ts';
import { BenchReceiver, runNotifiedFlow } from '../bench/notify.ts';
import { freePort } from '../bench/child.ts';
import { readUnits, writeUnits } from './pricing.ts';
import type { TemplateFacts } from './template.ts';

export const MODES = ['poll', 'ping', 'push'] as const;
export const OUTCOMES = ['approved', 'denied', 'expired'] as const;
export type Mode = (typeof MODES)[number];
export type Outcome = (typeof OUTCOMES)[number];
export type FlowSpec = { mode: Mode; outcome: Outcome };
export type FunctionKind = 'http' | 'workflow' | 'topic';

/** One Lambda invocation as recorded. */
type Invocation = {
  fn: string;
  kind: FunctionKind;
  start: number;
  end?: number;
  calls: AwsCall[];
  logLines: number;
  logBytes: number;
  emfLines: number;
  emfBytes: number;
};

type DynamoOp = {
  op: string;
  readUnits: number;
  writeUnits: number;
  /** Write request units of the table's global secondary indexes. */
  indexWriteUnits: number;
  conditionFailed: boolean;
  error?: string;
};

type Sign = { key: 'rsa' | 'ec' | 'vapid' };

/** What one flow's window saw. */
type Window = {
  invocations: Invocation[];
  requests: RequestLogEntry[];
  dynamo: DynamoOp[];
  signs: Sign[];
  orphanCalls: AwsCall[];
};

export type FunctionUse = {
  fn: string;
  kind: FunctionKind;
  /** Invocations per flow. */
  invocations: number;
  /** Median measured duration of one invocation (ms), and the billed duration per flow (Σ ceil(ms), averaged). */
  medianMs: number;
  billedMsPerFlow: number;
  /** `Service.Operation` → calls per flow. */
  calls: Record<string, number>;
  logLinesPerFlow: number;
  logBytesPerFlow: number;
  emfLinesPerFlow: number;
  emfBytesPerFlow: number;
};

/** Per-flow averages over the runs of one mode × outcome. */
export type FlowMeasure = FlowSpec & {
  runs: number;
  /** API requests per flow by `METHOD /route status`, and in total. */
  apiRequests: Record<string, number>;
  apiRequestsTotal: number;
  /** Token endpoint answers `authorization_pending` per flow (the RP's polling assumption, see docs/cost.md). */
  pendingPolls: number;
  functions: FunctionUse[];
  /** HTTP-handler invocations per flow (cross-check: one per API request). */
  httpInvocations: number;
  dynamodb: {
    requests: Record<string, number>;
    readUnits: number;
    writeUnits: number;
    indexWriteUnits: number;
    conditionalCheckFailures: number;
  };
  stepFunctions: {
    executions: number;
    statesEntered: number;
    retries: number;
    /** Billed: states entered + retries. */
    transitions: number;
    /** Each execution's path (first run). */
    paths: string[][];
    /** Events the state machines' log level records (AWS event names), per flow, and their rendered bytes. */
    loggedEvents: Record<string, number>;
    logBytes: number;
    /** Execution ARNs of every run (for cross-checks against the local history). */
    executionArns: string[];
  };
  sns: {
    /** Publish requests per flow (topic messages + direct publishes) and their 64 KB chunks. */
    topicPublishes: number;
    directPublishes: number;
    publishChunks: number;
    /** Topic deliveries by subscription protocol (from the template), per flow. */
    deliveries: Record<string, number>;
    /** Direct publishes by channel (sns = mobile push, sms). */
    direct: Record<string, number>;
  };
  sqs: { requests: number };
  /** Signatures per flow with each key (rsa, ec: token signing keys; vapid: Web Push). */
  signatures: Record<string, number>;
  /** AWS calls per flow made outside any invocation (should be 0). */
  unattributedCalls: number;
  /** When each run was recorded (epoch ms, from its first request until it had settled). */
  windows: { start: number; end: number }[];
};

export type Measurement = {
  /** The settings the measured stack ran with (LOG_LEVEL, CIBA_METRICS, …) and the flows' parameters. */
  settings: Record<string, string>;
  runs: number;
  expirySeconds: number;
  flows: FlowMeasure[];
  /** Wall time of the measurement (s). */
  wallSeconds: number;
};

// ---- Instrumentation (installed once per process) ---------------------------------------------------------

const als = new AsyncLocalStorage<Invocation>();
let window: Window | undefined;
const inFlight = new Set<Invocation>();
const activeInvocation = (): Invocation | undefined => {
  const inv = als.getStore();
  // The store set in a before hook also reaches the caller's continuation after the handler returned: only an
  // invocation still running owns what happens.
  return inv && inv.end === undefined ? inv : undefined;
};

const require = createRequire(import.meta.url);
const dynaliteDir = dirname(require.resolve('dynalite'));
let dynaliteInstrumented = false;

type Item = Record<string, Record<string, unknown>>;
type DynaliteDb = {
  itemSize(item: Item): number;
  checkConditional(data: unknown, existing: Item | undefined): unknown;
  addConsumedCapacity(data: unknown, isRead: boolean, a?: Item, b?: Item): unknown;
};

/**
 * Wraps dynalite's actions before dynalite/index.js loads them (it requires each action once, at load). Each wrapped
 * action asks dynalite for ConsumedCapacity (and removes it from the answer unless the caller asked), and the db's
 * checkConditional/addConsumedCapacity report the item before and after each write.
 */
function instrumentDynalite(facts: TemplateFacts): void {
  if (dynaliteInstrumented) return;
  const indexFile = join(dynaliteDir, 'index.js');
  if (require.cache[indexFile]) throw new Error('dynalite was loaded before the cost model could observe it');
  dynaliteInstrumented = true;
  const db = require(join(dynaliteDir, 'db', 'index.js')) as DynaliteDb;
  const seen = new WeakMap<object, { old?: Item; next?: Item; read?: Item; sawRead?: boolean }>();
  const originalCheck = db.checkConditional;
  db.checkConditional = function (data, existing) {
    if (data && typeof data === 'object') seen.set(data, { ...seen.get(data), old: existing });
    return originalCheck.call(this, data, existing);
  };
  const originalAdd = db.addConsumedCapacity;
  db.addConsumedCapacity = function (data, isRead, a, b) {
    if (data && typeof data === 'object') {
      const s = seen.get(data) ?? {};
      // getItem: (data, true, item); putItem: (data, false, existing, new); updateItem: (data, false, old, new);
      // deleteItem: (data, false, existing).
      if (isRead) seen.set(data, { ...s, read: a, sawRead: true });
      else seen.set(data, { ...s, old: a, next: b });
    }
    return originalAdd.call(this, data, isRead, a, b);
  };
  const size = (item: Item | undefined) => (item ? db.itemSize(item) : 0);
  // A global secondary index entry: its projected attributes, the index and table keys, plus 100 bytes.
  const indexWrites = (old: Item | undefined, next: Item | undefined): number => {
    let units = 0;
    for (const index of facts.table.indexes) {
      const inIndex = (item: Item | undefined) => !!item && index.keys.every((k) => item[k] !== undefined);
      const projected = (item: Item): Item => {
        if (index.projection === 'ALL') return item;
        const keep = new Set([...index.keys, ...facts.table.keys, ...index.include]);
        return Object.fromEntries(Object.entries(item).filter(([k]) => keep.has(k)));
      };
      const entry = (item: Item) => size(projected(item)) + 100;
      const keyOf = (item: Item) => JSON.stringify(index.keys.map((k) => item[k]));
      const was = inIndex(old);
      const is = inIndex(next);
      if (!was && is) units += writeUnits(entry(next!));
      else if (was && !is) units += writeUnits(entry(old!));
      else if (was && is) {
        if (keyOf(old!) !== keyOf(next!)) units += writeUnits(entry(old!)) + writeUnits(entry(next!));
        else if (JSON.stringify(projected(old!)) !== JSON.stringify(projected(next!)))
          units += writeUnits(Math.max(entry(old!), entry(next!)));
      }
    }
    return units;
  };
  type Data = Record<string, unknown> & { ReturnConsumedCapacity?: string; ConsistentRead?: boolean };
  type DynaliteError = { name?: string; message?: string; body?: { __type?: string } };
  type Callback = (err: DynaliteError | null, res?: Record<string, unknown>) => void;
  type Action = (store: unknown, data: Data, cb: Callback) => void;
  const actionsDir = join(dynaliteDir, 'actions');
  const files = readdirSync(actionsDir).filter((f) => f.endsWith('.js'));
  // Load every original first, so actions that use others (batchGetItem → getItem) keep the originals inside.
  const originals = new Map(files.map((f) => [f, require(join(actionsDir, f)) as Action]));
  for (const [file, original] of originals) {
    const op = file.replace(/\.js$/, '').replace(/^./, (c) => c.toUpperCase());
    const wrapped: Action = (store, data, cb) => {
      const asked = data.ReturnConsumedCapacity;
      const added = asked === undefined || asked === 'NONE';
      if (added) data.ReturnConsumedCapacity = 'TOTAL';
      original(store, data, (err, res) => {
        try {
          if (window) window.dynamo.push(dynamoOp(op, data, err, res));
        } finally {
          if (added && res) delete res.ConsumedCapacity;
          cb(err, res);
        }
      });
    };
    require.cache[join(actionsDir, file)]!.exports = wrapped;
  }
  const dynamoOp = (op: string, data: Data, err: DynaliteError | null, res?: Record<string, unknown>): DynamoOp => {
    const errorType = err ? (err.body?.__type?.split('#').pop() ?? err.name ?? 'Error') : undefined;
    const s = seen.get(data) ?? {};
    const capacity = (res?.ConsumedCapacity ?? []) as { CapacityUnits?: number } | { CapacityUnits?: number }[];
    const reported = (Array.isArray(capacity) ? capacity : [capacity]).reduce((n, c) => n + (c?.CapacityUnits ?? 0), 0);
    const conditionFailed = errorType === 'ConditionalCheckFailedException';
    const base = { op, readUnits: 0, writeUnits: 0, indexWriteUnits: 0, conditionFailed };
    if (errorType && !conditionFailed) return { ...base, error: `${errorType}: ${err?.message ?? ''}` };
    switch (op) {
      case 'GetItem':
        return { ...base, readUnits: readUnits(size(s.read), { consistent: data.ConsistentRead === true }) };
      case 'Query':
      case 'Scan':
      case 'BatchGetItem':
        return { ...base, readUnits: reported };
      case 'PutItem':
      case 'UpdateItem':
      case 'DeleteItem':
        // A failed condition still consumes write units for the existing item's size (at least 1).
        if (conditionFailed) return { ...base, writeUnits: writeUnits(size(s.old)) };
        return {
          ...base,
          writeUnits: writeUnits(Math.max(size(s.old), size(s.next))),
          indexWriteUnits: indexWrites(s.old, op === 'DeleteItem' ? undefined : s.next),
        };
      case 'BatchWriteItem':
        return { ...base, writeUnits: reported };
      default:
        return base; // table management: not billed per request
    }
  };
}

/** Hooks every handler's middy object (the module instance the local stack imports). */
async function instrumentHandlers(): Promise<void> {
  const kinds = new Map<string, FunctionKind>();
  for (const r of ROUTES) kinds.set(r.name, 'http');
  for (const w of WORKFLOW_FUNCTIONS) kinds.set(w.name, 'workflow');
  for (const t of TOPIC_SUBSCRIBERS) kinds.set(t.name, 'topic');
  type Hook = (request: object) => void;
  type Middy = { before(h: Hook): unknown; after(h: Hook): unknown; onError(h: Hook): unknown };
  for (const [fn, kind] of kinds) {
    const mod = (await import(new URL(`../../functions/handlers/${fn}.ts`, import.meta.url).href)) as {
      handler?: Partial<Middy>;
    };
    const handler = mod.handler;
    if (!handler || typeof handler.before !== 'function' || typeof handler.after !== 'function')
      throw new Error(
        `functions/handlers/${fn}.ts: the handler is not a middy handler; its invocations cannot be timed`,
      );
    if (hooked.has(handler)) continue;
    hooked.add(handler);
    const byRequest = new WeakMap<object, Invocation>();
    const finish: Hook = (request) => {
      const inv = byRequest.get(request);
      if (!inv || inv.end !== undefined) return;
      inv.end = performance.now();
      inFlight.delete(inv);
    };
    handler.before((request) => {
      const inv: Invocation = {
        fn,
        kind,
        start: performance.now(),
        calls: [],
        logLines: 0,
        logBytes: 0,
        emfLines: 0,
        emfBytes: 0,
      };
      byRequest.set(request, inv);
      inFlight.add(inv);
      window?.invocations.push(inv);
      als.enterWith(inv);
    });
    handler.after(finish);
    handler.onError!(finish);
  }
}
const hooked = new WeakSet<object>();

/** Log lines written inside an invocation are counted (and kept off the terminal); others pass through. */
function captureOutput(): () => void {
  const streams = [process.stdout, process.stderr] as const;
  const originals = streams.map((s) => s.write);
  streams.forEach((stream, i) => {
    const original = originals[i]!;
    stream.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const inv = activeInvocation();
      if (!inv) return (original as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      for (const line of text.split('\n')) {
        if (line === '') continue;
        const bytes = Buffer.byteLength(line);
        if (line.startsWith('{"_aws"')) {
          inv.emfLines++;
          inv.emfBytes += bytes;
        } else {
          inv.logLines++;
          inv.logBytes += bytes;
        }
      }
      const callback = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      if (callback) queueMicrotask(callback);
      return true;
    } as typeof stream.write;
  });
  return () =>
    streams.forEach((s, i) => {
      s.write = originals[i]!;
    });
}

/** Observes node:crypto's sign (also through ESM imports) and counts signatures made with the stack's keys. */
function observeSignatures(keyFiles: { signing: string; vapid: string }): () => void {
  const crypto = require('node:crypto') as typeof import('node:crypto');
  const original = crypto.sign;
  let keys: { key: KeyObject; name: Sign['key'] }[] | undefined;
  const load = () => {
    if (keys && keys.length > 0) return keys;
    const found: { key: KeyObject; name: Sign['key'] }[] = [];
    if (existsSync(keyFiles.signing)) {
      for (const jwk of (JSON.parse(readFileSync(keyFiles.signing, 'utf8')) as { keys: { kty: string }[] }).keys) {
        const key = createPrivateKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
        found.push({ key, name: jwk.kty === 'RSA' ? 'rsa' : 'ec' });
      }
    }
    if (existsSync(keyFiles.vapid)) {
      const jwk = JSON.parse(readFileSync(keyFiles.vapid, 'utf8')) as import('node:crypto').JsonWebKey;
      found.push({ key: createPrivateKey({ key: jwk, format: 'jwk' }), name: 'vapid' });
    }
    keys = found;
    return keys;
  };
  const keyObject = (k: unknown): KeyObject | undefined => {
    const candidate = k && typeof k === 'object' && 'key' in k && !('type' in k) ? (k as { key: unknown }).key : k;
    return candidate && typeof candidate === 'object' && 'equals' in candidate ? (candidate as KeyObject) : undefined;
  };
  const observed = function (this: unknown, ...args: Parameters<typeof crypto.sign>) {
    const k = keyObject(args[2]);
    if (window && k?.type === 'private') {
      const match = load().find((entry) => entry.key.asymmetricKeyType === k.asymmetricKeyType && entry.key.equals(k));
      if (match) window.signs.push({ key: match.name });
    }
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof crypto.sign;
  crypto.sign = observed;
  syncBuiltinESMExports();
  return () => {
    crypto.sign = original;
    syncBuiltinESMExports();
  };
}

// ---- The flows ------------------------------------------------------------------------------------------

/** The Step Functions events each CloudWatch Logs level records (AWS Step Functions developer guide, "Log levels"). */
const LOGGED_EVENTS: Record<string, (type: string) => boolean> = {
  OFF: () => false,
  FATAL: (t) => ['ExecutionAborted', 'ExecutionFailed', 'ExecutionTimedOut'].includes(t),
  ERROR: (t) =>
    /(Aborted|Failed|TimedOut)$/.test(t) ||
    ['FailStateEntered', 'LambdaFunctionScheduleFailed', 'LambdaFunctionStartFailed', 'TaskSubmitFailed'].includes(t),
  ALL: () => true,
};

export type MeasureOptions = {
  facts: TemplateFacts;
  flows: readonly FlowSpec[];
  /** Recorded runs of each flow (durations are the median of them; counts their mean). Default 2. */
  runs?: number;
  /** requested_expiry of the expired flows, seconds (the stack's CIBA_MIN_EXPIRES_IN is lowered to it). Default 1. */
  expirySeconds?: number;
  log?: (line: string) => void;
  /** Called with the running stack after the last flow, before it is closed (tests cross-check against it). */
  inspect?: (stack: LocalStack, flows: FlowMeasure[]) => Promise<void>;
};

/**
 * What the deployed functions log with: LOG_LEVEL and CIBA_METRICS as the template sets them on the functions, else
 * the settings' defaults (functions/settings.ts), which is what a function reads when the variable is unset.
 */
function deployedLogSettings(facts: TemplateFacts): Record<string, string> {
  const value = (setting: { env: string; default: string }) => {
    const values = new Set(Object.values(facts.functions).map((f) => f.environment[setting.env] ?? setting.default));
    if (values.size > 1)
      throw new Error(`the functions set ${setting.env} differently (${[...values].join(', ')}); not modeled`);
    return [...values][0] ?? setting.default;
  };
  return { LOG_LEVEL: value(SETTINGS.logLevel), CIBA_METRICS: value(SETTINGS.metrics) };
}

export async function measureFlows(opts: MeasureOptions): Promise<Measurement> {
  const started = performance.now();
  const runs = opts.runs ?? 2;
  const expirySeconds = opts.expirySeconds ?? 1;
  const log = opts.log ?? (() => undefined);
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error('runs must be an integer in 1..20');
  if (!Number.isInteger(expirySeconds) || expirySeconds < 1 || expirySeconds > 30)
    throw new Error('expirySeconds must be an integer in 1..30');

  instrumentDynalite(opts.facts);
  const { startLocalStack } = await import('../../local/stack.ts');

  const receiver = await BenchReceiver.start();
  const { seed, users } = benchSeed(2, (path) => receiver.url(path));
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const settings: Record<string, string> = {
    ...BENCH_SERVER_ENV,
    ...deployedLogSettings(opts.facts),
    CIBA_MIN_EXPIRES_IN: String(expirySeconds),
  };
  let stack: LocalStack | undefined;
  let restoreOutput: (() => void) | undefined;
  let restoreSign: (() => void) | undefined;
  const observer = (call: AwsCall) => {
    if (!window) return;
    const inv = activeInvocation();
    (inv ? inv.calls : window.orphanCalls).push(call);
  };
  try {
    restoreOutput = captureOutput();
    stack = await startLocalStack({
      port,
      issuer,
      dataDir: null,
      // The DynamoDB request units are read from dynalite (instrumentDynalite), whatever CIBA_LOCAL_DYNAMODB says.
      dynamodb: 'dynalite',
      quiet: true,
      seed,
      env: settings,
      onRequest: (entry) => window?.requests.push(entry),
    });
    await instrumentHandlers();
    restoreSign = observeSignatures({
      signing: process.env.KEYS_FILE ?? '',
      vapid: process.env.CIBA_VAPID_KEY_FILE ?? '',
    });
    setAwsCallObserver(observer);
    const sfn = new SFNClient({
      endpoint: stack.awsEndpoint,
      region: process.env.AWS_REGION ?? 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });

    const user = users[0]!;
    const device = deviceFor(issuer, user);
    const flowOnce = (spec: FlowSpec, label: string) =>
      runOne({ stack: stack!, issuer, user, device, receiver, spec, label, expirySeconds });

    // Warm-up: every function involved is imported and run once before anything is recorded (cold starts are not
    // what a flow costs at volume).
    log('warming up (one unrecorded flow per mode)…');
    for (const mode of MODES) await flowOnce({ mode, outcome: 'approved' }, `WARM-${mode}`);
    await settle(stack, new Set());

    const results: FlowMeasure[] = [];
    for (const spec of opts.flows) {
      log(`measuring ${spec.mode} ${spec.outcome} (${runs} run${runs > 1 ? 's' : ''})…`);
      const windows: Recorded[] = [];
      for (let run = 0; run < runs; run++) {
        const known = new Set(stack.stepFunctions.executions().map((e) => e.executionArn));
        const before = snapshot(stack);
        window = { invocations: [], requests: [], dynamo: [], signs: [], orphanCalls: [] };
        const w = window;
        const start = Date.now();
        let pendingPolls: number;
        try {
          pendingPolls = await flowOnce(spec, `COST-${spec.mode}-${spec.outcome}-${run}`);
          await settle(stack, known);
        } finally {
          window = undefined;
        }
        const executions = stack.stepFunctions
          .executions()
          .filter((e) => !known.has(e.executionArn))
          .map((e) => e.executionArn);
        const span = { start, end: Date.now() };
        windows.push({ window: w, executions, pendingPolls, snapshot: delta(before, snapshot(stack)), span });
      }
      results.push(await summarize(spec, windows, stack, sfn, opts.facts));
    }
    if (opts.inspect) await opts.inspect(stack, results);
    return {
      settings,
      runs,
      expirySeconds,
      flows: results,
      wallSeconds: (performance.now() - started) / 1000,
    };
  } finally {
    window = undefined;
    setAwsCallObserver(undefined);
    restoreSign?.();
    await stack?.close();
    await receiver.close();
    restoreOutput?.();
  }
}

/** One flow; returns the pending polls the RP made. Throws when the flow does not end as specified. */
async function runOne(o: {
  stack: LocalStack;
  issuer: string;
  user: BenchUser;
  device: ReturnType<typeof deviceFor>;
  receiver: BenchReceiver;
  spec: FlowSpec;
  label: string;
  expirySeconds: number;
}): Promise<number> {
  const { mode, outcome } = o.spec;
  const decision = outcome === 'approved' ? 'approve' : outcome === 'denied' ? 'deny' : 'none';
  const expiry = outcome === 'expired' ? { requestedExpiry: o.expirySeconds } : {};
  if (mode === 'poll') {
    // The RP polls once right away (pending) and again `interval` after the answer: the decision is in by then.
    const flow = await runFlow({
      issuer: o.issuer,
      user: o.user,
      device: o.device,
      bindingMessage: o.label,
      decision,
      timeoutMs: 20_000,
      pendingPolls: 1,
      ...expiry,
    });
    if (!flow.ok) throw new Error(`${mode} ${outcome} flow failed: ${flow.error}`);
    if (flow.slowDowns > 0) throw new Error(`${mode} ${outcome} flow got slow_down`);
    const pending = flow.timings.filter((t) => t.kind === 'token-pending').length;
    if (outcome === 'expired') {
      // The RP's next poll after the expiry: the request's end as the client learns it (CIBA §11 expired_token).
      await waitUntilEnded(o.stack, flow.authReqId!, (o.expirySeconds + 10) * 1000);
      const last = await postForm(`${o.issuer}/token`, { grant_type: CIBA_GRANT, auth_req_id: flow.authReqId! });
      if (last.json.error !== 'expired_token')
        throw new Error(`poll expired flow: the last poll answered ${JSON.stringify(last.json)}`);
    }
    return pending;
  }
  const flow = await runNotifiedFlow({
    issuer: o.issuer,
    mode,
    user: o.user,
    device: o.device,
    receiver: o.receiver,
    bindingMessage: o.label,
    decision,
    timeoutMs: 20_000,
    ...expiry,
  });
  if (!flow.ok) throw new Error(`${mode} ${outcome} flow failed: ${flow.error}`);
  return 0;
}

/** Waits until no execution started for this request id is running (whatever its state machine). */
async function waitUntilEnded(stack: LocalStack, authReqId: string, timeoutMs: number): Promise<void> {
  const { sha256b64u } = await import('../../functions/core/crypto.ts');
  const id = sha256b64u(authReqId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const mine = stack.stepFunctions.executions().filter((e) => e.name === id || e.input.includes(id));
    if (mine.length > 0 && mine.every((e) => e.status !== 'RUNNING')) return;
    if (Date.now() > deadline) throw new Error(`the execution of request ${id} did not end within ${timeoutMs} ms`);
    await sleep(25);
  }
}

/** Until the flow's executions have ended, SNS has drained and no function runs, three checks in a row. */
async function settle(stack: LocalStack, known: Set<string>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let quiet = 0; quiet < 3; ) {
    await stack.sns.drain();
    const running = stack.stepFunctions
      .executions()
      .filter((e) => !known.has(e.executionArn) && e.status === 'RUNNING');
    if (running.length === 0 && inFlight.size === 0) quiet++;
    else quiet = 0;
    if (Date.now() > deadline) throw new Error('the flow did not settle (executions still running)');
    await sleep(20);
  }
}

type Snapshot = {
  topicMessages: { topicArn: string; bytes: number }[];
  direct: Record<string, number>;
  deadLetters: number;
};

function snapshot(stack: LocalStack): Snapshot {
  const direct: Record<string, number> = {};
  for (const e of stack.outbox.entries()) direct[e.channel] = (direct[e.channel] ?? 0) + 1;
  return {
    topicMessages: stack.sns.messages().map((m) => ({ topicArn: m.topicArn, bytes: Buffer.byteLength(m.message) })),
    direct,
    deadLetters: stack.sqs.deadLetters().length,
  };
}

function delta(before: Snapshot, after: Snapshot): Snapshot {
  const direct: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.direct))
    if (v - (before.direct[k] ?? 0) > 0) direct[k] = v - (before.direct[k] ?? 0);
  return {
    topicMessages: after.topicMessages.slice(before.topicMessages.length),
    direct,
    deadLetters: after.deadLetters - before.deadLetters,
  };
}

const median = (values: number[]): number => {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function awsHistory(sfn: SFNClient, executionArn: string): Promise<SfnHistoryEvent[]> {
  const events: SfnHistoryEvent[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfn.send(
      new GetExecutionHistoryCommand({ executionArn, nextToken, includeExecutionData: false }),
    );
    events.push(...(page.events ?? []));
    nextToken = page.nextToken;
  } while (nextToken);
  return events;
}

/** A state machine log record as CloudWatch Logs receives it without execution data (its size is what is billed). */
function renderLogRecord(event: SfnHistoryEvent, executionArn: string, smLogicalId: string): string {
  const details = Object.entries(event).find(
    ([k, v]) => k.endsWith('EventDetails') && v && typeof v === 'object',
  )?.[1] as { error?: string; cause?: string; resource?: string; resourceType?: string } | undefined;
  const name = executionArn.split(':').at(-1) ?? '';
  return JSON.stringify({
    id: String(event.id ?? 0),
    type: event.type,
    details: {
      ...(details?.cause !== undefined ? { cause: details.cause } : {}),
      ...(details?.error !== undefined ? { error: details.error } : {}),
      ...(details?.resource !== undefined ? { resource: details.resource } : {}),
      ...(details?.resourceType !== undefined ? { resourceType: details.resourceType } : {}),
    },
    previous_event_id: String(event.previousEventId ?? 0),
    event_timestamp: String(event.timestamp instanceof Date ? event.timestamp.getTime() : Date.now()),
    execution_arn: `arn:aws:states:us-east-1:123456789012:execution:${smLogicalId}-AbCdEfGhIjKl:${name}`,
    redrive_count: '0',
  });
}

type Recorded = {
  window: Window;
  executions: string[];
  pendingPolls: number;
  snapshot: Snapshot;
  span: { start: number; end: number };
};

async function summarize(
  spec: FlowSpec,
  windows: Recorded[],
  stack: LocalStack,
  sfn: SFNClient,
  facts: TemplateFacts,
): Promise<FlowMeasure> {
  const n = windows.length;
  const perFlow = (total: number) => total / n;
  const all = <T>(pick: (w: (typeof windows)[number]) => T[]) => windows.flatMap(pick);

  const apiRequests: Record<string, number> = {};
  for (const r of all((w) => w.window.requests)) {
    const key = `${r.routeKey ?? `${r.method} ${r.path}`} ${r.status}`;
    apiRequests[key] = (apiRequests[key] ?? 0) + 1 / n;
  }
  const invocations = all((w) => w.window.invocations);
  const unfinished = invocations.filter((i) => i.end === undefined);
  if (unfinished.length > 0) throw new Error(`${unfinished.length} invocation(s) never finished`);
  const functions: FunctionUse[] = [];
  for (const fn of [...new Set(invocations.map((i) => i.fn))]) {
    const mine = invocations.filter((i) => i.fn === fn);
    const calls: Record<string, number> = {};
    for (const c of mine.flatMap((i) => i.calls)) {
      const key = `${c.service}.${c.operation}`;
      calls[key] = (calls[key] ?? 0) + 1 / n;
    }
    const ms = mine.map((i) => i.end! - i.start);
    functions.push({
      fn,
      kind: mine[0]!.kind,
      invocations: perFlow(mine.length),
      medianMs: median(ms),
      billedMsPerFlow: perFlow(ms.reduce((s, v) => s + Math.max(1, Math.ceil(v)), 0)),
      calls,
      logLinesPerFlow: perFlow(mine.reduce((s, i) => s + i.logLines, 0)),
      logBytesPerFlow: perFlow(mine.reduce((s, i) => s + i.logBytes, 0)),
      emfLinesPerFlow: perFlow(mine.reduce((s, i) => s + i.emfLines, 0)),
      emfBytesPerFlow: perFlow(mine.reduce((s, i) => s + i.emfBytes, 0)),
    });
  }
  const order = { http: 0, workflow: 1, topic: 2 } as const;
  functions.sort((a, b) => order[a.kind] - order[b.kind] || a.fn.localeCompare(b.fn));

  const dynamo = all((w) => w.window.dynamo);
  if (dynamo.length === 0)
    throw new Error('no DynamoDB request was observed: the dynalite instrumentation saw nothing');
  const failed = dynamo.filter((d) => d.error);
  if (failed.length > 0) throw new Error(`DynamoDB errors during the flow: ${failed.map((d) => d.error).join(', ')}`);
  const dynamoRequests: Record<string, number> = {};
  for (const d of dynamo) dynamoRequests[d.op] = (dynamoRequests[d.op] ?? 0) + 1 / n;

  // Executions: transitions from the local history; the logged events by their AWS names.
  const executionArns = all((w) => w.executions);
  let statesEntered = 0;
  let retries = 0;
  const paths: string[][] = [];
  const loggedEvents: Record<string, number> = {};
  let smLogBytes = 0;
  const smByArn = new Map(stack.stepFunctions.executions().map((e) => [e.executionArn, e.stateMachineArn]));
  const smFacts = (smArn: string | undefined) => {
    // The local state machine for this execution, matched to the template's by nothing but count and settings:
    // when all template state machines log and trace alike, which one it is does not matter.
    const levels = new Set(facts.stateMachines.map((s) => `${s.logLevel}/${s.includeExecutionData}`));
    if (levels.size > 1)
      throw new Error('the template state machines log differently; the cost model cannot tell which one ran');
    void smArn;
    return facts.stateMachines[0]!;
  };
  for (const w of windows) {
    for (const arn of w.executions) {
      const history = stack.stepFunctions.history(arn);
      const entered = history.filter((e) => e.type === 'StateEntered');
      statesEntered += entered.length;
      retries += history.filter((e) => e.type === 'StateRetried').length;
      if (w === windows[0]) paths.push(entered.map((e) => e.stateName ?? '?'));
      const sm = smFacts(smByArn.get(arn));
      const isLogged = LOGGED_EVENTS[sm.logLevel] ?? LOGGED_EVENTS.ALL!;
      for (const event of await awsHistory(sfn, arn)) {
        if (!event.type || !isLogged(event.type)) continue;
        loggedEvents[event.type] = (loggedEvents[event.type] ?? 0) + 1 / n;
        smLogBytes += Buffer.byteLength(renderLogRecord(event, arn, sm.logicalId)) / n;
      }
    }
  }

  const topicMessages = all((w) => w.snapshot.topicMessages);
  const direct: Record<string, number> = {};
  for (const w of windows) for (const [k, v] of Object.entries(w.snapshot.direct)) direct[k] = (direct[k] ?? 0) + v / n;
  const directPublishes = Object.values(direct).reduce((s, v) => s + v, 0);
  // Deliveries: each topic-subscriber invocation is one delivery, by the protocol the template subscribes it with.
  const deliveries: Record<string, number> = {};
  for (const f of functions.filter((f) => f.kind === 'topic')) {
    const protocol = facts.subscriptionsByFunction[f.fn];
    if (!protocol)
      throw new Error(`function ${f.fn} runs as a topic subscriber locally, but the template subscribes it nowhere`);
    deliveries[protocol] = (deliveries[protocol] ?? 0) + f.invocations;
  }
  const sqsCalls = invocations.flatMap((i) => i.calls).filter((c) => c.service === 'SQS').length;

  const signatures: Record<string, number> = { rsa: 0, ec: 0, vapid: 0 };
  for (const s of all((w) => w.window.signs)) signatures[s.key] = (signatures[s.key] ?? 0) + 1 / n;

  return {
    ...spec,
    runs: n,
    apiRequests,
    apiRequestsTotal: perFlow(all((w) => w.window.requests).length),
    pendingPolls: perFlow(windows.reduce((s, w) => s + w.pendingPolls, 0)),
    functions,
    httpInvocations: perFlow(invocations.filter((i) => i.kind === 'http').length),
    dynamodb: {
      requests: dynamoRequests,
      readUnits: perFlow(dynamo.reduce((s, d) => s + d.readUnits, 0)),
      writeUnits: perFlow(dynamo.reduce((s, d) => s + d.writeUnits, 0)),
      indexWriteUnits: perFlow(dynamo.reduce((s, d) => s + d.indexWriteUnits, 0)),
      conditionalCheckFailures: perFlow(dynamo.filter((d) => d.conditionFailed).length),
    },
    stepFunctions: {
      executions: perFlow(executionArns.length),
      statesEntered: perFlow(statesEntered),
      retries: perFlow(retries),
      transitions: perFlow(statesEntered + retries),
      paths,
      loggedEvents,
      logBytes: smLogBytes,
      executionArns,
    },
    sns: {
      topicPublishes: perFlow(topicMessages.length),
      directPublishes,
      publishChunks:
        perFlow(topicMessages.reduce((s, m) => s + Math.max(1, Math.ceil(m.bytes / 65536)), 0)) + directPublishes,
      deliveries,
      direct,
    },
    sqs: { requests: perFlow(windows.reduce((s, w) => s + w.snapshot.deadLetters, 0) + sqsCalls) },
    signatures,
    unattributedCalls: perFlow(all((w) => w.window.orphanCalls).length),
    windows: windows.map((w) => w.span),
  };
}
