// The user's devices: which they are, this one marked; removing a lost one (with a confirmation step); and "Add another
// device": a fresh one-time enrolment link, as a QR code to scan with the new device and as a link.
import { ApiError } from '../api.ts';
import { h, replace, uid } from '../dom.ts';
import { qrCode } from '../qr.ts';
import type { EnrolledDevice } from '../types.ts';
import type { Context, View } from './context.ts';

const REFRESH_MS = 5000;

const dateOf = (seconds: number | undefined) =>
  seconds === undefined
    ? undefined
    : new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(new Date(seconds * 1000));

export function devicesView(ctx: Context): View {
  const headingId = uid('devices');
  const heading = h('h2', { id: headingId, tabindex: '-1' }, 'Your devices');
  const list = h('ul', { class: 'devices', 'aria-labelledby': headingId });
  const status = h('p', { class: 'status', role: 'status' });
  const add = h('button', { type: 'button', class: 'primary' }, 'Add another device');
  const panel = h('section', { class: 'add-device', hidden: true, 'aria-labelledby': uid('add') });
  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': headingId },
    heading,
    h(
      'p',
      { class: 'hint' },
      'Each of these can approve sign-ins to your account. Remove any you have lost or no longer use.',
    ),
    list,
    status,
    add,
    panel,
  );
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** The device whose removal is being confirmed. */
  let confirming: string | undefined;
  let devices: EnrolledDevice[] = [];

  const failed = (e: unknown, what: string) => {
    if (e instanceof ApiError && e.status === 401) return ctx.rejected();
    status.textContent =
      e instanceof ApiError ? `${what} failed (${e.message}).` : `${what} failed: cannot reach the server.`;
  };

  const render = () => {
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focusKey : undefined;
    replace(list, ...devices.map(item));
    if (focused) list.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
  };

  const item = (device: EnrolledDevice): HTMLLIElement => {
    const name = device.name ?? device.device_id;
    const meta = [dateOf(device.created_at) && `Added ${dateOf(device.created_at)}`, device.current && 'This device']
      .filter(Boolean)
      .join(' · ');
    const actions =
      confirming === device.device_id
        ? [
            h(
              'p',
              { class: 'confirm' },
              device.current
                ? 'Remove this device? This browser will no longer approve sign-ins.'
                : `Remove “${name}”? It will no longer approve sign-ins.`,
            ),
            h(
              'button',
              {
                type: 'button',
                class: 'danger',
                'data-focus-key': `confirm-${device.device_id}`,
                onclick: () => remove(device),
              },
              'Remove device',
            ),
            h(
              'button',
              { type: 'button', class: 'secondary', onclick: () => setConfirming(undefined, device) },
              'Cancel',
            ),
          ]
        : [
            h(
              'button',
              {
                type: 'button',
                class: 'secondary',
                'aria-label': `Remove ${name}`,
                'data-focus-key': `remove-${device.device_id}`,
                onclick: () => setConfirming(device.device_id, device),
              },
              'Remove',
            ),
          ];
    return h(
      'li',
      { class: device.current ? 'device current' : 'device' },
      h('div', null, h('p', { class: 'name' }, name), meta ? h('p', { class: 'meta' }, meta) : null),
      h('div', { class: 'device-actions' }, ...actions),
    );
  };

  const setConfirming = (id: string | undefined, device: EnrolledDevice) => {
    confirming = id;
    render();
    const key = id ? `confirm-${device.device_id}` : `remove-${device.device_id}`;
    list.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
  };

  const remove = async (device: EnrolledDevice) => {
    try {
      await ctx.api.removeDevice(device.device_id);
      confirming = undefined;
      ctx.announce(`Removed ${device.name ?? device.device_id}.`);
      if (device.current) return void (await ctx.forget());
      devices = devices.filter((d) => d.device_id !== device.device_id);
      render();
      heading.focus();
    } catch (e) {
      failed(e, 'Removing the device');
    }
  };

  const load = async () => {
    try {
      const fresh = await ctx.api.devices();
      if (closed) return;
      status.textContent = '';
      const changed = JSON.stringify(fresh) !== JSON.stringify(devices);
      devices = fresh;
      if (changed) render();
    } catch (e) {
      if (!closed) failed(e, 'Loading your devices');
    }
  };
  const poll = async () => {
    await load();
    if (!closed) timer = setTimeout(poll, REFRESH_MS);
  };

  add.addEventListener('click', async () => {
    add.disabled = true;
    try {
      const { enrol_url: url, expires_at: expiresAt } = await ctx.api.enrolmentCode();
      const titleId = panel.getAttribute('aria-labelledby') ?? uid('add');
      const until = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' }).format(new Date(expiresAt * 1000));
      replace(
        panel,
        h('h3', { id: titleId, tabindex: '-1' }, 'Add another device'),
        h('p', null, 'On the new phone or computer, scan this code with the camera, or open the link there.'),
        qrCode(url, 'QR code of the enrolment link'),
        h('p', { class: 'link' }, h('a', { href: url, class: 'enrol-link' }, url)),
        h(
          'p',
          { class: 'hint' },
          `The link works once, until ${until}. Whoever opens it first can approve sign-ins for you: open it only on your own device.`,
        ),
        h('button', { type: 'button', class: 'secondary', onclick: () => copy(url) }, 'Copy link'),
        h('button', { type: 'button', class: 'secondary', onclick: () => closePanel() }, 'Done'),
      );
      panel.hidden = false;
      panel.querySelector<HTMLElement>('h3')?.focus();
    } catch (e) {
      failed(e, 'Making an enrolment link');
    } finally {
      add.disabled = false;
    }
  });

  const copy = async (url: string) => {
    try {
      await navigator.clipboard.writeText(url);
      ctx.announce('Link copied.');
    } catch {
      ctx.announce('Could not copy: select the link and copy it yourself.');
    }
  };
  const closePanel = () => {
    panel.hidden = true;
    replace(panel);
    add.focus();
    void load();
  };

  return {
    element,
    ready: poll(),
    focus: () => heading.focus(),
    refresh: () => void load(),
    close() {
      closed = true;
      clearTimeout(timer);
    },
  };
}
