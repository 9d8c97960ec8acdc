// CibaServer: the whole CIBA authorization server as one reusable L3 construct. Everything it builds comes from
// the project's single sources of truth (docs/architecture.md): the route table (functions/routes.ts) gives the
// HTTP routes, the Lambda functions and each function's permissions; infra/table.ts gives the table;
// statemachines/*.asl.json give the workflows. Nothing here restates what those files already say.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ArnFormat, Duration, Fn, Names, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  ApiMapping,
  DomainName,
  EndpointType,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
  PayloadFormatVersion,
  SecurityPolicy,
} from 'aws-cdk-lib/aws-apigatewayv2';
import type { ThrottleSettings } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ICertificate } from 'aws-cdk-lib/aws-certificatemanager';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Alias, Key, KeySpec, KeyUsage } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { LambdaSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ROUTES, TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../functions/routes.ts';
import type { Access, HttpRoute, TopicSubscriber } from '../functions/routes.ts';
import { TABLE } from './table.ts';
import { pascal, WORKFLOWS, workflowSubstitutions, type Workflow } from '../statemachines/workflows.ts';
import { secondsOf, settingsEnvironment, type CibaSettings, type RateLimit } from './settings-props.ts';
import { VAPID_SUBJECT } from '../functions/core/user-notification.ts';
import { DEVICE_APP_FUNCTION } from '../device-app/bundle.ts';
import { deviceAppInjectFile } from '../device-app/build.ts';
import { LAMBDA_NODE_OPTIONS, lambdaBundling } from './bundling.ts';

export type { CibaSettings, RateLimit };

export { pascal, WORKFLOWS };
import { CibaMonitoring } from './monitoring.ts';
import type { CibaMonitoringOptions } from './monitoring.ts';
import { acknowledgeNagFindings } from './nag.ts';

const REPO_ROOT = path.join(import.meta.dirname, '..');
const HANDLERS_DIR = path.join(REPO_ROOT, 'functions', 'handlers');

/** Name of a function in functions/routes.ts (`ROUTES`, `WORKFLOW_FUNCTIONS` or `TOPIC_SUBSCRIBERS`), e.g. `token`. */
export type CibaFunctionName = string;

export interface CibaServerProps {
  /**
   * Issuer identifier (OIDC `iss`, base of every endpoint URL in discovery). Override it when the API is served
   * behind a custom domain of your own (without client certificates; the mutual-TLS alias is `mtls`).
   * @default the HTTP API's execute-api endpoint, e.g. `https://abc123.execute-api.eu-west-1.amazonaws.com`
   */
  readonly issuer?: string;
  /**
   * Mutual TLS (RFC 8705): a regional API Gateway custom domain requiring TLS client certificates, mapped to the
   * same API and `$default` stage. It is published as the RFC 8705 §5 `mtls_endpoint_aliases` (env
   * CIBA_MTLS_BASE_URL on every function), which also turns on the mTLS client authentication methods
   * (`tls_client_auth`, `self_signed_tls_client_auth`) and certificate-bound access tokens in discovery.
   *
   * - The issuer stays where it is (by default the execute-api endpoint, which stays enabled): clients without
   *   certificates keep using it; the mTLS domain is only the alias.
   * - API Gateway terminates TLS, validates the client certificate chain against the truststore and forwards the
   *   validated certificate to Lambda in `requestContext.authentication.clientCert` (PEM, subject DN, SANs, validity);
   *   the functions authenticate the client and bind tokens (`cnf.x5t#S256`) from it. A certificate the truststore
   *   does not accept fails the TLS handshake (403), before any function runs.
   * - The truststore decides which CAs are accepted: for `tls_client_auth` the issuing CAs' certificates, for
   *   `self_signed_tls_client_auth` each client's self-signed certificate itself. Updating it means uploading a new
   *   object (version) and redeploying with the new `truststoreVersion`.
   * - The principal deploying the stack (or the CloudFormation role) needs `s3:GetObject` / `s3:GetObjectVersion` on
   *   the truststore object: API Gateway reads it with the caller's credentials at create/update time.
   * - DNS is the operator's job: a CNAME (or a Route 53 alias) from `domainName` to the domain's regional domain name
   *   (`mtlsDomain.regionalDomainName`; CibaStack outputs it as `MtlsDomainTarget`).
   * - A certificate not issued by ACM (imported or from a private CA) additionally needs an ownership verification
   *   certificate, which this prop does not configure.
   * @default no mTLS endpoint: the mTLS authentication methods are not advertised
   */
  readonly mtls?: {
    /** e.g. `mtls.auth.example.com`: the RFC 8705 §5 `mtls_endpoint_aliases` host. */
    readonly domainName: string;
    /** ACM certificate for `domainName`, in the stack's region. */
    readonly certificate: ICertificate;
    /** `s3://bucket/key` of the PEM truststore (CA certificates; for self_signed_tls_client_auth also each client's certificate). */
    readonly truststoreUri: string;
    /** S3 object version of the truststore (recommended: a versioned bucket, so an update is an explicit redeploy). @default the latest version */
    readonly truststoreVersion?: string;
  };
  /**
   * What happens to the stateful resources (table, signing and sealing keys, log groups, dead-letter queue) when
   * they leave the stack.
   * Use DESTROY only for throw-away stacks: losing the keys invalidates every token ever issued.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /** Retention of every log group (functions, state machine, API access logs). @default one month */
  readonly logRetention?: RetentionDays;
  /** Lambda memory in MB; CPU scales with it, so it also shortens cold starts. @default 512 */
  readonly memorySize?: number;
  /** Lambda architecture (arm64 is ~20 % cheaper per GB-s). @default Architecture.ARM_64 */
  readonly architecture?: Architecture;
  /**
   * X-Ray active tracing of every function (`Tracing.ACTIVE`): Lambda records a trace of each sampled invocation
   * (by default the first request each second and 5 % of the rest), with its initialization, duration and errors, joined
   * to the state machine's trace for workflow tasks. Each role then also gets `xray:PutTraceSegments` and
   * `xray:PutTelemetryRecords` (on Resource "*": X-Ray has no resource-level permissions for them). X-Ray bills the
   * traces recorded and retrieved (docs/operations.md, "Compliance checks and tracing"). `false` leaves the functions
   * untraced (a function's own `functionProps.tracing` still wins) and the state machines too.
   * @default true
   */
  readonly tracing?: boolean;
  /**
   * Server settings by name, e.g. `{ pollInterval: Duration.seconds(3), rateLimitPerUser: { count: 30, window:
   * Duration.minutes(5) } }`: every operator setting of docs/configuration.md (functions/settings.ts is the one
   * definition). Validated at synth with the functions' own rules. @default the functions' defaults
   */
  readonly settings?: CibaSettings;
  /**
   * Stage-wide API throttling. It protects the account-wide Lambda concurrency and the Step Functions
   * StartExecution bucket (300/s refill in the large regions, 150/s elsewhere) from one noisy client.
   * @default { rateLimit: 100, burstLimit: 200 }
   */
  readonly throttle?: ThrottleSettings;
  /**
   * Per-function overrides merged over the defaults (`bundling` and `environment` are merged key by key),
   * keyed by function name, e.g. `{ token: { memorySize: 1024 } }`. Unknown names are rejected.
   */
  readonly functionProps?: Partial<Record<CibaFunctionName, Partial<NodejsFunctionProps>>>;
  /**
   * Alarms (always) and the `<stack>-ciba` dashboard (infra/monitoring.ts). Give `alarmTopic` to send the
   * alarms to an existing topic; `dashboard: false` also leaves the stage's per-route metrics off.
   * @default a new alarm topic and the dashboard
   */
  readonly monitoring?: CibaMonitoringOptions;
  /**
   * SNS mobile push platform applications (ARNs, made outside this stack with the FCM / APNs credentials), one per
   * platform a native device app may register an `sns` channel for (docs/device-api.md, "Channels"). The enrolment
   * and channel functions create endpoints in them (CIBA_SNS_PLATFORM_*_ARN) and may delete those endpoints.
   * @default none: `sns` channels are refused with 400 invalid_request
   */
  readonly pushPlatforms?: {
    readonly fcm?: string;
    readonly apns?: string;
    readonly apnsSandbox?: string;
  };
  /**
   * The operator hook's signing secret (docs/notifications.md): the complete ARN of a Secrets Manager secret whose
   * SecretString is `whsec_` + base64 (at least 24 bytes). Only the dispatch-notifications function may read it
   * (GetSecretValue on this ARN; a secret under a customer managed KMS key also needs kms:Decrypt, not granted here).
   * The construct creates no secret. Required with `settings.notifyWebhookUrl`.
   * @default no operator hook
   */
  readonly notifyWebhookSecretArn?: string;
  /**
   * Where the token signing keys (RSA 2048 for RS256/PS256, P-256 for ES256) live (docs/security.md, "Signing keys";
   * docs/operations.md, "Choosing the signing keys").
   *
   * - `'kms'`: two KMS asymmetric keys; the private keys never leave KMS (an HSM). Every token is one KMS Sign call
   *   (RSA_2048 $3, ECC $15 per million, us-east-1 list price), so a redemption (access token, then ID token) makes two
   *   sequential KMS round trips. GetPublicKey serves /jwks.
   * - `'sealed'`: the key pairs are made by the first function that signs, sealed with the stack's sealing key
   *   (envelope AES-256-GCM, KMS encryption context `purpose=ciba-signing-keys`) and kept in one table item beside
   *   their public JWKs. Each signing function instance unseals them once (one KMS Decrypt per cold start) and signs in
   *   memory: no KMS call or round trip per token. Only the signing functions (token, introspect, deliver) may unseal
   *   them; /jwks reads the public JWKs from the table. No KMS signing keys are created ($2 a month less). Until the
   *   first token is signed, /jwks lists no keys.
   *
   * Switching either way changes the keys and their `kid`s: tokens signed before the switch no longer verify.
   * @default 'kms'
   */
  readonly signingKeys?: 'kms' | 'sealed';
}

/**
 * One Lambda function with every route it serves and the union of their `access`; `topic` and `timeoutSeconds`
 * for an SNS subscriber (TOPIC_SUBSCRIBERS).
 */
type FunctionSpec = {
  name: string;
  access: Access;
  routes: Pick<HttpRoute, 'method' | 'path'>[];
  topic?: TopicSubscriber['topic'];
  timeoutSeconds?: number;
  retries?: TopicSubscriber['retries'];
};

/** Lambda timeout of every function that does not say otherwise (TOPIC_SUBSCRIBERS give their own), seconds. */
const DEFAULT_TIMEOUT_SECONDS = 10;

/**
 * The route table collapsed to one spec per function (userinfo serves GET and POST; discovery and jwks GET and HEAD),
 * then workflow steps and subscribers.
 */
export function functionSpecs(): FunctionSpec[] {
  const specs = new Map<string, FunctionSpec>();
  for (const route of ROUTES) {
    const spec = specs.get(route.name) ?? { name: route.name, access: {}, routes: [] };
    spec.access = mergeAccess(spec.access, route.access);
    spec.routes.push({ method: route.method, path: route.path });
    specs.set(route.name, spec);
  }
  for (const wf of WORKFLOW_FUNCTIONS) {
    const spec = specs.get(wf.name) ?? { name: wf.name, access: {}, routes: [] };
    spec.access = mergeAccess(spec.access, wf.access);
    specs.set(wf.name, spec);
  }
  for (const sub of TOPIC_SUBSCRIBERS) {
    if (specs.has(sub.name))
      throw new Error(`functions/routes.ts: topic subscriber ${sub.name} is also a route or workflow function`);
    specs.set(sub.name, {
      name: sub.name,
      access: mergeAccess({}, sub.access),
      routes: [],
      topic: sub.topic,
      timeoutSeconds: sub.timeoutSeconds,
      retries: sub.retries,
    });
  }
  return [...specs.values()];
}

// A function serving several routes needs what any of them needs.
function mergeAccess(a: Access, b: Access): Access {
  const table = a.table === 'readwrite' || b.table === 'readwrite' ? 'readwrite' : (a.table ?? b.table);
  const keys = a.keys === 'sign' || b.keys === 'sign' ? 'sign' : (a.keys ?? b.keys);
  const sealUses = new Set([a.sealing, b.sealing].flatMap((x) => (x === 'both' ? ['seal', 'open'] : x ? [x] : [])));
  const sealing = sealUses.size === 2 ? 'both' : ([...sealUses][0] as 'seal' | 'open' | undefined);
  return {
    ...(table ? { table } : {}),
    ...(keys ? { keys } : {}),
    ...(sealing ? { sealing } : {}),
    ...(a.startExecution || b.startExecution ? { startExecution: true } : {}),
    ...(a.sendTaskResult || b.sendTaskResult ? { sendTaskResult: true } : {}),
    ...(a.publishDevice || b.publishDevice ? { publishDevice: true } : {}),
    ...(a.publishDelivery || b.publishDelivery ? { publishDelivery: true } : {}),
    ...(a.sendDeadLetter || b.sendDeadLetter ? { sendDeadLetter: true } : {}),
    ...(a.vapid === 'sign' || b.vapid === 'sign'
      ? { vapid: 'sign' as const }
      : a.vapid || b.vapid
        ? { vapid: 'public' as const }
        : {}),
    ...(a.notifyUsers || b.notifyUsers ? { notifyUsers: true } : {}),
    ...(a.pushEndpoints === 'manage' || b.pushEndpoints === 'manage'
      ? { pushEndpoints: 'manage' as const }
      : a.pushEndpoints || b.pushEndpoints
        ? { pushEndpoints: 'delete' as const }
        : {}),
  };
}

/** Encryption context every use of the sealing key must carry (functions/adapters/sealer.ts); IAM enforces it. */
const SEALING_CONTEXT = { purpose: 'ciba-sealing' } as const;
/** The sealing key's encryption context for the sealed signing keys (sealer.ts SIGNING_KEYS_CONTEXT): signers only. */
export const SIGNING_KEYS_CONTEXT = { purpose: 'ciba-signing-keys' } as const;
/** Partition key of the sealed signing keys' one table item (functions/adapters/keys.ts SIGNING_KEYS_ITEM). */
export const SIGNING_KEYS_PARTITION = 'SIGNINGKEYS';

type AslState = { Resource?: string; Parameters?: { FunctionName?: string }; TimeoutSeconds?: number };

/**
 * A workflow's Deliver tasks: the waitForTaskToken tasks in its statemachines/*.asl.json that invoke a delivery-topic
 * publisher (enqueue-delivery).
 */
function deliveryTasks(workflow: Workflow): AslState[] {
  const states = Object.values(
    (JSON.parse(readFileSync(workflow.path, 'utf8')) as { States: Record<string, AslState> }).States,
  );
  const publishers = new Set(
    WORKFLOW_FUNCTIONS.filter((wf) => wf.access.publishDelivery).map((wf) => `\${${pascal(wf.name)}FunctionArn}`),
  );
  return states.filter(
    (st) =>
      st.Resource?.endsWith(':lambda:invoke.waitForTaskToken') && publishers.has(st.Parameters?.FunctionName ?? ''),
  );
}

/**
 * How long the workflow waits for a delivery callback: the TimeoutSeconds of the Deliver tasks (deliveryTasks). After
 * it that attempt is dead (the workflow retries with a new task token), so a subscriber event older than this is only
 * a duplicate POST.
 */
function deliveryCallbackTimeout(): Duration {
  const seconds = WORKFLOWS.flatMap(deliveryTasks).map((st) => st.TimeoutSeconds);
  if (seconds.length === 0 || seconds.some((t) => typeof t !== 'number')) {
    throw new Error('statemachines: a task waiting on a delivery callback needs a fixed TimeoutSeconds');
  }
  return Duration.seconds(Math.min(...(seconds as number[])));
}

const PUSH_PLATFORM_ENV = {
  fcm: 'CIBA_SNS_PLATFORM_FCM_ARN',
  apns: 'CIBA_SNS_PLATFORM_APNS_ARN',
  apnsSandbox: 'CIBA_SNS_PLATFORM_APNS_SANDBOX_ARN',
} as const;

/**
 * The platform applications given in `pushPlatforms`, checked at synth: each an SNS platform application ARN
 * (`arn:<partition>:sns:<region>:<account>:app/<PLATFORM>/<name>`), or a token resolved at deploy.
 */
function pushPlatformArns(platforms: CibaServerProps['pushPlatforms']): [keyof typeof PUSH_PLATFORM_ENV, string][] {
  const given = Object.entries(platforms ?? {}).filter((e): e is [keyof typeof PUSH_PLATFORM_ENV, string] => !!e[1]);
  for (const [platform, arn] of given) {
    if (!(platform in PUSH_PLATFORM_ENV)) throw new Error(`CibaServer: pushPlatforms.${platform} is not a platform`);
    if (!Token.isUnresolved(arn) && !/^arn:[a-z-]+:sns:[a-z0-9-]+:\d{12}:app\/[A-Z_]+\/[\w.-]+$/.test(arn)) {
      throw new Error(
        `CibaServer: pushPlatforms.${platform} must be an SNS platform application ARN ` +
          `(arn:aws:sns:<region>:<account>:app/<PLATFORM>/<name>), got ${JSON.stringify(arn)}`,
      );
    }
  }
  return given;
}

/** The endpoints of a platform application: `…:app/GCM/name` → `…:endpoint/GCM/name/*`. */
function platformEndpointsArn(applicationArn: string): string {
  if (!Token.isUnresolved(applicationArn)) return `${applicationArn.replace(':app/', ':endpoint/')}/*`;
  const parts = Fn.split(':app/', applicationArn, 2);
  return Fn.join('', [Fn.select(0, parts), ':endpoint/', Fn.select(1, parts), '/*']);
}

/** What the user-notification channels touch besides the VAPID key and the push platforms (docs/notifications.md). */
type NotificationResources = { sms: boolean; emailIdentities: string[]; webhookSecretArn?: string };

/**
 * The notification settings, checked at synth: the operator hook needs an https URL and the secret's ARN (and the ARN
 * the URL); e-mail is sent from the SES identity of the sender address or of its domain.
 */
function notificationResources(scope: Construct, props: CibaServerProps): NotificationResources {
  const settings = props.settings ?? {};
  const url = settings.notifyWebhookUrl;
  const secretArn = props.notifyWebhookSecretArn;
  if (url && !Token.isUnresolved(url) && !url.startsWith('https://'))
    throw new Error(`CibaServer: settings.notifyWebhookUrl must be an https URL, got ${JSON.stringify(url)}`);
  if (url && !secretArn) throw new Error('CibaServer: settings.notifyWebhookUrl needs notifyWebhookSecretArn');
  if (secretArn && !url)
    throw new Error('CibaServer: notifyWebhookSecretArn is only used with settings.notifyWebhookUrl');
  if (
    secretArn &&
    !Token.isUnresolved(secretArn) &&
    !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}$/.test(secretArn)
  ) {
    throw new Error(
      'CibaServer: notifyWebhookSecretArn must be the complete ARN of a Secrets Manager secret ' +
        `(…:secret:<name>-<6 characters>), got ${JSON.stringify(secretArn)}`,
    );
  }
  const subject = settings.vapidSubject;
  if (subject && !Token.isUnresolved(subject) && !VAPID_SUBJECT.test(subject))
    throw new Error(
      `CibaServer: settings.vapidSubject must be a mailto: or https: URL, got ${JSON.stringify(subject)}`,
    );
  const from = settings.notifyEmailFrom;
  const emailIdentities: string[] = [];
  if (from && !Token.isUnresolved(from)) {
    const m = /^[^\s@<>"]{1,64}@([^\s@<>"]{1,255})$/.exec(from);
    if (!m)
      throw new Error(`CibaServer: settings.notifyEmailFrom must be an e-mail address, got ${JSON.stringify(from)}`);
    const identity = (name: string) =>
      Stack.of(scope).formatArn({ service: 'ses', resource: 'identity', resourceName: name });
    emailIdentities.push(identity(from), identity(m[1]!));
  }
  return {
    sms: settings.notifySms === 'on',
    emailIdentities,
    ...(secretArn ? { webhookSecretArn: secretArn } : {}),
  };
}

