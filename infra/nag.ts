// cdk-nag for CibaServer: the rule packs the project checks itself against (test/infra/stack-nag.test.ts, and
// `cdk synth -c nag=true`), and every finding that does not apply, acknowledged with its reason in this one place.
// CibaServer acknowledges them itself (acknowledgeNagFindings at the end of its constructor), so whoever runs cdk-nag
// on their own app with the construct sees the same reasons.
//
// cdk-nag 3 is a CDK policy-validation plugin (not an aspect): a pack is registered with
// `Validations.of(app).addPlugins(...)` or run on a tree with `pack.validateScope(scope)`, and a finding is
// acknowledged with `Validations.of(construct).acknowledge({ id, reason })` on the resource or an ancestor. An id
// names one finding exactly: a rule (`AwsSolutions-APIG4`) or one finding of a rule with several
// (`AwsSolutions-IAM5[Resource::*]`); there is no prefix match, so each wildcard resource is acknowledged by name.
//
// What is fixed rather than acknowledged lives where the resources are made (infra/ciba-construct.ts): X-Ray active
// tracing on every function, TLS-only topics and queue, log retention, API access logs and throttling.
import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import type { IRole } from 'aws-cdk-lib/aws-iam';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import { type CfnStateMachine, StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { NagPack, NagPackProps } from 'cdk-nag';
// How cdk-nag itself names a wildcard resource in an IAM5 finding id (`Resource::<flattened ARN>`), so that an ARN
// given as a token is acknowledged under the id the rule reports.
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';
import type { IConstruct } from 'constructs';
import { ROUTES, TOPIC_SUBSCRIBERS } from '../functions/routes.ts';
import type { TopicSubscriber } from '../functions/routes.ts';

/**
 * The packs CibaServer is checked against: AWS Solutions and Serverless. `scope` is the app (or stage) they are
 * registered on with `Validations.of(app).addPlugins(...cibaNagPacks(app))`; omit it to call `validateScope` directly.
 */
export function cibaNagPacks(scope?: IConstruct, props?: NagPackProps): NagPack[] {
  return [new AwsSolutionsChecks(scope, props), new ServerlessChecks(scope, props)];
}

/** What CibaServer knows about its own permissions that its public surface does not show. */
export interface NagFacts {
  /** Functions allowed sns:Publish on Resource "*" (SMS to phone numbers, `settings.notifySms`). */
  readonly smsPublishers: readonly string[];
  /** `…:endpoint/<PLATFORM>/<application>/*` of each configured push platform application (`pushPlatforms`). */
  readonly pushEndpointArns: readonly string[];
  /** `…:execution:<state machine>:*` of each workflow whose deliveries the operator policy may redrive. */
  readonly redrivableExecutionArns: readonly string[];
}

/** The parts of a CibaServer the acknowledgments are attached to (a CibaServer satisfies this). */
export interface NagCheckedServer extends IConstruct {
  readonly api: IConstruct;
  readonly deliveryDeadLetterQueue: IConstruct;
  readonly functions: Readonly<Record<string, LambdaFunction>>;
  /** The admin CLI's managed policy (attached to nothing). */
  readonly operatorPolicy: IConstruct;
}

// ---- Reasons ----------------------------------------------------------------------------------------------------

const REASONS = {
  apiAuthorizer:
    'The OAuth server is the authorization: every endpoint authenticates its caller itself as its specification ' +
    'requires (client authentication at /bc-authorize, /token, /revoke and /introspect; access tokens at /userinfo; ' +
    'initial and registration access tokens at /register; signed single-use device assertions on /device/*), and ' +
    'discovery, the JWKS and the device web app are public by definition. An API Gateway authorizer can do none of this.',
  deadLetterQueue:
    'This queue is the dead-letter queue: the deliver function sends the ping/push notifications no client accepted here ' +
    '(docs/operations.md, "Dead letters"). A dead-letter queue of a dead-letter queue would only move them; the ' +
    'DeliveryDeadLetterQueue-Messages alarm is what brings an operator.',
  stateMachineLogs:
    'Errors only and never execution data, on purpose: inputs and outputs carry binding messages and client ids, and ' +
    'every authentication request is one execution, so logging ALL events would pay CloudWatch Logs ingestion for ' +
    'every state of every request. Step Functions keeps each execution’s full history for the console, and failed ' +
    'executions raise the ExecutionsFailed alarm.',
  stateMachineWildcard:
    'Only actions that take no resource: CloudWatch Logs vended-log delivery (logs:CreateLogDelivery, ' +
    'logs:DescribeLogGroups, …) for the state machine’s log group, and X-Ray trace submission. Everything else the ' +
    'role may do names its resources (test/infra/support.ts STAR_RESOURCE_ACTIONS is the allowed list).',
  xray:
    'X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions, so ' +
    'Resource "*" is the only possible grant (CDK adds exactly these two for Tracing.ACTIVE; tracing: false removes them).',
  sms:
    'SMS (settings.notifySms on): SNS authorizes a Publish to a phone number on Resource "*" only (a phone number is ' +
    'not a resource), so sns:Publish is on "*" exactly when the operator turned SMS on.',
  pushEndpoints: (endpoints: string) =>
    `SNS mobile push endpoints of one configured platform application (${endpoints}): SNS makes one endpoint per ` +
    'device at enrolment, under an ARN not known in advance; the wildcard is bounded to this application’s endpoints.',
  redrivableExecutions: (executions: string) =>
    'The admin CLI’s dead-letters redrive describes and redrives the execution of a dead-lettered delivery ' +
    `(${executions}): an execution is named by its request id when the request is made, so its ARN is not known in ` +
    'advance; the wildcard is bounded to the executions of this state machine, and the policy is attached to nothing ' +
    '(operators attach it to their own role).',
  synchronous: (caller: string) =>
    `Invoked synchronously by ${caller}: the caller receives the error; a dead-letter queue only applies to ` +
    'asynchronous invocations.',
  tracingOff: 'X-Ray tracing turned off by the operator (CibaServer tracing: false, or this function’s functionProps).',
} as const;

/** Why an SNS subscriber's failed events go nowhere (Lambda dead-letter queue, on-failure destination, SNS redrive). */
const SUBSCRIBER_REASONS: Record<TopicSubscriber['topic'], string> = {
  delivery:
    'The workflow, not Lambda or SNS, retries ping/push deliveries: an attempt that fails or never arrives times out ' +
    'and the workflow retries it with a new task token, and a delivery no attempt could make ends in the workflow’s ' +
    'dead-letter queue (with its alarm). Failed events kept here would only be duplicates of attempts already retried.',
  device:
    'A device notice is worth sending only while its request is pending (events older than an hour are dropped): ' +
    'Lambda retries a failed invocation (the notification ledger keeps a retry from sending twice), and what still ' +
    'fails raises the function’s Errors alarm, DeviceTopic-NotificationsFailed or Notifications-UsersUnreachable. ' +
    'There is nothing to redrive later.',
};

// ---- Acknowledgments ------------------------------------------------------------------------------------------

const acknowledge = (scope: IConstruct, id: string, reason: string): void =>
  Validations.of(scope).acknowledge({ id, reason });

/** A resource as cdk-nag names it in an IAM5 finding id (`AwsSolutions-IAM5[Resource::<this>]`), tokens resolved. */
export const nagResourceName = (scope: IConstruct, resource: string): string =>
  flattenCfnReference(Stack.of(scope).resolve(resource));

/** Whether the function's CloudFormation resource has X-Ray active tracing. */
function activeTracing(fn: LambdaFunction): boolean {
  const cfn = fn.node.defaultChild;
  if (!CfnResource.isCfnResource(cfn)) return false;
  const config = Stack.of(fn).resolve((cfn as CfnResource & { tracingConfig?: unknown }).tracingConfig) as
    | { mode?: string }
    | undefined;
  return config?.mode === 'Active';
}

/**
 * Acknowledges, on the resources they concern, the cdk-nag findings that do not apply to a CibaServer, each with its
 * reason. Every acknowledgment names one finding (wildcards by their resource), and only where the finding can occur,
 * so a new finding anywhere still fails the check.
 */
export function acknowledgeNagFindings(server: NagCheckedServer, facts: NagFacts): void {
  acknowledge(server.api, 'AwsSolutions-APIG4', REASONS.apiAuthorizer);

  acknowledge(server.deliveryDeadLetterQueue, 'AwsSolutions-SQS3', REASONS.deadLetterQueue);
  acknowledge(server.deliveryDeadLetterQueue, 'Serverless-SQSRedrivePolicy', REASONS.deadLetterQueue);

  // Every state machine under the server (found, not named: the workflows are defined in statemachines/).
  for (const sm of server.node.findAll().filter((c): c is StateMachine => c instanceof StateMachine)) {
    acknowledge(sm, 'AwsSolutions-SF1', REASONS.stateMachineLogs);
    acknowledge(sm.role, 'AwsSolutions-IAM5[Resource::*]', REASONS.stateMachineWildcard);
    const cfn = sm.node.defaultChild as CfnStateMachine;
    const tracing = Stack.of(sm).resolve(cfn.tracingConfiguration) as { enabled?: boolean } | undefined;
    if (!tracing?.enabled) {
      acknowledge(sm, 'AwsSolutions-SF2', REASONS.tracingOff);
      acknowledge(sm, 'Serverless-StepFunctionStateMachineXray', REASONS.tracingOff);
    }
  }

  // Push endpoints: acknowledged on the server for whichever role holds them (enrol, channel, remove, dispatch).
  for (const arn of facts.pushEndpointArns) {
    const endpoints = nagResourceName(server, arn);
    acknowledge(server, `AwsSolutions-IAM5[Resource::${endpoints}]`, REASONS.pushEndpoints(endpoints));
  }

  for (const arn of facts.redrivableExecutionArns) {
    const executions = nagResourceName(server, arn);
    acknowledge(
      server.operatorPolicy,
      `AwsSolutions-IAM5[Resource::${executions}]`,
      REASONS.redrivableExecutions(executions),
    );
  }

  const routeFunctions = new Set(ROUTES.map((r) => r.name));
  for (const [name, fn] of Object.entries(server.functions)) {
    const traced = activeTracing(fn);
    if (!traced) acknowledge(fn, 'Serverless-LambdaTracing', REASONS.tracingOff);
    const wildcards = [...(traced ? [REASONS.xray] : []), ...(facts.smsPublishers.includes(name) ? [REASONS.sms] : [])];
    if (wildcards.length > 0) acknowledge(fn.role as IRole, 'AwsSolutions-IAM5[Resource::*]', wildcards.join(' '));

    const subscriber = TOPIC_SUBSCRIBERS.find((t) => t.name === name);
    if (subscriber) {
      const reason = SUBSCRIBER_REASONS[subscriber.topic];
      acknowledge(fn, 'Serverless-LambdaDLQ', reason);
      acknowledge(fn, 'Serverless-LambdaAsyncFailureDestination', reason);
      acknowledge(fn, 'Serverless-SNSRedrivePolicy', reason);
    } else {
      const caller = routeFunctions.has(name)
        ? 'API Gateway (an HTTP route)'
        : 'Step Functions (a workflow task, retried or caught by the workflow)';
      acknowledge(fn, 'Serverless-LambdaDLQ', REASONS.synchronous(caller));
    }
  }
}
