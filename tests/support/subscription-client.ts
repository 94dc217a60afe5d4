import { createClient, type Client, type ExecutionResult, type SubscribePayload } from 'graphql-ws';
import WebSocket from 'ws';
import { eventually } from './raw-graphql';

/*
 * Subscriptions as a client sees them: the graphql-ws client over a real WebSocket to the real
 * server, or a bare socket speaking graphql-transport-ws where a test needs the close frame itself.
 */

export const wsUrlOf = (httpUrl: string) => httpUrl.replace(/^http/, 'ws');

export interface Closed {
  code: number;
  reason: string;
}

export interface SubscriptionConnection {
  client: Client;
  /** The socket's close frame, once it closed. */
  closed: Promise<Closed>;
  subscribe(payload: SubscribePayload): SubscriptionRecorder;
  dispose(): Promise<void>;
}

export interface SubscriptionRecorder {
  results: ExecutionResult[];
  /** What sink.error got: GraphQL errors (an array) or the socket's close event. */
  error: unknown;
  completed: boolean;
  /** The `count`-th result (1-based), once it came. */
  nth(count: number, timeoutMs?: number): Promise<ExecutionResult>;
  /** Resolves once the subscription errored or completed. */
  ended(timeoutMs?: number): Promise<void>;
  unsubscribe(): void;
}

/** A graphql-ws client that connects at once and never retries: every close is seen as it is. */
export function connectSubscriptions(httpUrl: string, connectionParams: Record<string, unknown>): SubscriptionConnection {
  let resolveClosed: (closed: Closed) => void = () => undefined;
  const closed = new Promise<Closed>((resolve) => (resolveClosed = resolve));
  const client = createClient({
    url: wsUrlOf(httpUrl),
    webSocketImpl: WebSocket,
    connectionParams,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => undefined,
    on: {
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string | Buffer };
        resolveClosed({ code, reason: String(reason) });
      },
    },
  });
  return {
    client,
    closed,
    subscribe(payload) {
      const recorder: SubscriptionRecorder = {
        results: [],
        error: undefined,
        completed: false,
        nth: (count, timeoutMs = 5_000) =>
          eventually(async () => {
            if (recorder.results.length >= count) return recorder.results[count - 1];
            if (recorder.error !== undefined || recorder.completed) {
              throw new Error(`subscription ended after ${recorder.results.length} results: ${JSON.stringify(recorder.error ?? 'completed')}`);
            }
            return undefined;
          }, timeoutMs, 20),
        ended: async (timeoutMs = 5_000) => {
          await eventually(async () => (recorder.error !== undefined || recorder.completed ? true : undefined), timeoutMs, 20);
        },
        unsubscribe: () => undefined,
      };
      recorder.unsubscribe = client.subscribe(payload, {
        next: (result) => void recorder.results.push(result as ExecutionResult),
        error: (error) => {
          recorder.error = error ?? null;
        },
        complete: () => {
          recorder.completed = true;
        },
      });
      return recorder;
    },
    dispose: async () => {
      await client.dispose();
    },
  };
}

/** A bare socket: sends connection_init with `payload` (unless null) and resolves with the close frame. */
export function closeFrameOf(httpUrl: string, payload: Record<string, unknown> | null, timeoutMs = 5_000): Promise<Closed & { acknowledged: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrlOf(httpUrl), 'graphql-transport-ws');
    let acknowledged = false;
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error('the socket was not closed'));
    }, timeoutMs);
    socket.on('open', () => {
      if (payload !== null) socket.send(JSON.stringify({ type: 'connection_init', payload }));
    });
    socket.on('message', (data) => {
      if ((JSON.parse(String(data)) as { type?: string }).type === 'connection_ack') acknowledged = true;
    });
    socket.on('error', () => undefined);
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: String(reason), acknowledged });
    });
  });
}

/** The error codes of a refused subscription (what sink.error got). */
export function errorCodesOf(error: unknown): string[] {
  if (!Array.isArray(error)) throw new Error(`expected GraphQL errors, got ${JSON.stringify(error)}`);
  return (error as { extensions?: { code?: string } }[]).map((entry) => entry.extensions?.code ?? 'NO_CODE');
}