/** `s3://bucket/key` split into its parts, or a synth-time error. */
function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.+)$/.exec(uri);
  if (!m || m[2]!.endsWith('/'))
    throw new Error(
      `CibaServer: mtls.truststoreUri must be s3://<bucket>/<key> of the truststore object, got ${JSON.stringify(uri)}`,
    );
  return { bucket: m[1]!, key: m[2]! };
}

/**
 * The state machines get fixed names so their ARNs can be computed without referencing the resources: the
 * definitions reference the notify-device function, and that function needs the state machine ARNs (env and
 * SendTask* policy), which would otherwise be a CloudFormation dependency cycle. Names are ≤ 80 characters.
 */
function stateMachineNameFor(scope: Construct): string {
  const stackName = Stack.of(scope).stackName;
  // Nested stacks have a token for a name; fall back to a path-derived unique name.
  if (Token.isUnresolved(stackName)) return Names.uniqueResourceName(scope, { maxLength: 80, separator: '-' });
  const raw = `${stackName}-${scope.node.id}`.replace(/[^A-Za-z0-9_-]/g, '-');
  if (raw.length <= 80) return raw;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 8);
  return `${raw.slice(0, 71)}-${hash}`;
}

/** `<base>-poll` / `<base>-notify`, shortened with a hash when that would exceed 80 characters. */
function workflowMachineName(base: string, workflow: Workflow): string {
  const name = `${base}-${workflow.name}`;
  if (name.length <= 80) return name;
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `${base.slice(0, 80 - workflow.name.length - 10)}-${hash}-${workflow.name}`;
}

