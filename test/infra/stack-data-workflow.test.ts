// Infrastructure tests: the table and the state machine of the synthesized CibaStack.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../../functions/routes.ts';
import { TABLE } from '../../infra/table.ts';
import { pascal, WORKFLOWS } from '../../infra/ciba-construct.ts';
import {
  type Json,
  asArray,
  normalize,
  type Synth,
  resourcesOf,
  logicalId,
  roleStatements,
  functionInfo,
  sortJson,
  actionsOf,
  resourcesFor,
  STAR_RESOURCE_ACTIONS,
  allPolicyDocuments,
  defaultStack,
} from './support.ts';

// ---- Tests ------------------------------------------------------------------------------------------------

let s: Synth;
before(() => {
  s = defaultStack();
});

describe('CibaStack: data', () => {
  it('table: on demand, pk/sk, gsi1 (the listed attributes only), TTL on `ttl`, PITR, AWS-managed encryption, retained', () => {
    const tables = resourcesOf(s.json, 'AWS::DynamoDB::Table');
    assert.equal(tables.length, 1);
    const [, table] = tables[0]!;
    const p = table.Properties;
    assert.equal(p.BillingMode, 'PAY_PER_REQUEST');
    assert.deepEqual(p.KeySchema, [
      { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
      { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
    ]);
    assert.deepEqual(p.TimeToLiveSpecification, { AttributeName: TABLE.ttlAttribute, Enabled: true });
    assert.deepEqual(p.PointInTimeRecoverySpecification, { PointInTimeRecoveryEnabled: true });
    assert.deepEqual(p.SSESpecification, { SSEEnabled: true });
    assert.deepEqual(p.GlobalSecondaryIndexes, [
      {
        IndexName: TABLE.userIndex.name,
        KeySchema: [
          { AttributeName: TABLE.userIndex.partitionKey, KeyType: 'HASH' },
          { AttributeName: TABLE.userIndex.sortKey, KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'INCLUDE', NonKeyAttributes: [...TABLE.userIndex.projected] },
      },
    ]);
    // Bookkeeping written on every poll, device call and delivery attempt stays out of the index (no index write).
    for (const attr of ['polls', 'next_poll_at', 'jtis', 'task_token', 'delivery_attempts', 'push_tokens'])
      assert.ok(!(TABLE.userIndex.projected as readonly string[]).includes(attr), attr);
    for (const attr of p.AttributeDefinitions) assert.equal(attr.AttributeType, 'S');
    assert.equal(table.DeletionPolicy, 'Retain');
  });

  it('device topic: encrypted with the AWS-managed SNS key, TLS only', () => {
    const topic = s.json.Resources[logicalId(s.stack, s.stack.server.deviceTopic)];
    assert.equal(topic.Type, 'AWS::SNS::Topic');
    assert.match(JSON.stringify(topic.Properties.KmsMasterKeyId), /alias\/aws\/sns/);
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: [{ Effect: 'Deny', Action: 'sns:Publish', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }],
      },
    });
  });

  it('signing keys: RSA_2048 and ECC_NIST_P256, SIGN_VERIFY, with aliases, retained', () => {
    const others = [s.stack.server.sealingKey, s.stack.server.vapidKey].map((k) => logicalId(s.stack, k));
    const keys = resourcesOf(s.json, 'AWS::KMS::Key')
      .filter(([id]) => !others.includes(id))
      .map(([, k]) => k);
    assert.deepEqual(keys.map((k) => k.Properties.KeySpec).sort(), ['ECC_NIST_P256', 'RSA_2048']);
    for (const k of keys) {
      assert.equal(k.Properties.KeyUsage, 'SIGN_VERIFY');
      assert.equal(k.DeletionPolicy, 'Retain');
    }
    // Two signing keys, the sealing key and the VAPID key (test/infra/notifications.test.ts).
    const aliases = resourcesOf(s.json, 'AWS::KMS::Alias').map(([, a]) => a.Properties.AliasName as string);
    assert.equal(aliases.length, 4);
    for (const a of aliases) assert.match(a, /^alias\/[A-Za-z0-9/_-]+$/);
  });

  it('sealing key: symmetric (ENCRYPT_DECRYPT), rotated, with an alias, retained like the signing keys', () => {
    const id = logicalId(s.stack, s.stack.server.sealingKey);
    const key = s.json.Resources[id];
    assert.equal(key.Type, 'AWS::KMS::Key');
    assert.ok([undefined, 'SYMMETRIC_DEFAULT'].includes(key.Properties.KeySpec), key.Properties.KeySpec);
    assert.ok([undefined, 'ENCRYPT_DECRYPT'].includes(key.Properties.KeyUsage), key.Properties.KeyUsage);
    assert.equal(key.Properties.EnableKeyRotation, true);
    assert.equal(key.DeletionPolicy, 'Retain');
    const aliases = resourcesOf(s.json, 'AWS::KMS::Alias').filter(
      ([, a]) =>
        isDeepStrictEqual(a.Properties.TargetKeyId, { Ref: id }) ||
        isDeepStrictEqual(a.Properties.TargetKeyId, { 'Fn::GetAtt': [id, 'Arn'] }),
    );
    assert.equal(aliases.length, 1);
    assert.match(aliases[0]![1].Properties.AliasName, /^alias\/CibaStack-CibaServer\/delivery-sealing$/);
  });

  it('delivery topic: encrypted with the AWS-managed SNS key, TLS only, the deliver function its only (Lambda) subscriber', () => {
    const topicId = logicalId(s.stack, s.stack.server.deliveryTopic);
    const topic = s.json.Resources[topicId];
    assert.equal(topic.Type, 'AWS::SNS::Topic');
    assert.match(JSON.stringify(topic.Properties.KmsMasterKeyId), /alias\/aws\/sns/);
    const [[, policy]] = resourcesOf(s.json, 'AWS::SNS::TopicPolicy').filter(([, p]) =>
      isDeepStrictEqual(p.Properties.Topics, [{ Ref: topicId }]),
    ) as [[string, Json]];
    const statements = (policy.Properties.PolicyDocument.Statement as Json[]).map(normalize);
    assert.ok(
      statements.some(
        (st) =>
          st.Effect === 'Deny' &&
          st.Action.includes('sns:Publish') &&
          st.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      ),
    );
    assert.ok(
      !statements.some((st) => st.Effect === 'Allow'),
      'no resource-policy grants: publishers are authorized by IAM',
    );

    const deliverArn = { 'Fn::GetAtt': [functionInfo(s, 'deliver').id, 'Arn'] };
    const subscriptions = resourcesOf(s.json, 'AWS::SNS::Subscription').map(([, sub]) => sub.Properties);
    const deliverySubscribers = TOPIC_SUBSCRIBERS.filter((sub) => sub.topic === 'delivery');
    assert.deepEqual(
      deliverySubscribers.map((sub) => sub.name),
      ['deliver'],
    );
    assert.deepEqual(
      subscriptions.filter((p) => isDeepStrictEqual(p.TopicArn, { Ref: topicId })),
      deliverySubscribers.map((sub) => ({
        Protocol: 'lambda',
        TopicArn: { Ref: topicId },
        Endpoint: { 'Fn::GetAtt': [functionInfo(s, sub.name).id, 'Arn'] },
      })),
    );
    // Every subscription is a Lambda subscriber of the route table (the device topic's: test/infra/notifications.test.ts).
    assert.equal(subscriptions.length, TOPIC_SUBSCRIBERS.length);
    // SNS may invoke the deliver function, for this topic only.
    const permissions = resourcesOf(s.json, 'AWS::Lambda::Permission')
      .map(([, p]) => p.Properties)
      .filter((p) => p.Principal === 'sns.amazonaws.com' && isDeepStrictEqual(p.SourceArn, { Ref: topicId }));
    assert.deepEqual(permissions, [
      {
        Action: 'lambda:InvokeFunction',
        FunctionName: deliverArn,
        Principal: 'sns.amazonaws.com',
        SourceArn: { Ref: topicId },
      },
    ]);
  });

  it('delivery dead-letter queue: SQS-managed encryption, TLS only, 14 days, retained', () => {
    const queueId = logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue);
    const queues = resourcesOf(s.json, 'AWS::SQS::Queue');
    assert.deepEqual(
      queues.map(([id]) => id),
      [queueId],
    );
    const queue = s.json.Resources[queueId];
    assert.equal(queue.Properties.SqsManagedSseEnabled, true);
    assert.equal(queue.Properties.KmsMasterKeyId, undefined);
    assert.equal(queue.Properties.MessageRetentionPeriod, 14 * 24 * 3600);
    assert.equal(queue.DeletionPolicy, 'Retain');
    const policies = resourcesOf(s.json, 'AWS::SQS::QueuePolicy').filter(([, p]) =>
      isDeepStrictEqual(p.Properties.Queues, [{ Ref: queueId }]),
    );
    assert.equal(policies.length, 1);
    const statements = (policies[0]![1].Properties.PolicyDocument.Statement as Json[]).map(normalize);
    assert.ok(
      statements.some(
        (st) =>
          st.Effect === 'Deny' &&
          st.Condition?.Bool?.['aws:SecureTransport'] === 'false' &&
          st.Resource.some((r) => isDeepStrictEqual(r, { 'Fn::GetAtt': [queueId, 'Arn'] })),
      ),
    );
    assert.ok(
      !statements.some((st) => st.Effect === 'Allow'),
      'no resource-policy grants: the state machine role is authorized by IAM',
    );
  });
});

