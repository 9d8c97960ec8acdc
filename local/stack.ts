// The whole local stack in one process: DynamoDB (dynalite in-process, or AWS's DynamoDB Local as a child process,
// see ./dynamodb.ts), the local Step Functions and SNS behind one AWS endpoint, and the API Gateway emulation calling
// the real handlers. Local mode changes only endpoints and configuration (docs/architecture.md): the handlers use
// their real AWS SDK clients, pointed here by AWS_ENDPOINT_URL_<SERVICE>.
//
// One stack per process: the handlers read their configuration and create their AWS clients once per process. A
// stack can be closed and started again in the same process only with the same settings (it then reuses the same
// ports, so the cached clients still reach it); otherwise start() throws.
import { WORKFLOWS, workflowSubstitutions } from '../statemachines/workflows.ts';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SNSEvent } from 'aws-lambda';
import { TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../functions/routes.ts';
import { setAwsCallObserver, setLocalClientSetup } from '../functions/adapters/aws.ts';
import { useInProcess, type LocalService } from './inprocess.ts';
import type { AwsCall } from '../functions/adapters/aws.ts';
import { DYNAMODB_ENGINES, isDynamoDbEngine, startLocalDynamoDb, LOCAL_ACCOUNT_ID, LOCAL_REGION } from './dynamodb.ts';
import type { DynamoDbEngine } from './dynamodb.ts';
import { LocalSns, formatDeviceNotification } from './sns.ts';
import type { PlatformEndpoint, PublishedMessage } from './sns.ts';
import { removeStateFile, writeStateFile } from './state-file.ts';
import { SETTINGS } from '../functions/settings.ts';
import { LocalStepFunctions } from './stepfunctions.ts';
import { LocalSqs } from './sqs.ts';
import type { SqsMessage } from './sqs.ts';
import type { ExecutionRecord, HistoryEvent } from './stepfunctions.ts';
import { startAwsEndpoint } from './aws-endpoint.ts';
import { LocalSes } from './ses.ts';
import { Outbox, OUTBOX_FILE, type OutboxEntry } from './outbox.ts';
import { lambdaContext, moduleHandlerLoader, startApiServer } from './api.ts';
import type { HttpsListenerOptions, RequestLogEntry } from './api.ts';

export type { ExecutionRecord, HistoryEvent } from './stepfunctions.ts';
export type { PlatformEndpoint, PublishedMessage } from './sns.ts';
export type { OutboxEntry } from './outbox.ts';
export type { RequestLogEntry } from './api.ts';
export type { AwsCall } from '../functions/adapters/aws.ts';
export type { DynamoDbEngine } from './dynamodb.ts';

export type LocalStackOptions = {
  /** 0 = random; default 8080. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default http://localhost:<port>. */
  issuer?: string;
  /**
   * DynamoDB engine: 'dynalite' (in-process, instant) or 'dynamodb-local' (AWS's DynamoDB Local; needs `java` on
   * PATH, about 1.5 s to start). Default: the env var CIBA_LOCAL_DYNAMODB, else 'dynalite'.
   */
  dynamodb?: DynamoDbEngine;
  /** Where DynamoDB data, executions and signing keys live; null/absent = in memory (keys in a temp dir removed on close). */
  dataDir?: string | null;
  /**
   * The lock already taken on `dataDir` (`npm start` takes it before anything else); released on close. Without
   * it, a stack with a data dir takes the lock itself (lockDataDir).
   */
  dataDirLock?: DataDirLock;
  /** Extra configuration variables (functions/config.ts), e.g. { CIBA_POLL_INTERVAL: '1' }. */
  env?: Record<string, string>;
  /** Parsed seed (docs/seed-file.md), loaded with functions/admin/seed.ts before the first request is served. */
  seed?: unknown;
  /** No console output from the stack itself (device notifications, outbox lines). */
  quiet?: boolean;
  /** Called after every HTTP response (timings for `npm run bench`). */
  onRequest?: (entry: RequestLogEntry) => void;
  /** Also serve the API over HTTPS with client certificates (mutual TLS, RFC 8705; see local/api.ts). */
  https?: HttpsListenerOptions;
};

export type LocalStack = {
  url: string;
  /** The mutual-TLS listener (https://localhost:<port>), when the `https` option was given. */
  mtlsUrl?: string;
  issuer: string;
  /** The data directory, or null when in memory. */
  dataDir: string | null;
  /** What the seed loaded (undefined without a seed). */
  seeded?: { clients: number; users: number; devices: number };
  close(): Promise<void>;
  stepFunctions: {
    /** The workflows' ARNs by name (statemachines/workflows.ts): `poll`, `notify`. */
    stateMachineArns: Record<'poll' | 'notify', string>;
    executions(): ExecutionRecord[];
    history(arn: string): HistoryEvent[];
    describe(nameOrArn: string): ExecutionRecord | undefined;
    /** A running execution's state, and whether it waits for a callback (its task token is out). */
    position(nameOrArn: string): { state: string; waiting: boolean } | undefined;
    waitForStatus(name: string, status: string, timeoutMs?: number): Promise<ExecutionRecord>;
  };
  sns: {
    deviceTopicArn: string;
    messages(): PublishedMessage[];
    subscribe(topicArn: string, fn: (event: SNSEvent) => Promise<void>): () => void;
    createTopic(name: string): string;
    /** SNS mobile push endpoints made from device push tokens (every platform has a local application). */
    platformEndpoints(): PlatformEndpoint[];
    /** Resolves when every delivery to subscribers started so far has finished. */
    drain(): Promise<void>;
  };
  /** The dead-letter queue of undeliverable ping/push notifications (also readable with the AWS SDK/CLI at the AWS endpoint). */
  sqs: {
    deadLetterQueueUrl: string;
    deadLetters(): SqsMessage[];
  };
  /**
   * What AWS would have sent to users (SNS mobile push, SMS, SES e-mail): `<data dir>/outbox.jsonl` (in-memory
   * stacks: in their temp dir), also printed unless quiet (local/outbox.ts).
   */
  outbox: { file: string; entries(): OutboxEntry[] };
  /** The local AWS endpoint (Step Functions, SNS, SQS, SES): for the AWS CLI or SDK with --endpoint-url. */
  awsEndpoint: string;
  awsCalls: { record(): void; calls(): AwsCall[]; reset(): void };
};

export const TABLE_NAME = 'ciba';
export const DEVICE_TOPIC_NAME = 'ciba-device';
export const DELIVERY_TOPIC_NAME = 'ciba-delivery';
export const DEAD_LETTER_QUEUE_NAME = 'ciba-delivery-dlq';

export const localFunctionArn = (name: string): string =>
  `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${name}`;

// Process-wide: the running stack, and the settings of the first one (handlers cache configuration per process).
let running = false;
let pinned:
  | {
      env: Record<string, string>;
      apiPort: number;
      dynamoPort: number;
      awsPort: number;
      host: string;
      engine: DynamoDbEngine;
      tempDir?: string;
    }
  | undefined;

// The running stack's services as the handlers' SDK clients reach them in-process (./inprocess.ts): dynalite's
// handler and the AWS endpoint's. Looked up per call, so clients made for a stack reach its restarted successor;
// unset while no stack runs (calls then fail as a refused connection would).
const inProcess: { dynamo?: LocalService; aws?: LocalService } = {};
/** The SDK clients' services the AWS endpoint serves (KMS and Secrets Manager have no local service). */
const AWS_ENDPOINT_SERVICES = new Set(['StepFunctions', 'SNS', 'SESv2', 'SQS']);

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (running) {
    throw new Error(
      'a local stack is already running in this process; close() it first (handlers read their configuration once per process)',
    );
  }
  running = true;
  const parts: Parts = {};
  try {
    return await start(options, parts);
  } catch (err) {
    await shutdown(parts);
    running = false;
    throw err;
  }
}

