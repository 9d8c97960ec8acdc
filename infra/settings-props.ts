// The construct's `settings` prop, derived from the one definition of server settings (functions/settings.ts):
// every operator setting by name, with CDK's own types (Durations for seconds, a count per window for limits).
// Values are validated at synth time with the same rules the functions apply when they start.
import { Duration } from 'aws-cdk-lib';
import { describeType, parseSetting, SETTINGS, type OperatorSettingName, type Setting } from '../functions/settings.ts';

/** `count` events per fixed `window` (whole seconds). */
export interface RateLimit {
  readonly count: number;
  readonly window: Duration;
}

type CdkValue<S> = S extends { type: 'seconds' }
  ? Duration
  : S extends { type: 'limit' }
    ? RateLimit
    : S extends { type: 'integer' }
      ? number
      : S extends { type: 'list' }
        ? string[]
        : S extends { type: 'enum'; values: readonly (infer V)[] }
          ? V
          : string;

/**
 * Server settings by name (docs/configuration.md lists each with its default, bounds and meaning). Unset settings
 * keep the functions' own defaults.
 */
export type CibaSettings = { readonly [K in OperatorSettingName]?: CdkValue<(typeof SETTINGS)[K]> };

/** Whole seconds of a Duration, or undefined when it is not whole. */
function wholeSeconds(value: Duration): number | undefined {
  const seconds = value.toSeconds({ integral: false });
  return Number.isInteger(seconds) ? seconds : undefined;
}

function rawValue(value: unknown): string | undefined {
  if (value instanceof Duration) return wholeSeconds(value)?.toString();
  if (Array.isArray(value)) return value.join(' ');
  if (typeof value === 'object' && value !== null && 'count' in value && 'window' in value) {
    const limit = value as RateLimit;
    const seconds = wholeSeconds(limit.window);
    return Number.isInteger(limit.count) && seconds !== undefined ? `${limit.count}/${seconds}` : undefined;
  }
  return String(value);
}

/** The functions' environment variables for the settings given, or a synth-time error naming the prop. */
export function settingsEnvironment(settings: CibaSettings = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(settings)) {
    if (value === undefined) continue;
    const setting: Setting | undefined = (SETTINGS as Record<string, Setting>)[name];
    if (setting?.scope !== 'operator') throw new Error(`CibaServer: settings.${name} is not a server setting`);
    const raw = rawValue(value);
    const shown =
      value instanceof Duration
        ? value.toHumanString()
        : typeof value === 'object' && 'window' in value
          ? `${value.count} per ${value.window.toHumanString()}`
          : JSON.stringify(value);
    try {
      if (raw === undefined) throw new Error('not whole');
      parseSetting(setting, raw);
    } catch {
      throw new Error(`CibaServer: settings.${name} must be ${describeType(setting)}, got ${shown}`);
    }
    env[setting.env] = raw;
  }
  return env;
}

/** A setting's effective value in seconds (the given Duration, else the default), for cross-checks at synth. */
export function secondsOf(settings: CibaSettings, name: 'deliveryTimeout' | 'deliveryWindow'): number {
  const value = settings[name];
  return value ? value.toSeconds() : SETTINGS[name].default;
}
