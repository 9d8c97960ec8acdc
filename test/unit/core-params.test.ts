// functions/core/params.ts: form-encoded request parameters (CIBA §7.1 / RFC 6749 §3.1, §3.2, Appendix B).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseForm } from '../../functions/core/params.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const FORM = 'application/x-www-form-urlencoded';

test('§7.1 application/x-www-form-urlencoded is accepted', () => {
  const p = parseForm(FORM, 'scope=openid&login_hint=alice');
  assert.deepEqual(
    [...p],
    [
      ['scope', 'openid'],
      ['login_hint', 'alice'],
    ],
  );
});

test('§7.1 content type with charset parameter and different case is accepted', () => {
  assert.equal(parseForm('application/x-www-form-urlencoded; charset=UTF-8', 'a=1').get('a'), '1');
  assert.equal(parseForm('Application/X-WWW-Form-URLEncoded;charset=utf-8', 'a=1').get('a'), '1');
  assert.equal(parseForm('  application/x-www-form-urlencoded  ', 'a=1').get('a'), '1');
});

test('§7.1 a body that is not form-encoded → invalid_request', () => {
  for (const type of [
    'application/json',
    'multipart/form-data; boundary=x',
    'text/plain',
    '',
    'application/x-www-form-urlencodedx',
  ]) {
    throwsOAuth(() => parseForm(type, 'a=1'), 'invalid_request', 400, /x-www-form-urlencoded/);
  }
});

test('§7.1 a missing content type → invalid_request', () => {
  throwsOAuth(() => parseForm(undefined, 'a=1'), 'invalid_request', 400);
});

test('RFC 6749 §3.1 a parameter sent twice → invalid_request', () => {
  throwsOAuth(() => parseForm(FORM, 'scope=openid&scope=openid'), 'invalid_request', 400, /scope/);
  throwsOAuth(() => parseForm(FORM, 'scope=openid&login_hint=a&scope=profile'), 'invalid_request', 400, /scope/);
});

test('RFC 6749 §3.1 a repeated parameter counts even when empty → invalid_request', () => {
  throwsOAuth(() => parseForm(FORM, 'login_hint=&login_hint='), 'invalid_request', 400, /login_hint/);
  throwsOAuth(() => parseForm(FORM, 'login_hint=&login_hint=alice'), 'invalid_request', 400, /login_hint/);
  throwsOAuth(() => parseForm(FORM, 'login_hint=alice&login_hint='), 'invalid_request', 400, /login_hint/);
  throwsOAuth(() => parseForm(FORM, 'login_hint&login_hint=alice'), 'invalid_request', 400, /login_hint/);
});

test('RFC 6749 §3.1 parameters sent without a value are treated as omitted', () => {
  const p = parseForm(FORM, 'scope=openid&binding_message=&user_code');
  assert.equal(p.has('binding_message'), false);
  assert.equal(p.has('user_code'), false);
  assert.equal(p.get('scope'), 'openid');
  assert.equal(p.size, 1);
});

test('parameter names are case-sensitive (Scope and scope are different parameters)', () => {
  const p = parseForm(FORM, 'Scope=a&scope=b');
  assert.equal(p.get('Scope'), 'a');
  assert.equal(p.get('scope'), 'b');
});

test('Appendix B form decoding: + is a space, percent escapes are UTF-8', () => {
  const p = parseForm(FORM, 'scope=openid+profile&binding_message=Caf%C3%A9%20%2B%201&x=a%26b%3Dc');
  assert.equal(p.get('scope'), 'openid profile');
  assert.equal(p.get('binding_message'), 'Café + 1');
  assert.equal(p.get('x'), 'a&b=c');
});

test('an empty or missing body gives no parameters', () => {
  assert.equal(parseForm(FORM, undefined).size, 0);
  assert.equal(parseForm(FORM, '').size, 0);
  assert.equal(parseForm(FORM, '&&').size, 0);
});