/** What has been started so far, for shutdown. */
type Parts = {
  lock?: DataDirLock;
  /** Releases the requests held until the stack is ready: `false` when the start failed (they get 503). */
  markReady?: (started: boolean) => void;
  api?: { close(): Promise<void> };
  stepFunctions?: LocalStepFunctions;
  sns?: LocalSns;
  aws?: { close(): Promise<void> };
  dynamo?: { close(): Promise<void> };
  tempDir?: string;
  /** <dataDir>/local-stack.json (./state-file.ts), once written. */
  stateFile?: string;
};

/**
 * Stops in dependency order: no new HTTP requests (in-flight ones finish), SNS deliveries, then the workflow (running
 * executions halt, in-flight task functions finish), SNS again, and only then the AWS endpoint and DynamoDB they use.
 */
async function shutdown(parts: Parts): Promise<void> {
  const step = async (name: string, fn: (() => Promise<unknown>) | undefined) => {
    try {
      await fn?.();
    } catch (err) {
      console.error(`[stack] stopping ${name}:`, err);
    }
  };
  parts.markReady?.(false); // requests held during a failed start get 503 (a stack that started ignores this)
  if (parts.stateFile) removeStateFile(parts.stateFile); // no new admin commands reach a stopping stack
  await step('API', parts.api && (() => parts.api!.close()));
  // Deliveries in flight report back to Step Functions: let them finish first, then stop the workflow (whose tasks
  // may publish once more), then drain what that published.
  await step('SNS', parts.sns && (() => parts.sns!.drain()));
  await step('Step Functions', parts.stepFunctions && (() => parts.stepFunctions!.close()));
  await step('SNS', parts.sns && (() => parts.sns!.drain()));
  await step('AWS endpoint', parts.aws && (() => parts.aws!.close()));
  await step('DynamoDB', parts.dynamo && (() => parts.dynamo!.close()));
  await step(
    'temp dir',
    parts.tempDir !== undefined ? () => rm(parts.tempDir!, { recursive: true, force: true }) : undefined,
  );
  parts.lock?.release();
  for (const key of Object.keys(parts) as (keyof Parts)[]) delete parts[key];
}

