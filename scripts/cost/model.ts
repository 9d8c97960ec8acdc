// The cost model of `npm run cost`: measured flows (./measure.ts) × the template's facts (./template.ts) × the price
// file (./prices.json) → dollars per million flows by service, and the monthly bill at a given volume. Pure: no I/O,
// so the same numbers come out of the same inputs (test/unit/cost.test.ts, test/e2e/cost.test.ts).
import type { FlowMeasure, FunctionUse, Measurement } from './measure.ts';
import {
  billedMs,
  gbSeconds,
  gigabytes,
  perMillionFlows,
  tieredCost,
  type ItemName,
  type PriceFile,
} from './pricing.ts';
import type { FunctionFacts, KeyRole, TemplateFacts } from './template.ts';

export const SERVICES = [
  'API Gateway',
  'Lambda requests',
  'Lambda GB-s',
  'Step Functions',
  'DynamoDB writes',
  'DynamoDB reads',
  'SNS',
  'SQS',
  'KMS',
  'CloudWatch Logs ingestion',
  'CloudWatch Logs storage',
  'X-Ray',
] as const;
export type Service = (typeof SERVICES)[number];

/** One priced quantity per flow. */
export type Charge = { item: ItemName; perFlow: number };
export type ServiceRow = {
  service: Service;
  /** The billed quantity per flow, in `unit`. */
  quantity: number;
  unit: string;
  charges: Charge[];
  usdPerMillionFlows: number;
};

export type LogBreakdown = {
  /** Bytes per flow by source, before the per-event overhead. */
  functionLines: number;
  emfLines: number;
  platformLines: number;
  accessLogLines: number;
  stateMachineRecords: number;
  /** Log events per flow (each adds LOG_EVENT_OVERHEAD_BYTES). */
  events: number;
  /** Total billed bytes per flow, overhead included. */
  total: number;
  /** GB-months of storage per flow at the log groups' retention (uncompressed). */
  storageGbMonths: number;
};

export type FlowCost = {
  mode: FlowMeasure['mode'];
  outcome: FlowMeasure['outcome'];
  rows: ServiceRow[];
  totalPerMillionFlows: number;
  counts: {
    apiRequests: number;
    pendingPolls: number;
    lambdaInvocations: number;
    lambdaGbSeconds: number;
    transitions: number;
    dynamoReadUnits: number;
    dynamoWriteUnits: number;
    dynamoIndexWriteUnits: number;
    snsPublishes: number;
    snsDeliveries: Record<string, number>;
    sqsRequests: number;
    kmsSigns: Record<string, number>;
    logs: LogBreakdown;
    traces: number;
  };
  functions: (FunctionUse & { memoryMb: number; architecture: string; gbSecondsPerFlow: number })[];
};

export type FixedCost = { item: ItemName; what: string; quantity: number; usdPerMonth: number };

export type MonthlyBill = {
  mode: FlowMeasure['mode'];
  outcome: FlowMeasure['outcome'];
  volumes: { flows: number; variable: number; fixed: number; total: number; byService: Record<Service, number> }[];
};

export type CostModel = {
  prices: { as_of: string; region: string; currency: string };
  /** Share of X-Ray traces priced as recorded (1: every trace). */
  xraySampled: number;
  assumptions: string[];
  flows: FlowCost[];
  fixed: FixedCost[];
  fixedPerMonth: number;
  monthly: MonthlyBill[];
};

/** Bytes CloudWatch Logs counts per log event on top of its message (the PutLogEvents batch-size rule; upper bound). */
export const LOG_EVENT_OVERHEAD_BYTES = 26;
/** Average month, for retention in days → months of storage. */
export const DAYS_PER_MONTH = 30.44;
/** A never-expiring log group is counted as this many months of storage (its first year's average). */
export const NEVER_EXPIRE_MONTHS = 12;
export const VOLUMES = [1_000_000, 10_000_000, 100_000_000] as const;

const UUID = '0f6e5b8c-2f3a-4c1d-9e8b-7a6d5c4b3a21';

/**
 * Lambda's own lines per invocation in the Text log format (START, END, REPORT; XRAY with active tracing), rendered
 * as Lambda writes them, with this invocation's duration and memory and a typical "Max Memory Used".
 */
