// RFC 8705 mutual-TLS client authentication (§2) and certificate-bound access tokens (§3). The certificate is the one
// the TLS peer presented: API Gateway (HTTP API on an mTLS custom domain) terminates TLS and passes it in
// requestContext.authentication.clientCert. All parsing is node:crypto's X509Certificate; nothing here reads ASN.1.
import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { OAuthError } from './errors.ts';

/** What API Gateway puts in requestContext.authentication.clientCert (HTTP API mTLS) and the local HTTPS listener mimics. */
export type ClientCertificate = {
  clientCertPem: string;
  subjectDN: string;
  issuerDN: string;
  serialNumber: string;
  validity: { notBefore: string; notAfter: string };
};

/** Parse the presented PEM; anything unreadable is the client's fault (RFC 8705 §2: authentication fails). */
export function parseClientCertificate(pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (cause) {
    throw new OAuthError('invalid_client', 'malformed client certificate', { cause });
  }
}

/** RFC 8705 §3.1: base64url SHA-256 of the DER certificate, for cnf.x5t#S256. */
export function certificateThumbprint(cert: X509Certificate | string): string {
  const x509 = typeof cert === 'string' ? parseClientCertificate(cert) : cert;
  return createHash('sha256').update(x509.raw).digest('base64url');
}

/** RFC 8705 §2.1.2 tls_client_auth: the registered subject DN or one SAN matches (exactly one of these is registered). */
export type TlsClientAuthMetadata = {
  tls_client_auth_subject_dn?: string;
  tls_client_auth_san_dns?: string;
  tls_client_auth_san_uri?: string;
  tls_client_auth_san_ip?: string;
  tls_client_auth_san_email?: string;
};

/**
 * RFC 8705 §2.1.2: the certificate (already chain-validated by the TLS terminator against the trust store) matches
 * the client's one registered subject DN or SAN. No or several registered values: false (§2.1.2 allows only one).
 */
export function matchesTlsClientAuth(cert: X509Certificate, registered: TlsClientAuthMetadata): boolean {
  const entries = (Object.entries(registered) as [keyof TlsClientAuthMetadata, unknown][]).filter(
    ([key, value]) => key.startsWith('tls_client_auth_') && value !== undefined && value !== null,
  );
  if (entries.length !== 1) return false;
  const [key, value] = entries[0] as [keyof TlsClientAuthMetadata, unknown];
  if (typeof value !== 'string' || value === '') return false;
  switch (key) {
    case 'tls_client_auth_subject_dn':
      return subjectDnMatches(cert.subject, value);
    case 'tls_client_auth_san_dns': {
      const want = normalizeDnsName(value);
      return subjectAltNames(cert).some((n) => n.type === 'DNS' && normalizeDnsName(n.value) === want);
    }
    case 'tls_client_auth_san_uri':
      return subjectAltNames(cert).some((n) => n.type === 'URI' && n.value === value);
    case 'tls_client_auth_san_ip': {
      const want = canonicalIp(value);
      return (
        want !== undefined &&
        subjectAltNames(cert).some((n) => n.type === 'IP Address' && canonicalIp(n.value) === want)
      );
    }
    case 'tls_client_auth_san_email':
      return subjectAltNames(cert).some((n) => n.type === 'email' && n.value === value);
    default:
      return false;
  }
}

/**
 * RFC 8705 §2.2 self_signed_tls_client_auth: the certificate's public key is one of the client's registered JWKs
 * (RFC 7638 thumbprints compared), or a registered key's x5c leaf is this very certificate. The TLS handshake already
 * proved possession of the private key; the certificate's own signature and issuer are irrelevant here.
 */
export async function matchesSelfSigned(cert: X509Certificate, jwks: { keys: JWK[] }): Promise<boolean> {
  let presented: string;
  try {
    presented = await calculateJwkThumbprint(cert.publicKey.export({ format: 'jwk' }) as JWK, 'sha256');
  } catch {
    return false; // a key type jose cannot thumbprint cannot match a registered JWK either
  }
  const der = cert.raw.toString('base64');
  for (const key of Array.isArray(jwks?.keys) ? jwks.keys : []) {
    if (Array.isArray(key.x5c) && typeof key.x5c[0] === 'string' && key.x5c[0].replace(/\s+/g, '') === der) return true;
    try {
      if ((await calculateJwkThumbprint(key, 'sha256')) === presented) return true;
    } catch {
      // not a usable public key (missing members, unknown kty): skip it
    }
  }
  return false;
}

