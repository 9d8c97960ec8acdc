// The pure arithmetic of `npm run cost` (scripts/cost/pricing.ts, scripts/cost/model.ts) on a tiny fixture: volume
// tiers, the unit conversions AWS bills by, rounding for display, one flow's rows and the monthly bill.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  billedMs,
  chunks64k,
  formatCount,
  formatUsd,
  gbSeconds,
  gigabytes,
  loadPrices,
  perMillionFlows,
  readUnits,
  roundTo,
  tieredCost,
  unitPrice,
  validatePrices,
  writeUnits,
  type PriceFile,
  type PriceItem,
} from '../../scripts/cost/pricing.ts';
import {
  LOG_EVENT_OVERHEAD_BYTES,
  SERVICES,
  flowCost,
  monthlyBill,
  platformLines,
  renderAccessLog,
} from '../../scripts/cost/model.ts';
import { tableShape } from '../../scripts/cost/report.ts';
import type { FlowMeasure } from '../../scripts/cost/measure.ts';
import type { TemplateFacts } from '../../scripts/cost/template.ts';

const tiered: PriceItem = {
  unit: 'request',
  per: 10,
  price: 1,
  tiers: [
    { up_to: 100, price: 1 },
    { up_to: 300, price: 0.5 },
    { up_to: null, price: 0.25 },
  ],
  source: 'https://example.com/pricing',
};
const flat: PriceItem = { unit: 'request', per: 1_000_000, price: 0.2, source: 'https://example.com/pricing' };

test('tiered cost: each unit at the price of the tier it falls in', () => {
  assert.equal(tieredCost(0, tiered), 0);
  assert.equal(tieredCost(-5, tiered), 0);
  assert.equal(tieredCost(50, tiered), 5); // 50 × $1/10
  assert.equal(tieredCost(100, tiered), 10); // exactly the first tier
  assert.equal(tieredCost(150, tiered), 12.5); // 100 × 0.1 + 50 × 0.05
  assert.equal(tieredCost(300, tiered), 20); // 10 + 200 × 0.05
  assert.equal(tieredCost(400, tiered), 22.5); // 20 + 100 × 0.025
  assert.equal(tieredCost(5_000_000, flat), 1);
});

test('unit price and $ per million flows use the first tier', () => {
  assert.equal(unitPrice(tiered), 0.1);
  assert.equal(perMillionFlows(4, { ...flat, price: 1 }), 4); // 4 requests per flow at $1/M → $4 per M flows
  assert.ok(Math.abs(perMillionFlows(2, { ...flat, per: 1000, price: 0.025 }) - 50) < 1e-9); // 2 transitions
});

test('Lambda: billed per started millisecond (at least 1), GB-s from the configured memory', () => {
  assert.equal(billedMs(12), 12);
  assert.equal(billedMs(12.01), 13);
  assert.equal(billedMs(0.2), 1);
  assert.equal(gbSeconds(100, 512), 0.05);
  assert.equal(gbSeconds(1000, 1024), 1);
});

test('DynamoDB request units: 1 KB writes, 4 KB reads, half for eventually consistent, ×2 in transactions', () => {
  assert.equal(writeUnits(0), 1);
  assert.equal(writeUnits(1024), 1);
  assert.equal(writeUnits(1025), 2);
  assert.equal(writeUnits(1025, { transactional: true }), 4);
  assert.equal(readUnits(0), 0.5); // an item not found still costs the minimum
  assert.equal(readUnits(4096), 0.5);
  assert.equal(readUnits(4096, { consistent: true }), 1);
  assert.equal(readUnits(4097, { consistent: true }), 2);
  assert.equal(readUnits(100, { transactional: true }), 2);
});

test('64 KB chunks and gigabytes', () => {
  assert.equal(chunks64k(1), 1);
  assert.equal(chunks64k(65536), 1);
  assert.equal(chunks64k(65537), 2);
  assert.equal(gigabytes(2 ** 30), 1);
});

