// The records the protocol works on. Plain data: the DynamoDB adapter (functions/adapters/store.ts) maps them to items.
import type { JWK } from 'jose';

export const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';

/** RFC 6749 Appendix A.1 client_id = *VSCHAR (%x20-7E); at most 128 characters here. */
export const CLIENT_ID_SYNTAX = /^[\x20-\x7E]{1,128}$/;
/** Device ids (seed file, device assertion `iss`): 1-128 visible ASCII characters. */
export const DEVICE_ID_SYNTAX = /^[\x21-\x7E]{1,128}$/;
export const REFRESH_GRANT = 'refresh_token';

export type DeliveryMode = 'poll' | 'ping' | 'push';
export type ClientAuthMethod =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'client_secret_jwt'
  | 'private_key_jwt'
  | 'tls_client_auth'
  | 'self_signed_tls_client_auth';
export type SigningAlg = 'RS256' | 'PS256' | 'ES256';

/** A registered client: RFC 7591 and CIBA Core §4 metadata names. */
export type Client = {
  client_id: string;
  client_name?: string;
  token_endpoint_auth_method: ClientAuthMethod;
  /** Salted hash of client_secret (functions/core/crypto.ts), for client_secret_basic / client_secret_post. */
  client_secret_hash?: string;
  /** client_secret_jwt only: the secret sealed (functions/adapters/sealer.ts), since HS256 needs the secret itself. */
  client_secret_sealed?: string;
  /** Public keys for private_key_jwt, self_signed_tls_client_auth, signed requests and login_hint_token: one of the two. */
  jwks?: { keys: JWK[] };
  jwks_uri?: string;
  /** RFC 7591: the alg of private_key_jwt / client_secret_jwt assertions. */
  token_endpoint_auth_signing_alg?: string;
  /** RFC 8705 §2.1.2 tls_client_auth: exactly one of these identifies the client's certificate. */
  tls_client_auth_subject_dn?: string;
  tls_client_auth_san_dns?: string;
  tls_client_auth_san_uri?: string;
  tls_client_auth_san_ip?: string;
  tls_client_auth_san_email?: string;
  /** RFC 8705 §3: access tokens bound to the client's certificate (cnf.x5t#S256). */
  tls_client_certificate_bound_access_tokens?: boolean;
  /** RFC 9449 §5.2: every token request must carry a DPoP proof; access tokens are DPoP-bound (cnf.jkt). */
  dpop_bound_access_tokens?: boolean;
  /** RFC 9396 §10: the authorization details types the client may request. */
  authorization_details_types?: string[];
  /** FAPI-CIBA profile: signed requests, private_key_jwt or mTLS, PS256/ES256, no push, certificate-bound tokens. */
  security_profile?: 'fapi-ciba';
  grant_types: string[];
  /** Space-separated scopes the client may request. */
  scope: string;
  backchannel_token_delivery_mode: DeliveryMode;
  backchannel_client_notification_endpoint?: string;
  backchannel_authentication_request_signing_alg?: SigningAlg;
  backchannel_user_code_parameter: boolean;
  /** This client's backchannel request quota, "<count>/<seconds>" (else the server default CIBA_RATE_LIMIT_CLIENT). */
  backchannel_rate_limit?: string;
  id_token_signed_response_alg: SigningAlg;
  /** RFC 7591 §2 fields kept and returned to a dynamically registered client (not used by the CIBA flows). */
  redirect_uris?: string[];
  contacts?: string[];
  logo_uri?: string;
  client_uri?: string;
  policy_uri?: string;
  tos_uri?: string;
  software_id?: string;
  software_version?: string;
  /** RFC 7591 §3.2.1: epoch seconds of its registration, for dynamically registered clients. */
  client_id_issued_at?: number;
  /** RFC 7592: SHA-256 of the registration access token of a dynamically registered client. */
  registration_access_token_hash?: string;
};

export type User = {
  sub: string;
  email?: string;
  email_verified?: boolean;
  phone_number?: string;
  phone_number_verified?: boolean;
  name?: string;
  given_name?: string;
  family_name?: string;
  /** scrypt hash of the user code (CIBA §7.1 user_code); never the code itself. */
  user_code_hash?: string;
  /** Further login identifiers by name (e.g. `personal_number`): `login_hint` matches their values, unique per user. */
  identifiers?: Record<string, string>;
  /** A disabled user is refused at the backchannel endpoint, their devices cannot authenticate, no tokens are issued. */
  disabled?: boolean;
};

export type Device = {
  device_id: string;
  sub: string;
  /** Public key of the authentication device (ES256, P-256). */
  jwk: JWK;
  /** What the user calls it (at most 64 characters). */
  name?: string;
  /** Epoch ms of its enrolment (or its first seeding). */
  created_at?: number;
  /** How it is reached (core/device-channel.ts); absent: it polls the device API itself. */
  channel?: StoredChannel;
};

/**
 * A device channel as stored: a Web Push subscription as the browser gave it, or the SNS platform endpoint made
 * from a native app's push token at enrolment (the token itself is not kept).
 */
export type StoredChannel =
  | { type: 'webpush'; subscription: { endpoint: string; keys: { p256dh: string; auth: string } } }
  | { type: 'sns'; platform: 'fcm' | 'apns' | 'apns_sandbox'; endpoint_arn: string };

