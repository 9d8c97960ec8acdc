// functions/core/backchannel-request.ts and binding-message.ts: the backchannel authentication request
// (CIBA Core §7.1 parameters, §7.2 validation, §13 error codes).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  checkAcrValues,
  checkGrantType,
  checkHint,
  checkRequestedExpiry,
  checkScope,
  checkUserCode,
  rejectUnsupported,
  validateBackchannelRequest,
  type RequestPolicy,
} from '../../functions/core/backchannel-request.ts';
import { validateBindingMessage } from '../../functions/core/binding-message.ts';
import { CIBA_GRANT, REFRESH_GRANT, type Client } from '../../functions/core/model.ts';
import { loadConfig } from '../../functions/config.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const POLICY: RequestPolicy = { defaultExpiresIn: 300, minExpiresIn: 10, maxExpiresIn: 1800, bindingMessageMax: 128 };

function params(entries: Record<string, string> = {}): ReadonlyMap<string, string> {
  return new Map(Object.entries(entries));
}
function client(extra: Partial<Client> = {}): Client {
  return {
    client_id: 'pos-terminal',
    token_endpoint_auth_method: 'client_secret_basic',
    client_secret_hash: 'hs256$x$y',
    grant_types: [CIBA_GRANT, REFRESH_GRANT],
    scope: 'openid profile email',
    backchannel_token_delivery_mode: 'poll',
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
    ...extra,
  };
}
const VALID = { scope: 'openid', login_hint: 'alice' };

describe('checkGrantType', () => {
  test('§4/§13 a client not registered for the CIBA grant → unauthorized_client (400)', () => {
    throwsOAuth(() => checkGrantType(client({ grant_types: [REFRESH_GRANT] })), 'unauthorized_client', 400);
    throwsOAuth(() => checkGrantType(client({ grant_types: [] })), 'unauthorized_client', 400);
  });
  test('§4 a client registered for urn:openid:params:grant-type:ciba passes', () => {
    assert.equal(checkGrantType(client({ grant_types: [CIBA_GRANT] })), undefined);
  });
});

describe('rejectUnsupported', () => {
  test('§7.1.1 a request parameter that reaches validation unverified → invalid_request', () => {
    throwsOAuth(
      () => rejectUnsupported(params({ ...VALID, request: 'eyJ.eyJ.sig' }), client()),
      'invalid_request',
      400,
      /request/,
    );
  });
  test('§7.1.1 signed requests pass for a client that must sign; unsigned ones do not', () => {
    const signer = client({ backchannel_authentication_request_signing_alg: 'PS256' });
    assert.equal(rejectUnsupported(params(VALID), signer, true), undefined);
    throwsOAuth(() => rejectUnsupported(params(VALID), signer), 'invalid_request', 400, /must send signed/);
    throwsOAuth(
      () => rejectUnsupported(params(VALID), client({ security_profile: 'fapi-ciba' })),
      'invalid_request',
      400,
      /must send signed/,
    );
  });
  test('§7.1 request_uri is not defined for CIBA → invalid_request', () => {
    throwsOAuth(
      () => rejectUnsupported(params({ ...VALID, request_uri: 'urn:x' }), client()),
      'invalid_request',
      400,
      /request_uri/,
    );
  });
  test('§7.1 a plain request passes', () => {
    assert.equal(rejectUnsupported(params(VALID), client()), undefined);
  });
});

describe('checkScope', () => {
  test('§7.1 scope is required → invalid_request', () => {
    throwsOAuth(() => checkScope(params({ login_hint: 'alice' }), client()), 'invalid_request', 400, /scope/);
  });
  test('§7.1 scope must contain openid → invalid_request', () => {
    throwsOAuth(() => checkScope(params({ scope: 'profile email' }), client()), 'invalid_request', 400, /openid/);
  });
  test('RFC 6749 §3.3 scope values are case-sensitive: OpenID is not openid → invalid_request', () => {
    throwsOAuth(() => checkScope(params({ scope: 'OpenID' }), client()), 'invalid_request', 400, /openid/);
  });
  test('§7.1 openid alone and with registered scopes is accepted', () => {
    assert.equal(checkScope(params({ scope: 'openid' }), client()), 'openid');
    assert.equal(checkScope(params({ scope: 'email openid profile' }), client()), 'email openid profile');
  });
  test('§7.1 repeated scope values are collapsed', () => {
    assert.equal(checkScope(params({ scope: 'openid profile openid profile' }), client()), 'openid profile');
  });
  test('§13 a scope not registered for the client → invalid_scope (400)', () => {
    throwsOAuth(() => checkScope(params({ scope: 'openid phone' }), client()), 'invalid_scope', 400, /phone/);
    throwsOAuth(() => checkScope(params({ scope: 'openid admin' }), client()), 'invalid_scope', 400, /admin/);
  });
  test('RFC 6749 §3.3 malformed scope (double, leading or trailing space, tab, quote, backslash, non-ASCII) → invalid_scope', () => {
    for (const scope of [
      'openid  profile',
      ' openid',
      'openid ',
      'openid\tprofile',
      'openid "x"',
      'openid a\\b',
      'openid profilé',
    ]) {
      throwsOAuth(() => checkScope(params({ scope }), client()), 'invalid_scope', 400, /malformed/);
    }
  });
});