test('rounding and display of dollars and counts', () => {
  assert.equal(roundTo(1.005, 2), 1.01);
  assert.equal(roundTo(2.675, 2), 2.68);
  assert.equal(roundTo(-1.005, 2), -1.01);
  assert.equal(formatUsd(0), '–');
  assert.equal(formatUsd(0.004), '<0.01');
  assert.equal(formatUsd(0.005), '0.01');
  assert.equal(formatUsd(1234.567), '1,234.57');
  assert.equal(formatCount(3), '3');
  assert.equal(formatCount(0.5), '0.5');
  assert.equal(formatCount(1 / 3), '0.333');
});

const fixtureFile = (items: Record<string, PriceItem>): PriceFile => ({
  as_of: '2026-11-30',
  region: 'us-east-1',
  currency: 'USD',
  items,
});

test('the price file is validated: dated, tiers consistent, sources given', () => {
  assert.doesNotThrow(() => validatePrices(fixtureFile({ a: tiered }), ['a']));
  assert.throws(() => validatePrices(fixtureFile({ a: tiered }), ['a', 'b']), /item b is missing/);
  assert.throws(() => validatePrices({ ...fixtureFile({ a: tiered }), as_of: 'today' }, ['a']), /as_of/);
  assert.throws(
    () => validatePrices(fixtureFile({ a: { ...tiered, price: 2 } }), ['a']),
    /price must equal the first tier/,
  );
  assert.throws(
    () => validatePrices(fixtureFile({ a: { ...tiered, tiers: [{ up_to: 100, price: 1 }] } }), ['a']),
    /last tier must have up_to null/,
  );
  assert.throws(() => validatePrices(fixtureFile({ a: { ...flat, source: 'aws' } }), ['a']), /source/);
  // The shipped file passes, with the list prices the model is documented with.
  const shipped = loadPrices();
  assert.equal(shipped.region, 'us-east-1');
  assert.equal(unitPrice(shipped.items.stepfunctions_standard_transitions!) * 1000, 0.025);
  assert.equal(shipped.items.kms_requests_rsa_2048!.price, 0.03);
  assert.equal(shipped.items.kms_requests_asymmetric!.price, 0.15);
});

// ---- one flow through the model -----------------------------------------------------------------------------

const prices = fixtureFile({
  apigateway_http_requests: {
    unit: 'request',
    per: 1_000_000,
    price: 1,
    tiers: [
      { up_to: 300_000_000, price: 1 },
      { up_to: null, price: 0.9 },
    ],
    source: 'https://example.com',
  },
  apigateway_rest_requests: { unit: 'request', per: 1_000_000, price: 3.5, source: 'https://example.com' },
  lambda_requests: { unit: 'invocation', per: 1_000_000, price: 0.2, source: 'https://example.com' },
  lambda_duration_arm64: { unit: 'GB-s', per: 1, price: 0.0000133334, source: 'https://example.com' },
  lambda_duration_x86_64: { unit: 'GB-s', per: 1, price: 0.0000166667, source: 'https://example.com' },
  stepfunctions_standard_transitions: { unit: 'transition', per: 1000, price: 0.025, source: 'https://example.com' },
  dynamodb_ondemand_write_units: { unit: 'WRU', per: 1_000_000, price: 0.625, source: 'https://example.com' },
  dynamodb_ondemand_read_units: { unit: 'RRU', per: 1_000_000, price: 0.125, source: 'https://example.com' },
  sns_publish: { unit: 'publish', per: 1_000_000, price: 0.5, source: 'https://example.com' },
  sns_delivery_http: { unit: 'delivery', per: 1_000_000, price: 0.6, source: 'https://example.com' },
  sns_delivery_mobile_push: { unit: 'delivery', per: 1_000_000, price: 0.5, source: 'https://example.com' },
  sns_delivery_lambda: { unit: 'delivery', per: 1_000_000, price: 0, source: 'https://example.com' },
  sqs_standard_requests: { unit: 'request', per: 1_000_000, price: 0.4, source: 'https://example.com' },
  kms_requests_symmetric: { unit: 'request', per: 10_000, price: 0.03, source: 'https://example.com' },
  kms_requests_rsa_2048: { unit: 'request', per: 10_000, price: 0.03, source: 'https://example.com' },
  kms_requests_asymmetric: { unit: 'request', per: 10_000, price: 0.15, source: 'https://example.com' },
  kms_key_months: { unit: 'key-month', per: 1, price: 1, source: 'https://example.com' },
  cloudwatch_logs_ingestion: { unit: 'GB', per: 1, price: 0.5, source: 'https://example.com' },
  cloudwatch_logs_storage: { unit: 'GB-month', per: 1, price: 0.03, source: 'https://example.com' },
  cloudwatch_custom_metrics: { unit: 'metric-month', per: 1, price: 0.3, source: 'https://example.com' },
  cloudwatch_alarm_metrics: { unit: 'metric-month', per: 1, price: 0.1, source: 'https://example.com' },
  cloudwatch_dashboards: { unit: 'dashboard-month', per: 1, price: 3, source: 'https://example.com' },
  xray_traces_recorded: { unit: 'trace', per: 1_000_000, price: 5, source: 'https://example.com' },
});

