// `npm run admin -- <resource> <verb> [args] [--json]`: the operator's commands (docs/admin.md). It manages the local
// stack started with the same CIBA_DATA_DIR and PORT environment (`npm start`), while it runs: it finds it through
// <data dir>/local-stack.json (local/state-file.ts) and uses the same use cases and store adapters as the handlers,
// against the stack's DynamoDB and SNS, with the stack's own settings. `npm run seed -- …` is `seed load` (the npm
// script runs this CLI), which can also load straight into a deployed table (--table, --issuer, --seal-key-id).
//
// Output: aligned tables (or `key  value` lines) for people, `--json` one JSON value on stdout. Every change writes
// one audit line (JSON: who, what, when; never a secret) to stderr. Exit status 0, 1 for a failure (no such user
// or device, no stack running), 2 for a usage error; errors are one line on stderr.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCliArgs } from './cli-args.ts';
import { readStateFile, STATE_FILE } from '../local/state-file.ts';
import type { AwsCall } from '../functions/adapters/aws.ts';
import { SETTINGS, type Setting } from '../functions/settings.ts';

type Flags = {
  json: boolean;
  sub?: string;
  expiresIn?: string;
  singleUse: boolean;
  all: boolean;
  /** How the CLI reached the stack: the local one, a deployed one by --stack, or a table named by --table. */
  target: 'local' | 'stack' | 'table';
  table?: string;
  region?: string;
  sealKeyId?: string;
};
type Command = {
  usage: string;
  summary: string;
  help: string;
  /** Positional arguments after `<resource> <verb>`; with `variadic`, the last one may repeat (or be absent). */
  args: string[];
  variadic?: true;
  /** Options only this command takes (beyond --json, --stack, --data-dir, --help). */
  options?: readonly (keyof typeof OPTIONS)[];
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
function audit(action: string, target: Record<string, string>, outcome: 'done' | 'not_found' | 'failed'): void {
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
      usage:
        'seed load <file.json> [--table <TableName> --issuer <IssuerUrl> [--seal-key-id <SealingKeyId>] [--region <region>]]',
      summary: 'load a seed file (clients, users, devices); idempotent (also `npm run seed -- <file.json>`)',
      help:
        'Loads <file.json> in the seed-file format (docs/seed-file.md): validated whole first (a misspelt field is\n' +
        'named, nothing is half-applied), then written. Loading the same file twice is harmless. `npm run seed -- …`\n' +
        'runs this command.\n\n' +
        'Where: the local stack (default), a deployed stack found by --stack <name>, or a deployed table named\n' +
        'directly with the stack outputs, using the AWS credentials and region of your environment:\n' +
        '  --table <name>      TableName\n' +
        '  --issuer <url>      IssuerUrl (https://…)\n' +
        '  --seal-key-id <id>  SealingKeyId: the KMS key that seals client_secret_jwt secrets as the deployed functions\n' +
        '                      do (needed when the seed has client_secret_jwt clients; --stack finds it itself)\n' +
        "  --region <region>   the stack's region (default: AWS_REGION, else your profile's region)\n" +
        'Your credentials need dynamodb:GetItem, PutItem and UpdateItem on the table (and kms:GenerateDataKey on the\n' +
        'sealing key for client_secret_jwt clients).',
      args: ['file.json'],
      options: ['table', 'issuer', 'seal-key-id', 'region'],
      async run([file], flags) {
        const seed = readJsonFile(file!, 'the seed file');
        const sealed = sealedClientIds(seed);
        if (flags.target === 'table' && sealed.length > 0 && !flags.sealKeyId) {
          throw new AdminError(
            `the seed has client_secret_jwt clients (${sealed.join(', ')}), whose secrets are sealed with the stack's ` +
              "KMS sealing key: pass --seal-key-id <the stack's SealingKeyId output>",
            2,
          );
        }
        const { loadSeed } = await import('../functions/admin/seed.ts');
        const counts = await seedErrors(() => loadSeed(seed));
        audit('seed.load', { file: file!, ...(flags.table ? { table: flags.table } : {}) }, 'done');
        const into = flags.target === 'table' ? ` into ${flags.table} (${flags.region})` : '';
        const sealedLine =
          sealed.length > 0 && flags.target !== 'local'
            ? `\nclient_secret_jwt secrets of ${sealed.join(', ')} sealed with the KMS key ${process.env.KMS_SEAL_KEY_ID}`
            : '';
        print(
          flags,
          counts,
          `loaded ${counts.clients} client(s), ${counts.users} user(s), ${counts.devices} device(s)${into}${sealedLine}`,
        );
      },
    },
  },
  'dead-letters': {
    list: {
      usage: 'dead-letters list',
      summary: 'ping/push notifications no client accepted (the dead-letter queue); consumes nothing',
      help:
        'Lists the dead-letter queue: one line per notification a ping or push client never accepted (its endpoint\n' +
        'rejected it, or failed until the delivery window closed): request id, client, mode, error\n' +
        '(Delivery.Rejected or Delivery.Exhausted), cause and age. The messages stay in the queue (they are received\n' +
        'and made visible again at once). With --json: [{"request_id", "client_id", "mode", "error", "cause",\n' +
        '"attempts", "execution", "at", "age_seconds", "message_id"}]. No dead letter carries a secret.',
      args: [],
      async run(_args, flags) {
        requireDeadLetterQueue(flags);
        const { listDeadLetters } = await import('../functions/admin/dead-letters.ts');
        const letters = await listDeadLetters();
        print(
          flags,
          letters,
          table(
            ['REQUEST_ID', 'CLIENT', 'MODE', 'ERROR', 'AGE', 'CAUSE'],
            letters.map((l) => [
              l.request_id,
              l.client_id,
              l.mode,
              l.error,
              l.age_seconds !== undefined ? age(l.age_seconds) : '',
              l.cause,
            ]),
          ),
        );
      },
    },
    redrive: {
      usage: 'dead-letters redrive <request_id>… | --all',
      summary: "deliver dead-lettered notifications again, once the client's endpoint is fixed",
      help:
        'For each request (or every one in the queue with --all): reopens its delivery (only a dead-lettered request:\n' +
        'its delivery failed for good and its sealed secrets are kept, for 14 days), redrives its execution (Step\n' +
        'Functions re-runs the Deliver state with fresh retries and a new delivery window, under the same execution\n' +
        'ARN; its redrive count goes up), then deletes its dead letters. A push whose tokens have expired meanwhile\n' +
        'gets a fresh token set (the earlier refresh token is revoked). A request that cannot be redriven (no dead\n' +
        'letter, its row gone after 14 days, its execution not redrivable) is reported and its dead letter kept;\n' +
        'the others go on (exit status 1 if any failed). With --json: [{"request_id", "outcome", …}].',
      args: ['request_id'],
      variadic: true,
      options: ['all'],
      async run(ids, flags) {
        if (flags.all === ids.length > 0) {
          throw new AdminError(
            `dead-letters redrive: ${flags.all ? 'name request ids or --all, not both' : 'name the request ids to redrive, or --all'}`,
            2,
          );
        }
        requireDeadLetterQueue(flags);
        const { redriveDeadLetters } = await import('../functions/admin/dead-letters.ts');
        const results = await redriveDeadLetters(flags.all ? 'all' : ids);
        for (const r of results) {
          const done = r.outcome === 'redriven' || r.outcome === 'already_delivered';
          const missing = r.outcome === 'no_dead_letter' || r.outcome === 'gone';
          audit('dead-letters.redrive', { request_id: r.request_id }, done ? 'done' : missing ? 'not_found' : 'failed');
        }
        const failed = results.flatMap((r) => ('error' in r ? [r] : []));
        const lines = results.flatMap((r) =>
          r.outcome === 'redriven'
            ? [`redrove ${r.request_id} (redrive ${r.redrive_count ?? '?'}; execution ${r.execution})`]
            : r.outcome === 'already_delivered'
              ? [`${r.request_id} was delivered already: its dead letter removed`]
              : [],
        );
        if (flags.json) console.log(JSON.stringify(results, null, 2));
        else if (lines.length > 0 || failed.length === 0)
          console.log(lines.length > 0 ? lines.join('\n') : 'no dead letters');
        if (failed.length === 1) throw new AdminError(`request ${failed[0]!.request_id}: ${failed[0]!.error}`);
        if (failed.length > 1) {
          for (const f of failed) console.error(`${PROGRAM}: request ${f.request_id}: ${f.error}`);
          throw new AdminError(`${failed.length} of ${results.length} request(s) not redriven`);
        }
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
        'Their pending requests are denied (ping and push clients are told), their approvals not yet redeemed withdrawn.',
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
        "devices' assertions get 401, their pending requests are held (none can be approved until enabled again), and\n" +
        'the token endpoint gives no tokens for them (nor refreshes). With --json: {"sub", "disabled": true}.',
      args: ['sub'],
      run: ([sub], flags) => setDisabled(sub!, true, flags),
    },
    enable: {
      usage: 'users enable <sub>',
      summary: 'undo `users disable`',
      help:
        'Enables the user <sub> again; their held requests can be approved (unless expired meanwhile).\n' +
        'With --json: {"sub", "disabled": false}.',
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

function readJsonFile(file: string, what = 'the file'): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const reasons: Record<string, string> = {
      ENOENT: 'no such file',
      EACCES: 'permission denied',
      EISDIR: 'it is a directory',
    };
    throw new AdminError(`cannot read ${what} ${file}: ${reasons[code] ?? (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new AdminError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
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

/** `3d 4h`, `5h 2m`, `7m 30s`, `12s`: how long ago, to the two largest units. */
function age(seconds: number): string {
  const units: [string, number][] = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  const parts: string[] = [];
  let rest = seconds;
  for (const [unit, size] of units) {
    const n = Math.floor(rest / size);
    if (n > 0 || (unit === 's' && parts.length === 0)) parts.push(`${n}${unit}`);
    rest -= n * size;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** The client_ids of a seed's client_secret_jwt clients: their secrets are sealed, so they need the sealing key. */
function sealedClientIds(seed: unknown): string[] {
  const clients = isRecord(seed) ? seed.clients : undefined;
  if (!Array.isArray(clients)) return [];
  return clients
    .filter(isRecord)
    .filter((c) => c.token_endpoint_auth_method === 'client_secret_jwt')
    .map((c) => String(c.client_id));
}

function requireDeadLetterQueue(flags: Flags): void {
  if (process.env.DELIVERY_DLQ_URL) return;
  throw new AdminError(
    flags.target === 'stack'
      ? 'the stack has no DeliveryDeadLetterQueueUrl output: is it a CIBA stack?'
      : 'the local stack has no dead-letter queue in its settings (DELIVERY_DLQ_URL): restart it with this version',
  );
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
  // The settings the deployed functions run with (the mTLS base URL, device cap, code lifetime, request lifetimes…),
  // so a command decides as the server does. Only operator settings; anything else in the output is ignored.
  Object.assign(process.env, deployedSettings(stackName, outputs.ServerSettings));
  Object.assign(process.env, {
    ISSUER: outputs.IssuerUrl,
    TABLE_NAME: outputs.TableName,
    KEYS_SOURCE: 'kms',
    KMS_SEAL_KEY_ID: outputs.SealingKeyId,
    // Signing keys are not used by the admin commands; the settings require ids.
    KMS_RSA_KEY_ID: outputs.SealingKeyId,
    KMS_EC_KEY_ID: outputs.SealingKeyId,
    ...(outputs.DeviceTopicArn ? { DEVICE_TOPIC_ARN: outputs.DeviceTopicArn } : {}),
    ...(outputs.PollStateMachineArn ? { POLL_STATE_MACHINE_ARN: outputs.PollStateMachineArn } : {}),
    ...(outputs.NotifyStateMachineArn ? { NOTIFY_STATE_MACHINE_ARN: outputs.NotifyStateMachineArn } : {}),
    ...(outputs.DeliveryDeadLetterQueueUrl ? { DELIVERY_DLQ_URL: outputs.DeliveryDeadLetterQueueUrl } : {}),
    LOG_LEVEL: 'warn',
    CIBA_METRICS: 'off',
  });
}

/** The `ServerSettings` output (JSON: environment name → value) as environment entries of operator settings. */
function deployedSettings(stackName: string, output: string | undefined): Record<string, string> {
  if (!output) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(output);
  } catch {
    throw new AdminError(`the stack ${stackName} has a ServerSettings output that is not JSON`);
  }
  const known = new Set(
    Object.values(SETTINGS as Record<string, Setting>)
      .filter((s) => s.scope === 'operator')
      .map((s) => s.env),
  );
  return Object.fromEntries(
    Object.entries(typeof parsed === 'object' && parsed !== null ? parsed : {}).filter(
      (e): e is [string, string] => known.has(e[0]) && typeof e[1] === 'string',
    ),
  );
}

// ---- a deployed table named directly (`seed load --table … --issuer …`, as `npm run seed` always did) ------------

/** The first failed AWS call of this process (what a table-mode error is explained by). */
let failedCall: AwsCall | undefined;

/**
 * Points this process at a deployed table given by the stack's outputs (TableName, IssuerUrl, SealingKeyId), with the
 * caller's AWS credentials and region, checked first. client_secret_jwt secrets are sealed by envelope encryption
 * under the stack's KMS sealing key with the encryption context purpose=ciba-sealing (functions/adapters/sealer.ts),
 * exactly as the deployed functions seal, so they can open them; never with a local key file.
 */
async function connectToTable(o: { table?: string; issuer?: string; sealKeyId?: string; region?: string }) {
  const absent = [!o.table && '--table', !o.issuer && '--issuer'].filter((m): m is string => typeof m === 'string');
  if (absent.length > 0) {
    throw new AdminError(
      `missing ${absent.join(', ')}: a deployed table is named by --table <TableName> and --issuer <IssuerUrl>`,
      2,
    );
  }
  if (!/^https:\/\/[^/?#]+/.test(o.issuer!)) {
    throw new AdminError(`--issuer must be the stack's IssuerUrl output (https://…), got ${o.issuer}`, 2);
  }
  if (o.region) process.env.AWS_REGION = o.region;
  const region = await awsPreflight();
  delete process.env.CIBA_LOCAL;
  Object.assign(process.env, {
    TABLE_NAME: o.table,
    ISSUER: o.issuer,
    KEYS_SOURCE: 'kms',
    // Seeding signs nothing; the settings require signing key ids.
    KMS_RSA_KEY_ID: 'unused-by-seeding',
    KMS_EC_KEY_ID: 'unused-by-seeding',
    // Without client_secret_jwt clients nothing is sealed and the key is never used.
    KMS_SEAL_KEY_ID: o.sealKeyId ?? 'unused-no-client-secret-jwt-clients',
    LOG_LEVEL: 'warn',
    CIBA_METRICS: 'off',
  });
  const { setAwsCallObserver } = await import('../functions/adapters/aws.ts');
  setAwsCallObserver((call) => {
    if (!call.ok) failedCall ??= call;
  });
  return region;
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
      throw new AdminError(
        "no AWS region: pass --region <the stack's region> or set AWS_REGION (or a region in your AWS profile)",
      );
    }
    try {
      await probe.config.credentials();
    } catch (e) {
      throw new AdminError(
        `no AWS credentials (${(e as Error).message}): set AWS_PROFILE (after \`aws sso login\` if it uses SSO) or ` +
          'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
      );
    }
    return region;
  } finally {
    probe.destroy();
  }
}

