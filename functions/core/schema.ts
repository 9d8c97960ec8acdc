// One schema for what operators and clients register: client metadata (RFC 7591 + CIBA Core §4 + RFC 8705 names),
// users and devices. Used by the seed loader, dynamic registration and the admin CLI, through valibot.
// The schema checks names and types; the rules that relate fields to each other (an auth method and its keys, the
// FAPI-CIBA profile, ...) are in client-metadata.ts. Errors name the field's path and, for a misspelt name, the
// field that was probably meant.
import * as v from 'valibot';

const text = (max: number) =>
  v.pipe(
    v.string(),
    v.minLength(1, 'must be a non-empty string'),
    v.maxLength(max, `must be at most ${max} characters`),
  );
const jwk = v.looseObject({ kty: v.string() });

/** Client metadata this server understands. Every field is optional here; client-metadata.ts decides what is required. */
export const CLIENT_FIELDS = {
  client_id: text(128),
  client_secret: text(512),
  client_name: text(200),
  token_endpoint_auth_method: v.string(),
  token_endpoint_auth_signing_alg: v.string(),
  jwks: v.strictObject({ keys: v.array(jwk) }),
  jwks_uri: text(2048),
  grant_types: v.array(v.string()),
  scope: v.string(),
  backchannel_token_delivery_mode: v.string(),
  backchannel_client_notification_endpoint: text(2048),
  backchannel_authentication_request_signing_alg: v.string(),
  backchannel_user_code_parameter: v.boolean(),
  backchannel_rate_limit: v.string(),
  id_token_signed_response_alg: v.string(),
  tls_client_auth_subject_dn: text(1024),
  tls_client_auth_san_dns: text(253),
  tls_client_auth_san_uri: text(2048),
  tls_client_auth_san_ip: text(64),
  tls_client_auth_san_email: text(320),
  tls_client_certificate_bound_access_tokens: v.boolean(),
  // RFC 9449 §5.2 and RFC 9396 §10.
  dpop_bound_access_tokens: v.boolean(),
  authorization_details_types: v.pipe(v.array(text(256)), v.maxLength(32, 'must hold at most 32 types')),
  security_profile: v.string(),
  // RFC 7591 §2 fields a registration may carry; kept and returned, not used by the CIBA flows.
  redirect_uris: v.array(text(2048)),
  response_types: v.array(v.string()),
  contacts: v.array(text(320)),
  logo_uri: text(2048),
  client_uri: text(2048),
  policy_uri: text(2048),
  tos_uri: text(2048),
  software_id: text(256),
  software_version: text(64),
} as const;

export type ClientInput = { [K in keyof typeof CLIENT_FIELDS]?: v.InferOutput<(typeof CLIENT_FIELDS)[K]> };

const optionalAll = <T extends Record<string, v.GenericSchema>>(fields: T) =>
  Object.fromEntries(Object.entries(fields).map(([k, s]) => [k, v.optional(s)])) as {
    [K in keyof T]: v.OptionalSchema<T[K], undefined>;
  };

export const clientSchema = v.strictObject(optionalAll(CLIENT_FIELDS));
/** Registration (RFC 7591 §2): metadata the server does not understand is ignored, not refused. */
export const registrationSchema = v.object(optionalAll(CLIENT_FIELDS));

/** Login identifiers beyond e-mail and phone (a personal number, an employee number): `login_hint` matches them. */
const IDENTIFIER_NAME = /^[a-z][a-z0-9_]{0,31}$/;

export const deviceSchema = v.strictObject({
  device_id: text(128),
  jwk: v.looseObject({ kty: v.string() }),
  name: v.optional(text(64)),
  channel: v.optional(v.looseObject({ type: v.string() })),
});