async function start(options: LocalStackOptions, parts: Parts): Promise<LocalStack> {
  const host = options.host ?? pinned?.host ?? '127.0.0.1';
  const dataDir = options.dataDir ?? null;
  const quiet = options.quiet ?? false;
  if (pinned && host !== pinned.host) throw restartError(['host']);
  const engine: string = options.dynamodb ?? (process.env.CIBA_LOCAL_DYNAMODB || 'dynalite');
  if (!isDynamoDbEngine(engine)) {
    const from = options.dynamodb === undefined ? 'CIBA_LOCAL_DYNAMODB' : 'the dynamodb option';
    throw new Error(
      `${from} is ${JSON.stringify(engine)}; use ${DYNAMODB_ENGINES.map((e) => JSON.stringify(e)).join(' or ')}`,
    );
  }
  if (pinned && engine !== pinned.engine) throw restartError(['dynamodb']);

  let keysDir: string;
  if (dataDir) {
    if (options.dataDirLock && options.dataDirLock.dir !== dataDir) throw new Error('dataDirLock is not on dataDir');
    parts.lock = options.dataDirLock ?? lockDataDir(dataDir);
    await mkdir(dataDir, { recursive: true });
    keysDir = dataDir;
  } else {
    keysDir = pinned?.tempDir ?? (await mkdtemp(join(tmpdir(), 'ciba-local-')));
    await mkdir(keysDir, { recursive: true });
    parts.tempDir = keysDir;
  }

  // The API listens first, so no listener of the local services (on ports the OS picks) can take the port asked for.
  // Requests are accepted at once but held until the environment is set and the seed is loaded.
  let markReady!: (started: boolean) => void;
  const ready = new Promise<boolean>((resolve) => (markReady = resolve));
  parts.markReady = markReady;
  const api = await startApiServer({
    host,
    // Port 0 on a restart reuses the first stack's port, so the default issuer stays the same.
    port: pinned && (options.port ?? 8080) === 0 ? pinned.apiPort : (options.port ?? 8080),
    ready,
    ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    ...(options.https ? { https: options.https } : {}),
  });
  parts.api = api;

  const dynamo = await startLocalDynamoDb({
    engine,
    dataDir,
    tableName: TABLE_NAME,
    host,
    port: pinned?.dynamoPort ?? 0,
  });
  parts.dynamo = {
    close: () => {
      inProcess.dynamo = undefined;
      return dynamo.close();
    },
  };
  inProcess.dynamo = dynamo.service;

  // SNS mobile push, SMS and e-mail reach nobody locally: they are written to the outbox (and printed).
  const outbox = new Outbox(join(keysDir, OUTBOX_FILE), quiet ? undefined : (line) => console.log(line));
  let deviceTopicArn = '';
  const sns = new LocalSns({
    onPublish: (m) => {
      if (quiet || m.topicArn !== deviceTopicArn) return;
      // The demo finds this server by ISSUER or PORT (scripts/demo.ts): name them when they are not the defaults.
      const demo = options.issuer
        ? `ISSUER=${options.issuer} npm run demo`
        : api.port === 8080
          ? 'npm run demo'
          : `PORT=${api.port} npm run demo`;
      const line = formatDeviceNotification(m.message, Date.now(), demo);
      if (line) console.log(line);
    },
    onDirectPublish: (m) => outbox.append({ channel: m.channel, to: m.to, message: m.message }, m.time),
  });
  const ses = new LocalSes({
    onSend: (e) => {
      for (const to of e.to) outbox.append({ channel: 'email', to, message: `${e.subject}\n\n${e.text}` }, e.time);
    },
  });
  deviceTopicArn = sns.createTopic(DEVICE_TOPIC_NAME);
  const deliveryTopicArn = sns.createTopic(DELIVERY_TOPIC_NAME);
  // Every SNS mobile push platform is accepted locally (device channels of type sns; nothing is delivered).
  const pushPlatforms = {
    CIBA_SNS_PLATFORM_FCM_ARN: sns.createPlatformApplication('GCM', 'ciba-local'),
    CIBA_SNS_PLATFORM_APNS_ARN: sns.createPlatformApplication('APNS', 'ciba-local'),
    CIBA_SNS_PLATFORM_APNS_SANDBOX_ARN: sns.createPlatformApplication('APNS_SANDBOX', 'ciba-local'),
  };
  parts.sns = sns;

  const sqs = new LocalSqs({ dataDir });

  const stepFunctions = new LocalStepFunctions({ dynamoDbEndpoint: dynamo.endpoint, sqs, dataDir });
  parts.stepFunctions = stepFunctions;

  const aws = await startAwsEndpoint({ stepFunctions, sns, sqs, ses, host, port: pinned?.awsPort ?? 0 });
  parts.aws = {
    close: () => {
      inProcess.aws = undefined;
      return aws.close();
    },
  };
  inProcess.aws = aws.serve;
  // The handlers' SDK clients (created lazily, after this) call dynalite and the AWS endpoint in-process, without
  // TCP or SigV4 signing (./inprocess.ts): the same requests and replies, a fraction of the CPU. DynamoDB Local is
  // another process, reached over HTTP as before.
  setLocalClientSetup((client, service) => {
    if (service === 'DynamoDB') {
      if (engine === 'dynalite') useInProcess(client, () => inProcess.dynamo);
    } else if (AWS_ENDPOINT_SERVICES.has(service)) useInProcess(client, () => inProcess.aws);
  });
  const deadLetterQueue = sqs.createQueue(DEAD_LETTER_QUEUE_NAME); // its URL points at the AWS endpoint

  const issuer = (options.issuer ?? `http://localhost:${api.port}`).replace(/\/+$/, '');
  const stateMachineArns = Object.fromEntries(
    WORKFLOWS.map((w) => [w.name, `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:stateMachine:ciba-${w.name}`]),
  ) as Record<(typeof WORKFLOWS)[number]['name'], string>;
  const env: Record<string, string> = {
    ISSUER: issuer,
    TABLE_NAME,
    POLL_STATE_MACHINE_ARN: stateMachineArns.poll,
    NOTIFY_STATE_MACHINE_ARN: stateMachineArns.notify,
    DEVICE_TOPIC_ARN: deviceTopicArn,
    DELIVERY_TOPIC_ARN: deliveryTopicArn,
    DELIVERY_DLQ_URL: deadLetterQueue.url,
    CIBA_LOCAL: 'true',
    KEYS_SOURCE: 'file',
    KEYS_FILE: join(keysDir, 'signing-keys.json'),
    SEAL_KEY_FILE: join(keysDir, 'sealing-key.json'),
    CIBA_VAPID_KEY_FILE: join(keysDir, 'vapid-key.json'),
    // CloudWatch EMF lines would only clutter the console locally.
    CIBA_METRICS: 'off',
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SFN: aws.url,
    AWS_ENDPOINT_URL_SNS: aws.url,
    AWS_ENDPOINT_URL_SQS: aws.url,
    AWS_ENDPOINT_URL_SESV2: aws.url,
    // RFC 8705 §5: the mutual-TLS listener is where mtls_endpoint_aliases point.
    ...(api.httpsPort !== undefined ? { CIBA_MTLS_BASE_URL: `https://localhost:${api.httpsPort}` } : {}),
    ...pushPlatforms,
    ...options.env,
  };
  if (pinned) {
    const changed = [...new Set([...Object.keys(env), ...Object.keys(pinned.env)])].filter(
      (k) => env[k] !== pinned?.env[k],
    );
    if (changed.length > 0) throw restartError(changed);
  }
  // Before any handler module is imported (they read the configuration once). From here on this process is tied
  // to these settings, even if the start fails later (the seed loader may already have read the configuration).
  Object.assign(process.env, env);
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
  pinned ??= {
    env,
    apiPort: api.port,
    dynamoPort: dynamo.port,
    awsPort: aws.port,
    host,
    engine,
    ...(dataDir ? {} : { tempDir: keysDir }),
  };

  // The workflow's functions, invoked by the local Step Functions as Lambda would (payload, context).
  const loadHandler = moduleHandlerLoader();
  for (const fn of WORKFLOW_FUNCTIONS) {
    stepFunctions.registerFunction(fn.name, async (event) => {
      const handler = (await loadHandler(fn)) as unknown as (event: unknown, context: unknown) => Promise<unknown>;
      return handler(event, lambdaContext(fn.name));
    });
  }
  // Topic subscribers, invoked by the local SNS fan-out with the SNSEvent a Lambda subscription receives.
  for (const fn of TOPIC_SUBSCRIBERS) {
    const topicArn = fn.topic === 'delivery' ? deliveryTopicArn : deviceTopicArn;
    sns.subscribe(topicArn, async (event) => {
      const handler = (await loadHandler(fn)) as unknown as (event: unknown, context: unknown) => Promise<unknown>;
      await handler(event, lambdaContext(fn.name));
    });
  }
  // Executions that were running when this data dir's stack last stopped resume here.
  for (const workflow of WORKFLOWS) {
    const substitutions = workflowSubstitutions(workflow, {
      tableName: TABLE_NAME,
      partition: 'aws',
      functionArn: localFunctionArn,
    });
    stepFunctions.addStateMachine(`ciba-${workflow.name}`, await readFile(workflow.path, 'utf8'), substitutions);
  }

  let seeded: LocalStack['seeded'];
  if (options.seed !== undefined) {
    const { loadSeed } = await import('../functions/admin/seed.ts');
    seeded = await loadSeed(options.seed);
  }

  markReady(true);
  if (dataDir) {
    parts.stateFile = writeStateFile(dataDir, {
      pid: process.pid,
      issuer,
      url: api.url,
      port: api.port,
      region: LOCAL_REGION,
      tableName: TABLE_NAME,
      dynamodbEndpoint: dynamo.endpoint,
      awsEndpoint: aws.url,
      keysFile: env.KEYS_FILE!,
      sealKeyFile: env.SEAL_KEY_FILE!,
      env: Object.fromEntries(
        Object.values(SETTINGS).flatMap((s): [string, string][] => {
          const value = process.env[s.env];
          return value === undefined ? [] : [[s.env, value]];
        }),
      ),
    });
  }

  const calls: AwsCall[] = [];
  let closing: Promise<void> | undefined;
  return {
    url: api.url,
    ...(api.httpsPort !== undefined ? { mtlsUrl: `https://localhost:${api.httpsPort}` } : {}),
    issuer,
    dataDir,
    ...(seeded ? { seeded } : {}),
    close: () =>
      (closing ??= (async () => {
        setAwsCallObserver(undefined);
        await shutdown(parts);
        running = false;
      })()),
    stepFunctions: {
      stateMachineArns,
      executions: () => stepFunctions.executions(),
      history: (arn) => stepFunctions.history(arn),
      describe: (nameOrArn) => stepFunctions.describe(nameOrArn),
      position: (nameOrArn) => stepFunctions.position(nameOrArn),
      waitForStatus: (name, status, timeoutMs) => stepFunctions.waitForStatus(name, status, timeoutMs),
    },
    sns: {
      deviceTopicArn,
      messages: () => sns.messages(),
      subscribe: (topicArn, fn) => sns.subscribe(topicArn, fn),
      createTopic: (name) => sns.createTopic(name),
      platformEndpoints: () => sns.platformEndpoints(),
      drain: () => sns.drain(),
    },
    sqs: {
      deadLetterQueueUrl: deadLetterQueue.url,
      deadLetters: () => sqs.messages(DEAD_LETTER_QUEUE_NAME),
    },
    outbox: { file: outbox.file, entries: () => outbox.entries() },
    awsEndpoint: aws.url,
    awsCalls: {
      record: () => setAwsCallObserver((call) => calls.push(call)),
      calls: () => [...calls],
      reset: () => {
        calls.length = 0;
      },
    },
  };
}

