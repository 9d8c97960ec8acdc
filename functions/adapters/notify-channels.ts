// The channels that reach a user (docs/notifications.md): Web Push (RFC 8030, payload encrypted per RFC 8291 by the
// web-push library, VAPID from ./vapid.ts), SNS mobile push to a platform endpoint, SMS through SNS, e-mail through
// SES v2, and the operator hook (Standard Webhooks). Each send is one attempt that never throws for what the network
// or the service did: that is its SendResult (functions/core/user-notification.ts). HTTP sends never follow redirects
// and give up after a timeout. Nothing here logs: the use case logs outcomes without addresses or secrets.
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { PublishCommand, type PublishCommandInput } from '@aws-sdk/client-sns';
import { awsClient } from './aws.ts';
import { sns } from './sns.ts';
import { vapidAuthorization } from './vapid.ts';
import { config } from '../config.ts';
import { webhookHeaders, WEBHOOK_SECRET_SYNTAX } from '../core/webhook.ts';
import {
  classifyAwsError,
  classifyNoAnswer,
  classifyPushService,
  classifyWebhook,
  type SendResult,
  type WebPushTarget,
} from '../core/user-notification.ts';

// Each channel's client is created on first use (SNS: ./sns.ts, Secrets Manager, SES). The SDK clients are imported statically:
// a dynamic import of one would make esbuild wrap the SDK core the dispatcher loads at start anyway in lazy
// initialisers, which V8 parses twice at every cold start (see ./aws.ts). web-push is CommonJS: esbuild wraps only it,
// evaluated on the first Web Push, so it stays behind `import()` (docs/operations.md, "Cold starts").
const secrets = /* @__PURE__ */ awsClient('SecretsManager', () => new SecretsManagerClient({}));
const ses = /* @__PURE__ */ awsClient('SESv2', () => new SESv2Client({}));
let webPushLibrary: Promise<typeof import('web-push')> | undefined;
const webPush = () => {
  webPushLibrary ??= import('web-push').then((mod) => mod.default ?? mod);
  return webPushLibrary;
};

/** Why fetch gave no answer, in a few words (never the URL, which may carry a push service's token). */
function noAnswerCode(e: unknown, timeoutMs: number): string {
  const err = e as { name?: string; cause?: { code?: string } };
  return err.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : (err.cause?.code ?? err.name ?? 'error');
}

