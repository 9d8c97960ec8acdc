// The local Step Functions service as the handlers and tests see it: the JSON-protocol operations
// (StartExecution, DescribeExecution, GetExecutionHistory, SendTaskSuccess, SendTaskFailure, RedriveExecution), state machines added
// in-process, and in-process inspection for tests and `npm run bench`. See ../stepfunctions.ts for the overview.
import { randomUUID } from 'node:crypto';
import { AwsError, jsonErrorReply, jsonInput, jsonOperation, jsonReply } from '../aws-endpoint.ts';
import type { AwsReply } from '../aws-endpoint.ts';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from '../dynamodb.ts';
import type { LocalSqs } from '../sqs.ts';
import { prepareMachine } from './definition.ts';
import type { Json } from './definition.ts';
import { Engine } from './engine.ts';
import type { Machine } from './engine.ts';
import { Integrations } from './integrations.ts';
import type { LocalFunction } from './integrations.ts';
import { ExecutionStore } from './journal.ts';
import type { ExecutionRecord, ExecutionStatus, HistoryEvent, StoredExecution } from './journal.ts';

/** A Step Functions API error; `code` becomes the `__type` the SDK maps to `err.name`. */
export class SfnError extends AwsError {}

export type LocalStepFunctionsOptions = {
  region?: string;
  accountId?: string;
  /** For the dynamodb:updateItem integration. */
  dynamoDbEndpoint?: string;
  /** For the sqs:sendMessage integration. */
  sqs?: LocalSqs;
  /** Journal executions to <dataDir>/stepfunctions.jsonl, resumed on the next start (in memory when absent/null). */
  dataDir?: string | null;
  /** Terminal executions kept (newest first; older ones are forgotten). Default 1000. */
  retainExecutions?: number;
  log?: (line: string) => void;
};

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{64}$/;
const MAX_PAYLOAD = 256 * 1024;
// AWS: 1–80 characters; no whitespace, brackets, wildcards, special characters or control characters.
const INVALID_NAME_CHAR = /[\s<>{}[\]?*"#%\\^|~`$&,;:/\p{Cc}]/u;
const TERMINAL: readonly string[] = ['SUCCEEDED', 'FAILED'];
/** Step Functions redrives an unsuccessful Standard execution up to 14 days after it stopped. */
const REDRIVE_PERIOD_MS = 14 * 86_400_000;
/** The statuses RedriveExecution accepts (this service ends executions only as SUCCEEDED or FAILED). */
const REDRIVABLE: readonly string[] = ['FAILED', 'ABORTED', 'TIMED_OUT'];

export class LocalStepFunctions {
  readonly region: string;
  readonly accountId: string;
  readonly #machines = new Map<string, Machine>();
  readonly #store: ExecutionStore;
  readonly #integrations: Integrations;
  readonly #engine: Engine;
  readonly #watchers = new Set<() => void>();
  /** The client token of each execution's latest redrive (RedriveExecution is idempotent per token). */
  readonly #redriveTokens = new Map<string, string>();
  readonly #log: (line: string) => void;
  #closed = false;

  constructor(options: LocalStepFunctionsOptions = {}) {
    this.region = options.region ?? LOCAL_REGION;
    this.accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
    this.#log = options.log ?? ((line) => console.error(line));
    this.#store = new ExecutionStore({
      dataDir: options.dataDir ?? null,
      retain: options.retainExecutions,
      log: this.#log,
    });
    this.#store.onChange = () => {
      for (const watcher of [...this.#watchers]) watcher();
    };
    this.#integrations = new Integrations({
      region: this.region,
      accountId: this.accountId,
      log: this.#log,
      ...(options.dynamoDbEndpoint ? { dynamoDbEndpoint: options.dynamoDbEndpoint } : {}),
      ...(options.sqs ? { sqs: options.sqs } : {}),
    });
    this.#engine = new Engine(this.#store, this.#integrations, { accountId: this.accountId, log: this.#log });
  }

  /** Registers the local stand-in for a Lambda function (by function name). */
  registerFunction(name: string, fn: LocalFunction): void {
    this.#integrations.registerFunction(name, fn);
  }

  /**
   * Adds a state machine from its ASL (text or parsed), after replacing `${Placeholders}` with `substitutions`
   * (as CDK's definitionSubstitutions do). Throws if a placeholder is left or the definition uses something this
   * local service cannot run faithfully. Its executions that were running when the service last stopped resume now
   * (register the functions first). Returns the state machine ARN.
   */
  addStateMachine(name: string, definition: string | object, substitutions: Record<string, string> = {}): string {
    const prepared = prepareMachine(definition, substitutions);
    for (const task of prepared.tasks.values()) this.#integrations.check(task.stateName, task.integration);
    const arn = `arn:aws:states:${this.region}:${this.accountId}:stateMachine:${name}`;
    const machine: Machine = { arn, name, prepared };
    this.#machines.set(arn, machine);
    const resumed = this.#engine.resume(machine);
    if (resumed > 0) this.#log(`[stepfunctions] ${name}: resumed ${resumed} execution(s) running at the last stop`);
    return arn;
  }

  // ---- in-process inspection (tests, `npm run bench`) ----

  executions(): ExecutionRecord[] {
    return [...this.#store.values()].map((e) => ({ ...e.record }));
  }

  history(executionArn: string): HistoryEvent[] {
    return structuredClone(this.#store.get(executionArn)?.history ?? []);
  }

  describe(nameOrArn: string): ExecutionRecord | undefined {
    const exec = this.#find(nameOrArn);
    return exec ? { ...exec.record } : undefined;
  }

  /** Where a running execution (by name or ARN) is: its state, and whether that state waits for a callback. */
  position(nameOrArn: string): { state: string; waiting: boolean } | undefined {
    const position = this.#find(nameOrArn)?.position;
    return position && { state: position.state, waiting: position.deadline !== undefined && !position.outcome };
  }

  /** Resolves when the execution (by name or ARN) has `status`; rejects if it ends otherwise or on timeout. */
  waitForStatus(nameOrArn: string, status: ExecutionStatus | string, timeoutMs = 10_000): Promise<ExecutionRecord> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const rec = this.#find(nameOrArn)?.record;
        if (rec?.status === status) done(() => resolve({ ...rec }));
        else if (rec && TERMINAL.includes(rec.status)) {
          const why = `${rec.error ?? ''} ${rec.cause ?? ''}`;
          done(() => reject(new Error(`execution ${nameOrArn} ended ${rec.status} (${why}), not ${status}`)));
        }
      };
      const timer = setTimeout(() => {
        const now = this.#find(nameOrArn)?.record.status ?? 'not started';
        done(() => reject(new Error(`execution ${nameOrArn} is ${now} after ${timeoutMs} ms, not ${status}`)));
      }, timeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.#watchers.delete(check);
        settle();
      };
      this.#watchers.add(check);
      check();
    });
  }

  // ---- the API ----

  /** Serves one awsJson1_0 request (`target` is the X-Amz-Target header). */
  async handleHttp(target: string, body: string): Promise<AwsReply> {
    try {
      return jsonReply(await this.call(jsonOperation(target), jsonInput(body)));
    } catch (err) {
      return jsonErrorReply(err, this.#log, 'stepfunctions', (e) => ({
        type: e.code === 'UnknownOperationException' ? e.code : `com.amazonaws.swf.service.v2.model#${e.code}`,
      }));
    }
  }

  /** One API operation with its JSON input; throws SfnError as the service would. */
  async call(operation: string, raw: unknown): Promise<Record<string, unknown>> {
    if (this.#closed) throw new SfnError('ServiceUnavailable', 'The local Step Functions service is shut down');
    const input = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    switch (operation) {
      case 'StartExecution':
        return this.#startExecution(input);
      case 'DescribeExecution':
        return this.#describeExecution(input);
      case 'GetExecutionHistory':
        return this.#getExecutionHistory(input);
      case 'SendTaskSuccess':
        return this.#sendTaskSuccess(input);
      case 'SendTaskFailure':
        return this.#sendTaskFailure(input);
      case 'RedriveExecution':
        return this.#redriveExecution(input);
      default:
        throw new SfnError(
          'UnknownOperationException',
          `Operation ${operation} is not supported by the local Step Functions service`,
        );
    }
  }

  /**
   * Stops serving. Running executions stay running in the journal (with a data dir, the next start resumes them);
   * task work already started (e.g. a function invocation) gets up to `graceMs` to finish.
   */
  async close(graceMs = 5000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#engine.close(graceMs);
  }

  #startExecution(input: Record<string, unknown>): Record<string, unknown> {
    const machine = this.#machine(requiredString(input, 'stateMachineArn'));
    const name = optionalString(input, 'name') ?? randomUUID();
    if (name.length < 1 || name.length > 80 || INVALID_NAME_CHAR.test(name)) {
      throw new SfnError('InvalidName', `Invalid Name: '${name}'`);
    }
    const inputText = optionalString(input, 'input') ?? '{}';
    let parsedInput: Json;
    try {
      parsedInput = JSON.parse(inputText) as Json;
    } catch {
      throw new SfnError('InvalidExecutionInput', 'Invalid Execution Input: the input is not valid JSON');
    }
    if (Buffer.byteLength(inputText) > MAX_PAYLOAD) {
      throw new SfnError('InvalidExecutionInput', 'Invalid Execution Input: the input exceeds 262144 bytes');
    }
    const executionArn = `arn:aws:states:${this.region}:${this.accountId}:execution:${machine.name}:${name}`;
    const existing = this.#store.get(executionArn)?.record;
    if (existing) {
      // Standard workflows: idempotent while running with the same input, otherwise the name is taken.
      if (existing.status === 'RUNNING' && existing.input === inputText)
        return { executionArn, startDate: existing.startDate / 1000 };
      throw new SfnError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    const record: ExecutionRecord = {
      executionArn,
      stateMachineArn: machine.arn,
      name,
      status: 'RUNNING',
      input: inputText,
      startDate: Date.now(),
    };
    this.#engine.start(machine, record, parsedInput);
    return { executionArn, startDate: record.startDate / 1000 };
  }

  #describeExecution(input: Record<string, unknown>): Record<string, unknown> {
    const r = this.#execution(requiredString(input, 'executionArn')).record;
    return {
      executionArn: r.executionArn,
      stateMachineArn: r.stateMachineArn,
      name: r.name,
      status: r.status,
      startDate: r.startDate / 1000,
      ...(r.stopDate !== undefined ? { stopDate: r.stopDate / 1000 } : {}),
      input: r.input,
      inputDetails: { included: true },
      ...(r.output !== undefined ? { output: r.output, outputDetails: { included: true } } : {}),
      ...(r.error !== undefined ? { error: r.error } : {}),
      ...(r.cause !== undefined ? { cause: r.cause } : {}),
      redriveCount: r.redriveCount ?? 0,
      ...(r.redriveDate !== undefined ? { redriveDate: r.redriveDate / 1000 } : {}),
      ...redriveStatus(r),
    };
  }

  #redriveExecution(input: Record<string, unknown>): Record<string, unknown> {
    const exec = this.#execution(requiredString(input, 'executionArn'));
    const clientToken = optionalString(input, 'clientToken');
    if (clientToken !== undefined && (clientToken.length < 1 || clientToken.length > 64))
      throw new SfnError('ValidationException', 'clientToken: length must be from 1 to 64');
    const r = exec.record;
    // Idempotent for the same client token while the redrive it made runs (as AWS keeps tokens for a while).
    if (clientToken !== undefined && r.status === 'RUNNING' && this.#redriveTokens.get(r.executionArn) === clientToken)
      return { redriveDate: (r.redriveDate ?? Date.now()) / 1000 };
    const status = redriveStatus(r);
    if (status.redriveStatus !== 'REDRIVABLE')
      throw new SfnError('ExecutionNotRedrivable', `Execution Not Redrivable: ${status.redriveStatusReason}`);
    const machine = this.#machines.get(r.stateMachineArn);
    if (!machine)
      throw new SfnError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${r.stateMachineArn}'`);
    const redriveDate = Date.now();
    if (clientToken !== undefined) this.#redriveTokens.set(r.executionArn, clientToken);
    else this.#redriveTokens.delete(r.executionArn);
    this.#engine.redrive(machine, exec, redriveDate);
    return { redriveDate: redriveDate / 1000 };
  }

  #getExecutionHistory(input: Record<string, unknown>): Record<string, unknown> {
    const exec = this.#execution(requiredString(input, 'executionArn'));
    const machine = this.#machines.get(exec.record.stateMachineArn);
    const events = toAwsHistory(exec, machine, input.includeExecutionData !== false, this.accountId);
    if (input.reverseOrder === true) events.reverse();
    const { page, nextToken } = paginate(events, input);
    return { events: page, ...(nextToken ? { nextToken } : {}) };
  }

  #sendTaskSuccess(input: Record<string, unknown>): Record<string, unknown> {
    const token = this.#openToken(input);
    const output = requiredString(input, 'output');
    if (Buffer.byteLength(output) > MAX_PAYLOAD)
      throw new SfnError('InvalidOutput', 'Invalid Output: the output exceeds 262144 bytes');
    let value: Json;
    try {
      value = JSON.parse(output) as Json;
    } catch {
      throw new SfnError('InvalidOutput', 'Invalid Output: the output is not valid JSON');
    }
    this.#engine.answer(token, { output: value });
    return {};
  }

  #sendTaskFailure(input: Record<string, unknown>): Record<string, unknown> {
    const token = this.#openToken(input);
    const error = optionalString(input, 'error') ?? '';
    const cause = optionalString(input, 'cause') ?? '';
    if (error.length > 256) throw new SfnError('ValidationException', 'error: length must be at most 256');
    if (cause.length > 32768) throw new SfnError('ValidationException', 'cause: length must be at most 32768');
    this.#engine.answer(token, { error, cause });
    return {};
  }

  /** The token of a SendTask* call if its task is open, else the error AWS gives for it. */
  #openToken(input: Record<string, unknown>): string {
    const token = requiredString(input, 'taskToken');
    if (!TOKEN_PATTERN.test(token)) throw new SfnError('InvalidToken', "Invalid Token: 'Invalid token'");
    const status = this.#engine.tokenStatus(token);
    if (status === 'open') return token;
    if (status === 'unknown') throw new SfnError('TaskDoesNotExist', 'Task Does Not Exist');
    throw new SfnError('TaskTimedOut', "Task Timed Out: 'Provided task does not exist anymore'");
  }

  #find(nameOrArn: string): StoredExecution | undefined {
    const byArn = this.#store.get(nameOrArn);
    if (byArn) return byArn;
    let found: StoredExecution | undefined;
    for (const exec of this.#store.values()) if (exec.record.name === nameOrArn) found = exec;
    return found;
  }

  #machine(arn: string): Machine {
    if (!/^arn:aws:states:[a-z0-9-]+:\d{12}:stateMachine:[^:]+$/.test(arn))
      throw new SfnError('InvalidArn', `Invalid Arn: '${arn}'`);
    const machine = this.#machines.get(arn);
    if (!machine) throw new SfnError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${arn}'`);
    return machine;
  }

  #execution(arn: string): StoredExecution {
    if (!/^arn:aws:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/.test(arn))
      throw new SfnError('InvalidArn', `Invalid Arn: '${arn}'`);
    const exec = this.#store.get(arn);
    if (!exec) throw new SfnError('ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return exec;
  }
}

