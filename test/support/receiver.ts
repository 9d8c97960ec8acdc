// A client's notification endpoint for the e2e tests (CIBA §10.2, §10.3): a real HTTP server on loopback that
// records what arrives and answers as each test scripts it (default 204). It can go down and come back on its port.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { listen, readBody } from '../../local/http-server.ts';

export type Received = {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: Record<string, unknown>;
  at: number;
};
export type Reply = number | { status: number; body?: string; headers?: Record<string, string> };
/** Decides the answer to the n-th request (0-based) on a path. */
export type Responder = (n: number, received: Received) => Reply;

export class NotificationReceiver {
  readonly #received: Received[] = [];
  readonly #responders = new Map<string, Responder>();
  readonly #waiters = new Set<() => void>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #port = 0;

  static async start(): Promise<NotificationReceiver> {
    const r = new NotificationReceiver();
    await r.up();
    return r;
  }

  get port(): number {
    return this.#port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.#port}${path}`;
  }

  /** How `path` answers from now on. */
  respond(path: string, responder: Responder): void {
    this.#responders.set(path, responder);
  }

  received(path?: string): Received[] {
    return this.#received.filter((r) => path === undefined || r.path === path);
  }

  /** Resolves with the requests on `path` once there are at least `count`. */
  async waitFor(path: string, count = 1, timeoutMs = 30_000): Promise<Received[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received(path).length < count) {
      if (Date.now() > deadline)
        throw new Error(`${path}: ${this.received(path).length} of ${count} notifications after ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = () => {
          this.#waiters.delete(done);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, 200);
        this.#waiters.add(done);
      });
    }
    return this.received(path);
  }

  /** Listen (again, on the same port once it has one). */
  async up(): Promise<void> {
    const server = createServer((req, res) => {
      void (async () => {
        const raw = (await readBody(req, 1024 * 1024)) ?? Buffer.alloc(0);
        const path = (req.url ?? '/').split('?')[0]!;
        const body = raw.toString('utf8');
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(body) as Record<string, unknown>;
        } catch {
          /* not JSON: the test sees an empty object */
        }
        const received: Received = { path, method: req.method ?? '', headers: req.headers, body, json, at: Date.now() };
        const n = this.received(path).length;
        this.#received.push(received);
        for (const w of [...this.#waiters]) w();
        const reply = (this.#responders.get(path) ?? (() => 204))(n, received);
        const { status, body: out = '', headers = {} } = typeof reply === 'number' ? { status: reply } : reply;
        res.writeHead(status, { 'content-length': Buffer.byteLength(out), ...headers });
        res.end(out);
      })();
    });
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    const listening = await listen(server, '127.0.0.1', this.#port, false);
    this.#port = listening.port;
    this.#server = server;
  }

  /** Stop listening and drop open connections: the endpoint is down (connection refused) until up(). */
  async down(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
