// The local stack's outbox: what AWS would have sent to a user outside the stack (SNS mobile push to a platform
// endpoint, SMS, SES e-mail) is appended to <data dir>/outbox.jsonl as JSON lines `{"channel", "to", "message", "at"}`
// and shown in the console, one line each (docs/notifications.md). Web Push and the operator hook really POST instead.
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type OutboxEntry = { channel: 'sns' | 'sms' | 'email'; to: string; message: string; at: string };

export const OUTBOX_FILE = 'outbox.jsonl';

const ICONS: Record<OutboxEntry['channel'], string> = { sns: '📲 mobile push', sms: '💬 SMS', email: '✉️  e-mail' };

/** One console line for an outbox entry (newlines folded; the message carries no secret). */
export function formatOutboxEntry(entry: OutboxEntry): string {
  return `${ICONS[entry.channel]} to ${entry.to}: ${entry.message.replace(/\s*\n+\s*/g, ' / ')}`;
}

export class Outbox {
  readonly file: string;
  readonly #print: ((line: string) => void) | undefined;

  /** `print` shows each entry (the stack's console unless quiet). */
  constructor(file: string, print?: (line: string) => void) {
    this.file = file;
    this.#print = print;
  }

  append(entry: Omit<OutboxEntry, 'at'>, time = Date.now()): OutboxEntry {
    const full: OutboxEntry = {
      channel: entry.channel,
      to: entry.to,
      message: entry.message,
      at: new Date(time).toISOString(),
    };
    mkdirSync(dirname(this.file), { recursive: true });
    appendFileSync(this.file, `${JSON.stringify(full)}\n`, { mode: 0o600 });
    this.#print?.(formatOutboxEntry(full));
    return full;
  }

  /** Every entry in the file, oldest first (entries of earlier runs on the same data dir included). */
  entries(): OutboxEntry[] {
    if (!existsSync(this.file)) return [];
    return readFileSync(this.file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as OutboxEntry);
  }
}
