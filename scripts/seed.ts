// `npm run seed -- --table <TableName> --issuer <IssuerUrl> [--seal-key-id <SealingKeyId>] [--region <r>] seed.json`:
// load a seed file (docs/seed-file.md) into a deployed table with your AWS credentials. The values are the stack's
// outputs (TableName, IssuerUrl, SealingKeyId). Idempotent.
//
// client_secret_jwt secrets are kept sealed, not hashed (HS256 needs the secret itself): they are sealed exactly as
// the deployed functions seal, by envelope encryption under the stack's KMS sealing key with the encryption context
// purpose=ciba-sealing (functions/adapters/sealer.ts), so the functions can open them. Your credentials need
// kms:GenerateDataKey on that key (and dynamodb:GetItem/PutItem on the table).
//
// Failures (no region, no credentials, no such table or key, an unreadable or invalid seed file) end with one line
// on stderr and exit status 1 (2 for usage errors), never with a stack trace.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { AwsCall } from '../functions/adapters/aws.ts';

const USAGE = `usage: npm run seed -- --table <TableName> --issuer <IssuerUrl> [--seal-key-id <SealingKeyId>]
                      [--region <region>] <seed.json>

Loads a seed file (clients, users, devices; docs/seed-file.md) into the deployed table, with the AWS credentials
of your environment (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO, …). Idempotent.
The values are the stack's outputs (cdk deploy prints them):

  --table <name>      TableName
  --issuer <url>      IssuerUrl
  --seal-key-id <id>  SealingKeyId: the KMS key that seals client_secret_jwt secrets, as the deployed functions do
                      (needed when the seed has client_secret_jwt clients)
  --region <region>   the stack's region (default: AWS_REGION, else your profile's region)
  -h, --help          this help`;

/** A failure explained in one line; `usage` ones exit 2. */
class SeedCliError extends Error {
  override readonly name = 'SeedCliError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

type Args = { table: string; issuer: string; sealKeyId?: string; region?: string; file: string };

/** The command line parsed by node:util's parseArgs; one it rejects is a usage error. */
function parseCommandLine(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        table: { type: 'string' },
        issuer: { type: 'string' },
        'seal-key-id': { type: 'string' },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new SeedCliError(`${(e as Error).message}\n\n${USAGE}`, 2);
  }
}

