// `npm run seed -- --table <TableName> --issuer <IssuerUrl> seed.json`: load a seed file (CONTRACT.md format) into a
// deployed table with your AWS credentials (the stack outputs TableName and IssuerUrl). Idempotent.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { table: { type: 'string' }, issuer: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
});
if (values.help || !values.table || !values.issuer || positionals.length !== 1) {
  console.log('usage: npm run seed -- --table <TableName> --issuer <IssuerUrl> <seed.json>');
  process.exit(values.help ? 0 : 2);
}
process.env.TABLE_NAME = values.table;
process.env.ISSUER = values.issuer;
// Seeding signs nothing; the key configuration is required by the schema only.
process.env.KEYS_SOURCE = 'file';
process.env.KEYS_FILE = '/nonexistent/unused';
const { loadSeed } = await import('../functions/admin/seed.ts');
const counts = await loadSeed(JSON.parse(readFileSync(positionals[0]!, 'utf8')));
console.log(`seeded ${counts.clients} clients, ${counts.users} users, ${counts.devices} devices into ${values.table}`);
