// Template plumbing shared by the infrastructure tests (test/infra/*.test.ts): synthesize the real CibaStack with
// esbuild skipped, and read functions, roles and policy statements out of the CloudFormation template. What each
// `access` of functions/routes.ts entitles a function to is written out again here (expectedActions): the tests are
// the specification of least privilege, the construct is the implementation.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import type { NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { ROUTES, TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../../functions/routes.ts';
import type { Access } from '../../functions/routes.ts';
import type { CibaServerProps } from '../../infra/ciba-construct.ts';
import { CibaStack } from '../../infra/ciba-stack.ts';

export const ROOT = path.join(import.meta.dirname, '..', '..');
export const HANDLERS_DIR = path.join(ROOT, 'functions', 'handlers');
export const FUNCTION_NAMES = [
  ...new Set([
    ...ROUTES.map((r) => r.name),
    ...WORKFLOW_FUNCTIONS.map((w) => w.name),
    ...TOPIC_SUBSCRIBERS.map((t) => t.name),
  ]),
];
export const missingHandlers = FUNCTION_NAMES.filter((n) => !existsSync(path.join(HANDLERS_DIR, `${n}.ts`)));
export const allHandlersExist = missingHandlers.length === 0;

// ---- Template plumbing ----------------------------------------------------------------------------------

// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation JSON, which every test narrows as it reads it.
export type Json = any;
export type Statement = { Effect: string; Action: string[]; Resource: Json[]; Principal?: Json; Condition?: Json };

export const asArray = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
export const normalize = (s: Json): Statement => ({ ...s, Action: asArray(s.Action), Resource: asArray(s.Resource) });

/** cdk.json feature flags, so the test synthesizes what `cdk synth` does (the CLI passes them; `new App` doesn't). */
export function cdkJsonContext(): Record<string, unknown> {
  return (
    (JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> }).context ??
    {}
  );
}

/**
 * NodejsFunction insists that its entry file exists even when bundling is skipped. While functions/handlers/*.ts
 * are still being written, point the missing ones at throw-away stubs (a temporary project root) so the
 * infrastructure can be tested on its own. Once every handler exists this returns no overrides.
 */
export function stubMissingHandlers(dir: string): Record<string, Partial<NodejsFunctionProps>> {
  const overrides: Record<string, Partial<NodejsFunctionProps>> = {};
  if (allHandlersExist) return overrides;
  const lockFile = path.join(dir, 'package-lock.json');
  writeFileSync(lockFile, '{}');
  for (const name of missingHandlers) {
    const entry = path.join(dir, `${name}.ts`);
    writeFileSync(entry, 'export const handler = async () => ({ statusCode: 501 });\n');
    overrides[name] = { entry, projectRoot: dir, depsLockFilePath: lockFile };
  }
  return overrides;
}

export type Synth = { app: App; stack: CibaStack; template: Template; json: Json; outdir: string };
export const tmpDirs: string[] = [];

/** `context`: what `cdk synth -c key=value` would pass (e.g. the mtls* keys CibaStack reads). */
export function synth(
  server: CibaServerProps = {},
  stackName = 'CibaStack',
  context: Record<string, string> = {},
): Synth {
  const stubDir = mkdtempSync(path.join(tmpdir(), 'ciba-stubs-'));
  const outdir = mkdtempSync(path.join(tmpdir(), 'ciba-cdkout-'));
  tmpDirs.push(stubDir, outdir);
  const app = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...context } });
  const functionProps = { ...stubMissingHandlers(stubDir), ...server.functionProps };
  const stack = new CibaStack(app, stackName, { server: { ...server, functionProps } });
  const template = Template.fromStack(stack);
  return { app, stack, template, json: template.toJSON(), outdir };
}

export const resourcesOf = (json: Json, type: string): [string, Json][] =>
  Object.entries(json.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);

export const logicalId = (stack: Stack, construct: { node: { defaultChild?: unknown } }): string =>
  stack.getLogicalId(construct.node.defaultChild as CfnFunction);

