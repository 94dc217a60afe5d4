import type http from 'node:http';
import { CloseCode, handleProtocols, makeServer, type ServerOptions } from 'graphql-ws';
import type { WebSocket, WebSocketServer } from 'ws';
import { describeError, type Logger } from '../observability/logger';

/*
 * graphql-ws's protocol server (`makeServer`) on a `ws` server: what `useServer` from
 * graphql-ws/use/ws does (the glue Apollo's documentation shows), written here because that one
 * reports every socket error and failed message with console.error, stack included, and, outside
 * production, puts the error's message in the close frame: a client sending malformed or
 * oversized frames would fill stderr with stacks and read internals back. Here such errors go
 * to the logger (class and message only) and the client reads a fixed reason.
 */

export interface SocketExtra {
  readonly socket: WebSocket;
  readonly request: http.IncomingMessage;
}

/** A ping every this often; a socket that has not answered the previous one by then is dropped. */
const KEEP_ALIVE_MS = 12_000;

export function serveGraphqlWs<P extends Record<string, unknown>>(options: ServerOptions<P, SocketExtra>, wsServer: WebSocketServer, logger: Logger): void {
  const server = makeServer<P, SocketExtra>(options);
  wsServer.options.handleProtocols = handleProtocols;
  wsServer.on('error', (error) => logger.error({ err: describeError(error) }, 'websocket server error'));
  wsServer.on('connection', (socket, request) => {
    // Protocol violations (a bad frame, a message over MAX_BODY_BYTES): ws closes the socket itself.
    socket.on('error', (error) => logger.info({ err: describeError(error) }, 'websocket closed on a client error'));
    let answered = true;
    const keepAlive = setInterval(() => {
      if (!answered) {
        socket.terminate();
        return;
      }
      answered = false;
      socket.ping();
    }, KEEP_ALIVE_MS);
    socket.on('pong', () => {
      answered = true;
    });
    const closed = server.opened(
      {
        protocol: socket.protocol,
        send: (data) =>
          new Promise<void>((resolve, reject) => {
            if (socket.readyState !== socket.OPEN) return resolve();
            socket.send(data, (error) => (error ? reject(error) : resolve()));
          }),
        close: (code, reason) => socket.close(code, reason),
        onMessage: (handle) =>
          socket.on('message', (data) => {
            void handle(String(data)).catch((error: unknown) => {
              logger.warn({ err: describeError(error) }, 'subscription message could not be handled; socket closed');
              socket.close(CloseCode.InternalServerError, 'Internal server error');
            });
          }),
      },
      { socket, request },
    );
    socket.once('close', (code, reason) => {
      clearInterval(keepAlive);
      void closed(code, String(reason)).catch((error: unknown) => logger.warn({ err: describeError(error) }, 'subscription cleanup failed'));
    });
  });
}
