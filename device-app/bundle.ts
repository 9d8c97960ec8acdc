// The built device app as the device-app handler serves it (functions/handlers/device-app.ts): the page and every
// file under /device/app/, made by device-app/build.ts. Types only, so the handler's Lambda bundle imports nothing here.

/** The name of the function (functions/routes.ts) that serves the app; CDK injects the built app into its bundle. */
export const DEVICE_APP_FUNCTION = 'device-app';

/** The placeholder in `page` that the handler replaces with the issuer (HTML-escaped). */
export const ISSUER_PLACEHOLDER = '%%CIBA_ISSUER%%';

/** The placeholder in `page` for its base URL: the issuer's path followed by `/device/` (e.g. `/device/`). */
export const BASE_PLACEHOLDER = '%%CIBA_BASE%%';

export type DeviceAppFile = {
  contentType: string;
  /** The content, base64. */
  body: string;
  /** The content gzip-compressed, base64, when that is smaller. */
  gzip?: string;
  /** A strong entity tag of the content (quoted). */
  etag: string;
  /** A content-hashed name: cacheable for a year. Otherwise (the service worker) revalidated on every use. */
  immutable: boolean;
};

export type DeviceAppBundle = {
  /** index.html, with ISSUER_PLACEHOLDER and BASE_PLACEHOLDER to fill. */
  page: string;
  /** The files under /device/app/ by name (e.g. `main.3f9a1c0b2e.js`, `sw.js`). */
  files: Record<string, DeviceAppFile>;
};
