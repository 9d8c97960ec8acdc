// The in-process transport of the local stack: the handlers' AWS SDK clients hand each serialized HTTP request
// straight to the local service's request handler (dynalite's, or the local AWS endpoint's), without TCP and without
// SigV4 signing (nothing checks signatures locally). The request and the reply are still the real wire format (JSON,
// awsQuery, XML), serialized and parsed by the SDK as over HTTP, so what the SDK sends and reads is unchanged; only
// the socket and the HMACs are gone. The HTTP listeners stay up for everything else (the AWS CLI, `npm run admin`,
// tests with their own clients).
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
const LOCAL_AUTHORIZATION =
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

/** What functions/adapters/aws.ts hands the setup: an SDK client, as far as this module changes it. */
type SdkClient = {
  middlewareStack: { remove(name: string): boolean };
  config: {
    requestHandler?: unknown;
    httpAuthSchemes?: { schemeId: string; signer: unknown; identityProvider: unknown }[];
  };
};

/**
 * Makes `client` use the in-process transport and the no-op signer. Called once per client, right after it is
 * created and before its first call (the SDK reads both from its config on each call's first resolution).
 */
export function useInProcess(client: unknown, service: () => LocalService | undefined): void {
  const config = (client as SdkClient).config;
  config.requestHandler = inProcessRequestHandler(service);
  const schemes = config.httpAuthSchemes;
  if (schemes) for (const [i, scheme] of schemes.entries()) schemes[i] = { ...scheme, signer: LOCAL_SIGNER };
  for (const name of HTTP_ONLY_MIDDLEWARE) (client as SdkClient).middlewareStack.remove(name);
}

/**
 * dynalite's own request handler, called in-process: dynalite is an http.Server whose one 'request' listener reads
 * the request as a stream and answers through `res.setHeader`/`res.end`; it gets a minimal stand-in of each.
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
