// Infrastructure tests: alarms and dashboard of the synthesized CibaStack.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { Stack } from 'aws-cdk-lib';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { METRICS } from '../../functions/names.ts';
import { ROUTES, TOPIC_SUBSCRIBERS } from '../../functions/routes.ts';
import { WORKFLOWS } from '../../infra/ciba-construct.ts';
import {
  FUNCTION_NAMES,
  type Json,
  asArray,
  normalize,
  type Synth,
  synth,
  resourcesOf,
  logicalId,
  functionInfo,
  allPolicyDocuments,
  defaultStack,
} from './support.ts';

// ---- Tests ------------------------------------------------------------------------------------------------

let s: Synth;
before(() => {
  s = defaultStack();
});

type Alarm = Json & { id: string };
const alarmsOf = (json: Json): Alarm[] =>
  resourcesOf(json, 'AWS::CloudWatch::Alarm').map(([id, a]) => ({ id, ...a.Properties }));
const dimensionsOf = (dims: Json[] | undefined): Record<string, Json> =>
  Object.fromEntries(asArray(dims).map((d: Json) => [d.Name, d.Value]));

/** The one single-metric alarm on `namespace`/`metricName` with exactly these dimensions. */
function alarmOn(json: Json, namespace: string, metricName: string, dimensions: Record<string, Json>): Alarm {
  const found = alarmsOf(json).filter(
    (a) =>
      a.Namespace === namespace &&
      a.MetricName === metricName &&
      isDeepStrictEqual(dimensionsOf(a.Dimensions), dimensions),
  );
  assert.equal(found.length, 1, `one alarm on ${namespace} ${metricName} ${JSON.stringify(dimensions)}`);
  return found[0]!;
}

/** `≥ threshold` of the Sum over one 5-minute period. */
function assertSumOver5Minutes(alarm: Alarm, threshold: number): void {
  assert.equal(alarm.Statistic, 'Sum', alarm.id);
  assert.equal(alarm.Period, 300, alarm.id);
  assert.equal(alarm.EvaluationPeriods, 1, alarm.id);
  assert.equal(alarm.Threshold, threshold, alarm.id);
  assert.equal(alarm.ComparisonOperator, 'GreaterThanOrEqualToThreshold', alarm.id);
}

/**
 * The dashboard body with every CloudFormation reference replaced by the logical id it points at (Ref and
 * Fn::GetAtt) or `<pseudo>` (AWS::Region), parsed: the JSON CloudWatch will receive, minus the resolved values.
 */
function dashboardBody(json: Json): Json {
  const [[, dashboard]] = resourcesOf(json, 'AWS::CloudWatch::Dashboard') as [[string, Json]];
  const parts: Json[] = dashboard.Properties.DashboardBody['Fn::Join'][1];
  const text = parts
    .map((p) =>
      typeof p === 'string'
        ? p
        : typeof p.Ref === 'string'
          ? p.Ref.startsWith('AWS::')
            ? `<${p.Ref}>`
            : p.Ref
          : p['Fn::GetAtt'][0],
    )
    .join('');
  return JSON.parse(text);
}

/** Every metric graphed on the dashboard as { namespace, metricName, dimensions, stat }. */
function dashboardMetrics(
  body: Json,
): { namespace: string; metricName: string; dimensions: Record<string, string>; stat?: string }[] {
  const out: { namespace: string; metricName: string; dimensions: Record<string, string>; stat?: string }[] = [];
  for (const widget of body.widgets as Json[]) {
    for (const row of asArray(widget.properties.metrics) as Json[][]) {
      if (typeof row[0] !== 'string') continue; // a math expression: [{ expression, … }]
      const options = typeof row[row.length - 1] === 'object' ? (row[row.length - 1] as Json) : {};
      const [namespace, metricName, ...rest] = row.filter((x) => typeof x === 'string') as string[];
      const dimensions: Record<string, string> = {};
      for (let i = 0; i + 1 < rest.length; i += 2) dimensions[rest[i]!] = rest[i + 1]!;
      out.push({ namespace: namespace!, metricName: metricName!, dimensions, stat: options.stat });
    }
  }
  return out;
}

