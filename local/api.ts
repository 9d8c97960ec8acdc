// Local API Gateway (HTTP API, Lambda proxy integration, payload format 2.0): a node:http server that turns each
// request into the event API Gateway would send, calls the route's real handler (functions/handlers/<name>.ts,
// `handler(event, context)`) and maps its result back like API Gateway does. Routes come from functions/routes.ts,
// the same table CDK builds the API from.
//
// Differences from API Gateway: no custom domains, stages other than $default, authorizers, CORS or throttling;
// the integration timeout (30 s → 503) is applied but the handler keeps running; `cookie` is passed in
// `event.cookies` as on AWS; a response without Content-Type gets none (API Gateway may add application/json).
//
// Mutual TLS (option `https`): a second, HTTPS listener serves the same routes and asks every client for a
// certificate, standing in for an mTLS custom domain. A presented certificate reaches the handler as API Gateway
// passes it, in requestContext.authentication.clientCert (see clientCertificateOf). Unlike API Gateway, which needs
// a truststore and answers 403 {"message":"Forbidden"} to a request without a trusted client certificate, here
//  - a client certificate is optional: without one the request reaches the handler with no `authentication`;
//  - with `ca` (the truststore), a presented certificate that does not chain to it is answered 403
//    {"message":"Forbidden"} before any routing or handler; API Gateway also refuses self-signed certificates that
//    are not themselves in the truststore, and so does this listener when `ca` is set;
//  - without `ca`, any presented certificate (self-signed included) is forwarded unverified, so
//    self_signed_tls_client_auth can be tried locally without building a truststore.
// The HTTPS listener sets x-forwarded-proto https; the plain HTTP listener keeps http.
// Like an HTTP API: unknown path or a known path with another method → 404 {"message":"Not Found"}; a handler that
// throws or returns something invalid → 500 {"message":"Internal Server Error"}; body over 10 MB → 413.
// A trailing slash is ignored in matching (`/device/` matches `GET /device`), as API Gateway does; rawPath keeps it.
// HEAD matches HEAD routes only (as on AWS); a HEAD response never has a body, and when the handler returns none, its
// Content-Length is passed on (API Gateway reserves that header: whether it does the same is not documented).
import { listen, readBody, type Listening } from './http-server.ts';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { TLSSocket } from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { X509Certificate } from 'node:crypto';
import type {
  APIGatewayEventClientCertificate,
  APIGatewayProxyEventV2,
  APIGatewayProxyResultV2,
  Context,
} from 'aws-lambda';
import { ROUTES } from '../functions/routes.ts';
import type { HttpRoute } from '../functions/routes.ts';
import { LOCAL_ACCOUNT_ID, LOCAL_REGION } from './dynamodb.ts';

export type HttpLambdaHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyResultV2 | unknown>;
/** Returns the handler for a route (default: `handler` exported by functions/handlers/<route.name>.ts). */
/** Loads the handler of a function by its name (an HTTP route or a workflow function of functions/routes.ts). */
export type HandlerLoader = (fn: { name: string }) => Promise<HttpLambdaHandler>;

/** One served request, for `npm run bench` and logs (times from performance.now()). */
export type RequestLogEntry = {
  requestId: string;
  method: string;
  path: string;
  /** The matched route's routeKey, e.g. `POST /device/requests/{id}`. */
  routeKey?: string;
  status: number;
  start: number;
  end: number;
};

export type ApiServerOptions = {
  host?: string;
  /** 0 = a random free port. */
  port?: number;
  routes?: readonly HttpRoute[];
  loadHandler?: HandlerLoader;
  /** Called after each response. */
  onRequest?: (entry: RequestLogEntry) => void;
  /** Requests wait for this before reaching a handler (the stack holds them until it is configured and seeded). */
  /** Requests wait for it; `false`: the stack did not start, and they are answered 503. */
  ready?: Promise<boolean>;
  /** API Gateway's integration timeout (default 30 s). */
  timeoutMs?: number;
  log?: (line: string) => void;
  /** Also serve the routes over HTTPS with optional client certificates (mutual TLS; see the header comment). */
  https?: HttpsListenerOptions;
};

export type HttpsListenerOptions = {
  /** 0 or absent = a random free port. */
  port?: number;
  /** The server's private key and certificate (PEM). */
  key: string | Buffer;
  cert: string | Buffer;
  /** The truststore (PEM, one or more CA certificates): presented client certificates must chain to it. */
  ca?: string | Buffer;
};

export type ApiServer = {
  url: string;
  port: number;
  /** The HTTPS listener, when the `https` option was given: https://<host>:<port>. */
  httpsUrl?: string;
  httpsPort?: number;
  close(): Promise<void>;
};

