// The HTTP side of every API Gateway handler: middy with header normalisation and one error mapper, so a handler
// is a plain async function from event to response and any OAuthError becomes the spec's JSON error.
import httpHeaderNormalizer from '@middy/http-header-normalizer';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { OAuthError, type OAuthErrorCode } from '../core/errors.ts';
import { lambdaHandler } from './handler.ts';
import { errorFields, log, withLogContext } from './log.ts';

export type HttpEvent = APIGatewayProxyEventV2;
export type HttpResponse = APIGatewayProxyStructuredResultV2;

/** RFC 6749 §5.1: token responses (and errors) must not be cached. */
export const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return {
    statusCode,
    headers: { 'Content-Type': 'application/json', ...NO_STORE, ...headers },
    body: JSON.stringify(body),
  };
}

export function noContent(): HttpResponse {
  return { statusCode: 204, headers: { ...NO_STORE } };
}

/** The request body as text (API Gateway base64-encodes some bodies). */
export function bodyText(event: HttpEvent): string {
  if (!event.body) return '';
  return event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
}

/**
 * A JSON request body, or `error` (the endpoint's own code, e.g. RFC 7591's invalid_client_metadata) when the
 * request is not application/json or the body does not parse.
 */
export function jsonBody(event: HttpEvent, error: OAuthErrorCode = 'invalid_request'): unknown {
  if (!event.headers['content-type']?.toLowerCase().startsWith('application/json')) {
    throw new OAuthError(error, 'the request must be application/json');
  }
  try {
    return JSON.parse(bodyText(event));
  } catch {
    throw new OAuthError(error, 'the body is not valid JSON');
  }
}

/** The request URL without query, as the client addressed it (for htu and audience checks). */
export function requestUrl(issuer: string, event: HttpEvent): string {
  return issuer + event.rawPath;
}

function errorResponse(e: unknown, route: string): HttpResponse {
  if (e instanceof OAuthError) {
    if (e.status >= 500) log.error('request failed', { route, ...errorFields(e) });
    return json(e.status, e.toJSON(), e.headers);
  }
  log.error('unhandled error', { route, ...errorFields(e) });
  return json(500, { error: 'server_error', error_description: 'internal error' });
}

/**
 * RFC 9110 §9.3.2: a HEAD request gets the status and header fields a GET would get, and no content. Done here, once
 * for every route (a HEAD route in functions/routes.ts runs the same handler as its GET), because API Gateway does
 * not document removing a Lambda proxy integration's body from a HEAD response, so the function must not return
 * one. Content-Length tells the size the GET content would have (RFC 9110 §8.6); it is a header API Gateway
 * reserves (HTTP API parameter mapping, "Reserved headers"), so on AWS the client may see API Gateway's own value.
 */
export function withoutBodyForHead(event: HttpEvent, response: HttpResponse): HttpResponse {
  if (event.requestContext.http.method !== 'HEAD') return response;
  const { body, isBase64Encoded, ...rest } = response;
  const length = body === undefined ? 0 : isBase64Encoded ? Buffer.byteLength(body, 'base64') : Buffer.byteLength(body);
  return { ...rest, headers: { ...rest.headers, 'Content-Length': String(length) } };
}

/**
 * Wrap a handler: normalised headers, OAuth errors as JSON, anything else as a logged 500 server_error; no body for
 * HEAD.
 */
export function httpHandler(route: string, fn: (event: HttpEvent) => Promise<HttpResponse>) {
  return lambdaHandler<HttpEvent, HttpResponse>(route, fn)
    .use(httpHeaderNormalizer())
    .use({
      after: async (request) => {
        request.response = withoutBodyForHead(request.event, request.response);
      },
      onError: async (request) => {
        const response = withLogContext({ function: route, awsRequestId: request.context.awsRequestId }, () =>
          errorResponse(request.error, route),
        );
        request.response = withoutBodyForHead(request.event, response);
      },
    });
}
