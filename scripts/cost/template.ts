// What the cost model reads from the deployable stack: the default CibaStack synthesized in this process (esbuild
// bundling skipped, as the infrastructure tests do; CDK's built-in template validation skipped too, it only slows the
// synth down) and its CloudFormation template read as JSON. Every figure that depends on how the stack is built comes
// from here: the API type, each function's memory, architecture, tracing and log format, log retention, the state
// machines' tracing and log level, KMS key specs and which key signs what (or that the signing keys are sealed in the
// table: KEYS_SOURCE=sealed), the table's indexes, the topics' subscription protocols, alarms and dashboards.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SETTINGS } from '../../functions/settings.ts';

// biome-ignore lint/suspicious/noExplicitAny: synthesized CloudFormation JSON, narrowed as it is read.
export type Json = any;

export type FunctionFacts = {
  name: string;
  logicalId: string;
  memoryMb: number;
  architecture: 'arm64' | 'x86_64';
  /** Lambda X-Ray tracing mode (PassThrough when the template sets none). */
  tracing: 'Active' | 'PassThrough';
  /** Lambda's log format: Text (START/END/REPORT lines) or JSON (platform records as JSON). */
  logFormat: 'Text' | 'JSON';
  /** Retention of the function's log group, days; null = never expire. */
  logRetentionDays: number | null;
  /** The environment variables the template sets to plain strings (not references to resources). */
  environment: Record<string, string>;
};

export type KeyRole = 'rsa-signing' | 'ec-signing' | 'vapid' | 'sealing';
export type KmsKeyFacts = { logicalId: string; keySpec: string; rotation: boolean; roles: KeyRole[] };

export type StateMachineFacts = {
  logicalId: string;
  type: 'STANDARD' | 'EXPRESS';
  tracing: boolean;
  /** CloudWatch Logs level (OFF without a logging configuration). */
  logLevel: 'OFF' | 'ERROR' | 'FATAL' | 'ALL';
  includeExecutionData: boolean;
  logRetentionDays: number | null;
};

export type TemplateFacts = {
  stackName: string;
  api: { type: 'HTTP' | 'REST'; accessLogFormat?: string; accessLogRetentionDays: number | null };
  functions: Record<string, FunctionFacts>;
  stateMachines: StateMachineFacts[];
  kmsKeys: KmsKeyFacts[];
  /**
   * Where the token signing keys live, from the functions' KEYS_SOURCE (construct prop `signingKeys`): `kms` (one KMS
   * Sign per token) or `sealed` (signed in memory; one KMS Decrypt per signing function cold start). Absent: `kms`.
   */
  signingKeys?: 'kms' | 'sealed';
  table: {
    billingMode: string;
    indexes: { name: string; keys: string[]; projection: 'ALL' | 'KEYS_ONLY' | 'INCLUDE'; include: string[] }[];
    keys: string[];
  };
  /** Topic logical id → the protocols of its subscriptions (e.g. lambda). */
  subscriptions: Record<string, string[]>;
  /** Function name → the protocol of the topic subscription that invokes it (lambda). */
  subscriptionsByFunction: Record<string, string>;
  alarms: { count: number; metrics: number };
  dashboards: number;
  queues: number;
};

const refOf = (v: Json): string | undefined =>
  typeof v?.Ref === 'string' ? v.Ref : Array.isArray(v?.['Fn::GetAtt']) ? v['Fn::GetAtt'][0] : undefined;

const resources = (json: Json, type: string): [string, Json][] =>
  Object.entries(json.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);

function retentionOf(json: Json, logGroupRef: string | undefined): number | null {
  if (!logGroupRef) return null;
  const group = json.Resources[logGroupRef];
  if (group?.Type !== 'AWS::Logs::LogGroup') return null;
  return typeof group.Properties?.RetentionInDays === 'number' ? group.Properties.RetentionInDays : null;
}

/**
 * The facts of a synthesized template. `functionIds` maps each function name (functions/routes.ts) to its logical id
 * (the construct knows it; a template alone does not).
 */
