// The parts of the KMS client the functions use, for `await import()` (signing keys, sealing, VAPID). Importing this
// module rather than the package matters in a bundle: esbuild cannot tell which exports of a dynamically imported
// module are used, so importing `@aws-sdk/client-kms` itself bundles every command and its schemas (65 KB that each
// cold start parses), while a module of named re-exports keeps only these (docs/operations.md, "Cold starts").
export {
  DecryptCommand,
  GenerateDataKeyCommand,
  GetPublicKeyCommand,
  KMSClient,
  SignCommand,
} from '@aws-sdk/client-kms';