/** The history in GetExecutionHistory's shape (AWS event type names; events without an AWS equivalent omitted). */
function toAwsHistory(
  exec: StoredExecution,
  machine: Machine | undefined,
  includeData: boolean,
  accountId: string,
): Record<string, unknown>[] {
  const data = (key: string, v: unknown) => (includeData ? { [key]: JSON.stringify(v ?? null) } : {});
  const out: Record<string, unknown>[] = [];
  for (const e of exec.history) {
    let event: Record<string, unknown> | undefined;
    switch (e.type) {
      case 'ExecutionStarted': {
        const roleArn = `arn:aws:iam::${accountId}:role/local-stepfunctions`;
        event = { type: 'ExecutionStarted', executionStartedEventDetails: { ...data('input', e.input), roleArn } };
        break;
      }
      case 'StateEntered':
        event = {
          type: `${e.stateType}StateEntered`,
          stateEnteredEventDetails: { name: e.stateName, ...data('input', e.input) },
        };
        break;
      case 'StateExited':
        event = {
          type: `${e.stateType}StateExited`,
          stateExitedEventDetails: { name: e.stateName, ...data('output', e.output) },
        };
        break;
      case 'StateFailed': {
        if (e.stateType !== 'Task') break;
        const integration = machine?.prepared.tasks.get(e.stateName ?? '')?.integration ?? '';
        const [resourceType, ...rest] = integration.split(':');
        const details = { resourceType, resource: rest.join(':'), error: e.error, cause: e.cause };
        event =
          e.error === 'States.Timeout'
            ? { type: 'TaskTimedOut', taskTimedOutEventDetails: details }
            : { type: 'TaskFailed', taskFailedEventDetails: details };
        break;
      }
      case 'ExecutionSucceeded':
        event = { type: 'ExecutionSucceeded', executionSucceededEventDetails: data('output', e.output) };
        break;
      case 'ExecutionFailed':
        event = { type: 'ExecutionFailed', executionFailedEventDetails: { error: e.error, cause: e.cause } };
        break;
      case 'ExecutionRedriven':
        event = { type: 'ExecutionRedriven', executionRedrivenEventDetails: { redriveCount: e.redriveCount ?? 1 } };
        break;
      default:
        break;
    }
    if (event) out.push({ timestamp: e.timestamp / 1000, id: out.length + 1, previousEventId: out.length, ...event });
  }
  return out;
}

