// `npm run bench`, the device web app (device-app/, docs/device-app.md): what it weighs on the wire and how soon it is
// interactive in headless Chromium (playwright-core; Debian's chromium, or CHROMIUM_PATH), against its own server
// child (local/start.ts) with one seeded user whose device key makes the enrolment link.
//  - sizes: every file of the built app, raw and gzip (device-app/build.ts), as the handler serves them;
//  - first visit: a fresh browser profile (empty cache, no service worker) opening /device/: requests made and bytes
//    transferred (Resource Timing: transferSize, headers included, and encodedBodySize, the gzip bodies), and the time
//    from navigation start to the app's `ciba-app-ready` mark (its first screen drawn, listeners attached);
//  - return visit: the enrolled profile opening /device/ again with one pending request: the time to
//    `ciba-app-ready`, which here includes the signed GET /device/requests and the request's card.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildDeviceApp } from '../../device-app/build.ts';
import { chromiumPath } from '../../test/browser/support/chromium.ts';
import { BENCH_CLIENT_ID, BENCH_SERVER_ENV, benchSeed, deviceFor, postForm } from './flow.ts';
import { freePort, startServerChild, stopChild } from './child.ts';
import { bytes, fmt, section, summarize, table, type Summary } from './report.ts';

export type DeviceAppFileSize = { name: string; bytes: number; gzipBytes: number | undefined; cached: string };

export type DeviceAppResult =
  | { skipped: string }
  | {
      chromium: string;
      runs: number;
      files: DeviceAppFileSize[];
      firstVisit: { requests: number; transferBytes: number; encodedBodyBytes: number; decodedBodyBytes: number };
      /** Milliseconds from navigation start to `ciba-app-ready`. */
      firstVisitReadyMs: Summary;
      returnVisitReadyMs: Summary;
    };

type Timing = { ready: number; requests: number; transfer: number; encoded: number; decoded: number };

/** In the page (a string: this project is type-checked for Node, without the DOM library). */
const TIMING = `(() => {
  const ready = performance.getEntriesByName('ciba-app-ready')[0];
  const entries = [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')];
  const sum = (k) => entries.reduce((n, e) => n + (e[k] || 0), 0);
  return { ready: ready ? ready.startTime : -1, requests: entries.length, transfer: sum('transferSize'),
    encoded: sum('encodedBodySize'), decoded: sum('decodedBodySize') };
})()`;

async function readyTiming(page: Page, url: string, waitFor: string): Promise<Timing> {
  await page.goto(url);
  await page.waitForSelector('html[data-ready="true"]');
  await page.locator(waitFor).first().waitFor();
  // Resource Timing of the files the first screen needed (the manifest and icons may come a moment later).
  await page.waitForLoadState('load');
  const timing = await page.evaluate<Timing>(TIMING);
  if (timing.ready < 0) throw new Error('the app never marked ciba-app-ready');
  return timing;
}

