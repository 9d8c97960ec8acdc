// Local SNS: the `Publish`, `CreatePlatformEndpoint` and `DeleteEndpoint` actions of the SNS query API (awsQuery:
// form-encoded request, XML reply), with in-process fan-out to subscriber functions that receive the same `SNSEvent`
// a Lambda subscription receives on AWS. Errors and replies use the local services' shared AwsError / AwsReply
// (./aws-endpoint.ts).
//
// Differences from AWS SNS:
// - Publish (to a topic ARN) is served over HTTP; topics and subscriptions are created in-process by the stack
//   (createTopic/subscribe), there is no CreateTopic/Subscribe API.
// - Publish to a phone number (SMS) or to an existing platform endpoint (`TargetArn` …:endpoint/…) delivers nothing:
//   the message (with MessageStructure json, its `default` entry: the same JSON the app gets) goes to
//   `onDirectPublish` (the stack appends it to <data dir>/outbox.jsonl and prints it). SMS attributes, opt-outs,
//   spending limits and disabled endpoints are not emulated.
// - mobile push: platform applications are created in-process (createPlatformApplication; no credentials, any
//   token accepted). CreatePlatformEndpoint gives one endpoint per (application, token), as SNS does, ARNs like
//   arn:aws:sns:<region>:<account>:endpoint/GCM/<app>/<uuid>; DeleteEndpoint removes one (a missing one is fine).
//   Attributes and CustomUserData are accepted and ignored; nothing is delivered to endpoints.
// - subscribers are in-process async functions called once per message, right after the Publish reply
//   (asynchronously, as SNS does); there are no retries, no delivery policies, no filter policies, no DLQ.
//   A subscriber error is logged, never returned to the publisher (as on AWS).
// - no message signatures (Signature/SigningCertUrl are empty), no FIFO topics, no size accounting beyond 256 KB.
// - the log of published messages (messages(), directMessages(): for tests and the bench) keeps the newest
//   `retainMessages` of each kind (default 1000), so a long-running stack's memory does not grow with its traffic.
import { randomUUID } from 'node:crypto';
import type { SNSEvent, SNSMessageAttributes } from 'aws-lambda';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from './dynamodb.ts';
import { AwsError, asAwsError } from './aws-endpoint.ts';
import type { AwsReply } from './aws-endpoint.ts';

export type MessageAttribute = { DataType: string; StringValue?: string; BinaryValue?: string };

export type PublishedMessage = {
  messageId: string;
  topicArn: string;
  message: string;
  subject?: string;
  /** As delivered to subscribers: name → {Type, Value}. */
  attributes: SNSMessageAttributes;
  /** Epoch milliseconds. */
  time: number;
};

export type PublishInput = {
  topicArn: string;
  message: string;
  subject?: string;
  attributes?: Record<string, MessageAttribute>;
};

export type SnsSubscriber = (event: SNSEvent) => Promise<void>;

/** A Publish that AWS delivers outside SNS: an SMS, or a mobile push through a platform endpoint. */
export type DirectMessage = { channel: 'sms' | 'sns'; to: string; message: string; messageId: string; time: number };

/** A mobile push platform endpoint (CreatePlatformEndpoint). */
export type PlatformEndpoint = { endpointArn: string; platformApplicationArn: string; token: string };

/** An SNS API error: `code` is the awsQuery error code (the SDK maps NotFound → NotFoundException). */
export class SnsError extends AwsError {}

const XMLNS = 'http://sns.amazonaws.com/doc/2010-03-31/';
const MAX_MESSAGE_BYTES = 256 * 1024;

export type LocalSnsOptions = {
  region?: string;
  accountId?: string;
  /** Called synchronously for every accepted message (the stack prints device notifications with it). */
  onPublish?: (message: PublishedMessage) => void;
  /** Called for every SMS and platform-endpoint Publish (the stack's outbox). */
  onDirectPublish?: (message: DirectMessage) => void;
  /** How many of the newest messages messages() and directMessages() keep, each (default 1000). */
  retainMessages?: number;
  log?: (line: string) => void;
};

export class LocalSns {
  readonly region: string;
  readonly accountId: string;
  readonly #topics = new Map<string, Set<SnsSubscriber>>();
  readonly #messages: PublishedMessage[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #applications = new Set<string>();
  readonly #endpoints = new Map<string, PlatformEndpoint>();
  readonly #onPublish: ((message: PublishedMessage) => void) | undefined;
  readonly #onDirectPublish: ((message: DirectMessage) => void) | undefined;
  readonly #direct: DirectMessage[] = [];
  readonly #log: (line: string) => void;
  readonly #retain: number;

