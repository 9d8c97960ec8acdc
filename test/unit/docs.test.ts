// The docs cannot drift from the code: the configuration table is generated from functions/settings.ts and must be
// current; every environment variable the code reads and every npm script is documented; nothing in the repo
// points outside it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CONFIG_DOC, regenerate } from '../../scripts/docs.ts';
import { SETTINGS } from '../../functions/settings.ts';

const ROOT = path.join(import.meta.dirname, '..', '..');
const tracked = (): string[] =>
  execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    // A file deleted in the working tree but not yet in the index is gone.
    .filter((f) => f !== '' && existsSync(path.join(ROOT, f)));
const docsText = (): string =>
  [path.join(ROOT, 'README.md'), ...readdirSync(path.join(ROOT, 'docs')).map((f) => path.join(ROOT, 'docs', f))]
    .filter((f) => f.endsWith('.md'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');

/** Variables only the AWS SDK, Node or CI read: set by the local stack or the CI machine, not configuration. */
const NOT_CONFIGURATION = new Set(['CI', 'NODE_OPTIONS', 'HOME', 'PATH', 'NO_COLOR', 'FORCE_COLOR', 'TERM']);

test('docs/configuration.md has the table generated from functions/settings.ts (run `npm run docs`)', () => {
  const doc = readFileSync(CONFIG_DOC, 'utf8');
  assert.equal(regenerate(doc), doc);
  for (const s of Object.values(SETTINGS)) assert.ok(doc.includes(`\`${s.env}\``), s.env);
});

test('every environment variable the code reads is documented', () => {
  const read = new Set<string>();
  for (const file of tracked().filter((f) => /^(functions|infra|scripts|statemachines)\/.*\.(ts|mjs)$/.test(f))) {
    const text = readFileSync(path.join(ROOT, file), 'utf8');
    for (const m of text.matchAll(/\b(?:process\.)?env(?:\.|\[['"])([A-Z][A-Z0-9_]{2,})\b/g)) read.add(m[1]!);
  }
  const docs = docsText();
  const missing = [...read].filter((v) => !NOT_CONFIGURATION.has(v) && !v.startsWith('AWS_') && !docs.includes(v));
  assert.deepEqual(missing, [], 'undocumented environment variables');
});

test('every npm script is documented, and every documented `npm run x` exists', () => {
  const scripts = Object.keys(JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts as object);
  const docs = docsText();
  const undocumented = scripts.filter((s) => !docs.includes(`npm run ${s}`) && !docs.includes(`npm ${s}`));
  assert.deepEqual(undocumented, [], 'npm scripts missing from the docs');
  const mentioned = new Set([...docs.matchAll(/npm run ([a-z][a-z:-]*)/g)].map((m) => m[1]!));
  assert.deepEqual(
    [...mentioned].filter((s) => !scripts.includes(s)),
    [],
    'documented scripts that do not exist',
  );
});

test('nothing in the repo points to files outside it', () => {
  const outside = /\.\.\/shared|\/work\/|shared\/(notes|CONTRACT|DESIGN)/;
  const hits = tracked()
    .filter((f) => !f.endsWith('package-lock.json') && !f.startsWith('test/unit/docs.test.ts'))
    .filter((f) => outside.test(readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(hits, []);
});
