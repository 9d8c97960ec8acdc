// End-to-end helpers: one local stack per test file (node --test runs each file in its own process), the RP side
// through openid-client, the device side through the device API client.
import { spawn } from 'node:child_process';
import * as oidc from 'openid-client';
import type { JWK } from 'jose';
import { startLocalStack, type LocalStack } from '../../local/stack.ts';
import type { HttpsListenerOptions } from '../../local/api.ts';
import { DeviceClient, generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { CIBA_GRANT } from '../../functions/core/model.ts';
import { encodeBasic } from '../../functions/core/client-auth.ts';

export { CIBA_GRANT };

export const SECRET = 'rp-secret-0123456789abcdefghijkl';
export const OTHER_SECRET = 'other-secret-0123456789abcdefghij';
export const USER_CODE = '9183-2271-5540';

export const deviceKey = generateDeviceKey;

export type World = {
  stack: LocalStack;
  issuer: string;
  alice: DeviceClient;
  bob: DeviceClient;
  /** openid-client configuration of a seeded client. */
  rp(clientId?: string, secret?: string, post?: boolean): Promise<oidc.Configuration>;
  close(): Promise<void>;
};

/** The seed every e2e file uses: clients for each method and policy, two users with devices. */
export function testSeed(aliceJwk: JWK, bobJwk: JWK) {
  const base = {
    grant_types: [CIBA_GRANT, 'refresh_token'],
    scope: 'openid profile email phone',
    backchannel_token_delivery_mode: 'poll',
  };
  return {
    clients: [
      {
        ...base,
        client_id: 'rp',
        client_secret: SECRET,
        client_name: 'Store POS',
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        ...base,
        client_id: 'rp-post',
        client_secret: SECRET,
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'ES256',
      },
      {
        ...base,
        client_id: 'rp-ps256',
        client_secret: SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        id_token_signed_response_alg: 'PS256',
      },
      { ...base, client_id: 'other', client_secret: OTHER_SECRET, token_endpoint_auth_method: 'client_secret_basic' },
      { ...base, client_id: 'no-refresh', client_secret: SECRET, grant_types: [CIBA_GRANT] },
      { ...base, client_id: 'no-ciba', client_secret: SECRET, grant_types: ['refresh_token'] },
      { ...base, client_id: 'user-code', client_secret: SECRET, backchannel_user_code_parameter: true },
    ],
    users: [
      {
        sub: 'alice',
        email: 'alice@example.com',
        phone_number: '+15551234567',
        email_verified: true,
        name: 'Alice Example',
        given_name: 'Alice',
        family_name: 'Example',
        user_code: USER_CODE,
        devices: [{ device_id: 'alice-phone', jwk: publicDeviceJwk(aliceJwk) }],
      },
      { sub: 'bob', email: 'bob@example.com', devices: [{ device_id: 'bob-phone', jwk: publicDeviceJwk(bobJwk) }] },
    ],
  };
}

/** Starts the local stack with the test seed plus `extraClients` and `extraUsers` (seed-file objects). */
export async function startWorld(
  env: Record<string, string> = {},
  extraClients: Record<string, unknown>[] = [],
  extraUsers: Record<string, unknown>[] = [],
  options: { https?: HttpsListenerOptions; dataDir?: string } = {},
): Promise<World> {
  const aliceKey = deviceKey();
  const bobKey = deviceKey();
  const seed = testSeed(aliceKey, bobKey);
  const stack = await startLocalStack({
    port: 0,
    dataDir: options.dataDir ?? null,
    quiet: true,
    seed: { clients: [...seed.clients, ...extraClients], users: [...seed.users, ...extraUsers] },
    ...(options.https ? { https: options.https } : {}),
    // Generous abuse limits: the suites make many requests for alice and leave some pending;
    // test/e2e/rate-limits*.test.ts set their own (an empty value means the server default).
    env: {
      LOG_LEVEL: 'warn',
      CIBA_RATE_LIMIT_USER: '10000/60',
      CIBA_RATE_LIMIT_CLIENT: '100000/60',
      CIBA_MAX_PENDING_PER_USER: '50',
      ...env,
    },
  });
  const issuer = stack.issuer;
  return {
    stack,
    issuer,
    alice: new DeviceClient(issuer, 'alice-phone', aliceKey),
    bob: new DeviceClient(issuer, 'bob-phone', bobKey),
    rp: (clientId = 'rp', secret = SECRET, post = false) =>
      oidc.discovery(
        new URL(issuer),
        clientId,
        undefined,
        post ? oidc.ClientSecretPost(secret) : oidc.ClientSecretBasic(secret),
        {
          execute: [oidc.allowInsecureRequests],
        },
      ),
    close: () => stack.close(),
  };
}

/** A raw form POST (for error cases openid-client would refuse to send). */
export async function postForm(
  url: string,
  params: Record<string, string> | string,
  headers: Record<string, string> = {},
) {
  const body = typeof params === 'string' ? params : new URLSearchParams(params).toString();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body,
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* not JSON */
  }
  return { status: res.status, headers: res.headers, json, text };
}

export const basic = encodeBasic;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What CloudFormation answers to DescribeStacks (Query protocol, XML) for one stack with these outputs: the stand-in
 * the `--stack` tests of the admin CLI point AWS_ENDPOINT_URL_CLOUDFORMATION at.
 */
export function describeStacksXml(stackName: string, region: string, outputs: Record<string, string>): string {
  const members = Object.entries(outputs)
    .map(([k, v]) => `<member><OutputKey>${k}</OutputKey><OutputValue>${v}</OutputValue></member>`)
    .join('');
  return (
    `<DescribeStacksResponse xmlns="http://cloudformation.amazonaws.com/doc/2010-05-15/"><DescribeStacksResult><Stacks><member>` +
    `<StackName>${stackName}</StackName><StackId>arn:aws:cloudformation:${region}:000000000000:stack/${stackName}/1</StackId>` +
    `<CreationTime>2026-11-30T00:00:00Z</CreationTime><StackStatus>CREATE_COMPLETE</StackStatus>` +
    `<Outputs>${members}</Outputs></member></Stacks></DescribeStacksResult></DescribeStacksResponse>`
  );
}

/** What a child Node process printed, and how it ended. */
export type NodeRun = { status: number | null; stdout: string; stderr: string; json: () => unknown };

/**
 * `node <args>` in a child process (e.g. the admin CLI as `npm run admin` runs it), without blocking this process:
 * the tests' servers run in it.
 */
export function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<NodeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr, json: () => JSON.parse(stdout) as unknown }));
  });
}