describe('checkHint', () => {
  test('§7.1 no hint → invalid_request', () => {
    throwsOAuth(
      () => checkHint(params({ scope: 'openid' })),
      'invalid_request',
      400,
      /(one of|only one of) login_hint/,
    );
  });
  test('§7.1 exactly one hint: login_hint is returned', () => {
    assert.deepEqual(checkHint(params(VALID)), { type: 'login_hint', value: 'alice' });
  });
  test('§7.2 step 3 two hints → invalid_request', () => {
    throwsOAuth(
      () => checkHint(params({ login_hint: 'alice', id_token_hint: 'eyJ.x.y' })),
      'invalid_request',
      400,
      /(one of|only one of) login_hint/,
    );
    throwsOAuth(
      () => checkHint(params({ login_hint: 'alice', login_hint_token: 'eyJ.x.y' })),
      'invalid_request',
      400,
      /(one of|only one of) login_hint/,
    );
    throwsOAuth(
      () => checkHint(params({ login_hint_token: 'a', id_token_hint: 'b' })),
      'invalid_request',
      400,
      /(one of|only one of) login_hint/,
    );
  });
  test('§7.2 step 3 three hints → invalid_request', () => {
    throwsOAuth(
      () => checkHint(params({ login_hint: 'alice', login_hint_token: 'a', id_token_hint: 'b' })),
      'invalid_request',
      400,
      /(one of|only one of) login_hint/,
    );
  });
  test('§7.1 login_hint_token or id_token_hint alone is the hint (verified later)', () => {
    assert.deepEqual(checkHint(params({ login_hint_token: 'eyJ.x.y' })), {
      type: 'login_hint_token',
      value: 'eyJ.x.y',
    });
    assert.deepEqual(checkHint(params({ id_token_hint: 'eyJ.x.y' })), { type: 'id_token_hint', value: 'eyJ.x.y' });
  });
  test('§7.1 login_hint of 256 characters passes, 257 → invalid_request', () => {
    assert.equal(checkHint(params({ login_hint: 'a'.repeat(256) })).value.length, 256);
    throwsOAuth(() => checkHint(params({ login_hint: 'a'.repeat(257) })), 'invalid_request', 400, /at most 256/);
  });
});

