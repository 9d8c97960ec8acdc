// Infrastructure tests: the `signingKeys` prop. 'kms' (the default) is exactly today's stack: two KMS asymmetric
// signing keys, Sign/GetPublicKey grants. 'sealed': no KMS signing keys; the signers (token, introspect, deliver) may
// make and unseal the sealed key pairs under an encryption context of their own and nothing else; /jwks reads their
// item in the table and has no KMS permission at all; every function knows KEYS_SOURCE=sealed. cdk-nag stays clean.
// The cost model (npm run cost) reads which one the template has and prices token signatures accordingly.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { isDeepStrictEqual } from 'node:util';
import { functionSpecs, SIGNING_KEYS_CONTEXT, SIGNING_KEYS_PARTITION } from '../../infra/ciba-construct.ts';
import { cibaNagPacks } from '../../infra/nag.ts';
import { templateFacts } from '../../scripts/cost/template.ts';
import { flowCost } from '../../scripts/cost/model.ts';
import type { FlowMeasure } from '../../scripts/cost/measure.ts';
import { loadPrices } from '../../scripts/cost/pricing.ts';
import { SIGNING_KEYS_ITEM } from '../../functions/adapters/keys.ts';
import { SEAL_CONTEXT, SIGNING_KEYS_CONTEXT as SEALER_SIGNING_KEYS_CONTEXT } from '../../functions/adapters/sealer.ts';
import {
  actionsOf,
  defaultStack,
  FUNCTION_NAMES,
  functionInfo,
  LOG_WRITE,
  logicalId,
  resourcesOf,
  type Statement,
  type Synth,
  synth,
} from './support.ts';

let kms: Synth;
let sealed: Synth;
before(() => {
  kms = defaultStack();
  sealed = synth({ signingKeys: 'sealed' }, 'SealedKeys');
});

const keySpecs = (s: Synth) =>
  resourcesOf(s.json, 'AWS::KMS::Key')
    .map(([, r]) => `${r.Properties.KeySpec ?? 'SYMMETRIC_DEFAULT'}/${r.Properties.KeyUsage ?? 'ENCRYPT_DECRYPT'}`)
    .sort();
const env = (s: Synth, name: string): Record<string, unknown> =>
  functionInfo(s, name).props.Environment.Variables as Record<string, unknown>;
const own = (s: Synth, name: string): Statement[] =>
  functionInfo(s, name).statements.filter((st) => !st.Action.every((a) => LOG_WRITE.includes(a)));
const arnOf = (s: Synth, construct: { node: { defaultChild?: unknown } }) => ({
  'Fn::GetAtt': [logicalId(s.stack, construct), 'Arn'],
});
const contextOf = (st: Statement): unknown => st.Condition?.StringEquals?.['kms:EncryptionContext:purpose'];
const signers = functionSpecs().filter((sp) => sp.access.keys === 'sign');
const verifiers = functionSpecs().filter((sp) => sp.access.keys === 'verify');

describe("signingKeys: 'kms' (the default)", () => {
  it('is the default stack exactly: the same template with the prop given', () => {
    const explicit = synth({ signingKeys: 'kms' }, 'CibaStack');
    assert.deepEqual(explicit.json, kms.json);
    assert.equal(kms.stack.server.signingKeysSource, 'kms');
  });

  it('two KMS signing keys (RSA_2048, P-256) besides the sealing and VAPID keys; signers may Sign', () => {
    assert.deepEqual(keySpecs(kms), [
      'ECC_NIST_P256/SIGN_VERIFY',
      'ECC_NIST_P256/SIGN_VERIFY',
      'RSA_2048/SIGN_VERIFY',
      'SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT',
    ]);
    assert.ok(kms.stack.server.signingKeys);
    for (const name of FUNCTION_NAMES) {
      assert.equal(env(kms, name).KEYS_SOURCE, 'kms', name);
      assert.ok(env(kms, name).KMS_RSA_KEY_ID && env(kms, name).KMS_EC_KEY_ID, name);
    }
    for (const sp of signers) assert.ok(actionsOf(own(kms, sp.name)).has('kms:Sign'), sp.name);
    assert.ok(actionsOf(own(kms, 'jwks')).has('kms:GetPublicKey'));
  });
});

