// What a request asks for, in plain words: scopes, authorization_details (RFC 9396; one describer per known type, a
// generic one otherwise), the time left, and a default device name. Pure functions (no DOM), so the service worker and
// the tests use them too.

export type AuthorizationDetail = { type: string; [field: string]: unknown };

/** One thing a request asks for, as the user reads it. */
export type ScopeWords = { scope: string; words: string; required: boolean };

const SCOPE_WORDS: Record<string, string> = {
  openid: 'Confirm that it is you',
  profile: 'Your name and basic profile',
  email: 'Your email address',
  phone: 'Your phone number',
  address: 'Your postal address',
  offline_access: 'Keep access while you are not using it',
};

/** The scopes of a request in plain words; `openid` is required (an approval keeps it), the others may be left out. */
export function describeScopes(scope: string): ScopeWords[] {
  return scope
    .split(' ')
    .filter((s) => s !== '')
    .map((s) => ({ scope: s, words: SCOPE_WORDS[s] ?? `Access to “${s}”`, required: s === 'openid' }));
}

/** A described authorization detail: a title and label/value rows, all plain text. */
export type DetailDescription = { title: string; rows: { label: string; value: string }[] };

const MAX_ROWS = 20;
const MAX_TEXT = 200;

const text = (v: unknown): string | undefined => {
  if (typeof v === 'string') return v.length > MAX_TEXT ? `${v.slice(0, MAX_TEXT - 1)}…` : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
};
const record = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const words = (id: string): string => {
  const spaced = id
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .toLowerCase();
  return spaced.charAt(0).toUpperCase() + spaced.slice(1);
};
const list = (v: unknown): string | undefined => {
  if (!Array.isArray(v)) return text(v);
  const items = v.map(text).filter((s): s is string => s !== undefined);
  return items.length ? items.join(', ') : undefined;
};
const host = (v: string): string => {
  try {
    return new URL(v).host || v;
  } catch {
    return v;
  }
};

/** An amount with its currency, e.g. `€12.50`; the number as given when it is not one. */
export function formatAmount(amount: unknown, currency: unknown, locale?: string): string | undefined {
  const value = typeof amount === 'number' ? amount : typeof amount === 'string' ? Number(amount) : Number.NaN;
  const code = typeof currency === 'string' && /^[A-Za-z]{3}$/.test(currency) ? currency.toUpperCase() : undefined;
  if (!Number.isFinite(value)) return text(amount) && `${text(amount)}${code ? ` ${code}` : ''}`;
  if (!code) return String(value);
  try {
    return new Intl.NumberFormat(locale, { style: 'currency', currency: code }).format(value);
  } catch {
    return `${value} ${code}`;
  }
}

/** An account identifier for reading: an IBAN in groups of four, otherwise the first identifier given. */
function account(v: unknown): string | undefined {
  const a = record(v);
  if (!a) return text(v);
  const iban = text(a.iban);
  if (iban)
    return iban
      .replace(/\s+/g, '')
      .replace(/(.{4})(?=.)/g, '$1 ')
      .toUpperCase();
  for (const key of ['bban', 'pan', 'maskedPan', 'msisdn', 'accountNumber', 'identification']) {
    const s = text(a[key]);
    if (s) return s;
  }
  return undefined;
}

type Rows = DetailDescription['rows'];
const push = (rows: Rows, label: string, value: string | undefined) => {
  if (value !== undefined && value !== '') rows.push({ label, value });
};

/** RFC 9396's common fields (§2.2), for any type. */
function commonRows(d: Record<string, unknown>, rows: Rows): void {
  push(
    rows,
    'Actions',
    list(Array.isArray(d.actions) ? d.actions.map((a) => (typeof a === 'string' ? words(a) : a)) : d.actions),
  );
  push(
    rows,
    'Data',
    list(Array.isArray(d.datatypes) ? d.datatypes.map((a) => (typeof a === 'string' ? words(a) : a)) : d.datatypes),
  );
  push(
    rows,
    'At',
    list(Array.isArray(d.locations) ? d.locations.map((l) => (typeof l === 'string' ? host(l) : l)) : d.locations),
  );
  push(rows, 'Resource', text(d.identifier));
  push(rows, 'Privileges', list(d.privileges));
}

