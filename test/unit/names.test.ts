// functions/names.ts: the workflow error names the functions raise are the ones the ASL routes on, and the other
// way round; the metrics the functions emit are the ones the monitoring reads (test/infra checks the template).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { WORKFLOWS } from '../../statemachines/workflows.ts';
import { WORKFLOW_ERRORS } from '../../functions/names.ts';

type Json = { [key: string]: unknown };

function errorNames(
  node: unknown,
  clause: 'Retry' | 'Catch' | 'any',
  out = new Set<string>(),
  inClause = false,
): Set<string> {
  if (Array.isArray(node)) for (const n of node) errorNames(n, clause, out, inClause);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node as Json)) {
      if (k === 'ErrorEquals' && (clause === 'any' || inClause)) for (const e of v as string[]) out.add(e);
      else errorNames(v, clause, out, inClause || k === clause);
    }
  }
  return out;
}

const asl = WORKFLOWS.map((w) => JSON.parse(readFileSync(w.path, 'utf8')) as Json);
const routed = errorNames(asl, 'any');
const retried = errorNames(asl, 'Retry');
const caught = errorNames(asl, 'Catch');
/** Errors named by AWS itself (the engine, or a service integration), not by our functions. */
const awsError = (e: string) => /^(States|Lambda|DynamoDB|SQS|SNS)\./.test(e);

test('every error the ASL routes on is an AWS error or one of WORKFLOW_ERRORS', () => {
  const ours = new Set<string>(Object.values(WORKFLOW_ERRORS));
  assert.deepEqual(
    [...routed].filter((e) => !awsError(e) && !ours.has(e)),
    [],
  );
});

test('retryable errors are retried, final ones never; an expiry is caught by name (a denial is an outcome, not an error)', () => {
  for (const e of [WORKFLOW_ERRORS.deliveryRetryable, WORKFLOW_ERRORS.notifyFailed, WORKFLOW_ERRORS.enqueueFailed]) {
    assert.ok(retried.has(e), e);
  }
  for (const e of [
    WORKFLOW_ERRORS.deliveryRejected,
    WORKFLOW_ERRORS.deliveryExhausted,
    WORKFLOW_ERRORS.nothingToDeliver,
  ]) {
    assert.ok(!retried.has(e), e);
  }
  assert.ok(caught.has(WORKFLOW_ERRORS.timeout));
  assert.ok(!routed.has('access_denied'), 'a denial ends the wait with SendTaskSuccess {outcome}');
});
