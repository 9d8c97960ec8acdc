// What the device app says about a request (device-app/src/describe.ts): scopes in plain words, authorization_details
// (RFC 9396) by type with a generic fallback, the countdown, and the default device name.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  describeDetail,
  describeScopes,
  deviceNameFrom,
  formatAmount,
  formatCountdown,
  spokenDuration,
} from '../../device-app/src/describe.ts';

describe('scopes', () => {
  test('known scopes in plain words; openid required, the others optional; unknown ones named', () => {
    assert.deepEqual(describeScopes('openid  profile email offline_access payments:read'), [
      { scope: 'openid', words: 'Confirm that it is you', required: true },
      { scope: 'profile', words: 'Your name and basic profile', required: false },
      { scope: 'email', words: 'Your email address', required: false },
      { scope: 'offline_access', words: 'Keep access while you are not using it', required: false },
      { scope: 'payments:read', words: 'Access to “payments:read”', required: false },
    ]);
  });
});

describe('authorization_details', () => {
  test('payment_initiation (RFC 9396 §2 example): amount in its currency, creditor, IBAN in groups, reference', () => {
    const d = describeDetail(
      {
        type: 'payment_initiation',
        locations: ['https://example.com/payments'],
        instructedAmount: { currency: 'EUR', amount: '123.50' },
        creditorName: 'Merchant A',
        creditorAccount: { iban: 'DE02100100109307118603' },
        remittanceInformationUnstructured: 'Ref Number Merchant',
      },
      'en-US',
    );
    assert.deepEqual(d, {
      title: 'Payment',
      rows: [
        { label: 'Amount', value: '€123.50' },
        { label: 'To', value: 'Merchant A' },
        { label: 'To account', value: 'DE02 1001 0010 9307 1186 03' },
        { label: 'Reference', value: 'Ref Number Merchant' },
        { label: 'At', value: 'example.com' },
      ],
    });
  });

  test('account_information: the access asked for and the common fields', () => {
    const d = describeDetail({
      type: 'account_information',
      actions: ['list_accounts', 'read_balances', 'read_transactions'],
      locations: ['https://example.com/accounts'],
      access: { balances: [{ iban: 'DE40100100103307118608' }], transactions: [] },
    });
    assert.equal(d.title, 'Access to your account information');
    assert.deepEqual(d.rows, [
      { label: 'Balances', value: 'DE40 1001 0010 3307 1186 08' },
      { label: 'Transactions', value: 'All accounts' },
      { label: 'Actions', value: 'List accounts, Read balances, Read transactions' },
      { label: 'At', value: 'example.com' },
    ]);
  });

  test('any other type: its fields as rows, nested objects flattened, long text cut, at most 20 rows', () => {
    const d = describeDetail({
      type: 'urn:example:tax_return',
      taxYear: 2025,
      filer: { firstName: 'Alice', address: { city: 'Berlin' } },
      flags: ['a', 'b'],
      note: 'x'.repeat(500),
      empty: null,
    });
    assert.equal(d.title, 'Tax return', 'a URI type by its last part');
    assert.deepEqual(d.rows.slice(0, 4), [
      { label: 'Tax year', value: '2025' },
      { label: 'Filer › First name', value: 'Alice' },
      { label: 'Filer › Address › City', value: 'Berlin' },
      { label: 'Flags', value: 'a, b' },
    ]);
    assert.equal(d.rows[4]?.value.length, 200);
    assert.equal(d.rows.length, 5, 'null is left out');
    const many = describeDetail({
      type: 'x',
      ...Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, i])),
    });
    assert.equal(many.rows.length, 20);
  });

  test('amounts: an unknown or malformed currency or amount is shown as given', () => {
    assert.equal(formatAmount('12', 'JPY', 'en-US'), '¥12');
    assert.equal(formatAmount('12.5', 'XX', 'en-US'), '12.5');
    assert.equal(formatAmount('lots', 'EUR', 'en-US'), 'lots EUR');
    assert.equal(formatAmount(undefined, 'EUR'), undefined);
  });
});

describe('time and names', () => {
  test('the countdown: m:ss, h:mm:ss, never negative; and the same in words', () => {
    const now = 1_000_000_000_000;
    assert.equal(formatCountdown(now / 1000 + 300, now), '5:00');
    assert.equal(formatCountdown(now / 1000 + 65.2, now), '1:06');
    assert.equal(formatCountdown(now / 1000 + 3725, now), '1:02:05');
    assert.equal(formatCountdown(now / 1000 - 10, now), '0:00');
    assert.equal(spokenDuration(now / 1000 + 61, now), '1 minute 1 second');
    assert.equal(spokenDuration(now / 1000 + 120, now), '2 minutes');
    assert.equal(spokenDuration(now / 1000, now), '0 seconds');
  });

  test('a default device name from the user agent', () => {
    const cases: [string, string][] = [
      [
        'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36',
        'Chrome on Android',
      ],
      [
        'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
        'Safari on iPhone',
      ],
      ['Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0', 'Firefox on Windows'],
      [
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36 Edg/126.0',
        'Edge on Mac',
      ],
      ['curl/8.0', 'My device'],
    ];
    for (const [ua, name] of cases) assert.equal(deviceNameFrom(ua), name, ua);
  });
});
