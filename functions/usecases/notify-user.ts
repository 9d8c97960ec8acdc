// Reaching the user (docs/notifications.md): one device-topic notice → every channel that reaches the user (each of
// their devices with a Web Push subscription or an SNS endpoint; else SMS and e-mail when configured) plus the operator
// hook, sent in parallel. Each (notice, channel) is claimed in the ledger first, so a redelivered message notifies
// nobody twice; transient failures are retried here with short backoff until the request expires or the invocation's
// time runs out; a push service's 404/410 drops that subscription. Outcomes are logged per channel without addresses
// or secrets, and counted (NotificationsSent, NotificationsFailed, UsersUnreachable).
import { dropWebPushChannel, getUser, listUserDevices } from '../adapters/store.ts';
import { claimNotification, finishNotification } from '../adapters/store/notifications.ts';
import { postWebhook, publishToEndpoint, sendEmail, sendSms, sendWebPush } from '../adapters/notify-channels.ts';
import {
  devicePayload,
  fallbackMessage,
  isUnreachable,
  needsProfile,
  nextAttemptDelay,
  noticeDeadline,
  noticeKey,
  planTargets,
  pushTtlSeconds,
  snsPushMessage,
  webhookBody,
  type ChannelName,
  type ChannelOptions,
  type Notice,
  type SendResult,
  type Target,
} from '../core/user-notification.ts';
import { sha256b64u } from '../core/crypto.ts';
import { METRICS } from '../names.ts';
import { emitMetrics } from '../runtime/metrics.ts';
import { log } from '../runtime/log.ts';
import { config } from '../config.ts';

/** One HTTP attempt (push service, operator hook) may take this long, and never beyond the invocation's deadline. */
const HTTP_TIMEOUT_MS = 5000;

export type NotifyOptions = {
  /** The SNS message id (the idempotency key of enrolment notices). */
  messageId: string;
  /** When SNS accepted the message (epoch ms). */
  receivedAt: number;
  /** No attempt starts after this (epoch ms): the invocation's time limit less a margin. */
  deadline: number;
  /** The invocation cannot run past this (its timeout): the ledger's claims last until then. */
  leaseUntil: number;
};

export type ChannelOutcome = {
  key: string;
  channel: ChannelName;
  kind: SendResult['kind'] | 'skipped';
  attempts: number;
  detail: string;
};

/** What the operator configured (functions/settings.ts), checked once per process. */
type Channels = { options: ChannelOptions; webhookUrl?: string; emailFrom?: string; problem?: string };
let channels: Channels | undefined;
function configuredChannels(): Channels {
  if (channels) return channels;
  const c = config();
  let webhookUrl = c.notifyWebhookUrl;
  let problem: string | undefined;
  if (webhookUrl && !c.localMode && !webhookUrl.startsWith('https://')) {
    problem = 'CIBA_NOTIFY_WEBHOOK_URL must be https';
    webhookUrl = undefined;
  } else if (webhookUrl && !c.notifyWebhookSecret && !c.notifyWebhookSecretArn) {
    problem = 'CIBA_NOTIFY_WEBHOOK_URL is set without a secret';
    webhookUrl = undefined;
  }
  if (problem) log.error('operator hook not configured properly; not used', { problem });
  channels = {
    options: { webhook: Boolean(webhookUrl), sms: c.notifySms === 'on', email: Boolean(c.notifyEmailFrom) },
    ...(webhookUrl ? { webhookUrl } : {}),
    ...(c.notifyEmailFrom ? { emailFrom: c.notifyEmailFrom } : {}),
  };
  return channels;
}

/** Fields that name a notice in logs: the request id, or the enrolled device; never an address or a token. */
function noticeFields(notice: Notice): Record<string, unknown> {
  return notice.type === 'ciba.authentication_request'
    ? { notice: notice.type, requestId: notice.requestId, sub: notice.sub }
    : { notice: notice.type, enrolledDevice: notice.deviceId, sub: notice.sub };
}

