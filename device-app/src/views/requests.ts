// The pending requests (or the one of a `#request=<id>` link): polled every few seconds while the page is visible, at
// once when a push message says so; expired and decided ones disappear, and new ones are announced.
import { ApiError } from '../api.ts';
import { h, replace, uid } from '../dom.ts';
import { askPermission, PUSH_EVENT, pushState, pushSupport, turnOnPush, type PushState } from '../push.ts';
import type { Decision, DeviceRequest } from '../types.ts';
import { requestCard, type Card } from './card.ts';
import type { Context, View } from './context.ts';

const POLL_MS = 3000;
const MAX_BACKOFF_MS = 30_000;

const PUSH_TEXT: Record<PushState, string> = {
  on: 'Notifications are on: new requests are announced even when this app is closed.',
  off: 'Notifications are off: keep this app open to see new requests as they arrive.',
  blocked:
    'Notifications are blocked for this site in your browser settings. Keep this app open to see new requests as they arrive.',
  'needs-install':
    'On iPhone and iPad, notifications need this app on your Home Screen: tap Share, then “Add to Home Screen”, and open it from there.',
  unsupported: 'This browser cannot show notifications for this app. Keep it open to see new requests as they arrive.',
};

function notificationsPanel(ctx: Context): HTMLElement {
  const text = h('p', null);
  const button = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Turn on notifications');
  const show = (state: PushState) => {
    text.textContent = PUSH_TEXT[state];
    button.hidden = state !== 'off' || pushSupport() !== 'supported';
    button.disabled = false;
  };
  button.addEventListener('click', async () => {
    const permission = askPermission(); // during the click: browsers only ask then
    button.disabled = true;
    const state = await turnOnPush(ctx.api, permission);
    show(state);
    ctx.announce(state === 'on' ? 'Notifications are on.' : PUSH_TEXT[state]);
  });
  void pushState().then(show, () => show('unsupported'));
  const panel = h('div', { class: 'notifications' }, text, button);
  // Enrolment turns notifications on in the background: follow it while this panel is on screen.
  const follow = (event: Event) => {
    if (!panel.isConnected) return window.removeEventListener(PUSH_EVENT, follow);
    show((event as CustomEvent<PushState>).detail);
  };
  window.addEventListener(PUSH_EVENT, follow);
  return panel;
}

