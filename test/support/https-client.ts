// The RP's HTTP side for the mTLS e2e suites: plain listener with fetch; the local mTLS listener with node:https on a
// fresh connection (so each request makes its own TLS handshake), with an optional client certificate.
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { IssuedCertificate } from './certs.ts';

export type Reply = { status: number; json: Record<string, unknown>; text: string; headers: IncomingHttpHeaders };

export type RequestOptions = {
  /** Sent as application/x-www-form-urlencoded. */
  form?: Record<string, string>;
  headers?: Record<string, string>;
  /** The TLS client certificate (https only). */
  cert?: IssuedCertificate;
  /** PEM the server certificate must chain to (https only). */
  ca?: string;
};

function parse(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return {};
  }
}

export async function request(method: 'GET' | 'POST', url: string, options: RequestOptions = {}): Promise<Reply> {
  const body = options.form ? new URLSearchParams(options.form).toString() : undefined;
  const headers: Record<string, string> = {
    ...(body !== undefined ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
    ...options.headers,
  };
  if (!url.startsWith('https:')) {
    const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await res.text();
    return { status: res.status, json: parse(text), text, headers: Object.fromEntries(res.headers) };
  }
  const { cert, ca } = options;
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(url),
      {
        method,
        agent: false,
        ...(ca ? { ca } : {}),
        ...(cert ? { key: cert.keyPem, cert: cert.certPem } : {}),
        headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          resolve({ status: res.statusCode ?? 0, json: parse(text), text, headers: res.headers });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** An OAuth error reply: exact status and `error` code. */
export function expectError(res: Reply, status: number, error: string, what = ''): void {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.equal(res.json.error, error, `${what}: ${res.text}`);
}
