// HEAD on the public metadata documents (RFC 9110 §9.3.2): discovery and the JWKS answer HEAD exactly as GET (status
// and header fields, Content-Length the size of the GET content) with no content on the wire. The HEAD routes are in
// functions/routes.ts; the body is removed by functions/runtime/http.ts. HEAD elsewhere answers 404 as before.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startWorld, type World } from '../support/e2e.ts';

let w: World;
before(async () => {
  w = await startWorld();
});
after(() => w?.close());

type Raw = { status: number; headers: Map<string, string>; body: Buffer };

/**
 * One request on its own connection, read to the end as raw bytes (Connection: close), so whatever the server writes
 * after the header block counts as body, whatever the method.
 */
function raw(method: string, path: string): Promise<Raw> {
  const { hostname, port } = new URL(w.issuer);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname === 'localhost' ? '127.0.0.1' : hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const [statusLine, ...lines] = all.subarray(0, split).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of lines) {
        const colon = line.indexOf(':');
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      resolve({ status: Number(statusLine?.split(' ')[1]), headers, body: all.subarray(split + 4) });
    });
    socket.write(`${method} ${path} HTTP/1.1\r\nHost: ${new URL(w.issuer).host}\r\nConnection: close\r\n\r\n`);
  });
}

/** Header fields that legitimately differ between two responses. */
const PER_RESPONSE = new Set(['date', 'apigw-requestid']);
const comparable = (r: Raw) => Object.fromEntries([...r.headers].filter(([name]) => !PER_RESPONSE.has(name)).sort());

for (const [what, path, contentType] of [
  ['discovery', '/.well-known/openid-configuration', 'application/json'],
  ['JWKS', '/jwks', 'application/jwk-set+json'],
] as const) {
  test(`HEAD ${what} (${path}) → 200 with the GET header fields and no body`, async () => {
    const get = await raw('GET', path);
    const head = await raw('HEAD', path);
    assert.equal(get.status, 200, get.body.toString());
    assert.equal(head.status, 200, `HEAD ${path}: ${head.status} ${head.body.toString()}`);
    assert.equal(head.body.length, 0, `HEAD sends no content: ${head.body.toString()}`);
    assert.ok(get.body.length > 0);
    assert.equal(head.headers.get('content-type'), contentType);
    assert.equal(head.headers.get('cache-control'), 'public, max-age=300');
    // Content-Length: the size the GET content has (RFC 9110 §8.6), like every other header field.
    assert.equal(head.headers.get('content-length'), String(get.body.length));
    assert.deepEqual(comparable(head), comparable(get));
  });
}

test('HEAD on other paths answers as before: 404 Not Found without a body (no HEAD route)', async () => {
  const paths = ['/token', '/bc-authorize', '/userinfo', '/device/requests', '/nope', '/jwks/x'];
  for (const path of paths) {
    const head = await raw('HEAD', path);
    assert.equal(head.status, 404, `HEAD ${path}`);
    assert.equal(head.body.length, 0, `HEAD ${path}`);
    assert.equal(head.headers.get('content-type'), 'application/json', `HEAD ${path}`);
  }
  // GET on the metadata documents is unchanged by the HEAD routes; POST there is still 404.
  assert.equal((await fetch(`${w.issuer}/jwks`)).status, 200);
  assert.equal((await fetch(`${w.issuer}/jwks`, { method: 'POST' })).status, 404);
});
