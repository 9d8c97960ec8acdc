// The process's one KMS client (signing keys, sealing, the VAPID key), created on first use. Imported statically, like
// every SDK client: see ./aws.ts for why never `await import()`.
import { KMSClient } from '@aws-sdk/client-kms';
import { awsClient } from './aws.ts';

export const kms = /* @__PURE__ */ awsClient('KMS', () => new KMSClient({}));
