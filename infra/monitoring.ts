// CibaMonitoring: what ops watch for one CibaServer. Alarms say what went wrong for the CIBA flow and where to
// look first; the dashboard shows the flow at a glance (requests in, workflows, device notifications, ping/push
// deliveries, tokens out). Everything is derived from the server's own resources and the route table, so a new
// route or function is monitored without touching this file.
//
// Alarms: 10 fixed ones (workflow ×2, API ×2, table ×2, device topic, delivery dead-letter queue, failed
// deliveries, unreachable users) plus Errors and Throttles for every function.
//
// What deliberately does not alarm: 4xx (every poll before the user decides is a 400 authorization_pending,
// polling too fast is slow_down) and expired requests (the workflow catches States.Timeout, records the expiry
// and ends in the Expired Succeed state, so they count as ExecutionsSucceeded; ExecutionsTimedOut stays 0).
import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import type { HttpApi, HttpStage } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  LogQueryWidget,
  MathExpression,
  Metric,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { GraphWidgetProps, IMetric, IWidget } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { Table } from 'aws-cdk-lib/aws-dynamodb';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { ITopic } from 'aws-cdk-lib/aws-sns';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { PATHS, ROUTES, TOPIC_SUBSCRIBERS } from '../functions/routes.ts';
import { METRICS, type MetricName } from '../functions/names.ts';

export interface CibaMonitoringOptions {
  /**
   * Where every alarm sends its ALARM and OK notifications, e.g. the team's existing on-call topic.
   * @default a new topic (`AlarmTopic`, exposed as `alarmTopic`) for ops to subscribe to
   */
  readonly alarmTopic?: ITopic;
  /**
   * Create the `<stack>-ciba` CloudWatch dashboard. It also turns on the stage's detailed (per-route) metrics,
   * which the dashboard graphs and which CloudWatch bills as custom metrics; the alarms need neither.
   * @default true
   */
  readonly dashboard?: boolean;
}

/** The CibaServer resources being watched (a CibaServer satisfies this). */
export interface MonitoredCibaServer {
  readonly api: HttpApi;
  readonly stage: HttpStage;
  readonly table: Table;
  readonly deviceTopic: ITopic;
  readonly deliveryTopic: ITopic;
  readonly deliveryDeadLetterQueue: IQueue;
  /** The workflows by name (`poll`, `notify`): statemachines/workflows.ts. */
  readonly stateMachines: Readonly<Record<string, StateMachine>>;
  readonly functions: Readonly<Record<string, LambdaFunction>>;
  /** The `Server` dimension of the functions' CibaServer/* metrics. */
  readonly serverName: string;
}

export interface CibaMonitoringProps extends CibaMonitoringOptions {
  readonly server: MonitoredCibaServer;
  /** Prefix of every alarm name, e.g. `CibaStack-CibaServer` (alarm names are unique per account and region). */
  readonly alarmNamePrefix: string;
}

/**
 * The DynamoDB operations the functions and the workflow are allowed to perform (what CibaServer grants for
 * `access.table`, plus the workflow's UpdateItem); the infra test checks this list against the granted actions.
 */
const TABLE_OPERATIONS = ['GetItem', 'Query', 'BatchGetItem', 'PutItem', 'UpdateItem', 'DeleteItem'] as const;

/** Stage-wide p99 latency above which the API counts as slow, milliseconds. */
const LATENCY_P99_THRESHOLD_MS = 1000;
/** 5xx responses in 5 minutes that raise the API alarm (a lone one still shows on the dashboard). */
const API_5XX_THRESHOLD = 5;

/** Embedded Metric Format metrics the deliver function writes to its log, dimension Server = the CibaServer's name. */
const DELIVERY_NAMESPACE = METRICS.namespace;

