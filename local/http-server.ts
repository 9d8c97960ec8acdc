// What every local HTTP service shares: binding a loopback port, closing it, reading a bounded request body.
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Listening = { url: string; port: number; close(): Promise<void> };

/** Listen on `host:port` (0 = any free port); `close` stops accepting and drops idle (or all) connections. */
export async function listen(server: Server, host: string, port = 0, dropAll = false): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${bound}`,
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err?: Error) => (err ? reject(err) : resolve()));
        if (dropAll) server.closeAllConnections();
        else server.closeIdleConnections();
      }),
  };
}

/** The request body, or undefined when it exceeds `maxBytes` (the caller answers 413). */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}
