// Structured JSON logs (one line per event). Callers pass only non-secret fields: request ids (the SHA-256 form),
// client ids, subs, error codes. Never an auth_req_id, token, secret, user code, task token or notification token.
import { AsyncLocalStorage } from 'node:async_hooks';
import { readSetting } from '../settings.ts';
import { mapStackLine } from './stack-map.ts';

/** Fields every line of one invocation carries (the Lambda request id and the function), set by lambdaHandler. */
const invocation = new AsyncLocalStorage<Record<string, unknown>>();

/** Runs `fn` with `fields` added to every log line it writes (see runtime/handler.ts). */
export function withLogContext<T>(fields: Record<string, unknown>, fn: () => T): T {
  return invocation.run(fields, fn);
}

/** The fields of the invocation running now (runtime/handler.ts: `function`, `awsRequestId`), if any. */
export function logContext(): Readonly<Record<string, unknown>> | undefined {
  return invocation.getStore();
}

type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
/** LOG_LEVEL (functions/settings.ts), read on every line so tests and the local stack may change it; never throws. */
function threshold(): number {
  try {
    return ORDER[readSetting('logLevel')];
  } catch {
    return ORDER.info;
  }
}

function write(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  if (ORDER[level] < threshold()) return;
  const line = JSON.stringify({ level, message, time: new Date().toISOString(), ...invocation.getStore(), ...fields });
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(line + '\n');
}

export const log = {
  debug: (m: string, f?: Record<string, unknown>) => write('debug', m, f),
  info: (m: string, f?: Record<string, unknown>) => write('info', m, f),
  warn: (m: string, f?: Record<string, unknown>) => write('warn', m, f),
  error: (m: string, f?: Record<string, unknown>) => write('error', m, f),
};

/** What may be logged about an error: its name and message for our own errors, only the name for others. */
export function errorFields(e: unknown): Record<string, unknown> {
  if (e instanceof Error)
    return {
      error: e.name,
      ...(e.name === 'OAuthError' ? { description: e.message } : {}),
      stack: e.stack?.split('\n').slice(1, 4).map(mapStackLine).join(' | '),
    };
  return { error: typeof e };
}