const ALARM_PERIOD = Duration.minutes(5);
const GRAPH_PERIOD = Duration.minutes(1);
const RED = '#d62728';
const routeKey = (r: { method: string; path: string }): string => `${r.method} ${r.path}`;
/** The requests that make up one CIBA flow: the RP starts it, the device decides, the RP polls for tokens. */
const FLOW_ROUTES = [
  { label: 'backchannel requests (POST /bc-authorize)', key: routeKey({ method: 'POST', path: PATHS.backchannel }) },
  {
    label: 'device decisions (POST /device/requests/{id})',
    key: routeKey({ method: 'POST', path: PATHS.deviceRequest }),
  },
  { label: 'token requests (POST /token)', key: routeKey({ method: 'POST', path: PATHS.token }) },
];

type AlarmSpec = {
  metric: IMetric;
  threshold: number;
  description: string;
  comparisonOperator?: ComparisonOperator;
  evaluationPeriods?: number;
  datapointsToAlarm?: number;
  evaluateLowSampleCountPercentile?: 'ignore' | 'evaluate';
};

export class CibaMonitoring extends Construct {
  /** Receives every alarm's ALARM and OK notifications (the given topic, or the one created here). */
  readonly alarmTopic: ITopic;
  /** Every alarm by a stable key (`StateMachine-ExecutionsFailed`, `token-Errors`, …); the key ends its name. */
  readonly alarms: Readonly<Record<string, Alarm>>;
  /** The `<stack>-ciba` dashboard, unless `dashboard: false`. */
  readonly dashboard?: Dashboard;
  /** Console link to the dashboard (the commercial-partition console, `<region>.console.aws.amazon.com`). */
  readonly dashboardUrl?: string;

  private readonly prefix: string;
  private readonly alarmsByKey: Record<string, Alarm> = {};

  constructor(scope: Construct, id: string, props: CibaMonitoringProps) {
    super(scope, id);
    this.prefix = props.alarmNamePrefix;
    this.alarmTopic = props.alarmTopic ?? this.createAlarmTopic();
    this.alarms = this.alarmsByKey;
    const server = props.server;

    for (const [name, machine] of Object.entries(server.stateMachines)) this.workflowAlarms(name, machine);
    for (const [name, fn] of Object.entries(server.functions)) this.functionAlarms(name, fn);
    this.apiAlarms(server.stage);
    this.tableAlarms(server.table);
    this.deviceTopicAlarms(server.deviceTopic);
    this.deliveryAlarms(server, server.deliveryDeadLetterQueue);
    this.notificationAlarms(server);

    if (props.dashboard ?? true) {
      const stack = Stack.of(this);
      const dashboardName = `${stack.stackName}-ciba`;
      this.dashboard = new Dashboard(this, 'Dashboard', {
        dashboardName,
        defaultInterval: Duration.hours(3),
        widgets: this.dashboardRows(server, dashboardName),
      });
      this.dashboardUrl = `https://${stack.region}.console.aws.amazon.com/cloudwatch/home?region=${stack.region}#dashboards/dashboard/${dashboardName}`;
    }
  }

  // ---- Alarm topic ----------------------------------------------------------------------------------------

  private createAlarmTopic(): Topic {
    // Not KMS-encrypted: CloudWatch cannot publish to a topic under the AWS-managed SNS key, and alarm
    // notifications carry no user data. enforceSSL replaces SNS's default topic policy, so CloudWatch alarms of
    // this account and region are allowed explicitly (without this they fail with "not authorized").
    const topic = new Topic(this, 'AlarmTopic', { displayName: 'CIBA server alarms', enforceSSL: true });
    const stack = Stack.of(this);
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    return topic;
  }

  /** One alarm: missing data is fine (no traffic), notifications on ALARM and on recovery. */
  private alarm(key: string, spec: AlarmSpec): Alarm {
    const alarm = new Alarm(this, key, {
      alarmName: `${this.prefix}-${key}`,
      alarmDescription: spec.description,
      metric: spec.metric,
      threshold: spec.threshold,
      comparisonOperator: spec.comparisonOperator ?? ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: spec.evaluationPeriods ?? 1,
      datapointsToAlarm: spec.datapointsToAlarm ?? spec.evaluationPeriods ?? 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
      ...(spec.evaluateLowSampleCountPercentile
        ? { evaluateLowSampleCountPercentile: spec.evaluateLowSampleCountPercentile }
        : {}),
    });
    const action = new SnsAction(this.alarmTopic);
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarmsByKey[key] = alarm;
    return alarm;
  }