export function platformLines(
  fn: Pick<FunctionFacts, 'memoryMb' | 'tracing' | 'logFormat'>,
  durationMs: number,
): string[] {
  const billed = billedMs(durationMs);
  if (fn.logFormat === 'JSON') {
    const time = '2026-11-30T12:00:00.000Z';
    return [
      JSON.stringify({ time, type: 'platform.start', record: { requestId: UUID, version: '$LATEST' } }),
      JSON.stringify({
        time,
        type: 'platform.report',
        record: {
          requestId: UUID,
          metrics: {
            durationMs: Number(durationMs.toFixed(3)),
            billedDurationMs: billed,
            memorySizeMB: fn.memoryMb,
            maxMemoryUsedMB: 100,
          },
          status: 'success',
        },
      }),
    ];
  }
  return [
    `START RequestId: ${UUID} Version: $LATEST`,
    `END RequestId: ${UUID}`,
    `REPORT RequestId: ${UUID}\tDuration: ${durationMs.toFixed(2)} ms\tBilled Duration: ${billed} ms\tMemory Size: ${fn.memoryMb} MB\tMax Memory Used: 100 MB\t`,
    ...(fn.tracing === 'Active'
      ? ['XRAY TraceId: 1-674b1a2c-0123456789abcdef01234567\tSegmentId: 0123456789abcdef\tSampled: true\t']
      : []),
  ];
}

/** Representative values of the `$context` variables an access log format uses (the measured route and status). */
export function renderAccessLog(format: string, routeKey: string, status: string): string {
  const values: Record<string, string> = {
    requestId: 'JQiTnhbiIAMEVfA=',
    requestTimeEpoch: '1764504000000',
    requestTime: '30/Nov/2026:12:00:00 +0000',
    'identity.sourceIp': '203.0.113.10',
    'identity.userAgent': 'okhttp/4.12.0',
    routeKey,
    protocol: 'HTTP/1.1',
    status,
    responseLength: '1024',
    responseLatency: '45',
    integrationStatus: status,
    integrationLatency: '42',
    integrationErrorMessage: '-',
    'error.message': '-',
    httpMethod: routeKey.split(' ')[0] ?? 'POST',
    path: routeKey.split(' ')[1] ?? '/',
  };
  return format.replace(/\$context\.([A-Za-z.]+)/g, (_m, name: string) => values[name] ?? '-');
}

const retentionMonths = (days: number | null) => (days === null ? NEVER_EXPIRE_MONTHS : days / DAYS_PER_MONTH);

function kmsItem(keySpec: string): ItemName {
  if (keySpec === 'SYMMETRIC_DEFAULT') return 'kms_requests_symmetric';
  if (keySpec === 'RSA_2048') return 'kms_requests_rsa_2048';
  return 'kms_requests_asymmetric';
}

/**
 * The cost of one measured flow. `xraySampled`: the share of traces X-Ray records (1 = every trace, an upper bound;
 * the default sampling rule records the first request each second and 5 % of the rest).
 */
