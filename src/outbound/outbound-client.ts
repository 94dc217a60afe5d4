import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { checkAddress, ipLiteralOf } from './address-policy';

/*
 * The one way the server calls a URL a tenant gave it (webhooks, Slack). Such a URL is chosen
 * by whoever administers a tenant, so without care it is a way into the server's own network
 * (server-side request forgery): the metadata service at 169.254.169.254, a database on
 * 10.x, an admin port on localhost.
 *
 * - Names are checked where it counts: at connection time, through the `lookup` hook Node's
 *   socket calls to resolve the host, so the address connected to is the address checked. A
 *   name that answered a public address when it was registered and a private one now (DNS
 *   rebinding) is refused then. `checkUrl` (registration) resolves and checks too, to refuse
 *   early with a clear error, but is never what a delivery relies on.
 * - An IP literal in the URL never reaches `lookup` (Node connects to it directly), so it is
 *   checked before the request is made.
 * - Redirects are not followed: a 3xx is an answer like any other (a redirect to
 *   http://127.0.0.1 would otherwise undo both checks).
 * - A connect timeout, a total timeout, and a response body read up to a small limit and then
 *   cut: a receiver cannot hold a worker or fill its memory.
 *
 * Built on node:http rather than fetch (undici): what this needs is a per-connection lookup
 * hook, no redirects and a byte cap on the body, which are plain options and events here, and
 * no connection reuse (each call connects, and so is checked, afresh; webhook volumes do not
 * need keep-alive).
 */

export type OutboundFailure = 'URL_NOT_ALLOWED' | 'CONNECT_TIMEOUT' | 'TIMEOUT' | 'CONNECTION_FAILED' | 'ABORTED';

export class OutboundError extends Error {
  constructor(
    readonly kind: OutboundFailure,
    message: string,
    /** Where a URL_NOT_ALLOWED came from: the URL itself, or an address its host resolved to while connecting. */
    readonly stage: 'url' | 'resolve' | 'connect' | 'response' = 'url',
  ) {
    super(message);
    this.name = 'OutboundError';
  }
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Every address a name resolves to (getaddrinfo, so /etc/hosts too). */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface OutboundClientOptions {
  /** Lets calls reach non-public addresses (tests, closed networks): OUTBOUND_ALLOW_PRIVATE_NETWORKS. */
  allowPrivateNetworks: boolean;
  /** Refuses http:// (production). */
  httpsOnly: boolean;
  connectTimeoutMs: number;
  timeoutMs: number;
  maxResponseBytes: number;
  /** Tests replace it to answer differently on each resolution (DNS rebinding). */
  resolve?: Resolver;
}

export interface OutboundResponse {
  status: number;
  /** The body as text, at most maxResponseBytes of it. */
  body: string;
  /** The receiver sent more than maxResponseBytes; the rest was not read. */
  truncated: boolean;
}

const MAX_URL_LENGTH = 2048;
const USER_AGENT = 'fleet-graphql-webhooks/1';

export class OutboundClient {
  private readonly resolve: Resolver;

  constructor(readonly options: OutboundClientOptions) {
    this.resolve = options.resolve ?? systemResolver;
  }

  /**
   * A URL tenants may register: parses, has an allowed scheme and no credentials, and its host
   * (resolved now, every address) is a public one. Throws OutboundError URL_NOT_ALLOWED.
   */
  async checkUrl(raw: string): Promise<URL> {
    const url = this.parseUrl(raw);
    if (this.options.allowPrivateNetworks || ipLiteralOf(url.hostname) !== null) return url;
    const addresses = await this.resolveWithin(url.hostname, this.options.connectTimeoutMs).catch(() => {
      throw new OutboundError('URL_NOT_ALLOWED', `the host ${url.hostname} does not resolve`, 'resolve');
    });
    this.assertPublic(url.hostname, addresses, 'resolve');
    return url;
  }