/** Reads and drops the answer's body (not used), so the connection is released. */
async function discard(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

// ---- Web Push -------------------------------------------------------------------------------------------------------

export type WebPushOptions = { ttlSeconds: number; urgency: 'normal' | 'high'; timeoutMs: number };

/** One Web Push message: RFC 8291 aes128gcm body, RFC 8292 VAPID authorization, RFC 8030 TTL and Urgency. */
export async function sendWebPush(
  subscription: WebPushTarget['subscription'],
  payload: string,
  options: WebPushOptions,
): Promise<SendResult> {
  // A VAPID signing failure (KMS) is thrown: the caller retries it like any other transient error.
  const authorization = await vapidAuthorization(subscription.endpoint);
  const webpush = await webPush();
  let request: { headers: Record<string, string>; body: Buffer };
  try {
    const details = webpush.generateRequestDetails(subscription, payload, {
      TTL: options.ttlSeconds,
      urgency: options.urgency,
      contentEncoding: 'aes128gcm',
      headers: { Authorization: authorization },
    });
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(details.headers)) {
      // fetch sets Content-Length itself.
      if (name.toLowerCase() !== 'content-length') headers[name] = String(value);
    }
    request = { headers, body: details.body };
  } catch (e) {
    // Keys the library cannot encrypt for (validated at enrolment, so not expected) will not work later either.
    return {
      kind: 'rejected',
      detail: `cannot encrypt for this subscription (${e instanceof Error ? e.name : 'error'})`,
    };
  }
  let response: Response;
  try {
    response = await fetch(subscription.endpoint, {
      method: 'POST',
      redirect: 'manual',
      headers: request.headers,
      body: request.body,
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (e) {
    return classifyNoAnswer('the push service', noAnswerCode(e, options.timeoutMs));
  }
  await discard(response);
  return classifyPushService(response.status);
}

// ---- The operator hook ---------------------------------------------------------------------------------------------

const SECRET_REUSE_MS = 5 * 60_000;
let secret: { value: Promise<string>; until: number } | undefined;

/** The hook's secret could not be had; `message` says why (never the secret). */
export class WebhookSecretError extends Error {
  override readonly name = 'WebhookSecretError';
}

/**
 * The hook's signing secret: CIBA_NOTIFY_WEBHOOK_SECRET on the local stack; on AWS the Secrets Manager secret
 * CIBA_NOTIFY_WEBHOOK_SECRET_ARN names (read at most every 5 minutes per container, so a rotation takes effect soon).
 */
export function webhookSecret(now = Date.now()): Promise<string> {
  if (secret && secret.until > now) return secret.value;
  const c = config();
  const value = (async () => {
    const v = c.notifyWebhookSecret || (c.notifyWebhookSecretArn ? await readSecret(c.notifyWebhookSecretArn) : '');
    if (!v) throw new WebhookSecretError('no webhook secret is configured');
    if (!WEBHOOK_SECRET_SYNTAX.test(v)) throw new WebhookSecretError('the webhook secret is not whsec_ + base64');
    return v;
  })();
  const entry = { value, until: now + SECRET_REUSE_MS };
  secret = entry;
  value.catch(() => {
    if (secret === entry) secret = undefined; // try again next time
  });
  return value;
}

/** GetSecretValue. Only a function given a secret ARN creates the client; the local stack never does. */
async function readSecret(arn: string): Promise<string> {
  const out = await secrets().send(new GetSecretValueCommand({ SecretId: arn }));
  if (!out.SecretString) throw new WebhookSecretError('the webhook secret has no SecretString');
  return out.SecretString.trim();
}

/**
 * One signed POST to the operator hook (Standard Webhooks 1.0: `webhook-id` stays the same across retries of one
 * notification, `webhook-timestamp` and `webhook-signature` are those of each attempt).
 */
export async function postWebhook(
  url: string,
  messageId: string,
  body: Record<string, unknown>,
  timeoutMs: number,
): Promise<SendResult> {
  const text = JSON.stringify(body);
  let headers: Record<string, string>;
  try {
    headers = {
      ...webhookHeaders(await webhookSecret(), messageId, Math.floor(Date.now() / 1000), text),
      'user-agent': 'ciba-server',
    };
  } catch (e) {
    const why = e instanceof WebhookSecretError ? e.message : e instanceof Error ? e.name : 'error';
    return { kind: 'retry', detail: `webhook secret unavailable (${why})` };
  }
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers,
      body: text,
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    return classifyNoAnswer('the webhook', noAnswerCode(e, timeoutMs));
  }
  await discard(response);
  return classifyWebhook(response.status);
}

// ---- SNS: mobile push and SMS --------------------------------------------------------------------------------------

async function snsSend(input: PublishCommandInput, what: string): Promise<SendResult> {
  try {
    await sns().send(new PublishCommand(input));
    return { kind: 'delivered', detail: `accepted by SNS (${what})` };
  } catch (e) {
    return classifyAwsError(e);
  }
}

/** SNS mobile push to a platform endpoint (FCM, APNs), `message` in MessageStructure json (core snsPushMessage). */
export function publishToEndpoint(endpointArn: string, message: string): Promise<SendResult> {
  return snsSend({ TargetArn: endpointArn, Message: message, MessageStructure: 'json' }, 'push');
}

/** A transactional SMS. */
export function sendSms(phoneNumber: string, text: string): Promise<SendResult> {
  return snsSend(
    {
      PhoneNumber: phoneNumber,
      Message: text,
      MessageAttributes: { 'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' } },
    },
    'SMS',
  );
}

// ---- SES: e-mail ---------------------------------------------------------------------------------------------------

/** One plain-text e-mail through SES v2 (the client is created only when e-mail is configured and used). */
export async function sendEmail(from: string, to: string, subject: string, text: string): Promise<SendResult> {
  try {
    await ses().send(
      new SendEmailCommand({
        FromEmailAddress: from,
        Destination: { ToAddresses: [to] },
        Content: {
          Simple: {
            Subject: { Data: subject, Charset: 'UTF-8' },
            Body: { Text: { Data: text, Charset: 'UTF-8' } },
          },
        },
      }),
    );
    return { kind: 'delivered', detail: 'accepted by SES' };
  } catch (e) {
    return classifyAwsError(e);
  }
}
