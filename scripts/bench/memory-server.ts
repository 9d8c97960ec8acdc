// `npm run bench -- --in-memory`: the local stack with in-memory DynamoDB and executions (no data dir), as a child
// process for the load sections. Usage: node scripts/bench/memory-server.ts <port> <seed file>; ISSUER and the
// CIBA_* variables come from the environment. Stops on SIGTERM/SIGINT.
import { readFile } from 'node:fs/promises';
import { startLocalStack } from '../../local/stack.ts';
import { BENCH_SERVER_ENV } from './flow.ts';

const [portText, seedFile] = process.argv.slice(2);
if (!portText || !seedFile) {
  console.error('usage: node scripts/bench/memory-server.ts <port> <seed file>');
  process.exit(2);
}
const env: Record<string, string> = {};
for (const name of Object.keys(BENCH_SERVER_ENV)) if (process.env[name]) env[name] = process.env[name];
const stack = await startLocalStack({
  port: Number(portText),
  ...(process.env.ISSUER ? { issuer: process.env.ISSUER } : {}),
  dataDir: null,
  quiet: true,
  seed: JSON.parse(await readFile(seedFile, 'utf8')),
  env,
});
const stop = () =>
  void stack.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
