// functions/core/resource.ts and the form rule of core/params.ts: resource indicators (RFC 8707 §2 absolute URIs
// without a fragment, repeatable; §2.2 narrowing at the token endpoint; invalid_target) and the access token's aud.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  accessTokenAudience,
  narrowResources,
  parseResources,
  RESOURCE_MAX_COUNT,
} from '../../functions/core/resource.ts';
import { parseForm } from '../../functions/core/params.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const FORM = 'application/x-www-form-urlencoded';
const API = 'https://api.example.com/payments';
const OTHER = 'https://other.example.com';

describe('RFC 8707 §2: resource values', () => {
  test('absent: undefined; one URI, or the JSON array of a repeated parameter or an array claim', () => {
    assert.equal(parseResources(undefined), undefined);
    assert.deepEqual(parseResources(API), [API]);
    assert.deepEqual(parseResources(JSON.stringify([API, OTHER, API])), [API, OTHER], 'duplicates dropped');
    assert.deepEqual(parseResources('urn:example:resource'), ['urn:example:resource']);
    assert.deepEqual(parseResources(`${API}?v=2`), [`${API}?v=2`], 'a query is allowed (SHOULD NOT only)');
  });

  test('§2: an absolute URI without a fragment, else invalid_target', () => {
    for (const bad of [
      '/relative',
      'api.example.com',
      `${API}#frag`,
      'https://exa mple.com',
      '[',
      '["x"',
      '[1]',
      '[""]',
    ]) {
      throwsOAuth(() => parseResources(bad), 'invalid_target', 400);
    }
    throwsOAuth(
      () => parseResources(JSON.stringify(Array.from({ length: RESOURCE_MAX_COUNT + 1 }, (_, i) => `${API}/${i}`))),
      'invalid_target',
      400,
      /at most/,
    );
  });

  test('the form: resource may repeat (kept as a JSON array); any other parameter may not', () => {
    const params = parseForm(
      FORM,
      `resource=${encodeURIComponent(API)}&resource=${encodeURIComponent(OTHER)}&scope=openid`,
      ['resource'],
    );
    assert.deepEqual(parseResources(params.get('resource')), [API, OTHER]);
    assert.equal(
      parseForm(FORM, `resource=${encodeURIComponent(API)}`, ['resource']).get('resource'),
      JSON.stringify([API]),
    );
    assert.equal(parseForm(FORM, 'resource=', ['resource']).has('resource'), false, 'empty values are absent');
    throwsOAuth(() => parseForm(FORM, 'resource=a&resource=b'), 'invalid_request', 400, /more than once/);
    // A single form value that looks like JSON is still one value (and not an absolute URI).
    throwsOAuth(
      () =>
        parseResources(
          parseForm(FORM, `resource=${encodeURIComponent(JSON.stringify([API]))}`, ['resource']).get('resource'),
        ),
      'invalid_target',
      400,
    );
  });
});

describe('RFC 8707 §2.2: the token endpoint narrows', () => {
  test('absent: as granted; a subset: that subset; anything else invalid_target', () => {
    assert.deepEqual(narrowResources([API, OTHER], undefined), [API, OTHER]);
    assert.equal(narrowResources(undefined, undefined), undefined);
    assert.deepEqual(narrowResources([API, OTHER], JSON.stringify([OTHER])), [OTHER]);
    throwsOAuth(
      () => narrowResources([API], JSON.stringify(['https://evil.example'])),
      'invalid_target',
      400,
      /not granted/,
    );
    throwsOAuth(() => narrowResources(undefined, JSON.stringify([API])), 'invalid_target', 400, /names no resource/);
  });
});

describe('RFC 9068 §3 aud', () => {
  test('the resources (one as a string), else the issuer', () => {
    assert.equal(accessTokenAudience('https://as.example', undefined), 'https://as.example');
    assert.equal(accessTokenAudience('https://as.example', [API]), API);
    assert.deepEqual(accessTokenAudience('https://as.example', [API, OTHER]), [API, OTHER]);
  });
});