  // ---- Alarms ---------------------------------------------------------------------------------------------

  private workflowAlarms(name: string, stateMachine: StateMachine): void {
    const key = `${name[0]!.toUpperCase()}${name.slice(1)}StateMachine`;
    this.alarm(`${key}-ExecutionsFailed`, {
      metric: stateMachine.metricFailed({ statistic: Stats.SUM, period: ALARM_PERIOD }),
      threshold: 1,
      description:
        `CIBA: at least one ${name} authentication-request workflow failed in 5 minutes. ` +
        (name === 'poll'
          ? "Usually the user's device could not be notified: AwaitDecision exhausted its retries, RecordFailure marked the " +
            "request failed and the execution ended in Failed (DeviceNotificationFailed), so the client's next poll gets " +
            'access_denied ("the authentication device could not be reached") instead of the user\'s decision. '
          : "A notification the ping or push client's endpoint never accepted: the execution failed at Deliver " +
            '(Delivery.Rejected or Delivery.Exhausted; see the DeliveryDeadLetterQueue alarm), and can be redriven once ' +
            'the endpoint is fixed (`npm run admin -- dead-letters redrive`). ') +
        'Denials are outcomes, not failures. Otherwise a task ' +
        "error (e.g. RecordFailure's DynamoDB update). Expired requests are not failures and never trigger this. " +
        'Look first at: the failed executions in the Step Functions console (execution name = request id) and their error/cause, ' +
        'then the notify-device logs ("device notification failed") and the device topic, or the dead-letter queue.',
    });
    this.alarm(`${key}-ExecutionThrottled`, {
      metric: stateMachine.metricThrottled({ statistic: Stats.SUM, period: ALARM_PERIOD }),
      threshold: 1,
      description:
        `CIBA: Step Functions throttled state transitions of the ${name} workflow in 5 minutes` +
        ': devices are notified late, and ' +
        'decisions and expiries are recorded late. (A throttled StartExecution shows up as bc-authorize 5xx instead.) ' +
        'Look first at: the Step Functions state-transition quota for this account and region in Service Quotas, other state ' +
        'machines sharing it, and the backchannel request rate on the dashboard.',
    });
  }