const facts: TemplateFacts = {
  stackName: 'Fixture',
  api: { type: 'HTTP', accessLogRetentionDays: 30 },
  functions: {
    a: {
      name: 'a',
      logicalId: 'A',
      memoryMb: 1024,
      architecture: 'arm64',
      tracing: 'PassThrough',
      logFormat: 'Text',
      logRetentionDays: 30,
      environment: {},
    },
    w: {
      name: 'w',
      logicalId: 'W',
      memoryMb: 512,
      architecture: 'x86_64',
      tracing: 'PassThrough',
      logFormat: 'Text',
      logRetentionDays: 30,
      environment: {},
    },
  },
  stateMachines: [
    {
      logicalId: 'SM',
      type: 'STANDARD',
      tracing: true,
      logLevel: 'ERROR',
      includeExecutionData: false,
      logRetentionDays: 30,
    },
  ],
  kmsKeys: [
    { logicalId: 'R', keySpec: 'RSA_2048', rotation: false, roles: ['rsa-signing'] },
    { logicalId: 'E', keySpec: 'ECC_NIST_P256', rotation: false, roles: ['ec-signing'] },
  ],
  table: { billingMode: 'PAY_PER_REQUEST', keys: ['pk', 'sk'], indexes: [] },
  subscriptions: {},
  subscriptionsByFunction: {},
  alarms: { count: 1, metrics: 1 },
  dashboards: 0,
  queues: 0,
};

const use = (fn: string, kind: 'http' | 'workflow', invocations: number, medianMs: number) => ({
  fn,
  kind,
  invocations,
  medianMs,
  billedMsPerFlow: invocations * Math.ceil(medianMs),
  calls: {},
  logLinesPerFlow: 1,
  logBytesPerFlow: 100,
  emfLinesPerFlow: 0,
  emfBytesPerFlow: 0,
});

const measure: FlowMeasure = {
  mode: 'poll',
  outcome: 'approved',
  runs: 1,
  apiRequests: { 'POST /token 200': 2 },
  apiRequestsTotal: 2,
  pendingPolls: 1,
  functions: [use('a', 'http', 2, 99.5), use('w', 'workflow', 1, 10)],
  httpInvocations: 2,
  dynamodb: { requests: {}, readUnits: 4, writeUnits: 6, indexWriteUnits: 2, conditionalCheckFailures: 0 },
  stepFunctions: {
    executions: 1,
    statesEntered: 2,
    retries: 1,
    transitions: 3,
    paths: [],
    loggedEvents: {},
    logBytes: 0,
    executionArns: [],
  },
  sns: { topicPublishes: 1, directPublishes: 0, publishChunks: 1, deliveries: { lambda: 1 }, direct: {} },
  sqs: { requests: 0 },
  signatures: { rsa: 2, ec: 1, vapid: 0 },
  unattributedCalls: 0,
  windows: [],
};

const near = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-9, `${actual} is not ${expected}`);