export function flowCost(m: FlowMeasure, facts: TemplateFacts, prices: PriceFile, xraySampled = 1): FlowCost {
  const price = (item: ItemName) => {
    const p = prices.items[item];
    if (!p) throw new Error(`price file has no item ${item}`);
    return p;
  };
  const rowOf = (service: Service, quantity: number, unit: string, charges: Charge[]): ServiceRow => ({
    service,
    quantity,
    unit,
    charges,
    usdPerMillionFlows: charges.reduce((s, c) => s + perMillionFlows(c.perFlow, price(c.item)), 0),
  });
  const fnFacts = (name: string): FunctionFacts => {
    const f = facts.functions[name];
    if (!f) throw new Error(`function ${name} ran locally but is not in the template`);
    return f;
  };

  // Lambda: invocations, and GB-s from each function's median duration rounded up to 1 ms, by architecture.
  const functions = m.functions.map((f) => {
    const ff = fnFacts(f.fn);
    return {
      ...f,
      memoryMb: ff.memoryMb,
      architecture: ff.architecture,
      gbSecondsPerFlow: f.invocations * gbSeconds(billedMs(f.medianMs), ff.memoryMb),
    };
  });
  const invocations = functions.reduce((s, f) => s + f.invocations, 0);
  const gbs = { arm64: 0, x86_64: 0 };
  for (const f of functions) gbs[f.architecture as keyof typeof gbs] += f.gbSecondsPerFlow;

  // Logs: every line the functions wrote, Lambda's own lines, the API's access log lines, the workflows' records.
  let platformBytes = 0;
  let platformEvents = 0;
  let functionBytes = 0;
  let emfBytes = 0;
  let functionEvents = 0;
  let storage = 0;
  for (const f of functions) {
    const ff = fnFacts(f.fn);
    const lines = platformLines(ff, f.medianMs);
    const pBytes = f.invocations * lines.reduce((s, l) => s + Buffer.byteLength(l), 0);
    platformBytes += pBytes;
    platformEvents += f.invocations * lines.length;
    functionBytes += f.logBytesPerFlow;
    emfBytes += f.emfBytesPerFlow;
    const events = f.logLinesPerFlow + f.emfLinesPerFlow + f.invocations * lines.length;
    functionEvents += f.logLinesPerFlow + f.emfLinesPerFlow;
    const groupBytes = pBytes + f.logBytesPerFlow + f.emfBytesPerFlow + events * LOG_EVENT_OVERHEAD_BYTES;
    storage += gigabytes(groupBytes) * retentionMonths(ff.logRetentionDays);
  }
  let accessBytes = 0;
  let accessEvents = 0;
  if (facts.api.accessLogFormat) {
    for (const [key, perFlow] of Object.entries(m.apiRequests)) {
      const status = key.split(' ').at(-1) ?? '200';
      const route = key.split(' ').slice(0, -1).join(' ');
      accessBytes += perFlow * Buffer.byteLength(renderAccessLog(facts.api.accessLogFormat, route, status));
      accessEvents += perFlow;
    }
    storage +=
      gigabytes(accessBytes + accessEvents * LOG_EVENT_OVERHEAD_BYTES) *
      retentionMonths(facts.api.accessLogRetentionDays);
  }
  const smEvents = Object.values(m.stepFunctions.loggedEvents).reduce((s, v) => s + v, 0);
  const smBytes = m.stepFunctions.logBytes;
  storage +=
    gigabytes(smBytes + smEvents * LOG_EVENT_OVERHEAD_BYTES) *
    retentionMonths(facts.stateMachines[0]?.logRetentionDays ?? null);
  const events = platformEvents + functionEvents + accessEvents + smEvents;
  const logs: LogBreakdown = {
    functionLines: functionBytes,
    emfLines: emfBytes,
    platformLines: platformBytes,
    accessLogLines: accessBytes,
    stateMachineRecords: smBytes,
    events,
    total: functionBytes + emfBytes + platformBytes + accessBytes + smBytes + events * LOG_EVENT_OVERHEAD_BYTES,
    storageGbMonths: storage,
  };

  // Step Functions: Standard workflows bill transitions; Express would bill requests and duration instead.
  if (facts.stateMachines.some((s) => s.type !== 'STANDARD'))
    throw new Error('the template has an Express state machine: its pricing is not modeled');

  // SNS: publish requests (64 KB chunks), deliveries by protocol, mobile push sent directly to endpoints.
  const deliveryItem: Record<string, ItemName> = {
    lambda: 'sns_delivery_lambda',
    http: 'sns_delivery_http',
    https: 'sns_delivery_http',
    application: 'sns_delivery_mobile_push',
  };
  const snsCharges: Charge[] = [{ item: 'sns_publish', perFlow: m.sns.publishChunks }];
  for (const [protocol, n] of Object.entries(m.sns.deliveries)) {
    const item = deliveryItem[protocol];
    if (!item) throw new Error(`SNS deliveries over ${protocol} are not priced`);
    snsCharges.push({ item, perFlow: n });
  }
  if (m.sns.direct.sns) snsCharges.push({ item: 'sns_delivery_mobile_push', perFlow: m.sns.direct.sns });

  // KMS: one Sign request per signature, at the price of the key that signs (the template's key spec). With sealed
  // signing keys (KEYS_SOURCE=sealed) tokens are signed in memory: no KMS request per token (their one Decrypt per
  // signing function cold start is not per flow; see the assumptions). VAPID signatures stay KMS Sign requests.
  const inMemory = new Set(facts.signingKeys === 'sealed' ? ['rsa', 'ec'] : []);
  const kmsSignatures = Object.fromEntries(Object.entries(m.signatures).filter(([key]) => !inMemory.has(key)));
  const keyFor = (role: KeyRole) => {
    const key = facts.kmsKeys.find((k) => k.roles.includes(role));
    if (!key) throw new Error(`the template has no KMS key for ${role}`);
    return key;
  };
  const roleOf: Record<string, KeyRole> = { rsa: 'rsa-signing', ec: 'ec-signing', vapid: 'vapid' };
  const kmsCharges: Charge[] = [];
  for (const [key, n] of Object.entries(kmsSignatures)) {
    if (n === 0) continue;
    const item = kmsItem(keyFor(roleOf[key]!).keySpec);
    const existing = kmsCharges.find((c) => c.item === item);
    if (existing) existing.perFlow += n;
    else kmsCharges.push({ item, perFlow: n });
  }
  const signs = Object.values(kmsSignatures).reduce((s, v) => s + v, 0);

  // X-Ray: a traced state machine records one trace per execution; functions with active tracing one per
  // invocation not started by a traced execution (API and topic invocations; an upper bound: a topic subscriber may
  // join its publisher's trace). `xraySampled` of them are recorded.
  const smTracing = facts.stateMachines.length > 0 && facts.stateMachines.every((s) => s.tracing);
  const tracedInvocations = functions
    .filter((f) => f.kind !== 'workflow' && fnFacts(f.fn).tracing === 'Active')
    .reduce((s, f) => s + f.invocations, 0);
  const traces = ((smTracing ? m.stepFunctions.executions : 0) + tracedInvocations) * xraySampled;

  const apiItem: ItemName = facts.api.type === 'HTTP' ? 'apigateway_http_requests' : 'apigateway_rest_requests';
  const rows: ServiceRow[] = [
    rowOf('API Gateway', m.apiRequestsTotal, `${facts.api.type} API requests`, [
      { item: apiItem, perFlow: m.apiRequestsTotal },
    ]),
    rowOf('Lambda requests', invocations, 'invocations', [{ item: 'lambda_requests', perFlow: invocations }]),
    rowOf(
      'Lambda GB-s',
      gbs.arm64 + gbs.x86_64,
      'GB-seconds',
      [
        { item: 'lambda_duration_arm64' as const, perFlow: gbs.arm64 },
        { item: 'lambda_duration_x86_64' as const, perFlow: gbs.x86_64 },
      ].filter((c) => c.perFlow > 0),
    ),
    rowOf('Step Functions', m.stepFunctions.transitions, 'state transitions', [
      { item: 'stepfunctions_standard_transitions', perFlow: m.stepFunctions.transitions },
    ]),
    rowOf(
      'DynamoDB writes',
      m.dynamodb.writeUnits + m.dynamodb.indexWriteUnits,
      'write request units (table + index)',
      [{ item: 'dynamodb_ondemand_write_units', perFlow: m.dynamodb.writeUnits + m.dynamodb.indexWriteUnits }],
    ),
    rowOf('DynamoDB reads', m.dynamodb.readUnits, 'read request units', [
      { item: 'dynamodb_ondemand_read_units', perFlow: m.dynamodb.readUnits },
    ]),
    rowOf('SNS', m.sns.publishChunks, 'publish requests (+ deliveries)', snsCharges),
    rowOf('SQS', m.sqs.requests, 'requests', [{ item: 'sqs_standard_requests', perFlow: m.sqs.requests }]),
    rowOf('KMS', signs, 'Sign requests', kmsCharges),
    rowOf('CloudWatch Logs ingestion', gigabytes(logs.total), 'GB', [
      { item: 'cloudwatch_logs_ingestion', perFlow: gigabytes(logs.total) },
    ]),
    rowOf('CloudWatch Logs storage', storage, 'GB-months', [{ item: 'cloudwatch_logs_storage', perFlow: storage }]),
    rowOf('X-Ray', traces, 'traces', [{ item: 'xray_traces_recorded', perFlow: traces }]),
  ];
  return {
    mode: m.mode,
    outcome: m.outcome,
    rows,
    totalPerMillionFlows: rows.reduce((s, r) => s + r.usdPerMillionFlows, 0),
    counts: {
      apiRequests: m.apiRequestsTotal,
      pendingPolls: m.pendingPolls,
      lambdaInvocations: invocations,
      lambdaGbSeconds: gbs.arm64 + gbs.x86_64,
      transitions: m.stepFunctions.transitions,
      dynamoReadUnits: m.dynamodb.readUnits,
      dynamoWriteUnits: m.dynamodb.writeUnits,
      dynamoIndexWriteUnits: m.dynamodb.indexWriteUnits,
      snsPublishes: m.sns.topicPublishes + m.sns.directPublishes,
      snsDeliveries: { ...m.sns.deliveries, ...(m.sns.direct.sns ? { 'mobile push': m.sns.direct.sns } : {}) },
      sqsRequests: m.sqs.requests,
      kmsSigns: Object.fromEntries(Object.entries(kmsSignatures).filter(([, n]) => n > 0)),
      logs,
      traces,
    },
    functions,
  };
}

