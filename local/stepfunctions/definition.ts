// From ASL text to what the engine (aws-local-stepfunctions) runs: `${Placeholder}` substitution, refusal of
// anything the local service does not run faithfully, the Task states' integrations, and one engine per start
// state (a resumed execution starts at the state it was in).
import { StateMachine } from 'aws-local-stepfunctions';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** The integrations the workflow uses, each with the Parameters it may pass. */
const INTEGRATIONS = {
  'lambda:invoke.waitForTaskToken': ['FunctionName', 'Payload'],
  'dynamodb:updateItem': null, // any UpdateItem parameter, passed to DynamoDB as they are
  'sqs:sendMessage': ['QueueUrl', 'MessageBody', 'MessageAttributes'],
} as const;

export type IntegrationName = keyof typeof INTEGRATIONS;

export type TaskSpec = {
  stateName: string;
  integration: IntegrationName;
  /** Callback tasks: the timeout this service runs (the engine's own timer runs the other tasks'). */
  timeout?: { seconds: number } | { path: string[]; source: string };
};

export type PreparedMachine = {
  tasks: Map<string, TaskSpec>;
  /** The engine for an execution starting at `state` (default: StartAt). */
  engineAt(state?: string): StateMachine;
};

/**
 * The engine's timer for callback tasks, set far beyond any real timeout: this service times them out itself (from
 * the state input, as AWS does, and with the remaining time after a restart). Below Node's 24.8-day timer limit.
 */
const ENGINE_CALLBACK_TIMEOUT_SECONDS = 2_000_000;
const SUPPORTED_STATES = new Set(['Task', 'Choice', 'Pass', 'Succeed', 'Fail']);
const UNSUPPORTED_FIELDS = [
  'QueryLanguage',
  'Arguments',
  'Output',
  'Assign',
  'HeartbeatSeconds',
  'HeartbeatSecondsPath',
  'Credentials',
];

/**
 * Substitutes placeholders, checks that the local service can run the definition faithfully (throws with the reason
 * otherwise) and prepares it for the engine.
 */
export function prepareMachine(definition: string | object, substitutions: Record<string, string>): PreparedMachine {
  const parsed = typeof definition === 'string' ? JSON.parse(definition) : structuredClone(definition);
  const machine = substitutePlaceholders(parsed, substitutions) as JsonObject;
  const refuse = (why: string): never => {
    throw new Error(`state machine definition: ${why} (not supported by the local Step Functions service)`);
  };
  if (machine.QueryLanguage !== undefined && machine.QueryLanguage !== 'JSONPath') refuse('JSONata');
  if (machine.TimeoutSeconds !== undefined) refuse('an execution TimeoutSeconds');
  const text = JSON.stringify(machine);
  // The engine sets these itself, to the values of the run it makes (a resumed execution is a new run).
  for (const path of ['$$.Execution.Input', '$$.Execution.StartTime']) if (text.includes(path)) refuse(path);
  if (text.includes('"States.TaskFailed"')) refuse('States.TaskFailed (use the error names, or States.ALL)');

  const tasks = new Map<string, TaskSpec>();
  const states = machine.States as Record<string, JsonObject>;
  for (const [name, state] of Object.entries(states)) {
    const type = String(state.Type);
    if (!SUPPORTED_STATES.has(type)) refuse(`state ${name}: ${type} states`);
    for (const field of UNSUPPORTED_FIELDS) if (state[field] !== undefined) refuse(`state ${name}: ${field}`);
    if (type === 'Task') tasks.set(name, prepareTask(name, state, refuse));
  }

  const options = { validationOptions: { checkArn: true, checkPaths: true } };
  const engine = new StateMachine(machine as unknown as StateMachineDefinition, options);
  const engines = new Map<string, StateMachine>([[String(machine.StartAt), engine]]);
  return {
    tasks,
    engineAt(state = String(machine.StartAt)) {
      let found = engines.get(state);
      if (!found) {
        if (!states[state]) throw new Error(`the state machine has no state ${state}`);
        // Validated above with the real StartAt; from another state the earlier ones would read as unreachable.
        const from = { ...machine, StartAt: state } as unknown as StateMachineDefinition;
        found = new StateMachine(from, { validationOptions: { noValidate: true } });
        engines.set(state, found);
      }
      return found;
    },
  };
}