// Access logs without query strings, paths (which carry ids) or headers (Authorization): the route key
// identifies the endpoint; the request id ties a line to the function's own logs.
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    requestTime: '$context.requestTimeEpoch',
    ip: '$context.identity.sourceIp',
    userAgent: '$context.identity.userAgent',
    routeKey: '$context.routeKey',
    protocol: '$context.protocol',
    status: '$context.status',
    responseLength: '$context.responseLength',
    responseLatency: '$context.responseLatency',
    integrationStatus: '$context.integrationStatus',
    integrationLatency: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
    error: '$context.error.message',
  }),
);

export class CibaServer extends Construct {
  /** Issuer identifier (no trailing slash); every endpoint URL hangs off it. */
  readonly issuerUrl: string;
  /** `<issuer>/.well-known/openid-configuration`. */
  readonly discoveryUrl: string;
  readonly api: HttpApi;
  /** The `$default` stage (auto-deployed, throttled, access-logged); a custom domain maps to it. */
  readonly stage: HttpStage;
  readonly table: Table;
  /** Device notifications (the notify-device function publishes; push/SMS/email subscribers hang off it). */
  readonly deviceTopic: Topic;
  /** Ping/push delivery requests (enqueue-delivery publishes `{requestId}`; the deliver function is subscribed). */
  readonly deliveryTopic: Topic;
  /** Notifications the client's endpoint never accepted (written by the deliver function); its depth alarms. */
  readonly deliveryDeadLetterQueue: Queue;
  /** One Standard workflow per kind of delivery (statemachines/workflows.ts): `poll`, and `notify` for ping and push. */
  readonly stateMachines: Record<Workflow['name'], StateMachine>;
  /** Same values as `stateMachines[name].stateMachineArn`, built from the names so they never create a dependency. */
  readonly stateMachineArns: Record<Workflow['name'], string>;
  /** Unique per CibaServer (the state machine's name): the `Server` dimension of its CibaServer/* metrics. */
  readonly serverName: string;
  /** KMS asymmetric keys: `rsa` (RS256/PS256) and `ec` (ES256); none with `signingKeys: 'sealed'`. */
  readonly signingKeys?: { readonly rsa: Key; readonly ec: Key };
  /** Where the token signing keys live (the `signingKeys` prop): KMS keys, or key pairs sealed in the table. */
  readonly signingKeysSource: 'kms' | 'sealed';
  /**
   * KMS symmetric key sealing the secrets kept at rest (auth_req_id, client_notification_token and push tokens until
   * delivery, client_secret_jwt secrets): envelope encryption with GenerateDataKey / Decrypt, encryption context
   * `purpose=ciba-sealing`.
   */
  readonly sealingKey: Key;
  /**
   * KMS P-256 key (SIGN_VERIFY) of Web Push VAPID (RFC 8292): dispatch-notifications signs VAPID tokens with it,
   * GET /device/config publishes its public key. Replacing it invalidates every Web Push subscription.
   */
  readonly vapidKey: Key;
  /** The mutual-TLS custom domain (RFC 8705), when `mtls` is set; point DNS at its `regionalDomainName`. */
  readonly mtlsDomain?: DomainName;
  /** `https://<mtls.domainName>`: the `mtls_endpoint_aliases` base URL (CIBA_MTLS_BASE_URL), when `mtls` is set. */
  readonly mtlsBaseUrl?: string;
  /**
   * The server settings given to every function (environment name → value; only those set, and CIBA_MTLS_BASE_URL with
   * `mtls`): CibaStack outputs them as `ServerSettings`, so the admin CLI applies the deployed values with `--stack`.
   */
  readonly serverSettings: Readonly<Record<string, string>>;
  /** Every Lambda function by its route-table name (`token`, `bc-authorize`, `notify-device`, `deliver`, …). */
  readonly functions: Readonly<Record<CibaFunctionName, NodejsFunction>>;
  /** Alarms, their topic (`monitoring.alarmTopic`) and the dashboard. */
  readonly monitoring: CibaMonitoring;
  /**
   * What the admin CLI needs against this server (`npm run admin -- <resource> <verb> --stack <name>`, docs/admin.md,
   * "Permissions"), and nothing more: the table, sealing client_secret_jwt secrets, deleting push endpoints, cancelling
   * a request's wait, the dead-letter queue and redriving a delivery, and reading the stack's outputs. Attached to
   * nothing: attach it to the role (or user) operators use. CibaStack outputs its ARN as `OperatorPolicyArn`.
   */
  readonly operatorPolicy: ManagedPolicy;

