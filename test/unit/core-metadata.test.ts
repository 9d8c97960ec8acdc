// functions/core/discovery.ts, client-metadata.ts, capabilities.ts: OP metadata (OIDC Discovery §3, CIBA §4) and
// client registration metadata (RFC 7591 + CIBA §4), both derived from the capability lists.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { providerMetadata } from '../../functions/core/discovery.ts';
import {
  ClientMetadataError,
  parseClientMetadata,
  validateNotificationEndpoint,
} from '../../functions/core/client-metadata.ts';
import {
  CLAIMS,
  CLIENT_AUTH_METHODS,
  DELIVERY_MODES,
  GRANT_TYPES,
  ID_TOKEN_ALGS,
  REQUEST_OBJECT_ALGS,
  SCOPE_CLAIMS,
  SCOPES,
} from '../../functions/core/capabilities.ts';
import { verifyClientSecret } from '../../functions/core/crypto.ts';
import { CIBA_GRANT, REFRESH_GRANT } from '../../functions/core/model.ts';

const ISSUER = 'https://op.example.com';
const SECRET = 'pos-terminal-secret-0123456789';
// With an mTLS endpoint: the mTLS rules without one are in core-client-metadata-mtls.test.ts.
const AWS = { localMode: false, mtlsEndpoint: true };
const LOCAL = { localMode: true, mtlsEndpoint: true };

/** A seed client with most of the fields docs/seed-file.md lists, as a seed author would write it. */
const SEED_EXAMPLE = {
  client_id: 'pos-terminal',
  client_secret: SECRET,
  client_name: 'Store POS',
  token_endpoint_auth_method: 'client_secret_basic',
  jwks: {
    keys: [
      {
        kty: 'EC',
        crv: 'P-256',
        x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
        y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
      },
    ],
  },
  grant_types: [CIBA_GRANT, REFRESH_GRANT],
  scope: 'openid profile email',
  backchannel_token_delivery_mode: 'poll',
  backchannel_client_notification_endpoint: 'https://pos.example.com/ciba/notify',
  backchannel_authentication_request_signing_alg: 'PS256',
  backchannel_user_code_parameter: false,
  id_token_signed_response_alg: 'RS256',
};
const { backchannel_authentication_request_signing_alg: _unsupported, ...EXAMPLE } = SEED_EXAMPLE;

/** A valid registration for each client authentication method. */
function clientFor(method: string): Record<string, unknown> {
  const { client_secret: _s, jwks: _j, ...base } = EXAMPLE;
  switch (method) {
    case 'client_secret_basic':
    case 'client_secret_post':
      return { ...EXAMPLE, token_endpoint_auth_method: method };
    case 'client_secret_jwt':
      return { ...base, token_endpoint_auth_method: method, client_secret: 's'.repeat(32) };
    case 'tls_client_auth':
      return {
        ...base,
        token_endpoint_auth_method: method,
        tls_client_auth_subject_dn: 'CN=pos.example.com,O=Example',
      };
    default:
      return { ...base, token_endpoint_auth_method: method, jwks: EXAMPLE.jwks };
  }
}

function rejects(raw: unknown, message: RegExp, options = AWS): void {
  assert.throws(
    () => parseClientMetadata(raw, options),
    (e: unknown) => {
      assert.ok(e instanceof ClientMetadataError, `expected ClientMetadataError, got ${String(e)}`);
      assert.match(e.message, message);
      return true;
    },
  );
}

