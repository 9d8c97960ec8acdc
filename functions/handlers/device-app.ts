// GET and HEAD /device/ and /device/app/{file}: the reference authentication device, a web app served from the
// device API's own origin (docs/device-app.md). API Gateway routes `/device/` to the `/device` route (a route key
// cannot end in `/`), so the page answers both; its <base href="…/device/"> makes its relative URLs resolve under
// /device/ either way (no redirect, which could loop if a trailing slash were normalised away before the handler).
// Caching: the page and sw.js are revalidated on every use (ETag, 304), content-hashed files are cached for a year,
// so a new version reaches phones on their next visit. gzip when the client accepts it. A strict Content-Security-
// Policy: scripts, styles, images and connections from this origin only; no inline script or style.
// The app itself (device-app/build.ts): on AWS injected into this function's bundle at synth (DEVICE_APP_BUNDLE);
// locally built with esbuild the first time it is asked for.
import { config } from '../config.ts';
import { httpHandler, json } from '../runtime/http.ts';
import { app, page, securityHeaders, serve } from '../runtime/device-app-assets.ts';

export const handler = httpHandler('device-app', async (event) => {
  const issuer = config().issuer;
  const headers = securityHeaders(issuer);
  const name = event.pathParameters?.file;
  const bundle = await app();
  if (name === undefined) return serve(event, page(bundle, issuer), headers);
  const file = Object.hasOwn(bundle.files, name) ? bundle.files[name] : undefined;
  if (!file) return json(404, { error: 'not_found' }, { 'X-Content-Type-Options': 'nosniff' });
  // The service worker controls all of /device/, not only /device/app/ where it is served from.
  const extra: Record<string, string> = name === 'sw.js' ? { 'Service-Worker-Allowed': '../' } : {};
  return serve(event, file, { ...headers, ...extra });
});
