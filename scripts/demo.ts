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
// ISSUER (default http://localhost:8080) picks the server; when none answers there, the demo starts one in-process.
// The ping/push receiver listens on http://127.0.0.1:<CIBA_DEMO_RECEIVER_PORT, else the issuer's port + 1>, where
// `npm start`'s demo seed registers the demo-ping and demo-push notification endpoints.
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { createServer } from 'node:http';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import ora from 'ora';
import { DeviceClient, type DeviceRequest } from '../infra/local/device-client.ts';
import { listen, readBody, type Listening } from '../infra/local/http-server.ts';
import type { LocalStack } from '../infra/local/stack.ts';
import {
  DEMO_CLIENT, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK, DEMO_PING_CLIENT, DEMO_PUSH_CLIENT, DEMO_RECEIVER_PATHS, demoReceiverPort,
} from '../infra/local/demo-seed.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    issuer: { type: 'string', default: process.env.ISSUER ?? `http://localhost:${process.env.PORT ?? 8080}` },
    mode: { type: 'string', default: 'poll' },
    'login-hint': { type: 'string', default: 'alice@example.com' },
    phone: { type: 'string', default: 'here' },
    yes: { type: 'boolean', short: 'y', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

type Mode = 'poll' | 'ping' | 'push';
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;
const dim = (s: string) => `\x1b[2m${s}\x1b[0m`;
const issuer = values.issuer.replace(/\/+$/, '');
const phone = new DeviceClient(issuer, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK);

/** An ora spinner; a terminal that reports 0 columns (some pseudo-terminals) gets plain lines instead of animation. */
const spin = (text: string) => ora({ text, discardStdin: false, ...(process.stderr.isTTY && !process.stderr.columns ? { isEnabled: false } : {}) });

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

async function ask(question: string, fallback: boolean): Promise<boolean> {
  if (values.yes || !process.stdin.isTTY) return fallback;
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = (await rl.question(question)).trim().toLowerCase();
  rl.close();
  return answer === '' ? fallback : answer.startsWith('y') || answer === 'a';
}

function showOnPhone(r: DeviceRequest): void {
  console.log(`\n📱 ${bold('Phone of alice')}: ${bold(r.client_name ?? r.client_id)} asks you to sign in`);
  if (r.binding_message) console.log(`   binding message: ${bold(r.binding_message)}  ${dim('(check it matches the one on the RP screen)')}`);
  console.log(`   scope: ${r.scope}   expires in ${r.expires_at - Math.floor(Date.now() / 1000)} s   ${dim(`id ${r.id}`)}`);
}

async function phoneMode(): Promise<void> {
  const pending = await phone.list();
  if (!pending.length) console.log('No pending requests for alice. Start one with `npm run demo -- --phone=other`.');
  for (const r of pending) {
    showOnPhone(r);
    const approve = await ask('   Approve? [Y/n] ', true);
    const res = await phone.decide(r.id, approve ? 'approve' : 'deny');
    console.log(`   → ${approve ? 'approved' : 'denied'} (HTTP ${res.status})`);
  }
}

/** The phone's part of an RP flow: decide here, or tell the user to decide from another terminal. Resolves when decided. */
async function phoneDecides(bindingMessage: string): Promise<number | undefined> {
  if (values.phone !== 'here') {
    console.log(`\nNow approve on the "phone": in another terminal run ${bold('npm run demo -- phone')}\n`);
    return undefined;
  }
  const request = await phone.waitFor((r) => r.binding_message === bindingMessage);
  showOnPhone(request);
  const approve = await ask('   Approve on the phone? [Y/n] ', true);
  const decided = Date.now();
  const res = await phone.decide(request.id, approve ? 'approve' : 'deny');
  console.log(`   📱 → ${approve ? 'approved' : 'denied'} (HTTP ${res.status})\n`);
  return decided;
}

async function rpConfig(client: { client_id: string; client_secret: string }): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), client.client_id, undefined, oidc.ClientSecretBasic(client.client_secret), {
    execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
  });
}