export function templateFacts(json: Json, functionIds: Record<string, string>, stackName = 'CibaStack'): TemplateFacts {
  const problems: string[] = [];
  const httpApis = resources(json, 'AWS::ApiGatewayV2::Api').filter(([, r]) => r.Properties.ProtocolType === 'HTTP');
  const restApis = resources(json, 'AWS::ApiGateway::RestApi');
  if (httpApis.length + restApis.length !== 1)
    problems.push(`expected one API, found ${httpApis.length} HTTP and ${restApis.length} REST APIs`);
  const stage =
    resources(json, 'AWS::ApiGatewayV2::Stage')[0]?.[1] ?? resources(json, 'AWS::ApiGateway::Stage')[0]?.[1];
  const accessLogs = stage?.Properties?.AccessLogSettings ?? stage?.Properties?.AccessLogSetting;
  const api: TemplateFacts['api'] = {
    type: httpApis.length > 0 ? 'HTTP' : 'REST',
    ...(typeof accessLogs?.Format === 'string' ? { accessLogFormat: accessLogs.Format } : {}),
    accessLogRetentionDays: retentionOf(json, refOf(accessLogs?.DestinationArn)),
  };

  // Which KMS key each environment variable names, from the functions' environments.
  const keyEnv: Record<string, KeyRole> = {
    [SETTINGS.kmsRsaKeyId.env]: 'rsa-signing',
    [SETTINGS.kmsEcKeyId.env]: 'ec-signing',
    [SETTINGS.vapidKmsKeyId.env]: 'vapid',
    [SETTINGS.kmsSealKeyId.env]: 'sealing',
  };
  const roles = new Map<string, Set<KeyRole>>();
  const functions: Record<string, FunctionFacts> = {};
  for (const [name, logicalId] of Object.entries(functionIds)) {
    const r = json.Resources[logicalId];
    if (r?.Type !== 'AWS::Lambda::Function') {
      problems.push(`function ${name}: ${logicalId} is not a Lambda function`);
      continue;
    }
    const p = r.Properties;
    const arch = (p.Architectures ?? ['x86_64'])[0];
    if (arch !== 'arm64' && arch !== 'x86_64') problems.push(`function ${name}: unknown architecture ${arch}`);
    functions[name] = {
      name,
      logicalId,
      memoryMb: p.MemorySize ?? 128,
      architecture: arch,
      tracing: p.TracingConfig?.Mode === 'Active' ? 'Active' : 'PassThrough',
      logFormat: p.LoggingConfig?.LogFormat === 'JSON' ? 'JSON' : 'Text',
      logRetentionDays: retentionOf(json, refOf(p.LoggingConfig?.LogGroup)),
      environment: Object.fromEntries(
        Object.entries((p.Environment?.Variables ?? {}) as Record<string, Json>).filter(
          (e): e is [string, string] => typeof e[1] === 'string',
        ),
      ),
    };
    for (const [variable, value] of Object.entries((p.Environment?.Variables ?? {}) as Record<string, Json>)) {
      const role = keyEnv[variable];
      const key = refOf(value);
      if (role && key) roles.set(key, (roles.get(key) ?? new Set()).add(role));
    }
  }
  const sources = new Set(
    Object.values(functions).map((f) => f.environment[SETTINGS.keysSource.env] ?? SETTINGS.keysSource.default),
  );
  if (sources.size > 1) problems.push(`functions disagree on ${SETTINGS.keysSource.env}: ${[...sources].join(', ')}`);
  const source = [...sources][0] ?? SETTINGS.keysSource.default;
  if (source !== 'kms' && source !== 'sealed') problems.push(`${SETTINGS.keysSource.env}=${source} is not priced`);
  const kmsKeys = resources(json, 'AWS::KMS::Key').map(([logicalId, r]) => ({
    logicalId,
    keySpec: r.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT',
    rotation: r.Properties.EnableKeyRotation === true,
    roles: [...(roles.get(logicalId) ?? [])].sort(),
  }));

  const stateMachines = resources(json, 'AWS::StepFunctions::StateMachine').map(([logicalId, r]) => {
    const logging = r.Properties.LoggingConfiguration;
    return {
      logicalId,
      type: (r.Properties.StateMachineType ?? 'STANDARD') as StateMachineFacts['type'],
      tracing: r.Properties.TracingConfiguration?.Enabled === true,
      logLevel: (logging?.Level ?? 'OFF') as StateMachineFacts['logLevel'],
      includeExecutionData: logging?.IncludeExecutionData === true,
      logRetentionDays: retentionOf(json, refOf(logging?.Destinations?.[0]?.CloudWatchLogsLogGroup?.LogGroupArn)),
    };
  });

  const tables = resources(json, 'AWS::DynamoDB::Table');
  if (tables.length !== 1) problems.push(`expected one DynamoDB table, found ${tables.length}`);
  const tp = tables[0]?.[1]?.Properties ?? {};
  const table: TemplateFacts['table'] = {
    billingMode: tp.BillingMode ?? 'PROVISIONED',
    keys: (tp.KeySchema ?? []).map((k: Json) => k.AttributeName),
    indexes: (tp.GlobalSecondaryIndexes ?? []).map((g: Json) => ({
      name: g.IndexName,
      keys: g.KeySchema.map((k: Json) => k.AttributeName),
      projection: g.Projection?.ProjectionType ?? 'ALL',
      include: g.Projection?.NonKeyAttributes ?? [],
    })),
  };

  const subscriptions: Record<string, string[]> = {};
  const subscriptionsByFunction: Record<string, string> = {};
  const nameById = new Map(Object.entries(functionIds).map(([name, id]) => [id, name]));
  for (const [, r] of resources(json, 'AWS::SNS::Subscription')) {
    const topic = refOf(r.Properties.TopicArn) ?? '?';
    subscriptions[topic] = [...(subscriptions[topic] ?? []), r.Properties.Protocol];
    const fn = nameById.get(refOf(r.Properties.Endpoint) ?? '');
    if (fn) subscriptionsByFunction[fn] = r.Properties.Protocol;
  }

  const alarms = resources(json, 'AWS::CloudWatch::Alarm');
  const alarmMetrics = alarms.reduce(
    (n, [, r]) =>
      n + (Array.isArray(r.Properties.Metrics) ? r.Properties.Metrics.filter((m: Json) => m.MetricStat).length : 1),
    0,
  );

  if (problems.length > 0) throw new Error(`template: ${problems.join('; ')}`);
  return {
    stackName,
    api,
    functions,
    stateMachines,
    kmsKeys,
    signingKeys: source as 'kms' | 'sealed',
    table,
    subscriptions,
    subscriptionsByFunction,
    alarms: { count: alarms.length, metrics: alarmMetrics },
    dashboards: resources(json, 'AWS::CloudWatch::Dashboard').length,
    queues: resources(json, 'AWS::SQS::Queue').length,
  };
}

