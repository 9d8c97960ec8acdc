// Local SES (API v2): the `SendEmail` operation of the restJson1 protocol (`POST /v2/email/outbound-emails`), served
// by the local AWS endpoint (./aws-endpoint.ts) for the handlers' unchanged SESv2 client (AWS_ENDPOINT_URL_SESV2).
//
// Differences from SES: nothing is sent. A simple (plain-text) message is handed to `onSend` (the stack appends it to
// <data dir>/outbox.jsonl and prints it). Any sender is accepted (no identity verification, no sandbox, no sending
// quota); only `Content.Simple` messages (no templates or raw MIME), no configuration sets, no suppression list.
import { randomUUID } from 'node:crypto';
import { AwsError, asAwsError, type AwsReply } from './aws-endpoint.ts';

/** One e-mail as SES would send it. */
export type SentEmail = { from: string; to: string[]; subject: string; text: string; messageId: string; time: number };

export type LocalSesOptions = { onSend?: (email: SentEmail) => void; log?: (line: string) => void };

const SEND_EMAIL_PATH = '/v2/email/outbound-emails';
const ADDRESS = /^[^\s@<>"]{1,64}@[^\s@<>"]{1,255}$/;

export class LocalSes {
  readonly #sent: SentEmail[] = [];
  readonly #onSend: ((email: SentEmail) => void) | undefined;
  readonly #log: (line: string) => void;

  constructor(options: LocalSesOptions = {}) {
    this.#onSend = options.onSend;
    this.#log = options.log ?? ((line) => console.error(line));
  }

  /** Everything sent so far, oldest first. */
  sent(): SentEmail[] {
    return [...this.#sent];
  }

  /** SendEmail (the HTTP operation, also callable in-process). */
  sendEmail(input: unknown): { messageId: string } {
    const i = (input ?? {}) as {
      FromEmailAddress?: unknown;
      Destination?: { ToAddresses?: unknown };
      Content?: { Simple?: { Subject?: { Data?: unknown }; Body?: { Text?: { Data?: unknown } } } };
    };
    const from = i.FromEmailAddress;
    const to = i.Destination?.ToAddresses;
    if (typeof from !== 'string' || !ADDRESS.test(from))
      throw new AwsError('BadRequestException', 'FromEmailAddress is not a valid address');
    if (
      !Array.isArray(to) ||
      to.length === 0 ||
      to.length > 50 ||
      !to.every((a) => typeof a === 'string' && ADDRESS.test(a))
    )
      throw new AwsError('BadRequestException', 'Destination.ToAddresses must hold 1 to 50 valid addresses');
    const simple = i.Content?.Simple;
    const subject = simple?.Subject?.Data;
    const text = simple?.Body?.Text?.Data;
    if (typeof subject !== 'string' || typeof text !== 'string')
      throw new AwsError(
        'BadRequestException',
        'only Content.Simple with a Subject and a Text body is supported locally',
      );
    const email: SentEmail = { from, to: to as string[], subject, text, messageId: randomUUID(), time: Date.now() };
    this.#sent.push(email);
    this.#onSend?.(email);
    return { messageId: email.messageId };
  }

  /** Serves one restJson1 request. */
  handleHttp(method: string, path: string, body: string): AwsReply {
    const headers: Record<string, string> = { 'x-amzn-requestid': randomUUID() };
    try {
      if (method !== 'POST' || path.split('?')[0] !== SEND_EMAIL_PATH)
        throw new AwsError('NotFoundException', `${method} ${path} is not served by the local SES`, 404);
      let input: unknown;
      try {
        input = JSON.parse(body);
      } catch {
        throw new AwsError('BadRequestException', 'Request body is not valid JSON');
      }
      const { messageId } = this.sendEmail(input);
      return { status: 200, contentType: 'application/json', headers, body: JSON.stringify({ MessageId: messageId }) };
    } catch (err) {
      const e = asAwsError(err, this.#log, 'ses');
      return {
        status: e.status,
        contentType: 'application/json',
        headers: { ...headers, 'x-amzn-errortype': e.code },
        body: JSON.stringify({ message: e.message }),
      };
    }
  }
}
