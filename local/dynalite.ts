// dynalite as the local stack runs it: the package as published (node_modules is never edited), with four kinds of
// repeated work cut and one leak closed where dynalite's modules and its store can be reached from here. What each
// request reads and writes, its conditions, its errors and what survives a kill stay dynalite's own. Measured with
// scripts/bench/local-cost.ts (server CPU per backchannel request, whose four DynamoDB calls these serve):
//
// - Expressions (-0.85 ms): dynalite parses every ConditionExpression, UpdateExpression, KeyConditionExpression,
//   FilterExpression and ProjectionExpression with a PEG parser, on every request: 15-430 µs per call for the
//   handlers' expressions. They send the same few expressions with other values each time, so a successful parse
//   is kept as a template per (parser, expression, ExpressionAttributeNames, the type of each
//   ExpressionAttributeValues entry): all that the parse depends on. A template is the parse result with the value
//   objects (which the parse embeds as they are) replaced by their names; a later request gets a fresh copy with its
//   own values in their place, and the names and values the expression uses are marked used, as the parse marks
//   them. Not kept: failed parses (their errors come from dynalite every time), and expressions whose checks read
//   the values themselves, not only their types (BETWEEN compares its bounds, attribute_type reads its type name).
// - Reads (-0.45 ms): LevelDB reads are done synchronously (classic-level's getSync) instead of as libuv threadpool
//   jobs; their callbacks are still called asynchronously. They read the same data: an asynchronous read takes its
//   snapshot when it is issued too.
// - Writes (-0.5 ms): the puts, deletes and batches issued in one turn of the event loop are written as one LevelDB
//   batch, in the order they were issued (about four writes per threadpool job under load). Each is acknowledged
//   once that batch is written, as it was once its own write was, so an acknowledged write survives a kill as
//   before; dynalite's item locks still wait for those acknowledgements.
// - Requests (-0.13 ms; dynalite alone, the four calls of a request: 1.16 → 1.03 ms): the SDK clients' item
//   operations reach dynalite's validations and actions directly (dynaliteInProcess), without the request stream,
//   the response object, the URL and Authorization parsing of its HTTP handler, which every other request still
//   goes through; its request ids come from a pool of random bytes (a 39-byte CSPRNG call took 10-20 µs each).
// - Iterators (a leak; rss per pending request 43 → 21 KiB, data dir per request 8.4 → 3 KiB): dynalite's key and
//   value streams close their iterator through `iterator.return`, which abstract-level 3 iterators lack, so every
//   Query and Scan left a LevelDB iterator open (its snapshot pinning memtables and table files) in the store's
//   resources for good; closeIterators gives them one.
//
// Nothing is cached but parsed expressions: every item read goes to LevelDB. (A dynalite server listening again after
// a close makes itself a new store, which runs as published; the local stack starts a new server instead.)
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { dynaliteService, LOCAL_AUTHORIZATION, type LocalHttpReply, type LocalService } from './inprocess.ts';

const require = createRequire(import.meta.url);

export type DynaliteOptions = {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  path?: string;
};

// dynalite is CommonJS without type declarations: the parts of its store used here.
type Callback<T = unknown> = (err: Error | null | undefined, value?: T) => void;
type WriteOp = { type: 'put' | 'del'; key: string; value?: unknown };
type Db = {
  status: string;
  supports?: { getSync?: boolean };
  get(key: string, cb?: Callback): unknown;
  getSync?(key: string): unknown;
  put(key: string, value: unknown, cb?: Callback): unknown;
  del(key: string, cb?: Callback): unknown;
  batch(ops: WriteOp[], cb?: Callback): unknown;
  keys?(options?: unknown): unknown;
  values?(options?: unknown): unknown;
};
type Lifecycle = { getState(): string; trackOperation(operation: Promise<unknown>): Promise<unknown> };
/** What dynalite's db module creates: `db` is the LevelDB instance (with dynalite's callback wrappers). */
type Store = { db: Db; lifecycleManager?: Lifecycle };
type DbModule = { create(options: DynaliteOptions): Store };

/** The store of each server made by createDynalite (for dynaliteInProcess). */
const stores = new WeakMap<Server, Store>();

/** A dynalite server (an http.Server; see dynaliteInProcess) doing the same work less often. */
export function createDynalite(options: DynaliteOptions): Server {
  installExpressionTemplates();
  const dynalite = require('dynalite') as (options: DynaliteOptions) => Server;
  // dynalite calls its db module's create() once, through the module object: the store is taken on the way.
  const dbModule = require('dynalite/db') as DbModule;
  const create = dbModule.create;
  let store: Store | undefined;
  dbModule.create = (o) => {
    store = create(o);
    return store;
  };
  try {
    const server = dynalite(options);
    if (!store) throw new Error('dynalite: its store was not created through dynalite/db');
    readSynchronously(store);
    coalesceWrites(store);
    closeIterators(store);
    stores.set(server, store);
    return server;
  } finally {
    dbModule.create = create;
  }
}

