// Infrastructure tests: cdk-nag's AWS Solutions and Serverless packs over the synthesized CibaStack and its main
// variants, with no finding left that infra/nag.ts does not acknowledge with a reason; X-Ray active tracing of the
// functions (the `tracing` prop). cdk-nag 3 is a policy-validation plugin: the packs run here with `validateScope`,
// and at synth with `-c nag=true` (CibaStack registers them on the app).
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { App, Fn, Stack, Validations } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import type { IConstruct } from 'constructs';
import type { CibaServerProps } from '../../infra/ciba-construct.ts';
import { CibaStack } from '../../infra/ciba-stack.ts';
import { cibaNagPacks } from '../../infra/nag.ts';
import {
  cdkJsonContext,
  defaultStack,
  FUNCTION_NAMES,
  functionInfo,
  resourcesFor,
  resourcesOf,
  stubMissingHandlers,
  type Synth,
  synth,
  TRACE_WRITE,
  tmpDirs,
} from './support.ts';

type Finding = { rule: string; severity: string; path: string; description: string };

/**
 * Every error and warning of both packs on the stack's tree. `ignoringAcknowledgments`: as if nothing were
 * acknowledged (the packs' own acknowledgment lookup turned off), to see what each acknowledgment answers.
 */
function nagFindings(stack: Stack, ignoringAcknowledgments = false): Finding[] {
  return cibaNagPacks().flatMap((pack) => {
    if (ignoringAcknowledgments) Object.defineProperty(pack, 'isAcknowledged', { value: () => false });
    return pack.validateScope(stack).violations.flatMap((v) =>
      v.violatingResources.map((r) => ({
        rule: v.ruleName,
        severity: v.severity ?? 'error',
        path: r.constructPath ?? '?',
        description: v.description,
      })),
    );
  });
}
const listed = (findings: Finding[]): string =>
  findings.map((f) => `  ${f.severity} ${f.rule} at ${f.path}: ${f.description}`).join('\n');

/** Every acknowledgment recorded in the stack's tree: the construct path, the finding id and the reason. */
function acknowledgments(stack: Stack): { path: string; id: string; reason: string }[] {
  return stack.node.findAll().flatMap((c: IConstruct) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: c.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
        })),
      ),
  );
}

const CERT_ARN = 'arn:aws:acm:eu-west-1:123456789012:certificate/11111111-2222-3333-4444-555555555555';
const FCM_APP = 'arn:aws:sns:eu-west-1:123456789012:app/GCM/ciba-app';
const APNS_APP = 'arn:aws:sns:eu-west-1:123456789012:app/APNS/ciba-app';
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ciba/webhook-AbC123';
const HOOK = 'https://ops.example.com/ciba-hook';

/** The main variants of the construct props (the default stack is checked as well). */
const VARIANTS: Record<string, () => CibaServerProps> = {
  Mtls: () => ({
    mtls: {
      domainName: 'mtls.auth.example.com',
      certificate: Certificate.fromCertificateArn(new Stack(), 'Cert', CERT_ARN),
      truststoreUri: 's3://ciba-truststore/truststore.pem',
    },
  }),
  Push: () => ({ pushPlatforms: { fcm: FCM_APP, apns: APNS_APP } }),
  // A platform application ARN known only at deploy: its endpoints' wildcard is acknowledged under the same id.
  PushToken: () => ({ pushPlatforms: { fcm: Fn.importValue('CibaFcmApplicationArn') } }),
  Webhook: () => ({ settings: { notifyWebhookUrl: HOOK }, notifyWebhookSecretArn: SECRET_ARN }),
  // Every channel: SMS (sns:Publish on "*"), e-mail, mobile push and the operator hook.
  Everything: () => ({
    pushPlatforms: { fcm: FCM_APP },
    settings: { notifySms: 'on', notifyEmailFrom: 'no-reply@mail.example.com', notifyWebhookUrl: HOOK },
    notifyWebhookSecretArn: SECRET_ARN,
  }),
  Untraced: () => ({ tracing: false }),
  NoDashboard: () => ({ monitoring: { dashboard: false } }),
};

const stacks: Record<string, Synth> = {};
before(() => {
  stacks.Default = defaultStack();
  for (const [name, props] of Object.entries(VARIANTS)) stacks[name] = synth(props(), name);
});

