// `npm run demo`: watch one CIBA flow end to end against the local stack.
//   npm run demo                   poll: the RP starts a request; the "phone" (this terminal) asks you to approve; the RP
//                                  polls the token endpoint; tokens are shown decoded
//   npm run demo -- --mode ping    ping (CIBA §10.2): as demo-ping; a notification receiver in this process gets
//                                  {auth_req_id} with the client_notification_token as bearer, then the RP redeems it
//   npm run demo -- --mode push    push (CIBA §10.3): as demo-push; the receiver gets the tokens themselves and the ID
//                                  token is verified against the JWKS (auth_req_id, at_hash, rt_hash)
//   npm run demo -- --phone=other  RP only: approve from a second terminal with `npm run demo -- phone`
//   npm run demo -- phone          the authentication device: list pending requests and approve/deny them
//   npm run demo -- approve <id> | deny <id>
//   npm run demo -- enrol          a one-time link (and its QR code) enrolling a browser as another device of alice:
//                                  the device web app at <issuer>/device/ (docs/device-app.md)
// In the RP flows the "phone" here also subscribes to Web Push (PUT /device/channel) at a loopback push service in
// this process (local/web-push-receiver.ts), so the notification the server sends (docs/notifications.md) is shown
// arriving, decrypted, before the phone lists the request; the subscription is removed again at the end.
// With --phone=other the RP flows also print the request's link in the device app (<issuer>/device/#request=<id>)
// as a QR code: scan it with the enrolled phone to open that request.
// ISSUER, else http://localhost:<PORT, default 8080>, picks the server (the one `npm start` runs). When none answers
// there, the RP flows start one in-process; `phone`, `approve`, `deny` and `enrol` need the running server and say so.
// The phone asks on a terminal; without one it decides only when told: --yes/--approve or --deny.
// Colours follow util.styleText: only on a terminal, never with NO_COLOR, always with FORCE_COLOR. Secrets
// (auth_req_id, access and refresh tokens) are never printed whole: auth_req_id appears as its public request id
// (base64url SHA-256, the id the phone and the server's logs use), tokens as a short prefix.
// The ping/push receiver listens on http://127.0.0.1:<CIBA_DEMO_RECEIVER_PORT, else the issuer's port + 1>, where
// `npm start`'s demo seed registers the demo-ping and demo-push notification endpoints.
import { styleText } from 'node:util';
import { parseCliArgs } from './cli-args.ts';
import { createInterface } from 'node:readline/promises';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:http';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import ora from 'ora';
import QRCode from 'qrcode';
import { DeviceClient, type DeviceRequest } from '../local/device-client.ts';
import { listen, readBody, type Listening } from '../local/http-server.ts';
import type { LocalStack } from '../local/stack.ts';
import { WebPushReceiver, type ArrivedPush } from '../local/web-push-receiver.ts';
import { sha256b64u } from '../functions/core/crypto.ts';
import {
  DEMO_CLIENT,
  DEMO_DEVICE_ID,
  DEMO_DEVICE_PRIVATE_JWK,
  DEMO_PING_CLIENT,
  DEMO_PUSH_CLIENT,
  DEMO_RECEIVER_PATHS,
  demoReceiverPort,
} from '../local/demo-seed.ts';