/** Sends `notice` to every channel of its user; resolves when every channel has ended (sent, failed or skipped). */
export async function notifyUser(
  notice: Notice,
  o: NotifyOptions,
): Promise<{ outcomes: ChannelOutcome[]; unreachable: boolean }> {
  const now = Date.now();
  const noticeEnd = noticeDeadline(notice, o.receivedAt);
  if (noticeEnd <= now) {
    log.info('user notification skipped: the notice has expired', noticeFields(notice));
    return { outcomes: [], unreachable: false };
  }
  const { options } = configuredChannels();
  const devices = await listUserDevices(notice.sub);
  const user = needsProfile(notice, devices, options) ? await getUser(notice.sub) : undefined;
  const plan = planTargets(notice, devices, user, options);
  const key = noticeKey(notice, o.messageId);
  const deadline = Math.min(noticeEnd, o.deadline);

  const settled = await Promise.allSettled(
    plan.targets.map((target) => deliver(notice, target, { key, deadline, noticeEnd, leaseUntil: o.leaseUntil })),
  );
  const outcomes = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const unreachable = settled.every((s) => s.status === 'fulfilled') && isUnreachable(notice, plan, outcomes);
  const summary = {
    ...noticeFields(notice),
    channels: Object.fromEntries(outcomes.map((x) => [x.key, x.kind])),
    pollingDevices: plan.pollingDevices,
  };
  if (unreachable) {
    log.error('user could not be reached', summary);
    emitMetrics({ [METRICS.usersUnreachable]: { value: 1, unit: 'Count' } }, { notice: notice.type });
  } else log.info('user notification dispatched', summary);
  // A store or programming error: rethrown after every channel ended, so Lambda retries the message and the ledger
  // lets the retry do only what is left.
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failure) throw failure.reason;
  return { outcomes, unreachable };
}

type Context = { key: string; deadline: number; noticeEnd: number; leaseUntil: number };

async function deliver(notice: Notice, target: Target, ctx: Context): Promise<ChannelOutcome> {
  const base = { key: target.key, channel: target.channel };
  const fields = {
    ...noticeFields(notice),
    channel: target.channel,
    ...('deviceId' in target ? { device: target.deviceId } : {}),
  };
  const started = Date.now();
  if (!(await claimNotification(ctx.key, target.key, started, Math.max(1, ctx.leaseUntil - started), ctx.noticeEnd))) {
    log.info('user notification already sent or being sent; skipped', fields);
    return { ...base, kind: 'skipped', attempts: 0, detail: 'already claimed' };
  }
  let attempts = 0;
  let result: SendResult;
  for (;;) {
    attempts++;
    result = await sendOnce(notice, target, ctx).catch(
      (e: unknown): SendResult => ({ kind: 'retry', detail: `error (${e instanceof Error ? e.name : typeof e})` }),
    );
    if (result.kind !== 'retry') break;
    const delay = nextAttemptDelay(attempts, Date.now(), ctx.deadline);
    if (delay === undefined) break;
    log.debug('user notification attempt failed; retrying', {
      ...fields,
      attempts,
      result: result.detail,
      delayMs: delay,
    });
    await new Promise((r) => setTimeout(r, delay));
  }
  if (result.kind === 'gone' && target.channel === 'webpush') {
    await dropWebPushChannel(target.deviceId, target.subscription.endpoint);
  }
  await finishNotification(ctx.key, target.key, result.kind === 'delivered' ? 'sent' : 'failed', Date.now());
  const detail = result.kind === 'retry' ? `${result.detail}; gave up after ${attempts} attempts` : result.detail;
  const done = { ...fields, attempts, result: detail, ms: Date.now() - started };
  if (result.kind === 'delivered') {
    log.info('user notification sent', done);
    emitMetrics({ [METRICS.notificationsSent]: { value: 1, unit: 'Count' } }, { channel: target.channel });
  } else {
    (result.kind === 'gone' ? log.info : log.warn)(
      result.kind === 'gone' ? 'web push subscription expired; channel dropped' : 'user notification failed',
      done,
    );
    emitMetrics({ [METRICS.notificationsFailed]: { value: 1, unit: 'Count' } }, { channel: target.channel });
  }
  return { ...base, kind: result.kind, attempts, detail };
}

function sendOnce(notice: Notice, target: Target, ctx: Context): Promise<SendResult> {
  const timeoutMs = Math.max(1000, Math.min(HTTP_TIMEOUT_MS, ctx.leaseUntil - Date.now() - 1000));
  const payload = devicePayload(notice);
  const cfg = configuredChannels();
  switch (target.channel) {
    case 'webpush':
      return sendWebPush(target.subscription, JSON.stringify(payload), {
        ttlSeconds: pushTtlSeconds(notice, Date.now()),
        urgency: notice.type === 'ciba.authentication_request' ? 'high' : 'normal',
        timeoutMs,
      });
    case 'sns':
      return publishToEndpoint(target.endpointArn, snsPushMessage(payload));
    case 'webhook':
      // Standard Webhooks: one id per notification, the same on every retry.
      return postWebhook(cfg.webhookUrl!, `msg_${sha256b64u(ctx.key).slice(0, 32)}`, webhookBody(notice), timeoutMs);
    case 'sms':
    case 'email': {
      if (notice.type !== 'ciba.authentication_request')
        return Promise.resolve({ kind: 'rejected', detail: 'no fallback for this notice' });
      const message = fallbackMessage(notice, config().issuer);
      return target.channel === 'sms'
        ? sendSms(target.phoneNumber, message.text)
        : sendEmail(cfg.emailFrom!, target.address, message.subject, message.text);
    }
  }
}