/**
 * Synthesizes the default CibaStack (no bundling) and returns its template and the function logical ids. `server`:
 * construct props to synthesize with instead of the defaults (`npm run cost -- --signing sealed`).
 */
export async function synthDefaultStack(
  stackName = 'CibaStack',
  server: { signingKeys?: 'kms' | 'sealed' } = {},
): Promise<{ json: Json; functionIds: Record<string, string>; facts: TemplateFacts }> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const context = (JSON.parse(readFileSync(join(root, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> })
    .context;
  const [{ App }, { CibaStack }] = await Promise.all([import('aws-cdk-lib'), import('../../infra/ciba-stack.ts')]);
  const outdir = mkdtempSync(join(tmpdir(), 'ciba-cost-cdk-'));
  const validation = process.env.CDK_VALIDATION;
  process.env.CDK_VALIDATION = 'false';
  try {
    const app = new App({ outdir, context: { ...context, 'aws:cdk:bundling-stacks': [] } });
    const stack = new CibaStack(app, stackName, { server });
    const json = app.synth().getStackByName(stack.stackName).template as Json;
    const functionIds = Object.fromEntries(
      Object.entries(stack.server.functions).map(([name, fn]) => [
        name,
        stack.getLogicalId(fn.node.defaultChild as import('aws-cdk-lib').CfnElement),
      ]),
    );
    return { json, functionIds, facts: templateFacts(json, functionIds, stackName) };
  } finally {
    if (validation === undefined) delete process.env.CDK_VALIDATION;
    else process.env.CDK_VALIDATION = validation;
    rmSync(outdir, { recursive: true, force: true });
  }
}
