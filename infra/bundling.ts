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
//   getter. CommonJS output needs no `createRequire` banner either.
// - No dynamic import of ES module code that the eager graph shares (the SDK: every client shares its core). In one
//   bundle without splitting, esbuild makes each module reachable from an `import()` lazily initialised: it wraps the
//   module's body in a function (`__esm`), and with it every module that one imports, those the handler imports
//   statically included, and so the whole SDK core as soon as one client is imported dynamically. V8 only pre-parses
//   a wrapped body when it compiles the bundle and parses it again in full when the wrapper runs, which for shared
//   code is at load: nearly all the eager code was parsed twice (389 wrapped modules in bc-authorize, 689 in
//   dispatch-notifications). So adapters import the SDK clients they use statically and create them on first use
//   (functions/adapters/aws.ts), and the SDK's own dynamic import of its event streams is aliased away (LAMBDA_ALIASES).
//   Measured here (median of 21 fresh processes, the variants interleaved): bc-authorize 55 → 43 ms,
//   dispatch-notifications 56 → 47 ms, though the clients they used to load on first use (KMS; SNS, SES, Secrets
//   Manager) are now evaluated at load; removing only our own dynamic imports gave 49 and 52 ms, only the SDK's 51 and
//   54 ms (each leaves 160–670 modules wrapped). Only device-config, whose one client (KMS) was shared with nothing it
//   loads at start, got slower (19 → 27 ms). A CommonJS package (web-push) is wrapped alone (`__commonJS`, evaluated
//   when required) and may stay behind `import()`. A test (test/infra/bundling.test.ts) fails if any function's
//   bundle has a wrapped module.
// - The SDK's default credential chain and its event streams are replaced: see LAMBDA_ALIASES.
// - Source maps: see LAMBDA_NODE_OPTIONS.
import { type BundlingOptions, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type { BuildOptions } from 'esbuild';
import { fileURLToPath } from 'node:url';

/**
 * NODE_OPTIONS of every function: none (the construct sets NODE_OPTIONS only when this is not empty;
 * test/infra/bundling.test.ts checks they agree). Logged stacks still point at our TypeScript: the logger maps a stack's
 * frames through the `.map` beside the bundle when it logs an error (functions/runtime/stack-map.ts). Node's
 * `--enable-source-maps` would do it for every stack but reads and decodes the whole map at every cold start: measured
 * here 15–25 ms for a function with the SDK (maps of 0.5–1 MB), about 4 ms for discovery (`npm run bench`, section 4,
 * column "maps at load"). `sourcesContent` is off: a stack needs names and lines, not our sources; it halves the `.map`
 * files (a smaller asset to fetch at a cold start).
 */
export const LAMBDA_NODE_OPTIONS: string = '';

/** What the bench loads each bundle with beside LAMBDA_NODE_OPTIONS, for comparison: Node mapping stacks itself. */
export const SOURCE_MAPS_AT_LOAD = '--enable-source-maps';

/**
 * Module replacements in every bundle (esbuild `alias`). Absolute paths, so the bundle does not depend on esbuild's
 * working directory.
 *
 * - The SDK's default credential chain, of which a Lambda function only ever uses the environment, becomes
 *   functions/runtime/lambda-credentials.ts (130 KB less to parse at each cold start; the token function's cold load
 *   70 → 56 ms here).
 * - The SDK's event streams (`@smithy/core/event-streams`) become functions/runtime/no-event-streams.ts, whose two
 *   exports throw. The SDK's HTTP protocol loads that module with `await import()` for operations with an event-stream
 *   member, which none of the commands the functions send has; bundled, that import wrapped about 160 modules of
 *   @smithy/core, those every client evaluates at load included, in lazy initialisers that V8 parses twice (see
 *   "No dynamic import" above). The stand-in imports nothing, so its own wrapper is the only one left in a bundle.
 */
export const LAMBDA_ALIASES: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-node': fileURLToPath(
    new URL('../functions/runtime/lambda-credentials.ts', import.meta.url),
  ),
  '@smithy/core/event-streams': fileURLToPath(new URL('../functions/runtime/no-event-streams.ts', import.meta.url)),
};

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
    esbuildArgs: {
      '--log-override': 'empty-import-meta=silent',
      ...Object.fromEntries(Object.entries(LAMBDA_ALIASES).map(([from, to]) => [`--alias:${from}`, to])),
    },
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
  const alias: Record<string, string> = {};
  for (const [key, value] of Object.entries(bundling.esbuildArgs ?? {})) {
    if (key.startsWith('--alias:') && typeof value === 'string') {
      alias[key.slice('--alias:'.length)] = value;
      continue;
    }
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
    ...(Object.keys(alias).length ? { alias } : {}),
  };
}
