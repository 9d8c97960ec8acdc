// What every AWS SDK client gets: call observation (for the local stack and `npm run bench`). Each adapter creates
// its own client once per process, on first use, so a function bundle holds only the SDK clients it uses (cold start).
// Adapters import the SDK statically, naming the client and the commands they send (esbuild keeps only those), never
// with `await import()`: esbuild would wrap the imported package and every module it reaches, the SDK core the
// function also loads at start included, in lazy initialisers that V8 parses twice at every cold start
// (infra/bundling.ts; a test in test/infra/bundling.test.ts fails on it). Endpoints come from the standard
// AWS_ENDPOINT_URL_<SERVICE> variables: the local stack changes configuration, never code.
import { logContext } from '../runtime/log.ts';

/** One AWS call as seen by the caller: used by the local stack and `npm run bench` to count calls and critical-path depth. */
export type AwsCall = {
  service: string;
  operation: string;
  start: number;
  end: number;
  ok: boolean;
  /** The handler invocation that made it (runtime/handler.ts): its function name and request id. */
  invocation?: { function: string; awsRequestId: string };
};
export type AwsCallObserver = (call: AwsCall) => void;

let observer: AwsCallObserver | undefined;
/** Install (or remove) an observer of every AWS call the handlers make in this process. */
export function setAwsCallObserver(next: AwsCallObserver | undefined): void {
  observer = next;
}

type Instrumentable = {
  middlewareStack: {
    add(
      mw: (
        next: (args: unknown) => Promise<unknown>,
        ctx: { commandName?: string },
      ) => (args: unknown) => Promise<unknown>,
      opts: { step: 'initialize'; name: string },
    ): void;
  };
};

/** Report every call of `client` to the observer, if one is installed. */
function instrument<C>(client: C, service: string): C {
  (client as unknown as Instrumentable).middlewareStack.add(
    (next, ctx) => async (args) => {
      if (!observer) return next(args);
      const start = performance.now();
      const fields = logContext();
      const invocation =
        typeof fields?.function === 'string' && typeof fields.awsRequestId === 'string'
          ? { function: fields.function, awsRequestId: fields.awsRequestId }
          : undefined;
      let ok = false;
      try {
        const out = await next(args);
        ok = true;
        return out;
      } finally {
        observer?.({
          service,
          operation: (ctx.commandName ?? 'Unknown').replace(/Command$/, ''),
          start,
          end: performance.now(),
          ok,
          ...(invocation ? { invocation } : {}),
        });
      }
    },
    { step: 'initialize', name: 'cibaCallObserver' },
  );
  return client;
}

// Local stack only (local/stack.ts, local/inprocess.ts): a setup applied to each client right after it is created,
// before its first call; there it swaps the HTTP transport and SigV4 signing for an in-process call to the local
// service. Nothing in Lambda sets it, so deployed clients are exactly as `create` makes them.
let localSetup: ((client: unknown, service: string) => void) | undefined;
/** Local stack only: install (or remove) the setup of clients created from now on. */
export function setLocalClientSetup(next: ((client: unknown, service: string) => void) | undefined): void {
  localSetup = next;
}

/**
 * A getter for one SDK client, created (and observed) on first use, then reused for the life of the process. Its
 * middleware is resolved once per command class, not on every call (see cacheHandlers).
 */
export function awsClient<C>(service: string, create: () => C): () => C {
  let client: C | undefined;
  return () => (client ??= instrument(setUp(cacheHandlers(create()), service), service));
}

/**
 * Turns on the SDK's own `cacheMiddleware` unless the client was created with an explicit value: each command class's
 * middleware chain is built on its first call and reused, instead of cloning, sorting and composing the whole stack
 * again on every call (about 30 µs of CPU and 25 KB of garbage per call). It is safe because nothing changes a
 * client's middleware after its first call (instrument and the local setup run right after it is created). The
 * DynamoDB client says `cacheMiddleware: false`: lib-dynamodb refuses it, and its document client caches per command
 * class itself (store/table.ts).
 */
function cacheHandlers<C>(client: C): C {
  const config = (client as { config?: { cacheMiddleware?: boolean } }).config;
  if (config && config.cacheMiddleware === undefined) config.cacheMiddleware = true;
  return client;
}

/** The client, after the local setup if one is installed (local stack only; else the client as created). */
function setUp<C>(client: C, service: string): C {
  localSetup?.(client, service);
  return client;
}
