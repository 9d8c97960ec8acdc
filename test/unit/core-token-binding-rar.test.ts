// What DPoP (RFC 9449), rich authorization requests (RFC 9396) and resource indicators (RFC 8707) change in the core
// rules: client metadata (§5.2 dpop_bound_access_tokens, refused with push and with certificate binding; RFC 9396 §10
// authorization_details_types), the backchannel request (form parameter and request object claim), the grant and the
// access token (cnf.jkt, aud, authorization_details), introspection (token_type DPoP) and discovery.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientMetadataError, parseClientMetadata } from '../../functions/core/client-metadata.ts';
import { validateBackchannelRequest, type RequestPolicy } from '../../functions/core/backchannel-request.ts';
import { accessTokenClaims, grantFromRequest, type Grant } from '../../functions/core/tokens.ts';
import { introspection } from '../../functions/core/token-status.ts';
import { providerMetadata } from '../../functions/core/discovery.ts';
import { DPOP_ALGS } from '../../functions/core/capabilities.ts';
import { CIBA_GRANT, type AuthRequest, type Client } from '../../functions/core/model.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const SECRET = 'pos-terminal-secret-0123456789';
const OPTIONS = { localMode: false, mtlsEndpoint: true };
const base = { client_id: 'rp', client_secret: SECRET, grant_types: [CIBA_GRANT], scope: 'openid email' };
const ISSUER = 'https://as.example';
const NOW_S = 1_800_000_000;
const DETAIL = { type: 'payment_initiation', actions: ['initiate'], instructedAmount: { amount: '10.00' } };

describe('client metadata: RFC 9449 §5.2 dpop_bound_access_tokens, RFC 9396 §10 authorization_details_types', () => {
  test('both are kept (types deduplicated); absent or false: not stored', () => {
    const client = parseClientMetadata(
      {
        ...base,
        dpop_bound_access_tokens: true,
        authorization_details_types: ['payment_initiation', 'payment_initiation'],
      },
      OPTIONS,
    );
    assert.equal(client.dpop_bound_access_tokens, true);
    assert.deepEqual(client.authorization_details_types, ['payment_initiation']);
    const plain = parseClientMetadata({ ...base, dpop_bound_access_tokens: false }, OPTIONS);
    assert.equal('dpop_bound_access_tokens' in plain, false);
  });

  test('types: a boolean and an array of non-empty strings', () => {
    assert.throws(
      () => parseClientMetadata({ ...base, dpop_bound_access_tokens: 'yes' }, OPTIONS),
      ClientMetadataError,
    );
    assert.throws(
      () => parseClientMetadata({ ...base, authorization_details_types: 'payment' }, OPTIONS),
      ClientMetadataError,
    );
    assert.throws(
      () => parseClientMetadata({ ...base, authorization_details_types: [''] }, OPTIONS),
      ClientMetadataError,
    );
  });

  test('push clients cannot use DPoP: their tokens are minted before any proof exists', () => {
    assert.throws(
      () =>
        parseClientMetadata(
          {
            ...base,
            backchannel_token_delivery_mode: 'push',
            backchannel_client_notification_endpoint: 'https://rp.example/cb',
            dpop_bound_access_tokens: true,
          },
          OPTIONS,
        ),
      /dpop_bound_access_tokens cannot be combined with push delivery/,
    );
  });

  test('one binding per token: not with certificate-bound access tokens (RFC 8705)', () => {
    assert.throws(
      () =>
        parseClientMetadata(
          { ...base, tls_client_certificate_bound_access_tokens: true, dpop_bound_access_tokens: true },
          OPTIONS,
        ),
      /cannot be combined with certificate-bound access tokens/,
    );
  });

  test('registration (RFC 7591) accepts them as well', () => {
    const client = parseClientMetadata(
      { ...base, dpop_bound_access_tokens: true },
      { ...OPTIONS, schema: 'registration' },
    );
    assert.equal(client.dpop_bound_access_tokens, true);
  });
});

describe('backchannel request: RFC 9396 §3 authorization_details and RFC 8707 §2 resource', () => {
  const POLICY: RequestPolicy = { defaultExpiresIn: 300, minExpiresIn: 10, maxExpiresIn: 1800, bindingMessageMax: 128 };
  const client: Client = {
    client_id: 'rp',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [CIBA_GRANT],
    scope: 'openid email',
    backchannel_token_delivery_mode: 'poll',
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
    authorization_details_types: ['payment_initiation'],
  };
  const params = (extra: Record<string, string>) =>
    new Map(Object.entries({ scope: 'openid', login_hint: 'alice', ...extra }));

  test('the form parameter (JSON text) and the request object claim (passed on as the same text) are kept', () => {
    const request = validateBackchannelRequest(
      params({ authorization_details: JSON.stringify([DETAIL]), resource: JSON.stringify(['https://api.example']) }),
      client,
      POLICY,
    );
    assert.deepEqual(request.authorizationDetails, [DETAIL]);
    assert.deepEqual(request.resource, ['https://api.example']);
    const signed = validateBackchannelRequest(params({ resource: 'https://api.example' }), client, POLICY, true);
    assert.deepEqual(signed.resource, ['https://api.example']);
  });

  test('§5 invalid_authorization_details and §2 invalid_target, 400', () => {
    throwsOAuth(
      () =>
        validateBackchannelRequest(
          params({ authorization_details: '[{"type":"account_information"}]' }),
          client,
          POLICY,
        ),
      'invalid_authorization_details',
      400,
    );
    throwsOAuth(
      () =>
        validateBackchannelRequest(params({ authorization_details: JSON.stringify([DETAIL]) }), client, {
          ...POLICY,
          authorizationDetailsTypes: ['other'],
        }),
      'invalid_authorization_details',
      400,
      /not supported/,
    );
    throwsOAuth(
      () => validateBackchannelRequest(params({ resource: 'https://api.example#x' }), client, POLICY),
      'invalid_target',
      400,
    );
  });
});