function payment(d: Record<string, unknown>, locale?: string): DetailDescription {
  const rows: Rows = [];
  const amount = record(d.instructedAmount) ?? record(d.amount);
  push(
    rows,
    'Amount',
    amount ? formatAmount(amount.amount, amount.currency, locale) : formatAmount(d.amount, d.currency, locale),
  );
  push(rows, 'To', text(d.creditorName) ?? text(record(d.creditor)?.name));
  push(rows, 'To account', account(d.creditorAccount));
  push(rows, 'From account', account(d.debtorAccount));
  push(rows, 'Reference', text(d.remittanceInformationUnstructured) ?? text(d.reference));
  commonRows(d, rows);
  return { title: 'Payment', rows };
}

function accountInformation(d: Record<string, unknown>): DetailDescription {
  const rows: Rows = [];
  const access = record(d.access);
  if (access) {
    for (const [key, value] of Object.entries(access)) {
      const accounts = Array.isArray(value) ? value.map(account).filter((s): s is string => s !== undefined) : [];
      push(
        rows,
        words(key),
        accounts.length ? accounts.join(', ') : (text(value) ?? (Array.isArray(value) ? 'All accounts' : undefined)),
      );
    }
  }
  commonRows(d, rows);
  return { title: 'Access to your account information', rows };
}

/** Anything else: its fields as label/value rows (nested objects flattened, at most MAX_ROWS). */
function generic(d: Record<string, unknown>): DetailDescription {
  const rows: Rows = [];
  const walk = (value: unknown, label: string, depth: number) => {
    if (rows.length >= MAX_ROWS) return;
    const r = record(value);
    if (r && depth < 3) {
      for (const [k, v] of Object.entries(r)) walk(v, label ? `${label} › ${words(k)}` : words(k), depth + 1);
      return;
    }
    const shown = Array.isArray(value) && value.every((x) => record(x) === undefined) ? list(value) : text(value);
    push(
      rows,
      label,
      shown ?? (value === null || value === undefined ? undefined : JSON.stringify(value).slice(0, MAX_TEXT)),
    );
  };
  for (const [k, v] of Object.entries(d)) if (k !== 'type') walk(v, words(k), 1);
  // A URI type (`urn:example:tax_return`, `https://…/pay`) by its last part.
  const type = String(d.type);
  return { title: words(type.split(/[:/#]/).filter(Boolean).pop() ?? type), rows };
}

/** One authorization detail for the screen. Unknown types get the generic description. */
export function describeDetail(detail: AuthorizationDetail, locale?: string): DetailDescription {
  switch (detail.type) {
    case 'payment_initiation':
      return payment(detail, locale);
    case 'account_information':
      return accountInformation(detail);
    default:
      return generic(detail);
  }
}

/** The time left until `expiresAt`, e.g. `4:05`, `1:02:09`; `0:00` when past. */
export function formatCountdown(expiresAtS: number, nowMs: number): string {
  const left = Math.max(0, Math.ceil(expiresAtS - nowMs / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = String(left % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** The same for a screen reader, said once: `4 minutes 5 seconds`. */
export function spokenDuration(expiresAtS: number, nowMs: number): string {
  const left = Math.max(0, Math.ceil(expiresAtS - nowMs / 1000));
  const m = Math.floor(left / 60);
  const s = left % 60;
  const parts = [m ? `${m} minute${m === 1 ? '' : 's'}` : '', s || !m ? `${s} second${s === 1 ? '' : 's'}` : ''];
  return parts.filter(Boolean).join(' ');
}

/** A default name for this device from its user agent, e.g. `Chrome on Android`. */
export function deviceNameFrom(userAgent: string): string {
  const platform = /iPhone/.test(userAgent)
    ? 'iPhone'
    : /iPad/.test(userAgent)
      ? 'iPad'
      : /Android/.test(userAgent)
        ? 'Android'
        : /Windows/.test(userAgent)
          ? 'Windows'
          : /Mac OS X|Macintosh/.test(userAgent)
            ? 'Mac'
            : /CrOS/.test(userAgent)
              ? 'ChromeOS'
              : /Linux/.test(userAgent)
                ? 'Linux'
                : undefined;
  const browser = /Edg(e|A|iOS)?\//.test(userAgent)
    ? 'Edge'
    : /Firefox\/|FxiOS\//.test(userAgent)
      ? 'Firefox'
      : /SamsungBrowser\//.test(userAgent)
        ? 'Samsung Internet'
        : /Chrome\/|CriOS\//.test(userAgent)
          ? 'Chrome'
          : /Safari\//.test(userAgent)
            ? 'Safari'
            : undefined;
  if (browser && platform) return `${browser} on ${platform}`;
  return browser ?? platform ?? 'My device';
}
