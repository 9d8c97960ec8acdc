// The parts of the SNS client loaded on first use (mobile push endpoints, SMS): see ./kms.ts for why a module of named
// re-exports rather than `await import('@aws-sdk/client-sns')`.
export { CreatePlatformEndpointCommand, DeleteEndpointCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
