// The executions of the local Step Functions service: records, histories and, for running ones, where they are
// (the state, its input, when it was entered, and the open callback's token, deadline and answer). Every change is
// one small record applied in memory and, with a data dir, appended to <dataDir>/stepfunctions.jsonl (one JSON
// line each, written synchronously, so it survives the process being killed). The journal is compacted (rewritten
// as one snapshot line per execution) when the service starts and whenever it has grown to twice its compacted size
// (at least 8 MiB). Memory is bounded: the newest `retain` terminal executions are kept (default 1000), older ones
// are forgotten (memory and journal); running executions are always kept. The journal holds task tokens, like the
// table rows that store them: it is created readable by its owner only.
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Json } from './definition.ts';

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export type ExecutionRecord = {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  /** JSON text, as in DescribeExecution. */
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  /** Epoch milliseconds. */
  startDate: number;
  stopDate?: number;
  /** RedriveExecution: how many times, and the last one when (epoch ms). */
  redriveCount?: number;
  redriveDate?: number;
};

/** One event of an execution's history, in the engine's vocabulary (`type: 'StateEntered'` counts transitions). */
export type HistoryEvent = {
  id: number;
  /** Epoch milliseconds. */
  timestamp: number;
  type:
    | 'ExecutionStarted'
    | 'ExecutionSucceeded'
    | 'ExecutionFailed'
    | 'StateEntered'
    | 'StateExited'
    | 'StateFailed'
    | 'StateRetried'
    | 'StateCaught'
    | 'ExecutionRedriven';
  stateName?: string;
  stateType?: string;
  input?: Json;
  output?: Json;
  error?: string;
  cause?: string;
  retryAttempt?: number;
  /** ExecutionRedriven: the redrive count it made. */
  redriveCount?: number;
};

/** How a callback task was answered (SendTaskSuccess output, or SendTaskFailure error and cause). */
export type Outcome = { output: Json } | { error: string; cause: string };

/** Where a running execution is: what a restart needs to resume it. */
export type Position = {
  state: string;
  /** The state's input (the raw input, before InputPath/Parameters). */
  input: Json;
  enteredAt: number;
  /** The open callback of this state: its token (kept across a restart), deadline (epoch ms) and answer, if any. */
  token?: string;
  deadline?: number;
  outcome?: Outcome;
};

export type StoredExecution = { record: ExecutionRecord; history: HistoryEvent[]; position?: Position };

/** One change, as applied and journaled. */
export type Change =
  | { t: 'start'; record: ExecutionRecord }
  | { t: 'event'; arn: string; event: Omit<HistoryEvent, 'id'> }
  /** The callback task `state` waits for `token` (its integration has returned). */
  | { t: 'wait'; arn: string; state: string; token: string; deadline: number }
  /** The callback task `state` was answered. */
  | { t: 'answer'; arn: string; state: string; token: string; outcome: Outcome }
  /** RedriveExecution: running again from `state` (the state it failed in) with that state's input. */
  | { t: 'redrive'; arn: string; redriveDate: number; state?: string; input: Json }
  | {
      t: 'end';
      arn: string;
      status: ExecutionStatus;
      stopDate: number;
      output?: string;
      error?: string;
      cause?: string;
    };

type Line = Change | { t: 'snapshot'; execution: StoredExecution };

export type ExecutionStoreOptions = {
  /** Journal to <dataDir>/stepfunctions.jsonl; in memory only when absent or null. */
  dataDir?: string | null;
  /** Terminal executions kept (newest first); default 1000. */
  retain?: number;
  log: (line: string) => void;
};

const JOURNAL_FILE = 'stepfunctions.jsonl';
const MIN_COMPACT_BYTES = 8 * 1024 * 1024;

export class ExecutionStore {
  readonly #all = new Map<string, StoredExecution>();
  /** Terminal executions, oldest first (the order they are forgotten in). */
  readonly #ended = new Set<string>();
  readonly #retain: number;
  readonly #file: string | undefined;
  readonly #log: (line: string) => void;
  #fd: number | undefined;
  #appended = 0;
  #compactedBytes = 0;
  #sealed = false;
  /** Called after every change (waiters), and when an execution is forgotten (its tokens go too). */
  onChange: () => void = () => {};
  onForget: (arn: string) => void = () => {};

  constructor(options: ExecutionStoreOptions) {
    this.#retain = options.retain ?? 1000;
    this.#log = options.log;
    if (!options.dataDir) return;
    mkdirSync(options.dataDir, { recursive: true });
    this.#file = join(options.dataDir, JOURNAL_FILE);
    this.#load(this.#file);
    this.#compact();
  }

  get(arn: string): StoredExecution | undefined {
    return this.#all.get(arn);
  }

  values(): IterableIterator<StoredExecution> {
    return this.#all.values();
  }