describe('validateBindingMessage', () => {
  const bad = (value: string) => throwsOAuth(() => validateBindingMessage(value), 'invalid_binding_message', 400);

  test('§7.1 binding_message is optional', () => {
    assert.equal(validateBindingMessage(undefined), undefined);
  });
  test('§7.1 binding_message by default: an ordinary sentence of 128 characters passes, 129 → invalid_binding_message', () => {
    const sentence = 'Please identify yourself for better help in our customer service.';
    assert.equal(validateBindingMessage(sentence), sentence);
    assert.equal(validateBindingMessage('x'.repeat(128)), 'x'.repeat(128));
    throwsOAuth(() => validateBindingMessage('x'.repeat(129)), 'invalid_binding_message', 400, /at most 128/);
  });
  test('§7.1 binding_message length counts characters, not UTF-16 units (128 astral characters pass, 129 fail)', () => {
    assert.equal(validateBindingMessage('𝟘'.repeat(128)), '𝟘'.repeat(128));
    throwsOAuth(() => validateBindingMessage('𝟘'.repeat(129)), 'invalid_binding_message', 400, /at most 128/);
  });
  test('binding_message: the configured maximum applies (CIBA_BINDING_MESSAGE_MAX)', () => {
    const policy = { bindingMessageMax: 20 };
    assert.equal(validateBindingMessage('x'.repeat(20), policy), 'x'.repeat(20));
    throwsOAuth(() => validateBindingMessage('x'.repeat(21), policy), 'invalid_binding_message', 400, /at most 20/);
  });
  test('binding_message: a configured pattern must match the whole message (CIBA_BINDING_MESSAGE_PATTERN)', () => {
    const policy = { bindingMessageMax: 64, bindingMessagePattern: /^(?:[A-Z0-9-]+)$/u };
    assert.equal(validateBindingMessage('ORDER-4711', policy), 'ORDER-4711');
    throwsOAuth(() => validateBindingMessage('order 4711', policy), 'invalid_binding_message', 400, /form/);
    throwsOAuth(() => validateBindingMessage('ORDER-4711 ', policy), 'invalid_binding_message', 400);
  });
  test('§7.1 binding_message in any script: Unicode letters are accepted', () => {
    for (const msg of [
      'Überweisung an Jürgen: 12,50 €',
      'Код подтверждения 4821',
      '確認コード 4821',
      'تأكيد 4821',
      'A',
      '#1234',
    ]) {
      assert.equal(validateBindingMessage(msg), msg);
    }
  });
  test('§7.1 binding_message is NFC-normalised (e + combining acute = é)', () => {
    assert.equal(validateBindingMessage('Cafe\u0301 7'), 'Caf\u00e9 7');
  });
  test('§7.1 binding_message: single emoji and symbols are accepted (Unicode category S)', () => {
    for (const msg of ['👍 4821', '€ 5,00', '±5 °C', '❤️']) assert.equal(validateBindingMessage(msg), msg);
  });
  test('§13 binding_message: an emoji ZWJ sequence (contains U+200D, a format character) → invalid_binding_message', () => {
    bad('family 👨‍👩‍👧');
  });
  test('§13 binding_message with control characters → invalid_binding_message', () => {
    for (const msg of ['bell\u0007', 'nul\u0000x', 'tab\there', 'del\u007fx', 'c1\u0085x']) bad(msg);
  });
  test('§13 binding_message with a bidi override (U+202E) or other format characters → invalid_binding_message', () => {
    bad('Pay \u202E0001\u202C EUR');
    bad('Pay\u200Bnow');
    bad('\u2066Pay\u2069');
    bad('Pay\uFEFF');
  });
  test('§13 binding_message on more than one line → invalid_binding_message', () => {
    bad('line one\nline two');
    bad('line one\r\nline two');
    bad('line one\u2028line two');
  });
  test('§13 binding_message with a double space, leading or trailing space → invalid_binding_message', () => {
    bad('Pay  now');
    bad(' Pay now');
    bad('Pay now ');
    bad(' ');
  });
  test('§13 binding_message with a non-breaking or other non-ASCII space → invalid_binding_message', () => {
    bad('Pay\u00A0now');
    bad('Pay\u3000now');
  });
  test('§13 an empty binding_message given directly → invalid_binding_message', () => {
    bad('');
  });
});

describe('checkUserCode', () => {
  const withCode = client({ backchannel_user_code_parameter: true });
  test('§7.1 user_code from a client without backchannel_user_code_parameter → invalid_request', () => {
    throwsOAuth(
      () => checkUserCode(params({ ...VALID, user_code: '1234' }), client()),
      'invalid_request',
      400,
      /backchannel_user_code_parameter/,
    );
  });
  test('§7.1 no user_code from a client without backchannel_user_code_parameter is fine', () => {
    assert.equal(checkUserCode(params(VALID), client()), undefined);
  });
  test('§13 a client with backchannel_user_code_parameter sending no user_code → missing_user_code (400)', () => {
    throwsOAuth(() => checkUserCode(params(VALID), withCode), 'missing_user_code', 400);
  });
  test('§7.1 a client with backchannel_user_code_parameter sending user_code gets it back for verification', () => {
    assert.equal(checkUserCode(params({ ...VALID, user_code: '675325' }), withCode), '675325');
    assert.equal(checkUserCode(params({ ...VALID, user_code: 'x'.repeat(64) }), withCode), 'x'.repeat(64));
  });
  test('§13 an over-long user_code (65) → invalid_user_code (400)', () => {
    throwsOAuth(
      () => checkUserCode(params({ ...VALID, user_code: 'x'.repeat(65) }), withCode),
      'invalid_user_code',
      400,
    );
  });
});

