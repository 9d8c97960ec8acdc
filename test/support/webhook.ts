// Standard Webhooks 1.0 verification as an operator's receiver does it, written here from the specification (not with
// functions/core/webhook.ts, so the tests do not trust the code under test): the signed content is
// `<webhook-id>.<webhook-timestamp>.<body>`, HMAC-SHA256 with the secret's base64 bytes after `whsec_`, sent as one
// or more space-separated `v1,<base64>` in `webhook-signature`; the timestamp must be recent.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Throws unless the request is signed with `secret` within `toleranceS` of now; returns its id and timestamp. */
export function verifyWebhook(
  headers: IncomingHttpHeaders,
  body: string,
  secret: string,
  toleranceS = 300,
): { id: string; timestamp: number } {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const signatures = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof timestamp !== 'string' || typeof signatures !== 'string')
    throw new Error('webhook-id, webhook-timestamp and webhook-signature are required');
  const ts = Number(timestamp);
  if (!/^\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - ts) > toleranceS)
    throw new Error(`webhook-timestamp ${timestamp} is not within ${toleranceS} s of now`);
  if (!secret.startsWith('whsec_')) throw new Error('the secret must start with whsec_');
  const expected = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(`${id}.${timestamp}.${body}`)
    .digest();
  const ok = signatures.split(' ').some((sig) => {
    const [version, value] = sig.split(',');
    if (version !== 'v1' || !value) return false;
    const given = Buffer.from(value, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!ok) throw new Error('no v1 signature matches');
  return { id, timestamp: ts };
}
