// The local API Gateway (HTTP API, payload format 2.0) with fixture handlers injected through the handler loader.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { existsSync } from 'node:fs';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { startApiServer } from '../../local/api.ts';
import { startLocalStack } from '../../local/stack.ts';
import type { ApiServer, HttpLambdaHandler, RequestLogEntry } from '../../local/api.ts';
import { ROUTES } from '../../functions/routes.ts';
import type { HttpRoute } from '../../functions/routes.ts';
import { handlers } from '../fixtures/local/api-handlers.ts';

const routes: HttpRoute[] = [
  { name: 'echo', method: 'GET', path: '/echo', access: {} },
  { name: 'echo', method: 'POST', path: '/echo', access: {} },
  { name: 'echo', method: 'POST', path: '/items/{id}', access: {} },
  { name: 'plain', method: 'GET', path: '/items/special', access: {} },
  { name: 'throws', method: 'GET', path: '/throws', access: {} },
  { name: 'plain', method: 'GET', path: '/plain', access: {} },
  { name: 'binary', method: 'GET', path: '/binary', access: {} },
  { name: 'invalid', method: 'GET', path: '/invalid', access: {} },
];

const log: RequestLogEntry[] = [];
const errors: string[] = [];
let api: ApiServer;

before(async () => {
  api = await startApiServer({
    port: 0,
    routes,
    loadHandler: async (route) => handlers[route.name as keyof typeof handlers] as HttpLambdaHandler,
    onRequest: (entry) => log.push(entry),
    log: (line) => errors.push(line),
  });
});
after(() => api.close());

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer };

