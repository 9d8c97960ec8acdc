// Lambda bundles for `npm run bench` (section 4): each function built with esbuild using the bundling options of the
// CDK construct (infra/bundling.ts, imported: the bench builds what is deployed), then loaded in fresh node processes.
import { execFile } from 'node:child_process';
import { isBuiltin } from 'node:module';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { DEVICE_APP_FUNCTION } from '../../device-app/bundle.ts';
import { deviceAppInjectFile } from '../../device-app/build.ts';
import { ROUTES, TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../../functions/routes.ts';
import {
  COLD_IMPORT_BUDGET_MS,
  esbuildOptions,
  LAMBDA_NODE_OPTIONS,
  lambdaBundling,
  SOURCE_MAPS_AT_LOAD,
} from '../../infra/bundling.ts';
import { trackChild } from './child.ts';
import { median } from './report.ts';

/** What the bundles are built and loaded with, for the report (all of it from infra/bundling.ts). */
export type BundlingSummary = {
  format: 'esm' | 'cjs';
  target: string;
  minify: boolean;
  sourcemap: boolean;
  sourcesContent: boolean;
  mainFields: string[];
  external: string[];
  nodeOptions: string;
  budgetMs: number;
};

export function bundlingSummary(): BundlingSummary {
  const o = esbuildOptions(lambdaBundling());
  return {
    format: o.format === 'esm' ? 'esm' : 'cjs',
    target: String(o.target),
    minify: o.minify ?? false,
    sourcemap: Boolean(o.sourcemap),
    sourcesContent: o.sourcesContent ?? true,
    mainFields: o.mainFields ?? [],
    external: o.external ?? [],
    nodeOptions: LAMBDA_NODE_OPTIONS,
    budgetMs: COLD_IMPORT_BUDGET_MS,
  };
}

/** Every Lambda function: route names (deduplicated, e.g. userinfo serves GET and POST), workflow functions and topic subscribers. */
export function functionNames(): string[] {
  return [
    ...new Set([
      ...ROUTES.map((r) => r.name),
      ...WORKFLOW_FUNCTIONS.map((f) => f.name),
      ...TOPIC_SUBSCRIBERS.map((f) => f.name),
    ]),
  ];
}

export type BundleResult = {
  name: string;
  file: string;
  bytes: number;
  gzipBytes: number;
  mapBytes: number;
  /** Milliseconds around loading the bundle in a fresh process, as deployed (NODE_OPTIONS), one per run. */
  importMs: number[];
  /** The CPU time (user + system, all threads) of that load. */
  importCpuMs: number[];
  /** Same as importMs, with Node decoding the source map at load (--enable-source-maps), for comparison. */
  importMsMapsAtLoad: number[];
  /** Process start to handler loaded (performance.now() after the load), as deployed. */
  readyMs: number[];
  /** The AWS SDK packages bundled into it (`@aws-sdk/client-*` and `lib-*`; with their shared code). */
  sdkPackages: string[];
  /**
   * Those of them reached only through `await import()`: evaluated on first use, not at cold start. Expected: none. The
   * functions import the SDK statically, since a dynamic import of SDK code makes esbuild wrap the SDK core the
   * function also loads at start in lazy initialisers, parsed twice at each cold start (infra/bundling.ts); kept so the
   * report shows it should one appear.
   */
  lazySdkPackages: string[];
  /** Imports left outside the bundle other than Node built-ins (expected: none, see buildBundles). */
  externals: string[];
};

export async function buildBundles(projectDir: string, outDir: string): Promise<BundleResult[]> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const summary = bundlingSummary();
  // As on Lambda, where /var/task has no package.json: a .js bundle is CommonJS (this project's own is "module").
  if (summary.format === 'cjs') await writeFile(join(outDir, 'package.json'), '{"type":"commonjs"}\n');
  const results: BundleResult[] = [];
  for (const name of functionNames()) {
    // The device-app function is deployed with the built app injected (the construct does the same).
    const options = esbuildOptions(lambdaBundling(name === DEVICE_APP_FUNCTION ? [deviceAppInjectFile()] : undefined));
    const file = join(outDir, name, summary.format === 'esm' ? 'index.mjs' : 'index.js');
    const out = await build({
      ...options,
      absWorkingDir: projectDir,
      entryPoints: [join(projectDir, 'functions', 'handlers', `${name}.ts`)],
      outfile: file,
      logLevel: 'error',
      metafile: true,
    });
    const output = Object.values(out.metafile.outputs).find((o) => o.entryPoint !== undefined);
    const packageOf = (file: string) => /node_modules\/(@aws-sdk\/(?:client|lib)-[^/]+)\//.exec(file)?.[1];
    const sdkPackages = new Set<string>();
    for (const input of Object.keys(output?.inputs ?? {})) {
      const pkg = packageOf(input);
      if (pkg) sdkPackages.add(pkg);
    }
    // Eager: reached from the handler through static imports only; else only behind an `await import()`.
    const reached = new Set<string>();
    const entry = Object.keys(out.metafile.inputs).find((f) => f.endsWith(`functions/handlers/${name}.ts`));
    const queue = entry ? [entry] : [];
    while (queue.length) {
      const file = queue.pop()!;
      if (reached.has(file)) continue;
      reached.add(file);
      for (const i of out.metafile.inputs[file]?.imports ?? [])
        if (i.kind !== 'dynamic-import' && !i.external) queue.push(i.path);
    }
    const eager = new Set([...reached].map(packageOf).filter((p): p is string => p !== undefined));
    // Left outside: Node built-ins, and optional requires esbuild cannot resolve inside try/catch (e.g.
    // `supports-color` of `debug`, pulled in by web-push), which fail at run time and are caught.
    const externals = [
      ...new Set((output?.imports ?? []).filter((i) => i.external && !isBuiltin(i.path)).map((i) => i.path)),
    ].sort();
    const code = await readFile(file);
    const mapBytes = summary.sourcemap ? (await stat(`${file}.map`).catch(() => ({ size: 0 }))).size : 0;
    results.push({
      name,
      file,
      bytes: code.length,
      gzipBytes: gzipSync(code, { level: 9 }).length,
      mapBytes,
      importMs: [],
      importCpuMs: [],
      importMsMapsAtLoad: [],
      readyMs: [],
      sdkPackages: [...sdkPackages].sort(),
      lazySdkPackages: [...sdkPackages].filter((p) => !eager.has(p)).sort(),
      externals,
    });
  }
  return results;
}

