// The local API Gateway's mutual-TLS listener (local/api.ts, option `https`): real TLS clients with and without
// certificates; the handler sees requestContext.authentication.clientCert as API Gateway HTTP APIs pass it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { startApiServer } from '../../local/api.ts';
import { startLocalStack } from '../../local/stack.ts';
import type { ApiServer, HttpLambdaHandler } from '../../local/api.ts';
import type { HttpRoute } from '../../functions/routes.ts';
import { handlers } from '../fixtures/local/api-handlers.ts';
import { createCa, createClientCert, createSelfSignedCert, createServerCert } from '../support/certs.ts';
import type { IssuedCertificate } from '../support/certs.ts';

const routes: HttpRoute[] = [
  { name: 'echo', method: 'GET', path: '/echo', access: {} },
  { name: 'echo', method: 'POST', path: '/echo', access: {} },
];

const ca = createCa();
const server = createServerCert(ca);
const client = createClientCert(ca, {
  subject: [
    ['C', 'US'],
    ['ST', 'Washington'],
    ['O', 'Example, Inc.'],
    ['CN', 'client.example.com'],
  ],
  san: { dns: ['client.example.com'] },
  serial: 0x1234_5678_9abc_def0n,
});
const otherCa = createCa({ subject: [['CN', 'Other CA']] });
const untrusted = createClientCert(otherCa, { subject: [['CN', 'intruder']] });
const selfSigned = createSelfSignedCert({ subject: [['CN', 'self']] });

let calls = 0;
const loadHandler = async (route: { name: string }) => {
  calls++;
  return handlers[route.name as keyof typeof handlers] as HttpLambdaHandler;
};

type Reply = {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string /** TLS session resumed. */;
  reused: boolean;
};

/** One HTTPS request, by default on a fresh connection (agent: false: nothing shared between client certificates). */
function send(
  url: string,
  path: string,
  cert?: IssuedCertificate,
  method = 'GET',
  body?: string,
  agent: Agent | false = false,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, url),
      {
        method,
        agent,
        ca: ca.certPem,
        ...(cert ? { key: cert.keyPem, cert: cert.certPem } : {}),
        headers: body ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        const reused = (res.socket as TLSSocket).isSessionReused();
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            reused,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const eventOf = (reply: Reply) => (JSON.parse(reply.body) as { event: APIGatewayProxyEventV2 }).event;
/** OpenSSL's ASN1_TIME_print format, as in API Gateway's validity: `Aug  5 00:28:21 2120 GMT`. */
const OPENSSL_TIME = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 1-3]\d \d{2}:\d{2}:\d{2} \d{4} GMT$/;

