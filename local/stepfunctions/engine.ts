// Running executions: one run of the engine (aws-local-stepfunctions) per execution, the callback tasks' task
// tokens (minted here: the engine supplies no $$.Task.Token) and timeouts, and resuming the executions that were
// running when the service last stopped (see ../stepfunctions.ts for what a resume does and does not keep).
//
// Parking: a callback task whose function has returned waits, possibly for an hour, for SendTask* or its timeout.
// Its engine run (promises, closures, an AbortController, the engine's own timer: about 7 KB) is then ended and
// only the journal's position plus one timer are kept ('parked'); the answer or the timeout resumes the execution
// from that position exactly as a restart does. The journal is the same either way.
import { randomBytes } from 'node:crypto';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { ExecutionAbortedError, ExecutionError } from 'aws-local-stepfunctions';
import { callbackTimeoutMs } from './definition.ts';
import type { Json, PreparedMachine, TaskSpec } from './definition.ts';
import { taskError } from './integrations.ts';
import type { Integrations } from './integrations.ts';
import type { ExecutionRecord, ExecutionStore, HistoryEvent, Outcome, Position, StoredExecution } from './journal.ts';

export type Machine = { arn: string; name: string; prepared: PreparedMachine };

type Execution = {
  stored: StoredExecution;
  machine: Machine;
  /** Tokens of this execution's tasks (forgotten with the execution). */
  tokens: Set<string>;
  /** Tokens minted by $$.Task.Token reads and not yet claimed by a task. */
  minted: Set<string>;
  /**
   * A resumed run's callback: its token is what $$.Task.Token reads give until its task claims it; `answered` is
   * the open task, registered at resume (answerable at once) and taken over by the task when the engine reaches it.
   */
  resume?: { position: Position; answered?: Promise<Json> };
  /** A resumed run repeats the ExecutionStarted and StateEntered events the history already has. */
  skip: { started: boolean; entered: boolean };
  abort?: () => void;
  halted: boolean;
};

type TaskEntry =
  | {
      state: 'open';
      exec: Execution;
      stateName: string;
      resolve(v: Json): void;
      reject(e: Error): void;
      timer: NodeJS.Timeout;
    }
  /** An open callback whose run is parked: `exec` has no engine run; the answer or `timer` (the deadline) resumes it. */
  | { state: 'parked'; exec: Execution; stateName: string; timer: NodeJS.Timeout }
  | { state: 'completed' | 'timed-out' | 'dropped'; exec: Execution };

/** What a task token designates now: an open callback, a timed-out one, one otherwise closed, or nothing known. */
export type TokenStatus = 'open' | 'timed-out' | 'closed' | 'unknown';

type EngineEvent = {
  type: string;
  timestamp: number;
  input?: unknown;
  output?: unknown;
  state?: { name: string; type: string; input: unknown; output?: unknown };
  retry?: { attempt: number };
  Error?: string;
  Cause?: unknown;
};

export class Engine {
  readonly #store: ExecutionStore;
  readonly #integrations: Integrations;
  readonly #accountId: string;
  readonly #log: (line: string) => void;
  /** Executions run by this process (running, or ended while their tokens are remembered). */
  readonly #executions = new Map<string, Execution>();
  readonly #tokens = new Map<string, TaskEntry>();
  /** Task work (integration calls) still running. */
  readonly #inFlight = new Set<Promise<unknown>>();
  #closed = false;

  constructor(
    store: ExecutionStore,
    integrations: Integrations,
    options: { accountId: string; log: (line: string) => void },
  ) {
    this.#store = store;
    this.#integrations = integrations;
    this.#accountId = options.accountId;
    this.#log = options.log;
    store.onForget = (arn) => this.#forget(arn);
  }

  /** Records and runs a new execution. */
  start(machine: Machine, record: ExecutionRecord, input: Json): void {
    this.#store.apply({ t: 'start', record });
    const stored = this.#store.get(record.executionArn);
    if (stored) this.#run(this.#execution(machine, stored), input);
  }