  constructor(scope: Construct, id: string, props: CibaServerProps = {}) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const retention = props.logRetention ?? RetentionDays.ONE_MONTH;
    const specs = functionSpecs();
    // One stack-derived name: the state machine's (see stateMachineNameFor) and the KMS aliases' prefix.
    const baseName = stateMachineNameFor(this);

    const unknown = Object.keys(props.functionProps ?? {}).filter((n) => !specs.some((s) => s.name === n));
    if (unknown.length > 0) throw new Error(`CibaServer: functionProps for unknown functions: ${unknown.join(', ')}`);
    const timeoutOf = (spec: FunctionSpec): Duration =>
      props.functionProps?.[spec.name]?.timeout ?? Duration.seconds(spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS);

    // Server settings the functions read (functions/settings.ts): only what is set, so their defaults apply otherwise.
    const tunables = settingsEnvironment(props.settings);
    // One delivery POST must fit in the subscriber's timeout with room for its own AWS calls, or a slow endpoint
    // turns into a Lambda timeout instead of a retry.
    const deliveryTimeout = secondsOf(props.settings ?? {}, 'deliveryTimeout');
    for (const spec of specs.filter((sp) => sp.topic === 'delivery')) {
      const fnTimeout = timeoutOf(spec).toSeconds({ integral: false });
      if (deliveryTimeout >= fnTimeout) {
        throw new Error(
          `CibaServer: settings.deliveryTimeout (${deliveryTimeout} s) must be shorter than the ${spec.name} ` +
            `function's timeout (${fnTimeout} s)`,
        );
      }
    }

