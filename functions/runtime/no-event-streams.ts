// What every Lambda bundle has in place of `@smithy/core/event-streams`: infra/bundling.ts aliases that module here
// (LAMBDA_ALIASES). The SDK's HttpProtocol loads event-stream support with `await import()` when an operation has an
// event-stream member, and none of the commands the functions send has one (DynamoDB, Step Functions, SNS, SQS, KMS,
// SES v2, Secrets Manager). Bundled, that import made esbuild wrap about 160 modules of @smithy/core, the ones every
// client loads at start included, in lazy initialisers, which V8 parses twice at each cold start. These are the two
// names HttpProtocol imports from it; each throws, naming this file, should an event stream ever be used. The local
// stack and the admin CLI run unbundled, with the real module.

const NOT_BUNDLED =
  'AWS SDK event streams are not bundled into the Lambda functions (no command they send has one): ' +
  '@smithy/core/event-streams is replaced by functions/runtime/no-event-streams.ts (LAMBDA_ALIASES in infra/bundling.ts)';

/** Stands in for the SDK's EventStreamSerde: cannot be constructed. */
export class EventStreamSerde {
  constructor() {
    throw new Error(NOT_BUNDLED);
  }
}

/** Stands in for the SDK's eventStreamSerdeProvider: throws. */
export function eventStreamSerdeProvider(): never {
  throw new Error(NOT_BUNDLED);
}