describe('discovery', () => {
  const md = providerMetadata(ISSUER, ['urn:example:acr']);

  test('OIDC Discovery §3 issuer and endpoint URLs derive from the issuer', () => {
    assert.equal(md.issuer, ISSUER);
    assert.equal(md.jwks_uri, `${ISSUER}/jwks`);
    assert.equal(md.token_endpoint, `${ISSUER}/token`);
    assert.equal(md.userinfo_endpoint, `${ISSUER}/userinfo`);
  });

  test('CIBA §4 backchannel_authentication_endpoint is present and under the issuer', () => {
    assert.equal(md.backchannel_authentication_endpoint, `${ISSUER}/bc-authorize`);
  });

  test('CIBA §4 backchannel_token_delivery_modes_supported: a non-empty subset of poll, ping, push', () => {
    const modes = md.backchannel_token_delivery_modes_supported as string[];
    assert.ok(Array.isArray(modes) && modes.length > 0);
    for (const m of modes) assert.ok(['poll', 'ping', 'push'].includes(m), m);
  });

  test('CIBA §4 backchannel_user_code_parameter_supported is a boolean', () => {
    assert.equal(typeof md.backchannel_user_code_parameter_supported, 'boolean');
  });

  test('CIBA §4 grant_types_supported includes urn:openid:params:grant-type:ciba', () => {
    assert.ok((md.grant_types_supported as string[]).includes('urn:openid:params:grant-type:ciba'));
  });

  test('CIBA §4 backchannel_authentication_request_signing_alg_values_supported: asymmetric algorithms only (§7.1.1)', () => {
    assert.deepEqual(md.backchannel_authentication_request_signing_alg_values_supported, [...REQUEST_OBJECT_ALGS]);
    assert.ok(
      !(md.backchannel_authentication_request_signing_alg_values_supported as string[]).some(
        (a) => a === 'none' || a.startsWith('HS'),
      ),
    );
    assert.equal(md.request_uri_parameter_supported, false);
  });

  test('RFC 8705 §5 with an mTLS endpoint: mTLS methods, bound tokens and mtls_endpoint_aliases are advertised', () => {
    const withMtls = providerMetadata(ISSUER, undefined, 'https://mtls.op.example.com');
    assert.deepEqual(withMtls.token_endpoint_auth_methods_supported, [...CLIENT_AUTH_METHODS]);
    assert.equal(withMtls.tls_client_certificate_bound_access_tokens, true);
    assert.deepEqual(withMtls.mtls_endpoint_aliases, {
      token_endpoint: 'https://mtls.op.example.com/token',
      backchannel_authentication_endpoint: 'https://mtls.op.example.com/bc-authorize',
      userinfo_endpoint: 'https://mtls.op.example.com/userinfo',
      revocation_endpoint: 'https://mtls.op.example.com/revoke',
      introspection_endpoint: 'https://mtls.op.example.com/introspect',
    });
    assert.equal('mtls_endpoint_aliases' in md, false, 'without one, none');
    assert.ok(
      !(md.token_endpoint_auth_methods_supported as string[]).some((m) => m.includes('tls')),
      'and no mTLS method',
    );
  });

  test('OIDC Discovery §3 required fields are present', () => {
    for (const k of [
      'issuer',
      'jwks_uri',
      'response_types_supported',
      'subject_types_supported',
      'id_token_signing_alg_values_supported',
    ]) {
      assert.ok(k in md, k);
    }
    assert.ok(
      (md.id_token_signing_alg_values_supported as string[]).includes('RS256'),
      'OIDC Discovery: RS256 MUST be included',
    );
  });

  test('capabilities.ts: discovery advertises exactly the capability lists', () => {
    assert.deepEqual(md.backchannel_token_delivery_modes_supported, [...DELIVERY_MODES]);
    assert.deepEqual(
      md.token_endpoint_auth_methods_supported,
      CLIENT_AUTH_METHODS.filter((m) => !m.includes('tls')),
    );
    assert.deepEqual(md.grant_types_supported, [...GRANT_TYPES]);
    assert.deepEqual(md.id_token_signing_alg_values_supported, [...ID_TOKEN_ALGS]);
    assert.deepEqual(md.scopes_supported, [...SCOPES]);
    assert.deepEqual(md.claims_supported, [...CLAIMS]);
  });

  test('capabilities.ts: every claim a scope releases is in claims_supported, every scope-with-claims in scopes_supported', () => {
    for (const [scope, claims] of Object.entries(SCOPE_CLAIMS)) {
      assert.ok(SCOPES.includes(scope), scope);
      for (const c of claims) assert.ok(CLAIMS.includes(c), c);
    }
  });

  test('capabilities.ts: everything advertised is accepted at registration, and nothing else', () => {
    for (const mode of DELIVERY_MODES) parseClientMetadata({ ...EXAMPLE, backchannel_token_delivery_mode: mode }, AWS);
    for (const method of CLIENT_AUTH_METHODS) parseClientMetadata(clientFor(method), AWS);
    for (const alg of ID_TOKEN_ALGS) parseClientMetadata({ ...EXAMPLE, id_token_signed_response_alg: alg }, AWS);
    for (const scope of SCOPES)
      if (scope !== 'openid') parseClientMetadata({ ...EXAMPLE, scope: `openid ${scope}` }, AWS);
    parseClientMetadata({ ...EXAMPLE, grant_types: [...GRANT_TYPES] }, AWS);
    for (const mode of ['poll', 'ping', 'push'].filter((m) => !(DELIVERY_MODES as readonly string[]).includes(m))) {
      rejects({ ...EXAMPLE, backchannel_token_delivery_mode: mode }, /backchannel_token_delivery_mode/);
    }
  });
});