export function requestsView(ctx: Context, only?: string): View {
  const headingId = uid('requests');
  const heading = h('h2', { id: headingId, tabindex: '-1' }, only ? 'Sign-in request' : 'Sign-in requests');
  const list = h('ul', { class: 'requests', 'aria-labelledby': headingId });
  const empty = h(
    'p',
    { class: 'empty', hidden: true },
    'No sign-in requests are waiting. When a service asks you to sign in, the request shows up here.',
  );
  const outcome = h('div', { class: 'outcome', hidden: true });
  const status = h('p', { class: 'status', role: 'status' });
  const element = h(
    'section',
    { class: 'view', 'aria-labelledby': headingId },
    heading,
    only ? null : notificationsPanel(ctx),
    status,
    list,
    empty,
    outcome,
  );

  const cards = new Map<string, Card>();
  let loaded = false;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let backoff = POLL_MS;
  let running: Promise<void> | undefined;
  const now = () => ctx.api.clock.now() * 1000;
  const clientOf = (r: DeviceRequest) => r.client_name ?? r.client_id;

  const showOutcome = (text: string) => {
    replace(outcome, h('p', null, text), h('p', null, h('a', { href: '#requests' }, 'See all sign-in requests')));
    outcome.hidden = false;
  };

  const updateEmpty = () => {
    empty.hidden = !loaded || cards.size > 0 || only !== undefined;
  };

  /** Takes a card away; focus moves to the next card (or the heading) if it was inside the card. */
  const remove = (card: Card, announcement: string | undefined) => {
    const hadFocus = card.element.contains(document.activeElement);
    const next = card.element.nextElementSibling ?? card.element.previousElementSibling;
    card.element.remove();
    cards.delete(card.request.id);
    updateEmpty();
    if (announcement) ctx.announce(announcement);
    if (hadFocus) {
      const nextCard = [...cards.values()].find((c) => c.element === next);
      if (nextCard) nextCard.focus();
      else heading.focus();
    }
  };

  const decide = async (card: Card, decision: Decision) => {
    const client = clientOf(card.request);
    card.busy(true);
    card.error(undefined);
    try {
      await ctx.api.decide(card.request.id, decision);
      const done = decision.decision === 'approve' ? `Approved: ${client}.` : `Denied: ${client}.`;
      remove(card, done);
      if (only) showOutcome(decision.decision === 'approve' ? `${done} You can go back to ${client}.` : done);
      return;
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 409)) {
        const why =
          e.error === 'expired' ? 'has expired' : e.error === 'already_decided' ? 'was already answered' : 'is gone';
        remove(card, `The request from ${client} ${why}.`);
        if (only) showOutcome(`This request ${why}.`);
        return;
      }
      if (e instanceof ApiError && e.status === 401) return ctx.rejected();
      const narrowed =
        decision.decision === 'approve' && (decision.scope !== undefined || decision.authorization_details);
      card.error(
        e instanceof ApiError && e.status === 400 && narrowed
          ? 'The server did not accept a partial approval. Approve everything, or deny.'
          : e instanceof ApiError
            ? `Your answer was not recorded (${e.message}). Try again.`
            : 'Could not reach the server. Check your connection and try again.',
      );
      card.busy(false);
    }
  };

  const show = (requests: DeviceRequest[]) => {
    const seen = new Set(requests.map((r) => r.id));
    for (const card of [...cards.values()]) {
      if (seen.has(card.request.id) || card.element.hasAttribute('aria-busy')) continue;
      remove(card, `The request from ${clientOf(card.request)} is no longer waiting.`);
      if (only) showOutcome('This request is no longer waiting for you: it was answered, or it has expired.');
    }
    const arrived: DeviceRequest[] = [];
    for (const request of requests) {
      if (cards.has(request.id) || request.expires_at * 1000 <= now()) continue;
      const card = requestCard(request, now(), decide);
      cards.set(request.id, card);
      list.append(card.element);
      arrived.push(request);
    }
    if (loaded && arrived.length === 1) ctx.announce(`New sign-in request from ${clientOf(arrived[0]!)}.`);
    else if (loaded && arrived.length > 1) ctx.announce(`${arrived.length} new sign-in requests.`);
    if (only && !loaded && requests.length === 0) {
      showOutcome('This request is no longer waiting for you: it was answered, or it has expired.');
    }
    loaded = true;
    updateEmpty();
  };

  const fetchOnce = async () => {
    try {
      const requests = only ? [await ctx.api.request(only)].filter((r) => r !== undefined) : await ctx.api.requests();
      if (closed) return;
      status.textContent = '';
      backoff = POLL_MS;
      show(requests);
    } catch (e) {
      if (closed) return;
      if (e instanceof ApiError && e.status === 401) return ctx.rejected();
      backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      status.textContent =
        e instanceof ApiError
          ? `The server answered ${e.message}; trying again shortly.`
          : 'Cannot reach the server; trying again shortly.';
    }
  };

  /** One fetch at a time; the next one is scheduled after it, while the page is visible. */
  const refresh = (): Promise<void> => {
    if (closed) return Promise.resolve();
    clearTimeout(timer);
    running ??= fetchOnce().finally(() => {
      running = undefined;
      if (!closed && document.visibilityState === 'visible') timer = setTimeout(refresh, backoff);
    });
    return running;
  };
  const onVisible = () => {
    if (document.visibilityState === 'visible') void refresh();
  };
  document.addEventListener('visibilitychange', onVisible);

  const ticker = setInterval(() => {
    for (const card of [...cards.values()]) {
      if (!card.tick(now()) && !card.element.hasAttribute('aria-busy')) {
        remove(card, `The request from ${clientOf(card.request)} has expired.`);
        if (only) showOutcome('This request has expired.');
      }
    }
  }, 1000);

  return {
    element,
    ready: refresh(),
    focus: () => heading.focus(),
    refresh: () => void refresh(),
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(ticker);
      document.removeEventListener('visibilitychange', onVisible);
    },
  };
}