/** What the stack costs every month whatever the traffic: keys, alarms, dashboards, the EMF custom metrics. */
export function fixedCosts(facts: TemplateFacts, customMetrics: number, prices: PriceFile): FixedCost[] {
  const cost = (item: ItemName, quantity: number) => tieredCost(quantity, prices.items[item]!);
  const keys = facts.kmsKeys.length;
  return [
    {
      item: 'kms_key_months',
      what: `KMS customer managed keys (${facts.kmsKeys.map((k) => k.keySpec).join(', ')})`,
      quantity: keys,
      usdPerMonth: cost('kms_key_months', keys),
    },
    {
      item: 'cloudwatch_alarm_metrics',
      what: `CloudWatch alarms (${facts.alarms.count} alarms, ${facts.alarms.metrics} metrics)`,
      quantity: facts.alarms.metrics,
      usdPerMonth: cost('cloudwatch_alarm_metrics', facts.alarms.metrics),
    },
    {
      item: 'cloudwatch_dashboards',
      what: 'CloudWatch dashboards',
      quantity: facts.dashboards,
      usdPerMonth: cost('cloudwatch_dashboards', facts.dashboards),
    },
    {
      item: 'cloudwatch_custom_metrics',
      what: 'CloudWatch custom metrics from EMF (each metric the functions can emit, one dimension set)',
      quantity: customMetrics,
      usdPerMonth: cost('cloudwatch_custom_metrics', customMetrics),
    },
  ];
}