describe('mutual TLS listener with a truststore (ca)', () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer({
      port: 0,
      routes,
      loadHandler,
      log: () => {},
      https: { port: 0, key: server.keyPem, cert: server.certPem, ca: ca.certPem },
    });
  });
  after(() => api.close());

  test('urls of both listeners', () => {
    assert.match(api.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(api.httpsUrl, `https://127.0.0.1:${api.httpsPort}`);
    assert.notEqual(api.httpsPort, api.port);
  });

  test('a trusted client certificate reaches the handler as API Gateway passes it', async () => {
    const reply = await send(api.httpsUrl!, '/echo', client);
    assert.equal(reply.status, 200);
    const event = eventOf(reply);
    assert.deepEqual(event.requestContext.authentication, {
      clientCert: {
        clientCertPem: client.certPem,
        subjectDN: 'C=US,ST=Washington,O=Example\\, Inc.,CN=client.example.com',
        issuerDN: 'O=CIBA test,CN=Test CA',
        serialNumber: '1311768467463790320', // 0x123456789abcdef0 in decimal
        validity: { notBefore: client.cert.validFrom, notAfter: client.cert.validTo },
      },
    });
    const { validity } = event.requestContext.authentication!.clientCert;
    assert.match(validity.notBefore, OPENSSL_TIME);
    assert.match(validity.notAfter, OPENSSL_TIME);
    assert.equal(event.headers['x-forwarded-proto'], 'https');
    assert.equal(event.headers['x-forwarded-port'], String(api.httpsPort));
    assert.equal(event.requestContext.domainName, `127.0.0.1:${api.httpsPort}`);
  });

  test('every request of a kept-alive connection carries the certificate', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const body of ['{"a":1}', '{"a":2}', undefined]) {
        const reply = await send(api.httpsUrl!, '/echo', client, body ? 'POST' : 'GET', body, agent);
        assert.equal(reply.status, 200);
        const event = eventOf(reply);
        assert.equal(event.body, body);
        assert.equal(event.requestContext.authentication?.clientCert.clientCertPem, client.certPem);
      }
      assert.equal(
        Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length,
        1,
        'one connection',
      );
    } finally {
      agent.destroy();
    }
  });

  test('a resumed TLS session keeps its certificate and verdict', async () => {
    for (const [cert, status] of [
      [client, 200],
      [untrusted, 403],
    ] as const) {
      const agent = new Agent({ keepAlive: false, maxCachedSessions: 10 });
      const resumed: boolean[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          const reply = await send(api.httpsUrl!, '/echo', cert, 'GET', undefined, agent);
          resumed.push(reply.reused);
          assert.equal(reply.status, status);
          if (status === 200)
            assert.equal(eventOf(reply).requestContext.authentication?.clientCert.clientCertPem, cert.certPem);
        }
        assert.ok(resumed.slice(1).some(Boolean), `a later connection resumed the session (${resumed.join(', ')})`);
      } finally {
        agent.destroy();
      }
    }
  });

  test('no client certificate: the request still reaches the handler, without authentication', async () => {
    const reply = await send(api.httpsUrl!, '/echo');
    assert.equal(reply.status, 200);
    assert.equal(eventOf(reply).requestContext.authentication, undefined);
  });

  test('a certificate from another CA, or self-signed and not in the truststore: 403 before any handler', async () => {
    for (const cert of [untrusted, selfSigned]) {
      const before = calls;
      const reply = await send(api.httpsUrl!, '/echo', cert);
      assert.equal(reply.status, 403);
      assert.deepEqual(JSON.parse(reply.body), { message: 'Forbidden' });
      assert.equal(reply.headers['content-type'], 'application/json');
      assert.ok(reply.headers['apigw-requestid']);
      assert.equal(calls, before, 'no handler was loaded');
    }
    // Before routing, as on API Gateway (which rejects at the domain): an unknown path is 403 too, not 404.
    assert.equal((await send(api.httpsUrl!, '/nowhere', untrusted)).status, 403);
    assert.equal((await send(api.httpsUrl!, '/nowhere', client)).status, 404);
    // A body sent with a refused request is drained: the answer still arrives.
    assert.equal(
      (await send(api.httpsUrl!, '/echo', untrusted, 'POST', JSON.stringify({ big: 'x'.repeat(200_000) }))).status,
      403,
    );
  });

  test('the plain HTTP listener is unchanged: no client certificate, x-forwarded-proto http', async () => {
    const reply = await fetch(`${api.url}/echo`);
    assert.equal(reply.status, 200);
    const { event } = (await reply.json()) as { event: APIGatewayProxyEventV2 };
    assert.equal(event.requestContext.authentication, undefined);
    assert.equal(event.headers['x-forwarded-proto'], 'http');
  });
});

describe('mutual TLS listener without a truststore', () => {
  let api: ApiServer;
  before(async () => {
    api = await startApiServer({
      port: 0,
      routes,
      loadHandler,
      log: () => {},
      https: { key: server.keyPem, cert: server.certPem },
    });
  });
  after(() => api.close());

  test('any certificate is forwarded unverified (self_signed_tls_client_auth locally)', async () => {
    for (const cert of [selfSigned, untrusted, client]) {
      const reply = await send(api.httpsUrl!, '/echo', cert);
      assert.equal(reply.status, 200);
      const clientCert = eventOf(reply).requestContext.authentication?.clientCert;
      assert.equal(clientCert?.clientCertPem, cert.certPem);
      assert.equal(clientCert?.subjectDN, cert.cert.subject.replaceAll('\n', ','));
    }
  });

  test('no certificate: no authentication', async () => {
    assert.equal(eventOf(await send(api.httpsUrl!, '/echo')).requestContext.authentication, undefined);
  });
});

describe('no https option', () => {
  test('one listener only', async () => {
    const api = await startApiServer({ port: 0, routes, loadHandler, log: () => {} });
    try {
      assert.equal(api.httpsUrl, undefined);
      assert.equal(api.httpsPort, undefined);
    } finally {
      await api.close();
    }
  });
});

describe('local stack', () => {
  test('mtlsUrl serves the real handlers over mutual TLS', async () => {
    const stack = await startLocalStack({
      port: 0,
      dataDir: null,
      quiet: true,
      https: { port: 0, key: server.keyPem, cert: server.certPem, ca: ca.certPem },
    });
    try {
      assert.match(stack.mtlsUrl ?? '', /^https:\/\/localhost:\d+$/);
      const reply = await send(stack.mtlsUrl!, '/.well-known/openid-configuration', client);
      assert.equal(reply.status, 200);
      assert.equal((JSON.parse(reply.body) as { issuer: string }).issuer, stack.issuer);
      assert.equal((await send(stack.mtlsUrl!, '/.well-known/openid-configuration', untrusted)).status, 403);
    } finally {
      await stack.close();
    }
  });
});