async function pollFlow(): Promise<void> {
  const config = await rpConfig(DEMO_CLIENT);
  const bindingMessage = `DEMO-${randomInt(1000, 10000)}`;
  console.log(`${bold('RP')} (${DEMO_CLIENT.client_id}) → POST ${config.serverMetadata().backchannel_authentication_endpoint}`);
  console.log(`   login_hint=${values['login-hint']}  scope="openid profile email"  binding_message=${bold(bindingMessage)}`);
  const started = await oidc.initiateBackchannelAuthentication(config, {
    scope: 'openid profile email',
    login_hint: values['login-hint'],
    binding_message: bindingMessage,
  });
  console.log(`   ← auth_req_id received ${dim('(secret, not shown)')}, expires_in ${started.expires_in} s, interval ${started.interval ?? 5} s`);

  const began = Date.now();
  const spinner = spin('RP polls the token endpoint: authorization_pending…');
  const polling = oidc.pollBackchannelAuthenticationGrant(config, started);
  polling.catch(() => undefined);

  await phoneDecides(bindingMessage);
  spinner.start();
  const tick = setInterval(() => (spinner.text = `RP polls the token endpoint: authorization_pending… ${Math.round((Date.now() - began) / 1000)} s`), 500);
  try {
    const tokens = await polling;
    clearInterval(tick);
    spinner.succeed(`tokens received after ${((Date.now() - began) / 1000).toFixed(1)} s`);
    console.log(`\n${bold('ID token')} claims:`, decodeJwt(tokens.id_token!));
    console.log(`\n${bold('Access token')} (RFC 9068 JWT) claims:`, decodeJwt(tokens.access_token));
    console.log(`\nrefresh_token: ${tokens.refresh_token ? 'issued ' + dim('(secret, not shown)') : 'none'}`);
    const userinfo = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
    console.log(`\n${bold('Userinfo')}:`, userinfo);
  } catch (e) {
    clearInterval(tick);
    const err = e as { error?: string; message: string };
    spinner.fail(`the flow ended with ${err.error ?? err.message}`);
    process.exitCode = err.error === 'access_denied' ? 0 : 1;
  }
}

// ---- ping and push: the client's notification endpoint ----------------------------------------------------------

type Notification = { method: string; path: string; rawHeaders: string[]; body: string; json: Record<string, unknown>; at: number };

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
      arrived.push({ method: req.method ?? '', path: (req.url ?? '/').split('?')[0]!, rawHeaders: req.rawHeaders, body, json, at: Date.now() });
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
        'The port is CIBA_DEMO_RECEIVER_PORT, else the issuer\'s port + 1; set the same value for `npm start`.',
    );
  }
  return {
    url: (path: string) => `http://127.0.0.1:${listening.port}${path}`,
    /** The notification on `path` for `authReqId`; others seen meanwhile are reported once. */
    async next(path: string, authReqId: string, timeoutMs: number, onOther: (n: Notification) => void): Promise<Notification> {
      const deadline = Date.now() + timeoutMs;
      let seen = 0;
      for (;;) {
        for (; seen < arrived.length; seen++) {
          const n = arrived[seen]!;
          if (n.path === path && n.json.auth_req_id === authReqId) return n;
          onOther(n);
        }
        if (Date.now() > deadline) throw new Error(`no notification at ${this.url(path)} within ${Math.round(timeoutMs / 1000)} s`);
        await new Promise<void>((resolve) => {
          const done = () => (wake.delete(done), clearTimeout(timer), resolve());
          const timer = setTimeout(done, 250);
          wake.add(done);
        });
      }
    },
    close: () => listening.close(),
  };
}

/** A secret shortened for the screen: start…end (length). */
const shorten = (v: string) => (v.length > 24 ? `${v.slice(0, 10)}…${v.slice(-6)} ${dim(`(${v.length} chars)`)}` : v);

