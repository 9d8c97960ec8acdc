// functions/core/client-metadata.ts on a server without an mTLS endpoint (RFC 8705): a client that needs a TLS client
// certificate (tls_client_auth / self_signed_tls_client_auth, certificate-bound access tokens, the fapi-ciba profile)
// is refused when it is validated, with a reason naming the client, the field and why; the same client is fine where
// there is an mTLS endpoint, and clients without such needs are fine everywhere. mtlsRequirement is the same rule for
// a client already stored (checked at request time by functions/usecases/client-auth.ts).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientMetadataError, mtlsRequirement, parseClientMetadata } from '../../functions/core/client-metadata.ts';
import { CIBA_GRANT, type Client } from '../../functions/core/model.ts';

const JWK = {
  kty: 'EC',
  crv: 'P-256',
  x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
  y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
};
const base = { grant_types: [CIBA_GRANT], scope: 'openid', backchannel_token_delivery_mode: 'poll' };
const SECRET = 'pos-terminal-secret-0123456789';

const NEEDS_MTLS: [string, Record<string, unknown>, RegExp][] = [
  [
    'security_profile fapi-ciba (private_key_jwt)',
    {
      ...base,
      client_id: 'fapi-rp',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [JWK] },
      security_profile: 'fapi-ciba',
      backchannel_authentication_request_signing_alg: 'PS256',
      id_token_signed_response_alg: 'PS256',
    },
    /^client fapi-rp: security_profile fapi-ciba \(requires certificate-bound access tokens, RFC 8705\)/,
  ],
  [
    'tls_client_certificate_bound_access_tokens with client_secret_basic',
    { ...base, client_id: 'bound-rp', client_secret: SECRET, tls_client_certificate_bound_access_tokens: true },
    /^client bound-rp: tls_client_certificate_bound_access_tokens \(binds access tokens to a TLS client certificate/,
  ],
  [
    'tls_client_auth',
    { ...base, client_id: 'tls-rp', token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=x' },
    /^client tls-rp: token_endpoint_auth_method tls_client_auth \(authenticates with a TLS client certificate/,
  ],
  [
    'self_signed_tls_client_auth',
    { ...base, client_id: 'self-rp', token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [JWK] } },
    /^client self-rp: token_endpoint_auth_method self_signed_tls_client_auth \(/,
  ],
];

const WHY = / needs an mTLS endpoint \(CIBA_MTLS_BASE_URL \/ the construct's mtls prop\); this server has none$/;

describe('parseClientMetadata without an mTLS endpoint', () => {
  for (const [what, raw, reason] of NEEDS_MTLS) {
    test(`${what}: refused, naming the client, the field and why`, () => {
      for (const localMode of [false, true]) {
        assert.throws(
          () => parseClientMetadata(raw, { localMode, mtlsEndpoint: false }),
          (e: unknown) => {
            assert.ok(e instanceof ClientMetadataError, String(e));
            assert.match(e.message, reason);
            assert.match(e.message, WHY);
            return true;
          },
        );
      }
    });

    test(`${what}: accepted where the server has an mTLS endpoint`, () => {
      const client = parseClientMetadata(raw, { localMode: false, mtlsEndpoint: true });
      assert.equal(client.client_id, raw.client_id);
    });
  }

  test('clients that need no certificate are accepted without an mTLS endpoint', () => {
    const ok = [
      { ...base, client_id: 'basic', client_secret: SECRET },
      { ...base, client_id: 'pk', token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [JWK] } },
      { ...base, client_id: 'unbound', client_secret: SECRET, tls_client_certificate_bound_access_tokens: false },
    ];
    for (const raw of ok) {
      assert.equal(parseClientMetadata(raw, { localMode: false, mtlsEndpoint: false }).client_id, raw.client_id);
    }
  });

  test('other mistakes are still reported first (the mTLS rule comes last)', () => {
    const { tls_client_auth_subject_dn: _dn, ...noSubject } = NEEDS_MTLS[2]![1];
    const parse = () => parseClientMetadata(noSubject, { localMode: false, mtlsEndpoint: false });
    assert.throws(parse, /exactly one of tls_client_auth_subject_dn/);
  });
});

describe('mtlsRequirement (a stored client, at request time)', () => {
  const stored = (over: Partial<Client>): Client => ({
    client_id: 'stored',
    token_endpoint_auth_method: 'client_secret_basic',
    client_secret_hash: 'x',
    grant_types: [CIBA_GRANT],
    scope: 'openid',
    backchannel_token_delivery_mode: 'poll',
    backchannel_user_code_parameter: false,
    id_token_signed_response_alg: 'RS256',
    ...over,
  });

  test('the stored form of each kind of client that needs mTLS → the reason; none with an mTLS endpoint', () => {
    const cases: [Partial<Client>, RegExp][] = [
      [
        {
          security_profile: 'fapi-ciba',
          tls_client_certificate_bound_access_tokens: true,
          token_endpoint_auth_method: 'private_key_jwt',
        },
        /security_profile fapi-ciba/,
      ],
      [{ tls_client_certificate_bound_access_tokens: true }, /: tls_client_certificate_bound_access_tokens/],
      [
        { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=x' },
        /token_endpoint_auth_method tls_client_auth/,
      ],
      [{ token_endpoint_auth_method: 'self_signed_tls_client_auth' }, /token_endpoint_auth_method self_signed_tls_/],
    ];
    for (const [over, reason] of cases) {
      const message = mtlsRequirement(stored(over), false);
      assert.match(message ?? '', reason);
      assert.match(message ?? '', /^client stored: /);
      assert.match(message ?? '', WHY);
      assert.equal(mtlsRequirement(stored(over), true), undefined);
    }
  });

  test('a client that needs no certificate → undefined', () => {
    assert.equal(mtlsRequirement(stored({}), false), undefined);
    assert.equal(mtlsRequirement(stored({ token_endpoint_auth_method: 'private_key_jwt' }), false), undefined);
  });

  test('the reason is a valid error_description (RFC 6749 §5.2 characters only)', () => {
    const message = mtlsRequirement(stored({ tls_client_certificate_bound_access_tokens: true }), false) ?? '';
    assert.match(message, /^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/);
  });
});
