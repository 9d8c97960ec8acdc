// The in-process transport of the local stack: the handlers' AWS SDK clients hand each serialized HTTP request
// straight to the local service's request handler (dynalite's, or the local AWS endpoint's), without TCP and without
// SigV4 signing (nothing checks signatures locally). The request and the reply are still the real wire format (JSON,
// awsQuery, XML), serialized and parsed by the SDK as over HTTP, so what the SDK sends and reads is unchanged; only
// the socket, the HMACs and the middleware that serves nothing without them are gone (resolving the endpoint and the
// credentials on every call: see useInProcess). The HTTP listeners stay up for everything else (the AWS CLI,
// `npm run admin`, tests with their own clients).
//
// Installed by local/stack.ts through functions/adapters/aws.ts `setLocalClientSetup` (local mode only: on AWS no
// setup is installed and the clients are exactly as created).
import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';

/** One request as a local service sees it: header names in lower case. */
export type LocalHttpRequest = { method: string; path: string; headers: Record<string, string>; body: string };
/** Its reply: header names in lower case. */
export type LocalHttpReply = { status: number; headers: Record<string, string>; body: string };
export type LocalService = (request: LocalHttpRequest) => Promise<LocalHttpReply>;

/** What the SDK hands a request handler (smithy HttpRequest), as far as this transport reads it. */
type SdkRequest = {
  method: string;
  path?: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
};
type SdkResponse = { statusCode: number; headers: Record<string, string>; body: Uint8Array };

/**
 * A smithy HttpHandler calling `service()` (looked up per request, so a stack restarted in the same process is
 * reached by clients created for the previous one). No service (the stack is closed): ECONNREFUSED, as over TCP.
 */
export function inProcessRequestHandler(service: () => LocalService | undefined) {
  return {
    metadata: { handlerProtocol: 'local' },
    async handle(request: SdkRequest): Promise<{ response: SdkResponse }> {
      const serve = service();
      if (!serve) {
        throw Object.assign(new Error('connect ECONNREFUSED (the local stack is closed)'), { code: 'ECONNREFUSED' });
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
      // What LOCAL_SIGNER adds, for a client whose signing middleware is pruned (useInProcess).
      headers.authorization ??= LOCAL_AUTHORIZATION;
      headers['x-amz-date'] ??= amzDate();
      let path = request.path || '/';
      const query = request.query ? queryString(request.query) : '';
      if (query) path += `?${query}`;
      const reply = await serve({ method: request.method, path, headers, body: bodyText(request.body) });
      return {
        response: { statusCode: reply.status, headers: reply.headers, body: Buffer.from(reply.body, 'utf8') },
      };
    },
    updateHttpClientConfig(): void {},
    httpHandlerConfigs(): Record<string, never> {
      return {};
    },
    destroy(): void {},
  };
}

/**
 * The SigV4 signer's stand-in: no HMAC, only a well-formed Authorization and X-Amz-Date (dynalite refuses a request
 * without them, as DynamoDB does; it checks no signature).
 */
export const LOCAL_SIGNER = {
  async sign<R extends { headers: Record<string, string> }>(request: R): Promise<R> {
    request.headers.authorization = LOCAL_AUTHORIZATION;
    request.headers['x-amz-date'] = amzDate();
    return request;
  },
};
export const LOCAL_AUTHORIZATION =
  'AWS4-HMAC-SHA256 Credential=local/20000101/us-east-1/local/aws4_request, SignedHeaders=host, Signature=local';

let dateCache = { second: -1, text: '' };
function amzDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateCache.second) {
    dateCache = { second, text: new Date(second * 1000).toISOString().replace(/[-:]|\.\d{3}/g, '') };
  }
  return dateCache.text;
}

/**
 * Middleware that only matters on a real HTTP connection to AWS, removed from in-process clients (about 0.13 ms of
 * CPU per call): the User-Agent and X-Amzn-Trace-Id headers, Host and Content-Length, and the SDK's logging of each
 * call to its logger (a no-op logger in the handlers). Serialization, retries, signing (the no-op signer) and
 * deserialization stay.
 */
const HTTP_ONLY_MIDDLEWARE = [
  'getUserAgentMiddleware',
  'recursionDetectionMiddleware',
  'hostHeaderMiddleware',
  'contentLengthMiddleware',
  'loggerMiddleware',
];

/**
 * Middleware each command adds to its chain (or places relative to one it adds) that only matters with a real
 * endpoint and a real signature, pruned from in-process clients (about 40 µs of CPU per call): resolving the
 * endpoint from the rule set on every call (the configured endpoint is pinned in the config instead, as that
 * middleware itself pins it on each call), selecting the auth scheme and resolving credentials, and signing (the
 * transport adds what LOCAL_SIGNER would).
 */
const REMOTE_ONLY_MIDDLEWARE = ['endpointV2Middleware', 'httpAuthSchemeMiddleware', 'httpSigningMiddleware'];

/** A smithy middleware stack, as far as this module changes it. */
type SdkStack = {
  remove(name: string): boolean;
  concat(from: unknown): SdkStack;
  resolve(handler: () => Promise<unknown>, context: object): unknown;
};