export async function runDeviceAppBench(opts: {
  projectDir: string;
  tmp: string;
  runs: number;
  progress: (line: string) => void;
}): Promise<DeviceAppResult> {
  const executablePath = chromiumPath();
  if (!executablePath) return { skipped: 'no Chromium (CHROMIUM_PATH, /usr/bin/chromium or chromium on PATH)' };

  const built = buildDeviceApp();
  const files: DeviceAppFileSize[] = Object.entries(built.files).map(([name, f]) => ({
    name,
    bytes: Buffer.from(f.body, 'base64').length,
    gzipBytes: f.gzip === undefined ? undefined : Buffer.from(f.gzip, 'base64').length,
    cached: f.immutable ? '1 year' : 'revalidate',
  }));

  const { seed, users } = benchSeed(1);
  const seedFile = join(opts.tmp, 'device-app-seed.json');
  await writeFile(seedFile, JSON.stringify(seed));
  opts.progress('device app: starting a server child and headless Chromium');
  const server = await startServerChild({
    projectDir: opts.projectDir,
    port: await freePort(),
    dataDir: join(opts.tmp, 'device-app-data'),
    seedFile,
    env: BENCH_SERVER_ENV,
  });
  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath });
    const appUrl = `${server.url}/device/`;
    // Not measured: the local server builds the app on its first request for it (on AWS it is built at synth).
    const warmup = await browser.newContext();
    await readyTiming(await warmup.newPage(), appUrl, 'h2');
    await warmup.close();
    const firstVisits: Timing[] = [];
    for (let i = 0; i < opts.runs; i++) {
      const context = await browser.newContext();
      firstVisits.push(await readyTiming(await context.newPage(), appUrl, 'h2'));
      await context.close();
    }

    // One enrolled profile, one pending request, fresh pages.
    const device = deviceFor(server.url, users[0]!);
    const code = await device.enrolmentCode();
    if (code.status !== 201) throw new Error(`POST /device/enrolment-codes answered ${code.status}: ${code.text}`);
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(String(code.json.enrol_url));
    await page.getByRole('button', { name: 'Enrol this device' }).click();
    await page.getByRole('heading', { name: 'Sign-in requests' }).waitFor();
    await page.close();
    const started = await postForm(`${server.url}/bc-authorize`, {
      scope: 'openid',
      login_hint: users[0]!.sub,
      binding_message: 'BENCH-1',
    });
    if (started.status !== 200) throw new Error(`bc-authorize answered ${started.status} for the bench request`);
    opts.progress(`device app: ${opts.runs} first visits done; ${opts.runs} return visits with one pending request`);
    const returnVisits: Timing[] = [];
    for (let i = 0; i < opts.runs; i++) {
      const again = await context.newPage();
      returnVisits.push(await readyTiming(again, appUrl, 'li.card'));
      await again.close();
    }
    await context.close();

    const first = firstVisits[0]!;
    return {
      chromium: browser.version(),
      runs: opts.runs,
      files,
      firstVisit: {
        requests: first.requests,
        transferBytes: first.transfer,
        encodedBodyBytes: first.encoded,
        decodedBodyBytes: first.decoded,
      },
      firstVisitReadyMs: summarize(firstVisits.map((t) => t.ready)),
      returnVisitReadyMs: summarize(returnVisits.map((t) => t.ready)),
    };
  } finally {
    await browser?.close();
    await stopChild(server.child);
  }
}

export function formatDeviceApp(r: DeviceAppResult): string {
  const head = section(
    '9. Device web app: transfer size and time to interactive (headless Chromium)',
    `the app as device-app/build.ts builds it and the device-app handler serves it (gzip when accepted); a server child
       (local/start.ts); first visit = a fresh profile (empty cache) opening /device/, return visit = the enrolled
       profile opening it again with one pending request. Time to interactive = navigation start → the app's
       \`ciba-app-ready\` mark (first screen drawn with its data, handlers attached), on 127.0.0.1, no network delay.
       ${BENCH_CLIENT_ID} starts the pending request.`,
  );
  if ('skipped' in r) return `${head}  skipped: ${r.skipped}\n`;
  const total = r.files.reduce((n, f) => n + f.bytes, 0);
  const totalGzip = r.files.reduce((n, f) => n + (f.gzipBytes ?? f.bytes), 0);
  const lines = [
    head,
    table(
      ['file', '>bytes', '>gzip', 'cached'],
      [
        ...r.files.map((f) => [f.name, bytes(f.bytes), f.gzipBytes === undefined ? '–' : bytes(f.gzipBytes), f.cached]),
        ['all files', bytes(total), bytes(totalGzip), ''],
      ],
    ),
    '',
    `  first visit: ${r.firstVisit.requests} requests, ${bytes(r.firstVisit.transferBytes)} transferred (headers included), ` +
      `${bytes(r.firstVisit.encodedBodyBytes)} of bodies on the wire for ${bytes(r.firstVisit.decodedBodyBytes)} decoded`,
    '',
    table(
      ['time to interactive (ms)', '>n', '>p50', '>p99', '>min', '>max'],
      [
        ['first visit (not enrolled, empty cache)', r.firstVisitReadyMs],
        ['return visit (enrolled, 1 pending request)', r.returnVisitReadyMs],
      ].map(([label, s]) => {
        const m = s as Summary;
        return [label as string, m.n, fmt(m.p50), fmt(m.p99), fmt(m.min), fmt(m.max)];
      }),
    ),
    `  Chromium ${r.chromium}, ${r.runs} runs each`,
  ];
  return `${lines.join('\n')}\n`;
}