const OPTIONS = {
  issuer: { type: 'string' },
  mode: { type: 'string', default: 'poll' },
  'login-hint': { type: 'string', default: 'alice@example.com' },
  phone: { type: 'string', default: 'here' },
  yes: { type: 'boolean', short: 'y', default: false },
  approve: { type: 'boolean', default: false },
  deny: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

function readArgs() {
  try {
    return parseCliArgs(process.argv.slice(2), OPTIONS);
  } catch (e) {
    console.error(`npm run demo: ${(e as Error).message} (see npm run demo -- --help)`);
    process.exit(2);
  }
}
const { values, positionals } = readArgs();

type Mode = 'poll' | 'ping' | 'push';
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const DEFAULT_PORT = 8080;

/** A usage error: exit status 2. */
class UsageError extends Error {
  override readonly name = 'UsageError';
}

// Styles through util.styleText with the stream written to: plain text off a terminal, with NO_COLOR or TERM=dumb.
type Style = Parameters<typeof styleText>[0];
const styled = (stream: NodeJS.WriteStream) => (format: Style, text: string) => styleText(format, text, { stream });
const out = styled(process.stdout);
const err = styled(process.stderr);
const bold = (s: string) => out('bold', s);
const dim = (s: string) => out('dim', s);

// The server: --issuer, else ISSUER, else http://localhost:<PORT, default 8080> (where `npm start` listens).
const localIssuer = (port: number | string) => `http://localhost:${port}`;
const issuer = (values.issuer ?? process.env.ISSUER ?? localIssuer(process.env.PORT || DEFAULT_PORT)).replace(
  /\/+$/,
  '',
);
const issuerFrom = values.issuer ? '--issuer' : process.env.ISSUER ? 'ISSUER' : process.env.PORT ? 'PORT' : 'default';
const phone = new DeviceClient(issuer, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK);

/** A path or word as a POSIX shell reads it literally. */
const shellQuote = (text: string) => (/^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`);

/** `npm run demo [-- args]` as typed in another terminal, with what it needs to reach this demo's server. */
function demoCommand(args = ''): string {
  const port = issuerPort();
  let env = `ISSUER=${shellQuote(issuer)} `;
  if (issuer === localIssuer(DEFAULT_PORT)) env = '';
  else if (issuer === localIssuer(port)) env = `PORT=${port} `;
  return `${env}npm run demo${args ? ` -- ${args}` : ''}`;
}

/**
 * An ora spinner on stderr, coloured only where styleText would colour stderr; a terminal that reports 0 columns (some
 * pseudo-terminals) gets plain lines instead of animation. Finish it with done().
 */
const spin = (text: string) =>
  ora({
    text,
    discardStdin: false,
    color: err('cyan', 'x') === 'x' ? false : 'cyan',
    ...(process.stderr.isTTY && !process.stderr.columns ? { isEnabled: false } : {}),
  });

/** Ends a spinner with ✔ or ✖ (styled for stderr, unlike ora's own symbols). */
function done(spinner: ReturnType<typeof ora>, ok: boolean, text: string): void {
  spinner.stopAndPersist({ symbol: ok ? err('green', '✔') : err('red', '✖'), text });
}

/** The public request id of an auth_req_id (base64url SHA-256): what the phone, the logs and the workflow use. */
const requestIdOf = (authReqId: string) => sha256b64u(authReqId);

/** A secret token for the screen: a short prefix and its length, never the whole value. */
const secretPreview = (v: string) => `${v.slice(0, Math.min(6, v.length >> 2))}… ${dim(`(${v.length} chars, secret)`)}`;

/** auth_req_id for the screen: its public request id only. */
const authReqIdShown = (v: string) => `${dim('(secret, not shown)')} request id ${requestIdOf(v)}`;

const AUTH_REQ_ID_CLAIM = 'urn:openid:params:jwt:claim:auth_req_id';

/** Decoded claims for the screen: the auth_req_id claim of a push ID token (§10.3.1) as its request id. */
function shownClaims(claims: Record<string, unknown>): Record<string, unknown> {
  const v = claims[AUTH_REQ_ID_CLAIM];
  if (typeof v !== 'string') return claims;
  return { ...claims, [AUTH_REQ_ID_CLAIM]: `(secret, not shown) request id ${requestIdOf(v)}` };
}

async function serverUp(): Promise<boolean> {
  try {
    return (await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(1500) })).ok;
  } catch {
    return false;
  }
}

/** The issuer's port: what `npm start` listened on, so the receiver port follows the same rule on both sides. */
function issuerPort(): number {
  const url = new URL(issuer);
  return Number(url.port || (url.protocol === 'https:' ? 443 : 80));
}

/**
 * How the phone decides: as told (--yes/--approve or --deny), else by asking on the terminal. Without a terminal there
 * is nobody to ask, and approving unasked would be wrong: a usage error.
 */
function decisionPolicy(): 'approve' | 'deny' | 'ask' {
  const approve = values.yes || values.approve;
  if (approve && values.deny) throw new UsageError('--deny cannot be combined with --yes/--approve');
  if (approve) return 'approve';
  if (values.deny) return 'deny';
  if (process.stdin.isTTY) return 'ask';
  throw new UsageError(
    'the phone needs a decision, but stdin is not a terminal to ask on: ' +
      'pass --yes (or --approve) to approve, or --deny to deny',
  );
}

/** The phone's decision on one request: as told, or asked (Enter approves). */
async function decide(question: string): Promise<boolean> {
  const policy = decisionPolicy();
  if (policy !== 'ask') {
    const told = policy === 'deny' ? 'no (--deny)' : `yes (${values.approve ? '--approve' : '--yes'})`;
    console.log(`${question}${told}`);
    return policy === 'approve';
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = (await rl.question(question)).trim().toLowerCase();
  rl.close();
  return answer === '' || answer.startsWith('y') || answer === 'a';
}

function showOnPhone(r: DeviceRequest): void {
  console.log(`\n📱 ${bold('Phone of alice')}: ${bold(r.client_name ?? r.client_id)} asks you to sign in`);
  if (r.binding_message) {
    const check = dim('(check it matches the one on the RP screen)');
    console.log(`   binding message: ${bold(r.binding_message)}  ${check}`);
  }
  console.log(
    `   scope: ${r.scope}   expires in ${r.expires_at - Math.floor(Date.now() / 1000)} s   ${dim(`id ${r.id}`)}`,
  );
}

async function phoneMode(): Promise<void> {
  const pending = await phone.list();
  if (!pending.length) {
    console.log(`No pending requests for alice. Start one with \`${demoCommand('--phone=other')}\`.`);
    return;
  }
  decisionPolicy(); // nothing is decided unless every request can be
  for (const r of pending) {
    showOnPhone(r);
    const approve = await decide('   Approve? [Y/n] ');
    const res = await phone.decide(r.id, approve ? 'approve' : 'deny');
    console.log(`   → ${approve ? 'approved' : 'denied'} (HTTP ${res.status})`);
    if (res.status !== 204) process.exitCode = 1;
  }
}

