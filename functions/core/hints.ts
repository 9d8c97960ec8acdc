// The user hints of a backchannel authentication request (CIBA Core §7.1): exactly one of login_hint, login_hint_token
// and id_token_hint; the two tokens are verified here. A token that is no JWT at all is invalid_request; one that
// cannot be trusted to name the user is unknown_user_id; an expired login_hint_token is expired_login_hint_token (§13).
import { errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { audienceProblem, compactJwsAlg, isSymmetricAlg, verificationFailure } from './jws.ts';
import { OAuthError } from './errors.ts';
import type { Params } from './params.ts';

export const LOGIN_HINT_MAX = 256;
export const HINT_TOKEN_MAX = 8192;
/** Longest subject value a login_hint_token may name (the same bound as a login_hint: it is looked up the same way). */
const SUBJECT_MAX = LOGIN_HINT_MAX;

export type HintType = 'login_hint' | 'login_hint_token' | 'id_token_hint';

export type IdTokenHintPolicy = {
  issuer: string;
  clientId: string;
  /** Epoch seconds. */
  now: number;
  /** Seconds an expired ID token is still accepted as a hint. */
  expiredGrace: number;
  /** The server's ID token algs (RS256/PS256/ES256). */
  algorithms: readonly string[];
};

export type LoginHintTokenPolicy = {
  issuer: string;
  clientId: string;
  /** Epoch seconds. */
  now: number;
  /** Seconds of clock skew allowed on exp and nbf. */
  clockTolerance: number;
  /** Asymmetric algs the client may sign with. */
  algorithms: readonly string[];
};

/** What the token names: a subject to resolve like a login_hint (sub, email or phone number). */
export type HintSubject = { kind: 'sub' | 'email' | 'phone_number'; value: string };

const HINTS = ['login_hint', 'login_hint_token', 'id_token_hint'] as const;

const invalid = (why: string) => new OAuthError('invalid_request', why);
const unknownUser = (why: string) => new OAuthError('unknown_user_id', why);

/** §7.1: exactly one of login_hint_token, id_token_hint and login_hint, of a bounded size. */
export function checkOneHint(params: Params): { type: HintType; value: string } {
  const present = HINTS.filter((type) => params.has(type));
  if (present.length === 0) throw invalid('one of login_hint, login_hint_token and id_token_hint is required');
  if (present.length > 1)
    throw invalid(`only one of login_hint, login_hint_token and id_token_hint may be sent (got ${present.join(', ')})`);
  const type = present[0]!;
  const value = params.get(type)!;
  const max = type === 'login_hint' ? LOGIN_HINT_MAX : HINT_TOKEN_MAX;
  if (value.length > max) throw invalid(`${type} must be at most ${max} characters`);
  return { type, value };
}

/**
 * §7.1 id_token_hint: an ID token this server issued to this client (signature checked with the server's keys). An
 * expired one is accepted up to expiredGrace seconds after exp.
 */
export async function verifyIdTokenHint(
  jwt: string,
  getServerKey: JWTVerifyGetKey,
  policy: IdTokenHintPolicy,
): Promise<{ sub: string }> {
  const alg = headerAlg(jwt, 'id_token_hint');
  const algorithms = policy.algorithms.filter((a) => !isSymmetricAlg(a));
  if (!algorithms.includes(alg))
    throw unknownUser('id_token_hint is not signed with an algorithm this server uses for ID tokens');

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, getServerKey, { algorithms, currentDate: new Date(policy.now * 1000) }));
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    // jose checks exp last, after the signature: an expired token's claims are verified and the grace decides below.
    if (!(e instanceof errors.JWTExpired)) throw unknownUser(hintFailure(e, 'id_token_hint'));
    payload = e.payload;
  }

  const { iss, aud, azp, sub, exp } = payload;
  if (iss !== policy.issuer) throw unknownUser('id_token_hint was not issued by this server');
  if (!(aud === policy.clientId || (Array.isArray(aud) && aud.includes(policy.clientId))))
    throw unknownUser('id_token_hint was not issued to this client (aud)');
  if (azp !== undefined && azp !== policy.clientId)
    throw unknownUser('id_token_hint was not issued to this client (azp)');
  if (typeof sub !== 'string' || sub === '') throw unknownUser('id_token_hint sub is required');
  if (exp === undefined) throw unknownUser('id_token_hint exp is required');
  if (policy.now - exp > policy.expiredGrace) throw unknownUser('id_token_hint has expired');
  return { sub };
}

