// functions/core/mtls.ts: RFC 8705 mutual-TLS client authentication (tls_client_auth §2.1, self_signed_tls_client_auth
// §2.2) and certificate-bound access tokens (§3, cnf.x5t#S256), on real certificates made by test/support/certs.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { calculateJwkThumbprint, type JWK } from 'jose';
import {
  certificateCurrent,
  certificateThumbprint,
  confirmsCertificate,
  matchesSelfSigned,
  matchesTlsClientAuth,
  parseClientCertificate,
} from '../../functions/core/mtls.ts';
import { createCa, createClientCert, createSelfSignedCert } from '../support/certs.ts';
import { throwsOAuth } from './helpers/oauth-assert.ts';

const ca = createCa();
const client = createClientCert(ca, {
  subject: [
    ['C', 'US'],
    ['ST', 'Washington'],
    ['O', 'Example, Inc.'],
    ['OU', 'R+D'],
    ['CN', 'client.example.com'],
    ['emailAddress', 'ops@example.com'],
  ],
  san: {
    dns: ['client.example.com', 'alt.example.net'],
    uri: ['https://client.example.com/id', 'spiffe://example.com/ciba/client'],
    ip: ['192.0.2.7', '2001:db8::7'],
    email: ['ops@example.com'],
  },
});
const other = createClientCert(ca, {
  subject: [
    ['C', 'US'],
    ['O', 'Example, Inc.'],
    ['CN', 'other.example.com'],
  ],
});
const selfSigned = createSelfSignedCert();
const stranger = createSelfSignedCert();

describe('parseClientCertificate', () => {
  test('reads a PEM certificate', () => {
    assert.equal(parseClientCertificate(client.certPem).fingerprint256, client.cert.fingerprint256);
  });

  test('garbage is invalid_client (401)', () => {
    throwsOAuth(
      () => parseClientCertificate('not a certificate'),
      'invalid_client',
      401,
      /malformed client certificate/,
    );
    throwsOAuth(
      () => parseClientCertificate('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'),
      'invalid_client',
      401,
    );
  });
});

describe('certificateThumbprint (RFC 8705 §3.1)', () => {
  test('base64url(SHA-256(DER)), the same as X509Certificate.fingerprint256', () => {
    const expected = createHash('sha256').update(client.cert.raw).digest('base64url');
    assert.equal(certificateThumbprint(client.cert), expected);
    assert.equal(certificateThumbprint(client.certPem), expected);
    assert.equal(Buffer.from(client.cert.fingerprint256.replaceAll(':', ''), 'hex').toString('base64url'), expected);
    assert.match(expected, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(certificateThumbprint(other.cert), expected);
  });
});

describe('tls_client_auth subject DN (RFC 8705 §2.1.2)', () => {
  const dn = (value: string) => matchesTlsClientAuth(client.cert, { tls_client_auth_subject_dn: value });

  test('RFC 4514 order (least significant first) with escaped comma and plus', () => {
    assert.equal(
      dn('emailAddress=ops@example.com,CN=client.example.com,OU=R\\+D,O=Example\\, Inc.,ST=Washington,C=US'),
      true,
    );
  });

  test("certificate order (most significant first), as API Gateway's subjectDN", () => {
    assert.equal(
      dn('C=US,ST=Washington,O=Example\\, Inc.,OU=R\\+D,CN=client.example.com,emailAddress=ops@example.com'),
      true,
    );
  });

  test("node's X509Certificate.subject form", () => {
    assert.equal(dn(client.cert.subject), true);
  });

  test('type aliases and case, value case and spaces, hex escapes', () => {
    assert.equal(
      dn('E=OPS@example.com, cn=Client.Example.COM, ou=r\\2bd, o=example\\,   inc. , S=washington, C=us'),
      true,
    );
    assert.equal(
      dn(
        '1.2.840.113549.1.9.1=ops@example.com,OID.2.5.4.3=client.example.com,OU=R\\+D,O=Example\\2C Inc.,ST=Washington,C=US',
      ),
      true,
    );
  });

  test('a different or partial DN does not match', () => {
    assert.equal(dn('CN=other.example.com,O=Example\\, Inc.,C=US'), false);
    assert.equal(dn('CN=client.example.com,O=Example\\, Inc.,C=US'), false, 'missing RDNs');
    assert.equal(
      dn('emailAddress=ops@example.com,CN=client.example.com,OU=R\\+D,O=Example\\, Inc.,ST=Washington,C=GB'),
      false,
    );
    assert.equal(
      dn('C=US,ST=Washington,O=Example\\, Inc.,CN=client.example.com,OU=R\\+D,emailAddress=ops@example.com'),
      false,
      'RDNs out of order',
    );
    assert.equal(dn('O=Example, Inc.,C=US'), false, 'unescaped comma');
    assert.equal(dn(''), false);
    assert.equal(dn('not a DN'), false);
    assert.equal(matchesTlsClientAuth(other.cert, { tls_client_auth_subject_dn: client.cert.subject }), false);
  });
});

describe('tls_client_auth SANs (RFC 8705 §2.1.2)', () => {
  test('dNSName, case-insensitive', () => {
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_dns: 'alt.example.net' }), true);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_dns: 'CLIENT.example.com' }), true);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_dns: 'example.com' }), false);
    assert.equal(
      matchesTlsClientAuth(other.cert, { tls_client_auth_san_dns: 'other.example.com' }),
      false,
      'CN is not a SAN',
    );
  });

  test('uniformResourceIdentifier, exact', () => {
    assert.equal(
      matchesTlsClientAuth(client.cert, { tls_client_auth_san_uri: 'spiffe://example.com/ciba/client' }),
      true,
    );
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_uri: 'https://client.example.com/id' }), true);
    assert.equal(
      matchesTlsClientAuth(client.cert, { tls_client_auth_san_uri: 'https://client.example.com/ID' }),
      false,
    );
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_uri: 'https://client.example.com/' }), false);
  });

  test('iPAddress, IPv4 and IPv6 in any spelling', () => {
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_ip: '192.0.2.7' }), true);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_ip: '2001:db8::7' }), true);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_ip: '2001:0DB8:0:0:0:0:0:7' }), true);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_ip: '192.0.2.8' }), false);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_ip: 'client.example.com' }), false);
  });

  test('rfc822Name, exact', () => {
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_email: 'ops@example.com' }), true);
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_email: 'dev@example.com' }), false);
  });

  test('a value with a comma is not split (node quotes it)', () => {
    const tricky = createClientCert(ca, { san: { dns: ['a.example, DNS:victim.example'] } });
    assert.equal(matchesTlsClientAuth(tricky.cert, { tls_client_auth_san_dns: 'victim.example' }), false);
    assert.equal(matchesTlsClientAuth(tricky.cert, { tls_client_auth_san_dns: 'a.example, DNS:victim.example' }), true);
  });

  test('exactly one registered value: none or two never match', () => {
    assert.equal(matchesTlsClientAuth(client.cert, {}), false);
    assert.equal(
      matchesTlsClientAuth(client.cert, {
        tls_client_auth_san_dns: 'alt.example.net',
        tls_client_auth_san_ip: '192.0.2.7',
      }),
      false,
    );
    assert.equal(matchesTlsClientAuth(client.cert, { tls_client_auth_san_dns: '' }), false);
  });
});

