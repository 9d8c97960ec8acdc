// §7.2 steps 4-5: the hint names a known user (CIBA Core §7.1). login_hint matches a user's sub, email or phone number;
// id_token_hint is an ID token this server issued to the client (functions/core/hints.ts); login_hint_token is a JWT
// the client signed naming the user. Anything that does not lead to a known user is unknown_user_id (§13); a
// disabled user is access_denied (§13), before anything is started for them.
import { OAuthError } from '../core/errors.ts';
import { verifyIdTokenHint, verifyLoginHintToken } from '../core/hints.ts';
import type { Hint } from '../core/backchannel-request.ts';
import { ID_TOKEN_ALGS, REQUEST_OBJECT_ALGS } from '../core/capabilities.ts';
import type { Client, User } from '../core/model.ts';
import { clientKeys } from '../adapters/client-keys.ts';
import { ownKeys } from '../adapters/keys.ts';
import { findSubByLogin, getUser } from '../adapters/store.ts';
import { config } from '../config.ts';

const unknownUser = () => new OAuthError('unknown_user_id', 'the hint does not identify a known user');

/** The user the hint named: known, and not disabled. */
function askable(user: User | undefined): string {
  if (!user) throw unknownUser();
  if (user.disabled) throw new OAuthError('access_denied', 'the end-user cannot be asked to authenticate');
  return user.sub;
}

/** The sub the hint names. `loginLookup` is an already started findSubByLogin for a login_hint (saves a round trip). */
export async function resolveHint(
  hint: Hint,
  client: Client,
  loginLookup?: Promise<string | undefined>,
): Promise<string> {
  const cfg = config();
  const now = Math.floor(Date.now() / 1000);
  if (hint.type === 'login_hint') {
    // The user is read while the client's quota is being counted (rate-limit.ts): no extra round trip.
    const sub = await (loginLookup ?? findSubByLogin(hint.value));
    if (!sub) throw unknownUser();
    return askable(await getUser(sub));
  }
  if (hint.type === 'id_token_hint') {
    const { sub } = await verifyIdTokenHint(hint.value, await ownKeys(), {
      issuer: cfg.issuer,
      clientId: client.client_id,
      now,
      expiredGrace: cfg.idTokenHintGrace,
      algorithms: ID_TOKEN_ALGS,
    });
    return askable(await getUser(sub));
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
  const sub = subject.kind === 'sub' ? subject.value : await findSubByLogin(subject.value);
  if (!sub) throw unknownUser();
  return askable(await getUser(sub));
}
