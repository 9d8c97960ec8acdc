// What every AWS SDK client gets: call observation (for the local stack and `npm run bench`). Each adapter creates
// its own client once per process, so a function bundle loads only the SDK clients it uses (cold start). Endpoints
// come from the standard AWS_ENDPOINT_URL_<SERVICE> variables: the local stack changes configuration, never code.
/** One AWS call as seen by the caller: used by the local stack and `npm run bench` to count calls and critical-path depth. */
export type AwsCall = { service: string; operation: string; start: number; end: number; ok: boolean };
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
        });
      }
    },
    { step: 'initialize', name: 'cibaCallObserver' },
  );
  return client;
}

/** A getter for one SDK client, created (and observed) on first use, then reused for the life of the process. */
export function awsClient<C>(service: string, create: () => C): () => C {
  let client: C | undefined;
  return () => (client ??= instrument(create(), service));
}