/** Raw HTTP (fetch would merge repeated headers and cookies before we could see them). */
function send(method: string, path: string, headers: [string, string][] = [], body?: Buffer | string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, api.url);
    const grouped: Record<string, string[]> = {};
    for (const [name, value] of headers) {
      const values = grouped[name.toLowerCase()] ?? [];
      values.push(value);
      grouped[name.toLowerCase()] = values;
    }
    const req = request(url, { method, headers: grouped }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const echoed = (reply: Reply) =>
  JSON.parse(reply.body.toString()) as {
    event: APIGatewayProxyEventV2;
    context: { functionName: string; remaining: number };
  };

describe('local API Gateway (HTTP API, payload 2.0)', () => {
  test('event shape', async () => {
    const reply = await send('GET', '/echo?b=2&a=1&a=3&empty=', [
      ['X-Custom', 'one'],
      ['x-custom', 'two'],
      ['Cookie', 'c1=v1; c2=v2'],
      ['User-Agent', 'local-test'],
    ]);
    assert.equal(reply.status, 200);
    assert.equal(reply.headers['x-route'], 'GET /echo');
    assert.ok(reply.headers['apigw-requestid']);
    const { event, context } = echoed(reply);
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, 'GET /echo');
    assert.equal(event.rawPath, '/echo');
    assert.equal(event.rawQueryString, 'b=2&a=1&a=3&empty=');
    assert.deepEqual(event.queryStringParameters, { b: '2', a: '1,3', empty: '' });
    assert.equal(event.headers['x-custom'], 'one,two');
    assert.equal(event.headers['user-agent'], 'local-test');
    assert.equal(event.headers.cookie, undefined);
    assert.equal(event.headers['x-forwarded-proto'], 'http');
    assert.equal(event.headers['x-forwarded-for'], '127.0.0.1');
    assert.deepEqual(event.cookies, ['c1=v1', 'c2=v2']);
    assert.equal(event.pathParameters, undefined);
    assert.equal(event.body, undefined);
    assert.equal(event.isBase64Encoded, false);
    const rc = event.requestContext;
    assert.equal(rc.accountId, '000000000000');
    assert.equal(rc.apiId, 'local');
    assert.equal(rc.domainName, new URL(api.url).host);
    assert.equal(rc.domainPrefix, '127');
    assert.deepEqual(rc.http, {
      method: 'GET',
      path: '/echo',
      protocol: 'HTTP/1.1',
      sourceIp: '127.0.0.1',
      userAgent: 'local-test',
    });
    assert.equal(rc.requestId, reply.headers['apigw-requestid']);
    assert.equal(rc.routeKey, 'GET /echo');
    assert.equal(rc.stage, '$default');
    assert.match(rc.time, /^\d{2}\/[A-Z][a-z]{2}\/\d{4}:\d{2}:\d{2}:\d{2} \+0000$/);
    assert.ok(Math.abs(rc.timeEpoch - Date.now()) < 5000);
    assert.equal(context.functionName, 'echo');
    assert.ok(context.remaining > 0 && context.remaining <= 30_000);
  });

  test('text bodies as is, other bodies base64', async () => {
    const json = echoed(
      await send('POST', '/echo', [['Content-Type', 'application/json; charset=utf-8']], '{"a":"é"}'),
    ).event;
    assert.equal(json.body, '{"a":"é"}');
    assert.equal(json.isBase64Encoded, false);
    const form = echoed(
      await send('POST', '/echo', [['Content-Type', 'application/x-www-form-urlencoded']], 'a=1&b=2'),
    ).event;
    assert.equal(form.body, 'a=1&b=2');
    assert.equal(form.isBase64Encoded, false);
    const bytes = Buffer.from([0, 1, 2, 250, 255]);
    const binary = echoed(await send('POST', '/echo', [['Content-Type', 'application/octet-stream']], bytes)).event;
    assert.equal(binary.isBase64Encoded, true);
    assert.deepEqual(Buffer.from(binary.body ?? '', 'base64'), bytes);
  });

  test('path parameters; literal routes win over templates', async () => {
    const { event } = echoed(await send('POST', '/items/abc%20def'));
    assert.equal(event.routeKey, 'POST /items/{id}');
    assert.deepEqual(event.pathParameters, { id: 'abc def' });
    assert.equal(event.rawPath, '/items/abc%20def');
    const special = await send('GET', '/items/special');
    assert.deepEqual(JSON.parse(special.body.toString()), { hello: 'world' });
  });

  test('404 for unknown paths and for known paths with another method', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['DELETE', '/echo'],
      ['GET', '/items/abc'],
      ['GET', '/echo//'],
      ['POST', '/items/a/b'],
    ] as const) {
      const reply = await send(method, path);
      assert.equal(reply.status, 404, `${method} ${path}`);
      assert.deepEqual(JSON.parse(reply.body.toString()), { message: 'Not Found' });
    }
  });

  test('a trailing slash reaches the route without it, as on an HTTP API; rawPath keeps it', async () => {
    const { event } = echoed(await send('GET', '/echo/'));
    assert.equal(event.routeKey, 'GET /echo');
    assert.equal(event.rawPath, '/echo/');
  });

  test('result mapping: object without statusCode, base64 body and cookies, throw and invalid → 500', async () => {
    const plain = await send('GET', '/plain');
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(plain.body.toString()), { hello: 'world' });

    const binary = await send('GET', '/binary');
    assert.equal(binary.status, 201);
    assert.deepEqual(binary.body, Buffer.from([0, 1, 2, 255]));
    assert.deepEqual(binary.headers['set-cookie'], ['a=1; Path=/', 'b=2']);

    errors.length = 0;
    for (const path of ['/throws', '/invalid']) {
      const reply = await send('GET', path);
      assert.equal(reply.status, 500);
      assert.deepEqual(JSON.parse(reply.body.toString()), { message: 'Internal Server Error' });
    }
    assert.equal(errors.length, 2);
    assert.match(errors[0] ?? '', /fixture handler failure/);
  });

  test('request log hook', async () => {
    log.length = 0;
    await send('GET', '/plain');
    await send('GET', '/nope');
    assert.deepEqual(
      log.map((e) => [e.method, e.path, e.routeKey, e.status]),
      [
        ['GET', '/plain', 'GET /plain', 200],
        ['GET', '/nope', undefined, 404],
      ],
    );
    assert.ok(log.every((e) => e.end >= e.start));
  });

  test('the project route table: templated device route, handler per route name', async () => {
    const seen: string[] = [];
    const server = await startApiServer({
      port: 0,
      loadHandler: async (route) => {
        seen.push(route.name);
        return handlers.echo as HttpLambdaHandler;
      },
    });
    try {
      const reply = await fetch(`${server.url}/device/requests/req-1`, {
        method: 'POST',
        body: '{"decision":"approve"}',
        headers: { 'content-type': 'application/json' },
      });
      const { event } = (await reply.json()) as { event: APIGatewayProxyEventV2 };
      assert.equal(event.routeKey, 'POST /device/requests/{id}');
      assert.deepEqual(event.pathParameters, { id: 'req-1' });
      assert.equal((await fetch(`${server.url}/device/requests`)).status, 200);
      assert.equal((await fetch(`${server.url}/token`)).status, 404); // POST only
      assert.deepEqual(seen, ['device-decide', 'device-list']);
      assert.ok(ROUTES.some((r) => r.name === 'device-decide' && r.path === '/device/requests/{id}'));
    } finally {
      await server.close();
    }
  });
});

const realHandlers = existsSync(new URL('../../functions/handlers/discovery.ts', import.meta.url));

describe('local stack', { skip: !realHandlers && 'functions/handlers/discovery.ts not written yet' }, () => {
  test('serves the real discovery handler; one stack per process; restart with the same settings', async () => {
    const stack = await startLocalStack({ port: 0, dataDir: null, quiet: true });
    let url: string;
    try {
      url = stack.url;
      assert.equal(stack.issuer, `http://localhost:${new URL(stack.url).port}`);
      const reply = await fetch(`${stack.url}/.well-known/openid-configuration`);
      assert.equal(reply.status, 200);
      assert.equal(((await reply.json()) as { issuer: string }).issuer, stack.issuer);
      await assert.rejects(startLocalStack({ port: 0 }), /already running/);
    } finally {
      await stack.close();
    }
    const again = await startLocalStack({ port: 0, dataDir: null, quiet: true });
    try {
      assert.equal(again.url, url); // same ports: the handlers' cached clients and issuer still fit
      assert.equal((await fetch(`${again.url}/.well-known/openid-configuration`)).status, 200);
    } finally {
      await again.close();
    }
    await assert.rejects(
      startLocalStack({ port: 0, dataDir: null, env: { CIBA_POLL_INTERVAL: '2' } }),
      /different settings \(CIBA_POLL_INTERVAL\)/,
    );
  });
});
