// X.509 certificates for mutual TLS (RFC 8705): a CA, a server certificate for the local HTTPS listener, client
// certificates signed by the CA, and self-signed client certificates whose public key is also returned as a JWK.
// Used by the tests (re-exported by test/support/certs.ts; valid for one day by default), by `npm start -- --mtls-port`
// (the local CA and server certificate kept in <data-dir>/mtls/, see ensureLocalMtls) and by `npm run mtls-cert`
// (client certificates from that CA). node:crypto cannot issue certificates, so this drives the OpenSSL 3 CLI (Debian
// package `openssl`, present wherever `ca-certificates` is; env OPENSSL names another binary) with its own minimal
// config file; key pairs are EC P-256, made with node:crypto. Issuing writes only to a temp dir removed right after;
// files are written by writeIssued and ensureLocalMtls only.
import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
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
  /** Validity in days from now (default 1: test certificates). */
  days?: number;
  /**
   * An explicit validity period instead of `days`, e.g. one wholly in the past for an expired certificate. OpenSSL
   * 3.0's `req -x509` cannot back-date, so such certificates are signed with `openssl ca -startdate/-enddate`.
   */
  validity?: { notBefore: Date; notAfter: Date };
};

const OPENSSL = process.env.OPENSSL ?? 'openssl';

const CONFIG = `
[req]
distinguished_name = dn
prompt = no
[ca]
default_ca = ca_default
[ca_default]
database = ./index.txt
new_certs_dir = .
serial = ./serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
copy_extensions = none
[policy_any]
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

/** A CA (self-signed, CA:TRUE); default subject O=CIBA test, CN=Test CA. */
export function createCa(options: CertOptions = {}): IssuedCertificate {
  return issue('ca_ext', {
    subject: [
      ['O', 'CIBA test'],
      ['CN', 'Test CA'],
    ],
    ...options,
  });
}

/** A server certificate for the local HTTPS listener: SANs localhost, 127.0.0.1 and ::1 unless given. */
export function createServerCert(ca: IssuedCertificate, options: CertOptions = {}): IssuedCertificate {
  return issue(
    'server_ext',
    { subject: [['CN', 'localhost']], san: { dns: ['localhost'], ip: ['127.0.0.1', '::1'] }, ...options },
    ca,
  );
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
  if (subject.length === 0) throw new Error('a certificate needs a non-empty subject');
  return subject.map(([type, value]) => `/${type}=${value.replace(/[\\/+=]/g, (c) => `\\${c}`)}`).join('');
}

function sanSection(san: SubjectAltNames | undefined): string {
  const lines: string[] = [];
  const add = (kind: string, values: string[] | undefined) => {
    for (const [i, v] of (values ?? []).entries()) lines.push(`${kind}.${i + 1} = ${v}`);
  };
  add('DNS', san?.dns);
  add('URI', san?.uri);
  add('IP', san?.ip);
  add('email', san?.email);
  return lines.join('\n');
}

function issue(
  extensions: 'ca_ext' | 'server_ext' | 'client_ext' | 'self_ext',
  options: CertOptions,
  ca?: IssuedCertificate,
): IssuedCertificate {
  const dir = mkdtempSync(join(tmpdir(), 'ciba-certs-'));
  try {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keyPem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const sanLines = sanSection(options.san);
    const config = CONFIG.replace('[dn]', `[dn]\n[san]\n${sanLines || 'DNS.1 = localhost'}`).replaceAll(
      '__SAN__',
      sanLines ? 'subjectAltName = @san' : '',
    );
    writeFileSync(join(dir, 'openssl.cnf'), config);
    writeFileSync(join(dir, 'key.pem'), keyPem, { mode: 0o600 });
    const serial = options.serial ?? BigInt(`0x${randomBytes(8).toString('hex')}`) + 1n;
    if (ca) {
      writeFileSync(join(dir, 'ca.pem'), ca.certPem);
      writeFileSync(join(dir, 'ca.key'), ca.keyPem, { mode: 0o600 });
    }
    const subject = subjectArg(options.subject ?? []);
    if (options.validity) {
      if (options.days !== undefined) throw new Error('give a certificate either days or validity, not both');
      signWithValidity(dir, extensions, subject, serial, options.validity, ca !== undefined);
    } else {
      const args = ['req', '-x509', '-new', '-config', 'openssl.cnf', '-key', 'key.pem', '-subj', subject, '-sha256'];
      args.push('-days', String(options.days ?? 1), '-set_serial', serial.toString(), '-extensions', extensions);
      args.push('-out', 'cert.pem', ...(ca ? ['-CA', 'ca.pem', '-CAkey', 'ca.key'] : []));
      openssl(args, dir);
    }
    const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8');
    return { keyPem, certPem, cert: new X509Certificate(certPem) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Signs cert.pem in `dir` with an explicit validity period: a request (`req -new`), then `openssl ca` with
 * -startdate/-enddate, which OpenSSL 3.0 accepts in the past too. -preserveDN keeps the whole subject (the empty
 * policy would drop it), -selfsign signs with the certificate's own key. `openssl ca` keeps a throwaway database
 * (index.txt, serial: hex) in `dir`, so it runs there.
 */
function signWithValidity(
  dir: string,
  extensions: string,
  subject: string,
  serial: bigint,
  validity: { notBefore: Date; notAfter: Date },
  byCa: boolean,
): void {
  if (!(validity.notBefore.getTime() < validity.notAfter.getTime())) {
    throw new Error('validity: notBefore must precede notAfter');
  }
  openssl(['req', '-new', '-config', 'openssl.cnf', '-key', 'key.pem', '-subj', subject, '-out', 'request.pem'], dir);
  const hex = serial.toString(16);
  writeFileSync(join(dir, 'serial'), `${hex.length % 2 ? '0' : ''}${hex}\n`);
  writeFileSync(join(dir, 'index.txt'), '');
  const time = (d: Date) =>
    `${d
      .toISOString()
      .replace(/\.\d{3}Z$/, 'Z')
      .replace(/[-:T]/g, '')}`;
  const args = ['ca', '-batch', '-config', 'openssl.cnf', '-notext', '-preserveDN', '-in', 'request.pem'];
  args.push('-out', 'cert.pem');
  args.push('-startdate', time(validity.notBefore), '-enddate', time(validity.notAfter), '-extensions', extensions);
  args.push(...(byCa ? ['-cert', 'ca.pem', '-keyfile', 'ca.key'] : ['-selfsign', '-keyfile', 'key.pem']));
  openssl(args, dir);
}

/** Runs the OpenSSL CLI in `cwd`, the temp dir with the files its arguments name. */
function openssl(args: string[], cwd: string): void {
  try {
    const env = { ...process.env, OPENSSL_CONF: '/dev/null' };
    execFileSync(OPENSSL, args, { stdio: ['ignore', 'pipe', 'pipe'], env, cwd });
  } catch (err) {
    const e = err as { code?: string; stderr?: Buffer };
    if (e.code === 'ENOENT')
      throw new Error(
        `making certificates needs the OpenSSL 3 CLI (${OPENSSL} not found; Debian: apt-get install openssl)`,
      );
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? String(err)}`);
  }
}