// Runs in the fresh process: load the bundle given as argv[1] the way the Lambda Node.js runtime does (a CommonJS
// index.js with require, an index.mjs with import()), check it exports a handler.
const LOADER = `
const file = process.argv[1];
const c0 = process.cpuUsage();
const t0 = performance.now();
const mod = file.endsWith('.mjs')
  ? await import(process.argv[2])
  : (await import('node:module')).createRequire(file)(file);
const t1 = performance.now();
const cpu = process.cpuUsage(c0);
if (typeof mod.handler !== 'function') throw new Error('the bundle exports no handler');
process.stdout.write(JSON.stringify({ importMs: t1 - t0, cpuMs: (cpu.user + cpu.system) / 1000, readyMs: t1 }));
`;

/** Configuration a deployed function would have (values are placeholders: nothing is called at load). */
const LAMBDA_ENV = {
  AWS_REGION: 'eu-west-1',
  AWS_DEFAULT_REGION: 'eu-west-1',
  ISSUER: 'https://ciba.bench.invalid',
  TABLE_NAME: 'ciba',
  KEYS_SOURCE: 'kms',
  KMS_RSA_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/rsa',
  KMS_EC_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/ec',
  KMS_SEAL_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/seal',
  STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:000000000000:stateMachine:ciba',
  DEVICE_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:ciba-device',
  LOG_LEVEL: 'warn',
};

type Load = { importMs: number; cpuMs: number; readyMs: number };

function loadOnce(file: string, nodeOptions: string): Promise<Load> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--input-type=module', '-e', LOADER, file, pathToFileURL(file).href],
      {
        env: { PATH: process.env.PATH ?? '', ...LAMBDA_ENV, NODE_OPTIONS: nodeOptions },
        timeout: 30_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`loading ${file} failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as Load);
        } catch {
          reject(new Error(`loading ${file}: unexpected output ${stdout} ${stderr}`));
        }
      },
    );
    trackChild(child);
  });
}

/** `runs` fresh processes per bundle and mode, interleaved across bundles; one unmeasured round first (file cache). */
export async function measureColdImports(results: BundleResult[], runs: number, nodeOptions: string): Promise<void> {
  for (const r of results) await loadOnce(r.file, nodeOptions);
  for (let i = 0; i < runs; i++) {
    for (const r of results) {
      const deployed = await loadOnce(r.file, nodeOptions);
      r.importMs.push(deployed.importMs);
      r.importCpuMs.push(deployed.cpuMs);
      r.readyMs.push(deployed.readyMs);
      r.importMsMapsAtLoad.push((await loadOnce(r.file, `${nodeOptions} ${SOURCE_MAPS_AT_LOAD}`.trim())).importMs);
    }
  }
}

export const coldSummary = (values: number[]) => ({
  median: median(values),
  min: values.length ? Math.min(...values) : Number.NaN,
});