  /** POSTs `body`; resolves with any HTTP answer (3xx included, never followed), rejects with OutboundError. */
  async post(target: string | URL, body: string, headers: Record<string, string>, options: { signal?: AbortSignal } = {}): Promise<OutboundResponse> {
    const url = typeof target === 'string' ? this.parseUrl(target) : this.parseUrl(target.href);
    const transport = url.protocol === 'https:' ? https : http;
    const literal = ipLiteralOf(url.hostname);
    const payload = Buffer.from(body, 'utf8');
    const { connectTimeoutMs, timeoutMs, maxResponseBytes } = this.options;
    return new Promise<OutboundResponse>((resolve, reject) => {
      let settled = false;
      const timers: NodeJS.Timeout[] = [];
      const onAbort = () => fail(new OutboundError('ABORTED', 'the call was aborted', 'connect'));
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        for (const timer of timers) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        outcome();
      };
      const fail = (error: OutboundError) => {
        finish(() => reject(error));
        request.destroy();
      };
      const request = transport.request({
        protocol: url.protocol,
        // Node wants an IPv6 literal without its brackets.
        hostname: literal ?? url.hostname,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        method: 'POST',
        agent: false,
        lookup: this.connectionLookup,
        headers: { ...headers, 'content-type': 'application/json', 'content-length': String(payload.length), 'user-agent': USER_AGENT },
      });
      request.on('error', (error: Error & { code?: string }) => {
        if (error instanceof OutboundError) return fail(error);
        fail(new OutboundError('CONNECTION_FAILED', `connection failed${error.code ? ` (${error.code})` : ''}`, 'connect'));
      });
      request.on('socket', (socket) => {
        const connectTimer = setTimeout(() => fail(new OutboundError('CONNECT_TIMEOUT', `no connection within ${connectTimeoutMs} ms`, 'connect')), connectTimeoutMs);
        timers.push(connectTimer);
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      request.on('response', (response) => {
        const chunks: Buffer[] = [];
        let received = 0;
        response.on('data', (chunk: Buffer) => {
          if (settled) return;
          const room = maxResponseBytes - received;
          if (chunk.length > room) {
            chunks.push(chunk.subarray(0, room));
            finish(() => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), truncated: true }));
            request.destroy();
            return;
          }
          chunks.push(chunk);
          received += chunk.length;
        });
        response.on('end', () => finish(() => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), truncated: false })));
        response.on('error', () => fail(new OutboundError('CONNECTION_FAILED', 'the connection broke while reading the answer', 'response')));
      });
      timers.push(setTimeout(() => fail(new OutboundError('TIMEOUT', `no complete answer within ${timeoutMs} ms`, 'response')), timeoutMs));
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // An IP literal was checked by parseUrl; a name is checked by connectionLookup.
      request.end(payload);
    });
  }

  /** Parses and checks what needs no network: scheme, credentials, length, an IP literal's range. */
  private parseUrl(raw: string): URL {
    if (raw.length > MAX_URL_LENGTH) throw new OutboundError('URL_NOT_ALLOWED', `the URL is longer than ${MAX_URL_LENGTH} characters`);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new OutboundError('URL_NOT_ALLOWED', 'not a valid URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new OutboundError('URL_NOT_ALLOWED', 'only https:// URLs are allowed');
    if (url.protocol === 'http:' && this.options.httpsOnly) throw new OutboundError('URL_NOT_ALLOWED', 'only https:// URLs are allowed');
    if (url.username || url.password) throw new OutboundError('URL_NOT_ALLOWED', 'the URL must not carry a user name or password');
    if (!url.hostname) throw new OutboundError('URL_NOT_ALLOWED', 'the URL has no host');
    const literal = ipLiteralOf(url.hostname);
    if (literal !== null && !this.options.allowPrivateNetworks) {
      const verdict = checkAddress(literal);
      if (!verdict.allowed) throw new OutboundError('URL_NOT_ALLOWED', `${url.hostname} is a ${verdict.range} address`);
    }
    return url;
  }

  /** One refused address refuses the name: the connection could go to any of them. */
  private assertPublic(hostname: string, addresses: ResolvedAddress[], stage: 'resolve' | 'connect'): void {
    if (addresses.length === 0) throw new OutboundError('URL_NOT_ALLOWED', `the host ${hostname} does not resolve`, stage);
    for (const { address } of addresses) {
      const verdict = checkAddress(address);
      if (!verdict.allowed) throw new OutboundError('URL_NOT_ALLOWED', `the host ${hostname} resolves to a ${verdict.range} address`, stage);
    }
  }

  private async resolveWithin(hostname: string, ms: number): Promise<ResolvedAddress[]> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.resolve(hostname),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => reject(new Error('resolution timed out')), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The socket's resolver: what it answers is what the socket connects to, so this is where
   * the check is final. Node calls it with `all: true` when it tries several addresses
   * (autoSelectFamily, Node 20's default) and without otherwise.
   */
  private readonly connectionLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    const requested: unknown = lookupOptions.family;
    const family = requested === 4 || requested === 'IPv4' ? 4 : requested === 6 || requested === 'IPv6' ? 6 : 0;
    // The request's connect timer (which counts resolving too) decides first; this only frees the hook.
    this.resolveWithin(hostname, this.options.connectTimeoutMs + 1_000).then(
      (resolved) => {
        if (!this.options.allowPrivateNetworks) {
          try {
            this.assertPublic(hostname, resolved, 'connect');
          } catch (error) {
            return callback(error as OutboundError, '', 0);
          }
        }
        const usable = family === 0 ? resolved : resolved.filter((entry) => entry.family === family);
        const first = usable[0];
        if (!first) return callback(Object.assign(new Error(`${hostname} has no IPv${family} address`), { code: 'ENOTFOUND' }), '', 0);
        if (lookupOptions.all) return (callback as unknown as (error: null, addresses: ResolvedAddress[]) => void)(null, usable);
        return callback(null, first.address, first.family);
      },
      () => callback(Object.assign(new Error(`${hostname} does not resolve`), { code: 'ENOTFOUND' }), '', 0),
    );
  };
}
