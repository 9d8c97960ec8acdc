// DPoP (RFC 9449): checking a proof (§4.3), and which key the tokens of a token request are bound to (§5, §6).
// Pure (jose does the signature); the caller reads the DPoP header, supplies the nonce rule (dpop-nonce.ts) and makes
// the jti single use afterwards (functions/usecases/dpop.ts), only once every other check of the request passed.
// Proof failures are invalid_dpop_proof, a missing or stale server nonce is use_dpop_nonce (§8, §9); the token
// endpoint answers them 400, userinfo 401 with a DPoP challenge.
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { sha256b64u } from './crypto.ts';
import { OAuthError, tokenError } from './errors.ts';
import { verificationFailure } from './jws.ts';
import type { Client } from './model.ts';

/** How far back a proof's iat may lie (seconds): a proof is for one request, sent at once. */
export const DPOP_PROOF_MAX_AGE = 60;
/** How far ahead of this server's clock a proof's iat may lie (seconds). */
export const DPOP_CLOCK_SKEW = 30;
/** Longest accepted DPoP header (characters); an RSA 4096 key in the header stays well below. */
export const DPOP_PROOF_MAX_LENGTH = 8192;
export const DPOP_JTI_MAX = 256;
/** JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const KEY_TYPES = ['EC', 'RSA', 'OKP'];

export type DPoPProofPolicy = {
  /** The request's HTTP method (htm). */
  method: string;
  /** The URLs this endpoint answers at (issuer and mTLS alias), compared with htu without query and fragment. */
  urls: readonly string[];
  /** Asymmetric algorithms accepted (capabilities.ts DPOP_ALGS). */
  algorithms: readonly string[];
  /** Epoch seconds. */
  now: number;
  /** Resource access (§7): the access token the proof must name (ath = base64url(SHA-256(token))). */
  accessToken?: string;
  /** Server nonces (§8, §9): whether a nonce is one this server issued and still accepts. Absent: none required. */
  nonceValid?: (nonce: string) => boolean;
};

/** A proof that passed every check of §4.3 except replay: its key's thumbprint, and its jti and iat for the cache. */
export type DPoPProof = { jkt: string; jti: string; iat: number };

const invalid = (why: string) => new OAuthError('invalid_dpop_proof', why);
const MALFORMED = 'the DPoP proof must be a JWT (JWS compact serialization)';

/** §4.3 step 9: the URL without query and fragment, normalised (scheme and host case, default port). */
function withoutQuery(url: string): string | undefined {
  try {
    const u = new URL(url);
    u.search = '';
    u.hash = '';
    return u.href;
  } catch {
    return undefined;
  }
}

/** The jwk header parameter: a public key of a known type with none of a private key's members (§4.2, §4.3 step 7). */
function publicJwk(jwk: unknown): JWK {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk))
    throw invalid('the DPoP proof header must carry the public key (jwk)');
  const members = jwk as Record<string, unknown>;
  if (PRIVATE_MEMBERS.some((m) => m in members))
    throw invalid('the DPoP proof jwk must be a public key, without private key members');
  if (typeof members.kty !== 'string' || !KEY_TYPES.includes(members.kty))
    throw invalid('the DPoP proof jwk must be an EC, RSA or OKP public key');
  return members as JWK;
}

/**
 * RFC 9449 §4.3: `proof` (the DPoP header as received) is a JWT of typ dpop+jwt, signed with an accepted asymmetric
 * algorithm by the public key in its header, for this request (htm, htu), recent (iat), with a jti, and (when asked)
 * the access token's hash (ath) and a nonce of this server's. Throws invalid_dpop_proof or use_dpop_nonce.
 */