describe('CibaStack: workflows', () => {
  /** The synthesized state machine of a workflow (`poll`, `notify`) and its staged definition. */
  const machine = (name: 'poll' | 'notify') => {
    const id = logicalId(s.stack, s.stack.server.stateMachines[name]);
    const sm = s.json.Resources[id] as Json;
    const staged = readFileSync(path.join(s.outdir, `asset.${sm.Properties.DefinitionS3Location.Key}`), 'utf8');
    return { id, sm, staged, asl: JSON.parse(staged) as { StartAt: string; States: Record<string, Json> } };
  };

  it('one STANDARD workflow per kind of delivery, each with an explicit, stack-derived name ≤ 80 chars, tracing on', () => {
    assert.equal(resourcesOf(s.json, 'AWS::StepFunctions::StateMachine').length, 2);
    assert.deepEqual(
      WORKFLOWS.map((w) => [w.name, [...w.modes]]),
      [
        ['poll', ['poll']],
        ['notify', ['ping', 'push']],
      ],
    );
    for (const name of ['poll', 'notify'] as const) {
      const { sm } = machine(name);
      assert.equal(sm.Properties.StateMachineType, 'STANDARD');
      assert.equal(sm.Properties.StateMachineName, `CibaStack-CibaServer-${name}`);
      assert.ok(sm.Properties.StateMachineName.length <= 80);
      assert.deepEqual(sm.Properties.TracingConfiguration, { Enabled: true });
    }
  });

  it('logs errors (or all) to a log group, never execution data', () => {
    for (const name of ['poll', 'notify'] as const) {
      const logging = machine(name).sm.Properties.LoggingConfiguration;
      assert.equal(logging.IncludeExecutionData, false);
      assert.ok(['ERROR', 'ALL'].includes(logging.Level));
      const logGroupId = logging.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];
      assert.equal(s.json.Resources[logGroupId].Type, 'AWS::Logs::LogGroup');
    }
  });

  it('each definition is its ASL file (staged asset) with every placeholder substituted', () => {
    for (const workflow of WORKFLOWS) {
      const { sm, staged } = machine(workflow.name);
      const asl = readFileSync(workflow.path, 'utf8');
      // The asset CloudFormation reads is byte-for-byte the file the local runtime runs.
      assert.equal(staged, asl);
      const placeholders = new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!));
      const subs = sm.Properties.DefinitionSubstitutions;
      assert.deepEqual(new Set(Object.keys(subs)), placeholders);
      assert.deepEqual(
        subs.Partition,
        { Ref: 'AWS::Partition' },
        'service integration ARNs follow the partition (aws, aws-cn, aws-us-gov)',
      );
      for (const wf of WORKFLOW_FUNCTIONS)
        if (placeholders.has(`${pascal(wf.name)}FunctionArn`))
          assert.deepEqual(subs[`${pascal(wf.name)}FunctionArn`], {
            'Fn::GetAtt': [functionInfo(s, wf.name).id, 'Arn'],
          });
    }
    assert.deepEqual(machine('poll').sm.Properties.DefinitionSubstitutions.TableName, {
      Ref: logicalId(s.stack, s.stack.server.table),
    });
    const notify = machine('notify').sm.Properties.DefinitionSubstitutions;
    assert.deepEqual(notify.EnqueueDeliveryFunctionArn, {
      'Fn::GetAtt': [functionInfo(s, 'enqueue-delivery').id, 'Arn'],
    });
    assert.equal(
      'DeliveryDeadLetterQueueUrl' in notify,
      false,
      'the deliver function writes dead letters, not the workflow',
    );
  });

  it('both start by waiting on the device until the request expiry; a decision ends a poll execution at once', () => {
    for (const name of ['poll', 'notify'] as const) {
      const { asl } = machine(name);
      const wait = asl.States[asl.StartAt]!;
      assert.equal(wait.Resource, 'arn:${Partition}:states:::lambda:invoke.waitForTaskToken');
      assert.equal(wait.Parameters.FunctionName, '${NotifyDeviceFunctionArn}');
      assert.equal(wait.Parameters.Payload['taskToken.$'], '$$.Task.Token');
      assert.equal(wait.TimeoutSecondsPath, '$.expiresIn');
    }
    // Poll: the wait is the end (1 transition); expiry is one Pass more; no decision or expiry is written by the
    // workflow (the row carries its own expires_at).
    const poll = machine('poll').asl;
    const wait = poll.States[poll.StartAt]!;
    assert.equal(wait.End, true);
    const onTimeout = (wait.Catch as Json[]).find((c) => c.ErrorEquals.includes('States.Timeout'))!;
    assert.equal(poll.States[onTimeout.Next]!.Type, 'Pass');
    assert.equal(poll.States[onTimeout.Next]!.End, true);
    assert.deepEqual(poll.States[onTimeout.Next]!.Result, { outcome: 'expired' });
    // Ping/push: every outcome goes on to Deliver, the last state of the happy path (2 transitions).
    const notify = machine('notify').asl;
    const first = notify.States[notify.StartAt]!;
    assert.equal(first.Next, 'Deliver');
    assert.deepEqual(
      (first.Catch as Json[]).map((c) => [c.ErrorEquals, c.Next]),
      [[['States.ALL'], 'Deliver']],
    );
    const onDelivery = Object.values(notify.States).filter(
      (st) => st.Parameters?.FunctionName === '${EnqueueDeliveryFunctionArn}',
    );
    assert.equal(onDelivery.length, 1);
    assert.equal(typeof onDelivery[0]!.TimeoutSeconds, 'number');
  });

  it('Deliver retries retryable failures and callback timeouts with capped exponential backoff and full jitter, then fails the execution there (redrivable)', () => {
    const { asl } = machine('notify');
    const deliver = asl.States.Deliver!;
    assert.equal(deliver.Type, 'Task');
    assert.equal(deliver.Parameters.FunctionName, '${EnqueueDeliveryFunctionArn}');
    assert.equal(deliver.TimeoutSeconds, 90);
    assert.equal(deliver.End, true, 'a delivered notification ends the execution');
    const retries = (deliver.Retry as Json[]).filter((r) => r.ErrorEquals.includes('Delivery.Retryable'));
    assert.equal(retries.length, 1);
    const retry = retries[0]!;
    assert.ok(
      retry.ErrorEquals.includes('States.Timeout'),
      'an unanswered attempt (deliver crashed, timed out or was throttled) is retried',
    );
    assert.ok(
      !retry.ErrorEquals.includes('States.ALL') && !retry.ErrorEquals.some((e: string) => /Rejected|Exhausted/.test(e)),
      'final outcomes are not retried',
    );
    assert.equal(retry.IntervalSeconds, 2);
    assert.equal(retry.BackoffRate, 2);
    assert.equal(retry.MaxDelaySeconds, 300);
    assert.equal(retry.JitterStrategy, 'FULL');
    // The delivery window, not the attempt count, ends the retries: even at the mean full-jitter delay at the cap
    // (MaxDelaySeconds / 2) the attempts outlast the longest window (24 h).
    assert.ok((retry.MaxAttempts * retry.MaxDelaySeconds) / 2 >= 86_400, String(retry.MaxAttempts));
    // Every other error fails the execution at Deliver: no Catch, so RedriveExecution re-runs Deliver itself (the
    // deliver function has written the dead letter by then). No state writes to SQS.
    assert.equal(deliver.Catch, undefined);
    assert.deepEqual(Object.keys(asl.States).sort(), ['AwaitDecision', 'Deliver']);
    assert.ok(!JSON.stringify(asl).includes(':sqs:'));
  });

  it('roles: each invokes only its own workflow functions; poll updates the table; only the deliver function sends dead letters', () => {
    const statementsOf = (name: 'poll' | 'notify') => {
      const roleId: string = machine(name).sm.Properties.RoleArn['Fn::GetAtt'][0];
      return {
        roleId,
        statements: roleStatements(s.json, roleId).filter(
          (st) => !st.Action.every((a) => STAR_RESOURCE_ACTIONS.has(a)),
        ),
      };
    };
    const poll = statementsOf('poll');
    assert.deepEqual([...actionsOf(poll.statements)].sort(), ['dynamodb:UpdateItem', 'lambda:InvokeFunction']);
    assert.deepEqual(resourcesFor(poll.statements, 'lambda:InvokeFunction'), [
      { 'Fn::GetAtt': [functionInfo(s, 'notify-device').id, 'Arn'] },
    ]);
    assert.deepEqual(resourcesFor(poll.statements, 'dynamodb:UpdateItem'), [
      { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.table), 'Arn'] },
    ]);
    const notify = statementsOf('notify');
    assert.deepEqual([...actionsOf(notify.statements)].sort(), ['lambda:InvokeFunction']);
    assert.deepEqual(
      sortJson(resourcesFor(notify.statements, 'lambda:InvokeFunction')),
      sortJson(WORKFLOW_FUNCTIONS.map((wf) => ({ 'Fn::GetAtt': [functionInfo(s, wf.name).id, 'Arn'] }))),
    );
    // Only the deliver function may write to the queue (and no KMS grant is needed: SQS-managed encryption).
    const deliverRole = functionInfo(s, 'deliver').props.Role['Fn::GetAtt'][0];
    const sqsGrants = allPolicyDocuments(s.json).filter((d) =>
      d.statements.some((st) => st.Effect === 'Allow' && st.Action.some((a) => a.startsWith('sqs:'))),
    );
    assert.ok(sqsGrants.length > 0);
    for (const d of sqsGrants) {
      assert.ok(
        asArray(s.json.Resources[d.where].Properties.Roles).every((r: Json) => r.Ref === deliverRole),
        d.where,
      );
      const actions = d.statements.filter((st) => st.Effect === 'Allow').flatMap((st) => st.Action);
      assert.deepEqual(
        actions.filter((a) => a.startsWith('sqs:')),
        ['sqs:SendMessage'],
        d.where,
      );
    }
  });
});
