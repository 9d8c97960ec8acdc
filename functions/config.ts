// One configuration schema, read from the environment and validated once per process (CDK sets these on each
// Lambda; the local stack sets them before it loads the handlers).
import { dirname, join } from 'node:path';
import { parseLimit, type Limit } from './core/rate-limit.ts';

export type Config = {
  /** Issuer identifier; every endpoint URL is derived from it. */
  issuer: string;
  tableName: string;
  stateMachineArn: string;
  deviceTopicArn: string;
  /** SNS topic of ping/push delivery requests (enqueue-delivery → deliver). */
  deliveryTopicArn: string;
  /**
   * Ping/push delivery (CIBA §10.2, §10.3): seconds from the first attempt during which failed deliveries (network
   * errors, timeouts, 5xx) are retried; after it the delivery is dead-lettered. And the timeout of one POST (seconds).
   */
  deliveryWindow: number;
  deliveryTimeout: number;
  /** Abuse limits (functions/core/rate-limit.ts): backchannel requests per client and per user, failed user codes per user. */
  limits: { client: Limit; user: Limit; userCode: Limit };
  /**
   * RFC 8705 §5 mtls_endpoint_aliases: the base URL where the same endpoints are served with TLS client
   * certificates (an API Gateway custom domain with mutual TLS; locally the optional HTTPS listener). Unset: no mTLS.
   */
  mtlsBaseUrl?: string;
  /** A client's jwks_uri key set: seconds before a JWS naming an unknown kid may trigger another fetch. */
  jwksRefetchCooldown: number;
  /** Seconds an expired ID token is still accepted as id_token_hint (CIBA §7.1; its signature is always checked). */
  idTokenHintGrace: number;
  /** Local stack: loopback http notification endpoints allowed, local key file. */
  localMode: boolean;
  /** Default `expires_in` of an auth_req_id when the client sends no `requested_expiry`. */
  defaultExpiresIn: number;
  /** Largest `requested_expiry` honoured (CONTRACT: at least 600). */
  maxExpiresIn: number;
  /** Smallest `requested_expiry` honoured. */
  minExpiresIn: number;
  /** Polling interval returned to poll and ping clients (CIBA §7.3). */
  pollInterval: number;
  /**
   * acr values the device authentication satisfies (OIDC Discovery acr_values_supported). Unset: every requested
   * value is deemed satisfied by the device approval and the most preferred one is asserted.
   */
  acrValues?: string[];
  accessTokenTtl: number;
  idTokenTtl: number;
  refreshTokenTtl: number;
  /** Signing keys: `file` (a jose key set on disk, local) or `kms` (AWS KMS asymmetric keys). */
  keys: { source: 'file'; file: string } | { source: 'kms'; rsaKeyId: string; ecKeyId: string };
  /**
   * Sealing key for the secrets kept until delivery (auth_req_id and client_notification_token of ping/push requests,
   * a push token set between attempts): a key file locally, a KMS symmetric key on AWS (functions/adapters/sealer.ts).
   */
  sealing: { source: 'file'; file: string } | { source: 'kms'; keyId: string };
};

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`configuration: ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function str(env: NodeJS.ProcessEnv, name: string, fallback?: string): string {
  const value = env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`configuration: ${name} is required`);
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const issuer = str(env, 'ISSUER').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(issuer)) throw new Error(`configuration: ISSUER is not an http(s) URL: ${issuer}`);
  const localMode = env.CIBA_LOCAL === 'true';
  if (!localMode && !issuer.startsWith('https://')) throw new Error('configuration: ISSUER must be https:// outside local mode');
  const minExpiresIn = int(env, 'CIBA_MIN_EXPIRES_IN', 10, 1, 3600);
  const maxExpiresIn = int(env, 'CIBA_MAX_EXPIRES_IN', 1800, 600, 86_400);
  const keySource = str(env, 'KEYS_SOURCE', localMode ? 'file' : 'kms');
  const keys: Config['keys'] =
    keySource === 'file'
      ? { source: 'file', file: str(env, 'KEYS_FILE') }
      : keySource === 'kms'
        ? { source: 'kms', rsaKeyId: str(env, 'KMS_RSA_KEY_ID'), ecKeyId: str(env, 'KMS_EC_KEY_ID') }
        : (() => {
            throw new Error(`configuration: KEYS_SOURCE must be file or kms, got ${keySource}`);
          })();
  const sealing: Config['sealing'] =
    keys.source === 'file'
      ? { source: 'file', file: str(env, 'SEAL_KEY_FILE', join(dirname(keys.file), 'sealing-key.json')) }
      : { source: 'kms', keyId: str(env, 'KMS_SEAL_KEY_ID') };
  return {
    issuer,
    tableName: str(env, 'TABLE_NAME'),
    stateMachineArn: env.STATE_MACHINE_ARN ?? '',
    deviceTopicArn: env.DEVICE_TOPIC_ARN ?? '',
    deliveryTopicArn: env.DELIVERY_TOPIC_ARN ?? '',
    deliveryWindow: int(env, 'CIBA_DELIVERY_WINDOW', 3600, 1, 86_400),
    deliveryTimeout: int(env, 'CIBA_DELIVERY_TIMEOUT', 10, 1, 25),
    ...(env.CIBA_MTLS_BASE_URL ? { mtlsBaseUrl: env.CIBA_MTLS_BASE_URL.replace(/\/+$/, '') } : {}),
    idTokenHintGrace: int(env, 'CIBA_ID_TOKEN_HINT_GRACE', 86_400, 0, 31_536_000),
    jwksRefetchCooldown: int(env, 'CIBA_JWKS_REFETCH_COOLDOWN', 30, 1, 3600),
    limits: {
      client: parseLimit('CIBA_RATE_LIMIT_CLIENT', env.CIBA_RATE_LIMIT_CLIENT || '600/60'),
      user: parseLimit('CIBA_RATE_LIMIT_USER', env.CIBA_RATE_LIMIT_USER || '10/300'),
      userCode: parseLimit('CIBA_USER_CODE_ATTEMPTS', env.CIBA_USER_CODE_ATTEMPTS || '5/900'),
    },
    localMode,
    defaultExpiresIn: int(env, 'CIBA_DEFAULT_EXPIRES_IN', 300, minExpiresIn, maxExpiresIn),
    maxExpiresIn,
    minExpiresIn,
    pollInterval: int(env, 'CIBA_POLL_INTERVAL', 5, 1, 60),
    ...(env.CIBA_ACR_VALUES ? { acrValues: env.CIBA_ACR_VALUES.split(' ').filter(Boolean) } : {}),
    accessTokenTtl: int(env, 'ACCESS_TOKEN_TTL', 600, 60, 86_400),
    idTokenTtl: int(env, 'ID_TOKEN_TTL', 600, 60, 86_400),
    refreshTokenTtl: int(env, 'REFRESH_TOKEN_TTL', 2_592_000, 3600, 31_536_000),
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