  private functionAlarms(name: string, fn: LambdaFunction): void {
    // Three kinds: behind an API route, invoked by the workflow, or subscribed to an SNS topic (invoked by SNS).
    const routes = ROUTES.filter((r) => r.name === name)
      .map(routeKey)
      .join(', ');
    const subscriber = TOPIC_SUBSCRIBERS.find((t) => t.name === name);
    const kind = routes ? 'route' : subscriber ? 'subscriber' : 'workflow';
    const timeout = `${fn.timeout?.toSeconds() ?? 3} s`;
    const what =
      kind === 'route'
        ? `the ${name} function (${routes})`
        : kind === 'subscriber'
          ? `the ${name} function (subscriber of the ${subscriber!.topic} topic)`
          : `the ${name} workflow step`;
    const impact =
      kind === 'route'
        ? 'Client mistakes never count here (they are 4xx) and a handled exception becomes a logged 500 server_error (see the 5xx alarm), ' +
          `so this is a crash, a timeout (${timeout}), a failed cold start, or a dependency (DynamoDB, KMS, Step Functions) hanging. `
        : kind === 'subscriber' && subscriber!.topic === 'device'
          ? `SNS invokes it asynchronously; after a crash or a timeout (${timeout}) Lambda retries the invocation ${subscriber!.retries} ` +
            'times a minute or two later, and its notification ledger skips the channels already done. A device whose notification was ' +
            'lost still lists the request when its app polls the device API. Push service, SNS, SES and webhook ' +
            'failures are not counted here (NotificationsFailed, UsersUnreachable). '
          : kind === 'subscriber'
            ? `SNS invokes it asynchronously with no Lambda retries, so a crash or a timeout (${timeout}) leaves the workflow's Deliver ` +
              'task unanswered: it times out and is retried with backoff until the delivery window closes, then the notification is ' +
              'dead-lettered (see the DeliveryDeadLetterQueue alarm). Client endpoint errors are not counted here (DeliveriesFailed). '
            : 'The workflow retries Lambda service errors and failed notifications; when retries run out, or on any other error, the ' +
              'request is marked failed (see the ExecutionsFailed alarm). ' +
              (name === 'notify-device'
                ? 'It throws when publishing to the device topic fails or the request row is missing. '
                : '') +
              (name === 'enqueue-delivery'
                ? 'It throws when publishing to the delivery topic fails; the Deliver step retries it. '
                : '');
    this.alarm(`${name}-Errors`, {
      metric: fn.metricErrors({ statistic: Stats.SUM, period: ALARM_PERIOD }),
      threshold: 1,
      description:
        `CIBA: ${what} failed at least once in 5 minutes: a bug or a dependency failure. ${impact}` +
        `Look first at: its log group (level "error", "Task timed out", "Runtime."), then the latest deployment and the health of the dependency it calls.`,
    });
    this.alarm(`${name}-Throttles`, {
      metric: fn.metricThrottles({ statistic: Stats.SUM, period: ALARM_PERIOD }),
      threshold: 1,
      description:
        `CIBA: Lambda throttled ${what} in the last 5 minutes: the account's (or the function's reserved) concurrency is exhausted. ` +
        (kind === 'route'
          ? 'Throttled calls reach the client as 5xx. '
          : kind === 'subscriber' && subscriber!.topic === 'device'
            ? 'Lambda keeps throttled SNS events for up to an hour, so users are notified late or, past their request, not at all. '
            : kind === 'subscriber'
              ? 'Lambda keeps throttled SNS events for a while, then drops them and the workflow retries the delivery: clients are notified late. '
              : 'Step Functions retries, so devices are notified late. ') +
        "Look first at: concurrent executions per function on the dashboard, the account's Lambda concurrency quota, and other functions in the account.",
    });
  }

  private apiAlarms(stage: HttpStage): void {
    this.alarm('Api-5xx', {
      metric: stage.metricServerError({ statistic: Stats.SUM, period: ALARM_PERIOD }),
      threshold: API_5XX_THRESHOLD,
      description:
        `CIBA: the HTTP API answered ${API_5XX_THRESHOLD} or more requests with 5xx in 5 minutes. RPs and devices get server_error: ` +
        'requests cannot start, decisions are not recorded or tokens are not issued. (4xx are not alarmed on: authorization_pending and ' +
        'slow_down are normal polling.) Look first at: 5xx by route on the dashboard, the API access log (status, integrationError), ' +
        'the function logs ("unhandled error", "request failed"), then the Lambda Errors/Throttles and DynamoDB alarms.',
    });
    this.alarm('Api-LatencyP99', {
      metric: stage.metricLatency({ statistic: Stats.p(99), period: Duration.minutes(1) }),
      threshold: LATENCY_P99_THRESHOLD_MS,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      // A quiet minute with a cold start or two says nothing about the p99.
      evaluateLowSampleCountPercentile: 'ignore',
      description:
        `CIBA: p99 latency of the HTTP API was above ${LATENCY_P99_THRESHOLD_MS} ms in 3 of the last 5 minutes (minutes with too few ` +
        "requests are ignored). Slow /bc-authorize delays the prompt on the user's device; slow /token stretches every poll. " +
        "Look first at: latency p99 by route on the dashboard, then that function's duration (cold starts, KMS Sign, DynamoDB) and throttles.",
    });
  }