/** `enrol`: a one-time link enrolling a browser as another of alice's devices, in the device app. */
async function enrolLink(): Promise<void> {
  const res = await phone.enrolmentCode();
  const url = res.json.enrol_url;
  if (res.status !== 201 || typeof url !== 'string') {
    console.error(`could not make an enrolment link: HTTP ${res.status} ${res.text}`);
    process.exitCode = 1;
    return;
  }
  await showLink(`Enrol a browser as another device of alice: scan or open`, url);
  const until =
    typeof res.json.expires_at === 'number' ? new Date(res.json.expires_at * 1000).toLocaleTimeString() : '';
  console.log(
    `The link works once${until ? `, until ${until}` : ''}. Then start a request with ${bold(demoCommand('--phone=other'))}.`,
  );
  if (new URL(issuer).protocol === 'http:') {
    console.log(
      dim(
        'Over http the app runs only on this computer (localhost is a secure context); for a phone, serve the issuer ' +
          'at an https address the phone reaches (docs/device-app.md).',
      ),
    );
  }
}

/** `approve <id>` / `deny <id>`: one decision by request id. */
async function decideOne(id: string, decision: 'approve' | 'deny'): Promise<void> {
  const res = await phone.decide(id, decision);
  if (res.status === 204) {
    console.log(`${decision === 'approve' ? 'approved' : 'denied'} request ${id} (HTTP ${res.status})`);
    return;
  }
  console.error(`could not ${decision} request ${id}: HTTP ${res.status} ${res.body}`);
  process.exitCode = 1;
}

/**
 * A link as a QR code for the terminal, two rows of modules per line: qrcode's terminal renderer (dark on a white
 * background, ANSI colours) where stdout takes colours; otherwise (a pipe, NO_COLOR) the same blocks without escape
 * codes, dark modules drawn, for a light background.
 */