function restartError(changed: string[]): Error {
  return new Error(
    `a local stack already ran in this process with different settings (${changed.join(', ')}); the handlers cache ` +
      'their configuration and AWS clients per process, so start this one in a new process',
  );
}

// ---- the data dir lock ----

/** Another live process (or stack in this process) uses the data dir. */
export class DataDirInUseError extends Error {
  override readonly name = 'DataDirInUseError';
  readonly pid: number | undefined;
  constructor(dir: string, pid: number | undefined) {
    super(`the data dir ${dir} is in use by another local stack${pid === undefined ? '' : ` (pid ${pid})`}`);
    this.pid = pid;
  }
}

export type DataDirLock = { dir: string; release(): void };

const LOCK_FILE = 'local-stack.lock';
/** The lock files this process holds. */
const heldLocks = new Set<string>();

/**
 * Takes `<dir>/local-stack.lock`: created exclusively (O_EXCL) with this process's pid in it. A lock whose process
 * is gone (a stack that crashed or was killed) is taken over; a live holder gives DataDirInUseError. (Two starts
 * taking over the same stale lock at the same instant are not told apart.)
 */
export function lockDataDir(dir: string): DataDirLock {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, LOCK_FILE);
  for (let attempt = 1; ; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      heldLocks.add(file);
      return { dir, release: () => releaseLock(file) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = lockHolder(file);
    if (holder.alive || attempt === 3) throw new DataDirInUseError(dir, holder.pid);
    rmSync(file, { force: true }); // stale: its process is gone
  }
}

function lockHolder(file: string): { pid?: number; alive: boolean } {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    // No pid yet: being written this instant (or left empty by a crash long ago).
    if (!Number.isInteger(pid) || pid <= 0) return { alive: Date.now() - statSync(file).mtimeMs < 5000 };
    if (pid === process.pid) return { pid, alive: heldLocks.has(file) };
    try {
      process.kill(pid, 0);
      return { pid, alive: true };
    } catch (err) {
      return { pid, alive: (err as NodeJS.ErrnoException).code === 'EPERM' };
    }
  } catch {
    return { alive: false }; // removed meanwhile
  }
}

function releaseLock(file: string): void {
  if (!heldLocks.delete(file)) return;
  try {
    if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
  } catch {
    // already gone
  }
}
