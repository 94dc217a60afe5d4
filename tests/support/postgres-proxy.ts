import net from 'node:net';

/*
 * A TCP proxy in front of the test PostgreSQL that reads the wire protocol (v3) as it passes, to
 * crash a server at a chosen statement boundary without touching PostgreSQL itself:
 *
 *   a round trip  everything a client sent (a simple Query, or Parse/Bind/Execute up to Sync)
 *                 until the server's ReadyForQuery. When the server sends ReadyForQuery the
 *                 statement has run, and committed unless a transaction block is open.
 *   crash         the proxy withholds that ReadyForQuery, destroys every connection and refuses
 *                 new ones until recover(): the client never learns the statement ran, and
 *                 PostgreSQL sees every session end (open transactions roll back, session
 *                 advisory locks go), as when the process holding them dies.
 *
 * No library parses the protocol in this direction (pg's parser reads server messages only,
 * and a proxy must not re-encode what it forwards), so the framing is read here: a type byte and
 * an int32 length per message, after an untyped startup packet.
 */

export interface RoundTrip {
  /** Which proxied connection, numbered from 1 in the order they were accepted. */
  connection: number;
  /** The login role and application_name of that connection's startup packet. */
  user: string;
  application: string;
  /** SQL texts sent in this round trip: a Query's text, each Parse's text ('' for a prepared one re-run). */
  statements: string[];
}

