// `npm run mtls-cert -- --cn <name>`: a TLS client certificate for the local stack's mutual-TLS listener
// (`npm start -- --mtls-port <n>`, RFC 8705), and what to register for it.
//   --data-dir <dir>   or CIBA_DATA_DIR, as for `npm start` (default .local-data/ in the project): the local CA is
//                      <data-dir>/mtls/ca.pem + ca-key.pem, made by `npm start -- --mtls-port` (local/certs.ts)
//   --cn <name>        the certificate's subject CN (and, unless --client-id, the client_id)
//   --san-dns <name>   a dNSName subject alternative name (repeatable), for tls_client_auth_san_dns
//   --self-signed      a self-signed certificate for self_signed_tls_client_auth instead of one from the local CA; it
//                      is also copied to <data-dir>/mtls/truststore/ (the listener trusts it after a restart) and its
//                      public key is printed as the client's `jwks`
//   --out <dir>        where <cn>.pem and <cn>-key.pem (mode 0600) go (default <data-dir>/mtls/clients/)
//   --client-id <id>, --days <n> (default 365), --mtls-port <n> (or CIBA_MTLS_PORT: the port in the curl example)
// Prints the seed-file client (token_endpoint_auth_method and tls_client_auth_subject_dn in the RFC 4514 form that
// functions/core/mtls.ts matchesTlsClientAuth compares, or jwks) and a curl command.
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  LOCAL_CLIENT_DAYS,
  createClientCert,
  createSelfSignedCert,
  localMtlsFiles,
  readLocalCa,
  subjectDn,
  writeIssued,
  type IssuedCertificate,
  type Subject,
} from '../local/certs.ts';
import { matchesTlsClientAuth } from '../functions/core/mtls.ts';
import { CIBA_GRANT, CLIENT_ID_SYNTAX } from '../functions/core/model.ts';

const HELP = `usage: npm run mtls-cert -- --cn <name> [--data-dir <dir>] [--san-dns <name>]... [--self-signed] [--out <dir>]
                            [--client-id <id>] [--days <n>] [--mtls-port <n>]

Issues a TLS client certificate for the local stack's mutual-TLS listener (\`npm start -- --mtls-port <n>\`) and
prints the client to register in a seed file and a curl command to try it.

  --cn <name>        subject CN of the certificate; also the client_id unless --client-id
  --data-dir <dir>   the server's data dir (env CIBA_DATA_DIR, default .local-data/ in the project), whose local CA
                     (mtls/ca.pem, made by \`npm start -- --mtls-port <n>\`) issues the certificate
  --san-dns <name>   add a DNS subject alternative name (repeatable); register it as tls_client_auth_san_dns instead
                     of the subject DN if you prefer
  --self-signed      self-signed certificate for self_signed_tls_client_auth: also copied to
                     <data-dir>/mtls/truststore/ (restart the server to trust it) and printed as the client's jwks
  --out <dir>        where to write <cn>.pem and <cn>-key.pem (default <data-dir>/mtls/clients/)
  --client-id <id>   client_id to print (default: the CN)
  --days <n>         validity (default ${LOCAL_CLIENT_DAYS})
  --mtls-port <n>    the server's mTLS port, for the curl example (env CIBA_MTLS_PORT)
  -h, --help         this help`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

