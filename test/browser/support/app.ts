// Driving the device app (device-app/) in headless Chromium with playwright-core: phone-sized browser profiles,
// every console error and uncaught exception of every page kept, and what the app keeps in IndexedDB read back.
import type { Browser, BrowserContext, Page } from 'playwright-core';

/** A phone-sized profile of its own (IndexedDB, service worker, cache): one per simulated device. */
export function phoneProfile(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({
    viewport: { width: 390, height: 780 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: 'en-US',
    timezoneId: 'UTC',
  });
}

/** The console errors and uncaught exceptions of the pages opened with `open`. */
export class ConsoleWatch {
  readonly errors: string[] = [];
  #checked = 0;

  async open(context: BrowserContext, url?: string): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') this.errors.push(`${page.url()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => this.errors.push(`${page.url()}: uncaught ${error.name}: ${error.message}`));
    if (url) await page.goto(url);
    return page;
  }

  /**
   * The errors since the last call, except Chromium's own line for an HTTP error status the test provoked on purpose
   * (a decided request's 404, a removed device's 401): the app shows those, and logs nothing itself.
   */
  unexpected(allowedStatuses: readonly number[] = []): string[] {
    const recent = this.errors.slice(this.#checked);
    this.#checked = this.errors.length;
    return recent.filter((line) => {
      const m = /Failed to load resource: the server responded with a status of (\d{3})/.exec(line);
      return !(m && allowedStatuses.includes(Number(m[1])));
    });
  }
}

/** What the app stored in IndexedDB, and whether its private key can be exported (it must not). */
export type StoredKey = {
  deviceId: string;
  name: string;
  type: string;
  algorithm: string;
  curve: string;
  extractable: boolean;
  usages: string[];
  exportError: string | undefined;
  publicKeyHasD: boolean;
};

/**
 * Runs in the page (a string: the test project is type-checked for Node, without the DOM library): the app's IndexedDB
 * record, and every export format tried on its private key.
 */
const STORED_KEY = `(async () => {
  const db = await new Promise((resolve, reject) => {
    const open = indexedDB.open('ciba-device');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const record = await new Promise((resolve, reject) => {
    const get = db.transaction('enrolment').objectStore('enrolment').get('device');
    get.onsuccess = () => resolve(get.result);
    get.onerror = () => reject(get.error);
  });
  db.close();
  if (!record) return undefined;
  const key = record.privateKey;
  let exportError;
  for (const format of ['jwk', 'pkcs8']) {
    try {
      await crypto.subtle.exportKey(format, key);
      exportError = undefined;
      break;
    } catch (e) {
      exportError = e.name;
    }
  }
  return {
    deviceId: String(record.deviceId),
    name: String(record.name),
    type: key.type,
    algorithm: key.algorithm.name,
    curve: key.algorithm.namedCurve,
    extractable: key.extractable,
    usages: [...key.usages],
    exportError,
    publicKeyHasD: 'd' in record.publicJwk,
  };
})()`;

export function storedKey(page: Page): Promise<StoredKey | undefined> {
  return page.evaluate<StoredKey | undefined>(STORED_KEY);
}

/** Resolves after the page has polled (`GET …/device/requests` or `…/device/requests/{id}`) `count` more times. */
export async function polls(page: Page, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    await page.waitForResponse(
      (r) => r.request().method() === 'GET' && /\/device\/requests(\/[^/]+)?$/.test(new URL(r.url()).pathname),
    );
  }
}