export interface PostgresProxy {
  readonly port: number;
  /** The database URL with host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string;
  /** Calls `listener` with every round trip completed from now on; returns the unsubscribe. */
  observe(listener: (trip: RoundTrip) => void): () => void;
  /**
   * Crashes at the first completed round trip `select` picks: resolves with it once every
   * connection is gone. `select` sees round trips in the order the server completed them.
   */
  crashAt(select: (trip: RoundTrip) => boolean): Promise<RoundTrip>;
  /** Stops a pending crashAt from firing. */
  disarm(): void;
  /**
   * Crashes now, between round trips: every connection destroyed, new ones refused until
   * recover(). With two proxies, one's crashAt calling the other's crashNow kills a process's
   * connections to both servers at the same boundary.
   */
  crashNow(): void;
  /** Accepts connections again after a crash. */
  recover(): void;
  readonly crashed: boolean;
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;

interface Connection {
  id: number;
  client: net.Socket;
  upstream: net.Socket;
  user: string;
  application: string;
  /** Client bytes not yet framed into messages. */
  fromClient: Buffer;
  /** Server bytes not yet framed (held until a message is whole, so a ReadyForQuery can be withheld). */
  fromServer: Buffer;
  /** The client is past its startup packet (and an SSL/GSS request, if any). */
  started: boolean;
  /** The client sent SSLRequest/GSSENCRequest: the server answers with one untyped byte. */
  awaitingOneByteAnswer: boolean;
  /** The first ReadyForQuery (end of authentication) has passed. */
  ready: boolean;
  statements: string[];
}

/** A NUL-terminated string at `offset`; returns it and the offset after it. */
function cstring(buffer: Buffer, offset: number): [string, number] {
  const end = buffer.indexOf(0, offset);
  if (end < 0) return [buffer.toString('utf8', offset), buffer.length];
  return [buffer.toString('utf8', offset, end), end + 1];
}

export async function startPostgresProxy(target: { host: string; port: number }): Promise<PostgresProxy> {
  const connections = new Set<Connection>();
  const listeners = new Set<(trip: RoundTrip) => void>();
  let crashed = false;
  let accepted = 0;
  let armed: { select: (trip: RoundTrip) => boolean; resolve: (trip: RoundTrip) => void } | null = null;

  const destroy = (connection: Connection) => {
    connections.delete(connection);
    connection.client.destroy();
    connection.upstream.destroy();
  };

  const crash = () => {
    crashed = true;
    for (const connection of [...connections]) destroy(connection);
  };

  const readClient = (connection: Connection) => {
    for (;;) {
      const buffer = connection.fromClient;
      if (!connection.started) {
        if (buffer.length < 8) return;
        const length = buffer.readInt32BE(0);
        if (buffer.length < length) return;
        const code = buffer.readInt32BE(4);
        if (code === SSL_REQUEST || code === GSSENC_REQUEST) connection.awaitingOneByteAnswer = true;
        else if (code !== CANCEL_REQUEST) {
          // StartupMessage: protocol version, then name/value pairs.
          let offset = 8;
          while (offset < length - 1) {
            const [name, afterName] = cstring(buffer, offset);
            const [value, afterValue] = cstring(buffer, afterName);
            if (name === 'user') connection.user = value;
            if (name === 'application_name') connection.application = value;
            offset = afterValue;
          }
          connection.started = true;
        }
        connection.fromClient = buffer.subarray(length);
        continue;
      }
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (buffer.length < 1 + length) return;
      const type = String.fromCharCode(buffer[0] as number);
      const body = buffer.subarray(5, 1 + length);
      if (type === 'Q') connection.statements.push(cstring(body, 0)[0]);
      if (type === 'P') connection.statements.push(cstring(body, cstring(body, 0)[1])[0]);
      if (type === 'E' && connection.statements.length === 0) connection.statements.push('');
      connection.fromClient = buffer.subarray(1 + length);
    }
  };

  /** Frames server messages; forwards whole ones; returns false once it has crashed. */
  const readServer = (connection: Connection): boolean => {
    let forwardUpTo = 0;
    let offset = 0;
    const buffer = connection.fromServer;
    if (connection.awaitingOneByteAnswer && buffer.length > 0) {
      connection.awaitingOneByteAnswer = false;
      offset = forwardUpTo = 1;
    }
    while (buffer.length - offset >= 5) {
      const length = buffer.readInt32BE(offset + 1);
      if (buffer.length - offset < 1 + length) break;
      const type = String.fromCharCode(buffer[offset] as number);
      if (type === 'Z') {
        if (!connection.ready) {
          connection.ready = true;
          connection.statements = [];
        } else {
          const trip: RoundTrip = {
            connection: connection.id,
            user: connection.user,
            application: connection.application,
            statements: connection.statements,
          };
          connection.statements = [];
          for (const listener of listeners) listener(trip);
          if (armed?.select(trip)) {
            const { resolve } = armed;
            armed = null;
            if (forwardUpTo > 0) connection.client.write(buffer.subarray(0, forwardUpTo));
            crash();
            resolve(trip);
            return false;
          }
        }
      }
      offset += 1 + length;
      forwardUpTo = offset;
    }
    if (forwardUpTo > 0) connection.client.write(buffer.subarray(0, forwardUpTo));
    connection.fromServer = buffer.subarray(forwardUpTo);
    return true;
  };

  const server = net.createServer((client) => {
    if (crashed) {
      client.destroy();
      return;
    }
    accepted += 1;
    const upstream = net.connect(target.port, target.host);
    const connection: Connection = {
      id: accepted,
      client,
      upstream,
      user: '',
      application: '',
      fromClient: Buffer.alloc(0),
      fromServer: Buffer.alloc(0),
      started: false,
      awaitingOneByteAnswer: false,
      ready: false,
      statements: [],
    };
    connections.add(connection);
    client.on('data', (chunk) => {
      connection.fromClient = Buffer.concat([connection.fromClient, chunk]);
      readClient(connection);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      connection.fromServer = Buffer.concat([connection.fromServer, chunk]);
      readServer(connection);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => destroy(connection));
      socket.on('close', () => destroy(connection));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get crashed() {
      return crashed;
    },
    urlFor(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    observe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    crashAt(select) {
      if (armed) throw new Error('a crash is already armed');
      return new Promise<RoundTrip>((resolve) => {
        armed = { select, resolve };
      });
    },
    disarm() {
      armed = null;
    },
    crashNow() {
      crash();
    },
    recover() {
      crashed = false;
    },
    async close() {
      armed = null;
      crash();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