describe('the grant and its access token', () => {
  const request: AuthRequest = {
    id: 'r',
    client_id: 'rp',
    sub: 'alice',
    scope: 'openid email',
    authorization_details: [DETAIL, { type: 'payment_initiation', actions: ['cancel'] }],
    resource: ['https://api.example'],
    mode: 'poll',
    status: 'approved',
    created_at: 0,
    expires_at: 1,
    interval: 5,
    next_poll_at: 0,
  };

  test('RFC 9396 §3: the grant is what the user approved (narrowed scope and details), else the request', () => {
    assert.deepEqual(grantFromRequest(request).authorizationDetails, request.authorization_details);
    const narrowed = grantFromRequest({ ...request, granted_scope: 'openid', granted_authorization_details: [DETAIL] });
    assert.equal(narrowed.scope, 'openid');
    assert.deepEqual(narrowed.authorizationDetails, [DETAIL]);
    const none = grantFromRequest({ ...request, granted_authorization_details: [] });
    assert.equal('authorizationDetails' in none, false, 'no entry approved: no authorization_details');
    assert.deepEqual(grantFromRequest(request).resource, ['https://api.example']);
  });

  const GRANT: Grant = { clientId: 'rp', sub: 'alice', scope: 'openid' };
  test('RFC 9449 §6.1: cnf.jkt; RFC 8705 §3.1 cnf.x5t#S256 wins if both were given', () => {
    assert.deepEqual(accessTokenClaims(ISSUER, GRANT, NOW_S, 60, { jkt: 'k' }).cnf, { jkt: 'k' });
    assert.deepEqual(accessTokenClaims(ISSUER, GRANT, NOW_S, 60, { certificateThumbprint: 't', jkt: 'k' }).cnf, {
      'x5t#S256': 't',
    });
    assert.equal('cnf' in accessTokenClaims(ISSUER, GRANT, NOW_S, 60), false);
  });

  test('RFC 8707: aud is the resources; RFC 9396 §9.1: authorization_details in the token', () => {
    const claims = accessTokenClaims(
      ISSUER,
      { ...GRANT, resource: ['https://a.example', 'https://b.example'], authorizationDetails: [DETAIL] },
      NOW_S,
      60,
      { grantId: 'g' },
    );
    assert.deepEqual(claims.aud, ['https://a.example', 'https://b.example']);
    assert.deepEqual(claims.authorization_details, [DETAIL]);
    assert.equal(claims.grant_id, 'g');
    assert.equal(accessTokenClaims(ISSUER, GRANT, NOW_S, 60).aud, ISSUER);
  });

  test('RFC 9449 §6.2 introspection: token_type DPoP with cnf.jkt; RFC 9396 §9.2 details of a refresh token', () => {
    const claims = accessTokenClaims(ISSUER, GRANT, NOW_S, 60, { jkt: 'k' });
    const answer = introspection({ kind: 'access_token', claims, revoked: false }, 'rp', NOW_S * 1000);
    assert.equal(answer.token_type, 'DPoP');
    assert.deepEqual(answer.cnf, { jkt: 'k' });
    const bearer = introspection(
      { kind: 'access_token', claims: accessTokenClaims(ISSUER, GRANT, NOW_S, 60), revoked: false },
      'rp',
      NOW_S * 1000,
    );
    assert.equal(bearer.token_type, 'Bearer');
    const refresh = introspection(
      {
        kind: 'refresh_token',
        record: {
          client_id: 'rp',
          sub: 'alice',
          scope: 'openid',
          expires_at: NOW_S * 1000 + 1000,
          authorization_details: JSON.stringify([DETAIL]),
        },
        revoked: false,
      },
      'rp',
      NOW_S * 1000,
    );
    assert.deepEqual(refresh.authorization_details, [DETAIL]);
  });
});

describe('discovery', () => {
  test('RFC 9449 §5.1 dpop_signing_alg_values_supported; RFC 9396 §10 types only when configured', () => {
    const md = providerMetadata(ISSUER);
    assert.deepEqual(md.dpop_signing_alg_values_supported, DPOP_ALGS);
    assert.equal(
      DPOP_ALGS.some((a) => a.startsWith('HS') || a === 'none'),
      false,
      'asymmetric only',
    );
    assert.equal('authorization_details_types_supported' in md, false);
    const typed = providerMetadata(ISSUER, undefined, undefined, { authorizationDetailsTypes: ['payment_initiation'] });
    assert.deepEqual(typed.authorization_details_types_supported, ['payment_initiation']);
  });
});
