// `npm run demo`: watch one CIBA poll flow end to end against the local stack.
//   npm run demo                   RP starts a request; the "phone" (this terminal) asks you to approve; tokens are shown decoded
//   npm run demo -- --phone=other  RP only: approve from a second terminal with `npm run demo -- phone`
//   npm run demo -- phone          the authentication device: list pending requests and approve/deny them
//   npm run demo -- approve <id> | deny <id>
// ISSUER (default http://localhost:8080) picks the server; when none answers there, the demo starts one in-process.
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline/promises';
import { randomInt } from 'node:crypto';
import * as oidc from 'openid-client';
import { decodeJwt } from 'jose';
import ora from 'ora';
import { DeviceClient, type DeviceRequest } from '../infra/local/device-client.ts';
import { DEMO_CLIENT, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK } from '../infra/local/demo-seed.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    issuer: { type: 'string', default: process.env.ISSUER ?? `http://localhost:${process.env.PORT ?? 8080}` },
    'login-hint': { type: 'string', default: 'alice@example.com' },
    phone: { type: 'string', default: 'here' },
    yes: { type: 'boolean', short: 'y', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const bold = (s: string) => `\x1b[1m${s}\x1b[0m`;
const dim = (s: string) => `\x1b[2m${s}\x1b[0m`;
const issuer = values.issuer.replace(/\/+$/, '');
const phone = new DeviceClient(issuer, DEMO_DEVICE_ID, DEMO_DEVICE_PRIVATE_JWK);

async function serverUp(): Promise<boolean> {
  try {
    return (await fetch(`${issuer}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(1500) })).ok;
  } catch {
    return false;
  }
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

async function rpFlow(): Promise<void> {
  const config = await oidc.discovery(new URL(issuer), DEMO_CLIENT.client_id, undefined, oidc.ClientSecretBasic(DEMO_CLIENT.client_secret), {
    execute: issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
  });
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
  const spinner = ora({ text: 'RP polls the token endpoint: authorization_pending…', discardStdin: false });
  const polling = oidc.pollBackchannelAuthenticationGrant(config, started);
  polling.catch(() => undefined);

  if (values.phone === 'here') {
    const request = await phone.waitFor((r) => r.binding_message === bindingMessage);
    showOnPhone(request);
    const approve = await ask('   Approve on the phone? [Y/n] ', true);
    const res = await phone.decide(request.id, approve ? 'approve' : 'deny');
    console.log(`   📱 → ${approve ? 'approved' : 'denied'} (HTTP ${res.status})\n`);
  } else {
    console.log(`\nNow approve on the "phone": in another terminal run ${bold('npm run demo -- phone')}\n`);
  }
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

async function main(): Promise<void> {
  if (values.help) {
    console.log(readHelp());
    return;
  }
  let stack: { close(): Promise<void> } | undefined;
  if (!(await serverUp())) {
    const url = new URL(issuer);
    console.log(dim(`No server at ${issuer}; starting the local stack in this process (in memory).`));
    const { startLocalStack } = await import('../infra/local/stack.ts');
    const { DEMO_SEED } = await import('../infra/local/demo-seed.ts');
    stack = await startLocalStack({ port: Number(url.port || 80), issuer, dataDir: null, seed: DEMO_SEED, quiet: true });
  }
  try {
    const [command, id] = positionals;
    if (command === 'phone') await phoneMode();
    else if ((command === 'approve' || command === 'deny') && id) console.log(`HTTP ${(await phone.decide(id, command)).status}`);
    else if (command === undefined) await rpFlow();
    else throw new Error(`unknown command ${command}\n${readHelp()}`);
  } finally {
    await stack?.close();
  }
}

function readHelp(): string {
  return `usage: npm run demo [-- [--phone=here|other] [--yes] [--login-hint=alice@example.com] [--issuer=URL]]
       npm run demo -- phone
       npm run demo -- approve <id> | deny <id>`;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