/** Checks one Task state and prepares it for the engine (mutates `state`). */
function prepareTask(name: string, state: JsonObject, refuse: (why: string) => never): TaskSpec {
  const resource = String(state.Resource);
  const integration = /^arn:aws:states:::(.+)$/.exec(resource)?.[1];
  if (!integration || !(integration in INTEGRATIONS)) return refuse(`state ${name}: Resource ${resource}`);
  const spec: TaskSpec = { stateName: name, integration: integration as IntegrationName };
  const allowed: readonly string[] | null = INTEGRATIONS[spec.integration];
  const parameters = (state.Parameters ?? {}) as JsonObject;
  for (const key of Object.keys(parameters)) {
    if (allowed && !allowed.includes(key.replace(/\.\$$/, '')))
      refuse(`state ${name}: ${integration} parameter ${key}`);
  }
  if (spec.integration !== 'lambda:invoke.waitForTaskToken') {
    if (state.TimeoutSecondsPath !== undefined) refuse(`state ${name}: TimeoutSecondsPath on a task without callback`);
    return spec;
  }
  if (!JSON.stringify(parameters).includes('.$":"$$.Task.Token"')) {
    refuse(`state ${name}: a callback task that does not pass $$.Task.Token in its Parameters`);
  }
  const path = state.TimeoutSecondsPath;
  const seconds = state.TimeoutSeconds;
  if (typeof seconds === 'number' && seconds > ENGINE_CALLBACK_TIMEOUT_SECONDS)
    refuse(`state ${name}: TimeoutSeconds > 2000000`);
  if (typeof seconds === 'number' && seconds > 0) spec.timeout = { seconds };
  else if (typeof path === 'string' && /^\$(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(path)) {
    spec.timeout = { path: path.split('.').slice(1), source: path };
  } else if (path !== undefined) refuse(`state ${name}: TimeoutSecondsPath ${JSON.stringify(path)} (only $.a.b paths)`);
  else {
    throw new Error(
      `state ${name}: a callback task needs TimeoutSeconds or TimeoutSecondsPath locally (AWS would wait up to a year)`,
    );
  }
  delete state.TimeoutSecondsPath;
  state.TimeoutSeconds = ENGINE_CALLBACK_TIMEOUT_SECONDS;
  return spec;
}

/**
 * The callback task's timeout in ms, from TimeoutSeconds or TimeoutSecondsPath evaluated on the state's input (as
 * AWS does). A path that does not give an integer ≥ 1 fails the state with States.Runtime (not catchable), as AWS.
 */
export function callbackTimeoutMs(task: TaskSpec, stateInput: Json | undefined): number {
  const t = task.timeout;
  if (!t) return ENGINE_CALLBACK_TIMEOUT_SECONDS * 1000;
  if ('seconds' in t) return t.seconds * 1000;
  let value: unknown = stateInput;
  for (const key of t.path)
    value = value && typeof value === 'object' ? (value as Record<string, unknown>)[key] : undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > ENGINE_CALLBACK_TIMEOUT_SECONDS) {
    const what = `TimeoutSecondsPath ${t.source} of ${task.stateName}`;
    const message = `${what} is not an integer from 1 to 2000000 (the local limit): ${JSON.stringify(value)}`;
    throw Object.assign(new Error(message), { name: 'States.Runtime', isRetryable: false, isCatchable: false });
  }
  return value * 1000;
}

/** Replaces `${Name}` in every string of the definition; throws if a placeholder has no value. */
export function substitutePlaceholders(value: unknown, substitutions: Record<string, string>): unknown {
  const missing = new Set<string>();
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      return v.replace(/\$\{([A-Za-z0-9_]+)\}/g, (all, name: string) => {
        const sub = substitutions[name];
        if (sub === undefined) missing.add(name);
        return sub ?? all;
      });
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  const out = walk(value);
  if (missing.size > 0) {
    const names = [...missing].map((m) => `\${${m}}`).join(', ');
    throw new Error(`state machine definition: no local value for placeholder(s) ${names}`);
  }
  return out;
}