// ---- reads ----

function readSynchronously(store: Store): void {
  const { db } = store;
  const get = db.get;
  if (db.supports?.getSync !== true || typeof db.getSync !== 'function') return; // LevelDB and memory-level have it
  db.get = (key, cb) => {
    // Not open (opening, closing, closed): dynalite's own path, with its errors.
    if (typeof cb !== 'function' || db.status !== 'open' || store.lifecycleManager?.getState() !== 'open')
      return get.call(db, key, cb);
    let value: unknown;
    try {
      value = db.getSync?.(key);
    } catch (err) {
      setImmediate(cb, err as Error);
      return;
    }
    setImmediate(cb, null, value);
  };
}

// ---- writes ----

function coalesceWrites(store: Store): void {
  const { db, lifecycleManager } = store;
  const { put, del, batch } = db;
  let pending: { ops: WriteOp[]; callbacks: Callback[]; done: () => void } | undefined;
  const flush = () => {
    const { ops, callbacks, done } = pending!;
    pending = undefined;
    batch.call(db, ops, (err) => {
      for (const cb of callbacks) {
        try {
          cb(err);
        } catch (thrown) {
          process.nextTick(() => {
            throw thrown; // as it would have from its own write's callback
          });
        }
      }
      done();
    });
  };
  const enqueue = (ops: WriteOp[], cb: Callback | undefined): Promise<void> | undefined => {
    if (!pending) {
      let done = () => {};
      // A graceful close waits for the batch, as it waits for the writes dynalite issues itself.
      lifecycleManager?.trackOperation(new Promise<void>((resolve) => (done = resolve))).catch(() => {});
      pending = { ops: [], callbacks: [], done };
      setImmediate(flush);
    }
    for (const op of ops) pending.ops.push(op);
    if (typeof cb === 'function') {
      pending.callbacks.push(cb);
      return undefined;
    }
    const callbacks = pending.callbacks;
    return new Promise((resolve, reject) => callbacks.push((err) => (err ? reject(err) : resolve())));
  };
  // A store that is not open (closing, closed) gets dynalite's own path, once what is queued is written.
  const queue = () => pending !== undefined || lifecycleManager === undefined || lifecycleManager.getState() === 'open';
  db.put = (key, value, cb) => (queue() ? enqueue([{ type: 'put', key, value }], cb) : put.call(db, key, value, cb));
  db.del = (key, cb) => (queue() ? enqueue([{ type: 'del', key }], cb) : del.call(db, key, cb));
  db.batch = (ops, cb) => (queue() && Array.isArray(ops) ? enqueue(ops, cb) : batch.call(db, ops, cb));
}

// ---- requests in-process ----

// dynalite's own modules, as its request handler loads them (the same instances: Node caches them).
const fromDynalite = createRequire(require.resolve('dynalite'));
type ActionError = Error & { statusCode?: number; body?: unknown };
type Action = (store: Store, data: unknown, cb: (err: ActionError | null | undefined, out?: unknown) => void) => void;
type ActionValidation = { types: unknown; custom?: unknown };
type Validations = {
  checkTypes(data: unknown, types: unknown): unknown;
  checkValidations(data: unknown, types: unknown, custom: unknown, store: Store): void;
};
/** The item operations the handlers use: served by dynaliteInProcess (all others by dynalite's handler). */
const ITEM_OPERATIONS = new Map(
  ['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem', 'Query', 'Scan', 'BatchGetItem', 'BatchWriteItem'].map((op) => {
    const name = op[0]!.toLowerCase() + op.slice(1);
    return [
      op,
      { name, action: undefined as Action | undefined, validation: undefined as ActionValidation | undefined },
    ];
  }),
);
const API_VERSIONS = new Set(['DynamoDB_20111205', 'DynamoDB_20120810']);

/**
 * dynalite's request handler as the SDK clients call it in-process: for an item operation, as the in-process
 * transport always sends it (POST to /, JSON body, the local Authorization and X-Amz-Date, no Origin), the steps of
 * dynalite's own handler that such a request reaches, in its order (request id, type checks and validations, the
 * action, the reply with its CRC32) without what only an HTTP request needs (a stream to read, a response object, the
 * URL's query string, the Authorization header taken apart); every other request (other operations, anything
 * unexpected, a body that does not parse as a JSON object) goes through dynalite's handler as before
 * (./inprocess.ts dynaliteService), whose answers the checks above would be. The request id is dynalite's format (39
 * random bytes in base64, upper case, + and / as 0) from a pool of random bytes instead of a 39-byte CSPRNG call each.
 */
