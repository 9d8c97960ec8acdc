// The DynamoDB store, one module per kind of record (functions/adapters/store/): callers import it as one.
export { normalizeLogin } from './store/table.ts';
export * from './store/registry.ts';
export * from './store/devices.ts';
export * from './store/requests.ts';
export * from './store/limits.ts';
export * from './store/replay.ts';
export * from './store/refresh-tokens.ts';
export * from './store/registration.ts';
export * from './store/revocations.ts';
export * from './store/scan.ts';
export * from './store/dpop-nonce.ts';