describe('monitoring', () => {
  const alarmTopicRef = (): Json => ({ Ref: logicalId(s.stack, s.stack.server.monitoring.alarmTopic as Topic) });

  it('every alarm explains itself, ignores missing data and notifies the alarm topic on ALARM and OK', () => {
    const alarms = alarmsOf(s.json);
    // state machines 2 × 2, API ×2, table ×2, device topic ×1, delivery ×2 (dead-letter queue, DeliveriesFailed),
    // unreachable users ×1, and Errors + Throttles for each function
    assert.equal(alarms.length, 12 + 2 * FUNCTION_NAMES.length);
    assert.equal(Object.keys(s.stack.server.monitoring.alarms).length, alarms.length);
    for (const a of alarms) {
      assert.equal(a.TreatMissingData, 'notBreaching', a.id);
      assert.deepEqual(a.AlarmActions, [alarmTopicRef()], a.id);
      assert.deepEqual(a.OKActions, [alarmTopicRef()], a.id);
      assert.match(a.AlarmName, /^CibaStack-CibaServer-/, a.id);
      // What it means for CIBA, and where to start.
      assert.match(a.AlarmDescription, /^CIBA: /, a.id);
      assert.match(a.AlarmDescription, /Look first at: /, a.id);
      assert.ok(a.AlarmDescription.length <= 1024, a.id);
    }
  });

  it('each state machine: ExecutionsFailed and ExecutionThrottled, ≥ 1 in 5 minutes', () => {
    for (const machine of Object.values(s.stack.server.stateMachines)) {
      const dims = { StateMachineArn: { Ref: logicalId(s.stack, machine) } };
      assertSumOver5Minutes(alarmOn(s.json, 'AWS/States', 'ExecutionsFailed', dims), 1);
      assertSumOver5Minutes(alarmOn(s.json, 'AWS/States', 'ExecutionThrottled', dims), 1);
    }
  });

  it('expired requests never alarm: the timeout path ends in success, and nothing watches ExecutionsTimedOut or 4xx', () => {
    const poll = WORKFLOWS.find((w) => w.name === 'poll')!;
    const asl = JSON.parse(readFileSync(poll.path, 'utf8')) as { StartAt: string; States: Record<string, Json> };
    // The poll path (ping/push outcomes, expiry included, are then delivered: see the delivery alarms).
    const task = asl.States[asl.StartAt]!;
    const onTimeout: string = task.Catch.find((c: Json) => c.ErrorEquals.includes('States.Timeout')).Next;
    const expired = asl.States[onTimeout]!;
    assert.equal(expired.Type, 'Pass');
    assert.equal(expired.End, true);
    // …while the failure path (device not notified) does end in Fail, which is what ExecutionsFailed counts.
    const onFailure: string = task.Catch.find((c: Json) => c.ErrorEquals.includes('States.ALL')).Next;
    assert.equal(asl.States[asl.States[onFailure]!.Next].Type, 'Fail');

    const watched = JSON.stringify(alarmsOf(s.json).map((a) => [a.MetricName, a.Metrics]));
    for (const metric of ['ExecutionsTimedOut', 'ExecutionsAborted', '"4xx"'])
      assert.ok(!watched.includes(metric), metric);
  });

  it('each function: Errors and Throttles, ≥ 1 in 5 minutes', () => {
    for (const name of FUNCTION_NAMES) {
      const dims = { FunctionName: { Ref: functionInfo(s, name).id } };
      assertSumOver5Minutes(alarmOn(s.json, 'AWS/Lambda', 'Errors', dims), 1);
      assertSumOver5Minutes(alarmOn(s.json, 'AWS/Lambda', 'Throttles', dims), 1);
    }
  });

  it('subscribers are described as SNS-invoked (not as an API route or a workflow step)', () => {
    for (const sub of TOPIC_SUBSCRIBERS) {
      for (const kind of ['Errors', 'Throttles']) {
        const alarm = alarmOn(s.json, 'AWS/Lambda', kind, { FunctionName: { Ref: functionInfo(s, sub.name).id } });
        assert.match(alarm.AlarmDescription, new RegExp(`subscriber of the ${sub.topic} topic`), `${sub.name} ${kind}`);
        assert.doesNotMatch(
          alarm.AlarmDescription,
          /workflow step|reach the client as 5xx|\(GET |\(POST /,
          `${sub.name} ${kind}`,
        );
      }
      const errors = alarmOn(s.json, 'AWS/Lambda', 'Errors', { FunctionName: { Ref: functionInfo(s, sub.name).id } });
      assert.match(errors.AlarmDescription, new RegExp(`timeout \\(${sub.timeoutSeconds} s\\)`));
    }
  });

  it("delivery: dead-letter queue holds ≥ 1 message (max over 5 minutes); DeliveriesFailed (EMF, this server's Server dimension) ≥ 1 in 5 minutes", () => {
    const queueName = { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue), 'QueueName'] };
    const dlq = alarmOn(s.json, 'AWS/SQS', 'ApproximateNumberOfMessagesVisible', { QueueName: queueName });
    assert.equal(dlq.Statistic, 'Maximum');
    assert.equal(dlq.Period, 300);
    assert.equal(dlq.EvaluationPeriods, 1);
    assert.equal(dlq.Threshold, 1);
    assert.equal(dlq.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(dlq.TreatMissingData, 'notBreaching');
    assert.equal(dlq.AlarmName, 'CibaStack-CibaServer-DeliveryDeadLetterQueue-Messages');
    const failed = alarmOn(s.json, 'CibaServer', 'DeliveriesFailed', { Server: s.stack.server.serverName });
    assertSumOver5Minutes(failed, 1);
    assert.equal(failed.TreatMissingData, 'notBreaching');
    // The functions write that dimension value (functions/runtime/metrics.ts reads CIBA_SERVER_NAME).
    for (const name of FUNCTION_NAMES)
      assert.equal(functionInfo(s, name).props.Environment.Variables.CIBA_SERVER_NAME, s.stack.server.serverName, name);
    assert.equal(failed.AlarmName, 'CibaStack-CibaServer-Delivery-DeliveriesFailed');
  });

  it('HTTP API $default stage: 5xx ≥ 5 in 5 minutes; p99 latency > 1000 ms in 3 of 5 minutes', () => {
    const dims = { ApiId: { Ref: logicalId(s.stack, s.stack.server.api) }, Stage: '$default' };
    assertSumOver5Minutes(alarmOn(s.json, 'AWS/ApiGateway', '5xx', dims), 5);
    const latency = alarmOn(s.json, 'AWS/ApiGateway', 'Latency', dims);
    assert.equal(latency.ExtendedStatistic, 'p99');
    assert.equal(latency.Period, 60);
    assert.equal(latency.Threshold, 1000);
    assert.equal(latency.ComparisonOperator, 'GreaterThanThreshold');
    assert.equal(latency.EvaluationPeriods, 5);
    assert.equal(latency.DatapointsToAlarm, 3);
    assert.equal(latency.EvaluateLowSampleCountPercentile, 'ignore');
  });

  it('table: SystemErrors and ThrottledRequests summed over every operation the stack may perform, ≥ 1 in 5 minutes', () => {
    // The operations are the DynamoDB actions granted anywhere in the stack (functions and state machine).
    const granted = new Set(
      allPolicyDocuments(s.json)
        .flatMap((d) => d.statements)
        .flatMap((st) => st.Action)
        .filter((a) => a.startsWith('dynamodb:'))
        .map((a) => a.slice('dynamodb:'.length)),
    );
    const tableRef = { Ref: logicalId(s.stack, s.stack.server.table) };
    for (const metricName of ['SystemErrors', 'ThrottledRequests']) {
      const found = alarmsOf(s.json).filter((a) =>
        asArray(a.Metrics).some((m: Json) => m.MetricStat?.Metric.MetricName === metricName),
      );
      assert.equal(found.length, 1, metricName);
      const alarm = found[0]!;
      assert.equal(alarm.Threshold, 1);
      assert.equal(alarm.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
      const stats = (alarm.Metrics as Json[]).filter((m) => m.MetricStat);
      const [expression] = (alarm.Metrics as Json[]).filter((m) => m.Expression);
      assert.equal(expression.ReturnData, true);
      const operations = new Set<string>();
      for (const m of stats) {
        assert.equal(m.MetricStat.Metric.Namespace, 'AWS/DynamoDB');
        assert.equal(m.MetricStat.Metric.MetricName, metricName);
        assert.equal(m.MetricStat.Stat, 'Sum');
        assert.equal(m.MetricStat.Period, 300);
        const dims = dimensionsOf(m.MetricStat.Metric.Dimensions);
        assert.deepEqual(dims.TableName, tableRef);
        operations.add(dims.Operation);
        // Missing data in one operation must not blank the sum.
        assert.ok(expression.Expression.includes(`FILL(${m.Id}, 0)`), m.Id);
      }
      assert.deepEqual([...operations].sort(), [...granted].sort(), metricName);
    }
  });

  it('device topic: NumberOfNotificationsFailed ≥ 1 in 5 minutes', () => {
    const dims = { TopicName: { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.deviceTopic), 'TopicName'] } };
    assertSumOver5Minutes(alarmOn(s.json, 'AWS/SNS', 'NumberOfNotificationsFailed', dims), 1);
  });

  it('alarm topic: created, TLS only, and CloudWatch alarms of this account may publish to it', () => {
    const topicRef = alarmTopicRef();
    assert.equal(s.json.Resources[topicRef.Ref].Type, 'AWS::SNS::Topic');
    const [[, policy]] = resourcesOf(s.json, 'AWS::SNS::TopicPolicy').filter(([, p]) =>
      isDeepStrictEqual(p.Properties.Topics, [topicRef]),
    ) as [[string, Json]];
    const statements = (policy.Properties.PolicyDocument.Statement as Json[]).map(normalize);
    assert.ok(statements.some((st) => st.Effect === 'Deny' && st.Condition?.Bool?.['aws:SecureTransport'] === 'false'));
    const allow = statements.find((st) => st.Effect === 'Allow');
    assert.deepEqual(allow?.Principal, { Service: 'cloudwatch.amazonaws.com' });
    assert.deepEqual(allow?.Action, ['sns:Publish']);
    assert.deepEqual(allow?.Resource, [topicRef]);
    assert.deepEqual(allow?.Condition?.StringEquals, { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } });
    assert.match(JSON.stringify(allow?.Condition?.ArnLike['aws:SourceArn']), /:cloudwatch:.*:alarm:\*/);
  });

  it('dashboard <stack>-ciba: the flow by route, workflow, device notifications, deliveries, functions and table', () => {
    const [[, dashboard]] = resourcesOf(s.json, 'AWS::CloudWatch::Dashboard') as [[string, Json]];
    assert.equal(dashboard.Properties.DashboardName, 'CibaStack-ciba');
    // Per-route metrics exist only with detailed metrics on the stage.
    const [[, stage]] = resourcesOf(s.json, 'AWS::ApiGatewayV2::Stage') as [[string, Json]];
    assert.equal(stage.Properties.DefaultRouteSettings.DetailedMetricsEnabled, true);

    const body = dashboardBody(s.json);
    const metrics = dashboardMetrics(body);
    const has = (namespace: string, metricName: string, dimensions: Record<string, string>, stat?: string): boolean =>
      metrics.some(
        (m) =>
          m.namespace === namespace &&
          m.metricName === metricName &&
          isDeepStrictEqual(m.dimensions, dimensions) &&
          (!stat || m.stat === stat),
      );
    const apiId = logicalId(s.stack, s.stack.server.api);
    for (const route of new Set(ROUTES.map((r) => `${r.method} ${r.path}`))) {
      const dims = { ApiId: apiId, Stage: '$default', Route: route };
      for (const [metricName, stat] of [
        ['Count', 'Sum'],
        ['4xx', 'Sum'],
        ['5xx', 'Sum'],
        ['Latency', 'p50'],
        ['Latency', 'p99'],
      ] as const) {
        assert.ok(has('AWS/ApiGateway', metricName, dims, stat), `${route} ${metricName} ${stat}`);
      }
    }
    for (const metricName of ['4xx', '5xx'])
      assert.ok(has('AWS/ApiGateway', metricName, { ApiId: apiId, Stage: '$default' }), metricName);
    for (const machine of Object.values(s.stack.server.stateMachines)) {
      const sm = { StateMachineArn: logicalId(s.stack, machine) };
      for (const metricName of [
        'ExecutionsStarted',
        'ExecutionsSucceeded',
        'ExecutionsFailed',
        'ExecutionsTimedOut',
        'ExecutionTime',
      ]) {
        assert.ok(has('AWS/States', metricName, sm), metricName);
      }
    }
    for (const name of FUNCTION_NAMES) {
      const fn = { FunctionName: functionInfo(s, name).id };
      for (const metricName of ['Errors', 'Throttles', 'Duration', 'ConcurrentExecutions'])
        assert.ok(has('AWS/Lambda', metricName, fn), `${name} ${metricName}`);
    }
    const table = { TableName: logicalId(s.stack, s.stack.server.table) };
    for (const metricName of ['ConsumedReadCapacityUnits', 'ConsumedWriteCapacityUnits'])
      assert.ok(has('AWS/DynamoDB', metricName, table), metricName);
    assert.ok(metrics.some((m) => m.metricName === 'ThrottledRequests' && m.dimensions.TableName === table.TableName));
    const topic = { TopicName: logicalId(s.stack, s.stack.server.deviceTopic) };
    for (const metricName of ['NumberOfNotificationsDelivered', 'NumberOfNotificationsFailed'])
      assert.ok(has('AWS/SNS', metricName, topic), metricName);
    // Ping/push delivery: the deliver function's EMF metrics and the dead-letter queue depth.
    const server = { Server: s.stack.server.serverName };
    for (const metricName of ['DeliveriesSucceeded', 'DeliveryRetries', 'DeliveriesFailed'])
      assert.ok(has('CibaServer', metricName, server, 'Sum'), metricName);
    for (const stat of ['p50', 'p99'])
      assert.ok(has('CibaServer', 'ApprovalToNotification', server, stat), `ApprovalToNotification ${stat}`);
    assert.ok(
      has(
        'AWS/SQS',
        'ApproximateNumberOfMessagesVisible',
        { QueueName: logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue) },
        'Maximum',
      ),
    );

    // Every alarm's state is on it, and a table of the latest function errors.
    const alarmWidget = (body.widgets as Json[]).find((w) => w.type === 'alarm');
    assert.equal(alarmWidget.properties.alarms.length, alarmsOf(s.json).length);
    const logs = (body.widgets as Json[]).find((w) => w.type === 'log');
    assert.equal(logs.properties.query.match(/SOURCE '/g).length, FUNCTION_NAMES.length);
  });

  it('outputs the dashboard URL (built with the region) and the alarm topic ARN', () => {
    assert.deepEqual(s.json.Outputs.AlarmTopicArn.Value, alarmTopicRef());
    const url = s.json.Outputs.DashboardUrl.Value['Fn::Join'][1] as Json[];
    const text = url.map((p) => (typeof p === 'string' ? p : `<${p.Ref}>`)).join('');
    assert.equal(
      text,
      'https://<AWS::Region>.console.aws.amazon.com/cloudwatch/home?region=<AWS::Region>#dashboards/dashboard/CibaStack-ciba',
    );
  });

  it('an existing alarmTopic receives every alarm and no topic is created for it', () => {
    const arn = 'arn:aws:sns:eu-west-1:123456789012:ops-oncall';
    const alarmTopic = Topic.fromTopicArn(new Stack(), 'OpsOnCall', arn);
    const own = synth({ monitoring: { alarmTopic } }, 'OwnTopic');
    assert.equal(own.stack.server.monitoring.alarmTopic, alarmTopic);
    assert.deepEqual(
      resourcesOf(own.json, 'AWS::SNS::Topic')
        .map(([id]) => id)
        .sort(),
      [logicalId(own.stack, own.stack.server.deviceTopic), logicalId(own.stack, own.stack.server.deliveryTopic)].sort(),
    );
    assert.equal(resourcesOf(own.json, 'AWS::SNS::TopicPolicy').length, 2);
    const alarms = alarmsOf(own.json);
    assert.equal(alarms.length, alarmsOf(s.json).length);
    for (const a of alarms) {
      assert.deepEqual(a.AlarmActions, [arn], a.id);
      assert.deepEqual(a.OKActions, [arn], a.id);
    }
    assert.equal(own.json.Outputs.AlarmTopicArn.Value, arn);
  });

  it('dashboard: false keeps the alarms but creates no dashboard and no per-route metrics', () => {
    const bare = synth({ monitoring: { dashboard: false } }, 'NoDashboard');
    assert.equal(resourcesOf(bare.json, 'AWS::CloudWatch::Dashboard').length, 0);
    assert.equal(bare.json.Outputs.DashboardUrl, undefined);
    assert.equal(bare.stack.server.monitoring.dashboard, undefined);
    assert.equal(alarmsOf(bare.json).length, alarmsOf(s.json).length);
    const [[, stage]] = resourcesOf(bare.json, 'AWS::ApiGatewayV2::Stage') as [[string, Json]];
    assert.equal(stage.Properties.DefaultRouteSettings.DetailedMetricsEnabled, false);
  });
});

// The real app through the real CLI, offline and without credentials: this one runs esbuild on every handler.

describe('names defined once (functions/names.ts)', () => {
  it('every alarm and dashboard metric in our namespace is one the functions emit', () => {
    const ours = new Set<string>(Object.values(METRICS).filter((m) => m !== METRICS.namespace));
    const found = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) {
        for (const n of node) walk(n);
        return;
      }
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (o.Namespace === METRICS.namespace && typeof o.MetricName === 'string') found.add(o.MetricName);
      for (const v of Object.values(o)) walk(v);
    };
    walk(alarmsOf(s.json));
    // The dashboard body lists metrics as [namespace, name, ...dimensions] arrays.
    const body = JSON.stringify(dashboardBody(s.json));
    for (const m of body.matchAll(new RegExp(`"${METRICS.namespace}","([A-Za-z]+)"`, 'g'))) found.add(m[1]!);
    assert.ok(found.size >= 3, `found ${[...found].join(', ')}`);
    assert.deepEqual(
      [...found].filter((n) => !ours.has(n)),
      [],
    );
  });
});
