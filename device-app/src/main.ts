// The reference authentication device: a web app at <issuer>/device/ that enrols this browser as one of the user's
// devices and approves or denies their sign-in requests through the device API (docs/device-app.md).
//   #enrol=<code>     enrol with a one-time code (the code is taken out of the address bar at once)
//   #request=<id>     one request (request id = base64url(SHA-256(auth_req_id)))
//   #devices          the user's devices; add another one (QR code), remove a lost one
//   anything else     the pending requests
import { DeviceApi } from './api.ts';
import { h, replace } from './dom.ts';
import { forgetDevice, loadDevice, saveDevice, type StoredDevice } from './keystore.ts';
import { PUSH_EVENT, registerServiceWorker, type PushState } from './push.ts';
import type { Context, View } from './views/context.ts';
import { devicesView } from './views/devices.ts';
import { alreadyEnrolledView, enrolView, rejectedView, welcomeView } from './views/enrol.ts';
import { requestsView } from './views/requests.ts';

type Route =
  | { view: 'requests' }
  | { view: 'request'; id: string }
  | { view: 'devices' }
  | { view: 'enrol'; code: string | undefined };

const issuer = document.querySelector<HTMLMetaElement>('meta[name="ciba-issuer"]')?.content ?? '';
// The page's <base> is …/device/ (it is also served at …/device, without the slash).
const base = new URL('./', document.baseURI);
const api = new DeviceApi(base, issuer);
const main = document.getElementById('main') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const announcer = document.getElementById('announcer') as HTMLElement;

let current: View | undefined;
let device: StoredDevice | undefined;
let rejected = false;
/** An enrolment code from the address bar: kept in memory only, until used. */
let enrolmentCode: string | undefined;

function parseRoute(hash: string): Route {
  const params = new URLSearchParams(hash.replace(/^#/, ''));
  const code = params.get('enrol');
  if (code !== null) return { view: 'enrol', code: code || undefined };
  const id = params.get('request');
  if (id) return { view: 'request', id };
  if (params.has('devices')) return { view: 'devices' };
  return { view: 'requests' };
}

function announce(text: string): void {
  // A change of text is what live regions announce: clear first, so the same message twice is said twice.
  announcer.textContent = '';
  setTimeout(() => (announcer.textContent = text), 50);
}

const context: Context = {
  api,
  base,
  announce,
  rejected() {
    if (rejected) return;
    rejected = true;
    void show();
  },
  async enrolled(enrolledDevice) {
    await saveDevice(enrolledDevice);
    device = enrolledDevice;
    api.device = enrolledDevice;
    enrolmentCode = undefined;
    rejected = false;
  },
  pushChanged(state) {
    window.dispatchEvent(new CustomEvent<PushState>(PUSH_EVENT, { detail: state }));
  },
  async forget() {
    await forgetDevice();
    device = undefined;
    api.device = undefined;
    rejected = false;
    location.hash = '';
    await show();
  },
};

function viewFor(route: Route): View {
  if (route.view === 'enrol' && route.code !== undefined) {
    // Out of the address bar and history: the code is used once and not kept (nor kept at all when enrolled).
    enrolmentCode = device ? undefined : route.code;
    history.replaceState(null, '', `${location.pathname}${location.search}#enrol`);
  }
  if (route.view === 'enrol' || !device) {
    if (device) return alreadyEnrolledView(device);
    return enrolmentCode !== undefined ? enrolView(context, enrolmentCode, issuer) : welcomeView();
  }
  if (rejected) return rejectedView(context);
  if (route.view === 'devices') return devicesView(context);
  return requestsView(context, route.view === 'request' ? route.id : undefined);
}

const TITLES: Record<Route['view'], string> = {
  requests: 'Sign-in requests',
  request: 'Sign-in request',
  devices: 'Your devices',
  enrol: 'Set up this device',
};

async function show(focus = true): Promise<void> {
  const route = parseRoute(location.hash);
  current?.close();
  const view = viewFor(route);
  current = view;
  replace(main, view.element);
  nav.hidden = !device || rejected;
  for (const link of nav.querySelectorAll('a')) {
    const active = (link.getAttribute('href') === '#devices') === (route.view === 'devices');
    if (active) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${device && !rejected ? TITLES[route.view] : TITLES.enrol} · Sign-in approvals`;
  if (focus) view.focus();
  await view.ready;
}

async function boot(): Promise<void> {
  if (!issuer || !('indexedDB' in window) || !crypto.subtle) {
    replace(
      main,
      h('h2', null, 'This browser cannot be used'),
      h(
        'p',
        null,
        'It needs a secure connection (https), WebCrypto and IndexedDB, which this browser does not offer here.',
      ),
    );
    return;
  }
  try {
    device = await loadDevice(issuer);
  } catch {
    device = undefined; // storage not available (some private windows): enrolment will say so when it fails
  }
  api.device = device;
  void registerServiceWorker(base);
  navigator.serviceWorker?.addEventListener('message', (event: MessageEvent<{ type?: string }>) => {
    if (event.data?.type === 'refresh') current?.refresh?.();
  });
  window.addEventListener('hashchange', () => void show());
  await show(false);
  // For `npm run bench` and the tests: the first view is on screen with its data.
  performance.mark('ciba-app-ready');
  document.documentElement.dataset.ready = 'true';
}

void boot();
