// Preflight of the npm scripts that run TypeScript directly (`npm start`, `npm run demo`, `npm test`, …): they need
// Node.js 24 (type stripping). npm puts node_modules/.bin first on PATH, so after `npm ci` the `node` of a script is
// the project's pinned Node 24 (the "node" devDependency); before it, it is whatever Node the machine has, which
// would fail with ERR_UNKNOWN_FILE_EXTENSION. This file is plain JavaScript that any Node can run, so the newcomer
// gets one line saying what is needed, what was found and what to do instead.
//   CHECK_NODE_FAKE_VERSION=v20.0.0  pretend to be that version (for the tests)
import { readFileSync } from 'node:fs';

const found = process.env.CHECK_NODE_FAKE_VERSION || process.version;

// The required major version comes from package.json's "engines" (">=24"), so there is one place to change it.
let required = 24;
try {
  const engines = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).engines;
  const match = /^\s*>=\s*v?(\d+)/.exec(engines?.node || '');
  if (match) required = Number(match[1]);
} catch {
  // Keep the default.
}

const match = /^v?(\d+)\./.exec(found);
const major = match ? Number(match[1]) : 0;
if (!(major >= required)) {
  console.error(
    `This project needs Node.js ${required} or newer, but found Node.js ${found}: run \`npm ci\` first ` +
      `(it installs the project's pinned Node.js ${required}, which the npm scripts use), then this command again.`,
  );
  process.exit(1);
}