  private tableAlarms(table: Table): void {
    this.alarm('Table-SystemErrors', {
      metric: sumOverOperations(table, 'SystemErrors', 'DynamoDB system errors (all operations)', ALARM_PERIOD),
      threshold: 1,
      description:
        'CIBA: DynamoDB returned internal server errors for the CIBA table in 5 minutes. The SDK retries them; persistent ones ' +
        'surface as 5xx from the API and failed workflows. Look first at: the AWS Health Dashboard for DynamoDB in this region, then the ' +
        'Api-5xx and function Errors alarms to see whether clients were affected.',
    });
    this.alarm('Table-ThrottledRequests', {
      metric: sumOverOperations(
        table,
        'ThrottledRequests',
        'DynamoDB throttled requests (all operations)',
        ALARM_PERIOD,
      ),
      threshold: 1,
      description:
        'CIBA: requests to the CIBA table or its user index were throttled in 5 minutes. The table is on demand, so this is traffic ' +
        'beyond its current on-demand peak or a hot key (one client or user flooding). The SDK retries; sustained throttling becomes ' +
        '5xx and slow polls. Look first at: consumed capacity and requests by route on the dashboard.',
    });
  }

  private deviceTopicAlarms(deviceTopic: ITopic): void {
    this.alarm('DeviceTopic-NotificationsFailed', {
      metric: deviceTopic.metricNumberOfNotificationsFailed({ statistic: Stats.SUM, period: ALARM_PERIOD }),
      threshold: 1,
      description:
        'CIBA: SNS gave up handing at least one device-topic message to a subscriber in 5 minutes (the dispatch-notifications ' +
        'function, or a subscriber of your own). Those users were not prompted; their requests expire unless their apps list ' +
        'pending requests (GET /device/requests). Look first at: the dispatch-notifications Errors and Throttles alarms, its ' +
        'invoke permission, and the SNS delivery status logs of the device topic.',
    });
  }

  private notificationAlarms(server: MonitoredCibaServer): void {
    this.alarm('Notifications-UsersUnreachable', {
      metric: deliveryMetric(server, METRICS.usersUnreachable, Stats.SUM, ALARM_PERIOD),
      threshold: 1,
      description:
        `CIBA: at least one user could not be reached at all in 5 minutes (${DELIVERY_NAMESPACE}/UsersUnreachable): every ` +
        'channel of a new request failed for good (Web Push, SNS mobile push, SMS, e-mail), or the user has no device and no ' +
        'fallback. Their sign-in waits until it expires. A single user whose only subscription expired (404/410) also counts. ' +
        'Look first at: the dispatch-notifications logs ("user could not be reached", "user notification failed": channel, ' +
        'result), the NotificationsFailed graph, push service or SES/SNS health, and the SMS spending limit.',
    });
  }

