// `npm run cost` end to end, once, for a poll flow approved by the user: the default stack synthesized, the flow
// measured on the local stack in this process, priced. What must hold whatever the durations: every service has a
// row and the total is their sum; the transitions billed are those the local Step Functions history shows for the
// executions that ran during the flow; each API request invoked one function; every AWS call was attributed; the
// README's table has the shape the report prints now.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { METRICS } from '../../functions/names.ts';
import { loadPrices } from '../../scripts/cost/pricing.ts';
import { synthDefaultStack } from '../../scripts/cost/template.ts';
import { MODES, OUTCOMES, measureFlows, type FlowMeasure } from '../../scripts/cost/measure.ts';
import { SERVICES, costModel } from '../../scripts/cost/model.ts';
import { readmeSection, renderMarkdown, tableShape } from '../../scripts/cost/report.ts';

test('npm run cost: poll approved, measured and priced', { timeout: 120_000 }, async () => {
  const prices = loadPrices();
  const { facts } = await synthDefaultStack();
  let fromHistory: { transitions: number; executions: string[] } | undefined;
  const measurement = await measureFlows({
    facts,
    flows: [{ mode: 'poll', outcome: 'approved' }],
    runs: 1,
    // Independently of the model: the executions that started while the flow was recorded, and their transitions
    // (states entered + retries) as the local Step Functions history records them.
    inspect: async (stack, flows) => {
      const [span] = flows[0]!.windows;
      const executions = stack.stepFunctions
        .executions()
        .filter((e) => e.startDate >= span!.start && e.startDate <= span!.end)
        .map((e) => e.executionArn);
      const transitions = executions
        .map((arn) => stack.stepFunctions.history(arn))
        .reduce((n, h) => n + h.filter((e) => e.type === 'StateEntered' || e.type === 'StateRetried').length, 0);
      fromHistory = { transitions, executions };
    },
  });
  const customMetrics = Object.keys(METRICS).length - 1;
  const model = costModel(measurement, facts, prices, { customMetrics });
  const [measured] = measurement.flows;
  const [flow] = model.flows;
  assert.ok(measured && flow);

  // Every service present, once, in order; the total is the sum of the rows.
  assert.deepEqual(
    flow.rows.map((r) => r.service),
    [...SERVICES],
  );
  const sum = flow.rows.reduce((s, r) => s + r.usdPerMillionFlows, 0);
  assert.ok(Math.abs(flow.totalPerMillionFlows - sum) < 1e-9);

  // Transitions: what the local history shows for the executions started during the flow.
  assert.ok(fromHistory);
  assert.ok(fromHistory.executions.length >= 1, 'the flow started an execution');
  assert.deepEqual([...fromHistory.executions].sort(), [...measured.stepFunctions.executionArns].sort());
  assert.equal(measured.stepFunctions.transitions, fromHistory.transitions);
  const sfn = flow.rows.find((r) => r.service === 'Step Functions')!;
  assert.equal(sfn.quantity, fromHistory.transitions);
  assert.ok(Math.abs(sfn.usdPerMillionFlows - fromHistory.transitions * 25) < 1e-9);

  // Structural facts of a poll approval: one pending poll, then tokens; each API request invoked one function; the
  // tokens were signed; DynamoDB was read and written; every AWS call happened inside an invocation.
  assert.equal(measured.pendingPolls, 1);
  assert.equal(measured.apiRequests['POST /token 200'], 1);
  assert.equal(measured.httpInvocations, measured.apiRequestsTotal);
  assert.ok(measured.signatures.rsa! + measured.signatures.ec! >= 1, 'tokens were signed');
  assert.ok(measured.dynamodb.readUnits > 0 && measured.dynamodb.writeUnits > 0);
  assert.equal(measured.unattributedCalls, 0);
  assert.ok(flow.counts.lambdaGbSeconds > 0 && flow.counts.logs.total > 0);

  // The README's tables have the shape the report prints (rows, columns), numbers aside.
  const readme = readmeSection(readFileSync(new URL('../../README.md', import.meta.url), 'utf8'));
  assert.ok(readme, 'README.md has the cost markers');
  const everyFlow = {
    ...measurement,
    flows: MODES.flatMap((mode) => OUTCOMES.map((outcome): FlowMeasure => ({ ...measured, mode, outcome }))),
  };
  assert.deepEqual(
    tableShape(readme),
    tableShape(renderMarkdown(costModel(everyFlow, facts, prices, { customMetrics }))),
  );
});