function showNotification(n: Notification, sentToken: string, authReqId: string): void {
  console.log(`\n${bold('Notification received')} ${dim('(the server → the RP\'s notification endpoint)')}`);
  console.log(`   ${n.method} ${n.path}`);
  for (let i = 0; i + 1 < n.rawHeaders.length; i += 2) {
    const [name, value] = [n.rawHeaders[i]!, n.rawHeaders[i + 1]!];
    if (name.toLowerCase() === 'authorization') {
      const token = value.replace(/^Bearer\s+/i, '');
      const ok = token === sentToken;
      console.log(`   ${name}: Bearer ${'•'.repeat(8)}${token.slice(-4)}  ${ok ? '✔ the client_notification_token the RP sent' : '✘ NOT the client_notification_token the RP sent'}`);
      if (!ok) process.exitCode = 1;
    } else console.log(`   ${name}: ${value}`);
  }
  const shown = Object.fromEntries(Object.entries(n.json).map(([k, v]) => [k, typeof v === 'string' && k !== 'error' && k !== 'error_description' && k !== 'token_type' ? shorten(v) : v]));
  console.log(`   body${Object.keys(n.json).length ? ' (JSON, long values shortened):' : `: ${n.body || '(empty)'}`}`);
  for (const [k, v] of Object.entries(shown)) console.log(`     ${k}: ${v}`);
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
    const modes = (meta as { backchannel_token_delivery_modes_supported?: string[] }).backchannel_token_delivery_modes_supported ?? [];
    if (!modes.includes(mode)) throw new Error(`${issuer} does not advertise ${mode} delivery (backchannel_token_delivery_modes_supported: ${modes.join(', ') || 'none'})`);
    console.log(`${bold('RP')} (${client.client_id}, ${mode} mode) listens for notifications at ${bold(receiver.url(path))}`);
    // §7.1: a bearer token of the RP's choice (RFC 6750 b64token syntax); base64url qualifies.
    const notificationToken = randomBytes(24).toString('base64url');
    const bindingMessage = `DEMO-${randomInt(1000, 10000)}`;
    console.log(`${bold('RP')} → POST ${meta.backchannel_authentication_endpoint}`);
    console.log(`   login_hint=${values['login-hint']}  scope="openid profile email"  binding_message=${bold(bindingMessage)}`);
    console.log(`   client_notification_token=${'•'.repeat(8)}${notificationToken.slice(-4)} ${dim('(fresh random bearer token, only the last 4 characters shown)')}`);
    const started = await oidc.initiateBackchannelAuthentication(config, {
      scope: 'openid profile email',
      login_hint: values['login-hint'],
      binding_message: bindingMessage,
      client_notification_token: notificationToken,
    });
    console.log(`   ← auth_req_id received ${dim('(secret, not shown)')}, expires_in ${started.expires_in} s${started.interval ? `, interval ${started.interval} s (a ping client may also poll)` : ''}`);

    const began = Date.now();
    const spinner = spin(`RP waits for the ${mode} notification…`);
    const others: string[] = [];
    const waiting = receiver.next(path, started.auth_req_id, (started.expires_in + 30) * 1000, (n) =>
      others.push(`${n.method} ${n.path}${typeof n.json.auth_req_id === 'string' ? ' for another auth_req_id' : ''}`));
    waiting.catch(() => undefined);
    const decidedAt = await phoneDecides(bindingMessage);
    spinner.start();
    const tick = setInterval(() => (spinner.text = `RP waits for the ${mode} notification at ${receiver.url(path)}… ${Math.round((Date.now() - began) / 1000)} s`), 500);
    let notification: Notification;
    try {
      notification = await waiting;
    } catch (e) {
      spinner.fail(`${(e as Error).message}. Does the server's ${client.client_id} client notify ${receiver.url(path)}? (\`npm start\` registers port ${dim('CIBA_DEMO_RECEIVER_PORT or its own port + 1')}.)`);
      process.exitCode = 1;
      return;
    } finally {
      clearInterval(tick);
    }
    const after = decidedAt !== undefined ? `, ${notification.at - decidedAt} ms after the approval POST` : '';
    spinner.succeed(`${mode} notification received after ${((notification.at - began) / 1000).toFixed(1)} s${after}`);
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
    spinner.succeed('tokens received from the token endpoint');
    console.log(`\n${bold('ID token')} claims ${dim('(validated by openid-client)')}:`, decodeJwt(tokens.id_token!));
    console.log(`\naccess_token: ${shorten(tokens.access_token)}   refresh_token: ${tokens.refresh_token ? 'issued ' + dim('(secret, not shown)') : 'none'}`);
  } catch (e) {
    const err = e as { error?: string; message: string };
    spinner.fail(`the token endpoint answered ${err.error ?? err.message}`);
    process.exitCode = err.error === 'access_denied' ? 0 : 1;
  }
}