test('one flow: every service has a row, each priced from its measured quantity; the total is their sum', () => {
  const cost = flowCost(measure, facts, prices);
  assert.deepEqual(
    cost.rows.map((r) => r.service),
    [...SERVICES],
  );
  const row = (s: (typeof SERVICES)[number]) => cost.rows.find((r) => r.service === s)!;
  near(row('API Gateway').usdPerMillionFlows, 2); // 2 requests × $1/M
  near(row('Lambda requests').usdPerMillionFlows, 0.6); // 3 invocations × $0.20/M
  // 2 × 100 ms × 1 GB on arm64 + 1 × 10 ms × 0.5 GB on x86.
  near(row('Lambda GB-s').quantity, 0.2 + 0.005);
  near(row('Lambda GB-s').usdPerMillionFlows, 1e6 * (0.2 * 0.0000133334 + 0.005 * 0.0000166667));
  near(row('Step Functions').usdPerMillionFlows, 75); // 3 transitions (2 entered + 1 retry)
  near(row('DynamoDB writes').usdPerMillionFlows, 8 * 0.625); // table + index units
  near(row('DynamoDB reads').usdPerMillionFlows, 4 * 0.125);
  near(row('SNS').usdPerMillionFlows, 0.5); // one publish; the Lambda delivery is free
  near(row('KMS').usdPerMillionFlows, 100 * (2 * 0.03 + 0.15)); // RSA_2048 and ECC signatures
  near(row('X-Ray').quantity, 1); // one traced execution; no function traces actively
  assert.equal(row('SQS').usdPerMillionFlows, 0);
  near(
    cost.totalPerMillionFlows,
    cost.rows.reduce((s, r) => s + r.usdPerMillionFlows, 0),
  );
  // Logs: the functions' lines + Lambda's 3 lines per invocation, 26 bytes per event on top.
  const platform =
    2 * platformLines(facts.functions.a!, 99.5).join('').length + platformLines(facts.functions.w!, 10).join('').length;
  assert.equal(cost.counts.logs.platformLines, platform);
  assert.equal(cost.counts.logs.events, 2 + 9);
  assert.equal(cost.counts.logs.total, 200 + platform + 11 * LOG_EVENT_OVERHEAD_BYTES);
  // X-Ray sampling scales only the traces.
  near(flowCost(measure, facts, prices, 0.05).rows.find((r) => r.service === 'X-Ray')!.usdPerMillionFlows, 0.25);
});

test('monthly bill: tiers apply to the month`s whole volume, fixed costs once', () => {
  const cost = flowCost(measure, facts, prices);
  const small = monthlyBill(cost, 1_000_000, 10, prices);
  near(small.total, cost.totalPerMillionFlows + 10);
  // 200M flows × 2 requests = 400M: 300M at $1/M, 100M at $0.90/M.
  const big = monthlyBill(cost, 200_000_000, 10, prices);
  near(big.byService['API Gateway'], 300 + 90);
  near(
    big.variable,
    Object.values(big.byService).reduce((s, v) => s + v, 0),
  );
});

test('Lambda platform lines and access log lines are rendered as AWS writes them', () => {
  const [start, end, report, ...rest] = platformLines(
    { memoryMb: 512, tracing: 'PassThrough', logFormat: 'Text' },
    12.3,
  );
  assert.match(start!, /^START RequestId: [0-9a-f-]{36} Version: \$LATEST$/);
  assert.match(end!, /^END RequestId: /);
  assert.match(report!, /Duration: 12\.30 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB/);
  assert.deepEqual(rest, []);
  assert.equal(platformLines({ memoryMb: 512, tracing: 'Active', logFormat: 'Text' }, 1).length, 4);
  assert.equal(
    renderAccessLog(
      '{"route":"$context.routeKey","status":"$context.status","x":"$context.unknown"}',
      'POST /token',
      '400',
    ),
    '{"route":"POST /token","status":"400","x":"-"}',
  );
});

test('table shapes ignore the numbers but not the rows or columns', () => {
  const a =
    '| $ | poll | ping |\n| --- | --: | --: |\n| API Gateway | 1.00 | 2.00 |\n\n| m | poll |\n| --- | --: |\n| 1M | $3 |';
  const b =
    '| $ | poll | ping |\n| --- | --: | --: |\n| API Gateway | 9.99 | – |\n\n| m | poll |\n| --- | --: |\n| 1M | $4 |';
  assert.deepEqual(tableShape(a), tableShape(b));
  assert.notDeepEqual(tableShape(a), tableShape(b.replace('API Gateway', 'Lambda')));
  assert.notDeepEqual(tableShape(a), tableShape(b.replace('| ping |', '| push |')));
});