/** DescribeExecution's redriveStatus (and redriveStatusReason when not redrivable), as AWS words them. */
function redriveStatus(r: ExecutionRecord): { redriveStatus: string; redriveStatusReason?: string } {
  if (!REDRIVABLE.includes(r.status))
    return { redriveStatus: 'NOT_REDRIVABLE', redriveStatusReason: `Execution is ${r.status} and cannot be redriven.` };
  if (r.stopDate !== undefined && Date.now() - r.stopDate > REDRIVE_PERIOD_MS)
    return { redriveStatus: 'NOT_REDRIVABLE', redriveStatusReason: 'Execution redrivable period exceeded.' };
  return { redriveStatus: 'REDRIVABLE' };
}

// ---- input helpers ----

function requiredString(input: Record<string, unknown>, key: string): string {
  const value = input[key];
  if (typeof value !== 'string' || value === '') {
    throw new SfnError(
      'ValidationException',
      `1 validation error detected: Value at '${key}' failed to satisfy constraint: Member must not be null`,
    );
  }
  return value;
}

function optionalString(input: Record<string, unknown>, key: string): string | undefined {
  const value = input[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new SfnError('ValidationException', `Value at '${key}' must be a string`);
  return value;
}

function paginate<T>(items: T[], input: Record<string, unknown>): { page: T[]; nextToken?: string } {
  const max = input.maxResults === undefined || input.maxResults === 0 ? 100 : Number(input.maxResults);
  if (!Number.isInteger(max) || max < 0 || max > 1000)
    throw new SfnError('ValidationException', 'maxResults must be from 0 to 1000');
  let offset = 0;
  if (typeof input.nextToken === 'string') {
    offset = Number(Buffer.from(input.nextToken, 'base64url').toString());
    if (!Number.isInteger(offset) || offset < 0) throw new SfnError('InvalidToken', 'Invalid nextToken');
  }
  const page = items.slice(offset, offset + max);
  const next = offset + max;
  return next < items.length ? { page, nextToken: Buffer.from(String(next)).toString('base64url') } : { page };
}