/**
 * RFC 4514 string form of a subject (most specific RDN first, the reverse of the DER order), as registered in
 * `tls_client_auth_subject_dn`: [['O', 'Example'], ['CN', 'rp']] → `CN=rp,O=Example`.
 */
export function subjectDn(subject: Subject): string {
  const escapeValue = (value: string) =>
    value
      .replace(/[\\"+,;<>]/g, (c) => `\\${c}`)
      .replace(/\0/g, '\\00')
      .replace(/^[ #]/, (c) => `\\${c}`)
      .replace(/ $/, '\\ ');
  return [...subject]
    .reverse()
    .map(([type, value]) => `${type}=${escapeValue(value)}`)
    .join(',');
}

// ---------------------------------------------------------------------------------------------------------------
// The local stack's mutual-TLS files (`npm start -- --mtls-port`, `npm run mtls-cert`), in <data-dir>/mtls/:
//   ca.pem, ca-key.pem          the local CA: the HTTPS listener's truststore; `npm run mtls-cert` issues from it
//   server.pem, server-key.pem  the listener's certificate for localhost, 127.0.0.1 and ::1, issued by the local CA
//   truststore/*.pem            further trusted certificates: self-signed client certificates (API Gateway, too,
//                               accepts a self-signed certificate only when it is in the truststore), other CAs
//   clients/                    where `npm run mtls-cert` writes client certificates unless told otherwise
// Private keys are mode 0600. A file that is missing, unreadable, does not match its key or expires within a day is
// made anew (a new CA also means a new server certificate; client certificates of the old CA are then refused).

/** Validity of the local CA (days). */
export const LOCAL_CA_DAYS = 1825;
/** Validity of the local server certificate (days; at most 398 or some TLS clients refuse it). */
export const LOCAL_SERVER_DAYS = 365;
/** Default validity of client certificates from `npm run mtls-cert` (days). */
export const LOCAL_CLIENT_DAYS = 365;
const RENEW_BEFORE_MS = 24 * 60 * 60 * 1000;

export type LocalMtlsFiles = {
  dir: string;
  ca: string;
  caKey: string;
  server: string;
  serverKey: string;
  truststore: string;
  clients: string;
};

export function localMtlsFiles(dataDir: string): LocalMtlsFiles {
  const dir = join(dataDir, 'mtls');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca-key.pem'),
    server: join(dir, 'server.pem'),
    serverKey: join(dir, 'server-key.pem'),
    truststore: join(dir, 'truststore'),
    clients: join(dir, 'clients'),
  };
}

/** A certificate and its private key from PEM files; undefined when either is missing or unreadable, or they do not match. */
export function readIssued(certFile: string, keyFile: string): IssuedCertificate | undefined {
  try {
    const certPem = readFileSync(certFile, 'utf8');
    const keyPem = readFileSync(keyFile, 'utf8');
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(keyPem))) return undefined;
    return { keyPem, certPem, cert };
  } catch {
    return undefined;
  }
}

/** Does the certificate expire (or has it expired) within `withinMs` (default one day)? Not yet valid counts too. */
export function expiresSoon(cert: X509Certificate, withinMs = RENEW_BEFORE_MS, now = Date.now()): boolean {
  return cert.validToDate.getTime() - now < withinMs || cert.validFromDate.getTime() > now + 5 * 60 * 1000;
}

/** Write a certificate (mode 0644) and its key (0600), each by rename so a reader never sees half a file. */
export function writeIssued(issued: IssuedCertificate, certFile: string, keyFile: string): void {
  const put = (file: string, text: string, mode: number) => {
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, text, { mode });
    chmodSync(temp, mode); // the umask may have narrowed it
    renameSync(temp, file);
  };
  put(keyFile, issued.keyPem, 0o600);
  put(certFile, issued.certPem, 0o644);
}

