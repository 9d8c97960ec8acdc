// How every Lambda function is bundled: the one definition of the esbuild options. The CDK construct
// (infra/ciba-construct.ts) passes them to each NodejsFunction, and `npm run bench` (scripts/bench/bundles.ts, section 4)
// builds with the same values through esbuildOptions(), so the sizes and cold-start figures it prints are those of
// what is deployed. Why each choice (figures in docs/operations.md, "Cold starts"):
//
// - The AWS SDK is bundled, not left to the copy in the Lambda runtime: with `@aws-sdk/*` external every cold start
//   resolved and evaluated whole packages from node_modules (all of a client's commands and credential providers);
//   bundled, esbuild keeps only the commands and code we use (mainFields `module` first: the SDK's ES modules, which
//   tree-shake), minified. It also pins the SDK version we test with.
// - CommonJS output, not ESM: an ESM bundle imports each Node built-in as an ES module, and Node then evaluates every
//   export of it, lazy getters included: `node:http` alone thereby loads the bundled undici for its WebSocket export
//   (25–40 ms here), `node:process` and `node:crypto` add more. A CommonJS bundle `require`s built-ins, which runs no
//   getter, and a module reached only through `await import()` (SES, Secrets Manager, …) is evaluated, built-ins
//   included, only when first used. CommonJS output needs no `createRequire` banner either.
// - Source maps: see LAMBDA_NODE_OPTIONS.
import { type BundlingOptions, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { BuildOptions } from 'esbuild';

/**
 * NODE_OPTIONS of every function (the construct sets it in each function's environment; test/infra/bundling.test.ts
 * checks they agree). `--enable-source-maps` makes the stacks in the logs point at our TypeScript instead of minified
 * code. It costs at every cold start, since Node reads and parses the bundle's `.map` as it loads the bundle: measured
 * here 15–25 ms for a function with the SDK (maps of 0.6–1.4 MB), about 4 ms for discovery (`npm run bench`, section
 * 4, column "no maps"). Kept, because readable stacks are what makes a logged error actionable, and the choice moves no
 * function across the 60 ms budget: those loading the DynamoDB client at cold start are over it either way, the others
 * under it either way. `sourcesContent` is off: a stack needs names and lines, not our sources; it halves the `.map`
 * files (a smaller asset to fetch at a cold start) and made no measurable difference at load. Having both would take
 * mapping a logged stack on demand (node:module's SourceMap over the shipped `.map`, when an error is logged) and then
 * dropping this flag.
 */
export const LAMBDA_NODE_OPTIONS = '--enable-source-maps';

/** The cold module load every function should stay under, as `npm run bench` measures it on the machine it runs on. */
export const COLD_IMPORT_BUDGET_MS = 60;

/**
 * The NodejsFunction `bundling` options of every function (a fresh object each time: callers may add to it).
 * `inject`: files esbuild injects (the device app into the device-app function, see the construct).
 */
export function lambdaBundling(inject?: readonly string[]): BundlingOptions {
  return {
    format: OutputFormat.CJS,
    target: 'node24',
    minify: true,
    sourceMap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    // Nothing external: without these two CDK would leave `@aws-sdk/*` to the runtime's copy.
    bundleAwsSDK: true,
    externalModules: [],
    // device-app-assets.ts reads import.meta.url only where the app was not injected (the local stack, unbundled).
    esbuildArgs: { '--log-override': 'empty-import-meta=silent' },
    ...(inject?.length ? { inject: [...inject] } : {}),
  };
}

/**
 * The same options for esbuild's JS API (what `npm run bench` builds with), from a NodejsFunction `bundling`.
 * Refuses an option it does not translate, so a new choice in lambdaBundling() cannot be left out of the bench.
 */
export function esbuildOptions(bundling: BundlingOptions = lambdaBundling()): BuildOptions {
  const known = new Set([
    'format',
    'target',
    'minify',
    'sourceMap',
    'sourcesContent',
    'mainFields',
    'bundleAwsSDK',
    'externalModules',
    'esbuildArgs',
    'banner',
    'inject',
  ]);
  const unknown = Object.keys(bundling).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`esbuildOptions: no translation for bundling option(s) ${unknown.join(', ')}`);
  const logOverride: Record<string, 'silent' | 'verbose' | 'debug' | 'info' | 'warning' | 'error'> = {};
  for (const [key, value] of Object.entries(bundling.esbuildArgs ?? {})) {
    const m = key === '--log-override' && typeof value === 'string' ? /^([\w-]+)=(\w+)$/.exec(value) : null;
    if (!m) throw new Error(`esbuildOptions: no translation for esbuild argument ${key}`);
    logOverride[m[1]!] = m[2] as (typeof logOverride)[string];
  }
  return {
    bundle: true,
    platform: 'node',
    format: bundling.format === OutputFormat.ESM ? 'esm' : 'cjs',
    target: bundling.target,
    minify: bundling.minify ?? false,
    sourcemap: bundling.sourceMap ?? false,
    sourcesContent: bundling.sourcesContent ?? true,
    mainFields: bundling.mainFields,
    external: bundling.externalModules ?? (bundling.bundleAwsSDK ? [] : ['@aws-sdk/*']),
    ...(bundling.banner ? { banner: { js: bundling.banner } } : {}),
    ...(bundling.inject ? { inject: bundling.inject } : {}),
    logOverride,
  };
}