export const userSchema = v.strictObject({
  sub: text(255),
  email: v.optional(text(320)),
  email_verified: v.optional(v.boolean()),
  phone_number: v.optional(text(32)),
  phone_number_verified: v.optional(v.boolean()),
  name: v.optional(text(200)),
  given_name: v.optional(text(100)),
  family_name: v.optional(text(100)),
  user_code: v.optional(text(64)),
  disabled: v.optional(v.boolean()),
  identifiers: v.optional(
    v.pipe(
      v.record(v.pipe(v.string(), v.regex(IDENTIFIER_NAME, 'must be a lowercase name (a-z, 0-9, _)')), text(128)),
      v.check((ids) => Object.keys(ids).length <= 10, 'must hold at most 10 identifiers'),
    ),
  ),
  devices: v.optional(v.array(deviceSchema)),
});

export const seedSchema = v.strictObject({
  clients: v.optional(v.array(v.looseObject({}))),
  users: v.optional(v.array(v.looseObject({}))),
});

export type UserInput = v.InferOutput<typeof userSchema>;
export type DeviceInput = v.InferOutput<typeof deviceSchema>;

/** A schema violation: `path` is where (e.g. `clients[2].token_endpoint_auth_metod`), `message` what. */
export class SchemaError extends Error {
  override readonly name = 'SchemaError';
  readonly path: string;
  readonly field: string | undefined;
  constructor(path: string, field: string | undefined, message: string) {
    super(message);
    this.path = path;
    this.field = field;
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = row[j]!;
      row[j] = next;
    }
  }
  return row[b.length]!;
}

/** The known name closest to a misspelt one, if it is close enough to be a likely typo. */
export function suggest(name: string, known: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (!best || d < best.d) best = { name: k, d };
  }
  return best && best.d <= Math.max(2, Math.floor(name.length / 4)) ? best.name : undefined;
}

function pathOf(prefix: string, issue: v.BaseIssue<unknown>): { path: string; field: string | undefined } {
  let path = prefix;
  let field: string | undefined;
  for (const item of issue.path ?? []) {
    const key = (item as { key?: unknown }).key;
    if (typeof key === 'number') path += `[${key}]`;
    else if (typeof key === 'string') {
      path += path ? `.${key}` : key;
      field = key;
    }
  }
  return { path, field };
}

/** The keys a strict object schema knows at an issue's place (for suggestions). */
function knownKeys(schema: v.GenericSchema, issue: v.BaseIssue<unknown>): string[] {
  let node: unknown = schema;
  for (const item of (issue.path ?? []).slice(0, -1)) {
    const key = (item as { key?: unknown }).key;
    const unwrap = (s: unknown): unknown => {
      const x = s as { type?: string; wrapped?: unknown; item?: unknown; pipe?: unknown[] };
      if (x?.type === 'optional') return unwrap(x.wrapped);
      if (x?.pipe && x.type !== 'object' && x.type !== 'strict_object') return unwrap(x.pipe[0]);
      return s;
    };
    node = unwrap(node);
    const n = node as { entries?: Record<string, unknown>; item?: unknown };
    node = typeof key === 'number' ? n.item : n.entries?.[String(key)];
  }
  const x = node as { type?: string; wrapped?: unknown; entries?: Record<string, unknown> };
  const target = (x?.type === 'optional' ? x.wrapped : node) as { entries?: Record<string, unknown> };
  return Object.keys(target?.entries ?? {});
}

/**
 * Validates `value` against `schema`; throws a SchemaError for the first problem, naming its path (under `prefix`)
 * and, for an unknown field, the likely intended one. Returns the typed value.
 */
export function validate<S extends v.GenericSchema>(schema: S, value: unknown, prefix = ''): v.InferOutput<S> {
  const result = v.safeParse(schema, value, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  const { path, field } = pathOf(prefix, issue);
  const where = path || 'the document';
  if (issue.type === 'strict_object' && issue.expected === 'never' && field !== undefined) {
    const hint = suggest(field, knownKeys(schema, issue));
    throw new SchemaError(path, field, `${where} is not a known field${hint ? ` (did you mean ${hint}?)` : ''}`);
  }
  // Type mismatches say what was expected; validations (length, pattern, checks) carry their own "must …" message.
  const what = issue.kind === 'schema' ? `must be ${issue.expected}, got ${issue.received}` : issue.message;
  throw new SchemaError(path, field, `${where} ${what}`);
}
