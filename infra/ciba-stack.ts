// The deployable stack: one CibaServer with the defaults, plus the outputs an operator or a client needs.
// Env-agnostic on purpose (no account/region, no lookups), so `cdk synth` runs offline without credentials.
import { CfnOutput, Stack, Stage, Validations } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import type { Construct } from 'constructs';
import { CibaServer } from './ciba-construct.ts';
import type { CibaServerProps } from './ciba-construct.ts';
import { cibaNagPacks } from './nag.ts';

export interface CibaStackProps extends StackProps {
  /** Passed through to CibaServer; every field has a default there. */
  readonly server?: CibaServerProps;
}

/** Context keys that turn on the mutual-TLS custom domain from the CLI (`cdk deploy -c mtlsDomainName=… …`). */
const MTLS_CONTEXT = ['mtlsDomainName', 'mtlsCertificateArn', 'mtlsTruststoreUri'] as const;

/**
 * CibaServerProps.mtls from context: `-c mtlsDomainName=mtls.auth.example.com -c mtlsCertificateArn=arn:aws:acm:…
 * -c mtlsTruststoreUri=s3://bucket/truststore.pem [-c mtlsTruststoreVersion=…]`; all three or none.
 */
function mtlsFromContext(scope: Construct): CibaServerProps['mtls'] {
  const read = (key: string): string | undefined => {
    const value: unknown = scope.node.tryGetContext(key);
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') throw new Error(`CibaStack: context ${key} must be a string`);
    return value.trim();
  };
  const [domainName, certificateArn, truststoreUri] = MTLS_CONTEXT.map(read);
  const truststoreVersion = read('mtlsTruststoreVersion');
  if (!domainName && !certificateArn && !truststoreUri && !truststoreVersion) return undefined;
  if (!domainName || !certificateArn || !truststoreUri) {
    const missing = MTLS_CONTEXT.filter((key) => !read(key));
    throw new Error(
      `CibaStack: mutual TLS needs all of -c ${MTLS_CONTEXT.join('=… -c ')}=… (optionally -c mtlsTruststoreVersion=…); missing: ${missing.join(', ')}`,
    );
  }
  if (!/^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[A-Za-z0-9-]+$/.test(certificateArn)) {
    throw new Error(`CibaStack: context mtlsCertificateArn is not an ACM certificate ARN: ${certificateArn}`);
  }
  return {
    domainName,
    certificate: Certificate.fromCertificateArn(scope, 'MtlsCertificate', certificateArn),
    truststoreUri,
    ...(truststoreVersion ? { truststoreVersion } : {}),
  };
}

/** Stages (apps) cdk-nag is already registered on: two stacks of one app share one run of the packs. */
const nagRegistered = new WeakSet<Stage>();

/**
 * `-c nag=true`: run cdk-nag's AWS Solutions and Serverless packs at synth (infra/nag.ts). They check the whole app,
 * and any finding not acknowledged in infra/nag.ts fails the synth with CDK's policy validation report. Off by default.
 */
function nagFromContext(scope: Construct): boolean {
  const value: unknown = scope.node.tryGetContext('nag');
  if (value === undefined || value === null || value === '' || value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  throw new Error(`CibaStack: context nag must be true or false, got ${JSON.stringify(value)}`);
}

export class CibaStack extends Stack {
  readonly server: CibaServer;

  constructor(scope: Construct, id: string, props: CibaStackProps = {}) {
    super(scope, id, {
      description:
        'OpenID Connect CIBA authorization server (API Gateway, Lambda, Step Functions, DynamoDB, SNS, SQS, KMS)',
      ...props,
    });
    const mtls = mtlsFromContext(this);
    if (mtls && props.server?.mtls)
      throw new Error(
        'CibaStack: mutual TLS is configured both in props (server.mtls) and in context (mtls*): use one',
      );
    this.server = new CibaServer(this, 'CibaServer', { ...props.server, ...(mtls ? { mtls } : {}) });
    const stage = Stage.of(this);
    if (nagFromContext(this) && stage && !nagRegistered.has(stage)) {
      nagRegistered.add(stage);
      Validations.of(stage).addPlugins(...cibaNagPacks(stage));
    }

    new CfnOutput(this, 'IssuerUrl', {
      value: this.server.issuerUrl,
      description: 'OpenID Provider issuer identifier',
    });
    new CfnOutput(this, 'DiscoveryUrl', {
      value: this.server.discoveryUrl,
      description: 'OpenID Provider metadata (discovery)',
    });
    new CfnOutput(this, 'PollStateMachineArn', {
      value: this.server.stateMachines.poll.stateMachineArn,
      description: 'One execution per authentication request of a poll client',
    });
    new CfnOutput(this, 'NotifyStateMachineArn', {
      value: this.server.stateMachines.notify.stateMachineArn,
      description: 'One execution per authentication request of a ping or push client',
    });
    new CfnOutput(this, 'TableName', {
      value: this.server.table.tableName,
      description: 'Clients, users, requests, tokens (single table)',
    });
    new CfnOutput(this, 'SealingKeyId', {
      value: this.server.sealingKey.keyArn,
      description: 'KMS key sealing secrets at rest (npm run seed -- --seal-key-id: client_secret_jwt secrets)',
    });
    new CfnOutput(this, 'DeviceTopicArn', {
      value: this.server.deviceTopic.topicArn,
      description: 'Authentication device notifications',
    });
    new CfnOutput(this, 'DeliveryTopicArn', {
      value: this.server.deliveryTopic.topicArn,
      description: 'Ping/push delivery requests (the deliver function is subscribed)',
    });
    new CfnOutput(this, 'DeliveryDeadLetterQueueUrl', {
      value: this.server.deliveryDeadLetterQueue.queueUrl,
      description: 'Ping/push notifications the client never accepted: npm run admin -- dead-letters list | redrive',
    });
    new CfnOutput(this, 'ServerSettings', {
      value: this.toJsonString(this.server.serverSettings),
      description: 'The server settings the functions run with (JSON); npm run admin -- ... --stack applies them',
    });
    new CfnOutput(this, 'OperatorPolicyArn', {
      value: this.server.operatorPolicy.managedPolicyArn,
      description:
        "What npm run admin -- ... --stack needs (docs/admin.md, Permissions): attach it to the operators' role",
    });
    new CfnOutput(this, 'AlarmTopicArn', {
      value: this.server.monitoring.alarmTopic.topicArn,
      description: 'Every CIBA alarm notifies this topic (ALARM and OK): subscribe ops to it',
    });
    if (this.server.monitoring.dashboardUrl) {
      new CfnOutput(this, 'DashboardUrl', {
        value: this.server.monitoring.dashboardUrl,
        description: 'CloudWatch dashboard: the CIBA flow at a glance',
      });
    }
    if (this.server.mtlsDomain && this.server.mtlsBaseUrl) {
      new CfnOutput(this, 'MtlsBaseUrl', {
        value: this.server.mtlsBaseUrl,
        description: 'RFC 8705 mtls_endpoint_aliases base URL (TLS client certificates required)',
      });
      new CfnOutput(this, 'MtlsDomainTarget', {
        value: this.server.mtlsDomain.regionalDomainName,
        description: 'Point DNS for the mTLS domain here: a CNAME (or Route 53 alias) to this regional domain name',
      });
    }
  }
}
