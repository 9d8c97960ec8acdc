// The local "AWS endpoint": one HTTP server on loopback that the handlers' unchanged AWS SDK clients reach through
// AWS_ENDPOINT_URL_SFN, AWS_ENDPOINT_URL_SNS and AWS_ENDPOINT_URL_SQS (ops/tests: `aws sqs … --endpoint-url <url>`).
// It routes by protocol:
// - Step Functions JSON protocol (awsJson1_0): header `X-Amz-Target: AWSStepFunctions.<Operation>`;
// - SQS JSON protocol (awsJson1_0): header `X-Amz-Target: AmazonSQS.<Operation>` (queue URLs in replies use the
//   request's Host; on start, a LocalSqs without an endpoint gets this server's URL for its queue URLs);
// - SNS query protocol (awsQuery): form-encoded body with `Action=…`.
// Differences from AWS: no SigV4 signature or credential checks, plain HTTP, no request size limits beyond 1 MB.
import { listen, readBody } from './http-server.ts';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { LocalStepFunctions } from './stepfunctions.ts';
import type { LocalSns } from './sns.ts';
import type { LocalSqs } from './sqs.ts';

export type AwsEndpointOptions = {
  stepFunctions?: LocalStepFunctions;
  sns?: LocalSns;
  sqs?: LocalSqs;
  host?: string;
  /** 0 (default) = a random free port. */
  port?: number;
  log?: (line: string) => void;
};

export type AwsEndpoint = {
  url: string;
  port: number;
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
      if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ message: 'Internal error' }));
      else res.destroy();
    });
  });
  const endpoint = await listen(server, host, options.port, true);
  if (options.sqs && options.sqs.endpoint === undefined) options.sqs.setEndpoint(endpoint.url);
  return endpoint;
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AwsEndpointOptions): Promise<void> {
  const raw = await readBody(req, MAX_BODY);
  if (raw === undefined) return send(res, 413, 'application/json', JSON.stringify({ message: 'Request too large' }));
  const body = raw.toString('utf8');
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string' && target.startsWith('AWSStepFunctions.')) {
    if (!options.stepFunctions) return unknownService(res);
    const reply = await options.stepFunctions.handleHttp(target, body);
    return send(res, reply.status, reply.contentType, reply.body);
  }
  if (typeof target === 'string' && target.startsWith('AmazonSQS.')) {
    if (!options.sqs) return unknownService(res);
    const host = req.headers.host;
    const origin = host && /^[A-Za-z0-9.:[\]-]+$/.test(host) ? `http://${host}` : undefined;
    const reply = options.sqs.handleHttp(target, body, origin);
    return send(res, reply.status, reply.contentType, reply.body, reply.headers);
  }
  if (req.method === 'POST' && /(^|&)Action=/.test(body)) {
    if (!options.sns) return unknownService(res);
    const reply = options.sns.handleHttp(body);
    return send(res, reply.status, reply.contentType, reply.body);
  }
  return unknownService(res);
}

function unknownService(res: ServerResponse): void {
  send(res, 400, 'application/json', JSON.stringify({ __type: 'UnknownOperationException', message: 'No local service for this request' }));
}

function send(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'x-amzn-requestid': randomUUID(), ...headers, 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

