// scripts/check-node.mjs: the plain-JavaScript preflight in front of the npm scripts that need Node 24. On an older
// Node (before `npm ci` installs the pinned one) it prints one line (needed, found, what to do) and exits 1, instead
// of Node failing with ERR_UNKNOWN_FILE_EXTENSION on the first .ts file. CHECK_NODE_FAKE_VERSION stands in for the
// running version here; the test suite itself runs on Node 24.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const SCRIPT = new URL('../../scripts/check-node.mjs', import.meta.url).pathname;
const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  scripts: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

function preflight(fakeVersion?: string) {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CHECK_NODE_FAKE_VERSION;
  if (fakeVersion !== undefined) env.CHECK_NODE_FAKE_VERSION = fakeVersion;
  return spawnSync(process.execPath, [SCRIPT], { env, encoding: 'utf8' });
}

test('on Node 20 it prints one line (needs 24, found v20.x, run npm ci) and exits 1', () => {
  const run = preflight('v20.20.2');
  assert.equal(run.status, 1);
  assert.equal(run.stdout, '');
  const lines = run.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, run.stderr);
  assert.match(lines[0]!, /needs Node\.js 24 or newer/);
  assert.match(lines[0]!, /found Node\.js v20\.20\.2/);
  assert.match(lines[0]!, /run `npm ci` first/);
  assert.match(lines[0]!, /pinned Node\.js 24/);
});

test('older and odd versions are refused too; 24 and newer pass silently', () => {
  for (const v of ['v18.19.0', 'v23.11.1', 'not-a-version']) assert.equal(preflight(v).status, 1, v);
  for (const v of ['v24.0.0', 'v24.21.0', 'v25.1.0']) {
    const run = preflight(v);
    assert.equal(run.status, 0, `${v}: ${run.stderr}`);
    assert.equal(run.stdout + run.stderr, '', v);
  }
  // Without the override: the Node running this suite (the pinned 24).
  assert.equal(preflight().status, 0);
});

test('every npm script that runs TypeScript or the CDK goes through the preflight first', () => {
  for (const name of ['start', 'demo', 'test', 'test:unit', 'bench', 'seed', 'mtls-cert', 'synth', 'deploy']) {
    const script = PACKAGE.scripts[name];
    assert.ok(script?.startsWith('node scripts/check-node.mjs && '), `${name}: ${script}`);
  }
});

test('npm ci on an older Node: the three install scripts are approved, engine warnings are not shown', () => {
  assert.deepEqual(PACKAGE.allowScripts, { 'classic-level': true, esbuild: true, node: true });
  // .npmrc: warnings (EBADENGINE against the Node running npm) off, errors on; never engine-strict (npm ci would fail).
  const npmrc = readFileSync(new URL('../../.npmrc', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => !l.startsWith('#'));
  assert.ok(npmrc.includes('loglevel=error'), npmrc.join('\n'));
  assert.ok(!npmrc.some((l) => /^engine-strict\s*=\s*true/.test(l)));
});
