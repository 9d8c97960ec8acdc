// The operator hook (docs/notifications.md): a POST signed per Standard Webhooks 1.0, so the receiver can check
// who sent it and when. Pure: the signature and the headers; the notifier does the POST.
import { createHmac } from 'node:crypto';

/** `whsec_` + base64 of the key bytes (at least 24 bytes). */
export const WEBHOOK_SECRET_SYNTAX = /^whsec_[A-Za-z0-9+/]{32,}={0,2}$/;

export function webhookKey(secret: string): Buffer {
  if (!WEBHOOK_SECRET_SYNTAX.test(secret)) throw new Error('webhook secret must be whsec_ followed by base64');
  return Buffer.from(secret.slice('whsec_'.length), 'base64');
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. */
export function webhookSignature(secret: string, id: string, timestampS: number, body: string): string {
  const mac = createHmac('sha256', webhookKey(secret)).update(`${id}.${timestampS}.${body}`).digest('base64');
  return `v1,${mac}`;
}

export function webhookHeaders(secret: string, id: string, timestampS: number, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestampS),
    'webhook-signature': webhookSignature(secret, id, timestampS, body),
  };
}
