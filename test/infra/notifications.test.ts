// Infrastructure of "reaching the user" (docs/notifications.md): the dispatch-notifications subscriber of the device
// topic, the VAPID KMS key, GET /device/config, and the least privilege of each channel (SNS mobile push and SMS, SES,
// the operator hook's secret), each granted only when configured; the UsersUnreachable alarm.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { TOPIC_SUBSCRIBERS } from '../../functions/routes.ts';
import { functionSpecs } from '../../infra/ciba-construct.ts';
import type { CibaServerProps } from '../../infra/ciba-construct.ts';
import {
  actionsOf,
  allPolicyDocuments,
  expectedActions,
  FUNCTION_NAMES,
  functionInfo,
  type Json,
  LOG_WRITE,
  logicalId,
  resourcesFor,
  resourcesOf,
  STAR_RESOURCE_ACTIONS,
  type Synth,
  sortJson,
  synth,
  tmpDirs,
} from './support.ts';

const FCM_APP = 'arn:aws:sns:eu-west-1:123456789012:app/GCM/ciba-app';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ciba/webhook-AbC123';
/** Every channel on: mobile push (FCM), SMS, e-mail and the operator hook. */
const EVERYTHING: CibaServerProps = {
  pushPlatforms: { fcm: FCM_APP },
  settings: {
    notifySms: 'on',
    notifyEmailFrom: 'no-reply@mail.example.com',
    notifyWebhookUrl: 'https://ops.example.com/ciba-hook',
    vapidSubject: 'mailto:ops@example.com',
  },
  notifyWebhookSecretArn: SECRET_ARN,
};

let plain: Synth;
let full: Synth;
before(() => {
  plain = synth({}, 'Plain');
  full = synth(EVERYTHING, 'Full');
});
after(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

const vapidKeyArn = (s: Synth): Json => ({ 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.vapidKey), 'Arn'] });
const fnArn = (s: Synth, name: string): Json => ({ 'Fn::GetAtt': [functionInfo(s, name).id, 'Arn'] });

