// Lambda bundles for `npm run bench`: each function built with esbuild using the options of the CDK construct
// (read from infra/ciba-construct.ts so the two cannot drift silently), then imported in fresh node processes.
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { ROUTES, TOPIC_SUBSCRIBERS, WORKFLOW_FUNCTIONS } from '../../functions/routes.ts';
import { trackChild } from './child.ts';
import { median } from './report.ts';

export type BundlingOptions = {
  target: string;
  minify: boolean;
  sourcemap: boolean;
  mainFields: string[];
  banner: string;
  external: string[];
  nodeOptions: string;
  /** Which values were found in the construct's source (the rest are the bench's defaults). */
  fromConstruct: string[];
};

const DEFAULTS: Omit<BundlingOptions, 'fromConstruct'> = {
  target: 'node24',
  minify: true,
  sourcemap: true,
  mainFields: ['module', 'main'],
  banner: "import { createRequire } from 'module';const require = createRequire(import.meta.url);",
  external: ['@aws-sdk/*'],
  nodeOptions: '--enable-source-maps',
};

const stringList = (text: string): string[] =>
  [...text.matchAll(/'([^']*)'|"([^"]*)"/g)].map((m) => m[1] ?? m[2] ?? '');

/** The construct's `bundling: { … }` values (ESM output is checked, not configurable here). */
export async function constructBundling(projectDir: string): Promise<BundlingOptions> {
  const source = await readFile(join(projectDir, 'infra', 'ciba-construct.ts'), 'utf8');
  // The object literal ends at the first line holding only its closing brace (the banner contains braces).
  const block = /bundling:\s*\{([\s\S]*?)\n\s*\},?\s*\n/.exec(source)?.[1] ?? '';
  const found: string[] = [];
  const pick = <T>(name: string, re: RegExp, parse: (m: RegExpExecArray) => T, fallback: T, text = block): T => {
    const m = re.exec(text);
    if (!m) return fallback;
    found.push(name);
    return parse(m);
  };
  if (block && !/format:\s*OutputFormat\.ESM/.test(block))
    throw new Error('infra/ciba-construct.ts no longer bundles as ESM; update scripts/bench/bundles.ts');
  return {
    target: pick('target', /target:\s*'([^']+)'/, (m) => m[1]!, DEFAULTS.target),
    minify: pick('minify', /minify:\s*(true|false)/, (m) => m[1] === 'true', DEFAULTS.minify),
    sourcemap: pick('sourceMap', /sourceMap:\s*(true|false)/, (m) => m[1] === 'true', DEFAULTS.sourcemap),
    mainFields: pick('mainFields', /mainFields:\s*\[([^\]]*)\]/, (m) => stringList(m[1]!), DEFAULTS.mainFields),
    banner: pick('banner', /banner:\s*"([^"]+)"/, (m) => m[1]!, DEFAULTS.banner),
    external: pick('externalModules', /externalModules:\s*\[([^\]]*)\]/, (m) => stringList(m[1]!), DEFAULTS.external),
    nodeOptions: pick('NODE_OPTIONS', /NODE_OPTIONS:\s*'([^']*)'/, (m) => m[1]!, DEFAULTS.nodeOptions, source),
    fromConstruct: found,
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
  /** Milliseconds around `await import(bundle)` in a fresh process, one per run. */
  importMs: number[];
  /** Same, without NODE_OPTIONS (no --enable-source-maps). */
  importMsNoMaps: number[];
  /** Process start to handler imported (performance.now() after the import), as deployed. */
  readyMs: number[];
  /** The bundle's external imports (the AWS SDK packages the Lambda runtime provides). */
  externals: string[];
  /** A module importing only those externals, and its cold import times as deployed. */
  externalsFile: string;
  externalsMs: number[];
};