/** The monthly bill of `flows` flows like `f`, every price item at its volume tiers, plus the fixed costs. */
export function monthlyBill(f: FlowCost, flows: number, fixedPerMonth: number, prices: PriceFile) {
  const byService = Object.fromEntries(SERVICES.map((s) => [s, 0])) as Record<Service, number>;
  // Tiers apply to an item's whole monthly volume: sum each item's quantity over the rows first.
  const perItem = new Map<ItemName, { perFlow: number; services: Map<Service, number> }>();
  for (const row of f.rows) {
    for (const c of row.charges) {
      const entry = perItem.get(c.item) ?? { perFlow: 0, services: new Map() };
      entry.perFlow += c.perFlow;
      entry.services.set(row.service, (entry.services.get(row.service) ?? 0) + c.perFlow);
      perItem.set(c.item, entry);
    }
  }
  for (const [item, { perFlow, services }] of perItem) {
    const total = tieredCost(perFlow * flows, prices.items[item]!);
    for (const [service, share] of services) byService[service] += perFlow > 0 ? (total * share) / perFlow : 0;
  }
  const variable = Object.values(byService).reduce((s, v) => s + v, 0);
  return { flows, variable, fixed: fixedPerMonth, total: variable + fixedPerMonth, byService };
}

export function costModel(
  measurement: Measurement,
  facts: TemplateFacts,
  prices: PriceFile,
  opts: { customMetrics: number; xraySampled?: number },
): CostModel {
  const xraySampled = opts.xraySampled ?? 1;
  if (!(xraySampled >= 0 && xraySampled <= 1)) throw new Error('the X-Ray sampled share must be in [0, 1]');
  const flows = measurement.flows.map((m) => flowCost(m, facts, prices, xraySampled));
  const fixed = fixedCosts(facts, opts.customMetrics, prices);
  const fixedPerMonth = fixed.reduce((s, f) => s + f.usdPerMonth, 0);
  const monthly = flows
    .filter((f) => f.outcome === 'approved')
    .map((f) => ({
      mode: f.mode,
      outcome: f.outcome,
      volumes: VOLUMES.map((n) => monthlyBill(f, n, fixedPerMonth, prices)),
    }));
  return {
    prices: { as_of: prices.as_of, region: prices.region, currency: prices.currency },
    xraySampled,
    assumptions: assumptions(measurement, facts, xraySampled),
    flows,
    fixed,
    fixedPerMonth,
    monthly,
  };
}

