// A Web Push service on loopback for `npm run demo` and `npm run bench`: it plays both the push service (accepts
// `POST <endpoint>`, answers 201) and the subscribed browser (decrypts the RFC 8291 aes128gcm payload with the
// subscription's keys, RFC 8188 records), so the local stack's real Web Push sends can be watched arriving. It does
// not check VAPID (the e2e tests' push service, test/support/push-service.ts, does).
import { createDecipheriv, createECDH, hkdfSync, randomBytes, type ECDH } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { listen, readBody } from './http-server.ts';

export type WebPushSubscription = { endpoint: string; keys: { p256dh: string; auth: string } };

/** One push as it arrived: performance.now() when its body was in, and the decrypted JSON (or why not). */
export type ArrivedPush = { name: string; at: number; json?: Record<string, unknown>; error?: string };

type Keys = { ecdh: ECDH; auth: Buffer };

/** RFC 8291 §3.4 / RFC 8188 §2: decrypt an aes128gcm body for the subscription holding `keys`. */
export function decryptWebPush(body: Buffer, keys: Keys): Buffer {
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const senderKey = body.subarray(21, 21 + idlen);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), keys.ecdh.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync('sha256', keys.ecdh.computeSecret(senderKey), keys.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const records = body.subarray(21 + idlen);
  const out: Buffer[] = [];
  for (let seq = 0, offset = 0; offset < records.length; seq++, offset += rs) {
    const record = records.subarray(offset, Math.min(offset + rs, records.length));
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv('aes-128-gcm', cek, iv);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    let end = plain.length - 1;
    while (end > 0 && plain[end] === 0) end--;
    out.push(plain.subarray(0, end)); // drops the 0x01/0x02 delimiter and the padding
  }
  return Buffer.concat(out);
}

export class WebPushReceiver {
  readonly #server: Server;
  readonly #keys = new Map<string, Keys>();
  readonly #listeners = new Set<(push: ArrivedPush) => void>();
  #origin = '';

  private constructor() {
    this.#server = createServer((req, res) => {
      void readBody(req, 64 * 1024).then((body) => {
        const at = performance.now();
        const name = decodeURIComponent((req.url ?? '/').split('?')[0]!.replace(/^\/push\//, ''));
        const keys = this.#keys.get(name);
        res.writeHead(keys ? 201 : 404, { 'content-length': '0' }).end();
        if (!keys) return;
        const push: ArrivedPush = { name, at };
        try {
          push.json = JSON.parse(decryptWebPush(body ?? Buffer.alloc(0), keys).toString('utf8')) as Record<
            string,
            unknown
          >;
        } catch (e) {
          push.error = e instanceof Error ? e.message : String(e);
        }
        for (const listener of this.#listeners) listener(push);
      });
    });
  }

  /** Listens on 127.0.0.1 (`port` 0: any free port). */
  static async start(port = 0): Promise<WebPushReceiver> {
    const receiver = new WebPushReceiver();
    receiver.#origin = `http://127.0.0.1:${(await listen(receiver.#server, '127.0.0.1', port, false)).port}`;
    return receiver;
  }

  /** A new subscription named `name`, as a browser's PushManager.subscribe() would give it to the page. */
  subscribe(name: string): WebPushSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    this.#keys.set(name, { ecdh, auth });
    return {
      endpoint: `${this.#origin}/push/${encodeURIComponent(name)}`,
      keys: { p256dh: ecdh.getPublicKey().toString('base64url'), auth: auth.toString('base64url') },
    };
  }

  /** Calls `listener` for every push from now on; returns the function that stops it. */
  onPush(listener: (push: ArrivedPush) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