  private deliveryAlarms(server: MonitoredCibaServer, deadLetterQueue: IQueue): void {
    this.alarm('DeliveryDeadLetterQueue-Messages', {
      metric: deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        statistic: Stats.MAXIMUM,
        period: ALARM_PERIOD,
      }),
      threshold: 1,
      description:
        'CIBA: the delivery dead-letter queue holds at least one notification: a ping or push client was never told that its ' +
        'request ended (its endpoint kept failing until the delivery window closed, rejected the notification with 3xx/4xx, or ' +
        'could not be reached). Ping clients can still fetch the outcome at /token. The alarm stays on until the messages are ' +
        'handled (14 days retention): `npm run admin -- dead-letters list`, fix the endpoint, then `dead-letters redrive` (the ' +
        'execution re-runs Deliver). Look first at: the messages (request id, client id, error, execution), ' +
        "the execution history, the deliver function logs and the client's registered client_notification_endpoint.",
    });
    this.alarm('Delivery-DeliveriesFailed', {
      metric: deliveryMetric(server, METRICS.deliveriesFailed, Stats.SUM, ALARM_PERIOD),
      threshold: 1,
      description:
        `CIBA: the deliver function counted at least one failed ping/push delivery in 5 minutes (${DELIVERY_NAMESPACE}/DeliveriesFailed): ` +
        "the client's endpoint rejected the notification or the delivery window closed, so it is dead-lettered. Attempts that are " +
        'retried count as DeliveryRetries instead. ' +
        "Look first at: the deliver function logs (status, client id), the client's notification endpoint and the dead-letter queue.",
    });
  }

  // ---- Dashboard ------------------------------------------------------------------------------------------

  private dashboardRows(server: MonitoredCibaServer, dashboardName: string): IWidget[][] {
    const { api, stage, stateMachines, table, deviceTopic, deliveryTopic, deliveryDeadLetterQueue } = server;
    const machines = Object.entries(stateMachines);
    const functions = Object.entries(server.functions);
    const routes = [...new Set(ROUTES.map(routeKey))];
    const routeMetric = (metricName: string, route: string, statistic: string, label = route): Metric =>
      new Metric({
        namespace: 'AWS/ApiGateway',
        metricName,
        dimensionsMap: { ApiId: api.apiId, Stage: stage.stageName, Route: route },
        statistic,
        period: GRAPH_PERIOD,
        label,
      });
    const perMinute = { statistic: Stats.SUM, period: GRAPH_PERIOD };
    const graph = (title: string, left: IMetric[], extra: Partial<GraphWidgetProps> = {}): GraphWidget =>
      new GraphWidget({ title, left, width: 8, height: 6, ...extra });
    const heading = (text: string): TextWidget => new TextWidget({ markdown: `## ${text}`, width: 24, height: 1 });
    const perFunction = (fn: (f: LambdaFunction) => Metric): Metric[] =>
      functions.map(([name, f]) => fn(f).with({ label: name }));

    const overview = new TextWidget({
      width: 8,
      height: 6,
      markdown: [
        `# CIBA server: ${dashboardName}`,
        "One flow: the RP posts **/bc-authorize** → a workflow notifies the user's device (SNS) and waits → the device posts its " +
          'decision → the RP polls **/token** until it gets tokens.',
        '',
        '* 4xx on POST /token are mostly `authorization_pending` / `slow_down`: normal polling.',
        "* Expired requests end in the workflow's *Expired* state and count as **succeeded**; timed-out executions should stay at 0.",
        '* Failed executions are requests whose device could not be notified, or whose ping/push notification was never accepted ' +
          '(then in the delivery dead-letter queue).',
      ].join('\n'),
    });
    const alarms = new AlarmStatusWidget({
      title: 'Alarms',
      alarms: Object.values(this.alarmsByKey),
      width: 16,
      height: 6,
    });

    return [
      [overview, alarms],
      [heading("API (per minute; per-route graphs use the stage's detailed metrics)")],
      [
        graph(
          'CIBA flow: requests / min',
          FLOW_ROUTES.map((r) => routeMetric('Count', r.key, Stats.SUM, r.label)),
        ),
        graph(
          'Other routes: requests / min',
          routes.filter((r) => !FLOW_ROUTES.some((f) => f.key === r)).map((r) => routeMetric('Count', r, Stats.SUM)),
        ),
        graph('4xx / 5xx (all routes) / min', [
          stage.metricClientError({ ...perMinute, label: '4xx (mostly authorization_pending polls)' }),
          stage.metricServerError({ ...perMinute, label: '5xx', color: RED }),
        ]),
      ],
      [
        graph(
          '4xx by route / min',
          routes.map((r) => routeMetric('4xx', r, Stats.SUM)),
        ),
        graph(
          '5xx by route / min',
          routes.map((r) => routeMetric('5xx', r, Stats.SUM)),
        ),
        graph(
          'Latency p50 by route (ms)',
          routes.map((r) => routeMetric('Latency', r, Stats.p(50))),
        ),
      ],
      [
        graph(
          'Latency p99 by route (ms)',
          routes.map((r) => routeMetric('Latency', r, Stats.p(99))),
        ),
        graph(
          'Integration latency p99 by route (ms)',
          routes.map((r) => routeMetric('IntegrationLatency', r, Stats.p(99))),
        ),
        graph(
          'Latency, all routes (ms)',
          [
            stage.metricLatency({ statistic: Stats.p(50), period: GRAPH_PERIOD, label: 'p50' }),
            stage.metricLatency({ statistic: Stats.p(99), period: GRAPH_PERIOD, label: 'p99' }),
          ],
          { leftAnnotations: [{ value: LATENCY_P99_THRESHOLD_MS, label: 'p99 alarm threshold', color: RED }] },
        ),
      ],
      [heading('Workflow (one Standard execution per authentication request) and device notifications')],
      [
        graph(
          'Executions / min',
          machines.flatMap(([name, stateMachine]) => [
            stateMachine.metricStarted({ ...perMinute, label: `${name}: started` }),
            stateMachine.metricSucceeded({ ...perMinute, label: `${name}: succeeded (approved, denied or expired)` }),
            stateMachine.metricFailed({
              ...perMinute,
              label: `${name}: failed (device not notified, or undeliverable)`,
              color: RED,
            }),
            stateMachine.metricTimedOut({ ...perMinute, label: `${name}: timed out (expected 0)` }),
            stateMachine.metricAborted({ ...perMinute, label: `${name}: aborted` }),
            stateMachine.metricThrottled({ ...perMinute, label: `${name}: throttled` }),
          ]),
        ),
        graph(
          'Execution time: request to decision or expiry (ms)',
          machines.flatMap(([name, stateMachine]) => [
            stateMachine.metricTime({ statistic: Stats.p(50), period: GRAPH_PERIOD, label: `${name}: p50` }),
            stateMachine.metricTime({ statistic: Stats.p(99), period: GRAPH_PERIOD, label: `${name}: p99` }),
          ]),
        ),
        graph('Device notifications / min', [
          deviceTopic.metricNumberOfMessagesPublished({ ...perMinute, label: 'published (notify-device)' }),
          deviceTopic.metricNumberOfNotificationsDelivered({ ...perMinute, label: 'delivered' }),
          deviceTopic.metricNumberOfNotificationsFailed({ ...perMinute, label: 'failed', color: RED }),
        ]),
      ],
      [
        heading(
          "Reaching users (the dispatch-notifications function's metrics: Web Push, SNS, SMS, e-mail, operator hook)",
        ),
      ],
      [
        graph('Channel sends / min', [
          deliveryMetric(server, METRICS.notificationsSent, Stats.SUM, GRAPH_PERIOD, 'sent'),
          deliveryMetric(server, METRICS.notificationsFailed, Stats.SUM, GRAPH_PERIOD, 'failed for good').with({
            color: RED,
          }),
        ]),
        graph(
          'Users not reached at all / min',
          [
            deliveryMetric(server, METRICS.usersUnreachable, Stats.SUM, GRAPH_PERIOD, 'users unreachable').with({
              color: RED,
            }),
          ],
          { leftAnnotations: [{ value: 1, label: 'alarm threshold', color: RED }] },
        ),
      ],
      [
        heading(
          "Ping and push delivery (the deliver function's metrics; undeliverable notifications go to the dead-letter queue)",
        ),
      ],
      [
        graph('Deliveries / min', [
          deliveryTopic.metricNumberOfMessagesPublished({ ...perMinute, label: 'requested (enqueue-delivery)' }),
          deliveryMetric(server, METRICS.deliveriesSucceeded, Stats.SUM, GRAPH_PERIOD, 'succeeded'),
          deliveryMetric(server, METRICS.deliveryRetries, Stats.SUM, GRAPH_PERIOD, 'retried'),
          deliveryMetric(server, METRICS.deliveriesFailed, Stats.SUM, GRAPH_PERIOD, 'failed (dead-lettered)').with({
            color: RED,
          }),
        ]),
        graph('Approval to client notification (ms)', [
          deliveryMetric(server, METRICS.approvalToNotification, Stats.p(50), GRAPH_PERIOD, 'p50'),
          deliveryMetric(server, METRICS.approvalToNotification, Stats.p(99), GRAPH_PERIOD, 'p99'),
        ]),
        graph(
          'Dead-letter queue: undeliverable notifications',
          [
            deliveryDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
              statistic: Stats.MAXIMUM,
              period: GRAPH_PERIOD,
              label: 'messages',
              color: RED,
            }),
          ],
          { leftAnnotations: [{ value: 1, label: 'alarm threshold', color: RED }] },
        ),
      ],
      [heading('DynamoDB table')],
      [
        graph('Consumed capacity / min', [
          table.metricConsumedReadCapacityUnits({ ...perMinute, label: 'read units' }),
          table.metricConsumedWriteCapacityUnits({ ...perMinute, label: 'write units' }),
        ]),
        graph('Throttled requests and system errors / min', [
          sumOverOperations(table, 'ThrottledRequests', 'throttled requests', GRAPH_PERIOD),
          sumOverOperations(table, 'SystemErrors', 'system errors', GRAPH_PERIOD),
        ]),
        graph(
          'Request latency by operation (ms, average)',
          TABLE_OPERATIONS.map((operation) =>
            table.metric('SuccessfulRequestLatency', {
              dimensionsMap: { TableName: table.tableName, Operation: operation },
              statistic: Stats.AVERAGE,
              period: GRAPH_PERIOD,
              label: operation,
            }),
          ),
        ),
      ],
      [heading('Functions')],
      [
        graph(
          'Errors / min',
          perFunction((f) => f.metricErrors(perMinute)),
        ),
        graph(
          'Throttles / min',
          perFunction((f) => f.metricThrottles(perMinute)),
        ),
        graph(
          'Duration p99 (ms)',
          perFunction((f) => f.metricDuration({ statistic: Stats.p(99), period: GRAPH_PERIOD })),
        ),
      ],
      [
        graph(
          'Concurrent executions (max)',
          perFunction((f) => f.metric('ConcurrentExecutions', { statistic: Stats.MAXIMUM, period: GRAPH_PERIOD })),
        ),
        new LogQueryWidget({
          title: 'Latest function errors (all functions)',
          logGroupNames: functions.map(([, f]) => f.logGroup.logGroupName),
          queryLines: [
            'fields @timestamp, @log, message, route, error, requestId, @message',
            'filter level = "error" or @message like /Task timed out|Runtime\\.|ERROR/',
            'sort @timestamp desc',
            'limit 50',
          ],
          width: 16,
          height: 6,
        }),
      ],
    ];
  }
}

