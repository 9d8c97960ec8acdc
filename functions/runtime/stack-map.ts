// Logged stacks point at our TypeScript, not at the minified bundle, without Node's `--enable-source-maps`: that flag
// makes Node read and decode a function's whole source map at every cold start (15–25 ms of the cold load measured
// here, docs/operations.md "Cold starts"), to serve the few stacks that get logged. Here a stack frame is mapped when
// an error is logged (runtime/log.ts errorFields): the `.map` that esbuild wrote beside the bundle (infra/bundling.ts;
// names and lines, no sources) is read and decoded then, once per instance.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';

/** Decoded maps by bundle file; null where a file has no readable map (then its frames stay as they are). */
const maps = new Map<string, SourceMap | null>();

function mapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  return map;
}

/** `    at name (/var/task/index.js:1:2345)` or `    at /var/task/index.js:1:2345`. */
const FRAME = /^(\s*at (?:.*? \()?)(\/[^():]+\.c?js):(\d+):(\d+)(\)?)$/;

/** One line of `Error.stack`, its position in the bundle replaced by the source file, line and column it came from. */
export function mapStackLine(line: string): string {
  if (process.sourceMapsEnabled) return line; // Node maps them itself
  const m = FRAME.exec(line);
  if (!m) return line;
  const [, head, file, lineNo, column, tail] = m as unknown as [string, string, string, string, string, string];
  try {
    const entry = mapOf(file)?.findEntry(Number(lineNo) - 1, Number(column) - 1);
    if (!entry || !('originalSource' in entry) || !entry.originalSource) return line;
    // Sources are relative to the bundle's directory when it was built: keep the project-relative part.
    const source = entry.originalSource.replace(/^file:\/\//, '').replace(/^(?:\.\.?\/)+/, '');
    return `${head}${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}${tail}`;
  } catch {
    return line;
  }
}