/** Every statement of every identity policy attached to a role (inline or AWS::IAM::Policy). */
export function roleStatements(json: Json, roleId: string): Statement[] {
  const attached = resourcesOf(json, 'AWS::IAM::Policy')
    .filter(([, p]) => asArray(p.Properties.Roles).some((r: Json) => r.Ref === roleId))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as Json[]);
  const inline = asArray(json.Resources[roleId]?.Properties?.Policies).flatMap(
    (p: Json) => p.PolicyDocument.Statement as Json[],
  );
  return [...attached, ...inline].map(normalize);
}

export function functionInfo(
  s: Synth,
  name: string,
): { id: string; props: Json; roleId: string; statements: Statement[] } {
  const fn = s.stack.server.functions[name];
  assert.ok(fn, `function ${name} exists`);
  const id = logicalId(s.stack, fn);
  const props = s.json.Resources[id].Properties;
  const roleId: string = props.Role['Fn::GetAtt'][0];
  return { id, props, roleId, statements: roleStatements(s.json, roleId) };
}

export const sortJson = (values: Json[]): Json[] =>
  [...values].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
export const actionsOf = (statements: Statement[]): Set<string> => new Set(statements.flatMap((st) => st.Action));
export const resourcesFor = (statements: Statement[], action: string): Json[] =>
  statements.filter((st) => st.Action.includes(action)).flatMap((st) => st.Resource);

/**
 * What each `access` entitles a function to (besides writing its own log group). Push endpoint access is granted on
 * the configured platform applications, so only when `pushPlatforms` were given.
 */
export function expectedActions(
  access: Access,
  pushPlatforms = false,
  notify: { sms?: boolean; email?: boolean; webhook?: boolean } = {},
): string[] {
  const actions: string[] = [];
  if (access.table) actions.push('dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:BatchGetItem');
  if (access.table === 'readwrite') actions.push('dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem');
  if (access.startExecution) actions.push('states:StartExecution');
  if (access.sendTaskResult)
    actions.push('states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat');
  if (access.publishDevice || access.publishDelivery) actions.push('sns:Publish');
  if (access.sendDeadLetter) actions.push('sqs:SendMessage');
  if (access.keys === 'sign') actions.push('kms:Sign', 'kms:GetPublicKey');
  if (access.keys === 'verify') actions.push('kms:GetPublicKey');
  if (access.sealing === 'seal' || access.sealing === 'both') actions.push('kms:GenerateDataKey');
  if (access.sealing === 'open' || access.sealing === 'both') actions.push('kms:Decrypt');
  if (pushPlatforms && access.pushEndpoints === 'manage') actions.push('sns:CreatePlatformEndpoint');
  if (pushPlatforms && access.pushEndpoints) actions.push('sns:DeleteEndpoint');
  // Web Push VAPID key; the notification channels (docs/notifications.md) only as configured.
  if (access.vapid === 'sign') actions.push('kms:Sign', 'kms:GetPublicKey');
  if (access.vapid === 'public') actions.push('kms:GetPublicKey');
  if (access.notifyUsers && (pushPlatforms || notify.sms)) actions.push('sns:Publish');
  if (access.notifyUsers && notify.email) actions.push('ses:SendEmail');
  if (access.notifyUsers && notify.webhook) actions.push('secretsmanager:GetSecretValue');
  return [...new Set(actions)];
}
/** X-Ray trace submission: on every function's role while `tracing` is on (the default), on Resource "*". */
export const TRACE_WRITE = ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'];
/**
 * What every function's role allows besides its `access`, with the default props: writing its own log group and its
 * X-Ray traces (TRACE_WRITE; a stack synthesized with `tracing: false` has the two logs actions only).
 */
export const LOG_WRITE = ['logs:CreateLogStream', 'logs:PutLogEvents', ...TRACE_WRITE];

