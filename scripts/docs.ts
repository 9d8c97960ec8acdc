// `npm run docs`: regenerates the configuration reference in docs/configuration.md from the one definition of
// server settings (functions/settings.ts), between its BEGIN/END GENERATED markers. `--check` only reports whether
// the file is current (exit 1 when not); test/unit/docs.test.ts runs the same check.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describeType, SETTINGS, type Setting } from '../functions/settings.ts';

export const CONFIG_DOC = path.join(import.meta.dirname, '..', 'docs', 'configuration.md');
const BEGIN = '<!-- BEGIN GENERATED: configuration (npm run docs) -->';
const END = '<!-- END GENERATED: configuration -->';

const SCOPES: Record<Setting['scope'], string> = {
  operator:
    'Server settings: set as construct props (`settings: { <name>: … }`) or, on the local stack, as environment variables.',
  stack: 'Set by the stack from the resources it creates (and by the local stack for itself); listed for reference.',
  local: 'Local stack only.',
};

function defaultOf(setting: Setting): string {
  if (setting.default === undefined) return 'unset';
  return `\`${String(setting.default)}\``;
}

/** The generated Markdown: one table per scope, one row per setting, in definition order. */
export function configurationTable(): string {
  const out: string[] = [];
  for (const scope of Object.keys(SCOPES) as Setting['scope'][]) {
    out.push('', SCOPES[scope], '');
    out.push(
      scope === 'operator' ? '| prop | variable | default | accepts | meaning |' : '| variable | default | meaning |',
    );
    out.push(scope === 'operator' ? '|---|---|---|---|---|' : '|---|---|---|');
    for (const [name, s] of Object.entries(SETTINGS) as [string, Setting][]) {
      if (s.scope !== scope) continue;
      const cells =
        scope === 'operator'
          ? [`\`${name}\``, `\`${s.env}\``, defaultOf(s), describeType(s), s.description]
          : [`\`${s.env}\``, defaultOf(s), s.description];
      out.push(`| ${cells.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`);
    }
  }
  return `${out.join('\n')}\n`;
}

/** The document with its generated part replaced. */
export function regenerate(doc: string): string {
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  if (start < 0 || end < start) throw new Error(`${CONFIG_DOC}: the ${BEGIN} … ${END} markers are missing`);
  return `${doc.slice(0, start + BEGIN.length)}\n${configurationTable()}${doc.slice(end)}`;
}

if (import.meta.main) {
  const doc = readFileSync(CONFIG_DOC, 'utf8');
  const next = regenerate(doc);
  if (process.argv.includes('--check')) {
    if (next !== doc) {
      console.error('docs/configuration.md is out of date: run `npm run docs`');
      process.exit(1);
    }
    console.log('docs/configuration.md is current');
  } else {
    writeFileSync(CONFIG_DOC, next);
    console.log(next === doc ? 'docs/configuration.md was already current' : 'docs/configuration.md regenerated');
  }
}
