// The process's one SNS client (the device and delivery topics, mobile push endpoints, SMS), created on first use.
// Imported statically, like every SDK client: see ./aws.ts for why never `await import()`.
import { SNSClient } from '@aws-sdk/client-sns';
import { awsClient } from './aws.ts';

export const sns = /* @__PURE__ */ awsClient('SNS', () => new SNSClient({}));