export function dynaliteInProcess(server: Server): LocalService {
  const fallback = dynaliteService(server);
  const store = stores.get(server);
  if (!store) return fallback;
  const validations = fromDynalite('./validations') as Validations;
  const crc32 = fromDynalite('buffer-crc32') as { unsigned(text: string): number };
  return (request) => {
    const { headers } = request;
    const target = headers['x-amz-target']?.split('.');
    const operation =
      target?.length === 2 && API_VERSIONS.has(target[0]!) ? ITEM_OPERATIONS.get(target[1]!) : undefined;
    const contentType = (headers['content-type'] ?? '').split(';')[0]!.trim();
    if (
      !operation ||
      request.method !== 'POST' ||
      request.path !== '/' ||
      headers.origin !== undefined ||
      (contentType !== 'application/x-amz-json-1.0' && contentType !== 'application/json') ||
      headers.authorization !== LOCAL_AUTHORIZATION ||
      !headers['x-amz-date'] ||
      request.body === ''
    )
      return fallback(request);
    let data: unknown;
    try {
      data = JSON.parse(request.body);
    } catch {
      return fallback(request); // dynalite's SerializationException
    }
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return fallback(request);
    operation.action ??= fromDynalite(`./actions/${operation.name}`) as Action;
    operation.validation ??= fromDynalite(`./validations/${operation.name}`) as ActionValidation;
    const { action, validation } = operation;
    return new Promise<LocalHttpReply>((resolve) => {
      const replyHeaders: Record<string, string> = { 'x-amzn-requestid': requestId() };
      const send = (out: unknown, status = 200) => {
        const body = JSON.stringify(out);
        replyHeaders['x-amz-crc32'] = String(crc32.unsigned(body));
        replyHeaders['content-type'] = contentType; // dynalite answers in the request's JSON type
        replyHeaders['content-length'] = String(Buffer.byteLength(body, 'utf8'));
        resolve({ status, headers: replyHeaders, body });
      };
      try {
        data = validations.checkTypes(data, validation.types);
        validations.checkValidations(data, validation.types, validation.custom, store);
      } catch (err) {
        const e = err as ActionError;
        if (e.statusCode) return send(e.body, e.statusCode);
        throw err; // rejects, as dynaliteService does for what dynalite throws while handling a request
      }
      action(store, data, (err, out) => {
        if (err?.statusCode) return send(err.body, err.statusCode);
        if (err) throw err; // as in dynalite's handler
        send(out);
      });
    });
  };
}

/** 52 characters as dynalite's rand52CharId makes them, from a pool refilled every 64 ids. */
const ID_BYTES = 39;
let idPool = Buffer.alloc(0);
let idAt = 0;
function requestId(): string {
  if (idAt + ID_BYTES > idPool.length) {
    idPool = randomBytes(ID_BYTES * 64);
    idAt = 0;
  }
  const bytes = idPool.subarray(idAt, idAt + ID_BYTES);
  idAt += ID_BYTES;
  return bytes.toString('base64').toUpperCase().replace(/\+|\//g, '0');
}

// ---- iterators ----

/** An abstract-level iterator, as far as closeIterators uses it. */
type LevelIterator = { close(): Promise<void>; return?: () => Promise<void> };

/** Iterators of each store opened through its streams and not closed yet (for tests: see openIterators). */
const open = new WeakMap<Store, { count: number }>();

function closeIterators(store: Store): void {
  const { db } = store;
  const counter = { count: 0 };
  open.set(store, counter);
  for (const method of ['keys', 'values'] as const) {
    const create = db[method];
    if (typeof create !== 'function') continue;
    db[method] = function (this: unknown, options?: unknown) {
      const iterator = create.call(this, options) as LevelIterator | undefined;
      if (iterator && typeof iterator.close === 'function' && iterator.return === undefined) {
        counter.count++;
        let closing: Promise<void> | undefined;
        iterator.return = () => {
          if (!closing) {
            counter.count--;
            closing = iterator.close();
          }
          return closing;
        };
      }
      return iterator;
    };
  }
}

/** How many iterators dynalite's streams opened on `server`'s store and have not closed (0 once they all ended). */
export function openIterators(server: Server): number {
  const store = stores.get(server);
  return (store && open.get(store)?.count) ?? 0;
}

// ---- expressions ----

type AttrValue = Record<string, unknown>;
type ParseContext = {
  attrNames?: Record<string, string>;
  attrVals?: Record<string, AttrValue>;
  unusedAttrNames?: Record<string, boolean>;
  unusedAttrVals?: Record<string, boolean>;
  isKeyCondition?: boolean;
  [other: string]: unknown;
};
type Parser = { parse(input: string, options?: { context?: ParseContext }): unknown };

/** A parse result with the value objects replaced by ValueSlots, and the names and values the expression uses. */
type Template = { tree: unknown; usedNames: string[]; usedVals: string[] };
class ValueSlot {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }
}