describe('dispatch-notifications: the device topic subscriber', () => {
  it('is in the route table as the device topic subscriber: 60 s, Lambda retries twice (its ledger prevents resends)', () => {
    const sub = TOPIC_SUBSCRIBERS.find((t) => t.name === 'dispatch-notifications');
    assert.deepEqual(sub && { topic: sub.topic, timeoutSeconds: sub.timeoutSeconds, retries: sub.retries }, {
      topic: 'device',
      timeoutSeconds: 60,
      retries: 2,
    });
    const { id, props } = functionInfo(plain, 'dispatch-notifications');
    assert.equal(props.Timeout, 60);
    const configs = resourcesOf(plain.json, 'AWS::Lambda::EventInvokeConfig')
      .map(([, c]) => c.Properties)
      .filter((c) => isDeepStrictEqual(c.FunctionName, { Ref: id }));
    assert.deepEqual(configs, [
      { FunctionName: { Ref: id }, Qualifier: '$LATEST', MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
    ]);
  });

  it('the device topic has exactly this Lambda subscription, and SNS may invoke it for that topic only', () => {
    const topicId = logicalId(plain.stack, plain.stack.server.deviceTopic);
    const subscriptions = resourcesOf(plain.json, 'AWS::SNS::Subscription')
      .map(([, sub]) => sub.Properties)
      .filter((p) => isDeepStrictEqual(p.TopicArn, { Ref: topicId }));
    assert.deepEqual(subscriptions, [
      { Protocol: 'lambda', TopicArn: { Ref: topicId }, Endpoint: fnArn(plain, 'dispatch-notifications') },
    ]);
    const permissions = resourcesOf(plain.json, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => p.Principal === 'sns.amazonaws.com' && isDeepStrictEqual(p.SourceArn, { Ref: topicId }));
    assert.deepEqual(permissions, [
      {
        Action: 'lambda:InvokeFunction',
        FunctionName: fnArn(plain, 'dispatch-notifications'),
        Principal: 'sns.amazonaws.com',
        SourceArn: { Ref: topicId },
      },
    ]);
  });

  it('without channels configured it may only read/write the table and sign with the VAPID key', () => {
    const { props, statements } = functionInfo(plain, 'dispatch-notifications');
    assert.deepEqual(
      [...actionsOf(statements)].sort(),
      [
        'dynamodb:BatchGetItem',
        'dynamodb:DeleteItem',
        'dynamodb:GetItem',
        'dynamodb:PutItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
        'kms:GetPublicKey',
        'kms:Sign',
        ...LOG_WRITE,
      ].sort(),
    );
    assert.deepEqual(resourcesFor(statements, 'kms:Sign'), [vapidKeyArn(plain)]);
    const env = props.Environment.Variables;
    assert.deepEqual(env.CIBA_VAPID_KMS_KEY_ID, vapidKeyArn(plain));
    assert.equal(env.CIBA_NOTIFY_WEBHOOK_SECRET_ARN, undefined);
    assert.equal(env.DEVICE_TOPIC_ARN, undefined, 'it subscribes to the topic, it does not publish to it');
  });
});

describe('VAPID key and GET /device/config', () => {
  it('a KMS P-256 signing key with an alias, retained', () => {
    const id = logicalId(plain.stack, plain.stack.server.vapidKey);
    const key = plain.json.Resources[id];
    assert.equal(key.Type, 'AWS::KMS::Key');
    assert.equal(key.Properties.KeySpec, 'ECC_NIST_P256');
    assert.equal(key.Properties.KeyUsage, 'SIGN_VERIFY');
    assert.equal(key.DeletionPolicy, 'Retain');
    const aliases = resourcesOf(plain.json, 'AWS::KMS::Alias').filter(([, a]) =>
      isDeepStrictEqual(a.Properties.TargetKeyId, { 'Fn::GetAtt': [id, 'Arn'] }),
    );
    assert.equal(aliases.length, 1);
    assert.equal(aliases[0]![1].Properties.AliasName, 'alias/Plain-CibaServer/vapid');
  });

  it('only dispatch-notifications signs with it; device-config only reads its public key; nobody else touches it', () => {
    const expected: Record<string, string[]> = {
      'dispatch-notifications': ['kms:GetPublicKey', 'kms:Sign'],
      'device-config': ['kms:GetPublicKey'],
    };
    for (const name of FUNCTION_NAMES) {
      const statements = functionInfo(plain, name).statements;
      const onKey = statements.filter((st) => st.Resource.some((r) => isDeepStrictEqual(r, vapidKeyArn(plain))));
      assert.deepEqual([...actionsOf(onKey)].sort(), expected[name] ?? [], name);
      for (const st of onKey) assert.deepEqual(st.Resource, [vapidKeyArn(plain)], name);
      assert.equal(
        'CIBA_VAPID_KMS_KEY_ID' in functionInfo(plain, name).props.Environment.Variables,
        name in expected,
        name,
      );
    }
  });

  it('GET /device/config is a route of the device-config function, with no data-plane access', () => {
    const routes = resourcesOf(plain.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    assert.ok(routes.includes('GET /device/config'));
    const actions = [...actionsOf(functionInfo(plain, 'device-config').statements)];
    assert.deepEqual(actions.sort(), ['kms:GetPublicKey', ...LOG_WRITE].sort());
  });
});

describe('channels: each permission only when configured, on its own resources', () => {
  it('every function gets exactly what its access and the configured channels entitle it to', () => {
    for (const spec of functionSpecs()) {
      const { statements } = functionInfo(full, spec.name);
      assert.deepEqual(
        [...actionsOf(statements)].sort(),
        [...expectedActions(spec.access, true, { sms: true, email: true, webhook: true }), ...LOG_WRITE].sort(),
        spec.name,
      );
    }
  });

  it('dispatch-notifications: SNS Publish to the platform endpoints only, or on "*" when SMS is on (AWS has no phone-number resource)', () => {
    const publishOf = (s: Synth) =>
      functionInfo(s, 'dispatch-notifications')
        .statements.filter((st) => st.Action.includes('sns:Publish'))
        .map((st) => ({ Action: st.Action, Resource: st.Resource }));
    const pushOnly = synth({ pushPlatforms: { fcm: FCM_APP } }, 'PushOnly');
    assert.deepEqual(publishOf(pushOnly), [
      { Action: ['sns:Publish'], Resource: ['arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/ciba-app/*'] },
    ]);
    assert.deepEqual(publishOf(full), [{ Action: ['sns:Publish'], Resource: ['*'] }]);
    assert.deepEqual(publishOf(plain), []);
    // The only Resource "*" beyond AWS's own requirements in the whole template.
    const stars = allPolicyDocuments(full.json)
      .flatMap((d) => d.statements.map((st) => ({ ...st, where: d.where, kind: d.kind })))
      .filter((st) => st.Effect === 'Allow' && st.kind === 'identity' && st.Resource.includes('*'))
      .filter((st) => !st.Action.every((a) => STAR_RESOURCE_ACTIONS.has(a)));
    assert.deepEqual(
      stars.map((st) => [st.where, st.Action]),
      [[logicalIdOfPolicy(full, 'dispatch-notifications'), ['sns:Publish']]],
    );
    // Without SMS there is no "*" at all.
    for (const name of FUNCTION_NAMES)
      assert.ok(!resourcesFor(functionInfo(plain, name).statements, 'sns:Publish').includes('*'), name);
  });

  it('dispatch-notifications: SES SendEmail from the sender identity (address or its domain); GetSecretValue on the hook secret only', () => {
    const statements = functionInfo(full, 'dispatch-notifications').statements;
    const identity = (name: string) => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':ses:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          `:identity/${name}`,
        ],
      ],
    });
    assert.deepEqual(
      sortJson(resourcesFor(statements, 'ses:SendEmail')),
      sortJson([identity('no-reply@mail.example.com'), identity('mail.example.com')]),
    );
    assert.deepEqual(resourcesFor(statements, 'secretsmanager:GetSecretValue'), [SECRET_ARN]);
    for (const name of FUNCTION_NAMES) {
      if (name === 'dispatch-notifications') continue;
      const actions = actionsOf(functionInfo(full, name).statements);
      assert.ok(!actions.has('ses:SendEmail') && !actions.has('secretsmanager:GetSecretValue'), name);
    }
  });

  it('the secret ARN goes to the dispatcher only; the channel settings are plain settings', () => {
    for (const name of FUNCTION_NAMES) {
      const env = functionInfo(full, name).props.Environment.Variables;
      assert.equal(
        env.CIBA_NOTIFY_WEBHOOK_SECRET_ARN,
        name === 'dispatch-notifications' ? SECRET_ARN : undefined,
        name,
      );
      assert.equal(env.CIBA_NOTIFY_WEBHOOK_SECRET, undefined, `${name}: the secret itself is never configuration`);
    }
    const env = functionInfo(full, 'dispatch-notifications').props.Environment.Variables;
    assert.equal(env.CIBA_NOTIFY_SMS, 'on');
    assert.equal(env.CIBA_NOTIFY_EMAIL_FROM, 'no-reply@mail.example.com');
    assert.equal(env.CIBA_NOTIFY_WEBHOOK_URL, 'https://ops.example.com/ciba-hook');
    assert.equal(env.CIBA_VAPID_SUBJECT, 'mailto:ops@example.com');
    // No secret is created by the construct.
    assert.equal(resourcesOf(full.json, 'AWS::SecretsManager::Secret').length, 0);
  });

  it('rejects an incomplete or unsafe channel configuration at synth', () => {
    const hook = 'https://ops.example.com/hook';
    const cases: [CibaServerProps, RegExp][] = [
      [{ settings: { notifyWebhookUrl: hook } }, /notifyWebhookUrl needs notifyWebhookSecretArn/],
      [{ notifyWebhookSecretArn: SECRET_ARN }, /notifyWebhookSecretArn is only used with settings\.notifyWebhookUrl/],
      [
        { settings: { notifyWebhookUrl: 'http://ops.example.com/hook' }, notifyWebhookSecretArn: SECRET_ARN },
        /notifyWebhookUrl must be an https URL/,
      ],
      [
        {
          settings: { notifyWebhookUrl: hook },
          notifyWebhookSecretArn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ciba/webhook',
        },
        /complete ARN of a Secrets Manager secret/,
      ],
      [{ settings: { notifyEmailFrom: 'no-reply' } }, /notifyEmailFrom must be an e-mail address/],
      [{ settings: { vapidSubject: 'ops@example.com' } }, /vapidSubject must be a mailto: or https: URL/],
      [{ settings: { notifySms: 'yes' as 'on' } }, /settings\.notifySms must be `on` or `off`/],
    ];
    for (const [props, error] of cases) assert.throws(() => synth(props, 'BadChannels'), error);
  });
});

