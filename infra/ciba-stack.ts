// The deployable stack: one CibaServer with the defaults, plus the outputs an operator or a client needs.
// Env-agnostic on purpose (no account/region, no lookups), so `cdk synth` runs offline without credentials.
import { CfnOutput, Stack } from 'aws-cdk-lib';
import type { StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { CibaServer } from './ciba-construct.ts';
import type { CibaServerProps } from './ciba-construct.ts';

export interface CibaStackProps extends StackProps {
  /** Passed through to CibaServer; every field has a default there. */
  readonly server?: CibaServerProps;
}

export class CibaStack extends Stack {
  readonly server: CibaServer;

  constructor(scope: Construct, id: string, props: CibaStackProps = {}) {
    super(scope, id, { description: 'OpenID Connect CIBA authorization server (API Gateway, Lambda, Step Functions, DynamoDB, SNS, SQS, KMS)', ...props });
    this.server = new CibaServer(this, 'CibaServer', props.server);

    new CfnOutput(this, 'IssuerUrl', { value: this.server.issuerUrl, description: 'OpenID Provider issuer identifier' });
    new CfnOutput(this, 'DiscoveryUrl', { value: this.server.discoveryUrl, description: 'OpenID Provider metadata (discovery)' });
    new CfnOutput(this, 'StateMachineArn', { value: this.server.stateMachine.stateMachineArn, description: 'One execution per authentication request' });
    new CfnOutput(this, 'TableName', { value: this.server.table.tableName, description: 'Clients, users, requests, tokens (single table)' });
    new CfnOutput(this, 'DeviceTopicArn', { value: this.server.deviceTopic.topicArn, description: 'Authentication device notifications' });
    new CfnOutput(this, 'DeliveryTopicArn', { value: this.server.deliveryTopic.topicArn, description: 'Ping/push delivery requests (the deliver function is subscribed)' });
    new CfnOutput(this, 'DeliveryDeadLetterQueueUrl', { value: this.server.deliveryDeadLetterQueue.queueUrl, description: 'Ping/push notifications the client never accepted: inspect, then delete' });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.server.monitoring.alarmTopic.topicArn, description: 'Every CIBA alarm notifies this topic (ALARM and OK): subscribe ops to it' });
    if (this.server.monitoring.dashboardUrl) {
      new CfnOutput(this, 'DashboardUrl', { value: this.server.monitoring.dashboardUrl, description: 'CloudWatch dashboard: the CIBA flow at a glance' });
    }
  }
}
