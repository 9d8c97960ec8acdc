// Infrastructure tests: the functions of the synthesized CibaStack and their least-privilege permissions (the
// expected permissions are written out again on purpose: the tests are the specification, the construct the
// implementation).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { TOPIC_SUBSCRIBERS } from '../../functions/routes.ts';
import { TABLE } from '../../infra/table.ts';
import { LAMBDA_NODE_OPTIONS } from '../../infra/bundling.ts';
import { functionSpecs, WORKFLOWS } from '../../infra/ciba-construct.ts';
import {
  FUNCTION_NAMES,
  type Json,
  type Synth,
  synth,
  resourcesOf,
  logicalId,
  functionInfo,
  sortJson,
  actionsOf,
  resourcesFor,
  expectedActions,
  LOG_WRITE,
  STAR_RESOURCE_ACTIONS,
  isAccountRoot,
  allPolicyDocuments,
  dependenciesOf,
  defaultStack,
} from './support.ts';

// ---- Tests ------------------------------------------------------------------------------------------------

let s: Synth;
before(() => {
  s = defaultStack();
});

describe('CibaStack: functions', () => {
  it('one function per route-table name, all Node.js 24 on the chosen architecture, 512 MB, 10 s (subscribers: their own timeout)', () => {
    const fns = resourcesOf(s.json, 'AWS::Lambda::Function');
    assert.equal(fns.length, FUNCTION_NAMES.length);
    assert.deepEqual(Object.keys(s.stack.server.functions).sort(), [...FUNCTION_NAMES].sort());
    const timeouts = new Map(
      FUNCTION_NAMES.map((name) => [
        functionInfo(s, name).id,
        TOPIC_SUBSCRIBERS.find((t) => t.name === name)?.timeoutSeconds ?? 10,
      ]),
    );
    for (const [id, fn] of fns) {
      assert.equal(fn.Properties.Runtime, 'nodejs24.x', id);
      assert.deepEqual(fn.Properties.Architectures, ['arm64'], id);
      assert.equal(fn.Properties.MemorySize, 512, id);
      assert.equal(fn.Properties.Timeout, timeouts.get(id), id);
      // Nothing is in a VPC: the deliver function POSTs to client endpoints on the internet.
      assert.equal(fn.Properties.VpcConfig, undefined, id);
      assert.equal(fn.Properties.Handler, 'index.handler', id);
      assert.equal(fn.Properties.Environment.Variables.NODE_OPTIONS ?? '', LAMBDA_NODE_OPTIONS, id);
      assert.equal(fn.Properties.Environment.Variables.KEYS_SOURCE, 'kms', id);
    }
  });

  it('each function logs to its own log group; every log group has a retention', () => {
    const logGroups = resourcesOf(s.json, 'AWS::Logs::LogGroup');
    for (const [id, lg] of logGroups) assert.equal(lg.Properties.RetentionInDays, 30, id);
    const used = new Set<string>();
    for (const name of FUNCTION_NAMES) {
      const { props } = functionInfo(s, name);
      const lgId: string = props.LoggingConfig.LogGroup.Ref;
      assert.equal(s.json.Resources[lgId].Type, 'AWS::Logs::LogGroup');
      assert.ok(!used.has(lgId), `${name} has a log group of its own`);
      used.add(lgId);
    }
    // functions + state machine + API access logs
    assert.equal(logGroups.length, FUNCTION_NAMES.length + 2);
  });

  it('deliver: a 30 s delivery-topic subscriber without Lambda retries (the workflow retries), events kept no longer than one attempt', () => {
    const sub = TOPIC_SUBSCRIBERS.find((t) => t.name === 'deliver');
    assert.deepEqual(sub && { topic: sub.topic, timeoutSeconds: sub.timeoutSeconds }, {
      topic: 'delivery',
      timeoutSeconds: 30,
    });
    const { id, props } = functionInfo(s, 'deliver');
    assert.equal(props.Runtime, 'nodejs24.x');
    assert.equal(props.Timeout, 30);
    const notify = WORKFLOWS.find((w) => w.name === 'notify')!;
    const asl = JSON.parse(readFileSync(notify.path, 'utf8')) as { States: Record<string, Json> };
    const attempt: number = asl.States.Deliver.TimeoutSeconds;
    assert.ok(props.Timeout < attempt, 'a delivery finishes (or dies) before the workflow gives up on the attempt');
    const configs = resourcesOf(s.json, 'AWS::Lambda::EventInvokeConfig')
      .map(([, c]) => c.Properties)
      .filter((c) => isDeepStrictEqual(c.FunctionName, { Ref: id }));
    assert.deepEqual(configs, [
      {
        FunctionName: { Ref: id },
        Qualifier: '$LATEST',
        MaximumRetryAttempts: 0,
        MaximumEventAgeInSeconds: Math.max(60, attempt),
      },
    ]);
  });

  it('environment: ARNs of the state machine and the topics only where the function uses them', () => {
    const sealingKeyArn = { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.sealingKey), 'Arn'] };
    for (const spec of functionSpecs()) {
      const env = functionInfo(s, spec.name).props.Environment.Variables;
      for (const required of ['ISSUER', 'TABLE_NAME', 'KMS_RSA_KEY_ID', 'KMS_EC_KEY_ID'])
        assert.ok(env[required], `${spec.name}: ${required}`);
      // functions/config.ts requires the sealing key id of every function with KEYS_SOURCE=kms (IAM decides who may use it).
      assert.deepEqual(env.KMS_SEAL_KEY_ID, sealingKeyArn, spec.name);
      for (const variable of ['POLL_STATE_MACHINE_ARN', 'NOTIFY_STATE_MACHINE_ARN'])
        assert.equal(
          variable in env,
          Boolean(spec.access.startExecution || spec.access.sendTaskResult),
          `${spec.name}: ${variable}`,
        );
      assert.equal('DEVICE_TOPIC_ARN' in env, Boolean(spec.access.publishDevice), `${spec.name}: DEVICE_TOPIC_ARN`);
      assert.equal(
        'DELIVERY_TOPIC_ARN' in env,
        Boolean(spec.access.publishDelivery),
        `${spec.name}: DELIVERY_TOPIC_ARN`,
      );
      if ('DELIVERY_TOPIC_ARN' in env)
        assert.deepEqual(env.DELIVERY_TOPIC_ARN, { Ref: logicalId(s.stack, s.stack.server.deliveryTopic) });
      assert.equal('DELIVERY_DLQ_URL' in env, Boolean(spec.access.sendDeadLetter), `${spec.name}: DELIVERY_DLQ_URL`);
      if ('DELIVERY_DLQ_URL' in env)
        assert.deepEqual(env.DELIVERY_DLQ_URL, { Ref: logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue) });
      // Tunables appear only when configured.
      for (const tunable of ['CIBA_MAX_EXPIRES_IN', 'CIBA_DELIVERY_WINDOW', 'CIBA_DELIVERY_TIMEOUT'])
        assert.ok(!(tunable in env));
      assert.equal('POLL_STATE_MACHINE_ARN' in env, 'NOTIFY_STATE_MACHINE_ARN' in env);
      if ('POLL_STATE_MACHINE_ARN' in env) {
        assert.deepEqual(env.POLL_STATE_MACHINE_ARN, s.stack.resolve(s.stack.server.stateMachineArns.poll));
        assert.deepEqual(env.NOTIFY_STATE_MACHINE_ARN, s.stack.resolve(s.stack.server.stateMachineArns.notify));
      }
    }
  });

  it('the ISSUER is the API endpoint by default', () => {
    const env = functionInfo(s, 'discovery').props.Environment.Variables;
    assert.deepEqual(env.ISSUER, { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.api), 'ApiEndpoint'] });
  });
});