describe('monitoring: users not reached', () => {
  it("UsersUnreachable (EMF, this server's Server dimension) ≥ 1 in 5 minutes alarms; the dashboard graphs the channels", () => {
    const alarms = resourcesOf(plain.json, 'AWS::CloudWatch::Alarm').map(([id, a]) => ({ id, ...a.Properties }));
    const found = alarms.filter((a) => a.Namespace === 'CibaServer' && a.MetricName === 'UsersUnreachable');
    assert.equal(found.length, 1);
    const alarm = found[0]!;
    assert.deepEqual(alarm.Dimensions, [{ Name: 'Server', Value: plain.stack.server.serverName }]);
    assert.equal(alarm.Statistic, 'Sum');
    assert.equal(alarm.Period, 300);
    assert.equal(alarm.Threshold, 1);
    assert.equal(alarm.ComparisonOperator, 'GreaterThanOrEqualToThreshold');
    assert.equal(alarm.TreatMissingData, 'notBreaching');
    assert.equal(alarm.AlarmName, 'Plain-CibaServer-Notifications-UsersUnreachable');
    assert.match(alarm.AlarmDescription, /Look first at: the dispatch-notifications logs/);
    const [[, dashboard]] = resourcesOf(plain.json, 'AWS::CloudWatch::Dashboard') as [[string, Json]];
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const metric of ['NotificationsSent', 'NotificationsFailed', 'UsersUnreachable'])
      assert.ok(body.includes(`"CibaServer\\",\\"${metric}\\"`), metric);
  });
});

/** The logical id of the IAM policy attached to a function's role (where its statements live). */
function logicalIdOfPolicy(s: Synth, name: string): string {
  const roleId = functionInfo(s, name).roleId;
  const [[id]] = resourcesOf(s.json, 'AWS::IAM::Policy').filter(([, p]) =>
    (p.Properties.Roles as Json[]).some((r) => r.Ref === roleId),
  ) as [[string, Json]];
  return id;
}