describe("signingKeys: 'sealed'", () => {
  it('one context and one item key, the same in the construct and the functions', () => {
    assert.deepEqual(SIGNING_KEYS_CONTEXT, SEALER_SIGNING_KEYS_CONTEXT);
    assert.notEqual(SIGNING_KEYS_CONTEXT.purpose, SEAL_CONTEXT.purpose);
    assert.equal(SIGNING_KEYS_PARTITION, SIGNING_KEYS_ITEM.pk);
  });

  it('no KMS signing keys: the sealing key and the VAPID key only', () => {
    assert.equal(sealed.stack.server.signingKeys, undefined);
    assert.equal(sealed.stack.server.signingKeysSource, 'sealed');
    assert.deepEqual(keySpecs(sealed), ['ECC_NIST_P256/SIGN_VERIFY', 'SYMMETRIC_DEFAULT/ENCRYPT_DECRYPT']);
  });

  it('every function runs with KEYS_SOURCE=sealed and the sealing key id, and no signing key ids', () => {
    const sealingKeyArn = arnOf(sealed, sealed.stack.server.sealingKey);
    for (const name of FUNCTION_NAMES) {
      const e = env(sealed, name);
      assert.equal(e.KEYS_SOURCE, 'sealed', name);
      assert.deepEqual(e.KMS_SEAL_KEY_ID, sealingKeyArn, name);
      assert.equal(e.KMS_RSA_KEY_ID, undefined, name);
      assert.equal(e.KMS_EC_KEY_ID, undefined, name);
    }
  });

  it('signers: GenerateDataKey and Decrypt on the sealing key in the signing-keys context, table access, no kms:Sign', () => {
    assert.deepEqual(signers.map((sp) => sp.name).sort(), ['deliver', 'introspect', 'token']);
    const sealingKeyArn = arnOf(sealed, sealed.stack.server.sealingKey);
    const tableArn = arnOf(sealed, sealed.stack.server.table);
    for (const sp of signers) {
      const statements = own(sealed, sp.name);
      const actions = actionsOf(statements);
      assert.ok(!actions.has('kms:Sign') && !actions.has('kms:GetPublicKey'), `${sp.name}: no Sign, no GetPublicKey`);
      const signing = statements.filter((st) => contextOf(st) === SIGNING_KEYS_CONTEXT.purpose);
      assert.equal(signing.length, 1, sp.name);
      assert.deepEqual(signing[0]!.Action.sort(), ['kms:Decrypt', 'kms:GenerateDataKey'], sp.name);
      assert.deepEqual(signing[0]!.Resource, [sealingKeyArn], sp.name);
      // Every other KMS grant is the ordinary sealing one (its own context), on the sealing key.
      for (const st of statements.filter((x) => x.Action.some((a) => a.startsWith('kms:')) && x !== signing[0])) {
        assert.equal(contextOf(st), SEAL_CONTEXT.purpose, sp.name);
        assert.deepEqual(st.Resource, [sealingKeyArn], sp.name);
      }
      // The key item: GetItem and PutItem on the table (their readwrite table access).
      for (const action of ['dynamodb:GetItem', 'dynamodb:PutItem'])
        assert.ok(
          statements.some(
            (st) => st.Action.includes(action) && st.Resource.some((r) => isDeepStrictEqual(r, tableArn)),
          ),
          `${sp.name}: ${action}`,
        );
    }
  });

  it('only the signers may use the signing-keys context', () => {
    for (const name of FUNCTION_NAMES.filter((n) => !signers.some((sp) => sp.name === n)))
      for (const st of own(sealed, name))
        assert.notEqual(contextOf(st), SIGNING_KEYS_CONTEXT.purpose, `${name} must not open the signing keys`);
  });

  it('jwks: GetItem on the signing keys item only, no KMS', () => {
    const tableArn = arnOf(sealed, sealed.stack.server.table);
    assert.deepEqual(own(sealed, 'jwks'), [
      {
        Effect: 'Allow',
        Action: ['dynamodb:GetItem'],
        Resource: [tableArn],
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [SIGNING_KEYS_PARTITION] } },
      },
    ]);
  });

  it('the other verifiers keep their table access and get no KMS permission for the keys', () => {
    for (const sp of verifiers.filter((v) => v.name !== 'jwks')) {
      const statements = own(sealed, sp.name);
      const actions = actionsOf(statements);
      assert.ok(!actions.has('kms:GetPublicKey') && !actions.has('kms:Sign'), sp.name);
      assert.ok(actions.has('dynamodb:GetItem'), sp.name);
      for (const st of statements.filter((x) => x.Action.some((a) => a.startsWith('kms:'))))
        assert.equal(contextOf(st), SEAL_CONTEXT.purpose, sp.name);
    }
  });

  it('kms:Sign is left to the VAPID key (Web Push) only', () => {
    const vapidKeyArn = arnOf(sealed, sealed.stack.server.vapidKey);
    for (const name of FUNCTION_NAMES)
      for (const st of own(sealed, name).filter((x) => x.Action.includes('kms:Sign')))
        assert.deepEqual(st.Resource, [vapidKeyArn], name);
  });

  it('an unknown value is refused at synth', () => {
    assert.throws(
      () => synth({ signingKeys: 'hsm' as unknown as 'kms' }, 'BadKeys'),
      /signingKeys must be 'kms' or 'sealed'/,
    );
  });

  it('cdk-nag: no finding the AWS Solutions and Serverless packs report is left unacknowledged', () => {
    const findings = cibaNagPacks().flatMap((pack) =>
      pack
        .validateScope(sealed.stack)
        .violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} at ${r.constructPath ?? '?'}`)),
    );
    assert.deepEqual(findings, []);
  });
});

describe('the cost model reads the signing keys from the template', () => {
  const factsOf = (s: Synth) =>
    templateFacts(
      s.json,
      Object.fromEntries(Object.entries(s.stack.server.functions).map(([name, fn]) => [name, logicalId(s.stack, fn)])),
    );
  // One redemption's signatures (access token and ID token, RS256) and nothing else billed.
  const flow: FlowMeasure = {
    mode: 'poll',
    outcome: 'approved',
    runs: 1,
    apiRequests: {},
    apiRequestsTotal: 0,
    pendingPolls: 0,
    functions: [],
    httpInvocations: 0,
    dynamodb: { requests: {}, readUnits: 0, writeUnits: 0, indexWriteUnits: 0, conditionalCheckFailures: 0 },
    stepFunctions: {
      executions: 0,
      statesEntered: 0,
      retries: 0,
      transitions: 0,
      paths: [],
      loggedEvents: {},
      logBytes: 0,
      executionArns: [],
    },
    sns: { topicPublishes: 0, directPublishes: 0, publishChunks: 0, deliveries: {}, direct: {} },
    sqs: { requests: 0 },
    signatures: { rsa: 2, ec: 0, vapid: 0 },
    unattributedCalls: 0,
    windows: [],
  };
  const kmsRow = (s: Synth) => flowCost(flow, factsOf(s), loadPrices()).rows.find((r) => r.service === 'KMS')!;

  it("'kms': two RSA_2048 Sign requests, $6 per million flows", () => {
    assert.equal(factsOf(kms).signingKeys, 'kms');
    const row = kmsRow(kms);
    assert.equal(row.quantity, 2);
    assert.deepEqual(row.charges, [{ item: 'kms_requests_rsa_2048', perFlow: 2 }]);
    assert.equal(Math.round(row.usdPerMillionFlows * 100) / 100, 6);
  });

  it("'sealed': no KMS request per flow, no signing keys among the KMS keys", () => {
    const facts = factsOf(sealed);
    assert.equal(facts.signingKeys, 'sealed');
    assert.deepEqual(facts.kmsKeys.flatMap((k) => k.roles).sort(), ['sealing', 'vapid']);
    const row = kmsRow(sealed);
    assert.equal(row.quantity, 0);
    assert.equal(row.usdPerMillionFlows, 0);
  });
});