describe('parseClientMetadata', () => {
  test('the seed example shape (without the signing alg) is accepted and mapped', () => {
    const c = parseClientMetadata(EXAMPLE, AWS);
    const { client_secret_hash, ...rest } = c;
    assert.deepEqual(rest, {
      client_id: 'pos-terminal',
      client_name: 'Store POS',
      token_endpoint_auth_method: 'client_secret_basic',
      jwks: EXAMPLE.jwks,
      grant_types: [CIBA_GRANT, REFRESH_GRANT],
      scope: 'openid profile email',
      backchannel_token_delivery_mode: 'poll',
      backchannel_client_notification_endpoint: 'https://pos.example.com/ciba/notify',
      backchannel_user_code_parameter: false,
      id_token_signed_response_alg: 'RS256',
    });
    assert.ok(
      client_secret_hash && verifyClientSecret(SECRET, client_secret_hash),
      'secret stored hashed and verifiable',
    );
    assert.ok(!JSON.stringify(c).includes(SECRET), 'the plain secret is not kept');
  });

  test('the seed example with (optional backchannel_authentication_request_signing_alg "PS256") is accepted', () => {
    assert.equal(parseClientMetadata(SEED_EXAMPLE, AWS).backchannel_authentication_request_signing_alg, 'PS256');
  });

  test('RFC 7591 defaults: client_secret_basic, CIBA grant, poll, openid, no user code, RS256', () => {
    const c = parseClientMetadata({ client_id: 'minimal', client_secret: SECRET }, AWS);
    assert.equal(c.token_endpoint_auth_method, 'client_secret_basic');
    assert.deepEqual(c.grant_types, [CIBA_GRANT]);
    assert.equal(c.backchannel_token_delivery_mode, 'poll');
    assert.equal(c.scope, 'openid');
    assert.equal(c.backchannel_user_code_parameter, false);
    assert.equal(c.id_token_signed_response_alg, 'RS256');
  });

  test('CIBA §4 poll, ping and push are accepted; ping and push need a notification endpoint; unknown modes are rejected', () => {
    for (const mode of ['poll', 'ping', 'push'] as const) {
      assert.equal(
        parseClientMetadata({ ...EXAMPLE, backchannel_token_delivery_mode: mode }, AWS).backchannel_token_delivery_mode,
        mode,
      );
    }
    const { backchannel_client_notification_endpoint: _, ...noEndpoint } = EXAMPLE;
    rejects(
      { ...noEndpoint, backchannel_token_delivery_mode: 'ping' },
      /ping mode requires backchannel_client_notification_endpoint/,
    );
    rejects(
      { ...noEndpoint, backchannel_token_delivery_mode: 'push' },
      /push mode requires backchannel_client_notification_endpoint/,
    );
    assert.equal(
      parseClientMetadata({ ...noEndpoint, backchannel_token_delivery_mode: 'poll' }, AWS)
        .backchannel_token_delivery_mode,
      'poll',
    );
    rejects({ ...EXAMPLE, backchannel_token_delivery_mode: 'POLL' }, /backchannel_token_delivery_mode/);
    rejects({ ...EXAMPLE, backchannel_token_delivery_mode: 'webhook' }, /backchannel_token_delivery_mode/);
  });

  test('RFC 7591 client_secret is required for the client_secret_* methods', () => {
    const { client_secret: _, ...noSecret } = EXAMPLE;
    rejects(noSecret, /client_secret is required/);
    rejects({ ...EXAMPLE, client_secret: '' }, /client_secret/);
    rejects({ ...EXAMPLE, client_secret: 12345678901234568 }, /client_secret/);
  });

  test('client_secret shorter than 16 characters is rejected, 16 is accepted', () => {
    rejects({ ...EXAMPLE, client_secret: 'x'.repeat(15) }, /at least 16/);
    parseClientMetadata({ ...EXAMPLE, client_secret: 'x'.repeat(16) }, AWS);
  });

  test('RFC 7591 unsupported client auth methods are rejected (no public clients: none)', () => {
    for (const m of ['none', 'client_secret', 'PRIVATE_KEY_JWT', 'tls']) {
      rejects({ ...EXAMPLE, token_endpoint_auth_method: m }, /token_endpoint_auth_method/);
    }
  });

  test('RFC 7523 client_secret_jwt: a secret of at least 32 bytes (HS256), kept for sealing, not hashed', () => {
    const c = parseClientMetadata(clientFor('client_secret_jwt'), AWS);
    assert.equal(c.client_secret_hash, undefined);
    rejects({ ...clientFor('client_secret_jwt'), client_secret: 'x'.repeat(31) }, /at least 32 bytes/);
    rejects(
      { ...clientFor('client_secret_jwt'), token_endpoint_auth_signing_alg: 'RS256' },
      /token_endpoint_auth_signing_alg must be one of HS256/,
    );
  });

  test('RFC 7523 private_key_jwt: keys required (jwks or jwks_uri, not both), no secret, asymmetric assertion algs', () => {
    const { jwks: _j, ...noKeys } = clientFor('private_key_jwt');
    rejects(noKeys, /requires jwks or jwks_uri/);
    rejects({ ...clientFor('private_key_jwt'), jwks_uri: 'https://rp.example.com/jwks' }, /not both/);
    assert.equal(
      parseClientMetadata({ ...noKeys, jwks_uri: 'https://rp.example.com/jwks' }, AWS).jwks_uri,
      'https://rp.example.com/jwks',
    );
    rejects({ ...noKeys, jwks_uri: 'http://rp.example.com/jwks' }, /jwks_uri must be https/);
    rejects({ ...clientFor('private_key_jwt'), client_secret: SECRET }, /client_secret must not be set/);
    rejects(
      { ...clientFor('private_key_jwt'), token_endpoint_auth_signing_alg: 'HS256' },
      /token_endpoint_auth_signing_alg/,
    );
    assert.equal(
      parseClientMetadata({ ...clientFor('private_key_jwt'), token_endpoint_auth_signing_alg: 'ES256' }, AWS)
        .token_endpoint_auth_signing_alg,
      'ES256',
    );
  });

  test('RFC 8705 §2.1.2 tls_client_auth: exactly one subject DN or SAN; self_signed_tls_client_auth needs jwks', () => {
    assert.equal(
      parseClientMetadata(clientFor('tls_client_auth'), AWS).tls_client_auth_subject_dn,
      'CN=pos.example.com,O=Example',
    );
    const { tls_client_auth_subject_dn: _dn, ...none } = clientFor('tls_client_auth') as Record<string, unknown>;
    rejects(none, /exactly one of tls_client_auth_subject_dn/);
    rejects({ ...clientFor('tls_client_auth'), tls_client_auth_san_dns: 'pos.example.com' }, /exactly one/);
    rejects({ ...EXAMPLE, tls_client_auth_san_dns: 'pos.example.com' }, /only for tls_client_auth/);
    const { jwks: _k, ...selfNoJwks } = clientFor('self_signed_tls_client_auth');
    rejects({ ...selfNoJwks, jwks_uri: 'https://rp.example.com/jwks' }, /requires jwks \(jwks_uri is not supported/);
  });

  test('RFC 8705 §3 certificate-bound tokens cannot go with push delivery', () => {
    rejects(
      { ...EXAMPLE, tls_client_certificate_bound_access_tokens: true, backchannel_token_delivery_mode: 'push' },
      /cannot be combined with push/,
    );
    assert.equal(
      parseClientMetadata({ ...EXAMPLE, tls_client_certificate_bound_access_tokens: true }, AWS)
        .tls_client_certificate_bound_access_tokens,
      true,
    );
  });

  test('FAPI-CIBA profile: private_key_jwt or mTLS, signed requests PS256/ES256, no push, PS256/ES256 ID tokens, bound tokens', () => {
    const fapi = {
      ...clientFor('private_key_jwt'),
      security_profile: 'fapi-ciba',
      backchannel_authentication_request_signing_alg: 'PS256',
      id_token_signed_response_alg: 'PS256',
    };
    const c = parseClientMetadata(fapi, AWS);
    assert.equal(c.security_profile, 'fapi-ciba');
    assert.equal(c.tls_client_certificate_bound_access_tokens, true);
    rejects(
      { ...fapi, token_endpoint_auth_method: 'client_secret_basic', client_secret: SECRET },
      /fapi-ciba profile requires private_key_jwt/,
    );
    const { backchannel_authentication_request_signing_alg: _a, ...unsigned } = fapi;
    rejects(unsigned, /backchannel_authentication_request_signing_alg PS256 or ES256/);
    rejects({ ...fapi, backchannel_authentication_request_signing_alg: 'RS256' }, /PS256 or ES256/);
    rejects({ ...fapi, backchannel_token_delivery_mode: 'push' }, /push/);
    rejects({ ...fapi, id_token_signed_response_alg: 'RS256' }, /id_token_signed_response_alg PS256 or ES256/);
    rejects(
      { ...fapi, token_endpoint_auth_signing_alg: 'RS256' },
      /token_endpoint_auth_signing_alg must be one of PS256, ES256/,
    );
    rejects({ ...fapi, security_profile: 'fapi2' }, /security_profile/);
  });

  test('RFC 7591 grant_types must be a list of supported grants', () => {
    rejects({ ...EXAMPLE, grant_types: ['authorization_code'] }, /grant_types/);
    rejects({ ...EXAMPLE, grant_types: [CIBA_GRANT, 'client_credentials'] }, /grant_types/);
    rejects({ ...EXAMPLE, grant_types: CIBA_GRANT }, /grant_types/);
    rejects({ ...EXAMPLE, grant_types: [42] }, /grant_types/);
  });

  test('CIBA §7.1 registered scope must include openid and only supported scopes', () => {
    rejects({ ...EXAMPLE, scope: 'profile email' }, /scope/);
    rejects({ ...EXAMPLE, scope: 'openid address' }, /scope/);
    rejects({ ...EXAMPLE, scope: 'openid  profile' }, /scope/);
    rejects({ ...EXAMPLE, scope: '' }, /scope/);
    rejects({ ...EXAMPLE, scope: ['openid'] }, /scope/);
  });

  test('RFC 6749 A.1 client_id must be 1-128 VSCHAR (%x20-7E) characters', () => {
    rejects({ ...EXAMPLE, client_id: '' }, /client_id/);
    rejects({ ...EXAMPLE, client_id: 'tab\there' }, /client_id/);
    assert.equal(parseClientMetadata({ ...EXAMPLE, client_id: 'has space' }, AWS).client_id, 'has space');
    rejects({ ...EXAMPLE, client_id: 'x'.repeat(129) }, /client_id/);
    rejects({ ...EXAMPLE, client_id: 'clïent' }, /client_id/);
    parseClientMetadata({ ...EXAMPLE, client_id: 'x'.repeat(128) }, AWS);
  });

  test('RFC 7591 metadata that is not a JSON object is rejected', () => {
    for (const raw of [null, undefined, 'client', 42, []]) rejects(raw, /object/);
  });

  test('CIBA §4 backchannel_user_code_parameter must be a boolean', () => {
    rejects({ ...EXAMPLE, backchannel_user_code_parameter: 'true' }, /backchannel_user_code_parameter/);
    assert.equal(
      parseClientMetadata({ ...EXAMPLE, backchannel_user_code_parameter: true }, AWS).backchannel_user_code_parameter,
      true,
    );
  });

  test('OIDC Registration id_token_signed_response_alg: none and HS256 are rejected', () => {
    rejects({ ...EXAMPLE, id_token_signed_response_alg: 'none' }, /id_token_signed_response_alg/);
    rejects({ ...EXAMPLE, id_token_signed_response_alg: 'HS256' }, /id_token_signed_response_alg/);
  });

  test('RFC 7591 jwks must be {"keys": [...]}', () => {
    rejects({ ...EXAMPLE, jwks: [] }, /jwks/);
    rejects({ ...EXAMPLE, jwks: { keys: {} } }, /jwks/);
    rejects({ ...EXAMPLE, jwks: null }, /jwks/);
  });

  test('CIBA §4 http notification endpoint is rejected outside local mode (even on localhost)', () => {
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'http://pos.example.com/cb' }, /https/);
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'http://localhost:3000/cb' }, /https/);
  });

  test('local stack: loopback http notification endpoint is accepted in local mode only', () => {
    for (const url of ['http://localhost:3000/cb', 'http://127.0.0.1:9999/notify', 'http://localhost/cb']) {
      assert.equal(
        parseClientMetadata({ ...EXAMPLE, backchannel_client_notification_endpoint: url }, LOCAL)
          .backchannel_client_notification_endpoint,
        url,
      );
    }
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'http://pos.example.com/cb' }, /https/, LOCAL);
    rejects(
      { ...EXAMPLE, backchannel_client_notification_endpoint: 'http://localhost.evil.example/cb' },
      /https/,
      LOCAL,
    );
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'http://127.0.0.1.nip.io/cb' }, /https/, LOCAL);
  });

  test('CIBA §4 notification endpoint with a fragment is rejected (even an empty one)', () => {
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'https://pos.example.com/cb#frag' }, /fragment/);
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'https://pos.example.com/cb#' }, /fragment/);
  });

  test('CIBA §4 notification endpoint must be an absolute URL with an allowed scheme', () => {
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: '/relative/cb' }, /absolute URL/);
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: 'ftp://pos.example.com/cb' }, /https/);
    rejects({ ...EXAMPLE, backchannel_client_notification_endpoint: '' }, /non-empty/);
  });

  test('validateNotificationEndpoint directly: https anywhere, loopback http only locally', () => {
    assert.equal(validateNotificationEndpoint('https://rp.example.com/cb?x=1', false), 'https://rp.example.com/cb?x=1');
    assert.equal(validateNotificationEndpoint('http://127.0.0.1:8081/cb', true), 'http://127.0.0.1:8081/cb');
    assert.throws(() => validateNotificationEndpoint('http://127.0.0.1:8081/cb', false), ClientMetadataError);
  });
});

test('OIDC Discovery acr_values_supported only when configured', () => {
  assert.equal('acr_values_supported' in providerMetadata('https://op.example.com'), false);
  assert.deepEqual(providerMetadata('https://op.example.com', ['a', 'b']).acr_values_supported, ['a', 'b']);
});
