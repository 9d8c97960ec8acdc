// Enrolment from a `#enrol=<code>` link: a new non-extractable P-256 key, registered with the one-time code and a
// proof made with that key; persistent storage asked for, so the browser does not evict the key; notifications
// turned on where the browser can. Without a code (or when this browser is enrolled already) it says what to do.
import { ApiError } from '../api.ts';
import { deviceNameFrom } from '../describe.ts';
import { h, uid } from '../dom.ts';
import { newKeyPair, type StoredDevice } from '../keystore.ts';
import { askPermission, pushSupport, turnOnPush } from '../push.ts';
import type { Context, View } from './context.ts';

const NAME_MAX = 64;

function simple(title: string, ...paragraphs: (string | HTMLElement)[]): View {
  const headingId = uid('info');
  const heading = h('h2', { id: headingId, tabindex: '-1' }, title);
  return {
    element: h(
      'section',
      { class: 'view', 'aria-labelledby': headingId },
      heading,
      ...paragraphs.map((p) => h('p', null, p)),
    ),
    ready: Promise.resolve(),
    focus: () => heading.focus(),
    close() {},
  };
}

/** Not enrolled and no code: how to get one. */
export function welcomeView(): View {
  return simple(
    'Set up this device',
    'This app approves sign-in requests to your account, on this phone or computer.',
    'To set it up, open an enrolment link here: your sign-in provider gives you one, and any device of yours that is already set up makes one under Devices → Add another device.',
  );
}

/** Enrolled, and a code arrived: the code is left unused for the device it was meant for. */
export function alreadyEnrolledView(device: StoredDevice): View {
  return simple(
    'This device is already set up',
    `This browser already approves sign-ins as “${device.name}”, so the enrolment link was not used. To add another device, open the link on that device.`,
    h('a', { href: '#requests' }, 'Go to sign-in requests'),
  );
}

/** The server no longer accepts this device. */
export function rejectedView(ctx: Context): View {
  const forget = h(
    'button',
    { type: 'button', class: 'secondary', onclick: () => void ctx.forget() },
    'Forget this device here',
  );
  return simple(
    'This device is no longer set up',
    'The server does not accept this device any more: it was probably removed from your devices. To approve sign-ins here again, forget it and enrol with a new link.',
    forget,
  );
}

export function enrolView(ctx: Context, code: string, issuer: string): View {
  const headingId = uid('enrol');
  const heading = h('h2', { id: headingId, tabindex: '-1' }, 'Set up this device');
  const nameId = uid('name');
  const name = h('input', {
    id: nameId,
    name: 'name',
    type: 'text',
    required: true,
    maxlength: NAME_MAX,
    autocomplete: 'off',
    value: deviceNameFrom(navigator.userAgent),
    'aria-describedby': `${nameId}-hint`,
  });
  const pushable = pushSupport() === 'supported';
  const notify = h('input', { type: 'checkbox', name: 'notify', checked: pushable, disabled: !pushable });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Enrol this device');
  const status = h('p', { class: 'status', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { class: 'enrol', novalidate: true },
    h('label', { for: nameId }, 'Device name'),
    name,
    h('p', { id: `${nameId}-hint`, class: 'hint' }, 'So you can tell your devices apart, e.g. “Work phone”.'),
    h(
      'label',
      { class: 'check' },
      notify,
      h(
        'span',
        null,
        pushable
          ? 'Notify me of new sign-in requests'
          : 'Notifications are not available in this browser; the app shows new requests while it is open',
      ),
    ),
    error,
    submit,
    status,
  );
  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': headingId },
    heading,
    h(
      'p',
      null,
      'This browser will hold a key that approves sign-ins to your account. The key is made here and can never be copied out of this device.',
    ),
    form,
  );

  const fail = (text: string) => {
    error.textContent = text;
    error.hidden = false;
    status.textContent = '';
    submit.disabled = false;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const deviceName = name.value.normalize('NFC').trim();
    if (deviceName === '' || [...deviceName].length > NAME_MAX) {
      name.setAttribute('aria-invalid', 'true');
      name.focus();
      return fail(`Give this device a name of at most ${NAME_MAX} characters.`);
    }
    name.removeAttribute('aria-invalid');
    // Asked now, during the click: browsers only ask for permission then.
    const permission = notify.checked ? askPermission() : undefined;
    submit.disabled = true;
    error.hidden = true;
    status.textContent = 'Setting up…';
    // Asks the browser not to evict this site's storage (and with it the key); it may say no.
    void navigator.storage?.persist?.().catch(() => false);
    let device: StoredDevice;
    try {
      const key = await newKeyPair();
      const { device_id: deviceId } = await ctx.api.enrol(code, key, deviceName);
      device = { issuer, deviceId, name: deviceName, ...key, enrolledAt: Date.now() };
    } catch (e) {
      if (e instanceof ApiError && e.error === 'invalid_grant')
        return fail(
          'This enrolment link has already been used or has expired. Get a new one (on a device that is already set up: Devices → Add another device) and open it here.',
        );
      if (e instanceof ApiError && e.error === 'too_many_devices')
        return fail(
          'Your account already has as many devices as allowed. Remove one you no longer use, then use a new link.',
        );
      if (e instanceof ApiError) return fail(`Enrolment failed: ${e.message}.`);
      return fail('Could not reach the server. Check your connection and try again.');
    }
    try {
      await ctx.enrolled(device);
    } catch {
      return fail('This browser did not let the app store its key (a private window?). Try again in a normal window.');
    }
    ctx.announce(`This device is set up as “${deviceName}”.`);
    location.hash = '';
    // In the background: the permission prompt may still be open, and the requests are shown meanwhile.
    if (permission) void turnOnPush(ctx.api, permission).then(ctx.pushChanged);
  });

  return { element, ready: Promise.resolve(), focus: () => heading.focus(), close() {} };
}