/**
 * The only statements allowed to use Resource "*", each because AWS offers no narrower resource:
 * - Step Functions logging to CloudWatch Logs goes through the vended-logs delivery APIs, which take no resource.
 * - X-Ray trace submission (state machine and function tracing) takes no resource.
 * - A KMS key policy's Resource "*" means "this key"; the account root is granted kms:* so that IAM policies
 *   (the functions' roles) decide who may use the key: AWS's default key policy.
 */
export const STAR_RESOURCE_ACTIONS = new Set([
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
  'xray:GetSamplingRules',
  'xray:GetSamplingTargets',
]);
export const isAccountRoot = (principal: Json): boolean => JSON.stringify(principal?.AWS ?? '').endsWith(':root"]]}');

/**
 * Every policy document in the template that grants the stack's own principals something (roles' policies, key and
 * resource policies), with where it came from. A managed policy attached to nothing grants the stack nothing: the
 * operator policy (CibaServer.operatorPolicy, for the people who run the admin CLI) is specified on its own, in
 * test/infra/operator-policy.test.ts.
 */
export function allPolicyDocuments(
  json: Json,
): { where: string; kind: 'identity' | 'key' | 'resource'; statements: Statement[] }[] {
  const docs: { where: string; kind: 'identity' | 'key' | 'resource'; statements: Statement[] }[] = [];
  const resources = Object.entries(json.Resources as Record<string, Json>);
  const attachedToNothing = (id: string, p: Json): boolean =>
    !p.Roles &&
    !p.Users &&
    !p.Groups &&
    !resources.some(([, r]) => JSON.stringify(r.Properties?.ManagedPolicyArns ?? []).includes(JSON.stringify(id)));
  for (const [id, r] of resources) {
    const p = r.Properties ?? {};
    if (r.Type === 'AWS::IAM::ManagedPolicy' && attachedToNothing(id, p)) continue;
    if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
      docs.push({ where: id, kind: 'identity', statements: p.PolicyDocument.Statement.map(normalize) });
    if (r.Type === 'AWS::IAM::Role')
      for (const inline of asArray(p.Policies) as Json[])
        docs.push({ where: id, kind: 'identity', statements: inline.PolicyDocument.Statement.map(normalize) });
    if (r.Type === 'AWS::KMS::Key')
      docs.push({ where: id, kind: 'key', statements: p.KeyPolicy.Statement.map(normalize) });
    if (r.Type === 'AWS::SNS::TopicPolicy' || r.Type === 'AWS::SQS::QueuePolicy')
      docs.push({ where: id, kind: 'resource', statements: p.PolicyDocument.Statement.map(normalize) });
  }
  return docs;
}

/** Logical ids a resource depends on (Ref, Fn::GetAtt, Fn::Sub "${X}", DependsOn). */
export function dependenciesOf(resource: Json, ids: Set<string>): Set<string> {
  const deps = new Set<string>(asArray(resource.DependsOn));
  const walk = (v: Json): void => {
    if (Array.isArray(v)) {
      for (const item of v) walk(item);
      return;
    }
    if (v === null || typeof v !== 'object') return;
    if (typeof v.Ref === 'string' && ids.has(v.Ref)) deps.add(v.Ref);
    if (Array.isArray(v['Fn::GetAtt']) && ids.has(v['Fn::GetAtt'][0])) deps.add(v['Fn::GetAtt'][0]);
    const sub = v['Fn::Sub'];
    if (sub !== undefined)
      for (const m of String(Array.isArray(sub) ? sub[0] : sub).matchAll(/\$\{([^}.!]+)/g))
        if (ids.has(m[1]!)) deps.add(m[1]!);
    Object.values(v).forEach(walk);
  };
  walk(resource.Properties);
  return deps;
}

let defaultSynth: Synth | undefined;
/**
 * The default CibaStack, synthesized once per test file (each runs in its own process); the temporary folders of
 * every synth of the file are removed after its tests.
 */
export function defaultStack(): Synth {
  if (!defaultSynth) {
    if (!allHandlersExist) console.log(`# handlers not written yet, stubbed: ${missingHandlers.join(', ')}`);
    defaultSynth = synth();
  }
  return defaultSynth;
}
after(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});
