// Where Chromium is: CHROMIUM_PATH, else Debian's /usr/bin/chromium, else the first chromium on PATH. `.ci/run`
// installs Debian's package when none is found; without one the browser tests skip and say why.
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

export function chromiumPath(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return executable(fromEnv) ? fromEnv : undefined;
  if (executable('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (found && executable(found)) return found;
    } catch {
      // not on PATH
    }
  }
  return undefined;
}

export const NO_CHROMIUM =
  "no Chromium found (CHROMIUM_PATH, /usr/bin/chromium or chromium on PATH); `.ci/run` installs Debian's chromium package";
