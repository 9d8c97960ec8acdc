// Infrastructure tests: the operator policy (CibaServer.operatorPolicy, stack output OperatorPolicyArn; docs/admin.md,
// "Permissions"). What the admin CLI's commands call is written out again here, grant by grant (action, resource,
// condition), for the default stack, `signingKeys: 'sealed'` and configured push platforms: the test is the
// specification, the construct the implementation. test/e2e/operator-policy.test.ts ties it to the calls the commands
// really make.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type { CfnManagedPolicy } from 'aws-cdk-lib/aws-iam';
import { SEAL_CONTEXT } from '../../functions/adapters/sealer.ts';
import { TABLE } from '../../infra/table.ts';
import { asArray, defaultStack, type Json, logicalId, normalize, resourcesOf, type Synth, synth } from './support.ts';

const FCM_APP = 'arn:aws:sns:eu-west-1:123456789012:app/GCM/ciba-app';
const APNS_APP = 'arn:aws:sns:eu-west-1:123456789012:app/APNS/ciba-app';

let kms: Synth;
let sealed: Synth;
let push: Synth;
before(() => {
  kms = defaultStack();
  // Same stack name as the default: the two templates differ only where the prop says.
  sealed = synth({ signingKeys: 'sealed' }, 'CibaStack');
  push = synth({ pushPlatforms: { fcm: FCM_APP, apns: APNS_APP } }, 'CibaStack');
});

const policyId = (s: Synth) =>
  s.stack.getLogicalId(s.stack.server.operatorPolicy.node.defaultChild as CfnManagedPolicy);
const policyOf = (s: Synth): Json => s.json.Resources[policyId(s)];
const statementsOf = (s: Synth) => (policyOf(s).Properties.PolicyDocument.Statement as Json[]).map(normalize);

/** One line per (action, resource, condition) the policy allows, however CDK merged its statements. */
function grants(s: Synth): string[] {
  const lines = new Set<string>();
  for (const st of statementsOf(s)) {
    assert.equal(st.Effect, 'Allow');
    for (const action of st.Action)
      for (const resource of st.Resource)
        lines.add(`${action} ${JSON.stringify(resource)}${st.Condition ? ` if ${JSON.stringify(st.Condition)}` : ''}`);
  }
  return [...lines].sort();
}