describe('cdk-nag (AWS Solutions, Serverless)', () => {
  it('no unacknowledged error or warning in the default stack or any variant', () => {
    for (const [name, s] of Object.entries(stacks)) {
      const findings = nagFindings(s.stack);
      assert.equal(findings.length, 0, `${name}: unacknowledged cdk-nag findings:\n${listed(findings)}`);
    }
  });

  it('every acknowledgment answers a finding the packs really report there, and gives its reason', () => {
    for (const [name, s] of Object.entries(stacks)) {
      const raw = nagFindings(s.stack, true);
      const acks = acknowledgments(s.stack);
      assert.ok(acks.length > 0, name);
      for (const ack of acks) {
        const answered = raw.filter((f) => f.rule === ack.id && `${f.path}/`.startsWith(`${ack.path}/`));
        assert.ok(answered.length > 0, `${name}: ${ack.id} acknowledged at ${ack.path} but not reported there`);
        assert.ok(ack.reason.length >= 80, `${name}: ${ack.id} at ${ack.path} needs a reason, got "${ack.reason}"`);
      }
      // And the other way round: every raw finding is answered (the first test, seen from the acknowledgments).
      for (const f of raw)
        assert.ok(
          acks.some((a) => a.id === f.rule && `${f.path}/`.startsWith(`${a.path}/`)),
          `${name}: ${f.rule} at ${f.path}`,
        );
    }
  });

  it('acknowledgments are narrow: a queue without TLS or a new role with a wildcard resource is still reported', () => {
    const probe = synth({}, 'Probe');
    const server = probe.stack.server;
    new Queue(server, 'ProbeQueue');
    const role = new Role(server, 'ProbeRole', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    role.addToPolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
    // A wildcard in a traced function's role is acknowledged by resource, not by action (cdk-nag's finding ids name
    // the resource only): the project's own STAR_RESOURCE_ACTIONS test keeps those roles to X-Ray.
    const found = nagFindings(probe.stack).map((f) => `${f.rule} ${f.path}`);
    for (const expected of [
      'AwsSolutions-SQS4 Probe/CibaServer/ProbeQueue/Resource',
      'AwsSolutions-SQS3 Probe/CibaServer/ProbeQueue/Resource',
      'Serverless-SQSRedrivePolicy Probe/CibaServer/ProbeQueue/Resource',
      'AwsSolutions-IAM5[Resource::*] Probe/CibaServer/ProbeRole/DefaultPolicy/Resource',
    ])
      assert.ok(found.includes(expected), `${expected} in:\n${found.join('\n')}`);
    assert.equal(found.length, 4, found.join('\n'));
  });

  it('push endpoints are acknowledged per platform application, wherever a role holds them', () => {
    const acks = acknowledgments(stacks.Push!.stack).filter((a) => a.id.includes(':endpoint/'));
    assert.deepEqual(acks.map((a) => a.id).sort(), [
      'AwsSolutions-IAM5[Resource::arn:aws:sns:eu-west-1:123456789012:endpoint/APNS/ciba-app/*]',
      'AwsSolutions-IAM5[Resource::arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/ciba-app/*]',
    ]);
    assert.ok(acks.every((a) => a.path === 'Push/CibaServer'));
  });

  it('`cdk synth -c nag=true` runs the packs on the app: clean by default, a finding fails the synth', () => {
    assert.doesNotThrow(() => synth({}, 'NagOn', { nag: 'true' }));
    const app = (nag: string) => {
      const outdir = mkdtempSync(path.join(tmpdir(), 'ciba-nag-'));
      const stubs = mkdtempSync(path.join(tmpdir(), 'ciba-nag-stubs-'));
      tmpDirs.push(outdir, stubs);
      const a = new App({ outdir, context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], nag } });
      const stack = new CibaStack(a, 'NagProbe', { server: { functionProps: stubMissingHandlers(stubs) } });
      new Queue(stack, 'PlainQueue');
      return a;
    };
    // CDK prints the validation report on stderr before it throws: keep it, and out of the test output.
    let report = '';
    const printError = console.error;
    console.error = (...args: unknown[]) => {
      report += `${args.join(' ')}\n`;
    };
    try {
      assert.throws(() => app('true').synth(), /Validation failed/);
    } finally {
      console.error = printError;
    }
    assert.match(report, /AwsSolutions-SQS4/);
    assert.match(report, /NagProbe\/PlainQueue\/Resource/);
    // Off (the default): the same app synthesizes.
    assert.doesNotThrow(() => app('false').synth());
    assert.throws(() => synth({}, 'NagBad', { nag: 'yes' }), /context nag must be true or false/);
  });
});

describe('X-Ray active tracing (the `tracing` prop)', () => {
  it('by default every function traces actively and its role may put traces (on "*", the only resource X-Ray takes)', () => {
    const s = stacks.Default!;
    const fns = resourcesOf(s.json, 'AWS::Lambda::Function');
    assert.equal(fns.length, FUNCTION_NAMES.length);
    for (const [id, fn] of fns) assert.deepEqual(fn.Properties.TracingConfig, { Mode: 'Active' }, id);
    for (const name of FUNCTION_NAMES) {
      const { statements } = functionInfo(s, name);
      for (const action of TRACE_WRITE) assert.deepEqual(resourcesFor(statements, action), ['*'], `${name}: ${action}`);
    }
  });

  it('tracing: false leaves every function and state machine untraced, and no role with X-Ray actions', () => {
    const s = stacks.Untraced!;
    for (const [id, sm] of resourcesOf(s.json, 'AWS::StepFunctions::StateMachine'))
      assert.deepEqual(sm.Properties.TracingConfiguration, { Enabled: false }, id);
    const fns = resourcesOf(s.json, 'AWS::Lambda::Function');
    assert.equal(fns.length, FUNCTION_NAMES.length);
    for (const [id, fn] of fns) assert.equal(fn.Properties.TracingConfig, undefined, id);
    for (const name of FUNCTION_NAMES) {
      const actions = functionInfo(s, name).statements.flatMap((st) => st.Action);
      assert.ok(!actions.some((a) => a.startsWith('xray:')), `${name}: ${actions.join(', ')}`);
    }
  });
});
