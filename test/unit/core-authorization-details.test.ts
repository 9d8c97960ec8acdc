// functions/core/authorization-details.ts and device-decision.ts: rich authorization requests (RFC 9396 §2 common
// structure, §5 invalid_authorization_details, §10 the client's registered types, the server's configured types) and
// the device's narrowing approval (§3: a subset of the scope that keeps openid, a subset of the entries, compared as
// whole JSON values).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  AUTHORIZATION_DETAILS_MAX_ENTRIES,
  AUTHORIZATION_DETAILS_MAX_LENGTH,
  canonicalJson,
  parseAuthorizationDetails,
  sameDetail,
  type AuthorizationDetailsPolicy,
} from '../../functions/core/authorization-details.ts';
import { grantedByDecision, narrows, parseDecision } from '../../functions/core/device-decision.ts';
import type { AuthorizationDetail } from '../../functions/core/model.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const PAYMENT = {
  type: 'payment_initiation',
  actions: ['initiate'],
  locations: ['https://bank.example/payments'],
  instructedAmount: { currency: 'EUR', amount: '123.50' },
};
const ACCOUNTS = { type: 'account_information', actions: ['read'], datatypes: ['balances'], identifier: 'acc-1' };
const ANY: AuthorizationDetailsPolicy = {
  clientTypes: ['payment_initiation', 'account_information'],
  serverTypes: undefined,
};
const parse = (value: unknown, policy = ANY) => parseAuthorizationDetails(JSON.stringify(value), policy);

describe('RFC 9396 §2, §5: authorization_details structure', () => {
  test('absent: undefined; a valid array is returned as sent', () => {
    assert.equal(parseAuthorizationDetails(undefined, ANY), undefined);
    assert.deepEqual(parse([PAYMENT, ACCOUNTS]), [PAYMENT, ACCOUNTS]);
  });

  test('§2: a JSON array of objects, each with a string type', () => {
    throwsOAuth(() => parseAuthorizationDetails('{not json', ANY), 'invalid_authorization_details', 400, /JSON array/);
    throwsOAuth(() => parse(PAYMENT), 'invalid_authorization_details', 400, /JSON array/);
    throwsOAuth(() => parse([]), 'invalid_authorization_details', 400, /at least one/);
    throwsOAuth(
      () => parse(['payment_initiation']),
      'invalid_authorization_details',
      400,
      /entry 1 must be a JSON object/,
    );
    throwsOAuth(() => parse([{ actions: ['x'] }]), 'invalid_authorization_details', 400, /string type/);
    throwsOAuth(() => parse([{ type: 7 }]), 'invalid_authorization_details', 400, /string type/);
  });

  test('§2.2 common fields: locations, actions, datatypes, privileges arrays of strings; identifier a string', () => {
    for (const field of ['locations', 'actions', 'datatypes', 'privileges']) {
      throwsOAuth(() => parse([{ ...PAYMENT, [field]: 'x' }]), 'invalid_authorization_details', 400, new RegExp(field));
      throwsOAuth(() => parse([{ ...PAYMENT, [field]: [1] }]), 'invalid_authorization_details', 400, new RegExp(field));
    }
    throwsOAuth(() => parse([{ ...ACCOUNTS, identifier: 5 }]), 'invalid_authorization_details', 400, /identifier/);
  });

  test('type-specific fields may be any JSON value; a number that does not round-trip is refused', () => {
    assert.equal(parse([{ type: 'payment_initiation', nested: { a: [1, null, true, { b: 'c' }] } }])?.length, 1);
    throwsOAuth(
      () => parseAuthorizationDetails('[{"type":"payment_initiation","amount":1e999}]', ANY),
      'invalid_authorization_details',
      400,
      /out of range/,
    );
  });

  test('limits: characters of JSON, number of entries; a repeated entry', () => {
    throwsOAuth(
      () => parse([{ ...PAYMENT, memo: 'x'.repeat(AUTHORIZATION_DETAILS_MAX_LENGTH) }]),
      'invalid_authorization_details',
      400,
      /characters/,
    );
    const many = Array.from({ length: AUTHORIZATION_DETAILS_MAX_ENTRIES + 1 }, (_, i) => ({
      ...ACCOUNTS,
      identifier: `a${i}`,
    }));
    throwsOAuth(() => parse(many), 'invalid_authorization_details', 400, /at most/);
    const reordered = { identifier: 'acc-1', datatypes: ['balances'], actions: ['read'], type: 'account_information' };
    throwsOAuth(() => parse([ACCOUNTS, reordered]), 'invalid_authorization_details', 400, /entry 2 repeats entry 1/);
  });
});

