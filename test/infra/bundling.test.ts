// How the functions are bundled (infra/bundling.ts): the AWS SDK inside each bundle (tree-shaken, minified) rather than
// left to the Lambda runtime's copy, CommonJS output, and the construct using exactly these options for every function.
// Then real bundles, built the way `npm run bench` and CDK build them, are loaded in a fresh Node process: they load
// without node_modules, their SDK clients (imported statically) are evaluated at load and used on the first call, and
// a logged stack points at our sources. No function has modules wrapped for lazy initialisation (what a dynamic import
// of SDK code does), none bundles the DynamoDB client whole. Nothing here measures time: `npm run bench` (section 4)
// does.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { build } from 'esbuild';
import { esbuildOptions, LAMBDA_ALIASES, LAMBDA_NODE_OPTIONS, lambdaBundling } from '../../infra/bundling.ts';
import { FUNCTION_NAMES, ROOT, type Synth, defaultStack, resourcesOf } from './support.ts';

/** The esbuild command line CDK made for a function (kept by its asset staging; bundling itself is skipped here). */
function esbuildCommand(s: Synth, name: string): string {
  const fn = s.stack.server.functions[name];
  assert.ok(fn, `function ${name} exists`);
  // biome-ignore lint/suspicious/noExplicitAny: CDK internals (Asset → AssetStaging → Bundling), read only.
  const stage: any = fn.node.tryFindChild('Code')?.node.tryFindChild('Stage');
  const command: unknown = stage?.fingerprintOptions?.bundling?.command;
  assert.ok(
    Array.isArray(command) && typeof command.at(-1) === 'string',
    `${name}: the bundling command is no longer where this test looks for it (aws-cdk-lib internals changed?)`,
  );
  return command.at(-1) as string;
}

describe('bundling options (infra/bundling.ts)', () => {
  it('bundles the AWS SDK (nothing external), as CommonJS, minified, ES modules first, with source maps', () => {
    const b = lambdaBundling();
    assert.equal(b.format, OutputFormat.CJS);
    assert.equal(b.bundleAwsSDK, true);
    assert.deepEqual(b.externalModules, []);
    assert.equal(b.minify, true);
    assert.equal(b.mainFields?.[0], 'module');
    assert.equal(b.sourceMap, true);
    const e = esbuildOptions(b);
    assert.deepEqual(e.external, []);
    assert.equal(e.format, 'cjs');
  });

  it('adds what it is given to inject, and nothing otherwise', () => {
    assert.equal(lambdaBundling().inject, undefined);
    assert.deepEqual(lambdaBundling(['/tmp/x.mjs']).inject, ['/tmp/x.mjs']);
  });

  it('refuses to translate an option the bench would silently drop', () => {
    assert.throws(() => esbuildOptions({ ...lambdaBundling(), keepNames: true }), /keepNames/);
  });
});

describe('CibaStack: every function is bundled with these options', () => {
  let s: Synth;
  before(() => {
    s = defaultStack();
  });

  it('no function leaves @aws-sdk (or anything) external; all CommonJS, minified, module first, with source maps', () => {
    for (const name of FUNCTION_NAMES) {
      const command = esbuildCommand(s, name);
      assert.doesNotMatch(command, /--external:/, name);
      assert.match(command, /'--format=cjs'/, name);
      assert.match(command, /'--minify'/, name);
      assert.match(command, /'--sourcemap'/, name);
      assert.match(command, /'--main-fields=module,main'/, name);
    }
  });

  it(`every function runs with NODE_OPTIONS=${LAMBDA_NODE_OPTIONS || '(none)'} (what the bench measures with)`, () => {
    const fns = resourcesOf(s.json, 'AWS::Lambda::Function');
    assert.equal(fns.length, FUNCTION_NAMES.length);
    for (const [id, fn] of fns)
      assert.equal(fn.Properties.Environment.Variables.NODE_OPTIONS ?? '', LAMBDA_NODE_OPTIONS, id);
  });

  it("every function's bundle has the SDK's default credential chain and event streams replaced (LAMBDA_ALIASES)", () => {
    for (const name of FUNCTION_NAMES) {
      const command = esbuildCommand(s, name);
      for (const [from, to] of Object.entries(LAMBDA_ALIASES))
        assert.ok(command.includes(`'--alias:${from}=${to}'`), name);
    }
  });
});

