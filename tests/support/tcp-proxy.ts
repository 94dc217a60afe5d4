import net from 'node:net';

/*
 * A TCP proxy in front of a real service (Redis), controlled by the test, to make that service
 * go away without touching it (other test files share it):
 *   stop()   closes the listener and destroys every open socket: connections drop, new ones are
 *            refused (ECONNREFUSED), like a Redis that died
 *   start()  listens again on the same port
 *   hang()   keeps every connection open but forwards nothing (bytes wait in the proxy), and
 *            accepts new connections without answering, like a Redis that stopped responding
 *   resume() forwards again, including what waited, in order
 */

export interface TcpProxy {
  readonly port: number;
  /** `redis://127.0.0.1:<port>` style URL for the given scheme. */
  url(scheme: string): string;
  start(): Promise<void>;
  stop(): Promise<void>;
  hang(): void;
  resume(): void;
  /** Connections the proxy accepted since it was created. */
  readonly acceptedConnections: number;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  upstream: net.Socket | null;
  /** Bytes from the client not yet sent upstream (while hanging, or before upstream connected). */
  pending: Buffer[];
  /** Replies held back while hanging. */
  held: Buffer[];
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let server: net.Server | null = null;
  let port = 0;
  let hanging = false;
  let accepted = 0;

  const destroy = (pair: Pair) => {
    pairs.delete(pair);
    pair.client.destroy();
    pair.upstream?.destroy();
  };

  const flush = (pair: Pair) => {
    if (hanging) return;
    for (const chunk of pair.held.splice(0)) pair.client.write(chunk);
    if (!pair.upstream || pair.upstream.connecting) return;
    for (const chunk of pair.pending.splice(0)) pair.upstream.write(chunk);
  };

  const connectUpstream = (pair: Pair) => {
    const upstream = net.connect(target.port, target.host);
    pair.upstream = upstream;
    upstream.on('connect', () => flush(pair));
    upstream.on('data', (chunk) => {
      // A hung server answers nothing: replies wait until resume().
      if (hanging) pair.held.push(chunk);
      else pair.client.write(chunk);
    });
    upstream.on('error', () => destroy(pair));
    upstream.on('close', () => destroy(pair));
  };

  const onConnection = (client: net.Socket) => {
    accepted += 1;
    const pair: Pair = { client, upstream: null, pending: [], held: [] };
    pairs.add(pair);
    client.on('data', (chunk) => {
      pair.pending.push(chunk);
      flush(pair);
    });
    client.on('error', () => destroy(pair));
    client.on('close', () => destroy(pair));
    if (!hanging) connectUpstream(pair);
  };

  const listen = (wanted: number) =>
    new Promise<void>((resolve, reject) => {
      const next = net.createServer(onConnection);
      next.once('error', reject);
      next.listen(wanted, '127.0.0.1', () => {
        next.off('error', reject);
        server = next;
        port = (next.address() as net.AddressInfo).port;
        resolve();
      });
    });

  await listen(0);

  const proxy: TcpProxy = {
    get port() {
      return port;
    },
    get acceptedConnections() {
      return accepted;
    },
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    async start() {
      if (server) return;
      await listen(port);
    },
    async stop() {
      const current = server;
      server = null;
      for (const pair of [...pairs]) destroy(pair);
      if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
    },
    hang() {
      hanging = true;
    },
    resume() {
      hanging = false;
      for (const pair of pairs) {
        if (!pair.upstream) connectUpstream(pair);
        flush(pair);
      }
    },
    async close() {
      hanging = false;
      await proxy.stop();
    },
  };
  return proxy;
}
