// CIBA §7.1.1 signed authentication requests with I/O: the client's keys and the jti replay cache around the rules
// in functions/core/request-object.ts.
import { OAuthError } from '../core/errors.ts';
import { requestObjectAlgorithms } from '../core/backchannel-request.ts';
import { checkOnlyRequestObject, verifyRequestObject } from '../core/request-object.ts';
import type { Client } from '../core/model.ts';
import type { Params } from '../core/params.ts';
import { clientKeys } from '../adapters/client-keys.ts';
import { useOnce } from '../adapters/store.ts';
import { config } from '../config.ts';

const CLOCK_TOLERANCE = 30;
/** FAPI-CIBA §5.2.2: exp − nbf at most 60 minutes, nbf at most 60 minutes old. */
const MAX_LIFETIME = 3600;
const MAX_AGE = 3600;

/** Only `request` (and client authentication) in the form; the JWT verified with the client's keys; its jti used once. */
export async function unpackRequestObject(params: Params, client: Client): Promise<Params> {
  checkOnlyRequestObject(params);
  const keys = clientKeys(client);
  if (!keys)
    throw new OAuthError('invalid_request', 'the client has no registered keys to verify a request object with');
  const now = Math.floor(Date.now() / 1000);
  const verified = await verifyRequestObject(params.get('request')!, keys, {
    issuer: config().issuer,
    clientId: client.client_id,
    algorithms: requestObjectAlgorithms(client),
    now,
    clockTolerance: CLOCK_TOLERANCE,
    maxLifetime: MAX_LIFETIME,
    maxAge: MAX_AGE,
  });
  if (!(await useOnce(`request#${client.client_id}`, verified.jti, verified.exp + CLOCK_TOLERANCE, now))) {
    throw new OAuthError('invalid_request', 'the request object has been used before (jti)');
  }
  return verified.params;
}