describe('RFC 9396 §10 and server policy: types', () => {
  test('§10: only types the client registered; a client with none registered may not send any', () => {
    throwsOAuth(
      () => parse([PAYMENT], { clientTypes: ['account_information'], serverTypes: undefined }),
      'invalid_authorization_details',
      400,
      /not registered/,
    );
    throwsOAuth(
      () => parse([PAYMENT], { clientTypes: undefined, serverTypes: undefined }),
      'invalid_authorization_details',
      400,
      /has not registered/,
    );
    throwsOAuth(
      () => parse([PAYMENT], { clientTypes: [], serverTypes: undefined }),
      'invalid_authorization_details',
      400,
    );
  });
  test('CIBA_AUTHORIZATION_DETAILS_TYPES: when set, only those types; unset: any type the client registered', () => {
    assert.equal(parse([PAYMENT], { ...ANY, serverTypes: ['payment_initiation'] })?.length, 1);
    throwsOAuth(
      () => parse([ACCOUNTS], { ...ANY, serverTypes: ['payment_initiation'] }),
      'invalid_authorization_details',
      400,
      /not supported/,
    );
  });
});

describe('§3: entries compared as whole JSON values', () => {
  test('key order does not matter; any other difference does', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
    assert.equal(sameDetail(ACCOUNTS, { ...ACCOUNTS }), true);
    assert.equal(sameDetail(ACCOUNTS, { ...ACCOUNTS, actions: ['read', 'write'] }), false);
    assert.equal(sameDetail(ACCOUNTS, { ...ACCOUNTS, extra: null }), false);
  });
});

describe('device decision (docs/device-api.md): approve, deny, narrowing', () => {
  const JSON_TYPE = 'application/json';
  const request = {
    scope: 'openid email profile',
    authorization_details: [PAYMENT, ACCOUNTS] as AuthorizationDetail[],
  };

  test('the body: approve or deny; anything else is refused', () => {
    assert.deepEqual(parseDecision(JSON_TYPE, '{"decision":"approve"}'), { decision: 'approved' });
    assert.deepEqual(parseDecision(JSON_TYPE, '{"decision":"deny"}'), { decision: 'denied' });
    for (const body of ['{"decision":"maybe"}', '[]', 'null', 'nope', '{}'])
      assert.ok('error' in parseDecision(JSON_TYPE, body), body);
    assert.ok('error' in parseDecision('text/plain', '{"decision":"approve"}'));
    assert.ok('error' in parseDecision(JSON_TYPE, '{"decision":"deny","scope":"openid"}'), 'a denial narrows nothing');
  });

  test('absent narrowing: everything requested is granted', () => {
    const decision = parseDecision(JSON_TYPE, '{"decision":"approve"}');
    assert.ok(!('error' in decision));
    assert.equal(narrows(decision), false);
    assert.deepEqual(grantedByDecision(request, decision), {});
  });

  test('§3: a subset of the scope that keeps openid', () => {
    const ok = grantedByDecision(request, { decision: 'approved', scope: 'openid email' });
    assert.deepEqual(ok, { granted_scope: 'openid email' });
    for (const scope of ['email', 'openid phone', 'openid  email', '', 7, 'openid openid']) {
      assert.ok('error' in grantedByDecision(request, { decision: 'approved', scope }), String(scope));
    }
  });

  test('§3: a subset of the entries, unchanged (key order aside), possibly none', () => {
    const reordered = { identifier: 'acc-1', datatypes: ['balances'], actions: ['read'], type: 'account_information' };
    assert.deepEqual(grantedByDecision(request, { decision: 'approved', authorization_details: [reordered] }), {
      granted_authorization_details: [ACCOUNTS],
    });
    assert.deepEqual(grantedByDecision(request, { decision: 'approved', authorization_details: [] }), {
      granted_authorization_details: [],
    });
    const altered = { ...PAYMENT, instructedAmount: { currency: 'EUR', amount: '9999.00' } };
    assert.ok('error' in grantedByDecision(request, { decision: 'approved', authorization_details: [altered] }));
    assert.ok(
      'error' in grantedByDecision(request, { decision: 'approved', authorization_details: [ACCOUNTS, ACCOUNTS] }),
    );
    assert.ok('error' in grantedByDecision(request, { decision: 'approved', authorization_details: ACCOUNTS }));
    assert.ok(
      'error' in grantedByDecision({ scope: 'openid' }, { decision: 'approved', authorization_details: [ACCOUNTS] }),
    );
  });
});
