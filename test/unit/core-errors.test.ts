// functions/core/errors.ts: the error table (CIBA §13, §11, RFC 6749 §5.2, RFC 6750 §3.1) and the JSON body.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_STATUS, OAuthError, tokenError, type OAuthErrorCode } from '../../functions/core/errors.ts';

const ALL_CODES = Object.keys(ERROR_STATUS) as OAuthErrorCode[];

test('§13 backchannel endpoint: invalid_request, invalid_scope, expired_login_hint_token, unknown_user_id, unauthorized_client, missing_user_code, invalid_user_code, invalid_binding_message → 400', () => {
  for (const code of [
    'invalid_request',
    'invalid_scope',
    'expired_login_hint_token',
    'unknown_user_id',
    'unauthorized_client',
    'missing_user_code',
    'invalid_user_code',
    'invalid_binding_message',
  ] as const) {
    assert.equal(ERROR_STATUS[code], 400, code);
    assert.equal(new OAuthError(code).status, 400, code);
  }
});

test('§13 invalid_client → 401', () => {
  assert.equal(ERROR_STATUS.invalid_client, 401);
  assert.equal(new OAuthError('invalid_client').status, 401);
});

test('§13 access_denied at the backchannel endpoint → 403', () => {
  assert.equal(ERROR_STATUS.access_denied, 403);
  assert.equal(new OAuthError('access_denied').status, 403);
});

test('§11 token errors authorization_pending, slow_down, expired_token, access_denied, invalid_grant, unsupported_grant_type are in the table', () => {
  for (const code of [
    'authorization_pending',
    'slow_down',
    'expired_token',
    'access_denied',
    'invalid_grant',
    'unsupported_grant_type',
  ] as const) {
    assert.ok(code in ERROR_STATUS, code);
  }
});

test('RFC 6750 §3.1 invalid_token → 401, insufficient_scope → 403', () => {
  assert.equal(new OAuthError('invalid_token').status, 401);
  assert.equal(new OAuthError('insufficient_scope').status, 403);
});

test('§11 token endpoint variant: every error is 400 except invalid_client (401)', () => {
  for (const code of ALL_CODES) {
    if (code === 'server_error') continue; // a server fault, not a client error: see the next test
    assert.equal(tokenError(code).status, code === 'invalid_client' ? 401 : 400, code);
  }
});

test('§11 token endpoint: access_denied is 400 there, not the backchannel 403', () => {
  const e = tokenError('access_denied', 'the end-user denied the request');
  assert.equal(e.error, 'access_denied');
  assert.equal(e.status, 400);
});

test('§11 token endpoint: slow_down, authorization_pending and expired_token are 400', () => {
  assert.equal(tokenError('slow_down').status, 400);
  assert.equal(tokenError('authorization_pending').status, 400);
  assert.equal(tokenError('expired_token').status, 400);
});

test('token endpoint: server_error keeps 500 (a server fault is not a client error)', () => {
  assert.equal(tokenError('server_error').status, 500);
});

test('OAuthError: status override, headers, cause, name', () => {
  const cause = new Error('root');
  const e = new OAuthError('temporarily_unavailable', 'later', { status: 503, headers: { 'Retry-After': '1' }, cause });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'OAuthError');
  assert.equal(e.error, 'temporarily_unavailable');
  assert.equal(e.status, 503);
  assert.deepEqual(e.headers, { 'Retry-After': '1' });
  assert.equal(e.cause, cause);
  assert.deepEqual(new OAuthError('invalid_request').headers, {});
});

test('RFC 6749 §5.2 body: error only when there is no description', () => {
  assert.deepEqual(new OAuthError('invalid_request').toJSON(), { error: 'invalid_request' });
  assert.deepEqual(JSON.parse(JSON.stringify(new OAuthError('invalid_grant'))), { error: 'invalid_grant' });
});

test('RFC 6749 §5.2 body: error and error_description, nothing else', () => {
  const e = new OAuthError('invalid_scope', 'scope not allowed for this client: phone');
  assert.deepEqual(JSON.parse(JSON.stringify(e)), {
    error: 'invalid_scope',
    error_description: 'scope not allowed for this client: phone',
  });
});

test('RFC 6749 §5.2 error_description keeps every allowed character %x20-21 / %x23-5B / %x5D-7E', () => {
  let allowed = '';
  for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x22 && c !== 0x5c) allowed += String.fromCharCode(c);
  assert.equal(new OAuthError('invalid_request', allowed).toJSON().error_description, allowed);
});

test('RFC 6749 §5.2 error_description drops " and \\ (%x22, %x5C)', () => {
  assert.equal(new OAuthError('invalid_request', 'say "hi" \\ now').toJSON().error_description, 'say hi  now');
});

test('RFC 6749 §5.2 error_description drops control characters, DEL and non-ASCII', () => {
  const e = new OAuthError('invalid_request', 'line1\nline2\t\r\x00\x1f\x7f é€👍 end');
  assert.equal(e.toJSON().error_description, 'line1line2  end');
});

test('RFC 6749 §5.2 error_description made only of disallowed characters is omitted', () => {
  assert.deepEqual(new OAuthError('invalid_request', '"\\\n€').toJSON(), { error: 'invalid_request' });
});
