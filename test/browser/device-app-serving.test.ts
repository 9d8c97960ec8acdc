// How the device app is served (functions/handlers/device-app.ts) on the local stack, over plain HTTP: the page and
// its files from the device API's origin, a strict Content-Security-Policy, caching that lets a new version reach
// phones (the page and the service worker revalidated, hashed files cached for a year), gzip, HEAD like GET, and the
// device API still reached under /device/.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { CONTENT_SECURITY_POLICY, acceptsGzip } from '../../functions/runtime/device-app-assets.ts';
import { startWorld, type World } from '../support/e2e.ts';

/** A raw HTTP exchange (fetch would decompress, follow redirects and hide Content-Length). */
function raw(
  url: string,
  method = 'GET',
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

let w: World;
let page: { headers: Record<string, string | string[] | undefined>; html: string };
/** `app/…` files the page refers to. */
let assets: string[];

before(async () => {
  w = await startWorld();
  const res = await raw(`${w.issuer}/device/`);
  assert.equal(res.status, 200);
  page = { headers: res.headers, html: res.body.toString('utf8') };
  assets = [...new Set([...page.html.matchAll(/(?:src|href)="app\/([^"]+)"/g)].map((m) => m[1]!))];
});
after(() => w.close());

describe('the page', () => {
  test('HTML with lang, the issuer, and a strict Content-Security-Policy; no inline script or style', () => {
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(page.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
    assert.match(CONTENT_SECURITY_POLICY, /^default-src 'self'/);
    assert.doesNotMatch(CONTENT_SECURITY_POLICY, /unsafe-inline|unsafe-eval|\*|https?:/);
    assert.equal(page.headers['x-content-type-options'], 'nosniff');
    assert.equal(page.headers['referrer-policy'], 'no-referrer');
    assert.match(page.html, /<html lang="en">/);
    assert.ok(page.html.includes(`<meta name="ciba-issuer" content="${w.issuer}" />`));
    for (const tag of page.html.match(/<script\b[^>]*>/g) ?? []) assert.match(tag, /\ssrc="app\//, tag);
    assert.doesNotMatch(page.html, /<style|\sstyle=|\son\w+=/i);
    assert.doesNotMatch(page.html, /(?:src|href)="(?:https?:)?\/\//, 'nothing from another origin (no CDN)');
  });

  test('revalidated on every use: no-cache with an ETag, 304 when unchanged', async () => {
    assert.equal(page.headers['cache-control'], 'no-cache');
    const etag = page.headers.etag as string;
    assert.match(etag, /^"[\w-]+"$/);
    const again = await raw(`${w.issuer}/device/`, 'GET', { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body.length, 0);
    assert.equal(again.headers.etag, etag);
  });

  test('/device serves the page too (API Gateway sends /device/ to GET /device); its <base> is /device/ (see the browser tests)', async () => {
    assert.ok(page.html.includes('<base href="/device/" />'));
    const bare = await raw(`${w.issuer}/device`);
    assert.equal(bare.status, 200);
    assert.equal(bare.body.toString('utf8'), page.html);
  });

  test('HEAD: the same status and headers as GET, no body', async () => {
    for (const [path, encoding] of [
      ['/device/', 'identity'],
      ['/device/', 'gzip'],
      [`/device/app/${assets.find((a) => a.endsWith('.js'))}`, 'gzip'],
      [`/device/app/${assets.find((a) => a.endsWith('.png'))}`, 'identity'],
    ] as const) {
      const get = await raw(`${w.issuer}${path}`, 'GET', { 'accept-encoding': encoding });
      const head = await raw(`${w.issuer}${path}`, 'HEAD', { 'accept-encoding': encoding });
      assert.equal(head.status, get.status, path);
      assert.equal(head.body.length, 0);
      for (const name of ['content-type', 'content-length', 'cache-control', 'etag', 'content-encoding'])
        assert.equal(head.headers[name], get.headers[name], `${path} ${encoding}: ${name}`);
    }
  });

  test('gzip when accepted (and not when refused), with Vary: Accept-Encoding', async () => {
    const plain = await raw(`${w.issuer}/device/`, 'GET', { 'accept-encoding': 'identity' });
    const gzip = await raw(`${w.issuer}/device/`, 'GET', { 'accept-encoding': 'br, gzip;q=0.8' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(gzip.headers['content-encoding'], 'gzip');
    assert.equal(gzip.headers.vary, 'Accept-Encoding');
    assert.ok(gzip.body.length < plain.body.length);
    assert.notEqual(gzip.headers.etag, plain.headers.etag, 'each representation its own entity tag');
    assert.equal(acceptsGzip('gzip;q=0, identity'), false);
    assert.equal(acceptsGzip('*'), true);
    assert.equal(acceptsGzip(undefined), false);
  });
});

describe('the files', () => {
  test('the script, style, icons and manifest: content-hashed names, cached for a year, right content types', async () => {
    const types: Record<string, RegExp> = {
      js: /^text\/javascript; charset=utf-8$/,
      css: /^text\/css; charset=utf-8$/,
      svg: /^image\/svg\+xml$/,
      png: /^image\/png$/,
      webmanifest: /^application\/manifest\+json$/,
    };
    assert.ok(assets.length >= 5, assets.join(', '));
    for (const name of assets) {
      assert.match(name, /\.[0-9a-f]{10}\.\w+$/, `${name} is content-hashed`);
      const res = await raw(`${w.issuer}/device/app/${name}`);
      assert.equal(res.status, 200, name);
      assert.match(String(res.headers['content-type']), types[name.split('.').pop()!]!, name);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', name);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
    }
  });

  test('the manifest makes an installable app: name, start_url and scope /device/, standalone, 192 and 512 px icons', async () => {
    const name = assets.find((a) => a.endsWith('.webmanifest'))!;
    const url = `${w.issuer}/device/app/${name}`;
    const manifest = JSON.parse((await raw(url)).body.toString('utf8')) as {
      name: string;
      start_url: string;
      scope: string;
      display: string;
      icons: { src: string; sizes: string; type: string; purpose?: string }[];
    };
    assert.ok(manifest.name);
    assert.equal(new URL(manifest.start_url, url).href, `${w.issuer}/device/`);
    assert.equal(new URL(manifest.scope, url).href, `${w.issuer}/device/`);
    assert.equal(manifest.display, 'standalone');
    for (const size of [192, 512]) {
      const icon = manifest.icons.find((i) => i.sizes === `${size}x${size}` && i.type === 'image/png' && !i.purpose);
      assert.ok(icon, `a ${size} px icon`);
      const png = (await raw(new URL(icon.src, url).href)).body;
      assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [size, size], `${icon.src} is ${size}×${size}`);
    }
    assert.ok(manifest.icons.some((i) => i.purpose === 'maskable'));
  });

  test('the service worker: a fixed name, revalidated, allowed to control /device/, under the same policy', async () => {
    const res = await raw(`${w.issuer}/device/app/sw.js`);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.equal(
      new URL(String(res.headers['service-worker-allowed']), `${w.issuer}/device/app/sw.js`).href,
      `${w.issuer}/device/`,
    );
    assert.equal(res.headers['content-security-policy'], CONTENT_SECURITY_POLICY);
  });

  test('an unknown file is 404; the device API is still the API', async () => {
    for (const name of ['nope.js', 'main.js', '__proto__', 'toString', '..%2Fbuild.ts']) {
      assert.equal((await raw(`${w.issuer}/device/app/${name}`)).status, 404, name);
    }
    const api = await raw(`${w.issuer}/device/requests`);
    assert.equal(api.status, 401, 'GET /device/requests wants a device assertion');
    assert.match(api.headers['content-type'] as string, /^application\/json/);
  });
});
