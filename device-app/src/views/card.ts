// One pending request: who asks, the binding message to compare, what for (scopes in plain words, authorization
// details, the acr), the time left, and the Approve and Deny buttons. Optional scopes and (when there are several)
// authorization details have a checkbox: an approval sends the narrowed values only when the user unticked something.
import { describeDetail, describeScopes, formatCountdown, spokenDuration } from '../describe.ts';
import { h, uid } from '../dom.ts';
import type { AuthorizationDetail } from '../describe.ts';
import type { Decision, DeviceRequest } from '../types.ts';

export type Card = {
  request: DeviceRequest;
  element: HTMLLIElement;
  /** Updates the countdown; false once the request has expired. */
  tick(nowMs: number): boolean;
  busy(on: boolean): void;
  error(text: string | undefined): void;
  focus(): void;
};

export function requestCard(
  request: DeviceRequest,
  nowMs: number,
  onDecide: (card: Card, decision: Decision) => void,
): Card {
  const titleId = uid('request-title');
  const client = request.client_name ?? request.client_id;
  const title = h('h3', { id: titleId, tabindex: '-1' }, client);

  const scopes = describeScopes(request.scope);
  const optional = scopes.filter((s) => !s.required);
  const scopeBoxes = new Map<string, HTMLInputElement>();
  const scopeItems = scopes.map((s) => {
    const label = [s.words, h('span', { class: 'id' }, ` (${s.scope})`)];
    if (s.required || optional.length === 0) return h('li', null, ...label);
    const box = h('input', { type: 'checkbox', checked: true });
    scopeBoxes.set(s.scope, box);
    return h('li', null, h('label', { class: 'check' }, box, h('span', null, ...label)));
  });

  const details = request.authorization_details ?? [];
  const detailBoxes = new Map<AuthorizationDetail, HTMLInputElement>();
  const detailSections = details.map((detail) => {
    const described = describeDetail(detail, navigator.language);
    const headingId = uid('detail');
    const section = h(
      'section',
      { class: 'detail', 'aria-labelledby': headingId },
      h('h4', { id: headingId }, described.title),
      described.rows.length
        ? h('dl', null, ...described.rows.flatMap((row) => [h('dt', null, row.label), h('dd', null, row.value)]))
        : null,
    );
    if (details.length > 1) {
      const box = h('input', { type: 'checkbox', checked: true });
      detailBoxes.set(detail, box);
      section.append(
        h('label', { class: 'check' }, box, h('span', null, `Include this ${described.title.toLowerCase()}`)),
      );
    }
    return section;
  });

  const countdown = h('span', { class: 'left' }, formatCountdown(request.expires_at, nowMs));
  const expires = h(
    'p',
    {
      class: 'expires',
      role: 'timer',
      'aria-live': 'off',
      title: `Expires in ${spokenDuration(request.expires_at, nowMs)}`,
    },
    'Expires in ',
    countdown,
  );
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const approve = h('button', { type: 'button', class: 'approve' }, 'Approve');
  const deny = h('button', { type: 'button', class: 'deny' }, 'Deny');

  const element = h(
    'li',
    { class: 'card', 'data-request-id': request.id },
    h(
      'article',
      { 'aria-labelledby': titleId },
      h('p', { class: 'kicker' }, 'Sign-in request from'),
      title,
      request.binding_message
        ? h(
            'div',
            { class: 'binding' },
            h('p', { class: 'binding-label' }, 'Check that the other screen shows'),
            h('p', { class: 'binding-message' }, request.binding_message),
          )
        : h(
            'p',
            { class: 'binding binding-none' },
            'This request has no code to compare: approve only if you started it.',
          ),
      h(
        'section',
        { class: 'asks', 'aria-label': 'What it asks for' },
        h('h4', null, 'It asks for'),
        optional.length && scopeBoxes.size ? h('p', { class: 'hint' }, 'Untick what you do not want to share.') : null,
        h('ul', { class: 'scopes' }, ...scopeItems),
      ),
      ...detailSections,
      request.acr_values
        ? h(
            'p',
            { class: 'acr' },
            'Sign-in level asked for: ',
            h('code', null, request.acr_values.split(' ').join(', ')),
          )
        : null,
      expires,
      error,
      h('div', { class: 'actions' }, approve, deny),
    ),
  );

  // An approval with every authorization detail unticked would approve nothing: deny is the answer then.
  let busy = false;
  const none = h('p', { class: 'hint', hidden: true }, 'Tick at least one, or deny the request.');
  const update = () => {
    const nothing = detailBoxes.size > 0 && [...detailBoxes.values()].every((b) => !b.checked);
    none.hidden = !nothing;
    approve.disabled = busy || nothing;
    deny.disabled = busy;
  };
  for (const box of detailBoxes.values()) box.addEventListener('change', update);
  error.before(none);

  const card: Card = {
    request,
    element,
    tick(now) {
      countdown.textContent = formatCountdown(request.expires_at, now);
      expires.title = `Expires in ${spokenDuration(request.expires_at, now)}`;
      return request.expires_at * 1000 > now;
    },
    busy(on) {
      busy = on;
      update();
      element.toggleAttribute('aria-busy', on);
    },
    error(text) {
      error.hidden = text === undefined;
      error.textContent = text ?? '';
    },
    focus: () => title.focus(),
  };

  approve.addEventListener('click', () => {
    const decision: Decision = { decision: 'approve' };
    const keptScopes = scopes.filter((s) => scopeBoxes.get(s.scope)?.checked !== false).map((s) => s.scope);
    if (keptScopes.length < scopes.length) decision.scope = keptScopes.join(' ');
    const keptDetails = details.filter((d) => detailBoxes.get(d)?.checked !== false);
    if (keptDetails.length < details.length) decision.authorization_details = keptDetails;
    onDecide(card, decision);
  });
  deny.addEventListener('click', () => onDecide(card, { decision: 'deny' }));
  return card;
}