/** §10.3.1: the pushed ID token is verified against the JWKS and binds auth_req_id, the access token and the refresh token. */
async function verifyPush(config: oidc.Configuration, clientId: string, body: Record<string, unknown>, authReqId: string): Promise<void> {
  if (typeof body.error === 'string') {
    console.log(`\n${bold('Push error')} (§12): ${body.error}${typeof body.error_description === 'string' ? ` — ${body.error_description}` : ''}`);
    process.exitCode = body.error === 'access_denied' ? 0 : 1;
    return;
  }
  const meta = config.serverMetadata();
  const spinner = spin(`RP verifies the ID token against ${meta.jwks_uri}`).start();
  try {
    const jwks = createRemoteJWKSet(new URL(meta.jwks_uri!));
    const { payload, protectedHeader } = await jwtVerify(String(body.id_token), jwks, { issuer: meta.issuer, audience: clientId });
    spinner.succeed(`ID token signature (${protectedHeader.alg}, kid ${protectedHeader.kid ?? '–'}), iss, aud and exp verified`);
    console.log(`\n${bold('ID token')} claims:`, payload);
    const checks: [string, boolean][] = [
      ['urn:openid:params:jwt:claim:auth_req_id = the auth_req_id from bc-authorize', payload['urn:openid:params:jwt:claim:auth_req_id'] === authReqId],
      ['… and = the auth_req_id in the push body', payload['urn:openid:params:jwt:claim:auth_req_id'] === body.auth_req_id],
      ['at_hash = left half of the hash of access_token', typeof body.access_token === 'string' && payload.at_hash === halfHash(body.access_token, protectedHeader.alg)],
    ];
    if (typeof body.refresh_token === 'string') {
      checks.push(['urn:openid:params:jwt:claim:rt_hash = left half of the hash of refresh_token', payload['urn:openid:params:jwt:claim:rt_hash'] === halfHash(body.refresh_token, protectedHeader.alg)]);
    } else checks.push(['no refresh_token, so no rt_hash', payload['urn:openid:params:jwt:claim:rt_hash'] === undefined]);
    console.log('');
    for (const [what, ok] of checks) console.log(`   ${ok ? '✔' : '✘'} ${what}`);
    if (checks.some(([, ok]) => !ok)) process.exitCode = 1;
  } catch (e) {
    spinner.fail(`the pushed ID token did not verify: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}

async function main(): Promise<void> {
  if (values.help) {
    console.log(readHelp());
    return;
  }
  const mode = values.mode as Mode;
  if (!['poll', 'ping', 'push'].includes(mode)) throw new Error(`unknown --mode ${values.mode}: use poll, ping or push\n${readHelp()}`);
  const receiverPort = demoReceiverPort(issuerPort());
  let stack: LocalStack | undefined;
  if (!(await serverUp())) {
    console.log(dim(`No server at ${issuer}; starting the local stack in this process (in memory).`));
    const { startLocalStack } = await import('../infra/local/stack.ts');
    const { demoSeed } = await import('../infra/local/demo-seed.ts');
    stack = await startLocalStack({
      port: issuerPort(), issuer, dataDir: null, seed: demoSeed(receiverPort), quiet: true,
      // The handlers' info lines would interleave with the demo's output; LOG_LEVEL=info brings them back.
      ...(process.env.LOG_LEVEL ? {} : { env: { LOG_LEVEL: 'warn' } }),
    });
  }
  try {
    const [command, id] = positionals;
    if (command === 'phone') await phoneMode();
    else if ((command === 'approve' || command === 'deny') && id) console.log(`HTTP ${(await phone.decide(id, command)).status}`);
    else if (command === undefined) await (mode === 'poll' ? pollFlow() : notifiedFlow(mode, receiverPort));
    else throw new Error(`unknown command ${command}\n${readHelp()}`);
  } finally {
    // Let a delivery that is still reporting to the workflow (the client has its notification already) finish first.
    await stack?.sns.drain();
    await stack?.close();
  }
}

function readHelp(): string {
  return `usage: npm run demo [-- [--mode=poll|ping|push] [--phone=here|other] [--yes] [--login-hint=alice@example.com] [--issuer=URL]]
       npm run demo -- phone
       npm run demo -- approve <id> | deny <id>

  --mode poll   (default) demo-rp polls the token endpoint
  --mode ping   demo-ping is notified {auth_req_id} at its endpoint, then redeems at the token endpoint
  --mode push   demo-push receives the tokens at its endpoint and verifies the ID token (auth_req_id, at_hash, rt_hash)
  --phone       here (default): this terminal plays alice's phone; other: approve with \`npm run demo -- phone\`
  --yes, -y     approve without asking
  --issuer      the server (env ISSUER, default http://localhost:8080); started in-process if none answers

The ping/push notification receiver listens on http://127.0.0.1:<port>/ping and /push, port = env
CIBA_DEMO_RECEIVER_PORT or the issuer's port + 1, as \`npm start\` registers them.`;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
