// §7.2 steps 4-5: the hint names a known user (CIBA Core §7.1). login_hint matches a user's sub, email or phone number;
// id_token_hint is an ID token this server issued to the client (functions/core/hints.ts); login_hint_token is a JWT
// the client signed naming the user. Whether the user exists and may be asked is settled by the user's gate
// (usecases/rate-limit.ts admitUser), in the same write that reserves the user's limits: anything that does not lead
// to a known user is unknown_user_id (§13); a disabled user is access_denied (§13), before anything is started.
import { OAuthError } from '../core/errors.ts';
import { verifyIdTokenHint, verifyLoginHintToken } from '../core/hints.ts';
import type { Hint } from '../core/backchannel-request.ts';
import { ID_TOKEN_ALGS, REQUEST_OBJECT_ALGS } from '../core/capabilities.ts';
import type { Client } from '../core/model.ts';
import { clientKeys } from '../adapters/client-keys.ts';
import { ownKeys } from '../adapters/keys.ts';
import { findSubByLogin, lookupLogin } from '../adapters/store.ts';
import { config } from '../config.ts';

export const unknownUser = () => new OAuthError('unknown_user_id', 'the hint does not identify a known user');
export const userDisabled = () => new OAuthError('access_denied', 'the end-user cannot be asked to authenticate');

/** Where a hint led: the sub, and the login name when the sub was remembered rather than read (the gate re-checks it). */
export type Resolved = { sub: string; login?: string };

/** A login name's user; `fresh`: read, never remembered. */
async function byLogin(value: string, fresh: boolean): Promise<Resolved> {
  const found = fresh ? { sub: await findSubByLogin(value) } : await lookupLogin(value);
  if (!found.sub) throw unknownUser();
  return found.login !== undefined ? { sub: found.sub, login: found.login } : { sub: found.sub };
}

/**
 * The user the hint names. `loginLookup`: an already started lookupLogin for a login_hint (it overlaps client
 * authentication). `fresh`: look login names up again (the gate refused a remembered one).
 */
export async function resolveHint(
  hint: Hint,
  client: Client,
  loginLookup?: Promise<{ sub: string | undefined; login?: string }>,
  fresh = false,
): Promise<Resolved> {
  const cfg = config();
  const now = Math.floor(Date.now() / 1000);
  if (hint.type === 'login_hint') {
    if (fresh || !loginLookup) return byLogin(hint.value, fresh);
    const found = await loginLookup;
    if (!found.sub) throw unknownUser();
    return found.login !== undefined ? { sub: found.sub, login: found.login } : { sub: found.sub };
  }
  if (hint.type === 'id_token_hint') {
    const { sub } = await verifyIdTokenHint(hint.value, await ownKeys(), {
      issuer: cfg.issuer,
      clientId: client.client_id,
      now,
      expiredGrace: cfg.idTokenHintGrace,
      algorithms: ID_TOKEN_ALGS,
    });
    return { sub };
  }
  const keys = clientKeys(client);
  if (!keys)
    throw new OAuthError('unknown_user_id', 'login_hint_token needs keys registered for the client (jwks or jwks_uri)');
  const subject = await verifyLoginHintToken(hint.value, keys, {
    issuer: cfg.issuer,
    clientId: client.client_id,
    now,
    clockTolerance: 30,
    algorithms: REQUEST_OBJECT_ALGS,
  });
  return subject.kind === 'sub' ? { sub: subject.value } : byLogin(subject.value, fresh);
}