  constructor(options: LocalSnsOptions = {}) {
    this.#retain = options.retainMessages ?? 1000;
    this.region = options.region ?? LOCAL_REGION;
    this.accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
    this.#onPublish = options.onPublish;
    this.#onDirectPublish = options.onDirectPublish;
    this.#log = options.log ?? ((line) => console.error(line));
  }

  /** Creates the topic if needed (idempotent, as on AWS) and returns its ARN. */
  createTopic(name: string): string {
    if (!/^[A-Za-z0-9_-]{1,256}$/.test(name))
      throw new SnsError('InvalidParameter', `Invalid parameter: Topic Name: ${name}`);
    const arn = `arn:aws:sns:${this.region}:${this.accountId}:${name}`;
    if (!this.#topics.has(arn)) this.#topics.set(arn, new Set());
    return arn;
  }

  /** Subscribes an in-process function (like a Lambda subscription); returns the unsubscribe function. */
  subscribe(topicArn: string, fn: SnsSubscriber): () => void {
    const subscribers = this.#topics.get(topicArn);
    if (!subscribers) throw new SnsError('NotFound', `Topic does not exist: ${topicArn}`, 404);
    subscribers.add(fn);
    return () => void subscribers.delete(fn);
  }

  /** Creates a mobile push platform application (`platform` as SNS names it: GCM, APNS, APNS_SANDBOX); its ARN. */
  createPlatformApplication(platform: string, name: string): string {
    const arn = `arn:aws:sns:${this.region}:${this.accountId}:app/${platform}/${name}`;
    this.#applications.add(arn);
    return arn;
  }

  /** CreatePlatformEndpoint: the endpoint of `token` in the application, made on first use. */
  createPlatformEndpoint(platformApplicationArn: string, token: string): string {
    if (!this.#applications.has(platformApplicationArn)) {
      throw new SnsError('NotFound', 'PlatformApplication does not exist', 404);
    }
    if (token === '' || token.length > 4096) throw new SnsError('InvalidParameter', 'Invalid parameter: Token');
    for (const e of this.#endpoints.values()) {
      if (e.platformApplicationArn === platformApplicationArn && e.token === token) return e.endpointArn;
    }
    const endpointArn = `${platformApplicationArn.replace(':app/', ':endpoint/')}/${randomUUID()}`;
    this.#endpoints.set(endpointArn, { endpointArn, platformApplicationArn, token });
    return endpointArn;
  }

  /** DeleteEndpoint (idempotent, as on AWS). */
  deleteEndpoint(endpointArn: string): void {
    this.#endpoints.delete(endpointArn);
  }

  /** The platform endpoints that exist now. */
  platformEndpoints(): PlatformEndpoint[] {
    return [...this.#endpoints.values()].map((e) => ({ ...e }));
  }

  /** Everything published to topics so far (the newest `retainMessages`), oldest first. */
  messages(): PublishedMessage[] {
    return [...this.#messages];
  }

  /** Every SMS and platform-endpoint message so far (the newest `retainMessages`), oldest first. */
  directMessages(): DirectMessage[] {
    return [...this.#direct];
  }

  /** Publish to a phone number or a platform endpoint (the HTTP action, also callable in-process). */
  publishDirect(input: { channel: DirectMessage['channel']; to: string; message: string }): { messageId: string } {
    if (input.channel === 'sns' && !this.#endpoints.has(input.to))
      throw new SnsError('NotFound', 'Endpoint does not exist', 404);
    if (input.channel === 'sms' && !/^\+[1-9][0-9]{6,14}$/.test(input.to))
      throw new SnsError('InvalidParameter', 'Invalid parameter: PhoneNumber Reason: not an E.164 number');
    if (input.message === '') throw new SnsError('InvalidParameter', 'Invalid parameter: Empty message');
    if (Buffer.byteLength(input.message) > MAX_MESSAGE_BYTES) {
      throw new SnsError('InvalidParameter', 'Invalid parameter: Message too long');
    }
    const direct: DirectMessage = { ...input, messageId: randomUUID(), time: Date.now() };
    this.#direct.push(direct);
    if (this.#direct.length > this.#retain) this.#direct.shift();
    this.#onDirectPublish?.(direct);
    return { messageId: direct.messageId };
  }

  /** Resolves when every delivery started so far has finished (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  /** Publish (the HTTP action, also callable in-process). */
  publish(input: PublishInput): { messageId: string } {
    const subscribers = this.#topics.get(input.topicArn);
    if (!subscribers) throw new SnsError('NotFound', 'Topic does not exist', 404);
    if (input.message === '') throw new SnsError('InvalidParameter', 'Invalid parameter: Empty message');
    if (Buffer.byteLength(input.message) > MAX_MESSAGE_BYTES) {
      throw new SnsError('InvalidParameter', 'Invalid parameter: Message too long');
    }
    if (input.subject !== undefined && (input.subject.length > 100 || /[\r\n]/.test(input.subject))) {
      throw new SnsError('InvalidParameter', 'Invalid parameter: Subject');
    }
    const attributes: SNSMessageAttributes = {};
    for (const [name, value] of Object.entries(input.attributes ?? {})) {
      const text = value.StringValue ?? value.BinaryValue;
      if (!value.DataType || text === undefined) {
        throw new SnsError(
          'ParameterValueInvalid',
          `The message attribute '${name}' must contain non-empty message attribute value.`,
        );
      }
      attributes[name] = { Type: value.DataType, Value: text };
    }
    const published: PublishedMessage = {
      messageId: randomUUID(),
      topicArn: input.topicArn,
      message: input.message,
      ...(input.subject !== undefined ? { subject: input.subject } : {}),
      attributes,
      time: Date.now(),
    };
    this.#messages.push(published);
    if (this.#messages.length > this.#retain) this.#messages.shift();
    this.#onPublish?.(published);
    const event = snsEvent(published);
    for (const subscriber of subscribers) {
      // After the Publish reply, as SNS does: the publisher never waits for (or sees errors of) subscribers.
      const delivery = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => subscriber(copyEvent(event)))
        .catch((err: unknown) =>
          this.#log(`[sns] subscriber of ${input.topicArn} failed: ${err instanceof Error ? err.stack : String(err)}`),
        )
        .finally(() => this.#inFlight.delete(delivery));
      this.#inFlight.add(delivery);
    }
    return { messageId: published.messageId };
  }

  /** Serves one awsQuery request (form-encoded body). */
  handleHttp(body: string): AwsReply {
    const params = new URLSearchParams(body);
    const requestId = randomUUID();
    const headers = { 'x-amzn-requestid': requestId };
    try {
      const action = params.get('Action');
      const reply = (result: string) => ({
        status: 200,
        contentType: 'text/xml',
        headers,
        body:
          `<${action}Response xmlns="${XMLNS}">${result}` +
          `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`,
      });
      if (action === 'CreatePlatformEndpoint') {
        const application = params.get('PlatformApplicationArn');
        const token = params.get('Token');
        if (!application) throw new SnsError('InvalidParameter', 'Invalid parameter: PlatformApplicationArn');
        if (token === null) throw new SnsError('InvalidParameter', 'Invalid parameter: Token');
        const arn = this.createPlatformEndpoint(application, token);
        return reply(
          `<CreatePlatformEndpointResult><EndpointArn>${xml(arn)}</EndpointArn></CreatePlatformEndpointResult>`,
        );
      }
      if (action === 'DeleteEndpoint') {
        const arn = params.get('EndpointArn');
        if (!arn) throw new SnsError('InvalidParameter', 'Invalid parameter: EndpointArn');
        this.deleteEndpoint(arn);
        return reply('');
      }
      if (action !== 'Publish')
        throw new SnsError('InvalidAction', `The action ${action ?? '(none)'} is not valid for this endpoint.`);
      const direct = parseDirect(params);
      const result = direct ? this.publishDirect(direct) : this.publish(parsePublish(params));
      return {
        status: 200,
        contentType: 'text/xml',
        headers,
        body:
          `<PublishResponse xmlns="${XMLNS}">` +
          `<PublishResult><MessageId>${result.messageId}</MessageId></PublishResult>` +
          `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></PublishResponse>`,
      };
    } catch (err) {
      const e = asAwsError(err, this.#log, 'sns');
      return {
        status: e.status,
        contentType: 'text/xml',
        headers,
        body:
          `<ErrorResponse xmlns="${XMLNS}"><Error><Type>${e.status >= 500 ? 'Receiver' : 'Sender'}</Type>` +
          `<Code>${xml(e.code)}</Code><Message>${xml(e.message)}</Message></Error>` +
          `<RequestId>${requestId}</RequestId></ErrorResponse>`,
      };
    }
  }
}

function parsePublish(params: URLSearchParams): PublishInput {
  const topicArn = params.get('TopicArn') ?? params.get('TargetArn');
  if (!topicArn) throw new SnsError('InvalidParameter', 'Invalid parameter: TopicArn');
  // One message per protocol: a Lambda subscriber receives the `lambda` entry, else `default` (required).
  const message = messageOf(params, 'lambda');
  const attributes: Record<string, MessageAttribute> = {};
  for (let n = 1; params.has(`MessageAttributes.entry.${n}.Name`); n++) {
    const prefix = `MessageAttributes.entry.${n}`;
    const name = params.get(`${prefix}.Name`) ?? '';
    const stringValue = params.get(`${prefix}.Value.StringValue`);
    const binaryValue = params.get(`${prefix}.Value.BinaryValue`);
    attributes[name] = {
      DataType: params.get(`${prefix}.Value.DataType`) ?? '',
      ...(stringValue !== null ? { StringValue: stringValue } : {}),
      ...(binaryValue !== null ? { BinaryValue: binaryValue } : {}),
    };
  }
  const subject = params.get('Subject');
  return { topicArn, message, ...(subject !== null ? { subject } : {}), attributes };
}

/** The Message parameter; with MessageStructure json, its `protocol` entry, else its (required) `default` entry. */
function messageOf(params: URLSearchParams, protocol: string): string {
  const message = params.get('Message');
  if (message === null) throw new SnsError('InvalidParameter', 'Invalid parameter: Message');
  if (params.get('MessageStructure') !== 'json') return message;
  let structured: unknown;
  try {
    structured = JSON.parse(message);
  } catch {
    throw new SnsError('InvalidParameter', 'Invalid parameter: Message Structure - JSON message body failed to parse');
  }
  const entries = structured as Record<string, unknown> | null;
  if (typeof entries?.default !== 'string') {
    throw new SnsError(
      'InvalidParameter',
      'Invalid parameter: Message Structure - No default entry in JSON message body',
    );
  }
  const entry = entries[protocol];
  return typeof entry === 'string' ? entry : entries.default;
}

/** A Publish to a phone number or a platform endpoint, if it is one (to a platform endpoint: its `default` message). */
function parseDirect(
  params: URLSearchParams,
): { channel: DirectMessage['channel']; to: string; message: string } | undefined {
  const phoneNumber = params.get('PhoneNumber');
  if (phoneNumber !== null) return { channel: 'sms', to: phoneNumber, message: messageOf(params, 'sms') };
  const target = params.get('TargetArn');
  if (target === null || !target.includes(':endpoint/')) return undefined;
  return { channel: 'sns', to: target, message: messageOf(params, 'default') };
}

/** The event a Lambda function subscribed to the topic receives. */
function snsEvent(message: PublishedMessage): SNSEvent {
  return {
    Records: [
      {
        EventSource: 'aws:sns',
        EventVersion: '1.0',
        EventSubscriptionArn: `${message.topicArn}:${randomUUID()}`,
        Sns: {
          Type: 'Notification',
          MessageId: message.messageId,
          TopicArn: message.topicArn,
          ...(message.subject !== undefined ? { Subject: message.subject } : {}),
          Message: message.message,
          Timestamp: new Date(message.time).toISOString(),
          SignatureVersion: '1',
          Signature: '',
          SigningCertUrl: '',
          UnsubscribeUrl: '',
          MessageAttributes: message.attributes,
        },
      },
    ],
  };
}

/**
 * A subscriber's own copy of an event (so that one that changes it changes nothing else): what structuredClone gives
 * for this shape, plain objects of strings, at a fraction of its cost.
 */
function copyEvent(event: SNSEvent): SNSEvent {
  return {
    Records: event.Records.map((record) => ({
      ...record,
      Sns: {
        ...record.Sns,
        MessageAttributes: Object.fromEntries(
          Object.entries(record.Sns.MessageAttributes).map(([name, value]) => [name, { ...value }]),
        ),
      },
    })),
  };
}

/**
 * One friendly console line for a device-topic notification (JSON from the notify-device function), or undefined
 * if the message is not one. Prints only fields that are present; the message carries no secret.
 */
/**
 * The console line for a device notification; `demo` is how to run the demo against this server (e.g.
 * `PORT=9000 npm run demo`), so the printed command works as written.
 */
export function formatDeviceNotification(message: string, now = Date.now(), demo = 'npm run demo'): string | undefined {
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(message) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!m || typeof m !== 'object' || typeof m.requestId !== 'string') return undefined;
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const who = text(m.sub) ?? 'user';
  const client = text(m.clientName) ?? text(m.clientId);
  let line = `📱 ${who}: ${client ? `"${client}"` : 'a client'} asks to sign you in`;
  const details: string[] = [];
  if (text(m.bindingMessage)) details.push(`binding message: "${text(m.bindingMessage)}"`);
  if (text(m.scope)) details.push(`scope: ${text(m.scope)}`);
  if (details.length > 0) line += ` — ${details.join(', ')}`;
  if (typeof m.expiresAt === 'number') line += ` (expires in ${Math.max(0, Math.round(m.expiresAt - now / 1000))} s)`;
  return `${line} → approve with: ${demo} -- approve ${m.requestId}`;
}

function xml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