    const notify = notificationResources(this, props);

    // Mutual TLS: validated here, built with the API below.
    const mtls = props.mtls && { ...props.mtls, truststore: parseS3Uri(props.mtls.truststoreUri) };
    const pushPlatforms = pushPlatformArns(props.pushPlatforms);
    if (mtls && !Token.isUnresolved(mtls.domainName)) {
      if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i.test(mtls.domainName)) {
        throw new Error(
          `CibaServer: mtls.domainName must be a host name, e.g. mtls.auth.example.com, got ${JSON.stringify(mtls.domainName)}`,
        );
      }
      if (
        props.issuer &&
        !Token.isUnresolved(props.issuer) &&
        URL.canParse(props.issuer) &&
        new URL(props.issuer).hostname === mtls.domainName.toLowerCase()
      ) {
        throw new Error(
          'CibaServer: the issuer must not be the mTLS domain (clients without certificates could not reach it); mtls.domainName is only the alias',
        );
      }
    }
    if (mtls) tunables.CIBA_MTLS_BASE_URL = `https://${mtls.domainName}`;
    this.mtlsBaseUrl = tunables.CIBA_MTLS_BASE_URL;
    this.serverSettings = { ...tunables };

    // ---- Data -------------------------------------------------------------------------------------------
    this.table = new Table(this, 'Table', {
      partitionKey: { name: TABLE.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.sortKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: TABLE.ttlAttribute,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: TableEncryption.AWS_MANAGED,
      removalPolicy,
    });
    this.table.addGlobalSecondaryIndex({
      indexName: TABLE.userIndex.name,
      partitionKey: { name: TABLE.userIndex.partitionKey, type: AttributeType.STRING },
      sortKey: { name: TABLE.userIndex.sortKey, type: AttributeType.STRING },
      projectionType: ProjectionType.INCLUDE,
      nonKeyAttributes: [...TABLE.userIndex.projected],
    });
    const tableResources = [this.table.tableArn, `${this.table.tableArn}/index/${TABLE.userIndex.name}`];

    // The AWS-managed SNS key needs no key grants for same-account publishers; enforceSSL denies plain HTTP.
    const snsManagedKey = Alias.fromAliasName(this, 'SnsManagedKey', 'alias/aws/sns');
    this.deviceTopic = new Topic(this, 'DeviceTopic', { masterKey: snsManagedKey, enforceSSL: true });
    // Same for delivery requests (they carry a request id, never a token or secret); the subscribers are below.
    this.deliveryTopic = new Topic(this, 'DeliveryTopic', { masterKey: snsManagedKey, enforceSSL: true });
    // The deliver function writes here on a final failure (no secrets: request id, client id, error); 14 days to
    // look and to redrive (Step Functions redrives a failed Standard execution within 14 days of its end).
    this.deliveryDeadLetterQueue = new Queue(this, 'DeliveryDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    });

    // ---- Signing keys (the private keys never leave KMS; the functions call Sign and GetPublicKey) ---------
    // With `signingKeys: 'sealed'` there are none: the key pairs live sealed in the table (sealing key below), and a
    // KMS key nobody signs with would only cost $1 a month.
    const aliasPrefix = `alias/${baseName}`;
    const signingKeysSource = props.signingKeys ?? 'kms';
    if (signingKeysSource !== 'kms' && signingKeysSource !== 'sealed')
      throw new Error(`CibaServer: signingKeys must be 'kms' or 'sealed', got ${JSON.stringify(signingKeysSource)}`);
    this.signingKeysSource = signingKeysSource;
    const kmsSigningKeys = signingKeysSource === 'kms' && {
      rsa: new Key(this, 'RsaSigningKey', {
        description: 'CIBA token signing key: RS256 (ID tokens, OIDC) and PS256 (FAPI)',
        keySpec: KeySpec.RSA_2048,
        keyUsage: KeyUsage.SIGN_VERIFY,
        alias: `${aliasPrefix}/rsa-signing`,
        removalPolicy,
      }),
      ec: new Key(this, 'EcSigningKey', {
        description: 'CIBA token signing key: ES256 (FAPI)',
        keySpec: KeySpec.ECC_NIST_P256,
        keyUsage: KeyUsage.SIGN_VERIFY,
        alias: `${aliasPrefix}/ec-signing`,
        removalPolicy,
      }),
    };
    if (kmsSigningKeys) this.signingKeys = kmsSigningKeys;
    const keyArns = kmsSigningKeys ? [kmsSigningKeys.rsa.keyArn, kmsSigningKeys.ec.keyArn] : [];
    // ---- Sealing key (symmetric; data keys seal the secrets kept at rest: delivery secrets, client secrets) ---------
    this.sealingKey = new Key(this, 'SealingKey', {
      description:
        'CIBA sealing key: envelope encryption of the secrets kept at rest (ping/push delivery, client_secret_jwt secrets)',
      enableKeyRotation: true,
      alias: `${aliasPrefix}/delivery-sealing`,
      removalPolicy,
    });

    // ---- VAPID key (Web Push, RFC 8292; the private key never leaves KMS) -----------------------------------
    this.vapidKey = new Key(this, 'VapidKey', {
      description: 'CIBA Web Push VAPID key (RFC 8292): signs the tokens that identify this server to push services',
      keySpec: KeySpec.ECC_NIST_P256,
      keyUsage: KeyUsage.SIGN_VERIFY,
      alias: `${aliasPrefix}/vapid`,
      removalPolicy,
    });

    // ---- HTTP API (created first: the default issuer is its endpoint) --------------------------------------
    this.api = new HttpApi(this, 'Api', {
      description: 'OpenID Connect CIBA authorization server',
      // The default stage is created below: HttpApi's own default stage takes no throttle or access logs.
      createDefaultStage: false,
    });
    this.issuerUrl = (props.issuer ?? this.api.apiEndpoint).replace(/\/+$/, '');
    this.discoveryUrl = `${this.issuerUrl}/.well-known/openid-configuration`;

    // ---- State machine names and ARNs (see stateMachineNameFor) ------------------------------------------
    this.serverName = baseName;
    const machineNames = Object.fromEntries(WORKFLOWS.map((w) => [w.name, workflowMachineName(baseName, w)])) as Record<
      Workflow['name'],
      string
    >;
    this.stateMachineArns = Object.fromEntries(
      WORKFLOWS.map((w) => [
        w.name,
        Stack.of(this).formatArn({
          service: 'states',
          resource: 'stateMachine',
          resourceName: machineNames[w.name],
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      ]),
    ) as Record<Workflow['name'], string>;

    // ---- Functions ---------------------------------------------------------------------------------------
    // Every function gets what functions/config.ts requires of all of them (ISSUER, TABLE_NAME, key ids: with
    // KEYS_SOURCE=kms it requires KMS_SEAL_KEY_ID too, so every function knows the sealing key's id, while only
    // the roles of functions with `access.sealing` may use it); ARNs of things only some functions touch go only to those.
    const commonEnv: Record<string, string> = {
      ISSUER: this.issuerUrl,
      TABLE_NAME: this.table.tableName,
      KEYS_SOURCE: signingKeysSource,
      ...(kmsSigningKeys ? { KMS_RSA_KEY_ID: kmsSigningKeys.rsa.keyArn, KMS_EC_KEY_ID: kmsSigningKeys.ec.keyArn } : {}),
      KMS_SEAL_KEY_ID: this.sealingKey.keyArn,
      // The Server dimension of the functions' own metrics (functions/runtime/metrics.ts): one series per CibaServer.
      CIBA_SERVER_NAME: this.serverName,
      ...tunables,
      ...(LAMBDA_NODE_OPTIONS ? { NODE_OPTIONS: LAMBDA_NODE_OPTIONS } : {}),
    };
    const lockFile = path.join(REPO_ROOT, 'package-lock.json');
    // A subscriber's event is only worth processing while the delivery attempt that published it is still waiting.
    const callbackTimeout = Duration.seconds(Math.max(60, deliveryCallbackTimeout().toSeconds())); // Lambda's minimum is 60 s

    const functions: Record<string, NodejsFunction> = {};
    for (const spec of specs) {
      const id = pascal(spec.name);
      const override = props.functionProps?.[spec.name] ?? {};
      const ownLogGroup = override.logGroup ? undefined : new LogGroup(this, `${id}Logs`, { retention, removalPolicy });
      // An explicit role instead of the default one: the default attaches AWSLambdaBasicExecutionRole
      // (logs on Resource "*"); this one may write to its own log group only.
      const role =
        override.role ??
        new Role(this, `${id}Role`, {
          assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
          description: `CIBA ${spec.name} function`,
        });
      const environment: Record<string, string> = { ...commonEnv };
      if (spec.access.startExecution || spec.access.sendTaskResult) {
        environment.POLL_STATE_MACHINE_ARN = this.stateMachineArns.poll;
        environment.NOTIFY_STATE_MACHINE_ARN = this.stateMachineArns.notify;
      }
      if (spec.access.publishDevice) environment.DEVICE_TOPIC_ARN = this.deviceTopic.topicArn;
      if (spec.access.publishDelivery) environment.DELIVERY_TOPIC_ARN = this.deliveryTopic.topicArn;
      if (spec.access.sendDeadLetter) environment.DELIVERY_DLQ_URL = this.deliveryDeadLetterQueue.queueUrl;
      // Only the functions that make push endpoints need to know the platform applications.
      if (spec.access.pushEndpoints === 'manage')
        for (const [platform, arn] of pushPlatforms) environment[PUSH_PLATFORM_ENV[platform]] = arn;
      if (spec.access.vapid) environment.CIBA_VAPID_KMS_KEY_ID = this.vapidKey.keyArn;
      if (spec.access.notifyUsers && notify.webhookSecretArn)
        environment.CIBA_NOTIFY_WEBHOOK_SECRET_ARN = notify.webhookSecretArn;

      const fn = new NodejsFunction(this, `${id}Function`, {
        description: spec.routes.length
          ? `CIBA ${spec.routes.map((r) => `${r.method} ${r.path}`).join(', ')}`
          : spec.topic
            ? `CIBA ${spec.topic} topic subscriber ${spec.name}`
            : `CIBA workflow step ${spec.name}`,
        entry: path.join(HANDLERS_DIR, `${spec.name}.ts`),
        handler: 'handler',
        ...(existsSync(lockFile) ? { depsLockFilePath: lockFile, projectRoot: REPO_ROOT } : {}),
        runtime: Runtime.NODEJS_24_X,
        architecture: props.architecture ?? Architecture.ARM_64,
        memorySize: props.memorySize ?? 512,
        timeout: Duration.seconds(spec.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS),
        role,
        logGroup: ownLogGroup,
        // Delivery: no Lambda retries, the workflow is the retry mechanism (an unanswered Deliver task times out and is
        // retried), so these would only duplicate POSTs. The dispatcher: Lambda retries a crashed invocation and the
        // notification ledger skips what was sent; a notice older than an hour is of no use.
        ...(spec.topic === 'delivery' ? { retryAttempts: 0, maxEventAge: callbackTimeout } : {}),
        ...(spec.topic === 'device' ? { retryAttempts: spec.retries ?? 0, maxEventAge: Duration.hours(1) } : {}),
        ...((props.tracing ?? true) ? { tracing: Tracing.ACTIVE } : {}),
        ...override,
        environment: { ...environment, ...override.environment },
        bundling: {
          // One definition of the esbuild options, shared with `npm run bench` (infra/bundling.ts says why each).
          // The device web app, built at synth and injected as DEVICE_APP_BUNDLE (device-app/build.ts); only when
          // this stack is bundled (`cdk synth --exclusively` and the tests skip bundling).
          ...lambdaBundling(
            spec.name === DEVICE_APP_FUNCTION && Stack.of(this).bundlingRequired ? [deviceAppInjectFile()] : undefined,
          ),
          ...override.bundling,
        },
      });
      ownLogGroup?.grantWrite(fn);
      for (const statement of this.statementsFor(spec.access, tableResources, keyArns, pushPlatforms, notify))
        fn.addToRolePolicy(statement);
      if (spec.topic === 'delivery') this.deliveryTopic.addSubscription(new LambdaSubscription(fn));
      if (spec.topic === 'device') this.deviceTopic.addSubscription(new LambdaSubscription(fn));
      functions[spec.name] = fn;
    }
    this.functions = functions;

    // ---- State machines ----------------------------------------------------------------------------------
    const stateMachineLogs = new LogGroup(this, 'StateMachineLogs', { retention, removalPolicy });
    const machines: Partial<Record<Workflow['name'], StateMachine>> = {};
    for (const workflow of WORKFLOWS) {
      // Fails at synth, not at deploy, when an ASL file and the route table disagree.
      const substitutions = workflowSubstitutions(workflow, {
        tableName: this.table.tableName,
        partition: Stack.of(this).partition,
        functionArn: (name) => functions[name]!.functionArn,
      });
      const machine = new StateMachine(this, `${pascal(workflow.name)}StateMachine`, {
        stateMachineName: machineNames[workflow.name],
        // Standard: Express cannot wait for a task token and lives at most 5 minutes.
        stateMachineType: StateMachineType.STANDARD,
        definitionBody: DefinitionBody.fromFile(workflow.path),
        definitionSubstitutions: substitutions,
        tracingEnabled: props.tracing ?? true,
        // Errors only, and never execution data: inputs/outputs carry binding messages and client ids.
        logs: { destination: stateMachineLogs, level: LogLevel.ERROR, includeExecutionData: false },
      });
      // A file definition tells CDK nothing about the tasks, so the role's permissions are spelled out here.
      const invoked = WORKFLOW_FUNCTIONS.filter((wf) => `${pascal(wf.name)}FunctionArn` in substitutions);
      machine.addToRolePolicy(
        new PolicyStatement({
          actions: ['lambda:InvokeFunction'],
          resources: invoked.map((wf) => functions[wf.name]!.functionArn),
        }),
      );
      // RecordFailure (poll). Dead letters are the deliver function's (its own role may send them).
      if ('TableName' in substitutions)
        machine.addToRolePolicy(
          new PolicyStatement({ actions: ['dynamodb:UpdateItem'], resources: [this.table.tableArn] }),
        );
      machines[workflow.name] = machine;
    }
    this.stateMachines = machines as Record<Workflow['name'], StateMachine>;

    // ---- API routes and stage ----------------------------------------------------------------------------
    for (const spec of specs) {
      if (spec.routes.length === 0) continue;
      // One integration per function, shared by its routes (one Lambda permission per route).
      const integration = new HttpLambdaIntegration(`${pascal(spec.name)}Integration`, functions[spec.name]!, {
        payloadFormatVersion: PayloadFormatVersion.VERSION_2_0,
      });
      for (const route of spec.routes) {
        this.api.addRoutes({ path: route.path, methods: [HttpMethod[route.method]], integration });
      }
    }
    const accessLogs = new LogGroup(this, 'ApiAccessLogs', { retention, removalPolicy });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle ?? { rateLimit: 100, burstLimit: 200 },
      accessLogSettings: { destination: new LogGroupLogDestination(accessLogs), format: ACCESS_LOG_FORMAT },
      // Per-route metrics (billed as custom metrics) are only worth it when the dashboard graphs them.
      detailedMetricsEnabled: props.monitoring?.dashboard ?? true,
    });

    // ---- Mutual TLS custom domain (RFC 8705) -------------------------------------------------------------
    // Regional (mTLS requires it), TLS 1.2, truststore from S3; mapped to the same stage, so the same routes,
    // throttling and access logs. The execute-api endpoint stays enabled: it is the issuer for certificate-less clients.
    if (mtls) {
      this.mtlsDomain = new DomainName(this, 'MtlsDomain', {
        domainName: mtls.domainName,
        certificate: mtls.certificate,
        endpointType: EndpointType.REGIONAL,
        securityPolicy: SecurityPolicy.TLS_1_2,
        mtls: {
          bucket: Bucket.fromBucketName(this, 'MtlsTruststoreBucket', mtls.truststore.bucket),
          key: mtls.truststore.key,
          ...(mtls.truststoreVersion ? { version: mtls.truststoreVersion } : {}),
        },
      });
      new ApiMapping(this, 'MtlsApiMapping', { api: this.api, domainName: this.mtlsDomain, stage: this.stage });
    }

    // ---- Monitoring --------------------------------------------------------------------------------------
    this.monitoring = new CibaMonitoring(this, 'Monitoring', {
      ...props.monitoring,
      server: this,
      alarmNamePrefix: baseName,
    });

    // ---- Operator policy: the admin CLI's code paths (functions/admin/*.ts, scripts/admin.ts), nothing more --------
    // The commands use the functions' own store adapters, so the table grant is the functions' readwrite one. No
    // signing key: no command signs (a redriven push delivery re-mints its tokens in the deliver function).
    const redrivableExecutions = WORKFLOWS.filter((w) => deliveryTasks(w).length > 0).map((w) =>
      Stack.of(this).formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: `${machineNames[w.name]}:*`,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      }),
    );
    this.operatorPolicy = new ManagedPolicy(this, 'OperatorPolicy', {
      description: `CIBA admin CLI (npm run admin -- ... --stack) on ${baseName}: attach to the operators' role`,
      statements: [
        // Sealing: `clients add` / `seed load` seal client_secret_jwt secrets (never open them). Push endpoints:
        // `devices remove` / `users remove` delete a removed device's SNS endpoint.
        ...this.statementsFor(
          { table: 'readwrite', sealing: 'seal', pushEndpoints: 'delete' },
          tableResources,
          keyArns,
          pushPlatforms,
          notify,
        ),
        // The lists and `users remove` scan the table (functions/adapters/store/scan.ts): no function may.
        new PolicyStatement({ actions: ['dynamodb:Scan'], resources: [this.table.tableArn] }),
        // `requests cancel` resumes the waiting execution with the denial (workflow.ts sendDecision: never a failure).
        new PolicyStatement({
          actions: ['states:SendTaskSuccess'],
          resources: Object.values(this.stateMachineArns),
        }),
        // `dead-letters redrive`: only executions with a Deliver state are dead-lettered, named by their request id.
        new PolicyStatement({
          actions: ['states:DescribeExecution', 'states:RedriveExecution'],
          resources: redrivableExecutions,
        }),
        // `dead-letters list | redrive` (functions/adapters/dead-letters.ts); the queue is SQS-managed encrypted.
        new PolicyStatement({
          actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage'],
          resources: [this.deliveryDeadLetterQueue.queueArn],
        }),
        // `--stack <name>` reads this stack's outputs (scripts/admin.ts connectToStack).
        new PolicyStatement({ actions: ['cloudformation:DescribeStacks'], resources: [Stack.of(this).stackId] }),
      ],
    });

    // ---- cdk-nag: the findings that do not apply, each with its reason (infra/nag.ts) ------------------------
    acknowledgeNagFindings(this, {
      smsPublishers: notify.sms ? specs.filter((sp) => sp.access.notifyUsers).map((sp) => sp.name) : [],
      pushEndpointArns: pushPlatforms.map(([, arn]) => platformEndpointsArn(arn)),
      redrivableExecutionArns: redrivableExecutions,
    });
  }

  /** Least privilege: exactly what `access` in functions/routes.ts says, on these resources only. */
  private statementsFor(
    access: Access,
    tableResources: string[],
    keyArns: string[],
    pushPlatforms: [string, string][],
    notify: NotificationResources,
  ): PolicyStatement[] {
    const statements: PolicyStatement[] = [];
    if (access.table) {
      const read = ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:BatchGetItem'];
      const write = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];
      statements.push(
        new PolicyStatement({
          actions: access.table === 'readwrite' ? [...read, ...write] : read,
          resources: tableResources,
        }),
      );
    }
    if (access.startExecution) {
      statements.push(
        new PolicyStatement({ actions: ['states:StartExecution'], resources: Object.values(this.stateMachineArns) }),
      );
    }
    if (access.sendTaskResult) {
      statements.push(
        new PolicyStatement({
          actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
          resources: Object.values(this.stateMachineArns),
        }),
      );
    }
    if (access.publishDevice) {
      statements.push(new PolicyStatement({ actions: ['sns:Publish'], resources: [this.deviceTopic.topicArn] }));
    }
    if (access.publishDelivery) {
      statements.push(new PolicyStatement({ actions: ['sns:Publish'], resources: [this.deliveryTopic.topicArn] }));
    }
    if (access.sendDeadLetter) {
      // The queue is SQS-managed encrypted: no key grant needed.
      statements.push(
        new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.deliveryDeadLetterQueue.queueArn] }),
      );
    }
    if (access.sealing) {
      // 'seal' may only create data keys (it can never unseal), 'open' only decrypt; the encryption context pins every use to sealing.
      const actions = {
        seal: ['kms:GenerateDataKey'],
        open: ['kms:Decrypt'],
        both: ['kms:GenerateDataKey', 'kms:Decrypt'],
      }[access.sealing];
      statements.push(
        new PolicyStatement({
          actions,
          resources: [this.sealingKey.keyArn],
          conditions: { StringEquals: { 'kms:EncryptionContext:purpose': SEALING_CONTEXT.purpose } },
        }),
      );
    }
    if (access.pushEndpoints && pushPlatforms.length > 0) {
      // Endpoints are made in the configured platform applications only, and only their endpoints are deleted.
      const applications = pushPlatforms.map(([, arn]) => arn);
      if (access.pushEndpoints === 'manage')
        statements.push(new PolicyStatement({ actions: ['sns:CreatePlatformEndpoint'], resources: applications }));
      statements.push(
        new PolicyStatement({ actions: ['sns:DeleteEndpoint'], resources: applications.map(platformEndpointsArn) }),
      );
    }
    if (access.keys && this.signingKeysSource === 'kms') {
      const actions = access.keys === 'sign' ? ['kms:Sign', 'kms:GetPublicKey'] : ['kms:GetPublicKey'];
      statements.push(new PolicyStatement({ actions, resources: keyArns }));
    }
    if (access.keys && this.signingKeysSource === 'sealed') {
      // Sealed signing keys (functions/adapters/keys.ts): signers make them (GenerateDataKey, conditional PutItem) and
      // unseal them (Decrypt), under an encryption context of their own, so the other functions that open sealed values
      // cannot open these. Verifiers read the public JWKs from the item and get no KMS permission at all.
      if (access.keys === 'sign')
        statements.push(
          new PolicyStatement({
            actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
            resources: [this.sealingKey.keyArn],
            conditions: { StringEquals: { 'kms:EncryptionContext:purpose': SIGNING_KEYS_CONTEXT.purpose } },
          }),
        );
      // The item itself: covered by the function's table access where it has it, else granted on that item only.
      const needed = access.keys === 'sign' ? ['dynamodb:GetItem', 'dynamodb:PutItem'] : ['dynamodb:GetItem'];
      const granted = access.table === 'readwrite' || (access.table === 'read' && access.keys === 'verify');
      if (!granted)
        statements.push(
          new PolicyStatement({
            actions: needed,
            resources: [this.table.tableArn],
            conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [SIGNING_KEYS_PARTITION] } },
          }),
        );
    }
    if (access.vapid) {
      const actions = access.vapid === 'sign' ? ['kms:Sign', 'kms:GetPublicKey'] : ['kms:GetPublicKey'];
      statements.push(new PolicyStatement({ actions, resources: [this.vapidKey.keyArn] }));
    }
    if (access.notifyUsers) {
      // SMS: SNS authorizes a Publish to a phone number on Resource "*" only (there is no phone-number resource), so
      // Publish gets "*" exactly when the operator turned SMS on (settings.notifySms); otherwise it may publish only
      // to the endpoints of the configured platform applications (mobile push). The Sid keeps it a statement of its own
      // (IAM policy minimization never merges a statement with a Sid), not folded into the X-Ray grant on "*".
      if (notify.sms)
        statements.push(new PolicyStatement({ sid: 'SmsToPhoneNumbers', actions: ['sns:Publish'], resources: ['*'] }));
      else if (pushPlatforms.length > 0)
        statements.push(
          new PolicyStatement({
            actions: ['sns:Publish'],
            resources: pushPlatforms.map(([, arn]) => platformEndpointsArn(arn)),
          }),
        );
      if (notify.emailIdentities.length > 0)
        statements.push(new PolicyStatement({ actions: ['ses:SendEmail'], resources: notify.emailIdentities }));
      if (notify.webhookSecretArn)
        statements.push(
          new PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: [notify.webhookSecretArn] }),
        );
    }
    return statements;
  }
}
