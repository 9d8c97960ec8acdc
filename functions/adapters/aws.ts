// The AWS SDK clients every adapter shares, created once per process. Endpoints come from the standard
// AWS_ENDPOINT_URL_<SERVICE> variables, so the local stack changes configuration, never code (DESIGN principle 1).
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { KMSClient } from '@aws-sdk/client-kms';

/** One AWS call as seen by the caller: used by the local stack and `npm run bench` to count calls and critical-path depth. */
export type AwsCall = { service: string; operation: string; start: number; end: number; ok: boolean };
export type AwsCallObserver = (call: AwsCall) => void;

let observer: AwsCallObserver | undefined;
/** Install (or remove) an observer of every AWS call the handlers make in this process. */
export function setAwsCallObserver(next: AwsCallObserver | undefined): void {
  observer = next;
}

type Instrumentable = {
  middlewareStack: {
    add(mw: (next: (args: unknown) => Promise<unknown>, ctx: { commandName?: string }) => (args: unknown) => Promise<unknown>, opts: { step: 'initialize'; name: string }): void;
  };
};

function instrument<C>(client: C, service: string): C {
  (client as unknown as Instrumentable).middlewareStack.add(
    (next, ctx) => async (args) => {
      if (!observer) return next(args);
      const start = performance.now();
      let ok = false;
      try {
        const out = await next(args);
        ok = true;
        return out;
      } finally {
        observer?.({ service, operation: (ctx.commandName ?? 'Unknown').replace(/Command$/, ''), start, end: performance.now(), ok });
      }
    },
    { step: 'initialize', name: 'cibaCallObserver' },
  );
  return client;
}

let dynamo: DynamoDBClient | undefined;
let sfn: SFNClient | undefined;
let sns: SNSClient | undefined;
let kms: KMSClient | undefined;

export const dynamoClient = (): DynamoDBClient => (dynamo ??= instrument(new DynamoDBClient({}), 'DynamoDB'));
export const sfnClient = (): SFNClient => (sfn ??= instrument(new SFNClient({}), 'StepFunctions'));
export const snsClient = (): SNSClient => (sns ??= instrument(new SNSClient({}), 'SNS'));
export const kmsClient = (): KMSClient => (kms ??= instrument(new KMSClient({}), 'KMS'));