const MAX_BODY = 10 * 1024 * 1024;
const NOT_FOUND = JSON.stringify({ message: 'Not Found' });
const INTERNAL_ERROR = JSON.stringify({ message: 'Internal Server Error' });
const FORBIDDEN = JSON.stringify({ message: 'Forbidden' });

/** The default loader: the real handler modules (functions/handlers/<name>.ts), imported once each. */
export function moduleHandlerLoader(dir = new URL('../functions/handlers/', import.meta.url)): HandlerLoader {
  const cache = new Map<string, Promise<HttpLambdaHandler>>();
  return (route) => {
    let loaded = cache.get(route.name);
    if (!loaded) {
      loaded = import(new URL(`${route.name}.ts`, dir).href).then((mod: { handler?: unknown }) => {
        if (typeof mod.handler !== 'function')
          throw new Error(`functions/handlers/${route.name}.ts does not export a handler function`);
        return mod.handler as HttpLambdaHandler;
      });
      loaded.catch(() => cache.delete(route.name)); // retry the import on the next request
      cache.set(route.name, loaded);
    }
    return loaded;
  };
}

export async function startApiServer(options: ApiServerOptions = {}): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  const routes = compileRoutes(options.routes ?? ROUTES);
  const loadHandler = options.loadHandler ?? moduleHandlerLoader();
  const log = options.log ?? ((line: string) => console.error(line));
  const timeoutMs = options.timeoutMs ?? 30_000;
  const trustStore = options.https?.ca !== undefined;
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const start = performance.now();
    const requestId = randomUUID();
    let routeKey: string | undefined;
    const done = (status: number, headers: Record<string, string | string[]>, body: string | Buffer) => {
      // HEAD: node sends no body; an empty one from a handler (functions/runtime/http.ts) keeps the handler's
      // Content-Length, the size of the GET content (RFC 9110 §8.6).
      const given = req.method === 'HEAD' && Buffer.byteLength(body) === 0 ? headers['content-length'] : undefined;
      const length = typeof given === 'string' ? given : Buffer.byteLength(body);
      res.writeHead(status, { ...headers, 'apigw-requestid': requestId, 'content-length': length });
      res.end(body);
      options.onRequest?.({
        requestId,
        method: req.method ?? '',
        path: (req.url ?? '').split('?')[0] ?? '',
        ...(routeKey ? { routeKey } : {}),
        status,
        start,
        end: performance.now(),
      });
    };
    (async () => {
      // API Gateway checks the client certificate during the TLS handshake, before anything else.
      if (
        trustStore &&
        req.socket instanceof TLSSocket &&
        req.socket.getPeerX509Certificate() &&
        !req.socket.authorized
      ) {
        req.resume();
        return done(403, { 'content-type': 'application/json' }, FORBIDDEN);
      }
      const body = await readBody(req, MAX_BODY);
      if (body === undefined)
        return done(
          413,
          { 'content-type': 'application/json' },
          JSON.stringify({ message: 'Request Entity Too Large' }),
        );
      const url = req.url ?? '/';
      const rawPath = url.split('?')[0] ?? '/';
      const match = matchRoute(routes, req.method ?? 'GET', rawPath);
      if (!match) return done(404, { 'content-type': 'application/json' }, NOT_FOUND);
      routeKey = match.routeKey;
      if ((await options.ready) === false)
        return done(
          503,
          { 'content-type': 'application/json', connection: 'close' },
          JSON.stringify({ message: 'Service Unavailable' }),
        );
      const event = toApiGatewayEvent(req, body, match, requestId);
      let result: unknown;
      try {
        const handler = await loadHandler(match.route);
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
        result = await Promise.race([handler(event, lambdaContext(match.route.name, timeoutMs)), timeout]).finally(() =>
          clearTimeout(timer),
        );
        if (result === 'timeout') {
          log(`[api] ${match.routeKey}: handler did not answer within ${timeoutMs} ms`);
          return done(503, { 'content-type': 'application/json' }, JSON.stringify({ message: 'Service Unavailable' }));
        }
      } catch (err) {
        log(`[api] ${match.routeKey}: handler threw: ${err instanceof Error ? err.stack : String(err)}`);
        return done(500, { 'content-type': 'application/json' }, INTERNAL_ERROR);
      }
      const response = toHttpResponse(result);
      if (!response) {
        log(`[api] ${match.routeKey}: invalid handler response ${JSON.stringify(result)?.slice(0, 200)}`);
        return done(500, { 'content-type': 'application/json' }, INTERNAL_ERROR);
      }
      done(response.status, response.headers, response.body);
    })().catch((err: unknown) => {
      log(`[api] ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent) done(500, { 'content-type': 'application/json' }, INTERNAL_ERROR);
      else res.destroy();
    });
  };
  const http = await listen(createServer(handle), host, options.port);
  if (!options.https) return http;
  const { key, cert, ca, port } = options.https;
  // requestCert: ask every client for a certificate; rejectUnauthorized false: decide per request (above), so a
  // client without one, or with an untrusted one, still completes the handshake.
  const tlsServer = createHttpsServer(
    { key, cert, ...(ca !== undefined ? { ca } : {}), requestCert: true, rejectUnauthorized: false },
    handle,
  );
  let https: Listening;
  try {
    https = await listen(tlsServer as unknown as Server, host, port);
  } catch (err) {
    await http.close();
    throw err;
  }
  return {
    url: http.url,
    port: http.port,
    httpsUrl: https.url.replace(/^http:/, 'https:'),
    httpsPort: https.port,
    close: async () => {
      await Promise.all([http.close(), https.close()]);
    },
  };
}

type CompiledRoute = { route: HttpRoute; routeKey: string; pattern: RegExp; params: string[]; literal: boolean };
export type RouteMatch = { route: HttpRoute; routeKey: string; pathParameters: Record<string, string> };

function compileRoutes(routes: readonly HttpRoute[]): CompiledRoute[] {
  return routes.map((route) => {
    const params: string[] = [];
    const source = route.path
      .split('/')
      .map((segment) => {
        const p = /^\{([A-Za-z0-9_]+)(\+)?\}$/.exec(segment);
        if (!p) return segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        params.push(p[1] as string);
        return p[2] ? '(.+)' : '([^/]+)';
      })
      .join('/');
    return {
      route,
      routeKey: `${route.method} ${route.path}`,
      pattern: new RegExp(`^${source}$`),
      params,
      literal: params.length === 0,
    };
  });
}

/** API Gateway matching: the most specific route wins (literal paths before templated ones); the method must match. */
function matchRoute(routes: CompiledRoute[], method: string, rawPath: string): RouteMatch | undefined {
  const candidates = routes
    .filter((r) => r.route.method === method)
    .sort((a, b) => Number(b.literal) - Number(a.literal) || a.params.length - b.params.length);
  // Like API Gateway, a path with a trailing slash reaches the route without it (`/device/` → `GET /device`).
  const trimmed = rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : undefined;
  for (const r of candidates) {
    const m = r.pattern.exec(rawPath) ?? (trimmed === undefined ? null : r.pattern.exec(trimmed));
    if (!m) continue;
    const pathParameters: Record<string, string> = {};
    for (const [i, name] of r.params.entries()) pathParameters[name] = safeDecode(m[i + 1] ?? '');
    return { route: r.route, routeKey: r.routeKey, pathParameters };
  }
  return undefined;
}

/** The payload format 2.0 event for one request. */
export function toApiGatewayEvent(
  req: IncomingMessage,
  body: Buffer,
  match: RouteMatch,
  requestId: string,
): APIGatewayProxyEventV2 {
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const rawPath = queryAt === -1 ? url : url.slice(0, queryAt);
  const rawQueryString = queryAt === -1 ? '' : url.slice(queryAt + 1);
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [name, values] of Object.entries(req.headersDistinct)) {
    if (!values) continue;
    if (name === 'cookie')
      cookies = values.flatMap((v) =>
        v
          .split(';')
          .map((c) => c.trim())
          .filter(Boolean),
      );
    else headers[name] = values.join(',');
  }
  // Added by API Gateway (which terminates TLS; locally the scheme is that of the listener).
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  const peer = req.socket instanceof TLSSocket ? req.socket.getPeerX509Certificate() : undefined;
  headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${sourceIp}` : sourceIp;
  headers['x-forwarded-proto'] ??= req.socket instanceof TLSSocket ? 'https' : 'http';
  headers['x-forwarded-port'] ??= String(req.socket.localPort ?? '');
  let queryStringParameters: Record<string, string> | undefined;
  if (rawQueryString !== '') {
    queryStringParameters = {};
    for (const [k, v] of new URLSearchParams(rawQueryString)) {
      queryStringParameters[k] = k in queryStringParameters ? `${queryStringParameters[k]},${v}` : v;
    }
  }
  const now = new Date();
  const host = headers.host ?? 'localhost';
  const method = req.method ?? 'GET';
  const text = isTextContent(headers['content-type']);
  return {
    version: '2.0',
    routeKey: match.routeKey,
    rawPath,
    rawQueryString,
    ...(cookies ? { cookies } : {}),
    headers,
    ...(queryStringParameters ? { queryStringParameters } : {}),
    ...(Object.keys(match.pathParameters).length > 0 ? { pathParameters: match.pathParameters } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: 'local',
      ...(peer ? { authentication: { clientCert: clientCertificateOf(peer) } } : {}),
      domainName: host,
      domainPrefix: host.split('.')[0]?.split(':')[0] ?? host,
      http: {
        method,
        path: rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey: match.routeKey,
      stage: '$default',
      time: formatRequestTime(now),
      timeEpoch: now.getTime(),
    },
    ...(body.length > 0 ? { body: text ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: body.length > 0 && !text,
  };
}

/**
 * requestContext.authentication.clientCert as API Gateway fills it (AWS docs, "Working with AWS Lambda proxy
 * integrations for HTTP APIs", payload 2.0 example): clientCertPem the PEM; subjectDN/issuerDN the RDNs in
 * certificate order, most significant first, `type=value` joined by `,` without spaces (e.g.
 * `C=US,ST=Washington,L=Seattle,O=Amazon Web Services,OU=Security,CN=My Client`), values escaped as in RFC 4514
 * (`\,` …), a multi-valued RDN joined by `+`; serialNumber in decimal (the docs' only example is "1"); validity in
 * OpenSSL's time format, `Aug  5 00:28:21 2120 GMT`. Attribute names are OpenSSL's short names (emailAddress, not E).
 */
export function clientCertificateOf(cert: X509Certificate): APIGatewayEventClientCertificate {
  return {
    clientCertPem: cert.toString(),
    subjectDN: distinguishedName(cert.subject),
    issuerDN: distinguishedName(cert.issuer),
    serialNumber: BigInt(`0x${cert.serialNumber}`).toString(10),
    validity: { notBefore: cert.validFrom, notAfter: cert.validTo },
  };
}

/** node's multi-line name (one RDN per line, ` + ` inside one, values already RFC 2253-escaped) → `C=US,O=…,CN=…`. */
function distinguishedName(nodeName: string): string {
  return nodeName
    .split('\n')
    .map((rdn) => rdn.replace(/(?<!\\) \+ /g, '+'))
    .join(',');
}

/** API Gateway's mapping of a format 2.0 Lambda result to the HTTP response; undefined if the result is invalid. */
export function toHttpResponse(
  result: unknown,
): { status: number; headers: Record<string, string | string[]>; body: string | Buffer } | undefined {
  if (result !== null && typeof result === 'object' && 'statusCode' in result) {
    const r = result as {
      statusCode: unknown;
      headers?: unknown;
      body?: unknown;
      cookies?: unknown;
      isBase64Encoded?: unknown;
    };
    if (typeof r.statusCode !== 'number' || !Number.isInteger(r.statusCode) || r.statusCode < 100 || r.statusCode > 599)
      return undefined;
    const headers: Record<string, string | string[]> = {};
    if (r.headers !== undefined && r.headers !== null) {
      if (typeof r.headers !== 'object') return undefined;
      for (const [name, value] of Object.entries(r.headers)) headers[name.toLowerCase()] = String(value);
    }
    if (Array.isArray(r.cookies) && r.cookies.length > 0) headers['set-cookie'] = r.cookies.map(String);
    const body = r.body === undefined || r.body === null ? '' : typeof r.body === 'string' ? r.body : undefined;
    if (body === undefined) return undefined;
    return { status: r.statusCode, headers, body: r.isBase64Encoded === true ? Buffer.from(body, 'base64') : body };
  }
  // No statusCode: API Gateway assumes 200 with a JSON body (a string is sent as is).
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: typeof result === 'string' ? result : JSON.stringify(result ?? null),
  };
}

/** A minimal Lambda context (what handlers and middy read). */
export function lambdaContext(functionName: string, timeoutMs = 30_000): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT_ID}:function:${functionName}`,
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** Text bodies are passed as is, everything else base64-encoded (isBase64Encoded: true). */
function isTextContent(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return (
    type.startsWith('text/') ||
    /^application\/([a-z0-9.+-]+\+)?(json|xml)$/.test(type) ||
    ['application/x-www-form-urlencoded', 'application/jwt', 'application/javascript', 'application/graphql'].includes(
      type,
    )
  );
}

/** API Gateway's requestContext.time format, e.g. 12/Mar/2020:19:03:58 +0000. */
function formatRequestTime(d: Date): string {
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
