// The local stack's stand-ins for what AWS sends to users (docs/notifications.md, "The local stack"): SNS Publish to a
// phone number or a platform endpoint, and SES v2 SendEmail, driven through the real AWS SDK clients over the local
// AWS endpoint, end in the outbox (local/outbox.ts) instead of a phone or a mailbox.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { SendEmailCommand, SESv2Client } from '@aws-sdk/client-sesv2';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from '../../local/dynamodb.ts';
import { LocalSns } from '../../local/sns.ts';
import { LocalSes } from '../../local/ses.ts';
import { Outbox, formatOutboxEntry } from '../../local/outbox.ts';
import { startAwsEndpoint, type AwsEndpoint } from '../../local/aws-endpoint.ts';

let dir: string;
let outbox: Outbox;
let sns: LocalSns;
let endpoint: AwsEndpoint;
let snsClient: SNSClient;
let sesClient: SESv2Client;
const printed: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ciba-outbox-'));
  outbox = new Outbox(join(dir, 'outbox.jsonl'), (line) => printed.push(line));
  sns = new LocalSns({
    log: () => {},
    onDirectPublish: (m) => outbox.append({ channel: m.channel, to: m.to, message: m.message }, m.time),
  });
  const ses = new LocalSes({
    log: () => {},
    onSend: (e) => {
      for (const to of e.to) outbox.append({ channel: 'email', to, message: `${e.subject}\n\n${e.text}` }, e.time);
    },
  });
  endpoint = await startAwsEndpoint({ sns, ses, log: () => {} });
  const config = { endpoint: endpoint.url, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS };
  snsClient = new SNSClient(config);
  sesClient = new SESv2Client(config);
});

after(async () => {
  snsClient.destroy();
  sesClient.destroy();
  await endpoint.close();
  await rm(dir, { recursive: true, force: true });
});

describe('SNS: SMS and mobile push go to the outbox', () => {
  test('a transactional SMS to an E.164 number', async () => {
    const out = await snsClient.send(
      new PublishCommand({
        PhoneNumber: '+15550001234',
        Message: 'Review it in your device app',
        MessageAttributes: { 'AWS.SNS.SMS.SMSType': { DataType: 'String', StringValue: 'Transactional' } },
      }),
    );
    assert.ok(out.MessageId);
    const entry = outbox.entries().at(-1)!;
    assert.deepEqual(
      { ...entry, at: undefined },
      {
        channel: 'sms',
        to: '+15550001234',
        message: 'Review it in your device app',
        at: undefined,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(entry.at)));
    assert.equal(printed.at(-1), formatOutboxEntry(entry));
  });

  test('a number that is not E.164 is refused, as SNS does', async () => {
    await assert.rejects(
      snsClient.send(new PublishCommand({ PhoneNumber: '555-1234', Message: 'x' })),
      (e: Error) => e.name === 'InvalidParameterException',
    );
  });

  test('a platform endpoint gets the `default` entry of a json message; an unknown endpoint is NotFound', async () => {
    const app = sns.createPlatformApplication('GCM', 'outbox-test');
    const arn = sns.createPlatformEndpoint(app, 'token-1');
    const payload = JSON.stringify({ type: 'ciba.authentication_request', request_id: 'r', expires_at: 1 });
    await snsClient.send(
      new PublishCommand({
        TargetArn: arn,
        MessageStructure: 'json',
        Message: JSON.stringify({ default: payload, GCM: JSON.stringify({ data: { type: 'x' } }) }),
      }),
    );
    assert.deepEqual(
      { channel: outbox.entries().at(-1)!.channel, to: outbox.entries().at(-1)!.to },
      { channel: 'sns', to: arn },
    );
    assert.equal(outbox.entries().at(-1)!.message, payload);
    await assert.rejects(
      snsClient.send(new PublishCommand({ TargetArn: `${arn.slice(0, -4)}0000`, Message: 'x' })),
      (e: Error) => e.name === 'NotFoundException',
    );
  });
});

describe('SES v2: SendEmail goes to the outbox', () => {
  test('a plain-text e-mail, one outbox line per recipient', async () => {
    const out = await sesClient.send(
      new SendEmailCommand({
        FromEmailAddress: 'ciba@example.com',
        Destination: { ToAddresses: ['dave@example.com'] },
        Content: { Simple: { Subject: { Data: 'Sign-in request' }, Body: { Text: { Data: 'Open the app' } } } },
      }),
    );
    assert.ok(out.MessageId);
    const entry = outbox.entries().at(-1)!;
    assert.equal(entry.channel, 'email');
    assert.equal(entry.to, 'dave@example.com');
    assert.equal(entry.message, 'Sign-in request\n\nOpen the app');
    assert.equal(printed.at(-1), '✉️  e-mail to dave@example.com: Sign-in request / Open the app');
  });

  test('a bad sender is a BadRequestException, as the SDK sees it', async () => {
    await assert.rejects(
      sesClient.send(
        new SendEmailCommand({
          FromEmailAddress: 'not-an-address',
          Destination: { ToAddresses: ['dave@example.com'] },
          Content: { Simple: { Subject: { Data: 's' }, Body: { Text: { Data: 't' } } } },
        }),
      ),
      (e: Error) => e.name === 'BadRequestException',
    );
  });
});
