import type http from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';

export interface HttpDrain {
  /** True from the moment drain() is called: readiness answers 503. */
  readonly draining: boolean;
  /**
   * Readiness turns red at once; `delayMs` later the server stops accepting connections; the
   * requests in flight may finish until `drainMs` after the call, then every connection left is
   * closed. Resolves with how many requests were cut at that deadline.
   */
  drain(times: { delayMs: number; drainMs: number }): Promise<{ cut: number }>;
}

/**
 * A connection accepted this recently that has not sent a request yet is a request on its way
 * (its bytes follow the handshake at once); one older than this is a pre-opened connection that
 * may never send one, which the drain does not wait for.
 */
const NEW_CONNECTION_GRACE_MS = 1_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Draining an HTTP server, by hand because neither Node nor Apollo drains the way shutdown
 * needs. Apollo's drain plugin (a port of `stoppable`) waits for every keep-alive client to
 * close its socket, up to its whole grace period, even with nothing in flight. Node 20's
 * `server.close()` destroys every connection without a request in progress, including one just
 * accepted whose request has not been read yet: its client sees a reset for a request it had
 * sent on an open connection. So here the listener is closed as a plain net.Server, keep-alive
 * connections that are between requests are destroyed, and the drain waits for the requests in
 * flight and for those of connections just accepted; responses sent meanwhile say
 * `Connection: close`, so no client sends another request on a connection about to close. What
 * is left at the end (or at the deadline) is closed.
 */
export function httpDrainOf(server: http.Server): HttpDrain {
  const inFlight = new Set<http.ServerResponse>();
  /** Connections with no request in flight: when they were accepted, and whether one came before. */
  const waiting = new Map<Socket, { acceptedAt: number; served: boolean }>();
  let draining = false;
  let onChange: (() => void) | undefined;

  const closeAfter = (res: http.ServerResponse) => {
    if (!res.headersSent) res.setHeader('connection', 'close');
  };
  server.on('connection', (socket: Socket) => {
    waiting.set(socket, { acceptedAt: performance.now(), served: false });
    socket.once('close', () => {
      waiting.delete(socket);
      onChange?.();
    });
  });
  /** Requests in flight per connection (more than one only for a client that pipelines). */
  const busy = new Map<Socket, number>();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const { socket } = req;
    waiting.delete(socket);
    busy.set(socket, (busy.get(socket) ?? 0) + 1);
    inFlight.add(res);
    if (draining) closeAfter(res);
    // 'close' comes once the response is sent, and also when the client goes away first.
    res.once('close', () => {
      inFlight.delete(res);
      const left = (busy.get(socket) ?? 1) - 1;
      if (left > 0) busy.set(socket, left);
      else busy.delete(socket);
      if (left === 0 && !socket.destroyed) {
        // Sent before draining began, without `Connection: close`: end it here instead.
        if (draining) socket.end();
        else waiting.set(socket, { acceptedAt: 0, served: true });
      }
      onChange?.();
    });
  });

  /** Whether a request may still be on its way: a connection accepted moments ago, silent so far. */
  const requestsOnTheirWay = () => {
    const now = performance.now();
    for (const { acceptedAt, served } of waiting.values()) if (!served && now - acceptedAt < NEW_CONNECTION_GRACE_MS) return true;
    return false;
  };

  return {
    get draining() {
      return draining;
    },
    async drain({ delayMs, drainMs }) {
      const startedAt = performance.now();
      draining = true;
      for (const res of inFlight) closeAfter(res);
      if (delayMs > 0) await sleep(delayMs);
      // One more turn of the event loop: connections the kernel has queued get accepted (and
      // served) instead of reset when the listener closes.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(server, () => resolve()));
      for (const [socket, { served }] of waiting) if (served) socket.destroy();
      const deadline = startedAt + drainMs;
      while (performance.now() < deadline && (inFlight.size > 0 || requestsOnTheirWay())) {
        await new Promise<void>((resolve) => {
          onChange = resolve;
          // Also wakes when the newest silent connection's grace runs out.
          setTimeout(resolve, Math.min(deadline - performance.now(), 50)).unref();
        });
        onChange = undefined;
      }
      const cut = inFlight.size;
      server.closeAllConnections();
      for (const socket of waiting.keys()) socket.destroy();
      await closed;
      return { cut };
    },
  };
}