describe('checkRequestedExpiry', () => {
  const bad = (raw: string | number) =>
    throwsOAuth(() => checkRequestedExpiry(raw, POLICY), 'invalid_request', 400, /positive integer/);

  test('§7.1 no requested_expiry → the default expires_in', () => {
    assert.equal(checkRequestedExpiry(undefined, POLICY), 300);
  });
  test('§7.1 requested_expiry "10" (form string) is honoured', () => {
    assert.equal(checkRequestedExpiry('10', POLICY), 10);
    assert.equal(checkRequestedExpiry('600', POLICY), 600);
    assert.equal(checkRequestedExpiry('1800', POLICY), 1800);
  });
  test('§7.1.1 requested_expiry 10 as a JSON number is honoured', () => {
    assert.equal(checkRequestedExpiry(10, POLICY), 10);
    assert.equal(checkRequestedExpiry(777, POLICY), 777);
  });
  test('§7.1 requested_expiry "0" → invalid_request (must be positive)', () => {
    bad('0');
    bad(0);
  });
  test('§7.1 requested_expiry "-1" → invalid_request', () => {
    bad('-1');
    bad(-1);
  });
  test('§7.1 requested_expiry "1.5" → invalid_request (must be an integer)', () => {
    bad('1.5');
    bad(1.5);
  });
  test('§7.1 requested_expiry "abc", " 10", "10 ", "+10", "1e3", "0x10" → invalid_request', () => {
    for (const raw of ['abc', ' 10', '10 ', '+10', '1e3', '0x10', '１０']) bad(raw);
  });
  test('§7.1 requested_expiry NaN / Infinity → invalid_request', () => {
    bad(Number.NaN);
    bad(Number.POSITIVE_INFINITY);
  });
  test('§7.1 a huge requested_expiry is clamped to the maximum', () => {
    assert.equal(checkRequestedExpiry('1801', POLICY), 1800);
    assert.equal(checkRequestedExpiry('9999999999', POLICY), 1800);
    assert.equal(checkRequestedExpiry(1e12, POLICY), 1800);
  });
  test('§7.1 a requested_expiry of 11+ digits (a positive integer) is clamped to the maximum like a JSON number', () => {
    assert.equal(checkRequestedExpiry('100000000000', POLICY), 1800);
  });
  test('§7.1 a small requested_expiry is raised to the minimum', () => {
    assert.equal(checkRequestedExpiry('1', POLICY), 10);
    assert.equal(checkRequestedExpiry('9', POLICY), 10);
    assert.equal(checkRequestedExpiry(5, POLICY), 10);
  });
  test('local stack: requested_expiry from 10 s to 600 s is honoured exactly with the default configuration', () => {
    const cfg = loadConfig({
      ISSUER: 'http://localhost:8080',
      CIBA_LOCAL: 'true',
      TABLE_NAME: 't',
      KEYS_FILE: 'k.json',
    });
    assert.ok(cfg.maxExpiresIn >= 600);
    for (const s of [10, 11, 60, 599, 600]) assert.equal(checkRequestedExpiry(String(s), cfg), s);
    assert.equal(checkRequestedExpiry(String(cfg.maxExpiresIn), cfg), cfg.maxExpiresIn);
  });
});

describe('checkAcrValues', () => {
  test('§7.1 acr_values is optional', () => {
    assert.equal(checkAcrValues(params(VALID)), undefined);
  });
  test('§7.1 acr_values: space-separated values in order of preference are kept as sent', () => {
    assert.equal(
      checkAcrValues(params({ acr_values: 'urn:example:loa:3 urn:example:loa:2' })),
      'urn:example:loa:3 urn:example:loa:2',
    );
  });
  test('§7.1 malformed acr_values (double space, leading space, quote, backslash, non-ASCII, control) → invalid_request', () => {
    for (const acr_values of ['a  b', ' a', 'a ', 'a "b"', 'a\\b', 'niveau-élevé', 'a\tb']) {
      throwsOAuth(() => checkAcrValues(params({ acr_values })), 'invalid_request', 400, /acr_values/);
    }
  });
  test('§7.1 acr_values up to 512 characters pass, 513 → invalid_request', () => {
    assert.equal(checkAcrValues(params({ acr_values: 'a'.repeat(512) }))?.length, 512);
    throwsOAuth(() => checkAcrValues(params({ acr_values: 'a'.repeat(513) })), 'invalid_request', 400, /acr_values/);
  });
});