/** What the commands need, on the stack's own resources (its tokens resolved as the template has them). */
function expectedGrants(s: Synth, pushApplications: string[] = []): string[] {
  const server = s.stack.server;
  const r = (value: string) => JSON.stringify(s.stack.resolve(value));
  const table = r(server.table.tableArn);
  const index = r(`${server.table.tableArn}/index/${TABLE.userIndex.name}`);
  const lines = [
    // The store adapters the functions use (items and the user index: devices, a user's requests) …
    ...['GetItem', 'Query', 'BatchGetItem', 'PutItem', 'UpdateItem', 'DeleteItem'].flatMap((op) => [
      `dynamodb:${op} ${table}`,
      `dynamodb:${op} ${index}`,
    ]),
    // … and the lists and `users remove`, which scan the table (never the index).
    `dynamodb:Scan ${table}`,
    // client_secret_jwt secrets sealed (clients add, seed load): data keys under the sealing context only.
    `kms:GenerateDataKey ${r(server.sealingKey.keyArn)} if ${JSON.stringify({
      StringEquals: { 'kms:EncryptionContext:purpose': SEAL_CONTEXT.purpose },
    })}`,
    // requests cancel: the waiting execution resumed with the denial, in either workflow.
    `states:SendTaskSuccess ${r(server.stateMachineArns.poll)}`,
    `states:SendTaskSuccess ${r(server.stateMachineArns.notify)}`,
    // dead-letters redrive: the notify workflow's executions (only ping/push deliveries are dead-lettered).
    ...['DescribeExecution', 'RedriveExecution'].map(
      (op) => `states:${op} ${r(`${server.stateMachineArns.notify.replace(':stateMachine:', ':execution:')}:*`)}`,
    ),
    // dead-letters list | redrive: the dead-letter queue.
    ...['ReceiveMessage', 'ChangeMessageVisibility', 'DeleteMessage'].map(
      (op) => `sqs:${op} ${r(server.deliveryDeadLetterQueue.queueArn)}`,
    ),
    // --stack: this stack's outputs.
    `cloudformation:DescribeStacks ${JSON.stringify({ Ref: 'AWS::StackId' })}`,
    // devices remove, users remove: a removed device's SNS endpoint, in a configured platform application only.
    ...pushApplications.map((app) => `sns:DeleteEndpoint ${JSON.stringify(`${app.replace(':app/', ':endpoint/')}/*`)}`),
  ];
  return lines.sort();
}

describe('operator policy: what the admin CLI needs against this deployment', () => {
  it('default stack: the table, sealing, cancelling, dead letters and redrive, DescribeStacks; nothing else', () => {
    assert.deepEqual(grants(kms), expectedGrants(kms));
  });

  it('resources are this stack’s own: its state machines, the key behind SealingKeyId, the queue behind its URL output', () => {
    const server = kms.stack.server;
    const machines = resourcesOf(kms.json, 'AWS::StepFunctions::StateMachine').map(
      ([, m]) => m.Properties.StateMachineName as string,
    );
    assert.deepEqual(machines.sort(), [`${server.serverName}-notify`, `${server.serverName}-poll`]);
    const actions = statementsOf(kms).flatMap((st) => st.Action);
    const on = (action: string) =>
      JSON.stringify(statementsOf(kms).flatMap((st) => (st.Action.includes(action) ? st.Resource : [])));
    assert.match(on('states:RedriveExecution'), new RegExp(`:execution:${server.serverName}-notify:\\*"`));
    assert.doesNotMatch(on('states:RedriveExecution'), /-poll/, 'poll executions are never dead-lettered');
    // `--stack` seals with the key the SealingKeyId output names, and reads the queue of DeliveryDeadLetterQueueUrl.
    assert.deepEqual(JSON.parse(on('kms:GenerateDataKey')), [kms.json.Outputs.SealingKeyId.Value]);
    assert.deepEqual(JSON.parse(on('sqs:ReceiveMessage')), [
      { 'Fn::GetAtt': [kms.json.Outputs.DeliveryDeadLetterQueueUrl.Value.Ref, 'Arn'] },
    ]);
    assert.ok(!actions.some((a) => a.includes('*')), 'no wildcard action');
    assert.ok(
      statementsOf(kms).every((st) => !st.Resource.includes('*')),
      'no statement on Resource "*"',
    );
  });

  it('signs nothing and opens nothing: no signing key, no Decrypt, no signing-keys context', () => {
    for (const s of [kms, sealed]) {
      const kmsActions = statementsOf(s).flatMap((st) => st.Action.filter((a: string) => a.startsWith('kms:')));
      assert.deepEqual(kmsActions, ['kms:GenerateDataKey']);
      assert.ok(
        !JSON.stringify(policyOf(s)).includes('ciba-signing-keys'),
        'the sealed signing keys stay the signers’ own',
      );
    }
    for (const key of [kms.stack.server.signingKeys!.rsa, kms.stack.server.signingKeys!.ec])
      assert.ok(!JSON.stringify(policyOf(kms)).includes(logicalId(kms.stack, key)), 'no KMS signing key');
    assert.ok(!JSON.stringify(policyOf(kms)).includes(logicalId(kms.stack, kms.stack.server.vapidKey)), 'no VAPID key');
  });

  it("signingKeys: 'sealed': the same grants as the default (no command signs or unseals the key pairs)", () => {
    assert.equal(sealed.stack.server.signingKeys, undefined);
    assert.deepEqual(grants(sealed), expectedGrants(sealed));
    assert.deepEqual(grants(sealed), grants(kms));
  });

  it('push platforms: also DeleteEndpoint on the endpoints of each configured application, never creating or publishing', () => {
    assert.deepEqual(grants(push), expectedGrants(push, [FCM_APP, APNS_APP]));
    const actions = statementsOf(push).flatMap((st) => st.Action);
    assert.ok(!actions.includes('sns:CreatePlatformEndpoint'));
    assert.ok(!actions.includes('sns:Publish'));
  });

  it('is attached to nothing and its ARN is the OperatorPolicyArn output', () => {
    for (const s of [kms, sealed, push]) {
      const props = policyOf(s).Properties;
      assert.equal(policyOf(s).Type, 'AWS::IAM::ManagedPolicy');
      for (const field of ['Roles', 'Users', 'Groups']) assert.equal(props[field], undefined, field);
      const id = policyId(s);
      for (const [rid, res] of Object.entries(s.json.Resources as Record<string, Json>)) {
        if (!['AWS::IAM::Role', 'AWS::IAM::User', 'AWS::IAM::Group'].includes(res.Type)) continue;
        const attached = asArray(res.Properties?.ManagedPolicyArns);
        assert.ok(!JSON.stringify(attached).includes(id), `${rid} has the operator policy attached`);
      }
      assert.deepEqual(s.json.Outputs.OperatorPolicyArn.Value, { Ref: id });
      assert.match(s.json.Outputs.OperatorPolicyArn.Description, /npm run admin/);
    }
  });
});
