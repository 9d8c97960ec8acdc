// Builds the device app (device-app/src) into a DeviceAppBundle (device-app/bundle.ts) with esbuild's API, in memory,
// in well under a second. Nothing is built ahead and nothing generated is committed or needs an extra command:
//  - locally (`npm start`, `npm test`, `npm run demo`), the device-app handler builds the app the first time it is
//    asked for it, in the local stack's process (functions/handlers/device-app.ts);
//  - on AWS, the CDK construct builds it at synth, writes it as a module exporting DEVICE_APP_BUNDLE, and esbuild
//    injects that module into the device-app function's bundle (NodejsFunction `bundling.inject`): the deployed
//    handler finds the app in its own code and never builds anything.
// What it makes: main.<hash>.js and sw.js (TypeScript bundled, minified), app.<hash>.css, the icons and the manifest
// under content-hashed names (cached for a year; a new version has new names), and index.html pointing at them.
// sw.js keeps its name (a service worker's URL must not change) and is revalidated on every use, like the page.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildSync, type Metafile } from 'esbuild';
import type { DeviceAppBundle, DeviceAppFile } from './bundle.ts';

const ROOT = dirname(fileURLToPath(import.meta.url));
const SRC = join(ROOT, 'src');
const PROJECT = dirname(ROOT);

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  webmanifest: 'application/manifest+json',
  txt: 'text/plain; charset=utf-8',
};
const COMPRESSIBLE = new Set(['js', 'css', 'svg', 'webmanifest', 'txt']);

const extensionOf = (name: string) => name.slice(name.lastIndexOf('.') + 1);
const digest = (content: Uint8Array) => createHash('sha256').update(content).digest();

function file(content: Uint8Array, name: string, immutable: boolean): DeviceAppFile {
  const extension = extensionOf(name);
  const contentType = TYPES[extension];
  if (!contentType) throw new Error(`device-app: no content type for ${name}`);
  const gzip = COMPRESSIBLE.has(extension) ? gzipSync(content, { level: 9 }) : undefined;
  return {
    contentType,
    body: Buffer.from(content).toString('base64'),
    ...(gzip && gzip.length < content.length ? { gzip: gzip.toString('base64') } : {}),
    etag: `"${digest(content).toString('base64url').slice(0, 27)}"`,
    immutable,
  };
}

/** `main.js` → `main.3f9a1c0b2e.js`: a new name for new content. */
const hashedName = (name: string, content: Uint8Array) => {
  const dot = name.lastIndexOf('.');
  return `${name.slice(0, dot)}.${digest(content).toString('hex').slice(0, 10)}${name.slice(dot)}`;
};

/** The licence texts of the npm packages bundled into the app's scripts (their MIT notices must travel with them). */
function thirdPartyNotices(metafile: Metafile): string {
  const packages = new Set<string>();
  for (const input of Object.keys(metafile.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) packages.add(m[1]!);
  }
  return [...packages]
    .sort()
    .map((name) => {
      const dir = join(PROJECT, 'node_modules', name);
      const { version, license } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        version: string;
        license?: string;
      };
      let text = '';
      for (const candidate of ['LICENSE', 'LICENSE.md', 'license', 'LICENSE.txt']) {
        try {
          text = readFileSync(join(dir, candidate), 'utf8').trim();
          break;
        } catch {
          // try the next name
        }
      }
      return `${name} ${version} (${license ?? 'see package'})\n\n${text}\n`;
    })
    .join('\n----\n\n');
}

let built: DeviceAppBundle | undefined;

/** The app, built once per process (the sources do not change under a running server or a synth). */
export function buildDeviceApp(): DeviceAppBundle {
  built ??= build();
  return built;
}

function build(): DeviceAppBundle {
  const result = buildSync({
    absWorkingDir: PROJECT,
    entryPoints: { main: join(SRC, 'main.ts'), sw: join(SRC, 'sw.ts'), app: join(SRC, 'app.css') },
    outdir: join(ROOT, 'out'), // nothing is written (write: false); names only
    entryNames: '[name]',
    bundle: true,
    minify: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022'],
    legalComments: 'none',
    metafile: true,
    write: false,
    logLevel: 'silent',
  });
  if (result.errors.length > 0)
    throw new Error(`device-app build failed: ${result.errors.map((e) => e.text).join('; ')}`);
  const output = (name: string) => {
    const found = result.outputFiles.find((f) => relative(join(ROOT, 'out'), f.path) === name);
    if (!found) throw new Error(`device-app build: no ${name}`);
    return found.contents;
  };

  const files: Record<string, DeviceAppFile> = {};
  /** Name in the sources → the name it is served under. */
  const names = new Map<string, string>();
  const addHashed = (name: string, content: Uint8Array) => {
    const served = hashedName(name, content);
    names.set(name, served);
    files[served] = file(content, served, true);
  };
  const fill = (template: string) =>
    template.replace(/\{\{([\w.-]+)\}\}/g, (_, name: string) => {
      const served = names.get(name);
      if (!served) throw new Error(`device-app: {{${name}}} names no built file`);
      return served;
    });

  const notices = new TextEncoder().encode(thirdPartyNotices(result.metafile));
  addHashed('third-party-licenses.txt', notices);
  const banner = new TextEncoder().encode(
    `/*! Sign-in approvals. Bundled packages and their licences: ${names.get('third-party-licenses.txt')} */\n`,
  );
  const withBanner = (code: Uint8Array) => Buffer.concat([banner, code]);
  addHashed('main.js', withBanner(output('main.js')));
  addHashed('app.css', output('app.css'));
  for (const icon of ['icon.svg', 'icon-192.png', 'icon-512.png', 'icon-maskable-512.png'])
    addHashed(icon, readFileSync(join(SRC, 'icons', icon)));
  addHashed(
    'manifest.webmanifest',
    new TextEncoder().encode(fill(readFileSync(join(SRC, 'manifest.webmanifest'), 'utf8'))),
  );
  files['sw.js'] = file(withBanner(output('sw.js')), 'sw.js', false);

  return { page: fill(readFileSync(join(SRC, 'index.html'), 'utf8')), files };
}

/**
 * For CDK: the built app as an ES module exporting DEVICE_APP_BUNDLE, for esbuild's `inject` (the device-app
 * function's bundle). Written under the OS temp directory, named by its content, so concurrent synths agree.
 */
export function deviceAppInjectFile(): string {
  const source = `export const DEVICE_APP_BUNDLE = ${JSON.stringify(buildDeviceApp())};\n`;
  const dir = join(tmpdir(), 'ciba-device-app');
  const path = join(dir, `bundle-${createHash('sha256').update(source).digest('hex').slice(0, 16)}.mjs`);
  mkdirSync(dir, { recursive: true });
  const partial = `${path}.${process.pid}.tmp`;
  writeFileSync(partial, source);
  renameSync(partial, path);
  // Earlier builds' files, once no synth can still be bundling with them.
  for (const name of readdirSync(dir)) {
    const other = join(dir, name);
    if (other === path || !/^bundle-[0-9a-f]{16}\.mjs$/.test(name)) continue;
    try {
      if (Date.now() - statSync(other).mtimeMs > 3_600_000) rmSync(other, { force: true });
    } catch {
      // removed meanwhile by another synth
    }
  }
  return path;
}
