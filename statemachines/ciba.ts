// The one workflow definition and the values its `${Placeholders}` take. CDK (infra/ciba-construct.ts, as
// definitionSubstitutions) and the local stack (local/stack.ts) both build them here, so they cannot drift.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WORKFLOW_FUNCTIONS } from '../functions/routes.ts';

export const ASL_PATH = fileURLToPath(new URL('./ciba.asl.json', import.meta.url));

/** `bc-authorize` → `BcAuthorize`: construct ids and ASL placeholder names (`${NotifyDeviceFunctionArn}`). */
export function pascal(name: string): string {
  return name.replace(/(^|[-_])([a-z0-9])/g, (_m, _sep: string, c: string) => c.toUpperCase());
}

/**
 * The substitutions for statemachines/ciba.asl.json: `${TableName}`, `${Partition}`, `${DeliveryDeadLetterQueueUrl}` and `${<Pascal>FunctionArn}`
 * per WORKFLOW_FUNCTIONS entry. Throws when the definition uses a placeholder this does not fill.
 */
export function workflowSubstitutions(values: {
  tableName: string;
  partition: string;
  functionArn: (name: string) => string;
  deadLetterQueueUrl: string;
}): Record<string, string> {
  const substitutions: Record<string, string> = {
    TableName: values.tableName,
    Partition: values.partition,
    DeliveryDeadLetterQueueUrl: values.deadLetterQueueUrl,
  };
  for (const { name } of WORKFLOW_FUNCTIONS) substitutions[`${pascal(name)}FunctionArn`] = values.functionArn(name);
  const used = new Set([...readFileSync(ASL_PATH, 'utf8').matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!));
  const missing = [...used].filter((p) => !(p in substitutions));
  if (missing.length > 0) throw new Error(`${ASL_PATH} uses placeholders with no value: ${missing.join(', ')}`);
  return substitutions;
}
