// The DynamoDB table the store modules share: the document client, key shapes and the conditional-write helper.
// Every write is a single-item (conditional) write; every read checks expiry itself because TTL deletion is lazy
// (docs/architecture.md, data model and expiry on every read).
import { DynamoDBDocumentClient, UpdateCommand, type UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { awsClient } from '../aws.ts';
import { config } from '../../config.ts';

// cacheMiddleware: false because lib-dynamodb refuses a client with it; the document client caches instead (below).
const dynamo = awsClient('DynamoDB', () => new DynamoDBClient({ cacheMiddleware: false }));
let doc: DynamoDBDocumentClient | undefined;
export const db = (): DynamoDBDocumentClient =>
  (doc ??= cachingHandlers(
    DynamoDBDocumentClient.from(dynamo(), { marshallOptions: { removeUndefinedValues: true } }),
  ));

/** A lib-dynamodb command (GetCommand, UpdateCommand, …), as far as cachingHandlers uses it. */
type DocumentCommand = {
  middlewareStack: unknown;
  clientCommand: { resolveMiddleware(stack: unknown, config: unknown, options: unknown): CommandHandler };
  addMarshallingMiddleware(config: unknown): void;
};
type CommandHandler = (command: unknown) => Promise<{ output: unknown }>;
type Stack = { concat(from: unknown): unknown };

/**
 * The document client, sending each command through a handler resolved once per command class: what the SDK's
 * `cacheMiddleware` does for a plain client, which lib-dynamodb refuses (its commands' handlers keep the first command
 * they were built for). Resolved exactly as lib-dynamodb's own `resolveMiddleware` does (its marshalling middleware
 * on the inner DynamoDB command, then that command's chain over the client's stack), then called with each command's
 * own inner command, whose input the marshalling middleware reads: the same requests, replies and errors, without
 * cloning, sorting and composing the whole stack on every call (about 30 µs of CPU and 25 KB of garbage per call).
 * What the chain keeps from the first command is per class (its key shapes) or per client (the marshalling options);
 * middleware added to one command instance would be ignored, and none is. A call with options or a callback goes
 * through the SDK's own send.
 */
function cachingHandlers(client: DynamoDBDocumentClient): DynamoDBDocumentClient {
  const handlers = new WeakMap<object, CommandHandler>();
  const send = client.send.bind(client) as (...args: unknown[]) => Promise<unknown>;
  const { config, middlewareStack } = client as unknown as { config: unknown; middlewareStack: Stack };
  const cached = (command: DocumentCommand): Promise<unknown> => {
    let handler = handlers.get(command.constructor);
    if (!handler) {
      command.addMarshallingMiddleware(config);
      const stack = middlewareStack.concat(command.middlewareStack);
      handler = command.clientCommand.resolveMiddleware(stack, config, undefined);
      handlers.set(command.constructor, handler);
    }
    return handler(command.clientCommand).then((result) => result.output);
  };
  (client as { send: unknown }).send = (command: unknown, ...rest: unknown[]) =>
    rest.length === 0 && isDocumentCommand(command) ? cached(command) : send(command, ...rest);
  return client;
}

function isDocumentCommand(command: unknown): command is DocumentCommand {
  const c = command as Partial<DocumentCommand> | null;
  return typeof c?.addMarshallingMiddleware === 'function' && typeof c.clientCommand?.resolveMiddleware === 'function';
}

export const table = (): string => config().tableName;

export const key = {
  client: (id: string) => ({ pk: `CLIENT#${id}`, sk: 'CLIENT' }),
  user: (sub: string) => ({ pk: `USER#${sub}`, sk: 'PROFILE' }),
  login: (value: string) => ({ pk: `LOGIN#${normalizeLogin(value)}`, sk: 'LOGIN' }),
  device: (id: string) => ({ pk: `DEVICE#${id}`, sk: 'DEVICE' }),
  request: (id: string) => ({ pk: `AUTHREQ#${id}`, sk: 'REQ' }),
  jti: (scope: string, jti: string) => ({ pk: `JTI#${scope}#${jti}`, sk: 'JTI' }),
  refresh: (hash: string) => ({ pk: `RT#${hash}`, sk: 'RT' }),
  family: (id: string) => ({ pk: `RTFAMILY#${id}`, sk: 'FAMILY' }),
  gate: (sub: string) => ({ pk: `USER#${sub}`, sk: 'GATE' }),
};

/** login_hint matching: emails case-insensitively, phone numbers without spaces, dashes, dots or parentheses. */
export function normalizeLogin(value: string): string {
  const v = value.trim();
  if (v.includes('@')) return v.toLowerCase();
  if (/^\+?[0-9 ().-]{6,}$/.test(v)) return v.replace(/[ ().-]/g, '');
  return v;
}

export const isConditionFailure = (e: unknown): boolean =>
  e instanceof ConditionalCheckFailedException ||
  (e as { name?: string } | null)?.name === 'ConditionalCheckFailedException';

/**
 * A conditional single-item update: the attributes it returned ({} when it was asked for none), or undefined when its
 * condition did not hold. Every other error is thrown.
 */
export async function updateIf(
  input: Omit<UpdateCommandInput, 'TableName'>,
): Promise<Record<string, unknown> | undefined> {
  try {
    const out = await db().send(new UpdateCommand({ TableName: table(), ...input }));
    return out.Attributes ?? {};
  } catch (e) {
    if (isConditionFailure(e)) return undefined;
    throw e;
  }
}

export function strip<T>(item: Record<string, unknown> | undefined): T | undefined {
  if (!item) return undefined;
  const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ttl: _ttl, ...rest } = item;
  return rest as T;
}
