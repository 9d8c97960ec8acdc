// A Web Push service on loopback for the e2e tests, and the browser side of its subscriptions. It checks what a real
// push service and a real browser would, written here from the RFCs with node:crypto so the tests do not trust the
// sending library:
// - RFC 8292 (VAPID): `Authorization: vapid t=<JWT>, k=<key>`; the JWT is ES256 over the key in `k`, its `aud` is this
//   service's origin, `exp` is in the future and at most 24 hours ahead, `sub` is a mailto: or https: contact;
// - RFC 8030: `TTL` present, `Urgency` valid;
// - RFC 8291 / RFC 8188: `Content-Encoding: aes128gcm`; the body decrypts with the subscription's private key and auth
//   secret (ECDH P-256, HKDF-SHA-256, AES-128-GCM), every record padded with the right delimiter.
// A request that fails a check is answered 400/401 and recorded with its `error`; otherwise 201 (or what the test
// scripted for that subscription, e.g. 404/410 for an expired one).
import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, verify, type ECDH } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { listen, readBody } from '../../local/http-server.ts';

export type PushReceived = {
  path: string;
  headers: IncomingHttpHeaders;
  /** What the service answered. */
  status: number;
  /** Why the request failed a check (then `status` is 4xx), if it did. */
  error?: string;
  /** The verified VAPID claims and key. */
  vapid?: { aud: string; exp: number; sub: string; key: string };
  /** The decrypted payload. */
  text?: string;
  json?: Record<string, unknown>;
  at: number;
};

/** The browser's side of one subscription: its keys (the private ones never leave the test). */
export type Subscriber = {
  path: string;
  subscription: { endpoint: string; keys: { p256dh: string; auth: string } };
  ecdh: ECDH;
  auth: Buffer;
};

const b64u = (b: Buffer) => b.toString('base64url');

export class PushService {
  readonly #server: Server;
  readonly #subscribers = new Map<string, Subscriber>();
  readonly #received: PushReceived[] = [];
  readonly #responders = new Map<string, (n: number) => number>();
  #port = 0;
  /** The VAPID public key the server publishes (GET /device/config); `k` must equal it once set. */
  expectedKey: string | undefined;

