// Rich authorization requests (RFC 9396) at the backchannel endpoint: `authorization_details` as a form parameter
// (a JSON array, §3) or as the array claim of a signed request object (functions/core/request-object.ts turns it into
// the same JSON text). Checked: the common structure of §2 (an object per entry with a string `type`; `locations`,
// `actions`, `datatypes`, `privileges` arrays of strings; `identifier` a string), size limits, the types the client
// registered (§10 authorization_details_types) and, when the operator lists them, the types the server supports
// (CIBA_AUTHORIZATION_DETAILS_TYPES). Any failure is 400 invalid_authorization_details (§5).
// Entries are compared as whole JSON values (key order aside): the device may approve a subset of them (§3).
import { OAuthError } from './errors.ts';
import type { AuthorizationDetail } from './model.ts';

/** Longest accepted `authorization_details` JSON text, in characters. */
export const AUTHORIZATION_DETAILS_MAX_LENGTH = 8192;
/** Most entries accepted in one request. */
export const AUTHORIZATION_DETAILS_MAX_ENTRIES = 16;
/** Longest accepted `type` value (and registered type), in characters. */
export const AUTHORIZATION_DETAILS_TYPE_MAX = 256;
/** §2.2 common data fields that are arrays of strings. */
const STRING_ARRAYS = ['locations', 'actions', 'datatypes', 'privileges'] as const;

export type AuthorizationDetailsPolicy = {
  /** The client's registered authorization_details_types (§10); none registered: no authorization_details at all. */
  clientTypes: readonly string[] | undefined;
  /** The server's supported types (CIBA_AUTHORIZATION_DETAILS_TYPES); undefined: any type. */
  serverTypes: readonly string[] | undefined;
};

const invalid = (why: string) => new OAuthError('invalid_authorization_details', why);
/** A client-supplied value quoted in an error description (short; the error body strips what RFC 6749 forbids). */
const quote = (value: string) => JSON.stringify(value.slice(0, 64));

/** The JSON text of `value` with object keys sorted at every level: equal JSON values give equal text. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** §3: two entries are the same authorization detail when they are the same JSON value. */
export function sameDetail(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** A JSON number that does not survive a round trip (1e999 parses as Infinity): refused rather than altered. */
function hasNonFiniteNumber(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (Array.isArray(value)) return value.some(hasNonFiniteNumber);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasNonFiniteNumber);
  return false;
}

/** §2: one entry's common structure; returns it typed. `at` names it in errors (`entry 2`). */
function checkEntry(entry: unknown, at: string): AuthorizationDetail {
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry))
    throw invalid(`authorization_details ${at} must be a JSON object`);
  const fields = entry as Record<string, unknown>;
  const { type } = fields;
  if (typeof type !== 'string' || type === '') throw invalid(`authorization_details ${at} must have a string type`);
  if (type.length > AUTHORIZATION_DETAILS_TYPE_MAX)
    throw invalid(`authorization_details ${at} type must be at most ${AUTHORIZATION_DETAILS_TYPE_MAX} characters`);
  for (const name of STRING_ARRAYS) {
    const value = fields[name];
    if (value !== undefined && (!Array.isArray(value) || !value.every((v) => typeof v === 'string')))
      throw invalid(`authorization_details ${at} ${name} must be an array of strings`);
  }
  if (fields.identifier !== undefined && typeof fields.identifier !== 'string')
    throw invalid(`authorization_details ${at} identifier must be a string`);
  if (hasNonFiniteNumber(fields)) throw invalid(`authorization_details ${at} holds a number out of range`);
  return fields as AuthorizationDetail;
}

/**
 * The `authorization_details` of a backchannel request (undefined when absent), checked against the client's and
 * the server's types. `raw` is the JSON text (form parameter, or the request object's claim as functions/core/
 * request-object.ts passes it on).
 */
export function parseAuthorizationDetails(
  raw: string | undefined,
  policy: AuthorizationDetailsPolicy,
): AuthorizationDetail[] | undefined {
  if (raw === undefined) return undefined;
  if (raw.length > AUTHORIZATION_DETAILS_MAX_LENGTH)
    throw invalid(`authorization_details must be at most ${AUTHORIZATION_DETAILS_MAX_LENGTH} characters of JSON`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalid('authorization_details must be a JSON array');
  }
  if (!Array.isArray(parsed)) throw invalid('authorization_details must be a JSON array');
  if (parsed.length === 0) throw invalid('authorization_details must hold at least one entry');
  if (parsed.length > AUTHORIZATION_DETAILS_MAX_ENTRIES)
    throw invalid(`authorization_details must hold at most ${AUTHORIZATION_DETAILS_MAX_ENTRIES} entries`);
  const entries = parsed.map((entry, i) => checkEntry(entry, `entry ${i + 1}`));
  const seen = new Map<string, number>();
  entries.forEach((entry, i) => {
    const text = canonicalJson(entry);
    const first = seen.get(text);
    if (first !== undefined) throw invalid(`authorization_details entry ${i + 1} repeats entry ${first + 1}`);
    seen.set(text, i);
  });
  // §10: only types the client registered; §5: and, when the operator lists them, only types the server supports.
  if (!policy.clientTypes?.length) throw invalid('this client has not registered any authorization_details_types');
  for (const { type } of entries) {
    if (!policy.clientTypes.includes(type))
      throw invalid(`authorization_details type ${quote(type)} is not registered for this client`);
    if (policy.serverTypes && !policy.serverTypes.includes(type))
      throw invalid(`authorization_details type ${quote(type)} is not supported`);
  }
  return entries;
}