/**
 * §7.1 login_hint_token: a JWT signed by a key the client registered, naming the user by an RFC 9493 subject identifier
 * (sub_id: email, phone_number, opaque, or iss_sub of this issuer) or a plain sub.
 */
export async function verifyLoginHintToken(
  jwt: string,
  getClientKey: JWTVerifyGetKey,
  policy: LoginHintTokenPolicy,
): Promise<HintSubject> {
  const alg = headerAlg(jwt, 'login_hint_token');
  if (isSymmetricAlg(alg)) throw unknownUser('login_hint_token must be signed with an asymmetric algorithm');
  const algorithms = policy.algorithms.filter((a) => !isSymmetricAlg(a));
  if (!algorithms.includes(alg))
    throw unknownUser(`login_hint_token alg is not allowed for this client (allowed: ${algorithms.join(', ')})`);

  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, getClientKey, {
      algorithms,
      currentDate: new Date(policy.now * 1000),
      clockTolerance: policy.clockTolerance,
    }));
  } catch (e) {
    if (e instanceof OAuthError) throw e;
    if (e instanceof errors.JWTExpired)
      throw new OAuthError('expired_login_hint_token', 'login_hint_token has expired');
    throw unknownUser(hintFailure(e, 'login_hint_token'));
  }

  const { iss, aud, exp } = payload;
  if (iss !== undefined && iss !== policy.clientId) throw unknownUser('login_hint_token iss must be the client_id');
  // aud is optional here; when present, the issuer is its sole value (jws.ts audienceVerdict).
  const audience =
    aud === undefined ? undefined : audienceProblem(aud, [policy.issuer], 'login_hint_token', 'name this server');
  if (audience) throw unknownUser(audience);
  if (exp === undefined) throw unknownUser('login_hint_token exp is required');
  return hintSubject(payload, policy.issuer);
}

/** RFC 9493 §3 subject identifiers (email §3.2.1, iss_sub §3.2.3, opaque §3.2.4, phone_number §3.2.5), else a plain sub. */
function hintSubject(payload: JWTPayload, issuer: string): HintSubject {
  const subject = (kind: HintSubject['kind'], value: unknown): HintSubject => {
    if (typeof value !== 'string' || value === '' || value.length > SUBJECT_MAX)
      throw unknownUser(`login_hint_token ${kind === 'sub' ? 'subject' : kind} is missing or invalid`);
    return { kind, value };
  };
  const subId: unknown = payload.sub_id;
  if (subId === undefined) {
    if (payload.sub === undefined) throw unknownUser('login_hint_token names no subject (sub_id or sub)');
    return subject('sub', payload.sub);
  }
  if (typeof subId !== 'object' || subId === null || Array.isArray(subId))
    throw unknownUser('login_hint_token sub_id must be a subject identifier object');
  const id = subId as Record<string, unknown>;
  switch (id.format) {
    case 'email':
      return subject('email', id.email);
    case 'phone_number':
      return subject('phone_number', id.phone_number);
    case 'opaque':
      return subject('sub', id.id);
    case 'iss_sub':
      if (id.iss !== issuer) throw unknownUser('login_hint_token sub_id names a subject of another issuer');
      return subject('sub', id.sub);
    default:
      throw unknownUser('login_hint_token sub_id format is not supported (email, phone_number, opaque, iss_sub)');
  }
}

/** The alg of a compact JWS; anything that is not a JWT at all is invalid_request. */
function headerAlg(jwt: string, what: HintType): string {
  const alg = compactJwsAlg(jwt);
  if (alg === undefined) throw invalid(`${what} is not a JWT`);
  if (alg === 'none') throw unknownUser(`${what} must be signed (alg none is not allowed)`);
  return alg;
}

/** Why jose refused a hint, in the hint's words (see jws.ts verificationFailure). */
function hintFailure(e: unknown, what: HintType): string {
  return verificationFailure(e, what, {
    malformed: `${what} is not a valid signed JWT`,
    unknownKey:
      what === 'id_token_hint'
        ? 'id_token_hint is not signed by a key of this server'
        : 'login_hint_token is not signed by a key registered for this client',
  });
}