/** One of the functions' EMF metrics (deliver, dispatch-notifications): dimension Server only. */
function deliveryMetric(
  server: MonitoredCibaServer,
  metricName: MetricName,
  statistic: string,
  period: Duration,
  label?: string,
): Metric {
  return new Metric({
    namespace: DELIVERY_NAMESPACE,
    metricName,
    statistic,
    period,
    dimensionsMap: { Server: server.serverName },
    ...(label ? { label } : {}),
  });
}

/**
 * Sum of a per-operation DynamoDB metric (SystemErrors and ThrottledRequests have an Operation dimension and
 * no table-wide total). Each operation is FILLed with 0: plain `a + b` yields nothing for a minute in which
 * only one operation had a data point, which is exactly when one is throttled.
 */
function sumOverOperations(table: Table, metricName: string, label: string, period: Duration): MathExpression {
  const usingMetrics: Record<string, IMetric> = {};
  // Ids are unique per graph, which shows both sums: `throttledRequestsGetItem`, `systemErrorsGetItem`, …
  const idPrefix = metricName[0]!.toLowerCase() + metricName.slice(1);
  for (const operation of TABLE_OPERATIONS) {
    usingMetrics[idPrefix + operation] = table.metric(metricName, {
      dimensionsMap: { TableName: table.tableName, Operation: operation },
      statistic: Stats.SUM,
      period,
    });
  }
  return new MathExpression({
    expression: Object.keys(usingMetrics)
      .map((id) => `FILL(${id}, 0)`)
      .join(' + '),
    usingMetrics,
    label,
    period,
  });
}
