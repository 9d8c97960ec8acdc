// The local "AWS endpoint": one HTTP server on loopback that the handlers' unchanged AWS SDK clients reach through
// AWS_ENDPOINT_URL_SFN, AWS_ENDPOINT_URL_SNS and AWS_ENDPOINT_URL_SQS (ops/tests: `aws sqs … --endpoint-url <url>`).
// It routes by protocol:
// - Step Functions JSON protocol (awsJson1_0): header `X-Amz-Target: AWSStepFunctions.<Operation>`;
// - SQS JSON protocol (awsJson1_0): header `X-Amz-Target: AmazonSQS.<Operation>` (on start, a LocalSqs without an
//   endpoint gets this server's URL for its queue URLs);
// - SNS query protocol (awsQuery): form-encoded body with `Action=…`;
// - SES v2 (restJson1): by path, `/v2/email/…` (./ses.ts).
// It also holds what the three services share: the error type (AwsError), the reply shape, and the awsJson1_0
// request parsing and error replies (SNS, an awsQuery service, shares the error type and reply shape).
// Differences from AWS: no SigV4 signature or credential checks, plain HTTP, no request size limits beyond 1 MB.
// The same routing is also served in-process (`serve`), the local stack's transport for the handlers' SDK clients
// (./inprocess.ts).
import { listen, readBody } from './http-server.ts';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { LocalStepFunctions } from './stepfunctions.ts';
import type { LocalSns } from './sns.ts';
import type { LocalSqs } from './sqs.ts';
import type { LocalSes } from './ses.ts';
import type { LocalHttpReply, LocalHttpRequest } from './inprocess.ts';

/** An error a local AWS service answers with: `code` names it in the protocol, `status` is the HTTP status. */
export class AwsError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, message: string, status = 400) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
  }
}

/** One reply of a local AWS service. */
export type AwsReply = { status: number; contentType: string; body: string; headers: Record<string, string> };

/** `err` as an AwsError; anything else is logged (it is a bug here) and becomes a 500 InternalFailure. */
export function asAwsError(err: unknown, log: (line: string) => void, service: string): AwsError {
  if (err instanceof AwsError) return err;
  log(`[${service}] internal error: ${err instanceof Error ? err.stack : String(err)}`);
  return new AwsError('InternalFailure', 'Internal failure', 500);
}

// ---- awsJson1_0 (Step Functions, SQS) ----

/** The operation of an awsJson1_0 `X-Amz-Target: <Service>.<Operation>` header. */
export function jsonOperation(target: string): string {
  return target.slice(target.indexOf('.') + 1);
}

/** The input object of an awsJson1_0 request body (an empty body is {}). */
export function jsonInput(body: string): Record<string, unknown> {
  let input: unknown;
  try {
    input = body.trim() === '' ? {} : JSON.parse(body);
  } catch {
    throw new AwsError('SerializationException', 'Request body is not valid JSON');
  }
  if (!input || typeof input !== 'object' || Array.isArray(input)) {
    throw new AwsError('SerializationException', 'Request body is not a JSON object');
  }
  return input as Record<string, unknown>;
}

export function jsonReply(payload: unknown, status = 200, headers: Record<string, string> = {}): AwsReply {
  return {
    status,
    contentType: 'application/x-amz-json-1.0',
    body: JSON.stringify(payload),
    headers: { 'x-amzn-requestid': randomUUID(), ...headers },
  };
}

/**
 * The awsJson1_0 error reply `{"__type", "message"}` for `err`; `shape` gives the `__type` the service uses for it
 * (the SDK reads the error name after the last `#`) and any extra headers.
 */
export function jsonErrorReply(
  err: unknown,
  log: (line: string) => void,
  service: string,
  shape: (e: AwsError) => { type: string; headers?: Record<string, string> },
): AwsReply {
  const e = asAwsError(err, log, service);
  const { type, headers } = e.status >= 500 ? { type: e.code } : shape(e);
  return jsonReply({ __type: type, message: e.message }, e.status, headers);
}

// ---- the server ----

export type AwsEndpointOptions = {
  stepFunctions?: LocalStepFunctions;
  sns?: LocalSns;
  sqs?: LocalSqs;
  ses?: LocalSes;
  host?: string;
  /** 0 (default) = a random free port. */
  port?: number;
  log?: (line: string) => void;
};

export type AwsEndpoint = {
  url: string;
  port: number;
  /** Serves one request in-process, as the HTTP listener would (local/inprocess.ts: the SDK clients' transport). */
  serve(request: LocalHttpRequest): Promise<LocalHttpReply>;
  /** Stops listening and drops open connections (call once its users are quiet). */
  close(): Promise<void>;
};

const MAX_BODY = 1024 * 1024;

export async function startAwsEndpoint(options: AwsEndpointOptions): Promise<AwsEndpoint> {
  const host = options.host ?? '127.0.0.1';
  const log = options.log ?? ((line: string) => console.error(line));
  const server = createServer((req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      log(`[aws-endpoint] ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent) send(res, jsonReply({ message: 'Internal error' }, 500));
      else res.destroy();
    });
  });
  const endpoint = await listen(server, host, options.port, true);
  if (options.sqs && options.sqs.endpoint === undefined) options.sqs.setEndpoint(endpoint.url);
  const serve = async (request: LocalHttpRequest): Promise<LocalHttpReply> => {
    let reply: AwsReply;
    if (Buffer.byteLength(request.body) > MAX_BODY) reply = jsonReply({ message: 'Request too large' }, 413);
    else {
      try {
        reply = await dispatch(request.method, request.path, request.headers['x-amz-target'], request.body, options);
      } catch (err) {
        log(`[aws-endpoint] ${err instanceof Error ? err.stack : String(err)}`);
        reply = jsonReply({ message: 'Internal error' }, 500);
      }
    }
    return { status: reply.status, headers: { ...reply.headers, 'content-type': reply.contentType }, body: reply.body };
  };
  return { ...endpoint, serve };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AwsEndpointOptions): Promise<void> {
  const raw = await readBody(req, MAX_BODY);
  if (raw === undefined) return send(res, jsonReply({ message: 'Request too large' }, 413));
  const target = req.headers['x-amz-target'];
  send(res, await dispatch(req.method ?? '', req.url ?? '', target, raw.toString('utf8'), options));
}

/** Routes one request to its service by protocol (see the header comment). */
async function dispatch(
  method: string,
  url: string,
  target: string | string[] | undefined,
  body: string,
  options: AwsEndpointOptions,
): Promise<AwsReply> {
  if (typeof target === 'string' && target.startsWith('AWSStepFunctions.')) {
    if (!options.stepFunctions) return unknownService();
    return options.stepFunctions.handleHttp(target, body);
  }
  if (typeof target === 'string' && target.startsWith('AmazonSQS.')) {
    if (!options.sqs) return unknownService();
    return options.sqs.handleHttp(target, body);
  }
  if (url.startsWith('/v2/email/')) {
    if (!options.ses) return unknownService();
    return options.ses.handleHttp(method, url, body);
  }
  if (method === 'POST' && /(^|&)Action=/.test(body)) {
    if (!options.sns) return unknownService();
    return options.sns.handleHttp(body);
  }
  return unknownService();
}

function unknownService(): AwsReply {
  return jsonReply({ __type: 'UnknownOperationException', message: 'No local service for this request' }, 400);
}

function send(res: ServerResponse, reply: AwsReply): void {
  res.writeHead(reply.status, {
    'x-amzn-requestid': randomUUID(),
    ...reply.headers,
    'content-type': reply.contentType,
    'content-length': Buffer.byteLength(reply.body),
  });
  res.end(reply.body);
}