async function qrCode(url: string): Promise<string> {
  if (out('bold', 'x') !== 'x')
    return QRCode.toString(url, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
  const { modules } = QRCode.create(url, { errorCorrectionLevel: 'M' });
  const size = modules.size;
  const dark = (row: number, col: number) =>
    row >= 0 && row < size && col >= 0 && col < size && modules.get(row, col) === 1;
  const lines: string[] = [];
  for (let row = -2; row < size + 2; row += 2) {
    let line = '';
    for (let col = -2; col < size + 2; col++) {
      const [top, bottom] = [dark(row, col), dark(row + 1, col)];
      line += top && bottom ? '█' : top ? '▀' : bottom ? '▄' : ' ';
    }
    lines.push(line.trimEnd());
  }
  return `${lines.join('\n')}\n`;
}

/** A link for a person to open on a phone: its QR code and the link itself. */
async function showLink(title: string, url: string): Promise<void> {
  console.log(`\n${title}\n${await qrCode(url)}${url}\n`);
}

/**
 * The phone's part of an RP flow: decide here, or tell the user to decide from another terminal or in the device app
 * (the request's link, as a QR code). Resolves when decided.
 */
async function phoneDecides(bindingMessage: string, authReqId: string): Promise<number | undefined> {
  if (values.phone !== 'here') {
    console.log(`\nNow approve on the "phone": in another terminal run ${bold(demoCommand('phone'))}`);
    await showLink(
      `or in the device app (a browser enrolled with \`${demoCommand('enrol')}\`): scan or open`,
      `${issuer}/device/#request=${requestIdOf(authReqId)}`,
    );
    return undefined;
  }
  const pushed = await phoneWebPush?.arrival(requestIdOf(authReqId), 5000);
  if (pushed?.json) {
    console.log(`\n📬 ${bold('Web Push')} at the phone (RFC 8291, decrypted): ${JSON.stringify(pushed.json)}`);
    console.log(dim('   no binding message, client or secret in it: the phone now fetches the request itself'));
  }
  const request = await phone.waitFor((r) => r.binding_message === bindingMessage);
  showOnPhone(request);
  const approve = await decide('   Approve on the phone? [Y/n] ');
  const decided = Date.now();
  const res = await phone.decide(request.id, approve ? 'approve' : 'deny');
  console.log(`   📱 → ${approve ? 'approved' : 'denied'} (HTTP ${res.status})\n`);
  return decided;
}

/** The demo phone's Web Push subscription, while an RP flow runs with --phone=here. */
let phoneWebPush:
  | { arrival(requestId: string, timeoutMs: number): Promise<ArrivedPush | undefined>; close(): Promise<void> }
  | undefined;

/**
 * Subscribes the demo phone to Web Push at a loopback push service in this process (PUT /device/channel), so the
 * server's notification can be shown arriving. Best effort: without it the phone still finds the request by polling.
 */
async function subscribePhone(): Promise<void> {
  const receiver = await WebPushReceiver.start();
  const arrived = new Map<string, ArrivedPush>();
  receiver.onPush((push) => {
    const id = push.json?.request_id;
    if (typeof id === 'string') arrived.set(id, push);
  });
  const res = await phone
    .setChannel({ type: 'webpush', subscription: receiver.subscribe(DEMO_DEVICE_ID) })
    .catch(() => undefined);
  if (res?.status !== 204) {
    await receiver.close();
    return;
  }
  phoneWebPush = {
    async arrival(requestId, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (!arrived.has(requestId) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      return arrived.get(requestId);
    },
    async close() {
      await phone.setChannel(null).catch(() => undefined);
      await receiver.close();
    },
  };
}

/**
 * Starts the backchannel request (CIBA §7.1). A refusal (§13, e.g. 429 slow_down) ends the demo with the error code,
 * its description and Retry-After, as the server sent them.
 */
async function startRequest(
  config: oidc.Configuration,
  params: Record<string, string>,
): Promise<oidc.BackchannelAuthenticationResponse> {
  try {
    return await oidc.initiateBackchannelAuthentication(config, params);
  } catch (e) {
    if (!(e instanceof oidc.ResponseBodyError)) throw e;
    const retryAfter = e.response.headers.get('retry-after');
    const lines = [
      `the server refused the backchannel request (HTTP ${e.status})`,
      `   error:             ${e.error}`,
      ...(e.error_description ? [`   error_description: ${e.error_description}`] : []),
      ...(retryAfter ? [`   Retry-After:       ${retryAfter}${/^\d+$/.test(retryAfter) ? ' s' : ''}`] : []),
    ];
    throw new RefusedError(lines.join('\n'));
  }
}

/** The server refused a request: exit status 1, the message says why. */
class RefusedError extends Error {
  override readonly name = 'RefusedError';
}

async function rpConfig(client: { client_id: string; client_secret: string }): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), client.client_id, undefined, oidc.ClientSecretBasic(client.client_secret), {
    execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
  });
}

async function pollFlow(): Promise<void> {
  const config = await rpConfig(DEMO_CLIENT);
  const bindingMessage = `DEMO-${randomInt(1000, 10000)}`;
  console.log(
    `${bold('RP')} (${DEMO_CLIENT.client_id}) → POST ${config.serverMetadata().backchannel_authentication_endpoint}`,
  );
  console.log(
    `   login_hint=${values['login-hint']}  scope="openid profile email"  binding_message=${bold(bindingMessage)}`,
  );
  const started = await startRequest(config, {
    scope: 'openid profile email',
    login_hint: values['login-hint'],
    binding_message: bindingMessage,
  });
  console.log(`   ← auth_req_id ${authReqIdShown(started.auth_req_id)}`);
  console.log(`     expires_in ${started.expires_in} s, interval ${started.interval ?? 5} s`);

  const began = Date.now();
  const spinner = spin('RP polls the token endpoint: authorization_pending…');
  const polling = oidc.pollBackchannelAuthenticationGrant(config, started);
  polling.catch(() => undefined);

  await phoneDecides(bindingMessage, started.auth_req_id);
  spinner.start();
  const seconds = () => Math.round((Date.now() - began) / 1000);
  const polls = () => (spinner.text = `RP polls the token endpoint: authorization_pending… ${seconds()} s`);
  const tick = setInterval(polls, 500);
  try {
    const tokens = await polling;
    clearInterval(tick);
    done(spinner, true, `tokens received after ${((Date.now() - began) / 1000).toFixed(1)} s`);
    console.log(`\n${bold('ID token')} claims:`, shownClaims(decodeJwt(tokens.id_token!)));
    console.log(`\n${bold('Access token')} (RFC 9068 JWT) claims:`, shownClaims(decodeJwt(tokens.access_token)));
    console.log(`\nrefresh_token: ${tokens.refresh_token ? 'issued ' + dim('(secret, not shown)') : 'none'}`);
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    console.log(`\n${bold('Userinfo')}:`, userinfo);
  } catch (e) {
    clearInterval(tick);
    done(spinner, false, `the flow ended with ${describeError(e)}`);
    process.exitCode = (e as { error?: string }).error === 'access_denied' ? 0 : 1;
  }
}

