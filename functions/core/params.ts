// Form-encoded request parameters (RFC 6749 §3.1/§3.2): no repeated parameters, empty values treated as absent.
// The exception: a parameter its spec lets repeat (RFC 8707 `resource`), kept as the JSON array of its values.
import { OAuthError } from './errors.ts';

export type Params = ReadonlyMap<string, string>;

/**
 * Parse an `application/x-www-form-urlencoded` body; a repeated parameter (even an empty one) is invalid_request,
 * except those named in `repeatable`, whose non-empty values are kept as one JSON array text (even a single one).
 */
export function parseForm(
  contentType: string | undefined,
  body: string | undefined,
  repeatable: readonly string[] = [],
): Params {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const seen = new Set<string>();
  const params = new Map<string, string>();
  const lists = new Map<string, string[]>();
  for (const [name, value] of new URLSearchParams(body ?? '')) {
    if (repeatable.includes(name)) {
      if (value !== '') lists.set(name, [...(lists.get(name) ?? []), value]);
      continue;
    }
    if (seen.has(name)) throw new OAuthError('invalid_request', `parameter ${name} is included more than once`);
    seen.add(name);
    if (value !== '') params.set(name, value);
  }
  for (const [name, values] of lists) params.set(name, JSON.stringify(values));
  return params;
}