describe('self_signed_tls_client_auth (RFC 8705 §2.2)', () => {
  test('the public key is a registered JWK (RFC 7638 thumbprint)', async () => {
    assert.equal(await matchesSelfSigned(selfSigned.cert, { keys: [stranger.jwk, selfSigned.jwk] }), true);
    // Extra members (kid, use, alg) do not change the thumbprint; a private JWK holds the same public key.
    assert.equal(
      await matchesSelfSigned(selfSigned.cert, { keys: [{ ...selfSigned.jwk, kid: 'k1', use: 'sig', alg: 'ES256' }] }),
      true,
    );
    assert.equal(await matchesSelfSigned(selfSigned.cert, { keys: [selfSigned.privateJwk] }), true);
    assert.equal(
      await calculateJwkThumbprint(selfSigned.jwk),
      await calculateJwkThumbprint(selfSigned.cert.publicKey.export({ format: 'jwk' }) as JWK),
    );
  });

  test('a registered x5c leaf equal to the certificate matches', async () => {
    const x5c = [selfSigned.cert.raw.toString('base64')];
    assert.equal(await matchesSelfSigned(selfSigned.cert, { keys: [{ kty: 'EC', x5c }] }), true);
  });

  test('another key, a broken key or no keys do not match', async () => {
    assert.equal(await matchesSelfSigned(selfSigned.cert, { keys: [stranger.jwk] }), false);
    assert.equal(
      await matchesSelfSigned(selfSigned.cert, { keys: [{ kty: 'EC', crv: 'P-256' }, { kty: 'nope' }] }),
      false,
    );
    assert.equal(await matchesSelfSigned(selfSigned.cert, { keys: [] }), false);
    assert.equal(await matchesSelfSigned(client.cert, { keys: [selfSigned.jwk] }), false);
  });
});

describe('certificateCurrent', () => {
  const from = Math.floor(client.cert.validFromDate.getTime() / 1000);
  const to = Math.floor(client.cert.validToDate.getTime() / 1000);

  test('notBefore ≤ now ≤ notAfter', () => {
    assert.equal(certificateCurrent(client.cert, Math.floor(Date.now() / 1000)), true);
    assert.equal(certificateCurrent(client.cert, from), true);
    assert.equal(certificateCurrent(client.cert, to), true);
  });

  test('before notBefore or after notAfter', () => {
    assert.equal(certificateCurrent(client.cert, from - 1), false);
    assert.equal(certificateCurrent(client.cert, to + 1), false);
  });
});

describe('confirmsCertificate (RFC 8705 §3)', () => {
  test('cnf.x5t#S256 of the presented certificate', () => {
    assert.equal(confirmsCertificate({ 'x5t#S256': certificateThumbprint(client.cert) }, client.cert), true);
  });

  test('another certificate, no certificate', () => {
    assert.equal(confirmsCertificate({ 'x5t#S256': certificateThumbprint(client.cert) }, other.cert), false);
    assert.equal(confirmsCertificate({ 'x5t#S256': certificateThumbprint(client.cert) }, undefined), false);
  });

  test('missing or malformed cnf', () => {
    assert.equal(confirmsCertificate(undefined, client.cert), false);
    assert.equal(confirmsCertificate(null, client.cert), false);
    assert.equal(confirmsCertificate({}, client.cert), false);
    assert.equal(confirmsCertificate({ jkt: certificateThumbprint(client.cert) }, client.cert), false);
    assert.equal(confirmsCertificate({ 'x5t#S256': 42 }, client.cert), false);
    assert.equal(confirmsCertificate('x5t#S256', client.cert), false);
  });
});