/** What functions/adapters/aws.ts hands the setup: an SDK client, as far as this module changes it. */
type SdkClient = {
  middlewareStack: SdkStack;
  config: {
    requestHandler?: unknown;
    httpAuthSchemes?: { schemeId: string; signer: unknown; identityProvider: unknown }[];
    endpoint?: () => Promise<unknown>;
    isCustomEndpoint?: boolean;
    serviceConfiguredEndpoint?: () => Promise<string | undefined>;
  };
};

/**
 * Makes `client` use the in-process transport and the no-op signer, without the middleware that only matters over
 * HTTP or with a remote endpoint. Called once per client, right after it is created and before its first call (the
 * SDK reads its config and builds each command's chain from the stack at the call).
 */
export function useInProcess(client: unknown, service: () => LocalService | undefined): void {
  const { config, middlewareStack } = client as SdkClient;
  config.requestHandler = inProcessRequestHandler(service);
  const schemes = config.httpAuthSchemes;
  if (schemes) for (const [i, scheme] of schemes.entries()) schemes[i] = { ...scheme, signer: LOCAL_SIGNER };
  for (const name of HTTP_ONLY_MIDDLEWARE) middlewareStack.remove(name);
  pinConfiguredEndpoint(config);
  if (config.endpoint) pruneOnConcat(middlewareStack);
}

/**
 * The endpoint of AWS_ENDPOINT_URL_<SERVICE> (or the shared config file) as the client's `endpoint`, as if it had been
 * given in code: what the endpoint middleware does on each call, once. The serializer builds each request on it. A
 * client with no configured endpoint (one made for this transport alone, as in tests) gets http://localhost/: the
 * transport never dials it, and reads only the path (the endpoint's, `/`, plus the operation's).
 */
function pinConfiguredEndpoint(config: SdkClient['config']): void {
  const configured = config.serviceConfiguredEndpoint;
  if (config.endpoint || config.isCustomEndpoint || typeof configured !== 'function') return;
  let endpoint: Promise<unknown> | undefined;
  config.endpoint = () =>
    (endpoint ??= configured().then((url) => {
      const u = new URL(url || 'http://localhost/');
      return {
        hostname: u.hostname,
        port: u.port ? Number(u.port) : undefined,
        protocol: u.protocol,
        path: u.pathname,
      };
    }));
  config.isCustomEndpoint = true;
}

/**
 * Each command's chain is built by concatenating its own middleware onto the client's stack (lib-dynamodb's commands
 * concatenate twice): every concatenation of `stack` leaves out REMOTE_ONLY_MIDDLEWARE, unless what remains does not
 * resolve (a service whose own middleware is placed relative to one of them, e.g. SQS's queue URL middleware): then
 * the chain is kept whole, and signed by LOCAL_SIGNER.
 */
function pruneOnConcat(stack: SdkStack): SdkStack {
  const concat = stack.concat.bind(stack);
  stack.concat = (from) => {
    const whole = pruneOnConcat(concat(from));
    const pruned = pruneOnConcat(concat(from));
    for (const name of REMOTE_ONLY_MIDDLEWARE) pruned.remove(name);
    try {
      // Throws when a middleware is placed relative to a removed one (before composing anything; composing calls
      // only each middleware's factory, which keeps the next handler and the context).
      pruned.resolve(() => Promise.resolve(), {});
      return pruned;
    } catch {
      return whole;
    }
  };
  return stack;
}

/**
 * dynalite's own request handler, called in-process: dynalite is an http.Server whose one 'request' listener reads
 * the request as a stream and answers through `res.setHeader`/`res.end`; it gets a minimal stand-in of each. (The
 * local stack's item operations take a shorter way in: ./dynalite.ts dynaliteInProcess, which falls back on this.)
 */
export function dynaliteService(server: Server): LocalService {
  const listener = server.listeners('request')[0] as ((req: unknown, res: unknown) => void) | undefined;
  if (!listener) throw new Error('dynalite: no request handler on its server');
  return (request) =>
    new Promise<LocalHttpReply>((resolve, reject) => {
      const headers: Record<string, string> = {};
      const res = {
        statusCode: 200,
        contentType: undefined as string | undefined,
        setHeader(name: string, value: unknown) {
          headers[name.toLowerCase()] = String(value);
        },
        end(body?: string | Buffer) {
          resolve({ status: res.statusCode, headers, body: body === undefined ? '' : String(body) });
        },
      };
      const req = Object.assign(new EventEmitter(), {
        method: request.method,
        url: request.path,
        headers: request.headers,
      });
      try {
        listener(req, res);
        if (request.body !== '') req.emit('data', Buffer.from(request.body, 'utf8'));
        req.emit('end');
      } catch (err) {
        reject(err); // over HTTP this would have crashed the process (dynalite throws from its stream listeners)
      }
    });
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  throw new Error('the local in-process transport takes string or byte bodies only');
}

function queryString(query: Record<string, string | string[] | null>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === null) params.append(name, '');
    else if (Array.isArray(value)) for (const v of value) params.append(name, v);
    else params.append(name, value);
  }
  return params.toString();
}
