// Infrastructure tests: the table and the state machine of the synthesized CibaStack.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../../functions/routes.ts';
import { TABLE } from '../../infra/table.ts';
import { ASL_PATH, pascal } from '../../infra/ciba-construct.ts';
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
  it('table: on demand, pk/sk, gsi1 (ALL), TTL on `ttl`, PITR, AWS-managed encryption, retained', () => {
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
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
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

describe('CibaStack: state machine', () => {
  it('is a STANDARD workflow with an explicit, stack-derived name ≤ 80 chars, tracing on', () => {
    const [[, sm]] = resourcesOf(s.json, 'AWS::StepFunctions::StateMachine') as [[string, Json]];
    assert.equal(sm.Properties.StateMachineType, 'STANDARD');
    assert.equal(sm.Properties.StateMachineName, 'CibaStack-CibaServer');
    assert.ok(sm.Properties.StateMachineName.length <= 80);
    assert.deepEqual(sm.Properties.TracingConfiguration, { Enabled: true });
  });

  it('logs errors (or all) to a log group, never execution data', () => {
    const [[, sm]] = resourcesOf(s.json, 'AWS::StepFunctions::StateMachine') as [[string, Json]];
    const logging = sm.Properties.LoggingConfiguration;
    assert.equal(logging.IncludeExecutionData, false);
    assert.ok(['ERROR', 'ALL'].includes(logging.Level));
    const logGroupId = logging.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];
    assert.equal(s.json.Resources[logGroupId].Type, 'AWS::Logs::LogGroup');
  });

  it('definition is the ASL file (staged asset) with every placeholder substituted', () => {
    const [[, sm]] = resourcesOf(s.json, 'AWS::StepFunctions::StateMachine') as [[string, Json]];
    const asl = readFileSync(ASL_PATH, 'utf8');
    // The asset CloudFormation reads is byte-for-byte the file the local runtime runs.
    const key: string = sm.Properties.DefinitionS3Location.Key;
    assert.equal(readFileSync(path.join(s.outdir, `asset.${key}`), 'utf8'), asl);
    const placeholders = new Set([...asl.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!));
    const subs = sm.Properties.DefinitionSubstitutions;
    assert.deepEqual(new Set(Object.keys(subs)), placeholders);
    assert.deepEqual(subs.TableName, { Ref: logicalId(s.stack, s.stack.server.table) });
    assert.deepEqual(
      subs.Partition,
      { Ref: 'AWS::Partition' },
      'service integration ARNs follow the partition (aws, aws-cn, aws-us-gov)',
    );
    for (const wf of WORKFLOW_FUNCTIONS) {
      assert.deepEqual(subs[`${pascal(wf.name)}FunctionArn`], { 'Fn::GetAtt': [functionInfo(s, wf.name).id, 'Arn'] });
    }
    assert.ok(WORKFLOW_FUNCTIONS.some((wf) => wf.name === 'enqueue-delivery'));
    assert.deepEqual(subs.EnqueueDeliveryFunctionArn, {
      'Fn::GetAtt': [functionInfo(s, 'enqueue-delivery').id, 'Arn'],
    });
    assert.deepEqual(subs.DeliveryDeadLetterQueueUrl, {
      Ref: logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue),
    });
  });

  it('waits on Lambda callback tasks: the device decision until the request expiry, the delivery for a fixed time', () => {
    const asl = JSON.parse(readFileSync(ASL_PATH, 'utf8')) as { States: Record<string, Json> };
    const callbacks = Object.values(asl.States).filter(
      (st) => st.Resource === 'arn:${Partition}:states:::lambda:invoke.waitForTaskToken',
    );
    for (const task of callbacks) assert.equal(task.Parameters.Payload['taskToken.$'], '$$.Task.Token');
    // Poll (NotifyDeviceAndWait) and ping/push (NotifyDeviceThenDeliver) both wait on the device until the expiry.
    const onDevice = callbacks.filter((st) => st.Parameters.FunctionName === '${NotifyDeviceFunctionArn}');
    assert.equal(onDevice.length, 2);
    for (const task of onDevice) assert.equal(task.TimeoutSecondsPath, '$.expiresIn');
    assert.ok(
      onDevice.some((task) => task.Catch.some((c: Json) => c.ErrorEquals.includes('States.Timeout'))),
      'poll: expiry is recorded',
    );
    assert.ok(
      onDevice.some((task) =>
        task.Catch.some((c: Json) => c.ErrorEquals.includes('States.ALL') && c.Next === 'Deliver'),
      ),
      'ping/push: every outcome is delivered',
    );
    const onDelivery = callbacks.filter((st) => st.Parameters.FunctionName === '${EnqueueDeliveryFunctionArn}');
    assert.equal(onDelivery.length, 1);
    assert.equal(typeof onDelivery[0]!.TimeoutSeconds, 'number');
  });

  it('Deliver retries retryable failures and callback timeouts with capped exponential backoff and full jitter, then dead-letters', () => {
    // The synthesized definition: the staged asset CloudFormation reads.
    const [[, sm]] = resourcesOf(s.json, 'AWS::StepFunctions::StateMachine') as [[string, Json]];
    const asl = JSON.parse(
      readFileSync(path.join(s.outdir, `asset.${sm.Properties.DefinitionS3Location.Key}`), 'utf8'),
    ) as { States: Record<string, Json> };
    const deliver = asl.States.Deliver;
    assert.equal(deliver.Type, 'Task');
    assert.equal(deliver.Parameters.FunctionName, '${EnqueueDeliveryFunctionArn}');
    assert.equal(deliver.TimeoutSeconds, 90);
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
    // Every other error is dead-lettered, the record goes to the queue, and the execution fails.
    assert.deepEqual(
      deliver.Catch.map((c: Json) => [c.ErrorEquals, c.Next]),
      [[['States.ALL'], 'DeadLetter']],
    );
    assert.equal(asl.States[deliver.Next].Type, 'Succeed');
    const deadLetter = asl.States.DeadLetter;
    assert.equal(deadLetter.Resource, 'arn:${Partition}:states:::sqs:sendMessage');
    assert.equal(deadLetter.Parameters.QueueUrl, '${DeliveryDeadLetterQueueUrl}');
    assert.equal(asl.States[deadLetter.Next].Type, 'Fail');
    for (const c of deadLetter.Catch as Json[]) assert.equal(asl.States[c.Next].Type, 'Fail');
  });

  it('role: invoke the workflow functions, UpdateItem on the table, SendMessage to the dead-letter queue, nothing else', () => {
    const smRoleId: string = resourcesOf(s.json, 'AWS::StepFunctions::StateMachine')[0]![1].Properties.RoleArn[
      'Fn::GetAtt'
    ][0];
    const statements = roleStatements(s.json, smRoleId).filter(
      (st) => !st.Action.every((a) => STAR_RESOURCE_ACTIONS.has(a)),
    );
    assert.deepEqual([...actionsOf(statements)].sort(), [
      'dynamodb:UpdateItem',
      'lambda:InvokeFunction',
      'sqs:SendMessage',
    ]);
    assert.deepEqual(
      sortJson(resourcesFor(statements, 'lambda:InvokeFunction')),
      sortJson(WORKFLOW_FUNCTIONS.map((wf) => ({ 'Fn::GetAtt': [functionInfo(s, wf.name).id, 'Arn'] }))),
    );
    assert.deepEqual(resourcesFor(statements, 'dynamodb:UpdateItem'), [
      { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.table), 'Arn'] },
    ]);
    assert.deepEqual(resourcesFor(statements, 'sqs:SendMessage'), [
      { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue), 'Arn'] },
    ]);
    // Nobody else may write to the queue (and no KMS grant is needed: SQS-managed encryption).
    const sqsGrants = allPolicyDocuments(s.json).filter((d) =>
      d.statements.some((st) => st.Effect === 'Allow' && st.Action.some((a) => a.startsWith('sqs:'))),
    );
    assert.ok(sqsGrants.length > 0);
    for (const d of sqsGrants)
      assert.ok(
        asArray(s.json.Resources[d.where].Properties.Roles).some((r: Json) => r.Ref === smRoleId),
        d.where,
      );
  });
});