/**
 * One entry of an RFC 9396 `authorization_details` array: a `type` and the §2.2 common fields, plus whatever the type
 * defines (any JSON value).
 */
export type AuthorizationDetail = {
  type: string;
  locations?: string[];
  actions?: string[];
  datatypes?: string[];
  identifier?: string;
  privileges?: string[];
  [field: string]: unknown;
};

export type AuthRequestStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'failed' | 'redeemed';

/**
 * One backchannel authentication request. Keyed by `id` = base64url(SHA-256(auth_req_id)): the public,
 * non-secret request id (execution name, device API id). The auth_req_id itself is never stored.
 */
export type AuthRequest = {
  id: string;
  client_id: string;
  /** Copied at creation so the device list needs no extra read. */
  client_name?: string;
  sub: string;
  scope: string;
  acr_values?: string;
  binding_message?: string;
  /** RFC 9396: what the client asked for beyond scope (stored as JSON text: functions/adapters/store/requests.ts). */
  authorization_details?: AuthorizationDetail[];
  /** RFC 8707: the resources the access token is for (its `aud`); absent: this server. */
  resource?: string[];
  /**
   * What the user approved when narrower than the request (device API, RFC 9396 §3): a subset of `scope` with
   * openid, a subset of `authorization_details`. Absent: everything requested.
   */
  granted_scope?: string;
  granted_authorization_details?: AuthorizationDetail[];
  mode: DeliveryMode;
  status: AuthRequestStatus;
  /** Epoch milliseconds. */
  created_at: number;
  expires_at: number;
  /** Current polling interval in seconds (raised by slow_down) and the earliest next poll (epoch ms). */
  interval: number;
  next_poll_at: number;
  /**
   * Token-endpoint polls counted so far, and how many had been counted when the user decided: the first poll counted
   * after an approval is the redemption (core/token-grant.ts isRedeemed), so a poll and a redemption are one write.
   */
  polls?: number;
  decided_polls?: number;
  /** Set when the user decided: epoch ms, and the method they used. */
  decided_at?: number;
  auth_time?: number;
  amr?: string[];
  /** Step Functions callback token (server-side only; never leaves the table). */
  task_token?: string;
  /**
   * Its user is disabled: the request waits, and no approval can land on it, until they are enabled again (a denial
   * still can). Set on the user's pending requests by the disable, removed by the enable (docs/admin.md).
   */
  held?: boolean;
  // ---- ping and push delivery (CIBA §10.2, §10.3); the secrets leave the row once delivered, and stay (sealed) until
  // the row's TTL when the delivery failed for good, so an operator can redrive it (docs/operations.md, dead letters) ----
  /** Sealed {auth_req_id, client_notification_token} (functions/adapters/sealer.ts): needed to notify the client. */
  delivery_secrets?: string;
  /**
   * Sealed push token set, minted once at the first push attempt and re-sent unchanged on retries (after a redrive, a
   * set whose access token has expired is replaced by a fresh one and the old set's refresh token family revoked).
   */
  push_tokens?: string;
  /** Callback token of the workflow's Deliver task for the current attempt. */
  delivery_task_token?: string;
  /** Attempts so far, and when the first one started (epoch ms). */
  delivery_attempts?: number;
  delivery_started_at?: number;
  delivery_status?: 'delivered' | 'failed';
  delivered_at?: number;
  /** A delivery that failed for good: the workflow error (Delivery.Rejected / Delivery.Exhausted) and its cause. */
  delivery_error?: string;
  delivery_cause?: string;
  /** Times an operator redrove a failed delivery (`npm run admin -- dead-letters redrive`), the last one when (epoch ms). */
  delivery_redrives?: number;
  delivery_redriven_at?: number;
  /**
   * Ping only: an approved request stays redeemable until then (epoch ms) even past expires_at, when the ping went out
   * late (a retried delivery), so the client is never told about tokens it can no longer get.
   */
  redeemable_until?: number;
  // ---- the grant's first refresh token (poll and ping; docs/tokens.md, "Where refresh tokens live") ----
  /** Set at creation when the client gets refresh tokens: their lifetime (s). An approval keeps the row that much longer. */
  refresh_ttl_s?: number;
  /**
   * SHA-256 of the refresh token the redemption hands out: every counted poll writes a fresh one, and no poll is
   * counted after the redemption, so the redeeming poll's stays (adapters/store/requests.ts countPoll).
   */
  refresh_token_hash?: string;
  /** RFC 9449: the DPoP key the redemption bound the grant to, written the same way. */
  refresh_jkt?: string;
  /** When the last poll was counted (epoch ms); for a redeemed request, when its refresh token was issued. */
  polled_at?: number;
  /** When that refresh token was used (rotated, epoch ms): presented again, its grant is revoked. */
  refresh_used_at?: number;
};

/** Public view of a pending request for the authentication device (device API, docs/device-api.md). */
export type DeviceRequestView = {
  id: string;
  client_id: string;
  client_name?: string;
  binding_message?: string;
  scope: string;
  acr_values?: string;
  /** RFC 9396: the requested authorization details, when there are any. */
  authorization_details?: AuthorizationDetail[];
  created_at: number;
  expires_at: number;
};