  /** Applies a change in memory and journals it. After seal(), changes are ignored (the journal stays as it was). */
  apply(change: Change): void {
    if (this.#sealed) return;
    this.#reduce(change);
    if (this.#fd !== undefined) {
      const line = `${JSON.stringify(change)}\n`;
      try {
        writeSync(this.#fd, line);
        this.#appended += Buffer.byteLength(line);
      } catch (err) {
        this.#log(`[stepfunctions] cannot write ${this.#file}: ${err instanceof Error ? err.message : String(err)}`);
      }
      if (this.#appended > Math.max(MIN_COMPACT_BYTES, 2 * this.#compactedBytes)) this.#compact();
    }
    this.onChange();
  }

  /** No more changes: what is journaled is what the next start resumes from. */
  seal(): void {
    this.#sealed = true;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #reduce(change: Line): void {
    if (change.t === 'snapshot' || change.t === 'start') {
      this.#add(change.t === 'start' ? { record: { ...change.record }, history: [] } : change.execution);
      return;
    }
    const exec = this.#all.get(change.arn);
    if (!exec) return;
    const position = exec.position;
    switch (change.t) {
      case 'event': {
        const event = { id: exec.history.length + 1, ...change.event };
        exec.history.push(event);
        if (event.type === 'StateEntered' && event.stateName !== undefined) {
          exec.position = { state: event.stateName, input: event.input ?? null, enteredAt: event.timestamp };
        } else if (event.type === 'StateFailed' && position && position.state === event.stateName) {
          // That attempt is over (a retry starts afresh; a catch enters the next state).
          delete position.token;
          delete position.deadline;
          delete position.outcome;
        }
        return;
      }
      case 'wait':
      case 'answer': {
        if (position?.state !== change.state) return;
        if (position.token !== change.token) {
          delete position.deadline;
          delete position.outcome;
        }
        position.token = change.token;
        if (change.t === 'wait') position.deadline = change.deadline;
        else position.outcome = change.outcome;
        return;
      }
      case 'redrive': {
        const { record } = exec;
        for (const field of ['stopDate', 'output', 'error', 'cause'] as const) delete record[field];
        record.status = 'RUNNING';
        record.redriveCount = (record.redriveCount ?? 0) + 1;
        record.redriveDate = change.redriveDate;
        this.#ended.delete(change.arn);
        exec.history.push({
          id: exec.history.length + 1,
          timestamp: change.redriveDate,
          type: 'ExecutionRedriven',
          redriveCount: record.redriveCount,
        });
        // Where a restart resumes it, until the state's StateEntered event says the same.
        if (change.state !== undefined)
          exec.position = { state: change.state, input: change.input, enteredAt: change.redriveDate };
        else delete exec.position;
        return;
      }
      case 'end': {
        const { t: _t, arn: _arn, ...fields } = change;
        Object.assign(exec.record, fields);
        delete exec.position;
        this.#ended.add(change.arn);
        this.#forgetOldest();
        return;
      }
    }
  }

  #add(exec: StoredExecution): void {
    this.#all.set(exec.record.executionArn, exec);
    if (exec.record.status !== 'RUNNING') {
      this.#ended.add(exec.record.executionArn);
      this.#forgetOldest();
    }
  }

  #forgetOldest(): void {
    for (const arn of this.#ended) {
      if (this.#ended.size <= this.#retain) return;
      this.#ended.delete(arn);
      this.#all.delete(arn);
      this.onForget(arn);
    }
  }

  #load(file: string): void {
    if (!existsSync(file)) return;
    let skipped = 0;
    for (const text of readFileSync(file, 'utf8').split('\n')) {
      if (text === '') continue;
      try {
        this.#reduce(JSON.parse(text) as Line);
      } catch {
        skipped++; // a line cut short by a crash
      }
    }
    if (skipped > 0) this.#log(`[stepfunctions] ${file}: skipped ${skipped} unreadable line(s)`);
  }

  /** Rewrites the journal as one snapshot per execution (terminal ones in the order they ended, then running). */
  #compact(): void {
    const file = this.#file;
    if (!file) return;
    const ended = [...this.#ended].map((arn) => this.#all.get(arn));
    const running = [...this.#all.values()].filter((e) => e.record.status === 'RUNNING');
    const lines = [...ended, ...running].map((execution) => `${JSON.stringify({ t: 'snapshot', execution })}\n`);
    const data = lines.join('');
    try {
      writeFileSync(`${file}.tmp`, data, { mode: 0o600 });
      if (this.#fd !== undefined) closeSync(this.#fd);
      renameSync(`${file}.tmp`, file);
      this.#fd = openSync(file, 'a', 0o600);
      this.#compactedBytes = Buffer.byteLength(data);
      this.#appended = 0;
    } catch (err) {
      this.#log(`[stepfunctions] cannot compact ${file}: ${err instanceof Error ? err.message : String(err)}`);
      this.#fd ??= openSync(file, 'a', 0o600);
    }
  }
}
