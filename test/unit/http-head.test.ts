// functions/runtime/http.ts: a HEAD request gets what GET gets, without the body (RFC 9110 §9.3.2), from the shared
// middleware, for successes and for OAuth errors alike; other methods keep their body.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OAuthError } from '../../functions/core/errors.ts';
import { httpHandler, json, type HttpEvent, type HttpResponse } from '../../functions/runtime/http.ts';
import { lambdaContext } from '../../local/api.ts';

const event = (method: string): HttpEvent =>
  ({
    version: '2.0',
    routeKey: `${method} /doc`,
    rawPath: '/doc',
    rawQueryString: '',
    headers: {},
    isBase64Encoded: false,
    requestContext: { http: { method, path: '/doc' } },
  }) as unknown as HttpEvent;

const DOC = { issuer: 'https://op.example.com', ünïcode: 'ß' };
const ok = httpHandler('doc', async () => json(200, DOC, { 'Cache-Control': 'public, max-age=300', Pragma: '' }));
const refused = httpHandler('doc', async () => {
  throw new OAuthError('invalid_client', 'no such client', { headers: { 'WWW-Authenticate': 'Basic realm="ciba"' } });
});
const binary = httpHandler('doc', async () => ({
  statusCode: 200,
  body: Buffer.from([1, 2, 3, 4, 5]).toString('base64'),
  isBase64Encoded: true,
}));

const call = async (handler: typeof ok, method: string): Promise<HttpResponse> =>
  handler(event(method), lambdaContext('doc'));

test('HEAD: same status and header fields as GET, no body, Content-Length of the GET body in bytes', async () => {
  const get = await call(ok, 'GET');
  const head = await call(ok, 'HEAD');
  assert.equal(head.statusCode, 200);
  assert.equal(head.body, undefined);
  assert.equal('isBase64Encoded' in head, false);
  const { 'Content-Length': length, ...others } = head.headers ?? {};
  assert.deepEqual(others, get.headers);
  assert.equal(length, String(Buffer.byteLength(get.body!)));
  assert.notEqual(Buffer.byteLength(get.body!), get.body!.length, 'the fixture has multi-byte characters');
});

test('HEAD: an OAuth error keeps its status and headers, without the JSON body', async () => {
  const get = await call(refused, 'GET');
  const head = await call(refused, 'HEAD');
  assert.equal(get.statusCode, 401);
  assert.equal(head.statusCode, 401);
  assert.equal(head.body, undefined);
  assert.equal(head.headers?.['WWW-Authenticate'], 'Basic realm="ciba"');
  assert.equal(head.headers?.['Content-Length'], String(Buffer.byteLength(get.body!)));
});

test('HEAD: a base64 body counts its decoded bytes', async () => {
  const head = await call(binary, 'HEAD');
  assert.equal(head.body, undefined);
  assert.equal(head.headers?.['Content-Length'], '5');
});

test('GET and POST keep their body and get no Content-Length from the middleware', async () => {
  for (const method of ['GET', 'POST']) {
    const res = await call(ok, method);
    assert.deepEqual(JSON.parse(res.body!), DOC);
    assert.equal(res.headers?.['Content-Length'], undefined);
  }
});
