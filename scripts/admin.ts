// `npm run admin -- <resource> <verb> [args] [--json]`: the operator's commands (docs/admin.md). It manages the local
// stack started with the same CIBA_DATA_DIR and PORT environment (`npm start`), while it runs: it finds it through
// <data dir>/local-stack.json (local/state-file.ts) and uses the same use cases and store adapters as the handlers,
// against the stack's DynamoDB and SNS, with the stack's own settings.
//
// Output: aligned tables (or `key  value` lines) for people, `--json` one JSON value on stdout. Every change writes
// one audit line (JSON: who, what, when; never a secret) to stderr. Exit status 0, 1 for a failure (no such user
// or device, no stack running), 2 for a usage error; errors are one line on stderr.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { readStateFile, STATE_FILE } from '../local/state-file.ts';

type Flags = { json: boolean; sub?: string; expiresIn?: string; singleUse: boolean };
type Command = {
  usage: string;
  summary: string;
  help: string;
  /** Positional arguments after `<resource> <verb>`. */
  args: string[];
  run(args: string[], flags: Flags): Promise<void>;
};

/** A failure explained in one line; usage ones exit 2. */
class AdminError extends Error {
  override readonly name = 'AdminError';
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

// ---- output -----------------------------------------------------------------------------------------------------

/** Columns padded to their widest cell; an empty table says so. */
function table(headers: string[], rows: string[][]): string {
  if (rows.length === 0) return '(none)';
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

/** `key  value` lines, keys aligned. */
function fields(entries: [string, string][]): string {
  const width = Math.max(...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

function print(flags: Flags, value: unknown, human: string): void {
  console.log(flags.json ? JSON.stringify(value, null, 2) : human);
}

const iso = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

function operator(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** One audit line per change (stderr, JSON): who, what, on what, when; never a code, key or token. */
function audit(action: string, target: Record<string, string>, outcome: 'done' | 'not_found'): void {
  process.stderr.write(
    `${JSON.stringify({ audit: 'ciba-admin', time: new Date().toISOString(), who: operator(), action, ...target, outcome, stack: process.env.ISSUER })}\n`,
  );
}

// ---- commands ---------------------------------------------------------------------------------------------------

async function requireUser(sub: string, enabled = false): Promise<void> {
  const { getUser } = await import('../functions/adapters/store.ts');
  const user = await getUser(sub);
  if (!user) throw new AdminError(`no user ${JSON.stringify(sub)}`);
  if (enabled && user.disabled) {
    throw new AdminError(`user ${JSON.stringify(sub)} is disabled and could not enrol: \`users enable ${sub}\` first`);
  }
}

const COMMANDS: Record<string, Record<string, Command>> = {
  clients: {
    list: {
      usage: 'clients list',
      summary: 'every registered client',
      help: 'Lists the clients: id, name, delivery mode, authentication method, how it was registered (seed or dynamic).',
      args: [],
      async run(_args, flags) {
        const { listClients } = await import('../functions/admin/operations.ts');
        const clients = await listClients();
        print(
          flags,
          clients,
          table(
            ['CLIENT_ID', 'NAME', 'MODE', 'AUTH_METHOD', 'REGISTERED'],
            clients.map((c) => [
              c.client_id,
              c.client_name ?? '',
              c.backchannel_token_delivery_mode,
              c.token_endpoint_auth_method,
              c.registered,
            ]),
          ),
        );
      },
    },
    show: {
      usage: 'clients show <client_id>',
      summary: "a client's metadata (never its secret)",
      help: 'Prints the metadata of the client <client_id> as the registration endpoints return them.',
      args: ['client_id'],
      async run([clientId], flags) {
        const { showClient } = await import('../functions/admin/operations.ts');
        const client = await showClient(clientId!);
        if (!client) throw new AdminError(`no client ${JSON.stringify(clientId)}`);
        print(
          flags,
          client,
          fields(Object.entries(client).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
        );
      },
    },
    add: {
      usage: 'clients add <file.json>',
      summary: 'add or replace clients from a JSON file (seed-file format)',
      help:
        'Reads <file.json>: one client object, an array of them, or {"clients": [...]}, in the seed-file format\n' +
        '(docs/seed-file.md), checked by the same schema (a misspelt field is named). A client_secret is stored hashed,\n' +
        'a client_secret_jwt secret sealed (with the deployed KMS key under --stack).',
      args: ['file.json'],
      async run([file], flags) {
        const parsed = readJsonFile(file!) as unknown;
        const clients = Array.isArray(parsed)
          ? parsed
          : isRecord(parsed) && Array.isArray(parsed.clients)
            ? parsed.clients
            : [parsed];
        const { addClients } = await import('../functions/admin/operations.ts');
        const count = await seedErrors(() => addClients(clients));
        const ids = clients.map((c) => String((c as { client_id?: unknown }).client_id));
        audit('clients.add', { client_ids: ids.join(',') }, 'done');
        print(flags, { clients: ids }, `added ${count} client(s): ${ids.join(', ')}`);
      },
    },
    remove: {
      usage: 'clients remove <client_id>',
      summary: 'remove a client (it can no longer authenticate)',
      help: 'Removes the client <client_id>: its credentials stop working at once.',
      args: ['client_id'],
      async run([clientId], flags) {
        const { removeClient } = await import('../functions/admin/operations.ts');
        const done = await removeClient(clientId!);
        audit('clients.remove', { client_id: clientId! }, done ? 'done' : 'not_found');
        if (!done) throw new AdminError(`no client ${JSON.stringify(clientId)}`);
        print(flags, { client_id: clientId, removed: true }, `removed client ${clientId}`);
      },
    },
  },
  seed: {
    load: {
      usage: 'seed load <file.json>',
      summary: 'load a seed file (clients, users, devices); idempotent',
      help:
        'Loads <file.json> in the seed-file format (docs/seed-file.md): validated whole first (a misspelt field is\n' +
        'named, nothing is half-applied), then written. Loading the same file twice is harmless.',
      args: ['file.json'],
      async run([file], flags) {
        const { loadSeed } = await import('../functions/admin/seed.ts');
        const counts = await seedErrors(() => loadSeed(readJsonFile(file!)));
        audit('seed.load', { file: file! }, 'done');
        print(
          flags,
          counts,
          `loaded ${counts.clients} client(s), ${counts.users} user(s), ${counts.devices} device(s)`,
        );
      },
    },
  },
  'registration-tokens': {
    create: {
      usage: 'registration-tokens create [--expires-in <s>] [--single-use]',
      summary: 'an initial access token for dynamic registration (RFC 7591)',
      help:
        'Prints an initial access token for POST /register (docs/registration.md). It expires after --expires-in\n' +
        'seconds (default 86400); with --single-use only one successful registration can use it. Stored as its\n' +
        'SHA-256 only. With --json: {"token", "expires_at", "single_use"}.',
      args: [],
      async run(_args, flags) {
        const expiresIn = Number(flags.expiresIn ?? 86_400);
        if (!Number.isInteger(expiresIn) || expiresIn < 60 || expiresIn > 31_536_000) {
          throw new AdminError('--expires-in must be whole seconds from 60 to 31536000', 2);
        }
        const { createInitialAccessToken } = await import('../functions/admin/operations.ts');
        const token = await createInitialAccessToken(expiresIn, flags.singleUse);
        audit(
          'registration-tokens.create',
          { expires_at: String(token.expires_at), single_use: String(token.single_use) },
          'done',
        );
        print(
          flags,
          token,
          fields([
            ['token', token.token],
            ['expires_at', `${token.expires_at} (${iso(token.expires_at)})`],
            ['single_use', String(token.single_use)],
          ]),
        );
      },
    },
  },
  requests: {
    list: {
      usage: 'requests list [--sub <sub>]',
      summary: 'pending requests (of one user with --sub)',
      help: 'Lists pending, unexpired authentication requests: request id, user, client, binding message, expiry.',
      args: [],
      async run(_args, flags) {
        const { listRequests } = await import('../functions/admin/operations.ts');
        const requests = (await listRequests(flags.sub)).map((r) => ({
          request_id: r.id,
          sub: r.sub,
          client_id: r.client_id,
          ...(r.binding_message ? { binding_message: r.binding_message } : {}),
          mode: r.mode,
          expires_at: Math.floor(r.expires_at / 1000),
        }));
        print(
          flags,
          requests,
          table(
            ['REQUEST_ID', 'SUB', 'CLIENT_ID', 'MODE', 'EXPIRES', 'BINDING_MESSAGE'],
            requests.map((r) => [r.request_id, r.sub, r.client_id, r.mode, iso(r.expires_at), r.binding_message ?? '']),
          ),
        );
      },
    },
    cancel: {
      usage: 'requests cancel <request_id>',
      summary: 'cancel a pending request (access_denied; ping/push clients are told)',
      help:
        'Cancels the pending request <request_id> as a denial: a poll client gets access_denied, a ping or push\n' +
        'client is notified of the denial, the user can no longer approve it.',
      args: ['request_id'],
      async run([requestId], flags) {
        const { cancelRequest } = await import('../functions/admin/operations.ts');
        const outcome = await cancelRequest(requestId!);
        audit('requests.cancel', { request_id: requestId! }, outcome === 'cancelled' ? 'done' : 'not_found');
        if (outcome !== 'cancelled') throw new AdminError(`request ${requestId}: ${outcome.replace('_', ' ')}`);
        print(flags, { request_id: requestId, cancelled: true }, `cancelled request ${requestId}`);
      },
    },
  },
  devices: {
    code: {
      usage: 'devices code <sub>',
      summary: 'a one-time code enrolling a new device for the user',
      help:
        'Prints a one-time enrolment code for the user <sub>: the new device sends it to POST /device/enrol, or the\n' +
        'person opens enrol_url on it. Single use, valid CIBA_ENROLMENT_CODE_TTL seconds (default 600); only its\n' +
        'SHA-256 is stored. With --json: {"code", "expires_at" (epoch seconds), "enrol_url"}.',
      args: ['sub'],
      async run([sub], flags) {
        await requireUser(sub!, true);
        const { issueEnrolmentCode } = await import('../functions/usecases/enrolment.ts');
        const code = await issueEnrolmentCode(sub!, `admin:${operator()}`);
        audit('devices.code', { sub: sub! }, 'done');
        print(
          flags,
          code,
          fields([
            ['code', code.code],
            ['expires_at', `${code.expires_at} (${iso(code.expires_at)})`],
            ['enrol_url', code.enrol_url],
          ]),
        );
      },
    },
    list: {
      usage: 'devices list <sub>',
      summary: "the user's devices",
      help:
        'Lists the authentication devices of the user <sub>, oldest first: device_id, name, when it was enrolled\n' +
        '(created_at, epoch seconds) and how it is reached (channel: webpush, sns/<platform> or none).\n' +
        'With --json: {"sub", "devices": [{"device_id", "name", "created_at", "channel"}]}.',
      args: ['sub'],
      async run([sub], flags) {
        await requireUser(sub!);
        const { listDevices } = await import('../functions/usecases/devices.ts');
        const devices = (await listDevices(sub!)).map((d) => ({
          device_id: d.device_id,
          ...(d.name !== undefined ? { name: d.name } : {}),
          created_at: Math.floor((d.created_at ?? 0) / 1000),
          channel: !d.channel ? 'none' : d.channel.type === 'sns' ? `sns/${d.channel.platform}` : d.channel.type,
        }));
        print(
          flags,
          { sub, devices },
          table(
            ['DEVICE_ID', 'NAME', 'CREATED', 'CHANNEL'],
            devices.map((d) => [d.device_id, d.name ?? '', d.created_at ? iso(d.created_at) : '', d.channel]),
          ),
        );
      },
    },
    remove: {
      usage: 'devices remove <device_id>',
      summary: 'remove a device (its assertions get 401 from then on)',
      help:
        'Removes the device <device_id>, whoever its user is: its device assertions get 401 from then on, it is no\n' +
        'longer notified, and its place under the device cap is free again. With --json: {"device_id", "sub"}.',
      args: ['device_id'],
      async run([deviceId], flags) {
        const { removeDeviceById } = await import('../functions/usecases/devices.ts');
        const removed = await removeDeviceById(deviceId!);
        audit(
          'devices.remove',
          { device_id: deviceId!, ...(removed ? { sub: removed.sub } : {}) },
          removed ? 'done' : 'not_found',
        );
        if (!removed) throw new AdminError(`no device ${JSON.stringify(deviceId)}`);
        print(flags, { device_id: deviceId, sub: removed.sub }, `removed device ${deviceId} of ${removed.sub}`);
      },
    },
  },
  users: {
    list: {
      usage: 'users list',
      summary: 'every user',
      help: 'Lists the users: sub, e-mail, phone number, name, and whether they are disabled.',
      args: [],
      async run(_args, flags) {
        const { listUsers } = await import('../functions/admin/operations.ts');
        const users = await listUsers();
        print(
          flags,
          users,
          table(
            ['SUB', 'EMAIL', 'PHONE', 'NAME', 'DISABLED'],
            users.map((u) => [u.sub, u.email ?? '', u.phone_number ?? '', u.name ?? '', u.disabled ? 'yes' : '']),
          ),
        );
      },
    },
    show: {
      usage: 'users show <sub>',
      summary: "a user's profile and devices",
      help: 'Prints the profile of the user <sub> (never the user code, only whether one is set) and their devices.',
      args: ['sub'],
      async run([sub], flags) {
        const { showUser } = await import('../functions/admin/operations.ts');
        const user = await showUser(sub!);
        if (!user) throw new AdminError(`no user ${JSON.stringify(sub)}`);
        print(
          flags,
          user,
          fields(Object.entries(user).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])),
        );
      },
    },
    add: {
      usage: 'users add <file.json>',
      summary: 'add or update users (with devices) from a JSON file (seed-file format)',
      help: 'Reads <file.json>: one user object, an array, or {"users": [...]}, in the seed-file format.',
      args: ['file.json'],
      async run([file], flags) {
        const parsed = readJsonFile(file!) as unknown;
        const users = Array.isArray(parsed)
          ? parsed
          : isRecord(parsed) && Array.isArray(parsed.users)
            ? parsed.users
            : [parsed];
        const { addUsers } = await import('../functions/admin/operations.ts');
        const count = await seedErrors(() => addUsers(users));
        const subs = users.map((u) => String((u as { sub?: unknown }).sub));
        audit('users.add', { subs: subs.join(',') }, 'done');
        print(flags, { users: subs }, `added ${count} user(s): ${subs.join(', ')}`);
      },
    },
    remove: {
      usage: 'users remove <sub>',
      summary: 'remove a user with their devices and refresh tokens',
      help:
        'Removes the user <sub>: profile, login identifiers, devices (their assertions get 401) and refresh tokens.\n' +
        'Their pending requests can no longer be approved.',
      args: ['sub'],
      async run([sub], flags) {
        const { removeUser } = await import('../functions/admin/operations.ts');
        const removed = await removeUser(sub!);
        audit('users.remove', { sub: sub! }, removed ? 'done' : 'not_found');
        if (!removed) throw new AdminError(`no user ${JSON.stringify(sub)}`);
        print(
          flags,
          { sub, ...removed },
          `removed user ${sub} (${removed.devices} device(s), ${removed.refreshTokens} refresh token(s))`,
        );
      },
    },
    disable: {
      usage: 'users disable <sub>',
      summary: 'refuse the user everywhere until enabled again',
      help:
        'Disables the user <sub>: the backchannel endpoint refuses them (403 access_denied, nothing notified), their\n' +
        "devices' assertions get 401 (so their pending requests can no longer be approved), and the token endpoint\n" +
        'gives no tokens for them (nor refreshes). With --json: {"sub", "disabled": true}.',
      args: ['sub'],
      run: ([sub], flags) => setDisabled(sub!, true, flags),
    },
    enable: {
      usage: 'users enable <sub>',
      summary: 'undo `users disable`',
      help: 'Enables the user <sub> again. With --json: {"sub", "disabled": false}.',
      args: ['sub'],
      run: ([sub], flags) => setDisabled(sub!, false, flags),
    },
  },
};

async function setDisabled(sub: string, disabled: boolean, flags: Flags): Promise<void> {
  const { setUserDisabled } = await import('../functions/adapters/store.ts');
  const done = await setUserDisabled(sub, disabled);
  audit(disabled ? 'users.disable' : 'users.enable', { sub }, done ? 'done' : 'not_found');
  if (!done) throw new AdminError(`no user ${JSON.stringify(sub)}`);
  print(flags, { sub, disabled }, `user ${sub} ${disabled ? 'disabled' : 'enabled'}`);
}

const OPTIONS_HELP = `Options:
  --json            print one JSON value
  --stack <name>    manage a deployed stack (CloudFormation outputs + your AWS credentials and region)
  --data-dir <dir>  the local stack's data dir (env CIBA_DATA_DIR; default .local-data/ in the project)
  -h, --help        help (also after a command: \`npm run admin -- devices code --help\`)`;

function mainHelp(): string {
  const commands = Object.values(COMMANDS).flatMap((verbs) => Object.values(verbs));
  const width = Math.max(...commands.map((c) => c.usage.length));
  return `usage: npm run admin -- <resource> <verb> [args] [--json]

Manages the local stack started with the same CIBA_DATA_DIR and PORT environment (\`npm start\`), while it runs,
or with --stack <name> a deployed one.

Commands:
${commands.map((c) => `  ${c.usage.padEnd(width)}  ${c.summary}`).join('\n')}

${OPTIONS_HELP}

Exit status: 0 done, 1 failed (e.g. no such user, no local stack running), 2 usage error. Changes are audited: one
JSON line on stderr each.`;
}

const commandHelp = (c: Command) => `usage: npm run admin -- ${c.usage} [--json]\n\n${c.help}\n\n${OPTIONS_HELP}`;

function isRecord(v: unknown): v is Record<string, unknown> {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new AdminError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new AdminError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A seed-format problem (a misspelt field, a wrong type, a clash) is the operator's to fix: one line, exit 1. */
async function seedErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error && e.name === 'SeedError') throw new AdminError(e.message);
    throw e;
  }
}

// ---- a deployed stack ----------------------------------------------------------------------------------------------

/**
 * Points this process at a deployed stack: its CloudFormation outputs give the table, the issuer and the sealing key;
 * the caller's AWS credentials and region do the rest (the same SDK clients the functions use).
 */
async function connectToStack(stackName: string): Promise<void> {
  const { CloudFormationClient, DescribeStacksCommand } = await import('@aws-sdk/client-cloudformation');
  if (!process.env.AWS_REGION && !process.env.AWS_DEFAULT_REGION) {
    throw new AdminError('--stack needs an AWS region: set AWS_REGION (and your AWS credentials)');
  }
  let outputs: Record<string, string>;
  try {
    const out = await new CloudFormationClient({}).send(new DescribeStacksCommand({ StackName: stackName }));
    outputs = Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']));
  } catch (e) {
    throw new AdminError(`cannot read the stack ${stackName}: ${(e as Error).name}: ${(e as Error).message}`);
  }
  for (const needed of ['TableName', 'IssuerUrl', 'SealingKeyId']) {
    if (!outputs[needed]) throw new AdminError(`the stack ${stackName} has no ${needed} output: is it a CIBA stack?`);
  }
  Object.assign(process.env, {
    ISSUER: outputs.IssuerUrl,
    TABLE_NAME: outputs.TableName,
    KEYS_SOURCE: 'kms',
    KMS_SEAL_KEY_ID: outputs.SealingKeyId,
    // Signing keys are not used by the admin commands; the settings require ids.
    KMS_RSA_KEY_ID: outputs.SealingKeyId,
    KMS_EC_KEY_ID: outputs.SealingKeyId,
    ...(outputs.DeviceTopicArn ? { DEVICE_TOPIC_ARN: outputs.DeviceTopicArn } : {}),
    ...(outputs.StateMachineArn ? { STATE_MACHINE_ARN: outputs.StateMachineArn } : {}),
    LOG_LEVEL: 'warn',
    CIBA_METRICS: 'off',
  });
}

// ---- the local stack --------------------------------------------------------------------------------------------

/** Points this process at the running stack of the data dir: its DynamoDB, SNS and settings. */
function connect(dataDirOption: string | undefined): void {
  const projectDir = fileURLToPath(new URL('../', import.meta.url));
  const dataDir = resolve(dataDirOption ?? process.env.CIBA_DATA_DIR ?? resolve(projectDir, '.local-data'));
  const state = readStateFile(dataDir);
  if (!state) {
    throw new AdminError(
      `no local stack is running on the data dir ${dataDir} (no live ${STATE_FILE}): start it with \`npm start\` ` +
        'with the same CIBA_DATA_DIR, or pass --data-dir',
    );
  }
  const port = process.env.PORT;
  if (port && Number(port) !== state.port) {
    throw new AdminError(
      `the local stack on ${dataDir} listens on port ${state.port}, not PORT=${port}: unset PORT or use that stack's data dir`,
    );
  }
  Object.assign(process.env, state.env, {
    ISSUER: state.issuer,
    TABLE_NAME: state.tableName,
    CIBA_LOCAL: 'true',
    KEYS_SOURCE: 'file',
    KEYS_FILE: state.keysFile,
    SEAL_KEY_FILE: state.sealKeyFile,
    AWS_REGION: state.region,
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_ENDPOINT_URL_DYNAMODB: state.dynamodbEndpoint,
    AWS_ENDPOINT_URL_SNS: state.awsEndpoint,
    AWS_ENDPOINT_URL_SFN: state.awsEndpoint,
    // Handler logs at info would go to stdout, where --json prints its one value; warnings go to stderr.
    LOG_LEVEL: 'warn',
    CIBA_METRICS: 'off',
  });
  delete process.env.AWS_PROFILE;
  delete process.env.AWS_SESSION_TOKEN;
}

const OPTIONS = {
  json: { type: 'boolean', default: false },
  sub: { type: 'string' },
  'expires-in': { type: 'string' },
  'single-use': { type: 'boolean', default: false },
  stack: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

async function main(argv: string[]): Promise<void> {
  const parse = () => parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (e) {
    throw new AdminError(`${(e as Error).message}\n\n${mainHelp()}`, 2);
  }
  const { values, positionals } = parsed;
  const [resource, verb, ...args] = positionals;
  if (!resource) {
    if (values.help) return void console.log(mainHelp());
    throw new AdminError(`missing <resource> <verb>\n\n${mainHelp()}`, 2);
  }
  const verbs = COMMANDS[resource];
  if (!verbs || !Object.hasOwn(COMMANDS, resource)) {
    throw new AdminError(`unknown resource ${JSON.stringify(resource)}: use ${Object.keys(COMMANDS).join(', ')}`, 2);
  }
  const command = verb && Object.hasOwn(verbs, verb) ? verbs[verb] : undefined;
  if (!command) {
    if (values.help && !verb) return void console.log(mainHelp());
    const known = Object.values(verbs).map((c) => c.usage);
    throw new AdminError(
      `${verb ? `unknown command ${JSON.stringify(`${resource} ${verb}`)}` : `missing verb for ${resource}`}: use ${known.join(' | ')}`,
      2,
    );
  }
  if (values.help) return void console.log(commandHelp(command));
  if (args.length !== command.args.length) {
    throw new AdminError(
      `${command.usage}: expected ${command.args.map((a) => `<${a}>`).join(' ')}, got ${args.length} argument(s)\n\n` +
        commandHelp(command),
      2,
    );
  }
  if (values.stack) await connectToStack(values.stack);
  else connect(values['data-dir']);
  try {
    await command.run(args, {
      json: values.json ?? false,
      ...(values.sub !== undefined ? { sub: values.sub } : {}),
      ...(values['expires-in'] !== undefined ? { expiresIn: values['expires-in'] } : {}),
      singleUse: values['single-use'] ?? false,
    });
  } catch (e) {
    if (e instanceof AdminError) throw e;
    const aws = e as { $metadata?: unknown; code?: string; name?: string; message?: string };
    if (aws.$metadata !== undefined || aws.code === 'ECONNREFUSED' || aws.name === 'TimeoutError') {
      throw new AdminError(
        `cannot reach the local stack (${aws.name ?? 'error'}: ${aws.message}): is it still running?`,
      );
    }
    throw e;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof AdminError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  console.error(`npm run admin: ${message}`);
  process.exitCode = e instanceof AdminError ? e.exitCode : 1;
});
