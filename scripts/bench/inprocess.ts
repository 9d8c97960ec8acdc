// AWS calls per flow and state transitions, with the local stack in this process (`npm run bench` sections 3 and 5).
//
// Attribution is causal: an AsyncLocalStorage context is entered for every request the local API server receives
// (diagnostics_channel `http.server.request.start`, published synchronously just before the server's request
// listener runs, so the handler and everything it awaits inherit it). The AWS call observer (functions/adapters/
// aws.ts) files each call under the context it was made in, except calls of the workflow's notify-device and the
// device topic's dispatch-notifications: the local stack calls its services in-process, so those run inside the
// context of the API request that started them, and are filed by the invocation each call names instead. The API server's request
// log (onRequest, called inside the same context) gives the route and status. As a cross-check, each API handler's
// call must lie inside the start/end of the request it is filed under.
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { startLocalStack, type AwsCall, type LocalStack, type RequestLogEntry } from '../../local/stack.ts';
import { setAwsCallObserver } from '../../functions/adapters/aws.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { BENCH_SERVER_ENV, NOTIFY_CLIENTS, deviceFor, runFlow, type BenchUser, type FlowOutcome } from './flow.ts';
import { runNotifiedFlow, type BenchReceiver, type NotifiedOutcome } from './notify.ts';
import { freePort, trackCleanup } from './child.ts';
import { median } from './report.ts';

export const CATEGORIES = [
  'bc-authorize',
  'token pending poll',
  'token redemption',
  'device list',
  'device decide',
  'workflow (notify-device)',
  'device topic (dispatch-notifications)',
] as const;
export type Category = (typeof CATEGORIES)[number] | 'other request' | 'unattributed';

type Ctx =
  | { kind: 'api'; entry?: RequestLogEntry; calls: AwsCall[] }
  | { kind: 'aws'; calls: AwsCall[] }
  /** An SNS request to the local AWS endpoint: the subscribers it fans out to (dispatch-notifications) run inside. */
  | { kind: 'sns'; calls: AwsCall[] };

export type CategoryStats = {
  category: Category;
  /** Requests (or workflow invocations that made calls) of this kind per flow. */
  perFlow: number;
  requests: number;
  /** `Service.Operation` → calls per request (average). */
  callsPerRequest: Record<string, number>;
  totalPerRequest: number;
  depth: { median: number; min: number; max: number };
};

export type AwsCallsResult = {
  flows: number;
  categories: CategoryStats[];
  /** Service → calls per flow; `total` too. */
  perFlowByService: Record<string, number>;
  /** Sum over the categories of (depth × requests per flow): sequential AWS round trips a flow costs in total. */
  sequentialPerFlow: number;
  /**
   * Cross-check by time: `agree` of the API handlers' `total` calls lie inside the start/end of the request they are
   * filed under; `backgroundInsideRequest` of the workflow's and the dispatcher's `background` calls fell inside some
   * API request's window.
   */
  timeWindowAgreement: { agree: number; total: number; background: number; backgroundInsideRequest: number };
};

/**
 * One execution per row. Billing (aws.amazon.com/step-functions/pricing, Standard workflows): a state transition is
 * counted each time a step is executed, retries included, i.e. each retry is charged as an additional transition.
 */
export type TransitionsResult = {
  mode: 'poll' | 'ping' | 'push';
  /** 'approve, 1 retry' = an approval whose first delivery attempt got 503 and the retry 204. */
  flow: 'approve' | 'deny' | 'expire' | 'approve, 1 retry';
  /** States entered, in order (StateEntered events). */
  states: string[];
  /** Retry attempts (StateRetried events); each is billed as one more transition. */
  retries: number;
  /** Billed transitions: states entered + retries. */
  transitions: number;
  /** USD per million flows at $25 per million state transitions. */
  costPerMillionFlows: number;
  status: string;
}[];

/** What runInProcess needs for the ping/push rows of TransitionsResult; the seed must hold NOTIFY_CLIENTS at its URLs. */
export type NotifyRig = { receiver: BenchReceiver };

/** Longest chain of calls in which each starts after the previous one ended (sequential round trips). */
export function criticalPathDepth(calls: readonly AwsCall[]): number {
  const sorted = [...calls].sort((a, b) => a.start - b.start);
  const depth: number[] = [];
  let best = 0;
  sorted.forEach((c, i) => {
    let d = 1;
    for (let j = 0; j < i; j++) if (sorted[j]!.end <= c.start) d = Math.max(d, depth[j]! + 1);
    depth.push(d);
    best = Math.max(best, d);
  });
  return best;
}

