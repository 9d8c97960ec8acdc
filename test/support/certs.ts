export * from '../../local/certs.ts';