function main(): void {
  const { values } = parseArgs({
    options: {
      'data-dir': { type: 'string' },
      cn: { type: 'string' },
      'san-dns': { type: 'string', multiple: true },
      'self-signed': { type: 'boolean', default: false },
      out: { type: 'string' },
      'client-id': { type: 'string' },
      days: { type: 'string' },
      'mtls-port': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const cn = values.cn?.trim();
  if (!cn) throw new UsageError('--cn <name> is required');
  const days = Number(values.days ?? LOCAL_CLIENT_DAYS);
  if (!Number.isInteger(days) || days < 1) throw new UsageError(`invalid --days: ${values.days}`);
  const portText = values['mtls-port'] ?? (process.env.CIBA_MTLS_PORT || undefined);
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535))
    throw new UsageError(`invalid --mtls-port: ${portText}`);
  const clientId = values['client-id'] ?? cn;
  if (!CLIENT_ID_SYNTAX.test(clientId))
    throw new UsageError(
      `${JSON.stringify(clientId)} is not a valid client_id (1-128 printable ASCII characters): pass --client-id`,
    );

  const projectDir = fileURLToPath(new URL('../', import.meta.url));
  const dataDir = resolve(values['data-dir'] ?? process.env.CIBA_DATA_DIR ?? resolve(projectDir, '.local-data'));
  const files = localMtlsFiles(dataDir);
  const outDir = resolve(values.out ?? files.clients);
  const base = cn.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
  const certFile = join(outDir, `${base}.pem`);
  const keyFile = join(outDir, `${base}-key.pem`);
  const subject: Subject = [['CN', cn]];
  const san = values['san-dns']?.length ? { dns: values['san-dns'] } : undefined;

  let issued: IssuedCertificate;
  let client: Record<string, unknown>;
  const notes: string[] = [];
  if (values['self-signed']) {
    const self = createSelfSignedCert({ subject, days, ...(san ? { san } : {}) });
    issued = self;
    mkdirSync(outDir, { recursive: true });
    writeIssued(issued, certFile, keyFile);
    mkdirSync(files.truststore, { recursive: true });
    const trusted = join(files.truststore, `${base}.pem`);
    copyFileSync(certFile, trusted);
    client = {
      client_id: clientId,
      token_endpoint_auth_method: 'self_signed_tls_client_auth',
      jwks: { keys: [{ ...self.jwk, kid: base }] },
      tls_client_certificate_bound_access_tokens: true,
    };
    notes.push(`The certificate is now in the listener's truststore (${trusted}): restart \`npm start\` to trust it`);
    notes.push('(API Gateway, too, accepts a self-signed certificate only when its truststore holds it).');
  } else {
    let ca: IssuedCertificate;
    try {
      ca = readLocalCa(dataDir);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    issued = createClientCert(ca, { subject, days, ...(san ? { san } : {}) });
    if (issued.cert.validToDate > ca.cert.validToDate)
      notes.push(`The local CA expires first (${ca.cert.validTo}): the certificate is refused from then on.`);
    mkdirSync(outDir, { recursive: true });
    writeIssued(issued, certFile, keyFile);
    const dn = subjectDn(subject);
    // The form the server compares (RFC 8705 §2.1.2): make sure it matches before telling anyone to register it.
    if (!matchesTlsClientAuth(issued.cert, { tls_client_auth_subject_dn: dn }))
      throw new Error(`internal error: ${dn} does not match the certificate's subject ${issued.cert.subject}`);
    client = {
      client_id: clientId,
      token_endpoint_auth_method: 'tls_client_auth',
      tls_client_auth_subject_dn: dn,
      tls_client_certificate_bound_access_tokens: true,
    };
    if (san)
      notes.push(
        `Instead of tls_client_auth_subject_dn you may register "tls_client_auth_san_dns": ${JSON.stringify(san.dns[0])} (exactly one of them).`,
      );
  }
  client.grant_types = [CIBA_GRANT];
  client.scope = 'openid';
  client.backchannel_token_delivery_mode = 'poll';

  const q = shellQuote;
  const base_url = `https://localhost:${port ?? '<mtls-port>'}`;
  const lines = [
    `${values['self-signed'] ? 'Self-signed client certificate' : 'Client certificate from the local CA'} for ${issued.cert.subject.replace(/\n/g, ', ')} (valid until ${issued.cert.validTo})`,
    `  certificate  ${certFile}`,
    `  private key  ${keyFile}`,
    `  server CA    ${files.ca} (for --cacert: the listener's certificate is issued by it)`,
    '',
    'Register the client: add this to "clients" in a seed file (docs/seed-file.md) and restart with',
    `\`npm start -- --seed <file> --data-dir ${q(dataDir)} --mtls-port ${port ?? '<n>'}\`. The users stay in the data dir, so a seed of`,
    'just {"clients": [ … ]} is enough on a data dir where the demo seed (alice) was loaded before.',
    '',
    JSON.stringify(client, null, 2).replace(/\[\n\s*("[^"\n]*")\n\s*\]/g, '[$1]'),
    '',
    'tls_client_certificate_bound_access_tokens binds access tokens to this certificate (cnf.x5t#S256, RFC 8705 §3);',
    'drop it for plain bearer tokens.',
    ...notes,
    '',
    "Try it (a CIBA request authenticated by the certificate alone; alice is the demo seed's user):",
    `  curl --cert ${q(certFile)} --key ${q(keyFile)} --cacert ${q(files.ca)} \\`,
    `    ${base_url}/bc-authorize -d client_id=${q(clientId)} -d scope=openid -d login_hint=alice`,
    'and redeem the auth_req_id it returns at the mTLS token endpoint, with the same certificate:',
    `  curl --cert ${q(certFile)} --key ${q(keyFile)} --cacert ${q(files.ca)} \\`,
    `    ${base_url}/token -d grant_type=${CIBA_GRANT} -d client_id=${q(clientId)} -d auth_req_id=<auth_req_id>`,
  ];
  console.log(lines.join('\n'));
}

/** A path or word as a POSIX shell reads it literally. */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

try {
  main();
} catch (err) {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof UsageError) console.error(`mtls-cert: ${err.message}`);
  else if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
    console.error(`mtls-cert: ${(err as Error).message}\n\n${HELP}`);
  else console.error('mtls-cert failed:', err instanceof Error ? err.message : err);
  process.exit(1);
}
