// The one definition of every server setting: its environment variable, type, default, bounds, description and,
// for operator tunables, the CDK construct prop that sets it. Everything else is derived from this table:
// - the runtime configuration (functions/config.ts parses and validates the environment with it),
// - the construct's props and their synth-time validation (infra/ciba-construct.ts, `settingsEnvironment`),
// - the configuration reference in docs/configuration.md (`npm run docs` regenerates it; a test checks it is current).
// Plain data and small pure functions only: the Lambda bundles, the CDK app and the docs script all import it.

/** `count` events per `windowSeconds` (fixed windows). */
export type Limit = { count: number; windowSeconds: number };

type Common = {
  /** Environment variable the functions read. */
  env: string;
  /** One or two sentences for the docs. */
  description: string;
  /**
   * Who sets it: `operator` (a tunable: construct prop and env var), `stack` (CDK sets it from the resources it
   * makes; the local stack sets its own values), `local` (local stack only).
   */
  scope: 'operator' | 'stack' | 'local';
};
type IntSetting = Common & { type: 'seconds' | 'integer'; default: number; min: number; max: number };
type LimitSetting = Common & { type: 'limit'; default?: string };
type TextSetting = Common & { type: 'string' | 'url' | 'regex'; default?: string };
type ListSetting = Common & { type: 'list'; default?: undefined };
type EnumSetting = Common & { type: 'enum'; values: readonly string[]; default: string };
type BoolSetting = Common & { type: 'boolean'; default: boolean };
export type Setting = IntSetting | LimitSetting | TextSetting | ListSetting | EnumSetting | BoolSetting;

const LIMIT_MAX = 9_999_999;

