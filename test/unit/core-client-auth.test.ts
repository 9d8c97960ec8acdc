// functions/core/client-auth.ts: client authentication at the backchannel and token endpoints
// (CIBA §7.1 / §7.2 step 1, RFC 6749 §2.3, §2.3.1, §5.2).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { authenticateClient, presentedCredentials } from '../../functions/core/client-auth.ts';
import { hashClientSecret } from '../../functions/core/crypto.ts';
import { CIBA_GRANT, type Client, type ClientAuthMethod } from '../../functions/core/model.ts';
import { caught, isOAuthError, throwsOAuth } from './helpers/oauth-assert.ts';

/** RFC 6749 §2.3.1: each of id and secret is application/x-www-form-urlencoded, then `id:secret` is base64. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
function basic(id: string, secret: string): string {
  return 'Basic ' + Buffer.from(`${formEncode(id)}:${formEncode(secret)}`, 'utf8').toString('base64');
}
function params(entries: Record<string, string> = {}): ReadonlyMap<string, string> {
  return new Map(Object.entries(entries));
}
function client(
  id: string,
  secret: string,
  method: ClientAuthMethod = 'client_secret_basic',
  extra: Partial<Client> = {},
): Client {
  return {
    client_id: id,
    token_endpoint_auth_method: method,
    client_secret_hash: hashClientSecret(secret),
    grant_types: [CIBA_GRANT],
    scope: 'openid',
    backchannel_token_delivery_mode: 'poll',
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
    ...extra,
  };
}

const BASIC_CHALLENGE = /^Basic realm="[^"]*"/;
const SECRET = 'correct-horse-battery-staple-0123456789';

test('RFC 6749 §2.3.1 client_secret_basic: credentials are read from the Authorization header', () => {
  const presented = presentedCredentials(basic('pos-terminal', SECRET), params());
  assert.deepEqual(presented, {
    clientId: 'pos-terminal',
    kind: 'secret',
    method: 'client_secret_basic',
    secret: SECRET,
  });
  const c = client('pos-terminal', SECRET);
  assert.equal(authenticateClient(c, presented), c);
});

test('RFC 6749 §2.3.1 client_secret_basic: id and secret with : % + and space are form-urlencoded before base64', () => {
  const id = 'pos:terminal 7%+1';
  const secret = 'p:ss w%rd+plus:colon%41';
  const header = basic(id, secret);
  // The encoded form really escapes what needs escaping (guards the test's own encoder).
  assert.equal(
    Buffer.from(header.slice(6), 'base64').toString(),
    'pos%3Aterminal+7%25%2B1:p%3Ass+w%25rd%2Bplus%3Acolon%2541',
  );
  const presented = presentedCredentials(header, params());
  assert.deepEqual(presented, { clientId: id, kind: 'secret', method: 'client_secret_basic', secret });
  authenticateClient(client(id, secret), presented);
});

test('RFC 6749 §2.3.1 client_secret_basic: %20 is a space as well as +', () => {
  const header = 'Basic ' + Buffer.from('my%20client:s%20e%20c%20r%20e%20t-0123456789').toString('base64');
  assert.deepEqual(presentedCredentials(header, params()), {
    clientId: 'my client',
    kind: 'secret',
    method: 'client_secret_basic',
    secret: 's e c r e t-0123456789',
  });
});

test('RFC 6749 §2.3.1 client_secret_basic: an unencoded + in the secret decodes to a space, so it does not match', () => {
  const secret = 'abc+def-0123456789';
  const header = 'Basic ' + Buffer.from(`c1:${secret}`).toString('base64');
  const presented = presentedCredentials(header, params());
  assert.equal(presented.kind === 'secret' && presented.secret, 'abc def-0123456789');
  throwsOAuth(() => authenticateClient(client('c1', secret), presented), 'invalid_client', 401);
});

test('RFC 7235 the Basic scheme name is case-insensitive', () => {
  const header = basic('c1', SECRET).replace('Basic', 'bAsIc');
  assert.equal(presentedCredentials(header, params()).clientId, 'c1');
});

test('RFC 6749 §2.3.1 client_secret_post: client_id and client_secret in the body', () => {
  const presented = presentedCredentials(undefined, params({ client_id: 'c1', client_secret: SECRET }));
  assert.deepEqual(presented, { clientId: 'c1', kind: 'secret', method: 'client_secret_post', secret: SECRET });
  const c = client('c1', SECRET, 'client_secret_post');
  assert.equal(authenticateClient(c, presented), c);
});

test('RFC 6749 §2.3 more than one authentication method in a request → invalid_request', () => {
  throwsOAuth(
    () => presentedCredentials(basic('c1', SECRET), params({ client_id: 'c1', client_secret: SECRET })),
    'invalid_request',
    400,
  );
  throwsOAuth(
    () => presentedCredentials(basic('c1', SECRET), params({ client_secret: SECRET })),
    'invalid_request',
    400,
  );
});

test('§7.1 a client must use its registered method: post client presenting basic → invalid_client with Basic challenge', () => {
  const presented = presentedCredentials(basic('c1', SECRET), params());
  const e = caught(() => authenticateClient(client('c1', SECRET, 'client_secret_post'), presented));
  isOAuthError(e, 'invalid_client', 401, /client_secret_post/);
  assert.match((e as { headers: Record<string, string> }).headers['WWW-Authenticate'] ?? '', BASIC_CHALLENGE);
});

test('§7.1 a client must use its registered method: basic client presenting post → invalid_client', () => {
  const presented = presentedCredentials(undefined, params({ client_id: 'c1', client_secret: SECRET }));
  throwsOAuth(
    () => authenticateClient(client('c1', SECRET, 'client_secret_basic'), presented),
    'invalid_client',
    401,
    /client_secret_basic/,
  );
});

test('RFC 6749 §5.2 wrong secret → invalid_client (basic: 401 with WWW-Authenticate)', () => {
  const presented = presentedCredentials(basic('c1', SECRET + 'x'), params());
  const e = caught(() => authenticateClient(client('c1', SECRET), presented));
  isOAuthError(e, 'invalid_client', 401);
  assert.match((e as { headers: Record<string, string> }).headers['WWW-Authenticate'] ?? '', BASIC_CHALLENGE);
});

test('RFC 6749 §5.2 wrong secret with client_secret_post → invalid_client 401 without a Basic challenge', () => {
  const presented = presentedCredentials(undefined, params({ client_id: 'c1', client_secret: 'nope' }));
  const e = caught(() => authenticateClient(client('c1', SECRET, 'client_secret_post'), presented));
  isOAuthError(e, 'invalid_client', 401);
  assert.equal((e as { headers: Record<string, string> }).headers['WWW-Authenticate'], undefined);
});

test('RFC 6749 §5.2 unknown client → invalid_client 401 (basic: with WWW-Authenticate)', () => {
  const e = caught(() => authenticateClient(undefined, presentedCredentials(basic('ghost', SECRET), params())));
  isOAuthError(e, 'invalid_client', 401);
  assert.match((e as { headers: Record<string, string> }).headers['WWW-Authenticate'] ?? '', BASIC_CHALLENGE);
  throwsOAuth(
    () =>
      authenticateClient(
        undefined,
        presentedCredentials(undefined, params({ client_id: 'ghost', client_secret: SECRET })),
      ),
    'invalid_client',
    401,
  );
});

test('RFC 6749 §5.2 a client without a stored secret cannot authenticate → invalid_client', () => {
  const { client_secret_hash: _, ...noSecret } = client('c1', SECRET);
  throwsOAuth(
    () => authenticateClient(noSecret, presentedCredentials(basic('c1', SECRET), params())),
    'invalid_client',
    401,
  );
});

test('RFC 6749 §2.3.1 client_id in the body different from the Basic id → invalid_client with WWW-Authenticate', () => {
  const e = caught(() => presentedCredentials(basic('c1', SECRET), params({ client_id: 'c2' })));
  isOAuthError(e, 'invalid_client', 401, /client_id/);
  assert.match((e as { headers: Record<string, string> }).headers['WWW-Authenticate'] ?? '', BASIC_CHALLENGE);
});

test('RFC 6749 §2.3.1 client_id in the body equal to the Basic id is allowed', () => {
  assert.equal(presentedCredentials(basic('c1', SECRET), params({ client_id: 'c1' })).clientId, 'c1');
});

test('RFC 6749 §2.3.1 malformed Basic credentials → invalid_client 401 with WWW-Authenticate', () => {
  const malformed = [
    'Basic !!!!', // not base64 at all
    'Basic ' + Buffer.from('no-colon-here').toString('base64'),
    'Basic ' + Buffer.from(':secret-without-id').toString('base64'),
    'Basic ' + Buffer.from('c1%ZZ:secret').toString('base64'), // bad percent escape in the id
    'Basic ' + Buffer.from('c1:bad%E0%A4escape').toString('base64'), // bad UTF-8 escape in the secret
    'Basic ',
  ];
  for (const header of malformed) {
    const e = caught(() => presentedCredentials(header, params()));
    isOAuthError(e, 'invalid_client', 401, /malformed/);
    assert.match((e as { headers: Record<string, string> }).headers['WWW-Authenticate'] ?? '', BASIC_CHALLENGE, header);
  }
});

test('RFC 6749 §5.2 no client authentication at all → invalid_client 401', () => {
  throwsOAuth(() => presentedCredentials(undefined, params()), 'invalid_client', 401);
  throwsOAuth(() => presentedCredentials(undefined, params({ client_id: 'c1' })), 'invalid_client', 401);
  throwsOAuth(() => presentedCredentials(undefined, params({ client_secret: SECRET })), 'invalid_client', 401);
});

test('RFC 6749 §2.3 a non-Basic Authorization header is not client authentication', () => {
  throwsOAuth(() => presentedCredentials('Bearer abc', params()), 'invalid_client', 401);
  const presented = presentedCredentials('Bearer abc', params({ client_id: 'c1', client_secret: SECRET }));
  assert.equal(presented.kind === 'secret' && presented.method, 'client_secret_post');
});

test('RFC 6749 §2.3 a client_id no registered client can have (too long, control characters) → invalid_client (401) before any lookup', () => {
  throwsOAuth(() => presentedCredentials(basic('x'.repeat(129), SECRET), params()), 'invalid_client', 401);
  throwsOAuth(
    () => presentedCredentials(undefined, params({ client_id: 'a\u0000b', client_secret: SECRET })),
    'invalid_client',
    401,
  );
  assert.equal(presentedCredentials(basic('x'.repeat(128), SECRET), params()).clientId, 'x'.repeat(128));
});
