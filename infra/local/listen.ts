// One way for every local service to bind a loopback port and to close it again.
import type { Server } from 'node:http';
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
