export * from '../../infra/local/certs.ts';