export const SETTINGS = {
  // ---- Backchannel requests (CIBA §7) -------------------------------------------------------------------
  defaultExpiresIn: {
    env: 'CIBA_DEFAULT_EXPIRES_IN',
    type: 'seconds',
    default: 300,
    min: 1,
    max: 86_400,
    scope: 'operator',
    description:
      '`expires_in` of an auth_req_id when the client sends no `requested_expiry`; within the min/max range.',
  },
  minExpiresIn: {
    env: 'CIBA_MIN_EXPIRES_IN',
    type: 'seconds',
    default: 10,
    min: 1,
    max: 3600,
    scope: 'operator',
    description: 'Smallest `requested_expiry` honoured; a smaller one is raised to it.',
  },
  maxExpiresIn: {
    env: 'CIBA_MAX_EXPIRES_IN',
    type: 'seconds',
    default: 1800,
    min: 600,
    max: 86_400,
    scope: 'operator',
    description: 'Largest `requested_expiry` honoured; a larger one is lowered to it.',
  },
  pollInterval: {
    env: 'CIBA_POLL_INTERVAL',
    type: 'seconds',
    default: 5,
    min: 1,
    max: 60,
    scope: 'operator',
    description:
      '`interval` returned to poll and ping clients (CIBA §7.3); each `slow_down` adds 5 s for that request.',
  },
  bindingMessageMax: {
    env: 'CIBA_BINDING_MESSAGE_MAX',
    type: 'integer',
    default: 128,
    min: 8,
    max: 1024,
    scope: 'operator',
    description: 'Longest `binding_message` accepted, in characters (Unicode code points after NFC normalisation).',
  },
  bindingMessagePattern: {
    env: 'CIBA_BINDING_MESSAGE_PATTERN',
    type: 'regex',
    scope: 'operator',
    description:
      'Optional regular expression (Unicode mode) the whole `binding_message` must match, e.g. `[A-Z0-9-]+`. ' +
      'Unset: any single line of displayable text in any script.',
  },
  acrValues: {
    env: 'CIBA_ACR_VALUES',
    type: 'list',
    scope: 'operator',
    description:
      "`acr_values_supported` (space-separated): the ID token's `acr` is the most preferred requested value in " +
      'this list. Unset: the device approval is deemed to satisfy any requested value; set it in production.',
  },
  authorizationDetailsTypes: {
    env: 'CIBA_AUTHORIZATION_DETAILS_TYPES',
    type: 'list',
    scope: 'operator',
    description:
      'RFC 9396 `authorization_details_types_supported` (space-separated): the only `authorization_details` types ' +
      "accepted (each must also be in the client's `authorization_details_types`), advertised in discovery. Unset: " +
      'any type the client registered, with the RFC 9396 §2 common fields checked; nothing advertised.',
  },
  // ---- Abuse limits (CIBA §14; functions/core/rate-limit.ts) ------------------------------------------------
  rateLimitPerClient: {
    env: 'CIBA_RATE_LIMIT_CLIENT',
    type: 'limit',
    scope: 'operator',
    description:
      "Default backchannel request quota of a client (`<count>/<seconds>`, fixed windows); a client's own " +
      '`backchannel_rate_limit` metadata overrides it. Beyond it: `429 slow_down` with `Retry-After`. Unset: only ' +
      'clients with `backchannel_rate_limit` have a quota (each quota costs a DynamoDB write per request; the API ' +
      "stage's throttling bounds every client together).",
  },
  rateLimitPerUser: {
    env: 'CIBA_RATE_LIMIT_USER',
    type: 'limit',
    default: '60/300',
    scope: 'operator',
    description: 'Backchannel requests for one user across all clients (`<count>/<seconds>`).',
  },
  clientCacheSeconds: {
    env: 'CIBA_CLIENT_CACHE_SECONDS',
    type: 'integer',
    default: 30,
    min: 0,
    max: 300,
    scope: 'operator',
    description:
      'How long a function instance reuses a client registration it read (saves a DynamoDB read per request). A ' +
      'change made elsewhere (another instance, the admin CLI) takes effect within this time; an authentication that ' +
      'fails on a reused registration is retried on a fresh read, so a new secret or key works at once. `0`: always read.',
  },
  maxPendingPerUser: {
    env: 'CIBA_MAX_PENDING_PER_USER',
    type: 'integer',
    default: 5,
    min: 0,
    max: 50,
    scope: 'operator',
    description:
      "Requests one user may have pending (undecided, unexpired) at once: a flood of prompts to the user's " +
      'device is refused with `429 slow_down` and notifies nobody. `0` turns the cap off (load tests only).',
  },
  userCodeAttempts: {
    env: 'CIBA_USER_CODE_ATTEMPTS',
    type: 'limit',
    default: '5/900',
    scope: 'operator',
    description:
      'Failed `user_code` attempts per user (`<count>/<seconds>`); beyond them even the right code is refused.',
  },
  // ---- Authentication devices (docs/device-api.md) ------------------------------------------------------------
  maxDevicesPerUser: {
    env: 'CIBA_MAX_DEVICES_PER_USER',
    type: 'integer',
    default: 5,
    min: 1,
    max: 50,
    scope: 'operator',
    description:
      'Authentication devices one user may have enrolled at once; one more is refused with `409 too_many_devices`.',
  },
  enrolmentCodeTtl: {
    env: 'CIBA_ENROLMENT_CODE_TTL',
    type: 'seconds',
    default: 600,
    min: 60,
    max: 86_400,
    scope: 'operator',
    description: 'How long a one-time device enrolment code stays valid.',
  },
  enrolmentFailures: {
    env: 'CIBA_ENROLMENT_FAILURES',
    type: 'limit',
    default: '20/600',
    scope: 'operator',
    description:
      'Failed device enrolments (`POST /device/enrol`) per source IP address (`<count>/<seconds>`); beyond them ' +
      'every enrolment from that address is refused with `429 slow_down` and `Retry-After`.',
  },
  // ---- Dynamic registration (RFC 7591, RFC 7592) ----------------------------------------------------------------
  registration: {
    env: 'CIBA_REGISTRATION',
    type: 'enum',
    values: ['on', 'off'],
    default: 'on',
    scope: 'operator',
    description: 'Dynamic client registration at `/register` (advertised in discovery only when `on`).',
  },
  openRegistration: {
    env: 'CIBA_OPEN_REGISTRATION',
    type: 'boolean',
    default: false,
    scope: 'operator',
    description:
      'Registration without an initial access token. Off by default: registering needs a token from ' +
      '`npm run admin -- registration-tokens create`.',
  },
  // ---- Tokens -----------------------------------------------------------------------------------------------
  accessTokenTtl: {
    env: 'ACCESS_TOKEN_TTL',
    type: 'seconds',
    default: 600,
    min: 60,
    max: 86_400,
    scope: 'operator',
    description: 'Access token lifetime.',
  },
  idTokenTtl: {
    env: 'ID_TOKEN_TTL',
    type: 'seconds',
    default: 600,
    min: 60,
    max: 86_400,
    scope: 'operator',
    description: 'ID token lifetime.',
  },
  refreshTokenTtl: {
    env: 'REFRESH_TOKEN_TTL',
    type: 'seconds',
    default: 2_592_000,
    min: 3600,
    max: 31_536_000,
    scope: 'operator',
    description: 'Refresh token lifetime (rotated on every use; reuse revokes the family).',
  },
  idTokenHintGrace: {
    env: 'CIBA_ID_TOKEN_HINT_GRACE',
    type: 'seconds',
    default: 86_400,
    min: 0,
    max: 31_536_000,
    scope: 'operator',
    description:
      'How long after its `exp` an ID token is still accepted as `id_token_hint` (its signature is always checked).',
  },
  dpopNonce: {
    env: 'CIBA_DPOP_NONCE',
    type: 'enum',
    values: ['on', 'off'],
    default: 'off',
    scope: 'operator',
    description:
      '`on`: every DPoP proof (RFC 9449) at the token endpoint and userinfo must carry a nonce this server issued ' +
      '(`DPoP-Nonce` response header; `use_dpop_nonce` otherwise, §8, §9). A nonce is valid for 5 to 10 minutes and ' +
      'any function instance checks it without a lookup (docs/tokens.md).',
  },
  jwksRefetchCooldown: {
    env: 'CIBA_JWKS_REFETCH_COOLDOWN',
    type: 'seconds',
    default: 30,
    min: 1,
    max: 3600,
    scope: 'operator',
    description:
      'Seconds before a JWS naming a `kid` missing from a cached client `jwks_uri` set may trigger another fetch.',
  },
  // ---- Ping and push delivery (CIBA §10) ------------------------------------------------------------------
  deliveryWindow: {
    env: 'CIBA_DELIVERY_WINDOW',
    type: 'seconds',
    default: 3600,
    min: 1,
    max: 86_400,
    scope: 'operator',
    description:
      'Seconds from the first delivery attempt during which failed attempts (no answer, timeout, 5xx, 408, 429) ' +
      'are retried; then the notification is dead-lettered.',
  },
  deliveryTimeout: {
    env: 'CIBA_DELIVERY_TIMEOUT',
    type: 'seconds',
    default: 10,
    min: 1,
    max: 25,
    scope: 'operator',
    description: "Seconds one POST to a client notification endpoint may take (below the deliver function's timeout).",
  },
  // ---- Notifying the user (docs/notifications.md) -------------------------------------------------------------
  notifyWebhookUrl: {
    env: 'CIBA_NOTIFY_WEBHOOK_URL',
    type: 'url',
    scope: 'operator',
    description:
      'Operator hook: every user notification is also POSTed here, signed per Standard Webhooks 1.0 (https; ' +
      'loopback http on the local stack). Needs the secret: construct prop `notifyWebhookSecretArn`, locally ' +
      '`CIBA_NOTIFY_WEBHOOK_SECRET`. Unset: no hook.',
  },
  notifySms: {
    env: 'CIBA_NOTIFY_SMS',
    type: 'enum',
    values: ['on', 'off'],
    default: 'off',
    scope: 'operator',
    description:
      '`on`: a user with no device channel gets an SMS (SNS) at their `phone_number` with a link to the device app. ' +
      'Billed per message by AWS.',
  },
  notifyEmailFrom: {
    env: 'CIBA_NOTIFY_EMAIL_FROM',
    type: 'string',
    scope: 'operator',
    description:
      'Sender address (a verified SES identity, or an address in a verified domain): a user with no device channel ' +
      'gets an e-mail at their verified `email` with a link to the device app. Unset: no e-mail.',
  },
  vapidSubject: {
    env: 'CIBA_VAPID_SUBJECT',
    type: 'string',
    scope: 'operator',
    description:
      'RFC 8292 `sub` of the VAPID token sent to Web Push services: a `mailto:` or `https:` contact for the push ' +
      'service operator. Unset: the issuer (an http issuer on the local stack: `mailto:ciba@localhost`).',
  },
  // ---- Observability ----------------------------------------------------------------------------------------
  logLevel: {
    env: 'LOG_LEVEL',
    type: 'enum',
    values: ['debug', 'info', 'warn', 'error'],
    default: 'info',
    scope: 'operator',
    description: 'Least severe log level written (JSON lines; never a secret).',
  },
  metrics: {
    env: 'CIBA_METRICS',
    type: 'enum',
    values: ['on', 'off'],
    default: 'on',
    scope: 'operator',
    description:
      'CloudWatch embedded-metric-format lines in the logs; `off` silences them (the local stack sets `off`).',
  },
  serverName: {
    env: 'CIBA_SERVER_NAME',
    type: 'string',
    default: 'ciba',
    scope: 'stack',
    description: "The `Server` dimension of the functions' metrics, one per deployed server so stacks keep apart.",
  },
  // ---- Set by the stack ---------------------------------------------------------------------------------------
  issuer: {
    env: 'ISSUER',
    type: 'url',
    scope: 'stack',
    description:
      'Issuer identifier and base of every endpoint URL (construct prop `issuer`; default the API endpoint).',
  },
  mtlsBaseUrl: {
    env: 'CIBA_MTLS_BASE_URL',
    type: 'url',
    scope: 'stack',
    description:
      'RFC 8705 `mtls_endpoint_aliases` base URL: the API Gateway mTLS custom domain (construct prop `mtls`), ' +
      'locally the HTTPS listener. Unset: no mTLS methods, and clients that need them are refused.',
  },
  tableName: { env: 'TABLE_NAME', type: 'string', scope: 'stack', description: 'The DynamoDB table.' },
  pollStateMachineArn: {
    env: 'POLL_STATE_MACHINE_ARN',
    type: 'string',
    scope: 'stack',
    description: 'The workflow of poll requests (statemachines/poll.asl.json).',
  },
  notifyStateMachineArn: {
    env: 'NOTIFY_STATE_MACHINE_ARN',
    type: 'string',
    scope: 'stack',
    description: 'The workflow of ping and push requests (statemachines/notify.asl.json).',
  },
  deviceTopicArn: {
    env: 'DEVICE_TOPIC_ARN',
    type: 'string',
    scope: 'stack',
    description: 'SNS topic of device notifications.',
  },
  deliveryTopicArn: {
    env: 'DELIVERY_TOPIC_ARN',
    type: 'string',
    scope: 'stack',
    description: 'SNS topic of ping/push delivery requests.',
  },
  deliveryDeadLetterQueueUrl: {
    env: 'DELIVERY_DLQ_URL',
    type: 'string',
    scope: 'stack',
    description:
      'SQS dead-letter queue of ping/push notifications the client never accepted: the deliver function sends one ' +
      'record (no secrets) per final failure; `npm run admin -- dead-letters` lists and redrives them.',
  },
  snsPlatformFcmArn: {
    env: 'CIBA_SNS_PLATFORM_FCM_ARN',
    type: 'string',
    scope: 'stack',
    description:
      'SNS platform application for Firebase Cloud Messaging (construct prop `pushPlatforms.fcm`): devices ' +
      'enrolling with an `sns` channel on `fcm` get an endpoint in it. Unset: that channel is refused.',
  },
  snsPlatformApnsArn: {
    env: 'CIBA_SNS_PLATFORM_APNS_ARN',
    type: 'string',
    scope: 'stack',
    description: 'SNS platform application for Apple Push Notification service (construct prop `pushPlatforms.apns`).',
  },
  snsPlatformApnsSandboxArn: {
    env: 'CIBA_SNS_PLATFORM_APNS_SANDBOX_ARN',
    type: 'string',
    scope: 'stack',
    description: 'SNS platform application for the APNs sandbox (construct prop `pushPlatforms.apnsSandbox`).',
  },
  keysSource: {
    env: 'KEYS_SOURCE',
    type: 'enum',
    values: ['kms', 'file', 'sealed'],
    default: 'kms',
    scope: 'stack',
    description:
      'Signing and sealing keys: `kms` signs with KMS asymmetric keys (construct prop `signingKeys`, default), ' +
      '`sealed` signs in memory with key pairs kept sealed under the sealing key in the table, `file` uses key ' +
      "files (the local stack's default; `KEYS_SOURCE=sealed npm start` seals them with the local sealing key file).",
  },
  kmsRsaKeyId: {
    env: 'KMS_RSA_KEY_ID',
    type: 'string',
    scope: 'stack',
    description: 'KMS RSA 2048 key (RS256, PS256).',
  },
  kmsEcKeyId: { env: 'KMS_EC_KEY_ID', type: 'string', scope: 'stack', description: 'KMS P-256 key (ES256).' },
  kmsSealKeyId: {
    env: 'KMS_SEAL_KEY_ID',
    type: 'string',
    scope: 'stack',
    description: 'KMS symmetric key sealing secrets kept until delivery and `client_secret_jwt` secrets.',
  },
  keysFile: {
    env: 'KEYS_FILE',
    type: 'string',
    scope: 'local',
    description: 'jose key set file (local signing keys).',
  },
  sealKeyFile: {
    env: 'SEAL_KEY_FILE',
    type: 'string',
    scope: 'local',
    description: 'Local sealing key file (default `sealing-key.json` beside `KEYS_FILE`).',
  },
  notifyWebhookSecret: {
    env: 'CIBA_NOTIFY_WEBHOOK_SECRET',
    type: 'string',
    scope: 'local',
    description:
      "The operator hook's signing secret (`whsec_` + base64 of at least 24 bytes) on the local stack. On AWS it " +
      'is read from Secrets Manager (`CIBA_NOTIFY_WEBHOOK_SECRET_ARN`) and never set in configuration.',
  },
  notifyWebhookSecretArn: {
    env: 'CIBA_NOTIFY_WEBHOOK_SECRET_ARN',
    type: 'string',
    scope: 'stack',
    description:
      "Secrets Manager secret holding the operator hook's signing secret (construct prop `notifyWebhookSecretArn`); " +
      'only the dispatch-notifications function may read it.',
  },
  vapidKmsKeyId: {
    env: 'CIBA_VAPID_KMS_KEY_ID',
    type: 'string',
    scope: 'stack',
    description: 'KMS P-256 key signing the VAPID tokens of Web Push (RFC 8292); the private key never leaves KMS.',
  },
  vapidKeyFile: {
    env: 'CIBA_VAPID_KEY_FILE',
    type: 'string',
    scope: 'local',
    description: 'Local VAPID key file (P-256, default `vapid-key.json` beside `KEYS_FILE`), made on first use.',
  },
  localMode: {
    env: 'CIBA_LOCAL',
    type: 'boolean',
    default: false,
    scope: 'local',
    description: 'Local stack: loopback `http` issuer and notification endpoints allowed, key files by default.',
  },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

type ValueOf<S> = S extends { type: 'seconds' | 'integer' }
  ? number
  : S extends { type: 'limit' }
    ? Limit
    : S extends { type: 'list' }
      ? string[]
      : S extends { type: 'boolean' }
        ? boolean
        : S extends { type: 'regex' }
          ? RegExp
          : S extends { type: 'enum'; values: readonly (infer V)[] }
            ? V
            : string;
type HasDefault<S> = S extends { default: string | number | boolean } ? true : false;

/** Every setting's parsed value: present when it has a default or was set. */
export type Settings = {
  [K in SettingName]: HasDefault<(typeof SETTINGS)[K]> extends true
    ? ValueOf<(typeof SETTINGS)[K]>
    : ValueOf<(typeof SETTINGS)[K]> | undefined;
};

/** Parses "<count>/<seconds>", e.g. "10/300". */
export function parseLimit(raw: string): Limit | undefined {
  const m = /^([1-9][0-9]{0,6})\/([1-9][0-9]{0,6})$/.exec(raw.trim());
  return m ? { count: Number(m[1]), windowSeconds: Number(m[2]) } : undefined;
}

export function formatLimit(limit: Limit): string {
  return `${limit.count}/${limit.windowSeconds}`;
}

function problem(setting: Setting, raw: string, expected: string): Error {
  return new Error(`configuration: ${setting.env} must be ${expected}, got ${JSON.stringify(raw)}`);
}

/** What a setting accepts, in words (errors and docs). */
export function describeType(setting: Setting): string {
  switch (setting.type) {
    case 'seconds':
      return `whole seconds from ${setting.min} to ${setting.max}`;
    case 'integer':
      return `an integer from ${setting.min} to ${setting.max}`;
    case 'limit':
      return `\`<count>/<seconds>\`, each 1 to ${LIMIT_MAX}`;
    case 'list':
      return 'space-separated values';
    case 'enum':
      return setting.values.map((v) => `\`${v}\``).join(' or ');
    case 'boolean':
      return '`true` or `false`';
    case 'url':
      return 'an http(s) URL';
    case 'regex':
      return 'a regular expression';
    case 'string':
      return 'text';
  }
}

/** Parses one raw value of a setting; throws a configuration error naming its variable. */
export function parseSetting(setting: Setting, raw: string): unknown {
  switch (setting.type) {
    case 'seconds':
    case 'integer': {
      const value = Number(raw);
      if (!/^-?[0-9]+$/.test(raw.trim()) || value < setting.min || value > setting.max) {
        throw problem(setting, raw, describeType(setting));
      }
      return value;
    }
    case 'limit':
      return (
        parseLimit(raw) ??
        (() => {
          throw problem(setting, raw, `${describeType(setting)}, e.g. 10/300`);
        })()
      );
    case 'list':
      return raw.split(' ').filter(Boolean);
    case 'enum':
      if (!setting.values.includes(raw)) throw problem(setting, raw, describeType(setting));
      return raw;
    case 'boolean':
      if (raw !== 'true' && raw !== 'false') throw problem(setting, raw, describeType(setting));
      return raw === 'true';
    case 'url':
      if (!/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(raw)) throw problem(setting, raw, describeType(setting));
      return raw.replace(/\/+$/, '');
    case 'regex':
      try {
        return new RegExp(`^(?:${raw})$`, 'u');
      } catch {
        throw problem(setting, raw, 'a valid regular expression');
      }
    case 'string':
      return raw;
  }
}

/** The value of one setting from an environment: parsed, or its default, or undefined. */
export function readSetting<K extends SettingName>(name: K, env: NodeJS.ProcessEnv = process.env): Settings[K] {
  const setting: Setting = SETTINGS[name];
  const raw = env[setting.env];
  if (raw !== undefined && raw !== '') return parseSetting(setting, raw) as Settings[K];
  if (setting.type === 'limit')
    return (setting.default === undefined ? undefined : parseLimit(setting.default)) as Settings[K];
  return setting.default as Settings[K];
}

/** Every setting from an environment (each validated). */
export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) out[name] = readSetting(name, env);
  return out as Settings;
}

/** Operator tunables: the construct props derived from the table (seconds as whole numbers of seconds). */
export type OperatorSettingName = {
  [K in SettingName]: (typeof SETTINGS)[K]['scope'] extends 'operator' ? K : never;
}[SettingName];
