// Closed-loop load: `concurrency` workers, worker i always plays user i (own device key, so concurrent flows never
// share a user's pending list), each running complete poll flows back to back until the flow count or the time cap
// is reached. Server CPU comes from the child's /proc/<pid>/stat around the measured part only (after warm-up).
import { processCpuSeconds } from './child.ts';
import { deviceFor, runFlow, type BenchUser, type FlowOutcome, type Kind } from './flow.ts';
import type { DeviceClient } from '../../local/device-client.ts';

export type LevelResult = {
  concurrency: number;
  target: number;
  completed: number;
  failed: number;
  errors: string[];
  capped: boolean;
  wallS: number;
  flowsPerS: number;
  requestsPerS: number;
  requestsPerFlow: number;
  slowDowns: number;
  latencies: Record<Kind | 'flow', number[]>;
  serverCpuS: number;
  serverCpuMsPerFlow: number;
  /** Server CPU seconds per wall second (1.0 = one core busy). */
  serverCores: number;
  loadgenCpuS: number;
};

const KINDS: (Kind | 'flow')[] = [
  'bc-authorize',
  'token-pending',
  'token-redeem',
  'token-final-error',
  'device-list',
  'device-decide',
  'flow',
];

async function runMany(opts: {
  issuer: string;
  devices: { user: BenchUser; device: DeviceClient }[];
  concurrency: number;
  flows: number;
  deadline: number;
  label: string;
  /** Worker w starts after w × staggerMs / concurrency (spreads the workers over one poll interval). */
  staggerMs?: number;
  onFlow: (o: FlowOutcome) => void;
}): Promise<boolean> {
  let next = 0;
  let capped = false;
  const worker = async (w: number) => {
    const { user, device } = opts.devices[w]!;
    if (opts.staggerMs) await new Promise((r) => setTimeout(r, (w * opts.staggerMs!) / opts.concurrency));
    for (;;) {
      if (next >= opts.flows) return;
      if (Date.now() > opts.deadline) {
        capped = true;
        return;
      }
      const i = next++;
      opts.onFlow(
        await runFlow({
          issuer: opts.issuer,
          user,
          device,
          bindingMessage: `${opts.label}-${opts.concurrency}-${i}`,
          timeoutMs: 20_000,
        }),
      );
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  return capped;
}

export async function runLevel(opts: {
  issuer: string;
  users: BenchUser[];
  serverPid: number;
  concurrency: number;
  flows: number;
  warmup: number;
  timeCapMs: number;
  staggerMs: number;
}): Promise<LevelResult> {
  if (opts.users.length < opts.concurrency)
    throw new Error(`need ${opts.concurrency} users, the seed has ${opts.users.length}`);
  const devices = opts.users.slice(0, opts.concurrency).map((user) => ({ user, device: deviceFor(opts.issuer, user) }));
  const started = Date.now();

  // Warm-up (not measured): JIT, connection pools, first-use imports in the server.
  let warmFailures = 0;
  await runMany({
    issuer: opts.issuer,
    concurrency: opts.concurrency,
    devices,
    flows: opts.warmup,
    deadline: started + Math.min(20_000, opts.timeCapMs / 3),
    label: 'WARM',
    onFlow: (o) => void (o.ok ? 0 : warmFailures++),
  });
  if (warmFailures > 0 && warmFailures >= opts.warmup)
    throw new Error(`every warm-up flow failed at c=${opts.concurrency}`);

  const latencies = Object.fromEntries(KINDS.map((k) => [k, [] as number[]])) as LevelResult['latencies'];
  const errors: string[] = [];
  let completed = 0;
  let failed = 0;
  let requests = 0;
  let slowDowns = 0;
  const cpu0 = processCpuSeconds(opts.serverPid);
  const gen0 = process.cpuUsage();
  const t0 = performance.now();
  const capped = await runMany({
    issuer: opts.issuer,
    concurrency: opts.concurrency,
    flows: opts.flows,
    devices,
    deadline: started + opts.timeCapMs,
    label: 'RUN',
    staggerMs: opts.staggerMs,
    onFlow: (o) => {
      requests += o.timings.length;
      slowDowns += o.slowDowns;
      if (!o.ok) {
        failed++;
        if (errors.length < 5) errors.push(o.error ?? 'unknown');
        return;
      }
      completed++;
      for (const t of o.timings) latencies[t.kind].push(t.ms);
      latencies.flow.push(o.flowMs);
    },
  });
  const wallS = (performance.now() - t0) / 1000;
  const serverCpuS = processCpuSeconds(opts.serverPid) - cpu0;
  const gen = process.cpuUsage(gen0);
  return {
    concurrency: opts.concurrency,
    target: opts.flows,
    completed,
    failed,
    errors,
    capped,
    wallS,
    flowsPerS: completed / wallS,
    requestsPerS: requests / wallS,
    requestsPerFlow: completed + failed > 0 ? requests / (completed + failed) : Number.NaN,
    slowDowns,
    latencies,
    serverCpuS,
    serverCpuMsPerFlow: completed > 0 ? (serverCpuS * 1000) / completed : Number.NaN,
    serverCores: serverCpuS / wallS,
    loadgenCpuS: (gen.user + gen.system) / 1e6,
  };
}

/** The server's CPU while nothing is sent to it: ms of CPU per wall second. */
export async function idleCpuRate(pid: number, ms: number): Promise<number> {
  const c0 = processCpuSeconds(pid);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return ((processCpuSeconds(pid) - c0) * 1000) / ((performance.now() - t0) / 1000);
}

/** Server warm-up before any level (JIT, dynalite, handler imports), so the order of the levels does not matter. */
export async function warmServer(opts: {
  issuer: string;
  users: BenchUser[];
  concurrency: number;
  flows: number;
  timeCapMs: number;
}): Promise<number> {
  const devices = opts.users.slice(0, opts.concurrency).map((user) => ({ user, device: deviceFor(opts.issuer, user) }));
  let failed = 0;
  await runMany({
    issuer: opts.issuer,
    concurrency: Math.min(opts.concurrency, devices.length),
    devices,
    flows: opts.flows,
    deadline: Date.now() + opts.timeCapMs,
    label: 'PREWARM',
    staggerMs: 1000,
    onFlow: (o) => void (o.ok ? 0 : failed++),
  });
  return failed;
}