  /**
   * RedriveExecution of a failed execution (the caller checks it may be): it runs again from the state it failed in,
   * with that state's input, under the same ARN; the history goes on with ExecutionRedriven. Tokens of its earlier
   * run are forgotten (a late SendTask* gets TaskDoesNotExist).
   */
  redrive(machine: Machine, stored: StoredExecution, redriveDate: number): void {
    const arn = stored.record.executionArn;
    const failedIn = stored.history.findLast((e) => e.type === 'StateEntered' && e.stateName !== undefined);
    // Failed before entering any state: from the start, with the execution's input.
    const state = failedIn?.stateName;
    const input = failedIn ? (failedIn.input ?? null) : (JSON.parse(stored.record.input) as Json);
    const previous = this.#executions.get(arn);
    if (previous) for (const token of previous.tokens) this.#tokens.delete(token);
    this.#store.apply({ t: 'redrive', arn, redriveDate, ...(state !== undefined ? { state } : {}), input });
    const exec = this.#execution(machine, stored);
    exec.skip = { started: true, entered: false }; // no second ExecutionStarted; the state is entered again
    this.#run(exec, input, state);
  }

  /** Runs the machine's executions that were running when the service stopped, from the state each was in. */
  resume(machine: Machine): number {
    let count = 0;
    for (const stored of [...this.#store.values()]) {
      const { record } = stored;
      if (record.status !== 'RUNNING' || record.stateMachineArn !== machine.arn) continue;
      if (this.#executions.has(record.executionArn)) continue;
      this.#resumeOne(machine, stored, true);
      count++;
    }
    return count;
  }

  /** Runs one running execution from its position (parked instead when it waits for a callback and `park`). */
  #resumeOne(machine: Machine, stored: StoredExecution, park: boolean): void {
    const { record, position } = stored;
    const exec = this.#execution(machine, stored);
    if (park && position?.token && !position.outcome && position.deadline !== undefined) {
      exec.halted = true;
      exec.tokens.add(position.token);
      this.#tokens.set(position.token, {
        state: 'parked',
        exec,
        stateName: position.state,
        timer: this.#parkTimer(position.token, position.deadline),
      });
      return;
    }
    exec.skip = {
      started: stored.history.some((e) => e.type === 'ExecutionStarted'),
      entered: position !== undefined,
    };
    if (position?.token) {
      exec.resume = { position: { ...position } };
      if (!position.outcome) {
        const answered = this.#open(exec, position.state, position.token, position.deadline ?? Date.now());
        answered.catch(() => {}); // it may time out before the engine gets to the task, which then sees that
        exec.resume.answered = answered;
      }
    }
    this.#run(exec, position ? position.input : (JSON.parse(record.input) as Json), position?.state);
  }

  /** Parks the open callback `token` of `exec` (its function has returned): ends the engine run, keeps a timer. */
  #park(exec: Execution, token: string, deadline: number): void {
    const entry = this.#tokens.get(token);
    if (entry?.state !== 'open' || exec.halted) return;
    clearTimeout(entry.timer);
    this.#tokens.set(token, {
      state: 'parked',
      exec,
      stateName: entry.stateName,
      timer: this.#parkTimer(token, deadline),
    });
    exec.halted = true;
    exec.abort?.(); // the run ends as aborted (nothing is journaled for that)…
    exec.abort = undefined;
    exec.resume = undefined;
    entry.reject(haltedError()); // …and its task settles, so the engine lets go of it
  }

  #parkTimer(token: string, deadline: number): NodeJS.Timeout {
    return setTimeout(() => this.#unpark(token), Math.max(0, deadline - Date.now()));
  }

  /** Resumes a parked execution (answered: the answer is journaled; else its deadline passed and it times out). */
  #unpark(token: string): void {
    const entry = this.#tokens.get(token);
    if (entry?.state !== 'parked' || this.#closed) return;
    clearTimeout(entry.timer);
    this.#tokens.delete(token);
    const { stored, machine } = entry.exec;
    this.#executions.delete(stored.record.executionArn);
    if (stored.record.status === 'RUNNING') this.#resumeOne(machine, stored, false);
  }

  tokenStatus(token: string): TokenStatus {
    const entry = this.#tokens.get(token);
    if (!entry) return 'unknown';
    if (entry.state === 'parked') return 'open';
    if (entry.state === 'open' || entry.state === 'timed-out') return entry.state;
    // AWS answers TaskTimedOut for a task already closed while its execution runs; once it ended, the token is unknown.
    return entry.exec.stored.record.status === 'RUNNING' ? 'closed' : 'unknown';
  }

  /** SendTaskSuccess / SendTaskFailure for an open task (check tokenStatus first). */
  answer(token: string, outcome: Outcome): void {
    const entry = this.#tokens.get(token);
    if (entry?.state === 'parked') {
      this.#store.apply({
        t: 'answer',
        arn: entry.exec.stored.record.executionArn,
        state: entry.stateName,
        token,
        outcome,
      });
      this.#unpark(token); // the resumed run's task takes the journaled answer as its result
      return;
    }
    if (entry?.state !== 'open') throw new Error('the task is not open');
    const arn = entry.exec.stored.record.executionArn;
    this.#store.apply({ t: 'answer', arn, state: entry.stateName, token, outcome });
    this.#close(token, 'completed');
    if ('output' in outcome) entry.resolve(outcome.output);
    else entry.reject(taskError(outcome.error, outcome.cause));
  }

  /**
   * Stops: the journal is sealed first, so running executions stay where they are for the next start; their runs
   * are aborted here and task work already started gets up to `graceMs` to finish.
   */
  async close(graceMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#store.seal();
    for (const exec of this.#executions.values()) if (exec.stored.record.status === 'RUNNING') this.#halt(exec);
    if (this.#inFlight.size > 0) {
      await Promise.race([Promise.allSettled([...this.#inFlight]), sleep(graceMs, undefined, { ref: false })]);
    }
    this.#integrations.close();
  }

  #execution(machine: Machine, stored: StoredExecution): Execution {
    const exec: Execution = {
      stored,
      machine,
      tokens: new Set(),
      minted: new Set(),
      skip: { started: false, entered: false },
      halted: false,
    };
    this.#executions.set(stored.record.executionArn, exec);
    return exec;
  }

  #run(exec: Execution, input: Json, from?: string): void {
    const { record } = exec.stored;
    const { machine } = exec;
    const mint = (): string => {
      const token = exec.resume?.position.token ?? randomBytes(48).toString('base64url');
      exec.minted.add(token);
      return token;
    };
    const context = {
      Execution: {
        Id: record.executionArn,
        Name: record.name,
        RoleArn: `arn:aws:iam::${this.#accountId}:role/local-stepfunctions`,
        RedriveCount: record.redriveCount ?? 0,
      },
      StateMachine: { Id: machine.arn, Name: machine.name },
      // The engine does not generate $$.Task.Token: every read mints one (a resumed run: the token it waited on).
      Task: {
        get Token() {
          return mint();
        },
      },
    };
    const handlers: Record<string, (params: Json) => Promise<Json>> = {};
    for (const task of machine.prepared.tasks.values())
      handlers[task.stateName] = (params) => this.#runTask(task, exec, params);
    let run: ReturnType<ReturnType<PreparedMachine['engineAt']>['run']>;
    try {
      run = machine.prepared.engineAt(from).run(input, { context, overrides: { taskResourceLocalHandlers: handlers } });
    } catch (err) {
      this.#finish(exec, 'FAILED', {
        error: 'States.Runtime',
        cause: err instanceof Error ? err.message : String(err),
      });
      return;
    }
    exec.abort = run.abort;
    const historyDone = this.#collectHistory(exec, run.eventLogs);
    void run.result
      .then(
        (output) => ({ output }),
        (err: unknown) => ({ err }),
      )
      .then(async (outcome) => {
        // The record turns terminal only once its history is complete (readers count states when it ends).
        await Promise.race([historyDone, sleep(1000, undefined, { ref: false })]);
        if ('output' in outcome) return this.#finish(exec, 'SUCCEEDED', { output: JSON.stringify(outcome.output) });
        if (outcome.err instanceof ExecutionAbortedError) return; // shutdown: the journal keeps it RUNNING
        const cause =
          outcome.err instanceof ExecutionError && outcome.err.cause instanceof Error ? outcome.err.cause : outcome.err;
        const e = cause instanceof Error ? cause : new Error(String(cause));
        this.#finish(exec, 'FAILED', { error: e.name, cause: e.message });
      });
  }

  /**
   * The override the engine calls for a Task state, with the state's effective input (after Parameters). It claims
   * its token synchronously: the engine evaluates Parameters (reading $$.Task.Token) and calls this in one go.
   */
  #runTask(task: TaskSpec, exec: Execution, params: Json): Promise<Json> {
    const token = this.#claimToken(exec, params);
    const plan = exec.resume?.position.state === task.stateName ? exec.resume : undefined;
    exec.resume = undefined;
    const work = this.#task(task, exec, params, token, plan);
    this.#inFlight.add(work);
    const forget = () => void this.#inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  async #task(
    task: TaskSpec,
    exec: Execution,
    params: Json,
    token: string | undefined,
    plan?: Execution['resume'],
  ): Promise<Json> {
    // The history is read from the engine asynchronously (microtasks): one turn later it has this state's
    // StateEntered, so the position is this state's and what this task journals below comes after it.
    await nextTurn();
    if (exec.halted) throw haltedError();
    if (task.integration !== 'lambda:invoke.waitForTaskToken') {
      if (token) this.#tokens.set(token, { state: 'dropped', exec });
      return this.#integrations.call(task.integration, params);
    }
    if (!token) throw taskError('States.Runtime', `${task.stateName}: no $$.Task.Token in the Parameters`);
    // Resumed while waiting: the integration has run, the task waits on (for the rest of its time).
    if (plan?.answered) return plan.answered;
    const outcome = plan?.position.outcome;
    if (outcome) {
      // Answered before the restart: the answer is the result, as it was going to be.
      exec.tokens.add(token);
      this.#tokens.set(token, { state: 'completed', exec });
      if ('output' in outcome) return outcome.output;
      throw taskError(outcome.error, outcome.cause);
    }
    const position = exec.stored.position;
    const stateInput = position?.state === task.stateName ? position.input : undefined;
    const deadline = Date.now() + callbackTimeoutMs(task, stateInput);
    const answered = this.#open(exec, task.stateName, token, deadline);
    const arn = exec.stored.record.executionArn;
    // The callback may arrive before the invoked function returns: the answer wins the race either way.
    const invoked = this.#integrations.call(task.integration, params).then(
      () => {
        if (this.#tokens.get(token)?.state === 'open') {
          this.#store.apply({ t: 'wait', arn, state: task.stateName, token, deadline });
          this.#park(exec, token, deadline);
        }
        return answered;
      },
      (err: unknown) => {
        this.#close(token, 'completed');
        throw err;
      },
    );
    return Promise.race([answered, invoked]);
  }

  #claimToken(exec: Execution, params: Json): string | undefined {
    let found: string | undefined;
    const visit = (value: Json): void => {
      if (typeof value === 'string') {
        if (exec.minted.has(value)) found = value;
      } else if (Array.isArray(value)) value.forEach(visit);
      else if (value && typeof value === 'object') Object.values(value).forEach(visit);
    };
    visit(params);
    exec.minted.clear(); // tokens read but not passed to this task can never be used
    return found;
  }

  /** An open callback task until `deadline`; then it fails with States.Timeout and the token answers TaskTimedOut. */
  #open(exec: Execution, stateName: string, token: string, deadline: number): Promise<Json> {
    return new Promise<Json>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.#close(token, 'timed-out');
          reject(taskError('States.Timeout', 'States.Timeout'));
        },
        Math.max(0, deadline - Date.now()),
      );
      exec.tokens.add(token);
      this.#tokens.set(token, { state: 'open', exec, stateName, resolve, reject, timer });
    });
  }

  #close(token: string, state: 'completed' | 'timed-out' | 'dropped'): void {
    const entry = this.#tokens.get(token);
    if (!entry || entry.state === 'timed-out') return; // a timed-out token keeps answering TaskTimedOut
    if (entry.state === 'parked') clearTimeout(entry.timer);
    if (entry.state === 'open') {
      clearTimeout(entry.timer);
      // A dropped task must not keep the engine waiting (its timers would keep the process alive).
      if (state === 'dropped') entry.reject(haltedError());
    }
    this.#tokens.set(token, { state, exec: entry.exec });
  }

  async #collectHistory(exec: Execution, events: AsyncGenerator<EngineEvent>): Promise<void> {
    const arn = exec.stored.record.executionArn;
    try {
      // Synchronous per event (no await in the body): #task relies on the history catching up within one turn.
      for await (const engineEvent of events) {
        const event = fromEngineEvent(engineEvent);
        if (!event) continue;
        if (event.type === 'ExecutionStarted' && exec.skip.started) exec.skip.started = false;
        else if (event.type === 'StateEntered' && exec.skip.entered) exec.skip.entered = false;
        else this.#store.apply({ t: 'event', arn, event });
      }
    } catch (err) {
      this.#log(
        `[stepfunctions] history of ${exec.stored.record.name}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  #finish(
    exec: Execution,
    status: 'SUCCEEDED' | 'FAILED',
    fields: { output?: string; error?: string; cause?: string },
  ): void {
    const { record } = exec.stored;
    if (record.status !== 'RUNNING' || this.#closed) return;
    this.#store.apply({ t: 'end', arn: record.executionArn, status, stopDate: Date.now(), ...fields });
    this.#halt(exec);
  }

  /** No more work for this execution: abort the engine run and drop its open tasks (their tokens become unknown). */
  #halt(exec: Execution): void {
    exec.halted = true;
    exec.abort?.();
    for (const token of exec.tokens) this.#close(token, 'dropped');
    exec.minted.clear();
  }

  #forget(arn: string): void {
    const exec = this.#executions.get(arn);
    if (!exec) return;
    for (const token of exec.tokens) this.#tokens.delete(token);
    this.#executions.delete(arn);
  }
}

/** Fails a task of a halted execution without letting Retry or Catch run any further state. */
function haltedError(): Error {
  return Object.assign(new Error('execution halted'), {
    name: 'States.Runtime',
    isRetryable: false,
    isCatchable: false,
  });
}

function fromEngineEvent(e: EngineEvent): Omit<HistoryEvent, 'id'> | undefined {
  const clone = (v: unknown) => (v === undefined ? undefined : (structuredClone(v) as Json));
  const base = { timestamp: e.timestamp };
  const failure = {
    ...(e.Error !== undefined ? { error: e.Error } : {}),
    ...(e.Cause !== undefined ? { cause: typeof e.Cause === 'string' ? e.Cause : JSON.stringify(e.Cause) } : {}),
  };
  const state = e.state ? { stateName: e.state.name, stateType: e.state.type } : {};
  switch (e.type) {
    case 'ExecutionStarted':
      return { ...base, type: 'ExecutionStarted', input: clone(e.input) };
    case 'ExecutionSucceeded':
      return { ...base, type: 'ExecutionSucceeded', output: clone(e.output) };
    case 'ExecutionFailed':
      return { ...base, type: 'ExecutionFailed', ...failure };
    case 'StateEntered':
      return { ...base, type: 'StateEntered', ...state, input: clone(e.state?.input) };
    case 'StateExited':
      return { ...base, type: 'StateExited', ...state, output: clone(e.state?.output) };
    case 'StateFailed':
      return { ...base, type: 'StateFailed', ...state, ...failure };
    case 'StateRetried':
      return { ...base, type: 'StateRetried', ...state, ...(e.retry ? { retryAttempt: e.retry.attempt } : {}) };
    case 'StateCaught':
      return { ...base, type: 'StateCaught', ...state };
    default:
      return undefined; // ExecutionAborted: only a shutdown aborts a run, and then the execution is still running
  }
}
