// Local SQS: standard queues served over the AWS JSON 1.0 protocol that current SQS clients use (AWS SDK v3
// `@aws-sdk/client-sqs`, AWS CLI / botocore): `X-Amz-Target: AmazonSQS.<Operation>`, `application/x-amz-json-1.0`,
// errors as `{"__type", "message"}` plus the `x-amzn-query-error: <legacy code>;Sender` header, as SQS sends them
// (request parsing and error replies are the helpers the local services share, ./aws-endpoint.ts).
//
// What the product needs, and nothing more: the deliver function sends dead letters with SendMessage (and the Step
// Functions `sqs:sendMessage` integration can, in-process, with sendMessage); the admin CLI (`dead-letters list |
// redrive`) reads the queue with ReceiveMessage, hands messages back with ChangeMessageVisibility and removes handled
// ones with DeleteMessage. Operations: SendMessage, ReceiveMessage, ChangeMessageVisibility, DeleteMessage. Anything
// else answers 400 UnsupportedOperation.
//
// Differences from AWS SQS:
// - queues are created in-process by the stack (createQueue); standard queues only (no FIFO), fixed attributes:
//   VisibilityTimeout 30 s, no delay (DelaySeconds is refused), no redrive policy, no retention limit, no KMS, no tags.
// - receipt handles: each receive of a message gives a new one, and only the newest works, as on AWS: DeleteMessage
//   with an older handle succeeds without deleting (AWS: "the message might not be deleted"), ChangeMessageVisibility
//   with it fails (InvalidParameterValue: the receipt handle has expired); a handle of a deleted message is accepted by
//   DeleteMessage and refused by ChangeMessageVisibility the same way; a handle this service never made (or of another
//   queue) is ReceiptHandleIsInvalid. ChangeMessageVisibility of a message not in flight is MessageNotInflight. A
//   message's new visibility timeout counts from the call (AWS: the same). No PurgeQueue, no batch operations.
// - a queue is addressed by any URL whose last two path segments are `<accountId>/<name>` (the host is not checked,
//   so the URL from createQueue keeps working whatever port the endpoint got), or by its ARN
//   `arn:aws:sqs:<region>:<accountId>:<name>` (AWS accepts only the URL). Before setEndpoint, createQueue answers an
//   AWS-style URL.
// - ReceiveMessage answers at once (WaitTimeSeconds is validated, no long polling); visible messages are returned
//   oldest first (AWS: best-effort order, possibly from a subset of servers, possibly duplicated). Message system
//   attributes: SenderId, SentTimestamp, ApproximateReceiveCount, ApproximateFirstReceiveTimestamp.
// - no throttling, no IAM/signature checks; message size limit 256 KiB (body + attributes), the classic limit.
// - persistence (dataDir): every change rewrites <dataDir>/sqs.json synchronously (temp file + rename), so a
//   dead-lettered message is on disk before the sender gets its reply and survives restarts (dead letters are rare).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from './dynamodb.ts';
import { AwsError, jsonErrorReply, jsonInput, jsonOperation, jsonReply } from './aws-endpoint.ts';
import type { AwsReply } from './aws-endpoint.ts';

/** A message attribute as in the SQS API (BinaryValue is base64 in the JSON protocol). */
export type SqsMessageAttribute = { DataType: string; StringValue?: string; BinaryValue?: string };

export type SendMessageResult = { MessageId: string; MD5OfMessageBody: string; MD5OfMessageAttributes?: string };

/** A message as seen by messages() (a peek: visibility is not changed). Times are epoch milliseconds. */
export type SqsMessage = {
  messageId: string;
  body: string;
  md5OfBody: string;
  messageAttributes: Record<string, SqsMessageAttribute>;
  sentTimestamp: number;
  receiveCount: number;
  firstReceiveTimestamp?: number;
  /** 'in-flight': received, its visibility timeout still running. */
  state: 'visible' | 'in-flight';
  /** When an in-flight message becomes receivable again. */
  visibleAt?: number;
};