/** An OAuth error as `code: description`, anything else by its message. */
function describeError(e: unknown): string {
  if (e instanceof oidc.ResponseBodyError) return `${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
  return e instanceof Error ? e.message : String(e);
}

// ---- ping and push: the client's notification endpoint ----------------------------------------------------------

type Notification = {
  method: string;
  path: string;
  rawHeaders: string[];
  body: string;
  json: Record<string, unknown>;
  at: number;
};

/**
 * The RP's notification endpoint on 127.0.0.1 (CIBA §10.2/§10.3): answers 204 to every POST and hands over the one
 * for our auth_req_id. Others (a late delivery for an earlier demo run) are acknowledged and noted.
 */
async function startReceiver(port: number) {
  const arrived: Notification[] = [];
  const wake = new Set<() => void>();
  const server = createServer((req, res) => {
    void (async () => {
      const body = ((await readBody(req, 1024 * 1024)) ?? Buffer.alloc(0)).toString('utf8');
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(body) as Record<string, unknown>;
      } catch {
        /* shown as received */
      }
      arrived.push({
        method: req.method ?? '',
        path: (req.url ?? '/').split('?')[0]!,
        rawHeaders: req.rawHeaders,
        body,
        json,
        at: Date.now(),
      });
      res.writeHead(204).end();
      for (const w of [...wake]) w();
    })();
  });
  let listening: Listening;
  try {
    listening = await listen(server, '127.0.0.1', port, true);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(
      `cannot listen for notifications on 127.0.0.1:${port} (${code ?? (e as Error).message}). Is another demo running? ` +
        "The port is CIBA_DEMO_RECEIVER_PORT, else the issuer's port + 1; set the same value for `npm start`.",
    );
  }
  return {
    url: (path: string) => `http://127.0.0.1:${listening.port}${path}`,
    /** The notification on `path` for `authReqId`; others seen meanwhile are reported once. */
    async next(
      path: string,
      authReqId: string,
      timeoutMs: number,
      onOther: (n: Notification) => void,
    ): Promise<Notification> {
      const deadline = Date.now() + timeoutMs;
      let seen = 0;
      for (;;) {
        for (; seen < arrived.length; seen++) {
          const n = arrived[seen]!;
          if (n.path === path && n.json.auth_req_id === authReqId) return n;
          onOther(n);
        }
        if (Date.now() > deadline)
          throw new Error(`no notification at ${this.url(path)} within ${Math.round(timeoutMs / 1000)} s`);
        await new Promise<void>((resolve) => {
          const done = () => {
            wake.delete(done);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(done, 250);
          wake.add(done);
        });
      }
    },
    close: () => listening.close(),
  };
}

/** A long value shortened for the screen: start…end (length). For values that are not secret. */
const shorten = (v: string) => (v.length > 24 ? `${v.slice(0, 10)}…${v.slice(-6)} ${dim(`(${v.length} chars)`)}` : v);

/** A notification body value for the screen: secrets never whole (§10.3: the push body carries the tokens). */
function shownValue(key: string, v: unknown): unknown {
  if (typeof v !== 'string') return v;
  if (key === 'auth_req_id') return authReqIdShown(v);
  if (key === 'access_token' || key === 'refresh_token') return secretPreview(v);
  return key === 'error' || key === 'error_description' || key === 'token_type' ? v : shorten(v);
}