function categoryOf(entry: RequestLogEntry | undefined): Category {
  if (!entry) return 'other request';
  switch (entry.routeKey) {
    case 'POST /bc-authorize':
      return 'bc-authorize';
    case 'POST /token':
      return entry.status === 200 ? 'token redemption' : 'token pending poll';
    case 'GET /device/requests':
      return 'device list';
    case 'POST /device/requests/{id}':
      return 'device decide';
    default:
      return 'other request';
  }
}

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const assertOk = (o: FlowOutcome, what: string) => {
  if (!o.ok) throw new Error(`${what} flow failed: ${o.error}`);
  return o;
};

const assertNotified = (o: NotifiedOutcome, what: string) => {
  if (!o.ok) throw new Error(`${what} flow failed: ${o.error}`);
  return o;
};

export async function runInProcess(opts: {
  seed: unknown;
  users: BenchUser[];
  flows: number;
  expiry: boolean;
  /** With it, also ping and push flows (approve, deny, expire, one retried delivery) for the transitions. */
  notify?: NotifyRig;
  log: (line: string) => void;
}): Promise<{ awsCalls: AwsCallsResult; transitions: TransitionsResult }> {
  const als = new AsyncLocalStorage<Ctx>();
  const contexts: Ctx[] = [];
  let recording = false;
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const stack: LocalStack = await startLocalStack({
    port,
    issuer,
    dataDir: null,
    quiet: true,
    seed: opts.seed,
    env: BENCH_SERVER_ENV,
    onRequest: (entry) => {
      const ctx = als.getStore();
      if (ctx?.kind === 'api') ctx.entry = entry;
    },
  });
  const untrack = trackCleanup(() => stack.close());
  const onRequestStart = (message: unknown) => {
    if (!recording) return;
    const { socket } = message as { socket: Socket };
    if (socket.localPort !== port) return;
    const ctx: Ctx = { kind: 'api', calls: [] };
    contexts.push(ctx);
    als.enterWith(ctx);
  };
  const all: AwsCall[] = [];
  const orphans: AwsCall[] = [];
  subscribe('http.server.request.start', onRequestStart);
  // The workflow's and the topic subscribers' calls are filed by the invocation that made them: with the local
  // stack's in-process transport they run inside the async context of the API request that started them.
  const byInvocation = new Map<string, Ctx>();
  setAwsCallObserver((call) => {
    if (!recording) return;
    all.push(call);
    const fn = call.invocation?.function;
    const kind = fn === 'notify-device' ? 'aws' : fn === 'dispatch-notifications' ? 'sns' : undefined;
    if (kind && call.invocation) {
      const known = byInvocation.get(call.invocation.awsRequestId);
      const ctx: Ctx = known ?? { kind, calls: [] };
      if (!known) {
        byInvocation.set(call.invocation.awsRequestId, ctx);
        contexts.push(ctx);
      }
      ctx.calls.push(call);
      return;
    }
    const ctx = als.getStore();
    (ctx ? ctx.calls : orphans).push(call);
  });

  try {
    const [userA, userB, userC] = opts.users;
    if (!userA || !userB || !userC) throw new Error('the in-process seed needs 3 users');
    const deviceA = deviceFor(issuer, userA);
    const flow = (bindingMessage: string, extra: Partial<Parameters<typeof runFlow>[0]> = {}) =>
      runFlow({ issuer, user: userA, device: deviceA, bindingMessage, timeoutMs: 20_000, ...extra });

    assertOk(await flow('INPROC-WARM'), 'warm-up');

    // The expiry flow first, so its 10 s run out while the others are measured. No decision; one pending poll.
    let expireId: string | undefined;
    if (opts.expiry) {
      const expire = assertOk(
        await runFlow({
          issuer,
          user: userC,
          device: deviceFor(issuer, userC),
          bindingMessage: 'INPROC-EXPIRE',
          decision: 'none',
          requestedExpiry: 10,
          timeoutMs: 20_000,
        }),
        'expiry',
      );
      if (expire.expiresIn !== 10) throw new Error(`requested_expiry=10 gave expires_in=${expire.expiresIn}`);
      expireId = sha256b64u(expire.authReqId!);
      // Its notify-device must be done before recording starts.
      await waitFor(
        'the expiry request notification',
        () => (stack.sns.messages().some((m) => m.message.includes(expireId!)) ? true : undefined),
        10_000,
      );
      await stack.sns.drain();
    }

    // Approve flows at concurrency 1, recorded.
    recording = true;
    const approveIds: string[] = [];
    for (let i = 0; i < opts.flows; i++) {
      const o = assertOk(await flow(`INPROC-${i}`), 'approve');
      if (o.slowDowns > 0) throw new Error('slow_down during the recorded flows');
      const id = sha256b64u(o.authReqId!);
      approveIds.push(id);
      await stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', 10_000);
      await stack.sns.drain();
    }
    recording = false;
    setAwsCallObserver(undefined);
    unsubscribe('http.server.request.start', onRequestStart);

    // Ping/push expiry flows start only now: their deliveries (~10 s on) must not fall into the recording above.
    const notify = opts.notify;
    const deviceB = deviceFor(issuer, userB);
    const notified = (mode: 'ping' | 'push', flow: 'approve' | 'deny' | 'none', label: string, clientId?: string) =>
      runNotifiedFlow({
        issuer,
        mode,
        user: flow === 'none' ? userC : userB,
        device: flow === 'none' ? deviceFor(issuer, userC) : deviceB,
        receiver: notify!.receiver,
        bindingMessage: label,
        decision: flow,
        ...(clientId ? { clientId } : {}),
        ...(flow === 'none' ? { requestedExpiry: 10, timeoutMs: 30_000 } : {}),
      }).then((o) => ({ ...assertNotified(o, label), mode }));
    const notifiedExpiries =
      notify && opts.expiry
        ? [notified('ping', 'none', 'INPROC-PING-EXPIRE'), notified('push', 'none', 'INPROC-PUSH-EXPIRE')]
        : [];
    for (const p of notifiedExpiries) p.catch(() => undefined);

    // Deny flow (not recorded).
    const denied = assertOk(
      await runFlow({
        issuer,
        user: userB,
        device: deviceB,
        bindingMessage: 'INPROC-DENY',
        decision: 'deny',
        timeoutMs: 20_000,
      }),
      'deny',
    );
    const denyId = sha256b64u(denied.authReqId!);

    const awsCalls = analyse(contexts, orphans, all, opts.flows);

    // Transitions from the local Step Functions history.
    type Row = TransitionsResult[number];
    const transitionsOf = async (
      mode: Row['mode'],
      flowKind: Row['flow'],
      id: string,
      timeoutMs: number,
    ): Promise<Row> => {
      const rec = await stack.stepFunctions.waitForStatus(id, 'SUCCEEDED', timeoutMs);
      const history = stack.stepFunctions.history(rec.executionArn);
      const states = history.filter((e) => e.type === 'StateEntered').map((e) => e.stateName ?? '?');
      const retries = history.filter((e) => e.type === 'StateRetried').length;
      const transitions = states.length + retries;
      return {
        mode,
        flow: flowKind,
        states,
        retries,
        transitions,
        costPerMillionFlows: transitions * 25,
        status: rec.status,
      };
    };
    const transitions: TransitionsResult = [];
    const approveRuns = await Promise.all(approveIds.map((id) => transitionsOf('poll', 'approve', id, 10_000)));
    const distinct = new Set(approveRuns.map((r) => r.states.join('>')));
    if (distinct.size > 1) opts.log(`  note: approve flows took different paths: ${[...distinct].join(' | ')}`);
    transitions.push(approveRuns[0]!);
    transitions.push(await transitionsOf('poll', 'deny', denyId, 10_000));

    const notifiedRows: Promise<Row>[] = [];
    if (notify) {
      for (const mode of ['ping', 'push'] as const) {
        for (const flow of ['approve', 'deny'] as const) {
          const o = await notified(mode, flow, `INPROC-${mode.toUpperCase()}-${flow.toUpperCase()}`);
          notifiedRows.push(transitionsOf(mode, flow, sha256b64u(o.authReqId!), 10_000));
        }
      }
      // One retried delivery: the endpoint answers 503, then 204 (the retry waits 0-2 s: IntervalSeconds 2, full jitter).
      opts.log('  one ping delivery answered 503 on purpose (its "will retry" warning is expected)');
      const path = `/${NOTIFY_CLIENTS.retry}`;
      const before = notify.receiver.count(path);
      notify.receiver.respond(path, (n) => (n === before ? 503 : 204));
      const retried = await notified('ping', 'approve', 'INPROC-PING-RETRY', NOTIFY_CLIENTS.retry);
      const row = await transitionsOf('ping', 'approve, 1 retry', sha256b64u(retried.authReqId!), 15_000);
      if (row.retries !== 1 || notify.receiver.count(path) - before !== 2) {
        throw new Error(
          `the retried delivery took ${notify.receiver.count(path) - before} POSTs and ${row.retries} retries (expected 2 and 1)`,
        );
      }
      notifiedRows.push(Promise.resolve(row));
    }
    const pollExpire = expireId ? transitionsOf('poll', 'expire', expireId, 25_000) : undefined;
    if (expireId || notifiedExpiries.length) opts.log('  waiting for the expiry flows (requested_expiry=10)…');
    if (pollExpire) transitions.push(await pollExpire);
    const rows = await Promise.all(notifiedRows);
    const expiries = await Promise.all(
      notifiedExpiries.map((p) => p.then((o) => transitionsOf(o.mode, 'expire', sha256b64u(o.authReqId!), 25_000))),
    );
    for (const mode of ['ping', 'push'] as const) {
      transitions.push(
        ...rows.filter((r) => r.mode === mode && r.flow !== 'approve, 1 retry'),
        ...expiries.filter((r) => r.mode === mode),
      );
    }
    transitions.push(...rows.filter((r) => r.flow === 'approve, 1 retry'));
    return { awsCalls, transitions };
  } finally {
    recording = false;
    setAwsCallObserver(undefined);
    unsubscribe('http.server.request.start', onRequestStart);
    untrack();
    await stack.close();
  }
}