export async function verifyDPoPProof(proof: string, policy: DPoPProofPolicy): Promise<DPoPProof> {
  const jwt = proof.trim();
  // §4.3 step 1: exactly one DPoP header. API Gateway joins repeated headers with commas; a JWT has none.
  if (jwt.includes(',')) throw invalid('the request must carry exactly one DPoP header');
  if (jwt.length > DPOP_PROOF_MAX_LENGTH) throw invalid(`the DPoP proof exceeds ${DPOP_PROOF_MAX_LENGTH} characters`);
  if (jwt.split('.').length !== 3) throw invalid(MALFORMED);
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jwt);
  } catch {
    throw invalid(MALFORMED);
  }
  // Steps 4-7: typ, an asymmetric algorithm this server supports, the public key the proof is signed with.
  if (header.typ !== 'dpop+jwt') throw invalid('the DPoP proof typ must be dpop+jwt');
  const { alg } = header;
  if (typeof alg !== 'string' || !policy.algorithms.includes(alg))
    throw invalid(`the DPoP proof alg must be one of ${policy.algorithms.join(', ')}`);
  const jwk = publicJwk(header.jwk);
  let key: Awaited<ReturnType<typeof importJWK>>;
  try {
    key = await importJWK(jwk, alg);
  } catch {
    throw invalid(`the DPoP proof jwk is not a usable ${alg} public key`);
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, key, {
      algorithms: [alg],
      typ: 'dpop+jwt',
      currentDate: new Date(policy.now * 1000),
      clockTolerance: DPOP_CLOCK_SKEW,
    }));
  } catch (e) {
    throw invalid(
      verificationFailure(e, 'the DPoP proof', {
        malformed: MALFORMED,
        unknownKey: `the DPoP proof jwk is not a usable ${alg} public key`,
      }),
    );
  }
  // Step 3: the required claims, of the right types.
  const { jti, htm, htu, iat, ath, nonce } = payload as JWTPayload & Record<string, unknown>;
  if (typeof jti !== 'string' || jti === '' || jti.length > DPOP_JTI_MAX)
    throw invalid(`the DPoP proof jti must be a non-empty string of at most ${DPOP_JTI_MAX} characters`);
  if (typeof htm !== 'string') throw invalid('the DPoP proof htm is required');
  if (typeof htu !== 'string') throw invalid('the DPoP proof htu is required');
  if (typeof iat !== 'number') throw invalid('the DPoP proof iat is required');
  // Steps 8-9: this request.
  if (htm !== policy.method) throw invalid(`the DPoP proof htm must be ${policy.method}`);
  const target = withoutQuery(htu);
  if (target === undefined || !policy.urls.some((u) => withoutQuery(u) === target))
    throw invalid('the DPoP proof htu must be the URL of this endpoint');
  // Step 10: the server's nonce (§8: use_dpop_nonce, the answer carries a fresh one).
  if (policy.nonceValid) {
    if (nonce === undefined) throw new OAuthError('use_dpop_nonce', 'a DPoP nonce is required (DPoP-Nonce header)');
    if (typeof nonce !== 'string' || !policy.nonceValid(nonce))
      throw new OAuthError('use_dpop_nonce', 'the DPoP nonce is invalid or expired; use the one in DPoP-Nonce');
  }
  // Step 11: created just now.
  if (iat > policy.now + DPOP_CLOCK_SKEW) throw invalid('the DPoP proof iat is in the future');
  if (iat < policy.now - DPOP_PROOF_MAX_AGE)
    throw invalid(`the DPoP proof is more than ${DPOP_PROOF_MAX_AGE} s old (iat)`);
  // Step 12: at a protected resource, bound to the access token it comes with.
  if (policy.accessToken !== undefined) {
    if (ath === undefined) throw invalid('the DPoP proof ath is required with an access token');
    if (ath !== sha256b64u(policy.accessToken)) throw invalid('the DPoP proof ath does not match the access token');
  }
  return { jkt: await calculateJwkThumbprint(jwk, 'sha256'), jti, iat };
}

/** Until when (epoch seconds) a proof's jti must be remembered: after that its iat is refused anyway. */
export function proofRememberedUntil(proof: DPoPProof): number {
  return Math.ceil(proof.iat) + DPOP_PROOF_MAX_AGE;
}

type BindingClient = Pick<
  Client,
  'dpop_bound_access_tokens' | 'tls_client_certificate_bound_access_tokens' | 'security_profile'
>;

/**
 * The key (JWK thumbprint) the access token of a token request is bound to (§5, §6: cnf.jkt), or undefined for a
 * Bearer token. `proofJkt`: the key of the request's valid proof, if any. `grantJkt`: the key a refreshed grant is
 * bound to (its first DPoP token request). Rules:
 *  - a client whose tokens are bound to its TLS certificate (RFC 8705) cannot use DPoP too (one binding per token);
 *  - a DPoP-bound grant stays bound to its key: a refresh without a proof is invalid_dpop_proof, with another key's
 *    proof invalid_grant (stricter than §5 for confidential clients, see docs/tokens.md);
 *  - a client registered with dpop_bound_access_tokens (§5.2) must send a proof with every token request.
 */
export function dpopBinding(
  client: BindingClient,
  proofJkt: string | undefined,
  grantJkt?: string,
): string | undefined {
  const certificateBound =
    client.tls_client_certificate_bound_access_tokens === true || client.security_profile === 'fapi-ciba';
  if (proofJkt !== undefined && certificateBound)
    throw tokenError(
      'invalid_request',
      "this client's access tokens are bound to its TLS client certificate (RFC 8705): DPoP is not used with it",
    );
  if (grantJkt !== undefined) {
    if (proofJkt === undefined)
      throw tokenError('invalid_dpop_proof', 'the grant is DPoP-bound: a DPoP proof with its key is required');
    if (proofJkt !== grantJkt) throw tokenError('invalid_grant', 'the refresh token is bound to another DPoP key');
  }
  if (proofJkt === undefined && client.dpop_bound_access_tokens === true)
    throw tokenError('invalid_dpop_proof', 'this client must send a DPoP proof (dpop_bound_access_tokens)');
  return proofJkt;
}

/** §7.1: a DPoP-bound access token's `cnf.jkt`, if it has one. */
export function boundJkt(cnf: unknown): string | undefined {
  if (cnf === null || typeof cnf !== 'object') return undefined;
  const jkt = (cnf as Record<string, unknown>).jkt;
  return typeof jkt === 'string' ? jkt : undefined;
}
