// DPoP (RFC 9449) with I/O, for the token endpoint and userinfo: reads the request's DPoP header, checks the proof
// (functions/core/dpop.ts) against this endpoint's URLs (issuer and mTLS alias) and, with CIBA_DPOP_NONCE on, this
// server's nonces (functions/core/dpop-nonce.ts; the key is read from the table once per function instance, created
// by the first that needs it). The proof's jti is recorded (replay cache, scoped per key) by recordDPoPProof, which
// the caller runs only once every other check of its request passed.
import { randomBytes } from 'node:crypto';
import { DPOP_ALGS } from '../core/capabilities.ts';
import { proofRememberedUntil, verifyDPoPProof, type DPoPProof } from '../core/dpop.ts';
import { dpopNonce, dpopNonceValid } from '../core/dpop-nonce.ts';
import { OAuthError } from '../core/errors.ts';
import { createDpopNonceKey, getDpopNonceKey, useOnce } from '../adapters/store.ts';
import type { HttpEvent } from '../runtime/http.ts';
import { config } from '../config.ts';

/** What a request's DPoP header came to: the checked proof (none without a header), and headers for the answer. */
export type DPoPRequest = {
  proof?: DPoPProof;
  /** `DPoP-Nonce` with the current nonce when nonces are on (RFC 9449 §8.2: on every answer, errors included). */
  headers: Record<string, string>;
};

let nonceKey: Promise<Uint8Array> | undefined;

/** The server's nonce key (256 bits): read once per instance, created by the first function that needs it. */
function dpopNonceKey(): Promise<Uint8Array> {
  nonceKey ??= (async () => {
    const stored = (await getDpopNonceKey()) ?? (await createDpopNonceKey(randomBytes(32).toString('base64url')));
    return Buffer.from(stored, 'base64url');
  })();
  nonceKey.catch(() => {
    nonceKey = undefined;
  });
  return nonceKey;
}

/** The URLs an endpoint answers at: under the issuer, and under the mTLS alias when there is one. */
export function endpointUrls(path: string): string[] {
  const { issuer, mtlsBaseUrl } = config();
  return [issuer + path, ...(mtlsBaseUrl ? [mtlsBaseUrl + path] : [])];
}

/** `e` with `headers` added when it is an OAuthError (the answer to any request that carried a proof). */
export function withHeaders(e: unknown, headers: Record<string, string>): unknown {
  if (!(e instanceof OAuthError) || Object.keys(headers).length === 0) return e;
  const description = e.message === e.error ? undefined : e.message;
  return new OAuthError(e.error, description, { status: e.status, headers: { ...headers, ...e.headers }, cause: e });
}

/**
 * The DPoP proof of a request to the endpoint at `path`, checked (RFC 9449 §4.3); `accessToken` at userinfo (ath).
 * Throws invalid_dpop_proof or use_dpop_nonce, with the DPoP-Nonce header when nonces are on.
 */
export async function checkDPoP(event: HttpEvent, path: string, accessToken?: string): Promise<DPoPRequest> {
  const header = event.headers.dpop;
  if (header === undefined) return { headers: {} };
  const now = Math.floor(Date.now() / 1000);
  const key = config().dpopNonce === 'on' ? await dpopNonceKey() : undefined;
  const headers: Record<string, string> = key ? { 'DPoP-Nonce': dpopNonce(key, now) } : {};
  try {
    const proof = await verifyDPoPProof(header, {
      method: event.requestContext.http.method,
      urls: endpointUrls(path),
      algorithms: DPOP_ALGS,
      now,
      ...(accessToken !== undefined ? { accessToken } : {}),
      ...(key ? { nonceValid: (nonce: string) => dpopNonceValid(key, nonce, now) } : {}),
    });
    return { proof, headers };
  } catch (e) {
    throw withHeaders(e, headers);
  }
}

/** RFC 9449 §11.1: a proof is used once (its jti, per key, until its iat is too old anyway). */
export async function recordDPoPProof(proof: DPoPProof): Promise<void> {
  const now = Math.floor(Date.now() / 1000);
  if (!(await useOnce(`dpop#${proof.jkt}`, proof.jti, proofRememberedUntil(proof), now)))
    throw new OAuthError('invalid_dpop_proof', 'the DPoP proof has been used before (jti)');
}