/** One line for an error of an AWS call while working on a table named by --table. */
function explainTableError(e: Error, flags: Flags): string {
  const what = `${e.name}: ${e.message}`;
  const call = failedCall;
  if (call?.service === 'KMS') {
    return (
      `cannot seal the client_secret_jwt secrets with the KMS key ${flags.sealKeyId} in ${flags.region} ` +
      `(${call.operation}): ${what}. Is it the stack's SealingKeyId output, and may you use it (kms:GenerateDataKey)?`
    );
  }
  if (e.name === 'ResourceNotFoundException') {
    return `table ${flags.table} not found in ${flags.region}: use the stack's TableName output and its region (--region)`;
  }
  return `${call ? `${call.service} ${call.operation} on table ${flags.table} in ${flags.region} failed: ` : ''}${what}`;
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
    AWS_ENDPOINT_URL_SQS: state.awsEndpoint,
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
  all: { type: 'boolean', default: false },
  table: { type: 'string' },
  issuer: { type: 'string' },
  'seal-key-id': { type: 'string' },
  region: { type: 'string' },
  stack: { type: 'string' },
  'data-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseCliArgs<typeof OPTIONS>>;
  try {
    parsed = parseCliArgs(argv, OPTIONS);
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
  const countOk = command.variadic ? args.length >= command.args.length - 1 : args.length === command.args.length;
  if (!countOk) {
    throw new AdminError(
      `${command.usage}: expected ${command.args.map((a) => `<${a}>`).join(' ')}${command.variadic ? '…' : ''}, got ${args.length} argument(s)\n\n` +
        commandHelp(command),
      2,
    );
  }
  const ownOptions = ['all', 'table', 'issuer', 'seal-key-id', 'region'] as const;
  const misplaced = ownOptions.filter(
    (o) => values[o] !== undefined && values[o] !== false && !command.options?.includes(o),
  );
  if (misplaced.length > 0) {
    throw new AdminError(
      `${command.usage}: --${misplaced[0]} is not an option of this command\n\n${commandHelp(command)}`,
      2,
    );
  }
  const byTable = values.table !== undefined || values.issuer !== undefined || values['seal-key-id'] !== undefined;
  if (byTable && values.stack) throw new AdminError('--stack and --table/--issuer name the stack twice: use one', 2);
  if (values.region !== undefined && !byTable)
    throw new AdminError('--region goes with --table and --issuer (with --stack, set AWS_REGION)', 2);
  const target: Flags['target'] = values.stack ? 'stack' : byTable ? 'table' : 'local';
  let region: string | undefined;
  if (target === 'stack') await connectToStack(values.stack!);
  else if (target === 'table')
    region = await connectToTable({
      ...(values.table !== undefined ? { table: values.table } : {}),
      ...(values.issuer !== undefined ? { issuer: values.issuer } : {}),
      ...(values['seal-key-id'] !== undefined ? { sealKeyId: values['seal-key-id'] } : {}),
      ...(values.region !== undefined ? { region: values.region } : {}),
    });
  else connect(values['data-dir']);
  const flags: Flags = {
    json: values.json ?? false,
    ...(values.sub !== undefined ? { sub: values.sub } : {}),
    ...(values['expires-in'] !== undefined ? { expiresIn: values['expires-in'] } : {}),
    singleUse: values['single-use'] ?? false,
    all: values.all ?? false,
    target,
    ...(values.table !== undefined ? { table: values.table } : {}),
    ...(region !== undefined ? { region } : {}),
    ...(values['seal-key-id'] !== undefined ? { sealKeyId: values['seal-key-id'] } : {}),
  };
  try {
    await command.run(args, flags);
  } catch (e) {
    if (e instanceof AdminError) throw e;
    const aws = e as { $metadata?: unknown; code?: string; name?: string; message?: string };
    if (target === 'table' && e instanceof Error && (failedCall || aws.$metadata !== undefined))
      throw new AdminError(explainTableError(e, flags));
    if (aws.$metadata !== undefined || aws.code === 'ECONNREFUSED' || aws.name === 'TimeoutError') {
      throw new AdminError(
        target === 'local'
          ? `cannot reach the local stack (${aws.name ?? 'error'}: ${aws.message}): is it still running?`
          : `AWS error (${aws.name ?? 'error'}: ${aws.message})`,
      );
    }
    throw e;
  }
}

/** How the user ran this: `npm run seed` is `seed load` (package.json), whatever else is `npm run admin`. */
const PROGRAM = `npm run ${process.env.npm_lifecycle_event === 'seed' ? 'seed' : 'admin'}`;

main(process.argv.slice(2)).catch((e: unknown) => {
  const message = e instanceof AdminError ? e.message : e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  console.error(`${PROGRAM}: ${message}`);
  process.exitCode = e instanceof AdminError ? e.exitCode : 1;
});