function showNotification(n: Notification, sentToken: string, authReqId: string): void {
  console.log(`\n${bold('Notification received')} ${dim("(the server → the RP's notification endpoint)")}`);
  console.log(`   ${n.method} ${n.path}`);
  for (let i = 0; i + 1 < n.rawHeaders.length; i += 2) {
    const [name, value] = [n.rawHeaders[i]!, n.rawHeaders[i + 1]!];
    if (name.toLowerCase() === 'authorization') {
      const token = value.replace(/^Bearer\s+/i, '');
      const ok = token === sentToken;
      const verdict = `${ok ? '✔' : '✘ NOT'} the client_notification_token the RP sent`;
      console.log(`   ${name}: Bearer ${'•'.repeat(8)}${token.slice(-4)}  ${verdict}`);
      if (!ok) process.exitCode = 1;
    } else console.log(`   ${name}: ${value}`);
  }
  const shown = Object.entries(n.json).map(([k, v]) => [k, shownValue(k, v)] as const);
  const raw = n.body ? shorten(n.body) : '(empty)';
  console.log(`   body${shown.length ? ' (JSON; secrets not shown, long values shortened):' : `: ${raw}`}`);
  for (const [k, v] of shown) console.log(`     ${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const match = n.json.auth_req_id === authReqId;
  console.log(`   auth_req_id ${match ? '✔ is the one bc-authorize returned' : '✘ does not match'}`);
}

/** OIDC Core §3.1.3.6: left half of the hash of the ASCII value (hash of the ID token's alg), base64url. */
function halfHash(value: string, alg: string): string {
  const hash = alg === 'EdDSA' || alg.endsWith('512') ? 'sha512' : alg.endsWith('384') ? 'sha384' : 'sha256';
  const digest = createHash(hash).update(value).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

async function notifiedFlow(mode: 'ping' | 'push', receiverPort: number): Promise<void> {
  const client = mode === 'ping' ? DEMO_PING_CLIENT : DEMO_PUSH_CLIENT;
  const path = DEMO_RECEIVER_PATHS[mode];
  const receiver = await startReceiver(receiverPort);
  try {
    const config = await rpConfig(client);
    const meta = config.serverMetadata();
    const modes =
      (meta as { backchannel_token_delivery_modes_supported?: string[] }).backchannel_token_delivery_modes_supported ??
      [];
    if (!modes.includes(mode))
      throw new Error(
        `${issuer} does not advertise ${mode} delivery (backchannel_token_delivery_modes_supported: ${modes.join(', ') || 'none'})`,
      );
    console.log(
      `${bold('RP')} (${client.client_id}, ${mode} mode) listens for notifications at ${bold(receiver.url(path))}`,
    );
    // §7.1: a bearer token of the RP's choice (RFC 6750 b64token syntax); base64url qualifies.
    const notificationToken = randomBytes(24).toString('base64url');
    const bindingMessage = `DEMO-${randomInt(1000, 10000)}`;
    console.log(`${bold('RP')} → POST ${meta.backchannel_authentication_endpoint}`);
    console.log(
      `   login_hint=${values['login-hint']}  scope="openid profile email"  binding_message=${bold(bindingMessage)}`,
    );
    const lastFour = dim('(fresh random bearer token, only the last 4 characters shown)');
    console.log(`   client_notification_token=${'•'.repeat(8)}${notificationToken.slice(-4)} ${lastFour}`);
    const started = await startRequest(config, {
      scope: 'openid profile email',
      login_hint: values['login-hint'],
      binding_message: bindingMessage,
      client_notification_token: notificationToken,
    });
    console.log(`   ← auth_req_id ${authReqIdShown(started.auth_req_id)}`);
    const interval = started.interval ? `, interval ${started.interval} s (a ping client may also poll)` : '';
    console.log(`     expires_in ${started.expires_in} s${interval}`);

    const began = Date.now();
    const spinner = spin(`RP waits for the ${mode} notification…`);
    const others: string[] = [];
    const waiting = receiver.next(path, started.auth_req_id, (started.expires_in + 30) * 1000, (n) =>
      others.push(`${n.method} ${n.path}${typeof n.json.auth_req_id === 'string' ? ' for another auth_req_id' : ''}`),
    );
    waiting.catch(() => undefined);
    const decidedAt = await phoneDecides(bindingMessage, started.auth_req_id);
    spinner.start();
    const seconds = () => Math.round((Date.now() - began) / 1000);
    const at = receiver.url(path);
    const waits = () => (spinner.text = `RP waits for the ${mode} notification at ${at}… ${seconds()} s`);
    const tick = setInterval(waits, 500);
    let notification: Notification;
    try {
      notification = await waiting;
    } catch (e) {
      const port = err('dim', 'CIBA_DEMO_RECEIVER_PORT or its own port + 1');
      const question = `Does the server's ${client.client_id} client notify ${receiver.url(path)}?`;
      done(spinner, false, `${(e as Error).message}. ${question} (\`npm start\` registers port ${port}.)`);
      process.exitCode = 1;
      return;
    } finally {
      clearInterval(tick);
    }
    const after = decidedAt !== undefined ? `, ${notification.at - decidedAt} ms after the approval POST` : '';
    const took = ((notification.at - began) / 1000).toFixed(1);
    done(spinner, true, `${mode} notification received after ${took} s${after}`);
    if (others.length) console.log(dim(`   (also acknowledged meanwhile: ${others.join('; ')})`));
    showNotification(notification, notificationToken, started.auth_req_id);

    if (mode === 'ping') await redeemAfterPing(config, started.auth_req_id);
    else await verifyPush(config, client.client_id, notification.json, started.auth_req_id);
  } finally {
    await receiver.close();
  }
}