// The errors this service returns. `modeled`: the SQS API model (and so every SDK) has an exception shape for it;
// the others reach SDK users as generic service exceptions.
const ERRORS = {
  QueueDoesNotExist: { queryCode: 'AWS.SimpleQueueService.NonExistentQueue', status: 400, modeled: true },
  InvalidAddress: { queryCode: 'InvalidAddress', status: 404, modeled: true },
  InvalidMessageContents: { queryCode: 'InvalidMessageContents', status: 400, modeled: true },
  UnsupportedOperation: { queryCode: 'AWS.SimpleQueueService.UnsupportedOperation', status: 400, modeled: true },
  ReceiptHandleIsInvalid: { queryCode: 'ReceiptHandleIsInvalid', status: 404, modeled: true },
  MessageNotInflight: { queryCode: 'AWS.SimpleQueueService.MessageNotInflight', status: 400, modeled: true },
  InvalidParameterValue: { queryCode: 'InvalidParameterValue', status: 400, modeled: false },
  MissingParameter: { queryCode: 'MissingParameter', status: 400, modeled: false },
} as const;

export type SqsErrorCode = keyof typeof ERRORS;

/**
 * An SQS API error. `code` is the JSON-protocol error name (the SDK's exception name, e.g. QueueDoesNotExist),
 * `queryCode` the legacy awsQuery code (e.g. AWS.SimpleQueueService.NonExistentQueue, sent in x-amzn-query-error).
 */
export class SqsError extends AwsError {
  declare readonly code: SqsErrorCode;
  readonly queryCode: string;
  /** True when the SQS API model has its own exception for this error (false: a generic service exception). */
  readonly modeled: boolean;
  constructor(code: SqsErrorCode, message: string) {
    super(code, message, ERRORS[code].status);
    this.queryCode = ERRORS[code].queryCode;
    this.modeled = ERRORS[code].modeled;
  }
}

export type LocalSqsOptions = {
  region?: string;
  accountId?: string;
  /** Keep the queues in <dataDir>/sqs.json (in memory only when absent or null). */
  dataDir?: string | null;
  /** Origin used in queue URLs (e.g. http://127.0.0.1:4566); startAwsEndpoint sets it when absent. */
  endpoint?: string;
  log?: (line: string) => void;
};

type StoredMessage = {
  messageId: string;
  body: string;
  md5OfBody: string;
  attributes: Record<string, SqsMessageAttribute>;
  md5OfAttributes?: string;
  sentTimestamp: number;
  firstReceiveTimestamp?: number;
  receiveCount: number;
  /** Epoch ms from which the message can be received. */
  visibleAt: number;
  /** The receipt handle of the latest receive (the only one that works). */
  receiptHandle?: string;
};

type Queue = { name: string; createdTimestamp: number; messages: StoredMessage[] };

const MAX_MESSAGE_BYTES = 256 * 1024;
const DEFAULT_VISIBILITY_TIMEOUT = 30;
const MAX_VISIBILITY_TIMEOUT = 43_200;
const MAX_ATTRIBUTES = 10;
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const ATTRIBUTE_NAME = /^(?!aws\.|amazon\.)(?!\.)(?!.*\.\.)[A-Za-z0-9_.-]{1,256}(?<!\.)$/i;
const DATA_TYPE = /^(String|Number|Binary)(\.[A-Za-z0-9_.-]{1,245})?$/;
// The characters SQS accepts in a body and in string attribute values
// (#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF).
const INVALID_CHARACTER = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

export class LocalSqs {
  readonly region: string;
  readonly accountId: string;
  readonly #queues = new Map<string, Queue>();
  readonly #file: string | undefined;
  readonly #log: (line: string) => void;
  #endpoint: string | undefined;

  constructor(options: LocalSqsOptions = {}) {
    this.region = options.region ?? LOCAL_REGION;
    this.accountId = options.accountId ?? LOCAL_ACCOUNT_ID;
    this.#endpoint = options.endpoint?.replace(/\/+$/, '');
    this.#log = options.log ?? ((line) => console.error(line));
    if (options.dataDir) {
      mkdirSync(options.dataDir, { recursive: true });
      this.#file = join(options.dataDir, 'sqs.json');
      this.#load();
    }
  }

  /** The origin used in queue URLs, once known. */
  get endpoint(): string | undefined {
    return this.#endpoint;
  }

  /** Sets the origin used in queue URLs (startAwsEndpoint calls it with its own URL when none was given). */
  setEndpoint(url: string): void {
    this.#endpoint = url.replace(/\/+$/, '');
  }

