// Test certificates for mutual TLS (RFC 8705): a CA, a server certificate for the local HTTPS listener, client
// certificates signed by the CA, and self-signed client certificates whose public key is also returned as a JWK.
// node:crypto cannot issue certificates, so this drives the OpenSSL 3 CLI (Debian package `openssl`, present wherever
// `ca-certificates` is) with its own minimal config file; key pairs are EC P-256, made with node:crypto. Everything
// is valid for one day and lives in a temp dir only while openssl runs.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';

/** A subject as attribute/value pairs, most significant first (the DER order), e.g. [['C', 'US'], ['CN', 'a']]. */
export type Subject = [type: string, value: string][];

export type SubjectAltNames = { dns?: string[]; uri?: string[]; ip?: string[]; email?: string[] };

export type IssuedCertificate = {
  /** PKCS #8 PEM private key. */
  keyPem: string;
  certPem: string;
  cert: X509Certificate;
};

export type SelfSignedCertificate = IssuedCertificate & {
  /** The public key as a JWK (for a client's registered `jwks`). */
  jwk: JWK;
  /** The same key pair with its private part. */
  privateJwk: JWK;
};

export type CertOptions = {
  /** Default: [['CN', <purpose>]]. */
  subject?: Subject;
  san?: SubjectAltNames;
  /** Decimal serial number; default random (positive, 64 bits). */
  serial?: bigint;
  /** Validity in days from now (default 1). */
  days?: number;
};

const OPENSSL = process.env.OPENSSL ?? 'openssl';

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[dn]
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
subjectAltName = @san
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
__SAN__
[self_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
__SAN__
`;

/** A test CA (self-signed, CA:TRUE). */
export function createCa(options: CertOptions = {}): IssuedCertificate {
  return issue('ca_ext', { subject: [['O', 'CIBA test'], ['CN', 'Test CA']], ...options });
}

/** A server certificate for the local HTTPS listener: SANs localhost, 127.0.0.1 and ::1 unless given. */
export function createServerCert(ca: IssuedCertificate, options: CertOptions = {}): IssuedCertificate {
  return issue('server_ext', { subject: [['CN', 'localhost']], san: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] }, ...options }, ca);
}

/** A client certificate (extendedKeyUsage clientAuth) signed by the CA, for tls_client_auth. */
export function createClientCert(ca: IssuedCertificate, options: CertOptions = {}): IssuedCertificate {
  return issue('client_ext', { subject: [['CN', 'client.example.com']], ...options }, ca);
}

/** A self-signed client certificate, for self_signed_tls_client_auth; its key is returned as a JWK too. */
export function createSelfSignedCert(options: CertOptions = {}): SelfSignedCertificate {
  const issued = issue('self_ext', { subject: [['CN', 'self-signed client']], ...options });
  return {
    ...issued,
    jwk: issued.cert.publicKey.export({ format: 'jwk' }) as JWK,
    privateJwk: createPrivateKey(issued.keyPem).export({ format: 'jwk' }) as JWK,
  };
}

/** The OpenSSL `-subj` form: /type=value/…, with `/`, `+`, `=` and `\` escaped. */
function subjectArg(subject: Subject): string {
  if (subject.length === 0) throw new Error('a test certificate needs a non-empty subject');
  return subject.map(([type, value]) => `/${type}=${value.replace(/[\\/+=]/g, (c) => `\\${c}`)}`).join('');
}

function sanSection(san: SubjectAltNames | undefined): string {
  const lines: string[] = [];
  const add = (kind: string, values: string[] | undefined) => values?.forEach((v, i) => lines.push(`${kind}.${i + 1} = ${v}`));
  add('DNS', san?.dns);
  add('URI', san?.uri);
  add('IP', san?.ip);
  add('email', san?.email);
  return lines.join('\n');
}

function issue(extensions: 'ca_ext' | 'server_ext' | 'client_ext' | 'self_ext', options: CertOptions, ca?: IssuedCertificate): IssuedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'ciba-certs-'));
  try {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const sanLines = sanSection(options.san);
    const config = CONFIG.replace('[dn]', `[dn]\n[san]\n${sanLines || 'DNS.1 = localhost'}`).replaceAll('__SAN__', sanLines ? 'subjectAltName = @san' : '');
    writeFileSync(join(dir, 'openssl.cnf'), config);
    writeFileSync(join(dir, 'key.pem'), keyPem, { mode: 0o600 });
    const serial = options.serial ?? BigInt(`0x${randomBytes(8).toString('hex')}`) + 1n;
    const args = ['req', '-x509', '-new', '-config', join(dir, 'openssl.cnf'), '-key', join(dir, 'key.pem'), '-subj', subjectArg(options.subject ?? [])];
    args.push('-sha256', '-days', String(options.days ?? 1), '-set_serial', serial.toString(), '-extensions', extensions, '-out', join(dir, 'cert.pem'));
    if (ca) {
      writeFileSync(join(dir, 'ca.pem'), ca.certPem);
      writeFileSync(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
      args.push('-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'));
    }
    openssl(args);
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    return { keyPem, certPem, cert: new X509Certificate(certPem) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  try {
    execFileSync(OPENSSL, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OPENSSL_CONF: '/dev/null' } });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error(`test certificates need the OpenSSL 3 CLI (${OPENSSL} not found; Debian: apt-get install openssl)`);
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`);
  }
}
