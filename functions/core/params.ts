// Form-encoded request parameters (RFC 6749 §3.1/§3.2): no repeated parameters, empty values treated as absent.
import { OAuthError } from './errors.ts';

export type Params = ReadonlyMap<string, string>;

/** Parse an `application/x-www-form-urlencoded` body; a repeated parameter (even an empty one) is invalid_request. */
export function parseForm(contentType: string | undefined, body: string | undefined): Params {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') {
    throw new OAuthError('invalid_request', 'the request body must be application/x-www-form-urlencoded');
  }
  const seen = new Set<string>();
  const params = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(body ?? '')) {
    if (seen.has(name)) throw new OAuthError('invalid_request', `parameter ${name} is included more than once`);
    seen.add(name);
    if (value !== '') params.set(name, value);
  }
  return params;
}