// The handlers send a few dozen distinct expressions; a few (a device's registration) name a new attribute each time,
// so the least recently used template is dropped first, and at most this many (about 2.5 KB each) are kept.
const MAX_TEMPLATES = 256;
/** Checks that read an expression's values, not only their types: never templated (see the header comment). */
const READS_VALUES = /between|attribute_type/i;
let templatesInstalled = false;

function installExpressionTemplates(): void {
  if (templatesInstalled) return;
  templatesInstalled = true;
  const templates = new Map<string, Template>();
  for (const name of ['conditionParser', 'updateParser', 'projectionParser']) {
    // dynalite's validations call `parser.parse` through these module objects.
    const parser = require(`dynalite/db/${name}`) as Parser;
    const parse = parser.parse.bind(parser);
    parser.parse = (input, options) => {
      const context = options?.context;
      const key = context && typeof input === 'string' ? templateKey(name, input, context) : undefined;
      if (key === undefined || !context) return parse(input, options);
      const template = templates.get(key);
      if (template) {
        templates.delete(key); // the most recently used last: the least recently used is dropped first
        templates.set(key, template);
        markUsed(context, template.usedNames, template.usedVals);
        const values = context.attrVals ?? {};
        return copy(template.tree, (v) => (v instanceof ValueSlot ? values[v.name] : undefined));
      }
      // Parsed against complete lists of unused names and values, to learn which ones this expression uses (an
      // earlier expression of the same request may have marked some used already).
      const names = Object.keys(context.attrNames ?? {});
      const vals = Object.keys(context.attrVals ?? {});
      const unusedAttrNames = Object.fromEntries(names.map((n) => [n, true]));
      const unusedAttrVals = Object.fromEntries(vals.map((n) => [n, true]));
      const result = parse(input, { ...options, context: { ...context, unusedAttrNames, unusedAttrVals } });
      const usedNames = names.filter((n) => !(n in unusedAttrNames));
      const usedVals = vals.filter((n) => !(n in unusedAttrVals));
      markUsed(context, usedNames, usedVals);
      if (result && typeof result === 'object') {
        const slots = new Map<unknown, ValueSlot>(usedVals.map((n) => [context.attrVals?.[n], new ValueSlot(n)]));
        templates.set(key, { tree: copy(result, (v) => slots.get(v)), usedNames, usedVals });
        if (templates.size > MAX_TEMPLATES) templates.delete(templates.keys().next().value as string);
      }
      return result;
    };
  }
}

function markUsed(context: ParseContext, names: string[], vals: string[]): void {
  for (const name of names) delete context.unusedAttrNames?.[name];
  for (const name of vals) delete context.unusedAttrVals?.[name];
}

/** What a parse depends on, or undefined when it is not to be templated. */
function templateKey(parser: string, input: string, context: ParseContext): string | undefined {
  if (READS_VALUES.test(input)) return undefined;
  let types = '';
  for (const name of Object.keys(context.attrVals ?? {})) {
    const value = context.attrVals?.[name];
    if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
    types += `${name}:`;
    for (const type of Object.keys(value)) types += value[type] == null ? `${type}?,` : `${type},`;
    types += ';';
  }
  const names = JSON.stringify(context.attrNames ?? null);
  return `${parser}\n${context.isKeyCondition ? 'key' : ''}\n${input}\n${names}\n${types}`;
}

/** A deep copy of a parse result: objects keep their prototype, parts shared in it stay shared in the copy. */
function copy(value: unknown, replace: (v: unknown) => unknown, seen = new Map<unknown, unknown>()): unknown {
  if (value === null || typeof value !== 'object') return value;
  const replaced = replace(value);
  if (replaced !== undefined) return replaced;
  const known = seen.get(value);
  if (known !== undefined) return known;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(copy(item, replace, seen));
    return out;
  }
  const out = Object.create(Object.getPrototypeOf(value)) as Record<string, unknown>;
  seen.set(value, out);
  for (const key of Object.keys(value)) out[key] = copy((value as Record<string, unknown>)[key], replace, seen);
  return out;
}