describe('validateBackchannelRequest', () => {
  test('§7.1 a minimal valid request: scope, the hint and the default expiry, no optional fields', () => {
    const r = validateBackchannelRequest(params(VALID), client(), POLICY);
    assert.deepEqual(r, { scope: 'openid', hint: { type: 'login_hint', value: 'alice' }, expiresIn: 300 });
    assert.equal('bindingMessage' in r, false);
    assert.equal('userCode' in r, false);
    assert.equal('acrValues' in r, false);
  });
  test('§7.1 a full valid request carries every parameter through', () => {
    const r = validateBackchannelRequest(
      params({
        scope: 'openid email openid',
        login_hint: 'alice@example.com',
        binding_message: 'W4SCT',
        user_code: '675325',
        acr_values: 'urn:example:loa:2',
        requested_expiry: '120',
      }),
      client({ backchannel_user_code_parameter: true }),
      POLICY,
    );
    assert.deepEqual(r, {
      scope: 'openid email',
      hint: { type: 'login_hint', value: 'alice@example.com' },
      expiresIn: 120,
      bindingMessage: 'W4SCT',
      userCode: '675325',
      acrValues: 'urn:example:loa:2',
    });
  });
  test('§13 unauthorized_client is decided before any parameter check', () => {
    throwsOAuth(
      () => validateBackchannelRequest(params({}), client({ grant_types: [REFRESH_GRANT] }), POLICY),
      'unauthorized_client',
      400,
    );
  });
  test('§7.2 every parameter rule is applied by validateBackchannelRequest', () => {
    const v =
      (p: Record<string, string>, c = client()) =>
      () =>
        validateBackchannelRequest(params(p), c, POLICY);
    throwsOAuth(v({ ...VALID, request: 'x' }), 'invalid_request', 400, /request/);
    throwsOAuth(v({ login_hint: 'alice' }), 'invalid_request', 400, /scope is required/);
    throwsOAuth(v({ ...VALID, scope: 'openid phone' }), 'invalid_scope', 400);
    throwsOAuth(v({ scope: 'openid' }), 'invalid_request', 400, /(one of|only one of) login_hint/);
    throwsOAuth(v({ ...VALID, id_token_hint: 'x' }), 'invalid_request', 400, /(one of|only one of) login_hint/);
    throwsOAuth(v({ ...VALID, binding_message: 'a\nb' }), 'invalid_binding_message', 400);
    throwsOAuth(v({ ...VALID, user_code: '1' }), 'invalid_request', 400, /user_code/);
    throwsOAuth(v(VALID, client({ backchannel_user_code_parameter: true })), 'missing_user_code', 400);
    throwsOAuth(v({ ...VALID, acr_values: 'a  b' }), 'invalid_request', 400, /acr_values/);
    throwsOAuth(v({ ...VALID, requested_expiry: '0' }), 'invalid_request', 400, /requested_expiry/);
  });
});

test('§7.1.1 a client registered with backchannel_authentication_request_signing_alg must sign; unsigned requests → invalid_request', () => {
  throwsOAuth(
    () => rejectUnsupported(params(VALID), client({ backchannel_authentication_request_signing_alg: 'PS256' })),
    'invalid_request',
    400,
    /signed/,
  );
});

test('FAPI-CIBA §5.2.2 a FAPI client needs binding_message or request_context', () => {
  const fapi = client({ security_profile: 'fapi-ciba' });
  throwsOAuth(
    () => validateBackchannelRequest(params(VALID), fapi, POLICY, true),
    'invalid_request',
    400,
    /binding_message or request_context/,
  );
  assert.equal(
    validateBackchannelRequest(params({ ...VALID, binding_message: 'T-1' }), fapi, POLICY, true).bindingMessage,
    'T-1',
  );
  assert.equal(
    validateBackchannelRequest(params({ ...VALID, request_context: '{"ip":"1"}' }), fapi, POLICY, true).scope,
    'openid',
  );
  assert.equal(
    validateBackchannelRequest(params(VALID), client(), POLICY).scope,
    'openid',
    'not required outside the profile',
  );
});
