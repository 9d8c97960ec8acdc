// The runtime configuration: the settings of functions/settings.ts read from the environment, validated once per
// process (CDK sets the variables on each Lambda; the local stack sets them before it loads the handlers), plus the
// rules that relate settings to each other.
import { dirname, join } from 'node:path';
import { readSettings, type Limit, type Settings } from './settings.ts';

export type { Limit };

export type Config = Omit<
  Settings,
  | 'issuer'
  | 'tableName'
  | 'pollStateMachineArn'
  | 'notifyStateMachineArn'
  | 'deviceTopicArn'
  | 'deliveryTopicArn'
  | 'keysSource'
  | 'kmsRsaKeyId'
  | 'kmsEcKeyId'
  | 'kmsSealKeyId'
  | 'keysFile'
  | 'sealKeyFile'
  | 'rateLimitPerClient'
  | 'rateLimitPerUser'
  | 'userCodeAttempts'
  | 'mtlsBaseUrl'
  | 'acrValues'
  | 'bindingMessagePattern'
> & {
  issuer: string;
  tableName: string;
  /** The state machine per delivery mode (statemachines/workflows.ts). */
  stateMachineArns: { poll: string; notify: string };
  deviceTopicArn: string;
  deliveryTopicArn: string;
  /** Abuse limits (functions/core/rate-limit.ts): default client quota, requests per user, failed user codes. */
  limits: { client?: Limit; user: Limit; userCode: Limit };
  mtlsBaseUrl?: string;
  acrValues?: string[];
  bindingMessagePattern?: RegExp;
  /**
   * Signing keys: a jose key set on disk (local), AWS KMS asymmetric keys, or key pairs sealed with the sealing key in
   * the table (`sealed`: made by the first signer, unsealed once per process; functions/adapters/keys.ts).
   */
  keys: { source: 'file'; file: string } | { source: 'kms'; rsaKeyId: string; ecKeyId: string } | { source: 'sealed' };
  /** Sealing key for secrets kept until delivery (functions/adapters/sealer.ts): a key file or a KMS key. */
  sealing: { source: 'file'; file: string } | { source: 'kms'; keyId: string };
};

function required<T>(value: T | undefined, env: string): T {
  if (value === undefined || value === '') throw new Error(`configuration: ${env} is required`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const s = readSettings(env);
  const issuer = required(s.issuer, 'ISSUER');
  if (!s.localMode && !issuer.startsWith('https://')) {
    throw new Error('configuration: ISSUER must be https:// outside local mode');
  }
  if (s.minExpiresIn > s.maxExpiresIn) {
    throw new Error('configuration: CIBA_MIN_EXPIRES_IN must not exceed CIBA_MAX_EXPIRES_IN');
  }
  if (s.defaultExpiresIn < s.minExpiresIn || s.defaultExpiresIn > s.maxExpiresIn) {
    throw new Error(
      `configuration: CIBA_DEFAULT_EXPIRES_IN must be from ${s.minExpiresIn} to ${s.maxExpiresIn} ` +
        '(CIBA_MIN_EXPIRES_IN to CIBA_MAX_EXPIRES_IN)',
    );
  }
  // Key files by default on the local stack, KMS keys otherwise.
  const keysSource = env.KEYS_SOURCE ? s.keysSource : s.localMode ? 'file' : 'kms';
  const keys: Config['keys'] =
    keysSource === 'file'
      ? { source: 'file', file: required(s.keysFile, 'KEYS_FILE') }
      : keysSource === 'sealed'
        ? { source: 'sealed' }
        : {
            source: 'kms',
            rsaKeyId: required(s.kmsRsaKeyId, 'KMS_RSA_KEY_ID'),
            ecKeyId: required(s.kmsEcKeyId, 'KMS_EC_KEY_ID'),
          };
  // Sealed signing keys need the sealing key (and the table, required below): the KMS one on AWS, the key file locally.
  const sealing: Config['sealing'] =
    keys.source === 'file'
      ? { source: 'file', file: s.sealKeyFile || join(dirname(keys.file), 'sealing-key.json') }
      : keys.source === 'sealed' && s.localMode
        ? {
            source: 'file',
            file:
              s.sealKeyFile || join(dirname(required(s.keysFile, 'SEAL_KEY_FILE or KEYS_FILE')), 'sealing-key.json'),
          }
        : { source: 'kms', keyId: required(s.kmsSealKeyId, 'KMS_SEAL_KEY_ID') };
  const {
    tableName,
    pollStateMachineArn,
    notifyStateMachineArn,
    deviceTopicArn,
    deliveryTopicArn,
    rateLimitPerClient,
    rateLimitPerUser,
    userCodeAttempts,
    mtlsBaseUrl,
    acrValues,
    bindingMessagePattern,
    keysSource: _ks,
    kmsRsaKeyId: _r,
    kmsEcKeyId: _e,
    kmsSealKeyId: _k,
    keysFile: _f,
    sealKeyFile: _sf,
    ...rest
  } = s;
  return {
    ...rest,
    issuer,
    tableName: required(tableName, 'TABLE_NAME'),
    stateMachineArns: { poll: pollStateMachineArn ?? '', notify: notifyStateMachineArn ?? '' },
    deviceTopicArn: deviceTopicArn ?? '',
    deliveryTopicArn: deliveryTopicArn ?? '',
    limits: {
      ...(rateLimitPerClient ? { client: rateLimitPerClient } : {}),
      user: rateLimitPerUser,
      userCode: userCodeAttempts,
    },
    ...(mtlsBaseUrl ? { mtlsBaseUrl } : {}),
    ...(acrValues && acrValues.length > 0 ? { acrValues } : {}),
    ...(bindingMessagePattern ? { bindingMessagePattern } : {}),
    keys,
    sealing,
  };
}

let cached: Config | undefined;
/** The process-wide configuration (validated on first use). */
export function config(): Config {
  cached ??= loadConfig();
  return cached;
}