export type TruststoreEntry = { file: string; subject: string; certPem: string };

/** The certificates of <dir>/*.pem (several per file allowed); files that hold no readable certificate are `rejected`. */
export function readTruststore(dir: string): {
  trusted: TruststoreEntry[];
  rejected: { file: string; reason: string }[];
} {
  const trusted: TruststoreEntry[] = [];
  const rejected: { file: string; reason: string }[] = [];
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => n.endsWith('.pem'))
      .sort();
  } catch {
    return { trusted, rejected };
  }
  for (const name of names) {
    const file = join(dir, name);
    try {
      const blocks =
        readFileSync(file, 'utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
      if (blocks.length === 0) throw new Error('no PEM certificate in it');
      for (const certPem of blocks)
        trusted.push({
          file,
          subject: new X509Certificate(certPem).subject.replace(/\n/g, ', '),
          certPem: `${certPem}\n`,
        });
    } catch (err) {
      rejected.push({ file, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  return { trusted, rejected };
}

export type LocalMtls = {
  files: LocalMtlsFiles;
  ca: IssuedCertificate;
  server: IssuedCertificate;
  /** What this call made anew. */
  created: ('ca' | 'server')[];
  /** The truststore dir's certificates, in `ca` after the local CA. */
  trusted: TruststoreEntry[];
  rejected: { file: string; reason: string }[];
  /** The HTTPS listener's truststore (PEM): the local CA, then the truststore dir's certificates. */
  caBundle: string;
};

/**
 * The local CA and server certificate in <data-dir>/mtls/, made on first use and reused afterwards (made anew when
 * missing, unreadable or expiring within a day), plus the truststore dir's certificates.
 */
export function ensureLocalMtls(dataDir: string, options: { caDays?: number; serverDays?: number } = {}): LocalMtls {
  const files = localMtlsFiles(dataDir);
  mkdirSync(files.dir, { recursive: true, mode: 0o700 });
  mkdirSync(files.truststore, { recursive: true });
  const created: LocalMtls['created'] = [];
  let ca = readIssued(files.ca, files.caKey);
  if (!ca || expiresSoon(ca.cert) || !ca.cert.ca) {
    ca = createCa({
      subject: [
        ['O', 'CIBA local'],
        ['CN', 'CIBA local CA'],
      ],
      days: options.caDays ?? LOCAL_CA_DAYS,
    });
    writeIssued(ca, files.ca, files.caKey);
    created.push('ca');
  }
  let server = readIssued(files.server, files.serverKey);
  if (
    !server ||
    expiresSoon(server.cert) ||
    !server.cert.checkIssued(ca.cert) ||
    !server.cert.verify(ca.cert.publicKey)
  ) {
    server = createServerCert(ca, { days: options.serverDays ?? LOCAL_SERVER_DAYS });
    writeIssued(server, files.server, files.serverKey);
    created.push('server');
  }
  const { trusted, rejected } = readTruststore(files.truststore);
  return {
    files,
    ca,
    server,
    created,
    trusted,
    rejected,
    caBundle: [ca.certPem, ...trusted.map((t) => t.certPem)].join(''),
  };
}

/** The local CA of a data dir, to issue client certificates; throws when it is missing, unreadable or expired. */
export function readLocalCa(dataDir: string): IssuedCertificate {
  const files = localMtlsFiles(dataDir);
  const ca = readIssued(files.ca, files.caKey);
  if (!ca) {
    const why = existsSync(files.ca) ? 'is unreadable or does not match ca-key.pem' : 'does not exist yet';
    throw new Error(
      `the local CA ${files.ca} ${why}: start the server once with \`npm start -- --mtls-port <n>\` on this data dir`,
    );
  }
  if (expiresSoon(ca.cert, 0))
    throw new Error(`the local CA ${files.ca} has expired: restart \`npm start -- --mtls-port <n>\` to make a new one`);
  return ca;
}