describe('real bundles load on their own', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ciba-bundle-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  // As in /var/task: no package.json says "module", so index.js is CommonJS.
  writeFileSync(path.join(dir, 'package.json'), '{"type":"commonjs"}\n');

  /**
   * Builds one function (or another entry); answers its file, what it left outside the bundle other than Node
   * built-ins, and the source files it holds.
   */
  async function bundle(
    name: string,
    entry = path.join(ROOT, 'functions', 'handlers', `${name}.ts`),
  ): Promise<{ file: string; external: string[]; inputs: string[] }> {
    const file = path.join(dir, name, 'index.js');
    const out = await build({
      ...esbuildOptions(lambdaBundling()),
      absWorkingDir: ROOT,
      entryPoints: [entry],
      outfile: file,
      logLevel: 'error',
      metafile: true,
    });
    const imports = Object.values(out.metafile.outputs).flatMap((o) => o.imports);
    return {
      file,
      external: imports.filter((i) => i.external && !isBuiltin(i.path)).map((i) => i.path),
      inputs: Object.keys(out.metafile.inputs),
    };
  }

  // Loads the bundle as the Lambda runtime does (require), reports which network modules are loaded, then optionally
  // invokes the handler once. Placeholders only: KMS points at a closed local port, so a call fails fast.
  const PROBE = `
    const loaded = () => ['http', 'https'].filter((m) => process.moduleLoadList.includes('NativeModule ' + m));
    const mod = require(process.argv[1]);
    const out = { handler: typeof mod.handler, atLoad: loaded() };
    const event = { version: '2.0', rawPath: '/device/config', headers: {}, requestContext: { http: { method: 'GET', path: '/device/config' } } };
    (process.argv[2] === 'invoke' ? mod.handler(event, { awsRequestId: 'test', functionName: 'test' }) : Promise.resolve())
      .then((r) => console.log(JSON.stringify({ ...out, status: r?.statusCode, afterCall: loaded() })));
  `;
  const probe = async (file: string, invoke: boolean) => {
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', PROBE, file, invoke ? 'invoke' : ''], {
      cwd: dir,
      timeout: 30_000,
      env: {
        PATH: process.env.PATH ?? '',
        NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
        AWS_REGION: 'eu-west-1',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_MAX_ATTEMPTS: '1',
        AWS_ENDPOINT_URL_KMS: 'http://127.0.0.1:9',
        ISSUER: 'https://ciba.test.invalid',
        TABLE_NAME: 'ciba',
        KEYS_SOURCE: 'kms',
        KMS_RSA_KEY_ID: 'rsa',
        KMS_EC_KEY_ID: 'ec',
        KMS_SEAL_KEY_ID: 'seal',
        CIBA_VAPID_KMS_KEY_ID: 'vapid',
        LOG_LEVEL: 'error',
      },
    });
    return JSON.parse(stdout.trim().split('\n').at(-1)!) as {
      handler: string;
      atLoad: string[];
      status?: number;
      afterCall?: string[];
    };
  };

  it('device-config: loads with its KMS client bundled and evaluated at load; the first call uses it', async () => {
    const { file, external } = await bundle('device-config');
    assert.deepEqual(external, []);
    const r = await probe(file, true);
    assert.equal(r.handler, 'function');
    // Imported statically (infra/bundling.ts, "No dynamic import"): the client's module, and its HTTPS handler, at load.
    assert.ok(r.atLoad.includes('https'), JSON.stringify(r));
    // KMS could not be reached (closed port): a 500, after the client, created on that call, tried over HTTP.
    assert.equal(r.status, 500);
    assert.ok(r.afterCall?.includes('http'), JSON.stringify(r));
  });

  it('token: loads with its eagerly used DynamoDB client bundled, without the default credential chain', async () => {
    const { file, external, inputs } = await bundle('token');
    assert.deepEqual(external, []);
    assert.ok(inputs.some((i) => i.endsWith('functions/runtime/lambda-credentials.ts')));
    for (const gone of [
      'credential-provider-node/',
      'credential-provider-sso/',
      'credential-provider-ini/',
      'nested-clients/',
    ])
      assert.ok(!inputs.some((i) => i.includes(gone)), `${gone} is not bundled`);
    const r = await probe(file, false);
    assert.equal(r.handler, 'function');
    assert.ok(r.atLoad.includes('https'), 'the DynamoDB client (and its HTTPS handler) is loaded at cold start');
  });

  it('a logged stack points at the TypeScript source through the .map beside the bundle, without --enable-source-maps', async () => {
    const fixture = path.join(dir, 'stack-fixture.ts');
    // Line 4 throws (column 9): the logged stack must say so, though the bundle is one minified line.
    writeFileSync(
      fixture,
      [
        `import { errorFields } from ${JSON.stringify(path.join(ROOT, 'functions', 'runtime', 'log.ts'))};`,
        'export function fail(): never {',
        '  // the next line throws',
        "  throw new TypeError('boom');",
        '}',
        'try { fail(); } catch (e) { console.log(JSON.stringify(errorFields(e))); }',
        '',
      ].join('\n'),
    );
    const { file } = await bundle('stack-fixture', fixture);
    const { stdout } = await promisify(execFile)(process.execPath, [file], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: LAMBDA_NODE_OPTIONS },
    });
    const fields = JSON.parse(stdout.trim()) as { error: string; stack: string };
    assert.equal(fields.error, 'TypeError');
    assert.match(fields.stack, /stack-fixture\.ts:4:9\b/, fields.stack);
    assert.doesNotMatch(fields.stack, /index\.js:/, 'no frame left in the bundle');
  });

  it('no function wraps its modules for lazy initialisation (a dynamic import of SDK code would: infra/bundling.ts)', async () => {
    // esbuild evaluates a module reached through `import()` lazily: it wraps that module, and every module it imports,
    // in an `__esm` initialiser, also where the function imports them statically. V8 pre-parses a wrapper's body when
    // it compiles the bundle and parses it again in full when the initialiser runs, at load: the SDK code a function
    // shares with such an import is parsed twice at every cold start (bc-authorize 55 → 43 ms, dispatch-notifications
    // 56 → 47 ms without: infra/bundling.ts). Unminified, so that the wrappers can be found and named.
    const out = await build({
      ...esbuildOptions(lambdaBundling()),
      minify: false,
      sourcemap: false,
      absWorkingDir: ROOT,
      entryPoints: Object.fromEntries(
        FUNCTION_NAMES.map((name) => [name, path.join(ROOT, 'functions', 'handlers', `${name}.ts`)]),
      ),
      outdir: path.join(dir, 'unminified'),
      write: false,
      logLevel: 'error',
    });
    // The one allowed: the stand-in for the SDK's event streams, which imports nothing (LAMBDA_ALIASES).
    const allowed = new Set(['functions/runtime/no-event-streams.ts']);
    const outputs = out.outputFiles.filter((f) => f.path.endsWith('.js'));
    assert.equal(outputs.length, FUNCTION_NAMES.length);
    const offenders: Record<string, string> = {};
    for (const f of outputs) {
      // Unminified, each wrapper is `__esm({ "<module path>"() { … } })`.
      const wrapped = [...f.text.matchAll(/\b__esm\(\{\s*"([^"]+)"/g)].map((m) => m[1]!).filter((m) => !allowed.has(m));
      if (wrapped.length)
        offenders[path.basename(f.path, '.js')] = `${wrapped.length} modules, e.g. ${wrapped.slice(0, 3).join(', ')}`;
    }
    assert.deepEqual(
      offenders,
      {},
      "modules wrapped in esbuild's lazy __esm( initialiser, per function: something in its graph is loaded with " +
        'import() (e.g. an SDK client) and reaches modules the function also loads at start, which V8 then parses ' +
        'twice at every cold start; import it statically (infra/bundling.ts)',
    );
  });

  it('no function bundles the DynamoDB client whole (a dynamic import reaching it would: docs/operations.md)', async () => {
    // esbuild evaluates a module reached through `await import()` lazily, wrapping it and everything it imports; a
    // wrapped package index keeps every command (and the aggregated client), so one such import anywhere in a
    // function's graph would put all of DynamoDB's 57 commands and their schemas back into its cold start.
    const out = await build({
      ...esbuildOptions(lambdaBundling()),
      absWorkingDir: ROOT,
      entryPoints: FUNCTION_NAMES.map((name) => path.join(ROOT, 'functions', 'handlers', `${name}.ts`)),
      outdir: path.join(dir, 'all'),
      write: false,
      logLevel: 'error',
      metafile: true,
    });
    const outputs = Object.values(out.metafile.outputs).filter((o) => o.entryPoint);
    assert.equal(outputs.length, FUNCTION_NAMES.length);
    for (const o of outputs) {
      const kept = (file: string) =>
        (o.inputs[`node_modules/@aws-sdk/client-dynamodb/dist-es/${file}`]?.bytesInOutput ?? 0) > 0;
      assert.ok(!kept('DynamoDB.js'), `${o.entryPoint}: the aggregated DynamoDB client is bundled`);
      assert.ok(!kept('commands/ListTablesCommand.js'), `${o.entryPoint}: every DynamoDB command is bundled`);
    }
  });
});