/** Validity window check (notBefore ≤ now ≤ notAfter), now in epoch seconds. */
export function certificateCurrent(cert: X509Certificate, now: number): boolean {
  const ms = now * 1000;
  return cert.validFromDate.getTime() <= ms && ms <= cert.validToDate.getTime();
}

/** RFC 8705 §3: does an access token's cnf match the presented certificate? False without cnf.x5t#S256 or certificate. */
export function confirmsCertificate(cnf: unknown, cert: X509Certificate | undefined): boolean {
  if (!cert || cnf === null || typeof cnf !== 'object') return false;
  const bound = (cnf as Record<string, unknown>)['x5t#S256'];
  if (typeof bound !== 'string') return false;
  const expected = Buffer.from(certificateThumbprint(cert));
  const given = Buffer.from(bound);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// ---------------------------------------------------------------------------------------------------------------
// Distinguished names. RFC 8705 §2.1.2 asks for RFC 4517 distinguishedNameMatch; this is a documented approximation:
//  - Input forms: the RFC 4514 string (`CN=client,O=Example,C=US`; `,` between RDNs, `+` inside a multi-valued RDN,
//    spaces around separators ignored) and node's X509Certificate.subject (one RDN per line, ` + ` inside one, values
//    escaped as RFC 2253). Escapes: `\` + any character is that character, `\` + two hex digits is a byte (UTF-8).
//  - Order: node lists RDNs most significant first (C … CN), RFC 4514 strings usually least significant first, and
//    API Gateway's subjectDN most significant first; the registered DN matches when its RDN sequence equals the
//    certificate's in either direction. (So a DN also matches its exact mirror image, e.g. `OU=a,OU=b` vs
//    `OU=b,OU=a`: accepted as the price of order-agnosticism.)
//  - Attribute types: case-insensitive; short names, long names and dotted OIDs (optionally `OID.`-prefixed) of the
//    common types below are the same type (`E`/`EMAIL`/`emailAddress`, `S`/`ST`, …). A multi-valued RDN is a set.
//  - Values of those common types (all caseIgnoreMatch/caseIgnoreIA5Match in X.520): Unicode NFKC, lower-cased,
//    leading/trailing spaces removed and inner runs of whitespace collapsed to one space (RFC 4518 §2.6.1, roughly).
//    Values of other types: trimmed, otherwise exact. A `#hex` (BER) value is compared as text, not decoded.
//  - Not handled: quoted values (RFC 1779 `"…"`), `;` as separator, the OpenSSL `/C=US/CN=…` form, full RFC 4518
//    string preparation (case folding beyond toLowerCase, insignificant character mapping), string type differences.

type Attribute = { type: string; value: string; ber: boolean };

const ATTRIBUTE_TYPES: Record<string, string[]> = {
  CN: ['2.5.4.3', 'COMMONNAME'],
  SN: ['2.5.4.4', 'SURNAME'],
  SERIALNUMBER: ['2.5.4.5'],
  C: ['2.5.4.6', 'COUNTRYNAME'],
  L: ['2.5.4.7', 'LOCALITYNAME'],
  ST: ['2.5.4.8', 'S', 'STATEORPROVINCENAME'],
  STREET: ['2.5.4.9', 'STREETADDRESS'],
  O: ['2.5.4.10', 'ORGANIZATIONNAME'],
  OU: ['2.5.4.11', 'ORGANIZATIONALUNITNAME'],
  TITLE: ['2.5.4.12', 'T'],
  BUSINESSCATEGORY: ['2.5.4.15'],
  POSTALCODE: ['2.5.4.17'],
  GIVENNAME: ['2.5.4.42', 'GN', 'G'],
  ORGANIZATIONIDENTIFIER: ['2.5.4.97'],
  DC: ['0.9.2342.19200300.100.1.25', 'DOMAINCOMPONENT'],
  UID: ['0.9.2342.19200300.100.1.1', 'USERID'],
  EMAILADDRESS: ['1.2.840.113549.1.9.1', 'E', 'EMAIL'],
};
const TYPE_ALIASES = new Map<string, string>(
  Object.entries(ATTRIBUTE_TYPES).flatMap(([name, aliases]) => [
    [name, name] as const,
    ...aliases.map((a) => [a, name] as const),
  ]),
);

function canonicalType(type: string): string {
  const upper = type
    .trim()
    .toUpperCase()
    .replace(/^OID\./, '');
  return TYPE_ALIASES.get(upper) ?? upper;
}

/** Split a DN into RDNs of attributes; undefined when malformed. `rdnSeparator` is `,` (RFC 4514) or `\n` (node). */
function parseDn(dn: string, rdnSeparator: ',' | '\n'): Attribute[][] | undefined {
  const rdns: Attribute[][] = [];
  let rdn: Attribute[] = [];
  let type = '';
  let bytes: number[] = [];
  let inValue = false;
  let leadingHash = false;
  const finishAttribute = (): boolean => {
    const value = Buffer.from(bytes).toString('utf8');
    if (!inValue || type.trim() === '') return false;
    rdn.push({ type: canonicalType(type), value, ber: leadingHash });
    type = '';
    bytes = [];
    inValue = false;
    leadingHash = false;
    return true;
  };
  for (let i = 0; i < dn.length; i++) {
    const c = dn[i] as string;
    if (c === '\\') {
      if (!inValue) return undefined;
      const hex = dn.slice(i + 1, i + 3);
      if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else if (i + 1 < dn.length) {
        const next = String.fromCodePoint(dn.codePointAt(i + 1) as number);
        bytes.push(...Buffer.from(next, 'utf8'));
        i += next.length;
      } else {
        return undefined;
      }
    } else if (!inValue) {
      if (c === '=') inValue = true;
      else if (c === ',' || c === '+' || c === '\n') return undefined;
      else type += c;
    } else if (c === '+') {
      if (!finishAttribute()) return undefined;
    } else if (c === rdnSeparator) {
      if (!finishAttribute()) return undefined;
      rdns.push(rdn);
      rdn = [];
    } else {
      if (c === '#' && Buffer.from(bytes).toString('utf8').trim() === '') leadingHash = true;
      const cp = String.fromCodePoint(dn.codePointAt(i) as number);
      bytes.push(...Buffer.from(cp, 'utf8'));
      i += cp.length - 1;
    }
  }
  if (!finishAttribute()) return undefined;
  rdns.push(rdn);
  return rdns;
}

function normalizeValue(a: Attribute): string {
  if (a.ber || !(a.type in ATTRIBUTE_TYPES)) return a.value.trim();
  return a.value.normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ');
}

/** One comparable key per RDN (its attributes as a sorted set). */
function rdnKeys(rdns: Attribute[][]): string[] {
  return rdns.map((rdn) =>
    rdn
      .map((a) => JSON.stringify([a.type, normalizeValue(a)]))
      .sort()
      .join('+'),
  );
}

/** RFC 8705 §2.1.2 tls_client_auth_subject_dn against node's X509Certificate.subject; see the rules above. */
function subjectDnMatches(certSubject: string, registered: string): boolean {
  const presented = certSubject === '' ? undefined : parseDn(certSubject, '\n');
  const wanted = parseDn(registered.trim(), registered.includes('\n') ? '\n' : ',');
  if (!presented || !wanted) return false;
  const a = rdnKeys(presented);
  const b = rdnKeys(wanted);
  const same = (x: string[]) => x.length === b.length && x.every((k, i) => k === b[i]);
  return same(a) || same([...a].reverse());
}

// ---------------------------------------------------------------------------------------------------------------
// Subject alternative names, from node's X509Certificate.subjectAltName: `DNS:a, URI:b, IP Address:c, email:d`.
// Node JSON-quotes a value that contains `,`, quotes, backslashes or control characters (`DNS:"a\u002c b"`), so the
// list splits unambiguously on `, `.

type AltName = { type: string; value: string };

function subjectAltNames(cert: X509Certificate): AltName[] {
  const text = cert.subjectAltName;
  if (!text) return [];
  const names: AltName[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) break;
    const type = text.slice(i, colon);
    let value: string;
    let end: number;
    if (text[colon + 1] === '"') {
      end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      end += 1;
      try {
        value = JSON.parse(text.slice(colon + 1, end)) as string;
      } catch {
        return names; // unexpected format: stop rather than guess
      }
    } else {
      end = text.indexOf(', ', colon + 1);
      if (end === -1) end = text.length;
      value = text.slice(colon + 1, end);
    }
    names.push({ type, value });
    if (text.startsWith(', ', end)) end += 2;
    else if (end < text.length) return names;
    i = end;
  }
  return names;
}

function normalizeDnsName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** One spelling per address (RFC 5952 for IPv6 via the WHATWG URL serializer); undefined if not an IP address. */
function canonicalIp(ip: string): string | undefined {
  const version = isIP(ip.trim());
  if (version === 0) return undefined;
  return new URL(version === 6 ? `http://[${ip.trim()}]/` : `http://${ip.trim()}/`).hostname;
}