function analyse(contexts: Ctx[], orphans: AwsCall[], all: AwsCall[], flows: number): AwsCallsResult {
  type Group = { category: Category; calls: AwsCall[] };
  const groups: Group[] = [];
  for (const ctx of contexts) {
    if (ctx.kind === 'api') groups.push({ category: categoryOf(ctx.entry), calls: ctx.calls });
    else if (ctx.kind === 'sns') {
      if (ctx.calls.length > 0) groups.push({ category: 'device topic (dispatch-notifications)', calls: ctx.calls });
    } else if (ctx.calls.length > 0) groups.push({ category: 'workflow (notify-device)', calls: ctx.calls });
  }
  if (orphans.length > 0) groups.push({ category: 'unattributed', calls: orphans });

  const order: Category[] = [...CATEGORIES, 'other request', 'unattributed'];
  const categories: CategoryStats[] = [];
  const perFlowByService: Record<string, number> = {};
  let sequentialPerFlow = 0;
  for (const category of order) {
    const mine = groups.filter((g) => g.category === category);
    if (mine.length === 0) continue;
    const ops: Record<string, number> = {};
    let total = 0;
    for (const g of mine) {
      for (const c of g.calls) {
        const key = `${c.service}.${c.operation}`;
        ops[key] = (ops[key] ?? 0) + 1;
        perFlowByService[c.service] = (perFlowByService[c.service] ?? 0) + 1 / flows;
        total++;
      }
    }
    const depths = mine.map((g) => criticalPathDepth(g.calls));
    const stats: CategoryStats = {
      category,
      perFlow: mine.length / flows,
      requests: mine.length,
      callsPerRequest: Object.fromEntries(Object.entries(ops).map(([k, v]) => [k, v / mine.length])),
      totalPerRequest: total / mine.length,
      depth: { median: median(depths), min: Math.min(...depths), max: Math.max(...depths) },
    };
    sequentialPerFlow += stats.depth.median * stats.perFlow;
    categories.push(stats);
  }
  perFlowByService.total = all.length / flows;

  // Cross-check by time: each API handler's call should lie inside the start/end of the request it is filed under
  // (requests may overlap, so time alone could not say which). The workflow's and the dispatcher's calls run in-process
  // while the API request that started them may still be open: counted apart.
  const timeWindowAgreement = { agree: 0, total: 0, background: 0, backgroundInsideRequest: 0 };
  const entries = contexts.flatMap((c) => (c.kind === 'api' && c.entry ? [c.entry] : []));
  for (const ctx of contexts) {
    for (const call of ctx.calls) {
      if (ctx.kind === 'api') {
        timeWindowAgreement.total++;
        if (ctx.entry && ctx.entry.start <= call.start && call.end <= ctx.entry.end) timeWindowAgreement.agree++;
      } else {
        timeWindowAgreement.background++;
        if (entries.some((e) => e.start <= call.start && call.end <= e.end))
          timeWindowAgreement.backgroundInsideRequest++;
      }
    }
  }
  return { flows, categories, perFlowByService, sequentialPerFlow, timeWindowAgreement };
}
