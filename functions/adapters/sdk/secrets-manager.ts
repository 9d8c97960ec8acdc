// The part of the Secrets Manager client loaded on first use (the operator hook's secret): see ./kms.ts for why.
export { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