  private constructor() {
    this.#server = createServer((req, res) => {
      void (async () => {
        const path = (req.url ?? '/').split('?')[0]!;
        const body = (await readBody(req, 64 * 1024)) ?? Buffer.alloc(0);
        const record: PushReceived = { path, headers: req.headers, status: 201, at: Date.now() };
        try {
          if (req.method !== 'POST') throw new Check(405, `method ${req.method}`);
          record.vapid = this.#checkVapid(req.headers.authorization);
          this.#checkHeaders(req.headers);
          const subscriber = this.#subscribers.get(path);
          if (!subscriber) throw new Check(404, 'no such subscription');
          record.text = decrypt(body, subscriber).toString('utf8');
          record.json = JSON.parse(record.text) as Record<string, unknown>;
          const n = this.#received.filter((r) => r.path === path).length;
          record.status = this.#responders.get(path)?.(n) ?? 201;
        } catch (e) {
          record.status = e instanceof Check ? e.status : 400;
          record.error = e instanceof Error ? e.message : String(e);
        }
        this.#received.push(record);
        res.writeHead(
          record.status,
          record.status === 201 ? { location: `${path}/m/${randomBytes(6).toString('hex')}` } : {},
        );
        res.end();
      })();
    });
  }

  static async start(): Promise<PushService> {
    const service = new PushService();
    service.#port = (await listen(service.#server, '127.0.0.1', 0, false)).port;
    return service;
  }

  get origin(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** A new subscription, as PushManager.subscribe() would give the page: a fresh P-256 key pair and auth secret. */
  subscribe(name = randomBytes(6).toString('hex')): Subscriber {
    const path = `/push/${name}`;
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const auth = randomBytes(16);
    const subscriber: Subscriber = {
      path,
      ecdh,
      auth,
      subscription: { endpoint: this.origin + path, keys: { p256dh: b64u(ecdh.getPublicKey()), auth: b64u(auth) } },
    };
    this.#subscribers.set(path, subscriber);
    return subscriber;
  }

  /** How a subscription answers valid messages from now on (its n-th, 0-based): e.g. `() => 410` once it expired. */
  respond(subscriber: Subscriber, status: (n: number) => number): void {
    this.#responders.set(subscriber.path, status);
  }

  received(subscriber?: Subscriber): PushReceived[] {
    return this.#received.filter((r) => !subscriber || r.path === subscriber.path);
  }

  /** The messages a subscription got, once there are at least `count`. */
  async waitFor(subscriber: Subscriber, count = 1, timeoutMs = 15_000): Promise<PushReceived[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received(subscriber).length < count) {
      if (Date.now() > deadline)
        throw new Error(
          `${subscriber.path}: ${this.received(subscriber).length} of ${count} pushes after ${timeoutMs} ms`,
        );
      await new Promise((r) => setTimeout(r, 25));
    }
    return this.received(subscriber);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }

  /** RFC 8292 §3: `vapid t=<JWT>, k=<uncompressed P-256 point>`, the JWT signed with that key, for this origin. */
  #checkVapid(header: string | undefined): NonNullable<PushReceived['vapid']> {
    const m = /^vapid t=([\w-]+\.[\w-]+\.[\w-]+), k=([\w-]+)$/.exec(header ?? '');
    if (!m) throw new Check(401, `Authorization is not "vapid t=…, k=…": ${JSON.stringify(header)}`);
    const [token, key] = [m[1]!, m[2]!];
    const point = Buffer.from(key, 'base64url');
    if (point.length !== 65 || point[0] !== 4) throw new Check(401, 'k is not an uncompressed P-256 point');
    if (this.expectedKey !== undefined && key !== this.expectedKey)
      throw new Check(403, 'k is not the published VAPID key');
    const [h, p, s] = token.split('.') as [string, string, string];
    const header_ = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: string; typ?: string };
    if (header_.alg !== 'ES256') throw new Check(401, `JWT alg ${header_.alg}`);
    const publicKey = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: b64u(point.subarray(1, 33)), y: b64u(point.subarray(33)) },
      format: 'jwk',
    });
    const signature = Buffer.from(s, 'base64url');
    if (signature.length !== 64) throw new Check(401, 'the JWT signature is not 64 bytes (r‖s)');
    if (!verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature))
      throw new Check(401, 'the VAPID JWT signature does not verify with k');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as {
      aud?: unknown;
      exp?: unknown;
      sub?: unknown;
    };
    const now = Math.floor(Date.now() / 1000);
    if (claims.aud !== this.origin) throw new Check(403, `aud ${JSON.stringify(claims.aud)} is not ${this.origin}`);
    if (typeof claims.exp !== 'number' || claims.exp <= now || claims.exp > now + 86_400)
      throw new Check(403, `exp ${claims.exp} is not within the next 24 hours`);
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:)/.test(claims.sub))
      throw new Check(403, `sub ${JSON.stringify(claims.sub)} is not a mailto: or https: URL`);
    return { aud: claims.aud, exp: claims.exp, sub: claims.sub, key };
  }

  /** RFC 8030 §5.2, §5.3 and RFC 8188: the headers of a push message with an encrypted payload. */
  #checkHeaders(headers: IncomingHttpHeaders): void {
    if (!/^\d+$/.test(String(headers.ttl ?? ''))) throw new Check(400, `TTL ${JSON.stringify(headers.ttl)}`);
    if (headers.urgency !== undefined && !['very-low', 'low', 'normal', 'high'].includes(String(headers.urgency)))
      throw new Check(400, `Urgency ${JSON.stringify(headers.urgency)}`);
    if (headers['content-encoding'] !== 'aes128gcm')
      throw new Check(400, `Content-Encoding ${JSON.stringify(headers['content-encoding'])}`);
  }
}

class Check extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * RFC 8291 §3.4 and RFC 8188 §2: the user agent decrypts an aes128gcm body with its ECDH key and auth secret.
 * Header: salt (16) ‖ rs (uint32) ‖ idlen (1) ‖ keyid (the sender's ephemeral public key, 65). Then records of at most
 * rs octets, each AES-128-GCM with the nonce XORed with its sequence number, ending in 0x01 (more) / 0x02 (last) and
 * zero padding.
 */
export function decrypt(body: Buffer, subscriber: Pick<Subscriber, 'ecdh' | 'auth'>): Buffer {
  if (body.length < 21) throw new Error('body shorter than the aes128gcm header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  const senderKey = body.subarray(21, 21 + idlen);
  if (idlen !== 65 || senderKey[0] !== 4) throw new Error("keyid is not the sender's uncompressed P-256 key");
  if (rs < 18) throw new Error(`record size ${rs} is too small`);
  const ecdhSecret = subscriber.ecdh.computeSecret(senderKey);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), subscriber.ecdh.getPublicKey(), senderKey]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, subscriber.auth, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const baseNonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const records = body.subarray(21 + idlen);
  const out: Buffer[] = [];
  for (let seq = 0, offset = 0; offset < records.length; seq++, offset += rs) {
    const record = records.subarray(offset, Math.min(offset + rs, records.length));
    if (record.length < 17) throw new Error('a record shorter than its tag');
    const nonce = Buffer.from(baseNonce);
    // The sequence number XORed into the nonce's low bytes (fewer than 2^32 records here).
    nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv('aes-128-gcm', cek, nonce);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    const last = offset + rs >= records.length;
    if (end < 0 || plain[end] !== (last ? 2 : 1)) throw new Error(`record ${seq} has the wrong padding delimiter`);
    out.push(plain.subarray(0, end));
  }
  return Buffer.concat(out);
}
