// Small helpers for `npm run bench`: percentiles and plain-text tables.

export type Summary = { n: number; p50: number; p99: number; min: number; max: number; mean: number };

/** Nearest-rank percentile (p in 0..100) of an unsorted sample; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0)
    return { n: 0, p50: Number.NaN, p99: Number.NaN, min: Number.NaN, max: Number.NaN, mean: Number.NaN };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    min,
    max,
    mean: sum / values.length,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Fixed decimals, '–' for NaN/undefined. */
export function fmt(v: number | undefined, decimals = 1): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toFixed(decimals);
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** Round for the JSON blob (keeps it readable). */
export function round(v: number, decimals = 2): number {
  if (!Number.isFinite(v)) return v;
  const f = 10 ** decimals;
  return Math.round(v * f) / f;
}

/** A plain-text table; columns whose header starts with '>' are right-aligned (the '>' is not printed). */
export function table(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const right = headers.map((h) => h.startsWith('>'));
  const head = headers.map((h) => (h.startsWith('>') ? h.slice(1) : h));
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.map(line)].map((l) => `  ${l}`).join('\n');
}

export function section(title: string, how: string): string {
  return `\n== ${title} ==\n  how: ${how}\n`;
}