/** §10.2: the ping only says "ask now"; the RP redeems auth_req_id at the token endpoint. */
async function redeemAfterPing(config: oidc.Configuration, authReqId: string): Promise<void> {
  const spinner = spin(`RP → POST ${config.serverMetadata().token_endpoint} (grant_type=${CIBA_GRANT})`).start();
  try {
    const tokens = await oidc.genericGrantRequest(config, CIBA_GRANT, { auth_req_id: authReqId });
    done(spinner, true, 'tokens received from the token endpoint');
    const claims = shownClaims(decodeJwt(tokens.id_token!));
    console.log(`\n${bold('ID token')} claims ${dim('(validated by openid-client)')}:`, claims);
    const refresh = tokens.refresh_token ? 'issued ' + dim('(secret, not shown)') : 'none';
    console.log(`\naccess_token: ${secretPreview(tokens.access_token)}   refresh_token: ${refresh}`);
  } catch (e) {
    done(spinner, false, `the token endpoint answered ${describeError(e)}`);
    process.exitCode = (e as { error?: string }).error === 'access_denied' ? 0 : 1;
  }
}

/** §10.3.1: the pushed ID token is verified against the JWKS and binds auth_req_id, the access token and the refresh token. */
async function verifyPush(
  config: oidc.Configuration,
  clientId: string,
  body: Record<string, unknown>,
  authReqId: string,
): Promise<void> {
  if (typeof body.error === 'string') {
    console.log(
      `\n${bold('Push error')} (§12): ${body.error}${typeof body.error_description === 'string' ? ` — ${body.error_description}` : ''}`,
    );
    process.exitCode = body.error === 'access_denied' ? 0 : 1;
    return;
  }
  const meta = config.serverMetadata();
  const spinner = spin(`RP verifies the ID token against ${meta.jwks_uri}`).start();
  try {
    const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(String(body.id_token), jwks, {
      issuer: meta.issuer,
      audience: clientId,
    });
    const { alg, kid } = protectedHeader;
    done(spinner, true, `ID token signature (${alg}, kid ${kid ?? '–'}), iss, aud and exp verified`);
    console.log(`\n${bold('ID token')} claims:`, shownClaims(payload));
    const checks: [string, boolean][] = [
      [
        'urn:openid:params:jwt:claim:auth_req_id = the auth_req_id from bc-authorize',
        payload['urn:openid:params:jwt:claim:auth_req_id'] === authReqId,
      ],
      [
        '… and = the auth_req_id in the push body',
        payload['urn:openid:params:jwt:claim:auth_req_id'] === body.auth_req_id,
      ],
      [
        'at_hash = left half of the hash of access_token',
        typeof body.access_token === 'string' && payload.at_hash === halfHash(body.access_token, protectedHeader.alg),
      ],
    ];
    if (typeof body.refresh_token === 'string') {
      checks.push([
        'urn:openid:params:jwt:claim:rt_hash = left half of the hash of refresh_token',
        payload['urn:openid:params:jwt:claim:rt_hash'] === halfHash(body.refresh_token, protectedHeader.alg),
      ]);
    } else
      checks.push(['no refresh_token, so no rt_hash', payload['urn:openid:params:jwt:claim:rt_hash'] === undefined]);
    console.log('');
    for (const [what, ok] of checks) console.log(`   ${ok ? '✔' : '✘'} ${what}`);
    if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
  } catch (e) {
    done(spinner, false, `the pushed ID token did not verify: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

/** Why nothing answers at the issuer, and how to start or find the server. */
function noServer(): string {
  const port = issuerPort();
  const from = {
    '--issuer': 'from --issuer',
    ISSUER: 'from ISSUER',
    PORT: `from PORT=${process.env.PORT}`,
    default: `the default; set PORT or ISSUER for another server`,
  }[issuerFrom];
  const local = issuer === `http://localhost:${port}`;
  const start = local ? `\`${port === DEFAULT_PORT ? '' : `PORT=${port} `}npm start\`` : 'the server';
  return (
    `no CIBA server answers at ${issuer} (${from}). Start ${start} in another terminal first, or point ` +
    'PORT (or ISSUER) at the server that runs.'
  );
}

async function main(): Promise<void> {
  if (values.help) {
    console.log(readHelp());
    return;
  }
  const mode = values.mode as Mode;
  if (!['poll', 'ping', 'push'].includes(mode)) {
    throw new UsageError(`unknown --mode ${values.mode}: use poll, ping or push`);
  }
  if (values.phone !== 'here' && values.phone !== 'other') {
    throw new UsageError(`unknown --phone ${values.phone}: use here or other`);
  }
  try {
    new URL(issuer);
  } catch {
    throw new UsageError(`the server URL ${JSON.stringify(issuer)} (${issuerFrom}) is not a URL`);
  }
  const [command, id, ...extra] = positionals;
  if (command !== undefined && !['phone', 'approve', 'deny', 'enrol'].includes(command)) {
    throw new UsageError(`unknown command ${command}`);
  }
  if ((command === 'approve' || command === 'deny') && !id) throw new UsageError(`${command} needs the request id`);
  if (extra.length || ((command === 'phone' || command === 'enrol') && id)) {
    throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
  }
  // This terminal plays the phone in an RP flow: refuse now, before any request, if it cannot decide.
  if (command === undefined && values.phone === 'here') decisionPolicy();

  const up = await serverUp();
  // The phone and its decisions are about the requests of the running server: never a fresh in-process one.
  if (!up && command !== undefined) throw new RefusedError(noServer());
  const receiverPort = demoReceiverPort(issuerPort());
  let stack: LocalStack | undefined;
  if (!up) {
    console.log(dim(`No server at ${issuer}; starting the local stack in this process (in memory).`));
    const { startLocalStack } = await import('../local/stack.ts');
    const { demoSeed } = await import('../local/demo-seed.ts');
    stack = await startLocalStack({
      port: issuerPort(),
      issuer,
      dataDir: null,
      seed: demoSeed(receiverPort),
      quiet: true,
      // The handlers' info lines would interleave with the demo's output; LOG_LEVEL=info brings them back.
      ...(process.env.LOG_LEVEL ? {} : { env: { LOG_LEVEL: 'warn' } }),
    });
  }
  try {
    if (command === undefined && values.phone === 'here') await subscribePhone();
    if (command === 'phone') await phoneMode();
    else if (command === 'enrol') await enrolLink();
    else if (command === 'approve' || command === 'deny') await decideOne(id!, command);
    else await (mode === 'poll' ? pollFlow() : notifiedFlow(mode, receiverPort));
  } finally {
    await phoneWebPush?.close();
    // Let a delivery that is still reporting to the workflow (the client has its notification already) finish first.
    await stack?.sns.drain();
    await stack?.close();
  }
}

function readHelp(): string {
  return `usage: npm run demo [-- [--mode=poll|ping|push] [--phone=here|other] [--yes|--deny]
                            [--login-hint=alice@example.com] [--issuer=URL]]
       npm run demo -- phone [--yes|--deny]
       npm run demo -- approve <id> | deny <id>
       npm run demo -- enrol

  --mode poll   (default) demo-rp polls the token endpoint
  --mode ping   demo-ping is notified {auth_req_id} at its endpoint, then redeems at the token endpoint
  --mode push   demo-push receives the tokens at its endpoint and verifies the ID token (auth_req_id, at_hash, rt_hash)
  --phone       here (default): this terminal plays alice's phone; other: approve with \`npm run demo -- phone\`
                or in the device app, whose link to the request is printed as a QR code
  enrol         a one-time link and QR code enrolling a browser (the device app at <issuer>/device/) as another
                device of alice; needs the running server, like phone, approve and deny
  --yes, -y     approve without asking (also --approve)
  --deny        deny without asking
                Without these the phone asks on the terminal; without a terminal (stdin piped) it refuses.
  --issuer      the server (env ISSUER, else http://localhost:<env PORT, default 8080>, as \`npm start\` uses).
                The RP flows start one in-process if none answers; phone, approve, deny and enrol need a running one.

The ping/push notification receiver listens on http://127.0.0.1:<port>/ping and /push, port = env
CIBA_DEMO_RECEIVER_PORT or the issuer's port + 1, as \`npm start\` registers them.
Colours only on a terminal; NO_COLOR turns them off, FORCE_COLOR on.`;
}

main().catch((e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  console.error(`npm run demo: ${message}${e instanceof UsageError ? ' (see npm run demo -- --help)' : ''}`);
  process.exitCode = e instanceof UsageError ? 2 : 1;
});