function readArgs(argv: string[]): Args | 'help' {
  const { values, positionals } = parseCommandLine(argv);
  if (values.help) return 'help';
  const missing = [!values.table && '--table', !values.issuer && '--issuer', positionals.length !== 1 && '<seed.json>'];
  const absent = missing.filter((m): m is string => typeof m === 'string');
  if (absent.length) throw new SeedCliError(`missing ${absent.join(', ')}\n\n${USAGE}`, 2);
  if (!/^https:\/\/[^/?#]+/.test(values.issuer!)) {
    throw new SeedCliError(`--issuer must be the stack's IssuerUrl output (https://…), got ${values.issuer}`, 2);
  }
  return {
    table: values.table!,
    issuer: values.issuer!,
    file: positionals[0]!,
    ...(values['seal-key-id'] ? { sealKeyId: values['seal-key-id'] } : {}),
    ...(values.region ? { region: values.region } : {}),
  };
}

function readSeedFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const reasons: Record<string, string> = {
      ENOENT: 'no such file',
      EACCES: 'permission denied',
      EISDIR: 'it is a directory',
    };
    const why = reasons[code ?? ''] ?? (e as Error).message;
    throw new SeedCliError(`cannot read the seed file ${file}: ${why}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new SeedCliError(`the seed file ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The client_ids of the seed's client_secret_jwt clients: their secrets are sealed, so they need the KMS key. */
function sealedClientIds(seed: unknown): string[] {
  const clients = (seed as { clients?: unknown } | null)?.clients;
  if (!Array.isArray(clients)) return [];
  const isObject = (c: unknown): c is Record<string, unknown> => !!c && typeof c === 'object';
  return clients
    .filter(isObject)
    .filter((c) => c.token_endpoint_auth_method === 'client_secret_jwt')
    .map((c) => String(c.client_id));
}

/**
 * The functions' configuration for seeding a deployed table: the KMS sealing key (never a local key file, which the
 * deployed functions could not open). Seeding signs nothing; the signing key ids are required by the schema only.
 */
function seedEnvironment(args: Pick<Args, 'table' | 'issuer' | 'sealKeyId'>): Record<string, string> {
  return {
    TABLE_NAME: args.table,
    ISSUER: args.issuer,
    KEYS_SOURCE: 'kms',
    KMS_RSA_KEY_ID: 'unused-by-seeding',
    KMS_EC_KEY_ID: 'unused-by-seeding',
    // Without client_secret_jwt clients nothing is sealed and the key is never used.
    KMS_SEAL_KEY_ID: args.sealKeyId ?? 'unused-no-client-secret-jwt-clients',
  };
}

/** The region and credentials the AWS SDK will use, checked before anything is read or written. */
async function awsPreflight(): Promise<string> {
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const probe = new DynamoDBClient({});
  try {
    let region: string;
    try {
      region = await probe.config.region();
    } catch {
      throw new SeedCliError(
        "no AWS region: pass --region <the stack's region> or set AWS_REGION (or a region in your AWS profile)",
      );
    }
    try {
      await probe.config.credentials();
    } catch (e) {
      throw new SeedCliError(
        `no AWS credentials (${(e as Error).message}): set AWS_PROFILE (after \`aws sso login\` if it uses SSO) or ` +
          'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
      );
    }
    return region;
  } finally {
    probe.destroy();
  }
}

/** One line for an error of an AWS call during loading. */
function explainAwsError(e: Error, call: AwsCall | undefined, args: Args, region: string): string {
  const what = `${e.name}: ${e.message}`;
  if (call?.service === 'KMS') {
    return (
      `cannot seal the client_secret_jwt secrets with the KMS key ${args.sealKeyId} in ${region} ` +
      `(${call.operation}): ${what}. Is it the stack's SealingKeyId output, and may you use it (kms:GenerateDataKey)?`
    );
  }
  if (e.name === 'ResourceNotFoundException') {
    return `table ${args.table} not found in ${region}: use the stack's TableName output and its region (--region)`;
  }
  return `${call ? `${call.service} ${call.operation} on table ${args.table} in ${region} failed: ` : ''}${what}`;
}

async function main(argv: string[]): Promise<void> {
  const args = readArgs(argv);
  if (args === 'help') {
    console.log(USAGE);
    return;
  }
  const seed = readSeedFile(args.file);
  const sealed = sealedClientIds(seed);
  if (sealed.length && !args.sealKeyId) {
    throw new SeedCliError(
      `the seed has client_secret_jwt clients (${sealed.join(', ')}), whose secrets are sealed with the stack's KMS ` +
        "sealing key: pass --seal-key-id <the stack's SealingKeyId output>",
      2,
    );
  }
  if (args.region) process.env.AWS_REGION = args.region;
  const region = await awsPreflight();

  // The loader reads its configuration from the environment on first use: the deployed table, the KMS sealing key.
  delete process.env.CIBA_LOCAL;
  Object.assign(process.env, seedEnvironment(args));
  const { setAwsCallObserver } = await import('../functions/adapters/aws.ts');
  let failed: AwsCall | undefined;
  setAwsCallObserver((call) => {
    if (!call.ok) failed ??= call;
  });
  const { loadSeed, SeedError } = await import('../functions/admin/seed.ts');
  let counts: Awaited<ReturnType<typeof loadSeed>>;
  try {
    counts = await loadSeed(seed);
  } catch (e) {
    if (e instanceof SeedError) throw new SeedCliError(`invalid seed in ${args.file}: ${e.message}`);
    if (e instanceof Error && (failed || '$metadata' in e)) {
      throw new SeedCliError(explainAwsError(e, failed, args, region));
    }
    throw e;
  }
  const { clients, users, devices } = counts;
  console.log(`seeded ${clients} clients, ${users} users, ${devices} devices into ${args.table} (${region})`);
  if (sealed.length) {
    console.log(`client_secret_jwt secrets of ${sealed.join(', ')} sealed with the KMS key ${args.sealKeyId}`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof SeedCliError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  console.error(`npm run seed: ${message}`);
  process.exitCode = e instanceof SeedCliError ? e.exitCode : 1;
});
