// The credential provider of every SDK client inside a Lambda bundle: infra/bundling.ts aliases
// `@aws-sdk/credential-provider-node` (the SDK's default chain) to this module when it bundles a function, so no other
// code of ours changes. Lambda hands each function its execution role's credentials in the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the first place the default chain looks; the rest of
// that chain (SSO, INI files, web identity, process, instance metadata, and the STS and SSO clients they carry) is
// never reached there, yet bundled it was 130 KB of the 580 KB every function parses at a cold start: about 14 ms of
// the token function's cold load (docs/operations.md, "Cold starts"). A container credentials endpoint (as in an ECS
// task or a Lambda runtime without the variables) is read through the small HTTP provider, created only then; it is
// imported statically, as all SDK code is (functions/adapters/aws.ts: an `await import()` of it made esbuild wrap the
// SDK core it shares with every client in lazy initialisers, parsed twice at each cold start). The local stack and
// the admin CLI run unbundled, with the full default chain.
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { fromHttp } from '@aws-sdk/credential-provider-http';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';

/** The init the clients pass the default chain (its logger is what the providers use). */
type Init = NonNullable<Parameters<typeof fromEnv>[0]>;

/** What the SDK clients call `credentialDefaultProvider`, with the same signature. */
export function defaultProvider(init: Init = {}): AwsCredentialIdentityProvider {
  const env = fromEnv(init);
  let http: AwsCredentialIdentityProvider | undefined;
  return async (): Promise<AwsCredentialIdentity> => {
    if (process.env.AWS_ACCESS_KEY_ID && process.env.AWS_SECRET_ACCESS_KEY) return env();
    if (process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI || process.env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) {
      http ??= fromHttp(init);
      return http();
    }
    throw new Error(
      'no AWS credentials: this bundle reads them from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (set by Lambda) or ' +
        'a container credentials endpoint (functions/runtime/lambda-credentials.ts)',
    );
  };
}
