// `npm run bench` section 8b, run in a child process by ./webpush.ts: the AWS calls the dispatch-notifications function
// adds to one flow, per kind of user. Its own in-process local stack (the notification settings must not touch the
// other sections): SMS and e-mail fallbacks on, with `--webhook` also the operator hook (a loopback receiver), one
// seeded user per scenario. Attribution is by invocation: every observed call names the handler invocation that made
// it (functions/adapters/aws.ts), and the dispatch-notifications invocations' calls are the ones counted. Prints one
// line `{"rows": [...]}`.
import { createServer } from 'node:http';
import { CreatePlatformEndpointCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { setAwsCallObserver, type AwsCall } from '../../functions/adapters/aws.ts';
import { sha256b64u } from '../../functions/core/crypto.ts';
import { loadSeed } from '../../functions/admin/seed.ts';
import { generateDeviceKey, publicDeviceJwk } from '../../local/device-client.ts';
import { listen } from '../../local/http-server.ts';
import { startLocalStack } from '../../local/stack.ts';
import { WebPushReceiver } from '../../local/web-push-receiver.ts';
import { BENCH_CLIENT_ID, BENCH_CLIENT_SECRET, BENCH_SERVER_ENV, benchSeed, postForm } from './flow.ts';
import { encodeBasic } from '../../functions/core/client-auth.ts';
import { criticalPathDepth } from './inprocess.ts';
import { freePort } from './child.ts';

export type NotifyCallsRow = {
  scenario: string;
  webhook: boolean;
  /** `Service.Operation` → calls. */
  calls: Record<string, number>;
  total: number;
  /** Sequential AWS round trips (critical path). */
  depth: number;
};

async function main(): Promise<void> {
  const webhook = process.argv.includes('--webhook');
  const hook = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  const hookPort = (await listen(hook, '127.0.0.1', 0, false)).port;
  const receiver = await WebPushReceiver.start();
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const stack = await startLocalStack({
    port,
    issuer,
    dataDir: null,
    quiet: true,
    seed: benchSeed(1).seed,
    env: {
      ...BENCH_SERVER_ENV,
      CIBA_NOTIFY_SMS: 'on',
      CIBA_NOTIFY_EMAIL_FROM: 'ciba@bench.example',
      ...(webhook
        ? {
            CIBA_NOTIFY_WEBHOOK_URL: `http://127.0.0.1:${hookPort}/hook`,
            CIBA_NOTIFY_WEBHOOK_SECRET: `whsec_${Buffer.from('bench-webhook-secret-0123456789ab').toString('base64')}`,
          }
        : {}),
    },
  });
  const sns = new SNSClient({ endpoint: stack.awsEndpoint });
  try {
    const endpoint = await sns.send(
      new CreatePlatformEndpointCommand({
        PlatformApplicationArn: process.env.CIBA_SNS_PLATFORM_FCM_ARN!,
        Token: 'bench-fcm-token',
      }),
    );
    const device = (id: string, channel?: unknown) => ({
      device_id: id,
      jwk: publicDeviceJwk(generateDeviceKey()),
      ...(channel ? { channel } : {}),
    });
    const webPush = (id: string) => ({ type: 'webpush', subscription: receiver.subscribe(id) });
    await loadSeed({
      users: [
        { sub: 'calls-polling', devices: [device('calls-polling-app')] },
        { sub: 'calls-webpush', devices: [device('calls-webpush-browser', webPush('calls-webpush-browser'))] },
        {
          sub: 'calls-both',
          devices: [
            device('calls-both-browser', webPush('calls-both-browser')),
            device('calls-both-app', { type: 'sns', platform: 'fcm', endpoint_arn: endpoint.EndpointArn }),
          ],
        },
        { sub: 'calls-fallback', phone_number: '+15550009999', email: 'fallback@bench.example', email_verified: true },
      ],
    });

    // The dispatcher's calls, by invocation (each call names the handler invocation that made it).
    let recording = false;
    const byInvocation = new Map<string, AwsCall[]>();
    setAwsCallObserver((call) => {
      if (!recording || call.invocation?.function !== 'dispatch-notifications') return;
      const calls = byInvocation.get(call.invocation.awsRequestId) ?? [];
      calls.push(call);
      byInvocation.set(call.invocation.awsRequestId, calls);
    });

    const rows: NotifyCallsRow[] = [];
    const measure = async (scenario: string, act: () => Promise<void>) => {
      byInvocation.clear();
      recording = true;
      await act();
      await stack.sns.drain();
      recording = false;
      const all = [...byInvocation.values()].flat();
      const calls: Record<string, number> = {};
      for (const c of all) calls[`${c.service}.${c.operation}`] = (calls[`${c.service}.${c.operation}`] ?? 0) + 1;
      rows.push({ scenario, webhook, calls, total: all.length, depth: criticalPathDepth(all) });
    };
    const requestFor = async (sub: string) => {
      const res = await postForm(
        `${issuer}/bc-authorize`,
        { scope: 'openid', login_hint: sub, binding_message: 'BENCH-CALLS' },
        encodeBasic(BENCH_CLIENT_ID, BENCH_CLIENT_SECRET),
      );
      if (res.status !== 200) throw new Error(`bc-authorize for ${sub}: ${res.status} ${JSON.stringify(res.json)}`);
      const id = sha256b64u(String(res.json.auth_req_id));
      // The device-topic message (published by notify-device), then its fan-out, then what it sent.
      for (let i = 0; i < 400 && !stack.sns.messages().some((m) => m.message.includes(id)); i++)
        await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
      return id;
    };
    // A warm-up (module loading, VAPID key file, first JWT): not measured.
    await requestFor('calls-webpush');
    await stack.sns.drain();
    await measure(
      'device app polls (no channel), no phone or e-mail',
      async () => void (await requestFor('calls-polling')),
    );
    await measure('one Web Push device', async () => void (await requestFor('calls-webpush')));
    let republish = '';
    await measure('Web Push + SNS mobile push devices', async () => {
      const id = await requestFor('calls-both');
      republish = stack.sns.messages().find((m) => m.message.includes(id))!.message;
    });
    await measure('no device channel: SMS + e-mail fallback', async () => void (await requestFor('calls-fallback')));
    await measure('the same message redelivered (ledger: nothing sent again)', async () => {
      await sns.send(new PublishCommand({ TopicArn: stack.sns.deviceTopicArn, Message: republish }));
      await new Promise((r) => setTimeout(r, 50));
    });
    console.log(JSON.stringify({ rows }));
  } finally {
    setAwsCallObserver(undefined);
    await stack.close();
    await receiver.close();
    hook.closeAllConnections();
    hook.close();
  }
}

if (import.meta.main) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
