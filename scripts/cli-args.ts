// Command-line parsing of the project's CLIs (`npm run admin`, `npm run demo`): node:util parseArgs, except that an
// argument starting with "-" that does not look like one of the CLI's options is an argument, wherever it stands.
// Request and device ids are base64url, so one in 64 starts with "-" (a user's sub may too), and a command line
// copied from the console (`npm run demo -- approve -Xq…`) must work as printed. Options are `--name`,
// `--name=value` and the CLI's own short flags (`-h`); everything after `--` is an argument too. A mistyped
// `--option` is still refused as unknown.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCliArgs<O extends Options>(argv: string[], options: O) {
  const shorts = new Set(Object.values(options).flatMap((o) => (o.short ? [`-${o.short}`] : [])));
  const looksLikeOption = (a: string) => a === '--' || shorts.has(a) || /^--[a-z][a-z-]*(=.*)?$/.test(a);
  const end = argv.indexOf('--');
  // Such arguments are swapped for placeholders parseArgs takes as plain arguments (a NUL cannot be in an argv).
  const held: string[] = [];
  const args = argv.map((a, i) =>
    a.startsWith('-') && a !== '-' && (end === -1 || i < end) && !looksLikeOption(a) ? `\0${held.push(a) - 1}` : a,
  );
  const restore = (a: string) => (a.startsWith('\0') ? held[Number(a.slice(1))]! : a);
  const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
  for (const [k, v] of Object.entries(values)) if (typeof v === 'string') Object.assign(values, { [k]: restore(v) });
  return { values, positionals: positionals.map(restore) };
}