describe('CibaStack: least privilege', () => {
  it("every function's role allows exactly what its `access` says, plus writing its own logs", () => {
    for (const spec of functionSpecs()) {
      const { props, statements } = functionInfo(s, spec.name);
      assert.deepEqual(
        [...actionsOf(statements)].sort(),
        [...expectedActions(spec.access), ...LOG_WRITE].sort(),
        spec.name,
      );
      assert.deepEqual(
        resourcesFor(statements, 'logs:PutLogEvents'),
        [{ 'Fn::GetAtt': [props.LoggingConfig.LogGroup.Ref, 'Arn'] }],
        spec.name,
      );
    }
  });

  it('jwks and discovery have no data-plane access; jwks only reads public keys', () => {
    for (const name of ['jwks', 'discovery']) {
      const actions = [...actionsOf(functionInfo(s, name).statements)];
      assert.ok(!actions.some((a) => /^(dynamodb|states|sns):/.test(a)), `${name}: ${actions.join(', ')}`);
      assert.ok(!actions.includes('kms:Sign'), name);
    }
    assert.ok(actionsOf(functionInfo(s, 'jwks').statements).has('kms:GetPublicKey'));
    assert.ok(!actionsOf(functionInfo(s, 'discovery').statements).has('kms:GetPublicKey'));
  });

  it('token signs but cannot start executions; bc-authorize starts but cannot answer tasks', () => {
    const token = actionsOf(functionInfo(s, 'token').statements);
    assert.ok(token.has('kms:Sign'));
    assert.ok(!token.has('states:StartExecution'));
    const bc = functionInfo(s, 'bc-authorize').statements;
    assert.deepEqual(
      sortJson(resourcesFor(bc, 'states:StartExecution')),
      sortJson(s.stack.resolve(Object.values(s.stack.server.stateMachineArns))),
    );
    assert.ok(!actionsOf(bc).has('states:SendTaskSuccess'));
    assert.ok(!actionsOf(bc).has('kms:Sign'));
  });

  it('only notify-device and device-enrol publish to the device topic, only enqueue-delivery to the delivery topic, nothing else', () => {
    const publishers: Record<string, Json[]> = {
      'notify-device': [{ Ref: logicalId(s.stack, s.stack.server.deviceTopic) }],
      'device-enrol': [{ Ref: logicalId(s.stack, s.stack.server.deviceTopic) }],
      'enqueue-delivery': [{ Ref: logicalId(s.stack, s.stack.server.deliveryTopic) }],
    };
    for (const name of FUNCTION_NAMES) {
      const statements = functionInfo(s, name).statements;
      assert.deepEqual(resourcesFor(statements, 'sns:Publish'), publishers[name] ?? [], name);
    }
  });

  it('sealing key: bc-authorize and deliver seal and unseal, token only unseals (client_secret_jwt), registration only seals, nobody else touches it; always with the sealing context', () => {
    const sealingKeyArn = { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.sealingKey), 'Arn'] };
    const expected: Record<string, string[]> = {
      'bc-authorize': ['kms:Decrypt', 'kms:GenerateDataKey'],
      token: ['kms:Decrypt'],
      deliver: ['kms:Decrypt', 'kms:GenerateDataKey'],
      // Dynamic registration seals client_secret_jwt secrets it issues; it never opens one.
      register: ['kms:GenerateDataKey'],
      // Revocation and introspection authenticate clients as the token endpoint does (client_secret_jwt secrets).
      revoke: ['kms:Decrypt'],
      introspect: ['kms:Decrypt'],
      'client-configuration': ['kms:GenerateDataKey'],
    };
    for (const name of FUNCTION_NAMES) {
      const statements = functionInfo(s, name).statements;
      const onKey = statements.filter((st) => st.Resource.some((r) => isDeepStrictEqual(r, sealingKeyArn)));
      assert.deepEqual([...actionsOf(onKey)].sort(), expected[name] ?? [], name);
      for (const st of onKey) {
        assert.deepEqual(st.Resource, [sealingKeyArn], name);
        assert.deepEqual(st.Condition, { StringEquals: { 'kms:EncryptionContext:purpose': 'ciba-sealing' } }, name);
      }
      // Sealing actions on nothing else (e.g. the signing keys).
      for (const action of [
        'kms:GenerateDataKey',
        'kms:Decrypt',
        'kms:Encrypt',
        'kms:ReEncryptFrom',
        'kms:ReEncryptTo',
      ]) {
        for (const r of resourcesFor(statements, action)) assert.deepEqual(r, sealingKeyArn, `${name}: ${action}`);
      }
    }
  });

  it('bc-authorize reads the public signing keys (id_token_hint) on the two signing keys only, but cannot sign', () => {
    const keyArns = [s.stack.server.signingKeys!.rsa, s.stack.server.signingKeys!.ec].map((k) => ({
      'Fn::GetAtt': [logicalId(s.stack, k), 'Arn'],
    }));
    const bc = functionInfo(s, 'bc-authorize').statements;
    assert.deepEqual(sortJson(resourcesFor(bc, 'kms:GetPublicKey')), sortJson(keyArns));
    const kmsActions = [...actionsOf(bc)].filter((a) => a.startsWith('kms:')).sort();
    assert.deepEqual(kmsActions, ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:GetPublicKey']);
    assert.ok(!actionsOf(bc).has('kms:Sign'));
    // Nothing on the signing keys but GetPublicKey.
    for (const st of bc.filter((x) => x.Resource.some((r) => keyArns.some((k) => isDeepStrictEqual(r, k)))))
      assert.deepEqual(st.Action, ['kms:GetPublicKey']);
  });

  it('token unseals (client_secret_jwt secrets) but cannot seal', () => {
    const token = actionsOf(functionInfo(s, 'token').statements);
    assert.ok(token.has('kms:Decrypt'));
    assert.ok(!token.has('kms:GenerateDataKey'));
  });

  it('deliver answers tasks, signs push tokens, uses the table and sends dead letters, but cannot start executions or publish', () => {
    assert.deepEqual(
      functionSpecs()
        .filter((spec) => spec.access.sendDeadLetter)
        .map((spec) => spec.name),
      ['deliver'],
      'only deliver writes dead letters',
    );
    assert.ok('DELIVERY_DLQ_URL' in functionInfo(s, 'deliver').props.Environment.Variables);
    const deliver = functionInfo(s, 'deliver').statements;
    assert.deepEqual(resourcesFor(deliver, 'sqs:SendMessage'), [
      { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue), 'Arn'] },
    ]);
    assert.ok(!actionsOf(deliver).has('sqs:ReceiveMessage') && !actionsOf(deliver).has('sqs:DeleteMessage'));
    const actions = actionsOf(deliver);
    assert.ok(!actions.has('states:StartExecution'));
    assert.ok(!actions.has('sns:Publish'));
    assert.deepEqual(
      sortJson(resourcesFor(deliver, 'states:SendTaskSuccess')),
      sortJson(s.stack.resolve(Object.values(s.stack.server.stateMachineArns))),
    );
    assert.ok(actions.has('kms:Sign'));
    assert.ok(actions.has('dynamodb:UpdateItem'));
  });

  it('table access is on the table and its index only; key access on the two signing keys (and the VAPID key) only', () => {
    const tableArn = { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.table), 'Arn'] };
    const signingKeyArns = [s.stack.server.signingKeys!.rsa, s.stack.server.signingKeys!.ec].map((k) => ({
      'Fn::GetAtt': [logicalId(s.stack, k), 'Arn'],
    }));
    const vapidKeyArn = { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.vapidKey), 'Arn'] };
    for (const spec of functionSpecs()) {
      const name = spec.name;
      const keyArns = [...(spec.access.keys ? signingKeyArns : []), ...(spec.access.vapid ? [vapidKeyArn] : [])];
      const statements = functionInfo(s, name).statements;
      const tableResources = resourcesFor(statements, 'dynamodb:GetItem');
      if (tableResources.length)
        assert.deepEqual(
          sortJson(tableResources),
          sortJson([tableArn, { 'Fn::Join': ['', [tableArn, `/index/${TABLE.userIndex.name}`]] }]),
          name,
        );
      const kmsResources = resourcesFor(statements, 'kms:GetPublicKey');
      // Order-insensitive: the minimizePolicies feature flag sorts merged resources.
      if (kmsResources.length) assert.deepEqual(sortJson(kmsResources), sortJson(keyArns), name);
    }
  });

  it('no wildcard actions, no Scan, no Resource "*" except the documented AWS requirements', () => {
    for (const doc of allPolicyDocuments(s.json)) {
      for (const st of doc.statements) {
        const where = `${doc.where}: ${JSON.stringify(st)}`;
        const rootKeyAdmin =
          doc.kind === 'key' && isAccountRoot(st.Principal) && st.Action.length === 1 && st.Action[0] === 'kms:*';
        // A resource policy may deny a whole service (the dead-letter queue's TLS-only statement denies sqs:*).
        const denyService = doc.kind === 'resource' && st.Effect === 'Deny';
        for (const action of st.Action) {
          assert.notEqual(action, '*', where);
          assert.ok(
            denyService || !['dynamodb:*', 'states:*', 'sns:*', 'sqs:*', 'lambda:*', 'iam:*'].includes(action),
            where,
          );
          assert.ok(rootKeyAdmin || denyService || !action.endsWith(':*'), where);
          assert.notEqual(action, 'dynamodb:Scan', where);
        }
        if (st.Effect === 'Allow' && st.Resource.includes('*')) {
          assert.ok(rootKeyAdmin || st.Action.every((a) => STAR_RESOURCE_ACTIONS.has(a)), `Resource "*": ${where}`);
        }
      }
    }
  });

  it('SNS push endpoints: none without pushPlatforms; with them, enrol and channel create endpoints in the configured applications only, and those and remove delete only their endpoints', () => {
    for (const name of FUNCTION_NAMES) {
      const actions = actionsOf(functionInfo(s, name).statements);
      assert.ok(!actions.has('sns:CreatePlatformEndpoint') && !actions.has('sns:DeleteEndpoint'), name);
      assert.equal(functionInfo(s, name).props.Environment.Variables.CIBA_SNS_PLATFORM_FCM_ARN, undefined, name);
    }
    const fcm = 'arn:aws:sns:eu-west-1:123456789012:app/GCM/ciba-app';
    const apns = 'arn:aws:sns:eu-west-1:123456789012:app/APNS/ciba-app';
    const pushed = synth({ pushPlatforms: { fcm, apns } }, 'Pushed');
    const endpoints = [
      'arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/ciba-app/*',
      'arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/ciba-app/*',
    ];
    const expected: Record<string, { create: string[]; remove: string[] }> = {
      'device-enrol': { create: [fcm, apns], remove: endpoints },
      'device-channel': { create: [fcm, apns], remove: endpoints },
      'device-remove': { create: [], remove: endpoints },
    };
    for (const spec of functionSpecs()) {
      const { props, statements } = functionInfo(pushed, spec.name);
      assert.deepEqual(
        [...actionsOf(statements)].sort(),
        [...expectedActions(spec.access, true), ...LOG_WRITE].sort(),
        spec.name,
      );
      const want = expected[spec.name] ?? { create: [], remove: [] };
      assert.deepEqual(resourcesFor(statements, 'sns:CreatePlatformEndpoint').sort(), want.create.sort(), spec.name);
      assert.deepEqual(resourcesFor(statements, 'sns:DeleteEndpoint').sort(), want.remove.sort(), spec.name);
      // Only the functions that make endpoints are told where.
      const env = props.Environment.Variables;
      const makes = want.create.length > 0;
      assert.equal(env.CIBA_SNS_PLATFORM_FCM_ARN, makes ? fcm : undefined, spec.name);
      assert.equal(env.CIBA_SNS_PLATFORM_APNS_ARN, makes ? apns : undefined, spec.name);
      assert.equal(env.CIBA_SNS_PLATFORM_APNS_SANDBOX_ARN, undefined, spec.name);
    }
    assert.throws(
      () => synth({ pushPlatforms: { fcm: 'arn:aws:sns:eu-west-1:123456789012:ciba-topic' } }, 'BadPush'),
      /pushPlatforms\.fcm must be an SNS platform application ARN/,
    );
  });

  it('no managed policies: no role gets AWSLambdaBasicExecutionRole or any other', () => {
    for (const [id, role] of resourcesOf(s.json, 'AWS::IAM::Role'))
      assert.equal(role.Properties.ManagedPolicyArns, undefined, id);
  });

  it('has no CloudFormation dependency cycle (state machine ↔ notify-device)', () => {
    const resources = s.json.Resources as Record<string, Json>;
    const ids = new Set(Object.keys(resources));
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string, trail: string[]): void => {
      if (state.get(id) === 'done') return;
      assert.notEqual(state.get(id), 'visiting', `cycle: ${[...trail, id].join(' → ')}`);
      state.set(id, 'visiting');
      for (const dep of dependenciesOf(resources[id], ids)) visit(dep, [...trail, id]);
      state.set(id, 'done');
    };
    for (const id of ids) visit(id, []);
  });
});
