// Serving the reference device app (docs/device-app.md) from the device API's own origin: the built files, the page
// with the issuer filled in, security headers (a strict Content-Security-Policy), caching (ETag/304 for the page and
// the service worker, a year for content-hashed files) and gzip. The app itself (device-app/build.ts): on AWS
// injected into the device-app function's bundle at synth (DEVICE_APP_BUNDLE); locally built with esbuild the first
// time it is asked for.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { DeviceAppBundle, DeviceAppFile } from '../../device-app/bundle.ts';
import { BASE_PLACEHOLDER, ISSUER_PLACEHOLDER } from '../../device-app/bundle.ts';
import type { HttpEvent, HttpResponse } from './http.ts';

/** The built app, when esbuild injected it (the CDK construct's bundling of this function). */
declare const DEVICE_APP_BUNDLE: DeviceAppBundle | undefined;

let loading: Promise<DeviceAppBundle> | undefined;
export function app(): Promise<DeviceAppBundle> {
  loading ??= (async () => {
    if (typeof DEVICE_APP_BUNDLE !== 'undefined') return DEVICE_APP_BUNDLE;
    // Not bundled by CDK: the local stack, in the project. A computed specifier, so no bundler follows it.
    const builder = new URL('../../device-app/build.ts', import.meta.url).href;
    const { buildDeviceApp } = (await import(builder)) as typeof import('../../device-app/build.ts');
    return buildDeviceApp();
  })();
  loading.catch(() => (loading = undefined));
  return loading;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const REVALIDATE = 'no-cache';
const IMMUTABLE = 'public, max-age=31536000, immutable';

export function securityHeaders(issuer: string): Record<string, string> {
  return {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
    'X-Frame-Options': 'DENY',
    'Permissions-Policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    ...(issuer.startsWith('https://') ? { 'Strict-Transport-Security': 'max-age=31536000' } : {}),
  };
}

/** Whether Accept-Encoding allows gzip (RFC 9110 §12.5.3: a q of 0 refuses). */
export function acceptsGzip(header: string | undefined): boolean {
  for (const part of (header ?? '').split(',')) {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/** If-None-Match names the entity tag (or `*`): the client's copy is current. */
function notModified(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '');
    return t === '*' || t === etag;
  });
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page with the issuer in it, once per issuer (one per process in practice). */
const pages = new Map<string, DeviceAppFile>();
export function page(bundle: DeviceAppBundle, issuer: string): DeviceAppFile {
  let rendered = pages.get(issuer);
  if (!rendered) {
    // The issuer's own path (a custom domain may map the API under one), then /device/.
    const base = `${new URL(issuer).pathname.replace(/\/+$/, '')}/device/`;
    const body = Buffer.from(
      bundle.page.replaceAll(ISSUER_PLACEHOLDER, escapeHtml(issuer)).replaceAll(BASE_PLACEHOLDER, escapeHtml(base)),
    );
    rendered = {
      contentType: 'text/html; charset=utf-8',
      body: body.toString('base64'),
      gzip: gzipSync(body, { level: 9 }).toString('base64'),
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`,
      immutable: false,
    };
    pages.set(issuer, rendered);
  }
  return rendered;
}

export function serve(event: HttpEvent, file: DeviceAppFile, headers: Record<string, string>): HttpResponse {
  const gzip = file.gzip !== undefined && acceptsGzip(event.headers['accept-encoding']);
  // A representation of its own: its own entity tag (RFC 9110 §8.8.3.3).
  const etag = gzip ? `${file.etag.slice(0, -1)}-gz"` : file.etag;
  const common = {
    ...headers,
    'Cache-Control': file.immutable ? IMMUTABLE : REVALIDATE,
    ETag: etag,
    ...(file.gzip !== undefined ? { Vary: 'Accept-Encoding' } : {}),
  };
  if (notModified(event.headers['if-none-match'], etag)) return { statusCode: 304, headers: common };
  return {
    statusCode: 200,
    headers: { ...common, 'Content-Type': file.contentType, ...(gzip ? { 'Content-Encoding': 'gzip' } : {}) },
    body: gzip ? file.gzip : file.body,
    isBase64Encoded: true,
  };
}