  /** Creates the queue if needed (idempotent, as on AWS; messages are kept) and returns its URL and ARN. */
  createQueue(name: string): { url: string; arn: string } {
    if (!QUEUE_NAME.test(name)) {
      throw new SqsError(
        'InvalidParameterValue',
        `Value ${name} for parameter QueueName is invalid. Reason: Can only include alphanumeric characters, ` +
          'hyphens, or underscores. 1 to 80 in length (FIFO queues are not supported locally).',
      );
    }
    if (!this.#queues.has(name)) {
      this.#queues.set(name, { name, createdTimestamp: Date.now(), messages: [] });
      this.#save();
    }
    return { url: this.queueUrl(name), arn: this.queueArn(name) };
  }

  queueUrl(name: string): string {
    return `${this.#endpoint ?? `https://sqs.${this.region}.amazonaws.com`}/${this.accountId}/${name}`;
  }

  queueArn(name: string): string {
    return `arn:aws:sqs:${this.region}:${this.accountId}:${name}`;
  }

  /** SendMessage (also used in-process by the Step Functions `sqs:sendMessage` integration). */
  sendMessage(
    queueUrlOrArn: string,
    body: string,
    attributes: Record<string, SqsMessageAttribute> = {},
  ): SendMessageResult {
    const queue = this.#queue(queueUrlOrArn);
    if (typeof body !== 'string' || body === '')
      throw new SqsError('MissingParameter', 'The request must contain the parameter MessageBody.');
    if (INVALID_CHARACTER.test(body)) {
      throw new SqsError(
        'InvalidMessageContents',
        'Invalid characters found. Valid unicode characters are ' +
          '#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF',
      );
    }
    const checked = checkAttributes(attributes);
    if (Buffer.byteLength(body) + checked.bytes > MAX_MESSAGE_BYTES) {
      throw new SqsError(
        'InvalidParameterValue',
        `One or more parameters are invalid. Reason: Message must be shorter than ${MAX_MESSAGE_BYTES} bytes.`,
      );
    }
    const now = Date.now();
    const hasAttributes = Object.keys(checked.attributes).length > 0;
    const message: StoredMessage = {
      messageId: randomUUID(),
      body,
      md5OfBody: md5(body),
      attributes: checked.attributes,
      ...(hasAttributes ? { md5OfAttributes: md5OfMessageAttributes(checked.attributes) } : {}),
      sentTimestamp: now,
      receiveCount: 0,
      visibleAt: now,
    };
    queue.messages.push(message);
    this.#save();
    return {
      MessageId: message.messageId,
      MD5OfMessageBody: message.md5OfBody,
      ...(message.md5OfAttributes ? { MD5OfMessageAttributes: message.md5OfAttributes } : {}),
    };
  }

  /** Every message now in the queue (by name, URL or ARN), in flight or not, oldest first; changes nothing. */
  messages(queue: string): SqsMessage[] {
    const q = QUEUE_NAME.test(queue) ? this.#queues.get(queue) : this.#queue(queue);
    if (!q) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
    const now = Date.now();
    return q.messages.map((m) => ({
      messageId: m.messageId,
      body: m.body,
      md5OfBody: m.md5OfBody,
      messageAttributes: structuredClone(m.attributes),
      sentTimestamp: m.sentTimestamp,
      receiveCount: m.receiveCount,
      ...(m.firstReceiveTimestamp !== undefined ? { firstReceiveTimestamp: m.firstReceiveTimestamp } : {}),
      ...(m.visibleAt <= now ? { state: 'visible' as const } : { state: 'in-flight' as const, visibleAt: m.visibleAt }),
    }));
  }

  // ---- the API ----