function assumptions(measurement: Measurement, facts: TemplateFacts, xraySampled: number): string[] {
  const fns = Object.values(facts.functions);
  const memories = [...new Set(fns.map((f) => `${f.memoryMb} MB ${f.architecture}`))].join(', ');
  const tracing = [...new Set(fns.map((f) => f.tracing))].join('/');
  const first = fns[0];
  const sample = first ? platformLines(first, 20) : [];
  const platformBytes = sample.reduce((n, l) => n + Buffer.byteLength(l), 0);
  const platformNames = sample.map((l) => l.split(' ')[0]!.replace(/^\{.*"type":"platform\.(\w+)".*$/, '$1')).join('/');
  const machines = [
    ...new Set(
      facts.stateMachines.map(
        (s) => `${s.type.toLowerCase()}, log level ${s.logLevel}, tracing ${s.tracing ? 'on' : 'off'}`,
      ),
    ),
  ].join('; ');
  return [
    `Prices: AWS list prices, ${facts.stackName} in the price file's region; free tiers ignored; "$ per million flows" at each item's first volume tier, the monthly bill with the tiers.`,
    `Template: ${facts.api.type} API; functions ${memories}, tracing ${tracing}; ${facts.stateMachines.length} state machine(s): ${machines}.`,
    `Flows: the bench's clients (client_secret_basic, RS256 ID tokens, refresh tokens) and a user with one polling device and no push channel; poll RPs poll once while pending, then get the answer; ping/push RPs do not poll; the RP of an expired poll request polls once more after the expiry; expiry measured with requested_expiry=${measurement.expirySeconds}s.`,
    `Lambda: each function's median in-process duration over ${measurement.runs} run(s) stands in for its Lambda duration (warm; cold starts and init not modeled), billed rounded up to 1 ms; local durations include the in-process DynamoDB, Step Functions and SNS, which run on the same thread.`,
    `Logs: LOG_LEVEL=${measurement.settings.LOG_LEVEL}, EMF metrics ${measurement.settings.CIBA_METRICS}; plus Lambda's own ${platformNames} lines per invocation (${platformBytes} bytes for a 20 ms invocation of a ${first?.memoryMb ?? '?'} MB function), one access log line per API request, the state machines' logged events; ${LOG_EVENT_OVERHEAD_BYTES} bytes per log event on top; storage uncompressed at the log groups' retention.`,
    facts.signingKeys === 'sealed'
      ? 'Signing keys: sealed in the table (KEYS_SOURCE=sealed): ID and access tokens are signed in memory, no KMS request per flow; each instance of a signing function (token, introspect, deliver) makes one KMS Decrypt at its cold start ($0.03 per 10,000, not modeled per flow), and there are no KMS signing keys to pay for.'
      : "Signing keys: KMS (KEYS_SOURCE=kms): one KMS Sign request per ID or access token, priced at the signing key's spec.",
    xraySampled === 1
      ? 'X-Ray: every trace recorded (an upper bound: the default sampling rule records the first request each second and 5 % of the rest; --xray-sampled 0.05 prices that marginal rate).'
      : `X-Ray: ${xraySampled * 100} % of traces recorded (--xray-sampled; 5 % is the default sampling rule's rate beyond its reservoir of the first request each second, what a busy deployment pays; a quiet one is traced almost entirely, at most ~2.6 M traces a month per function; --xray-sampled 1 prices every trace).`,
    'Not modeled: DynamoDB storage and point-in-time recovery, data transfer, KMS GenerateDataKey/Decrypt (data keys are cached per container for minutes), SMS and e-mail, per-key rotation charges.',
  ];
}