export async function buildBundles(
  projectDir: string,
  outDir: string,
  options: BundlingOptions,
): Promise<BundleResult[]> {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const results: BundleResult[] = [];
  for (const name of functionNames()) {
    const file = join(outDir, name, 'index.mjs');
    let externals: string[] = [];
    await build({
      absWorkingDir: projectDir,
      entryPoints: [join(projectDir, 'functions', 'handlers', `${name}.ts`)],
      outfile: file,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: options.target,
      minify: options.minify,
      sourcemap: options.sourcemap,
      mainFields: options.mainFields,
      banner: { js: options.banner },
      external: options.external,
      logLevel: 'error',
      metafile: true,
    }).then(async (out) => {
      const output = Object.values(out.metafile?.outputs ?? {}).find((o) => o.entryPoint !== undefined);
      externals = [...new Set((output?.imports ?? []).filter((i) => i.external).map((i) => i.path))].sort();
    });
    const code = await readFile(file);
    const mapBytes = options.sourcemap ? (await stat(`${file}.map`).catch(() => ({ size: 0 }))).size : 0;
    const externalsFile = join(outDir, name, 'externals-only.mjs');
    // Only the externals the runtime provides (the AWS SDK): esbuild also leaves out optional requires it cannot
    // resolve inside try/catch (e.g. `supports-color` of `debug`, pulled in by web-push), which fail and are caught.
    const resolvable = externals.filter((e) => {
      try {
        createRequire(join(projectDir, 'package.json')).resolve(e);
        return true;
      } catch {
        return false;
      }
    });
    await writeFile(
      externalsFile,
      `${resolvable.map((e) => `import ${JSON.stringify(e)};`).join('\n')}\nexport const handler = () => {};\n`,
    );
    results.push({
      name,
      file,
      bytes: code.length,
      gzipBytes: gzipSync(code, { level: 9 }).length,
      mapBytes,
      importMs: [],
      importMsNoMaps: [],
      readyMs: [],
      externals,
      externalsFile,
      externalsMs: [],
    });
  }
  return results;
}

// Runs in the fresh process: time the import of the bundle given as argv[1], check it exports a handler.
const LOADER = `
const t0 = performance.now();
const mod = await import(process.argv[1]);
const t1 = performance.now();
if (typeof mod.handler !== 'function') throw new Error('the bundle exports no handler');
process.stdout.write(JSON.stringify({ importMs: t1 - t0, readyMs: t1 }));
`;

/** Configuration a deployed function would have (values are placeholders: nothing is called at import). */
const LAMBDA_ENV = {
  AWS_REGION: 'eu-west-1',
  AWS_DEFAULT_REGION: 'eu-west-1',
  ISSUER: 'https://ciba.bench.invalid',
  TABLE_NAME: 'ciba',
  KEYS_SOURCE: 'kms',
  KMS_RSA_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/rsa',
  KMS_EC_KEY_ID: 'arn:aws:kms:eu-west-1:000000000000:key/ec',
  STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:000000000000:stateMachine:ciba',
  DEVICE_TOPIC_ARN: 'arn:aws:sns:eu-west-1:000000000000:ciba-device',
  LOG_LEVEL: 'warn',
};

function importOnce(file: string, nodeOptions: string): Promise<{ importMs: number; readyMs: number }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['--input-type=module', '-e', LOADER, pathToFileURL(file).href],
      {
        env: { PATH: process.env.PATH ?? '', ...LAMBDA_ENV, NODE_OPTIONS: nodeOptions },
        timeout: 30_000,
        encoding: 'utf8',
      },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`import of ${file} failed: ${err.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as { importMs: number; readyMs: number });
        } catch {
          reject(new Error(`import of ${file}: unexpected output ${stdout} ${stderr}`));
        }
      },
    );
    trackChild(child);
  });
}

/** `runs` fresh processes per bundle and mode, interleaved across bundles; one unmeasured round first (file cache). */
export async function measureColdImports(results: BundleResult[], runs: number, nodeOptions: string): Promise<void> {
  for (const r of results) {
    await importOnce(r.file, nodeOptions);
    await importOnce(r.externalsFile, nodeOptions);
  }
  for (let i = 0; i < runs; i++) {
    for (const r of results) {
      const deployed = await importOnce(r.file, nodeOptions);
      r.importMs.push(deployed.importMs);
      r.readyMs.push(deployed.readyMs);
      if (nodeOptions) r.importMsNoMaps.push((await importOnce(r.file, '')).importMs);
      r.externalsMs.push((await importOnce(r.externalsFile, nodeOptions)).importMs);
    }
  }
}

export const coldSummary = (values: number[]) => ({
  median: median(values),
  min: values.length ? Math.min(...values) : Number.NaN,
});
