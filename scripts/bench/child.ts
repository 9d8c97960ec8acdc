// Child processes and temporary directories for `npm run bench`: everything started here is registered and torn
// down on exit, failure or signal (only processes this bench started, by pid).
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const emptyDirs = new Set<string>();
const asyncCleanups = new Set<() => Promise<unknown>>();

export function trackDir(dir: string): string {
  dirs.add(dir);
  return dir;
}

/** Removed at cleanup only if empty by then (e.g. the project's .bench/ when this run created it). */
export function trackEmptyDir(dir: string): string {
  emptyDirs.add(dir);
  return dir;
}

export function trackCleanup(fn: () => Promise<unknown>): () => void {
  asyncCleanups.add(fn);
  return () => asyncCleanups.delete(fn);
}

export function trackChild(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Synchronous last resort (process 'exit'): kill what is still running, remove directories. */
function cleanupSync(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
  for (const dir of emptyDirs) {
    try {
      rmdirSync(dir);
    } catch {
      /* not empty or already gone */
    }
  }
  emptyDirs.clear();
}

/** Orderly cleanup: async hooks (in-process stack), then SIGTERM children (SIGKILL after 3 s), then directories. */
export async function cleanupAll(): Promise<void> {
  for (const fn of [...asyncCleanups].reverse()) {
    asyncCleanups.delete(fn);
    await fn().catch(() => undefined);
  }
  await Promise.all([...children].map((c) => stopChild(c)));
  cleanupSync();
}

export function installCleanupHandlers(): void {
  process.on('exit', cleanupSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping the bench and cleaning up…`);
      const force = setTimeout(() => process.exit(130), 5000);
      force.unref();
      cleanupAll().finally(() => process.exit(130));
    });
  }
}

export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

let clockTicks: number | undefined;
/** Clock ticks per second for /proc/<pid>/stat (getconf CLK_TCK, else 100). */
export function clkTck(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Bytes a process caused to be written to storage (/proc/<pid>/io write_bytes; page-granular), or NaN. */
export function processWriteBytes(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/io`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('write_bytes:'));
    return line ? Number(line.split(':')[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** User + system CPU seconds of a process from /proc/<pid>/stat (utime, stime: fields 14 and 15). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) is fields[12].
  return (Number(fields[11]) + Number(fields[12])) / clkTck();
}

export type ServerChild = { child: ChildProcess; pid: number; url: string; output(): string };

/**
 * Start `node local/start.ts` in a child process on 127.0.0.1:<port> and wait until discovery answers.
 * ISSUER is set to the 127.0.0.1 URL so device assertions (aud, htu) and every request stay on 127.0.0.1.
 */
export async function startServerChild(opts: {
  projectDir: string;
  port: number;
  dataDir: string;
  seedFile: string;
  env: Record<string, string>;
  /** In-memory DynamoDB and executions (scripts/bench/memory-server.ts) instead of `npm start`'s on-disk data dir. */
  inMemory?: boolean;
  readyTimeoutMs?: number;
  /**
   * A wrapper script run instead of `local/start.ts`, with the same arguments (it imports local/start.ts itself,
   * e.g. scripts/bench/local-cost.ts answering memory questions over IPC), and node options before it.
   */
  wrapper?: { script: string; args?: string[]; nodeArgs?: string[] };
  /** An IPC channel to the child (child.send / 'message'). */
  ipc?: boolean;
}): Promise<ServerChild> {
  const url = `http://127.0.0.1:${opts.port}`;
  const startArgs = ['--port', String(opts.port), '--data-dir', opts.dataDir, '--seed', opts.seedFile, '--quiet'];
  const argv = opts.inMemory
    ? ['scripts/bench/memory-server.ts', String(opts.port), opts.seedFile]
    : opts.wrapper
      ? [...(opts.wrapper.nodeArgs ?? []), opts.wrapper.script, ...(opts.wrapper.args ?? []), ...startArgs]
      : ['local/start.ts', ...startArgs];
  const child = trackChild(
    spawn(process.execPath, argv, {
      cwd: opts.projectDir,
      env: { ...process.env, ...opts.env, ISSUER: url, NODE_OPTIONS: '' },
      stdio: opts.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    }),
  );
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`the server child exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    try {
      const res = await fetch(`${url}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) {
        await res.arrayBuffer();
        break;
      }
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`the server child did not become ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, pid: child.pid!, url, output: () => output };
}
