// The workflow definitions and the values their `${Placeholders}` take. CDK (infra/ciba-construct.ts, as
// definitionSubstitutions) and the local stack (local/stack.ts) both build them here, so they cannot drift.
//
// Two definitions, one per kind of delivery, because Step Functions bills every state entered: a poll request needs
// only the wait (1 transition when decided, 2 when it expires), a ping or push request the wait and the delivery
// (2, +1 per retried delivery). One definition with a Choice on the mode would add a transition to every request.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WORKFLOW_FUNCTIONS } from '../functions/routes.ts';
import type { DeliveryMode } from '../functions/core/model.ts';

export type Workflow = {
  /** `poll` / `notify`: the state machine name's suffix and the construct id's. */
  readonly name: 'poll' | 'notify';
  /** The delivery modes whose requests run as executions of this workflow. */
  readonly modes: readonly DeliveryMode[];
  /** The ASL file. */
  readonly path: string;
  /** The setting (functions/settings.ts) that carries this state machine's ARN to the functions. */
  readonly arnSetting: 'pollStateMachineArn' | 'notifyStateMachineArn';
};

const asl = (file: string) => fileURLToPath(new URL(`./${file}`, import.meta.url));

export const WORKFLOWS: readonly Workflow[] = [
  { name: 'poll', modes: ['poll'], path: asl('poll.asl.json'), arnSetting: 'pollStateMachineArn' },
  { name: 'notify', modes: ['ping', 'push'], path: asl('notify.asl.json'), arnSetting: 'notifyStateMachineArn' },
];

export const workflowFor = (mode: DeliveryMode): Workflow => WORKFLOWS.find((w) => w.modes.includes(mode))!;

/** `bc-authorize` → `BcAuthorize`: construct ids and ASL placeholder names (`${NotifyDeviceFunctionArn}`). */
export function pascal(name: string): string {
  return name.replace(/(^|[-_])([a-z0-9])/g, (_m, _sep: string, c: string) => c.toUpperCase());
}

/** The `${Name}` placeholders a definition uses. */
export const placeholders = (path: string): string[] => [
  ...new Set([...readFileSync(path, 'utf8').matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!)),
];

/**
 * The substitutions for a workflow definition: `${TableName}`, `${Partition}` and `${<Pascal>FunctionArn}` per
 * WORKFLOW_FUNCTIONS entry, limited to those the definition uses. Throws when the
 * definition uses a placeholder this does not fill.
 */
export function workflowSubstitutions(
  workflow: Workflow,
  values: {
    tableName: string;
    partition: string;
    functionArn: (name: string) => string;
  },
): Record<string, string> {
  const all: Record<string, string> = {
    TableName: values.tableName,
    Partition: values.partition,
  };
  for (const { name } of WORKFLOW_FUNCTIONS) all[`${pascal(name)}FunctionArn`] = values.functionArn(name);
  const used = placeholders(workflow.path);
  const missing = used.filter((p) => !(p in all));
  if (missing.length > 0) throw new Error(`${workflow.path} uses placeholders with no value: ${missing.join(', ')}`);
  return Object.fromEntries(used.map((p) => [p, all[p]!]));
}
