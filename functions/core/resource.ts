// Resource indicators (RFC 8707): the resources an access token is meant for. At the backchannel endpoint `resource`
// may be repeated in the form (functions/core/params.ts keeps a repeatable parameter as the JSON array of its values)
// or be a string or an array claim in a signed request object; the access token's `aud` is then those resources
// instead of this server. At the token endpoint `resource` may narrow them (§2.2). Bad values are 400 invalid_target.
import { OAuthError } from './errors.ts';

/** Most resources accepted in one request. */
export const RESOURCE_MAX_COUNT = 10;
/** Longest accepted resource URI, in characters. */
export const RESOURCE_MAX_LENGTH = 2048;

const invalid = (why: string) => new OAuthError('invalid_target', why);

/** RFC 3986 §4.3 absolute-URI (scheme ":" hier-part [ "?" query ]): visible ASCII, a scheme, no fragment (§2). */
function checkResource(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid('resource must be an absolute URI');
  if (value.length > RESOURCE_MAX_LENGTH) throw invalid(`resource must be at most ${RESOURCE_MAX_LENGTH} characters`);
  if (value.includes('#')) throw invalid('resource must not include a fragment');
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7E]+$/.test(value) || !URL.canParse(value))
    throw invalid('resource must be an absolute URI');
  return value;
}

/**
 * The requested resources (undefined when absent), each checked, duplicates dropped. `raw` is one URI (a request
 * object's string claim) or the JSON text of an array of them (repeated form parameter, request object array).
 */
export function parseResources(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  let values: unknown = raw;
  if (raw.startsWith('[')) {
    try {
      values = JSON.parse(raw);
    } catch {
      throw invalid('resource must be an absolute URI or an array of them');
    }
  }
  const list = Array.isArray(values) ? values : [values];
  if (list.length === 0) return undefined;
  if (list.length > RESOURCE_MAX_COUNT) throw invalid(`at most ${RESOURCE_MAX_COUNT} resource values are accepted`);
  return [...new Set(list.map(checkResource))];
}

/**
 * §2.2 at the token endpoint: `resource` (undefined: as granted) must name resources of the grant; the access token
 * is then for those only. A grant that named no resource cannot be pointed at one afterwards.
 */
export function narrowResources(granted: readonly string[] | undefined, raw: string | undefined): string[] | undefined {
  const requested = parseResources(raw);
  if (requested === undefined) return granted ? [...granted] : undefined;
  if (!granted?.length) throw invalid('the grant names no resource; resource can only narrow the granted ones');
  const foreign = requested.find((r) => !granted.includes(r));
  if (foreign !== undefined) throw invalid(`resource ${JSON.stringify(foreign.slice(0, 64))} was not granted`);
  return requested;
}

/** RFC 9068 §3 / RFC 8707 §2: the access token's `aud`: the resources (one as a string), else this server. */
export function accessTokenAudience(issuer: string, resources: readonly string[] | undefined): string | string[] {
  if (!resources?.length) return issuer;
  return resources.length === 1 ? resources[0]! : [...resources];
}