  /** Serves one AWS JSON 1.0 request (`target` is the X-Amz-Target header). */
  handleHttp(target: string, body: string): AwsReply {
    try {
      return jsonReply(this.call(jsonOperation(target), jsonInput(body)));
    } catch (err) {
      return jsonErrorReply(err, this.#log, 'sqs', (e) => {
        // As SQS answers: modeled errors carry the SQS shape id, the others the generic service namespace.
        const modeled = e instanceof SqsError && e.modeled;
        const queryCode = e instanceof SqsError ? e.queryCode : e.code;
        return {
          type: modeled
            ? `com.amazonaws.sqs#${e.code}`
            : `com.amazon.coral.service#${e.code.replace(/(Exception)?$/, 'Exception')}`,
          headers: { 'x-amzn-query-error': `${queryCode};Sender` },
        };
      });
    }
  }

  /** One API operation with its JSON input; throws SqsError as the service would. */
  call(operation: string, input: Record<string, unknown>): Record<string, unknown> {
    switch (operation) {
      case 'SendMessage': {
        const url = requiredString(input, 'QueueUrl');
        if (input.DelaySeconds !== undefined && input.DelaySeconds !== null && input.DelaySeconds !== 0) {
          throw new SqsError('InvalidParameterValue', 'DelaySeconds is not supported by the local SQS service');
        }
        const attributes = input.MessageAttributes;
        if (
          attributes !== undefined &&
          attributes !== null &&
          (typeof attributes !== 'object' || Array.isArray(attributes))
        ) {
          throw new SqsError('InvalidParameterValue', 'MessageAttributes must be a map');
        }
        const body = typeof input.MessageBody === 'string' ? input.MessageBody : '';
        return { ...this.sendMessage(url, body, (attributes ?? {}) as Record<string, SqsMessageAttribute>) };
      }
      case 'ReceiveMessage':
        return this.#receiveMessage(input);
      case 'DeleteMessage':
        return this.#deleteMessage(input);
      case 'ChangeMessageVisibility':
        return this.#changeMessageVisibility(input);
      default:
        throw new SqsError('UnsupportedOperation', `Operation ${operation} is not supported by the local SQS service`);
    }
  }

  #receiveMessage(input: Record<string, unknown>): Record<string, unknown> {
    const queue = this.#queue(requiredString(input, 'QueueUrl'));
    const max = integerIn(input.MaxNumberOfMessages, 'MaxNumberOfMessages', 1, 10) ?? 1;
    const visibility =
      integerIn(input.VisibilityTimeout, 'VisibilityTimeout', 0, MAX_VISIBILITY_TIMEOUT) ?? DEFAULT_VISIBILITY_TIMEOUT;
    integerIn(input.WaitTimeSeconds, 'WaitTimeSeconds', 0, 20); // validated; answered at once (no long polling)
    const systemNames = new Set([
      ...stringList(input, 'AttributeNames'),
      ...stringList(input, 'MessageSystemAttributeNames'),
    ]);
    const attributeNames = stringList(input, 'MessageAttributeNames');
    const now = Date.now();
    const received = queue.messages.filter((m) => m.visibleAt <= now).slice(0, max);
    const messages = received.map((m) => {
      m.receiveCount += 1;
      m.firstReceiveTimestamp ??= now;
      m.visibleAt = now + visibility * 1000;
      const system: Record<string, string> = {};
      const all = systemNames.has('All');
      if (all || systemNames.has('SenderId')) system.SenderId = this.accountId;
      if (all || systemNames.has('SentTimestamp')) system.SentTimestamp = String(m.sentTimestamp);
      if (all || systemNames.has('ApproximateReceiveCount')) system.ApproximateReceiveCount = String(m.receiveCount);
      if (all || systemNames.has('ApproximateFirstReceiveTimestamp')) {
        system.ApproximateFirstReceiveTimestamp = String(m.firstReceiveTimestamp);
      }
      const selected = selectAttributes(m.attributes, attributeNames);
      const hasSelected = Object.keys(selected).length > 0;
      m.receiptHandle = receiptHandle(queue.name, m.messageId);
      return {
        MessageId: m.messageId,
        ReceiptHandle: m.receiptHandle,
        MD5OfBody: m.md5OfBody,
        Body: m.body,
        ...(Object.keys(system).length > 0 ? { Attributes: system } : {}),
        ...(hasSelected
          ? { MD5OfMessageAttributes: md5OfMessageAttributes(selected), MessageAttributes: selected }
          : {}),
      };
    });
    if (received.length > 0) this.#save();
    return messages.length > 0 ? { Messages: messages } : {};
  }

  #deleteMessage(input: Record<string, unknown>): Record<string, unknown> {
    const queue = this.#queue(requiredString(input, 'QueueUrl'));
    const handle = requiredString(input, 'ReceiptHandle');
    const messageId = messageOfHandle(queue.name, handle);
    const index = queue.messages.findIndex((m) => m.messageId === messageId);
    // A handle of a deleted message, or one replaced by a later receive: accepted, nothing deleted (as on AWS).
    if (index >= 0 && queue.messages[index]!.receiptHandle === handle) {
      queue.messages.splice(index, 1);
      this.#save();
    }
    return {};
  }

  #changeMessageVisibility(input: Record<string, unknown>): Record<string, unknown> {
    const queue = this.#queue(requiredString(input, 'QueueUrl'));
    const handle = requiredString(input, 'ReceiptHandle');
    if (input.VisibilityTimeout === undefined || input.VisibilityTimeout === null)
      throw new SqsError('MissingParameter', 'The request must contain the parameter VisibilityTimeout.');
    const visibility = integerIn(input.VisibilityTimeout, 'VisibilityTimeout', 0, MAX_VISIBILITY_TIMEOUT)!;
    const messageId = messageOfHandle(queue.name, handle);
    const message = queue.messages.find((m) => m.messageId === messageId);
    if (!message || message.receiptHandle !== handle) {
      throw new SqsError(
        'InvalidParameterValue',
        `Value ${handle} for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.`,
      );
    }
    const now = Date.now();
    if (message.visibleAt <= now) throw new SqsError('MessageNotInflight', 'Message not inflight.');
    message.visibleAt = now + visibility * 1000;
    this.#save();
    return {};
  }

  /** The queue a QueueUrl (any origin, path ending `<accountId>/<name>`) or queue ARN designates. */
  #queue(urlOrArn: string): Queue {
    let account: string | undefined;
    let name: string | undefined;
    const arn = /^arn:aws:sqs:([a-z0-9-]+):(\d{12}):([^:/]+)$/.exec(urlOrArn);
    if (arn) {
      if (arn[1] === this.region) [account, name] = [arn[2], arn[3]];
    } else {
      let url: URL | undefined;
      try {
        url = new URL(urlOrArn);
      } catch {
        // not a URL
      }
      if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
        throw new SqsError('InvalidAddress', `The address ${urlOrArn} is not valid for this endpoint.`);
      }
      const segments = url.pathname.split('/').filter((s) => s !== '');
      [account, name] = [segments.at(-2), segments.at(-1)];
    }
    const queue =
      account === this.accountId && name !== undefined ? this.#queues.get(decodeURIComponent(name)) : undefined;
    if (!queue) throw new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
    return queue;
  }

  #save(): void {
    const file = this.#file;
    if (!file) return;
    const data = JSON.stringify({ version: 1, queues: [...this.#queues.values()] });
    try {
      writeFileSync(`${file}.tmp`, data);
      renameSync(`${file}.tmp`, file);
    } catch (err) {
      this.#log(`[sqs] could not save ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  #load(): void {
    const file = this.#file;
    if (!file || !existsSync(file)) return;
    const data = JSON.parse(readFileSync(file, 'utf8')) as { queues?: Queue[] };
    for (const queue of data.queues ?? []) this.#queues.set(queue.name, queue);
  }
}

// ---- helpers ----

/** A receipt handle: which queue and message it is for, and a random part (each receive makes a new one). */
function receiptHandle(queueName: string, messageId: string): string {
  return Buffer.from(`${queueName}\n${messageId}\n${randomBytes(24).toString('base64url')}`).toString('base64url');
}

/** The message id a receipt handle of this queue designates; ReceiptHandleIsInvalid for anything else. */
function messageOfHandle(queueName: string, handle: string): string {
  const parts = /^[A-Za-z0-9_-]+$/.test(handle) ? Buffer.from(handle, 'base64url').toString('utf8').split('\n') : [];
  if (parts.length !== 3 || parts[0] !== queueName || !parts[1] || !/^[A-Za-z0-9_-]{32}$/.test(parts[2] ?? '')) {
    throw new SqsError('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is not a valid receipt handle.`);
  }
  return parts[1];
}

/** Hex MD5 of the UTF-8 bytes, as SQS computes MD5OfMessageBody. */
function md5(text: string): string {
  return createHash('md5').update(text, 'utf8').digest('hex');
}

/**
 * MD5OfMessageAttributes as SQS computes it: for each attribute by name (ascending), the length-prefixed (4-byte
 * big-endian) UTF-8 name and data type, one transport byte (1 String/Number, 2 Binary) and the length-prefixed value.
 */
function md5OfMessageAttributes(attributes: Record<string, SqsMessageAttribute>): string {
  const hash = createHash('md5');
  const field = (bytes: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    hash.update(length);
    hash.update(bytes);
  };
  for (const name of Object.keys(attributes).sort()) {
    const a = attributes[name] as SqsMessageAttribute;
    field(Buffer.from(name, 'utf8'));
    field(Buffer.from(a.DataType, 'utf8'));
    const binary = a.DataType.startsWith('Binary');
    hash.update(Buffer.from([binary ? 2 : 1]));
    field(binary ? Buffer.from(a.BinaryValue ?? '', 'base64') : Buffer.from(a.StringValue ?? '', 'utf8'));
  }
  return hash.digest('hex');
}

/** Validates message attributes as SQS does; returns them normalized and their size (counted against the limit). */
function checkAttributes(attributes: Record<string, SqsMessageAttribute>): {
  attributes: Record<string, SqsMessageAttribute>;
  bytes: number;
} {
  const entries = Object.entries(attributes);
  if (entries.length > MAX_ATTRIBUTES) {
    throw new SqsError(
      'InvalidParameterValue',
      `Number of message attributes [${entries.length}] exceeds the allowed maximum [${MAX_ATTRIBUTES}].`,
    );
  }
  const out: Record<string, SqsMessageAttribute> = {};
  let bytes = 0;
  for (const [name, value] of entries) {
    if (!ATTRIBUTE_NAME.test(name))
      throw new SqsError('InvalidParameterValue', `Message attribute name '${name}' is invalid.`);
    const dataType = value && typeof value === 'object' ? value.DataType : undefined;
    if (typeof dataType !== 'string' || !DATA_TYPE.test(dataType)) {
      throw new SqsError(
        'InvalidParameterValue',
        `The type of message (user) attribute '${name}' is invalid. ` +
          'You must use only the following supported type prefixes: Binary, Number, String.',
      );
    }
    const binary = dataType.startsWith('Binary');
    const raw = binary ? value.BinaryValue : value.StringValue;
    if (typeof raw !== 'string' || raw === '') {
      throw new SqsError(
        'InvalidParameterValue',
        `Message (user) attribute '${name}' must contain a non-empty value of type '${binary ? 'Binary' : 'String'}'.`,
      );
    }
    if (binary && !/^[A-Za-z0-9+/]*={0,2}$/.test(raw))
      throw new SqsError('InvalidParameterValue', `Message (user) attribute '${name}' has an invalid binary value.`);
    if (!binary && INVALID_CHARACTER.test(raw))
      throw new SqsError('InvalidMessageContents', `Message (user) attribute '${name}' contains invalid characters.`);
    if (dataType.startsWith('Number') && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw.trim())) {
      throw new SqsError(
        'InvalidParameterValue',
        `Can't cast the value of message (user) attribute '${name}' to a number.`,
      );
    }
    out[name] = binary ? { DataType: dataType, BinaryValue: raw } : { DataType: dataType, StringValue: raw };
    bytes +=
      Buffer.byteLength(name) +
      Buffer.byteLength(dataType) +
      (binary ? Buffer.from(raw, 'base64').length : Buffer.byteLength(raw));
  }
  return { attributes: out, bytes };
}

/** The attributes MessageAttributeNames asks for: `All`, `.*`, exact names, or `prefix.*`. */
function selectAttributes(
  attributes: Record<string, SqsMessageAttribute>,
  names: string[],
): Record<string, SqsMessageAttribute> {
  const wanted = (name: string) =>
    names.some((n) => n === 'All' || n === '.*' || n === name || (n.endsWith('.*') && name.startsWith(n.slice(0, -1))));
  return Object.fromEntries(
    Object.entries(attributes)
      .filter(([name]) => wanted(name))
      .map(([name, v]) => [name, { ...v }]),
  );
}

function integerIn(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SqsError(
      'InvalidParameterValue',
      `Value ${String(value)} for parameter ${name} is invalid. ` +
        `Reason: Must be between ${min} and ${max}, if provided.`,
    );
  }
  return value;
}

function requiredString(input: Record<string, unknown>, key: string): string {
  const value = input[key];
  if (value === undefined || value === null || value === '')
    throw new SqsError('MissingParameter', `The request must contain the parameter ${key}.`);
  if (typeof value !== 'string')
    throw new SqsError('InvalidParameterValue', `Value for parameter ${key} must be a string.`);
  return value;
}

function stringList(input: Record<string, unknown>, key: string): string[] {
  const value = input[key];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw new SqsError('InvalidParameterValue', `Value for parameter ${key} must be a list of strings.`);
  }
  return value as string[];
}
