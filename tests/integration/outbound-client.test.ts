import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config/config';
import { checkAddress } from '../../src/outbound/address-policy';
import { OutboundClient, OutboundError, type OutboundClientOptions, type Resolver } from '../../src/outbound/outbound-client';

/*
 * The outbound client against real HTTP receivers on this machine: what it refuses to reach
 * (and where: the URL, or the socket's own lookup at connection time), and how it bounds a
 * receiver that is slow, huge, or redirects.
 */

interface Receiver {
  port: number;
  /** TCP connections accepted so far: a refused call must not have opened one. */
  connections: number;
  requests: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
  close(): Promise<void>;
}

async function startReceiver(answer: (request: http.IncomingMessage, response: http.ServerResponse) => void): Promise<Receiver> {
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      receiver.requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      answer(request, response);
    });
  });
  server.on('connection', () => {
    receiver.connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const receiver: Receiver = {
    port: (server.address() as AddressInfo).port,
    connections: 0,
    requests: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return receiver;
}

const DEFAULTS: OutboundClientOptions = { allowPrivateNetworks: false, httpsOnly: false, connectTimeoutMs: 2_000, timeoutMs: 5_000, maxResponseBytes: 64 * 1024 };
const client = (options: Partial<OutboundClientOptions> = {}) => new OutboundClient({ ...DEFAULTS, ...options });

async function refusal(call: Promise<unknown>): Promise<OutboundError> {
  const error = await call.then(
    () => new Error('expected the call to be refused'),
    (caught: unknown) => caught,
  );
  if (!(error instanceof OutboundError)) throw error;
  return error;
}

/** A public address (example.com's) that the tests never actually call. */
const PUBLIC_ADDRESS = '93.184.215.14';

let ok: Receiver;

beforeAll(async () => {
  ok = await startReceiver((_request, response) => response.end('ok'));
});

afterAll(async () => {
  await ok.close();
});

describe('address policy', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.1',
    '10.0.0.1',
    '172.16.0.1',
    '192.168.1.1',
    '100.64.0.1',
    '169.254.169.254',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '192.0.2.1',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:10.0.0.1',
    '::ffff:169.254.169.254',
    '64:ff9b::a00:1',
    '2002:a00:1::1',
    // IPv4-compatible (::/96): 127.0.0.1, 10.0.0.1, 169.254.169.254 inside an IPv6 literal.
    '::7f00:1',
    '::a00:1',
    '::a9fe:a9fe',
    'not-an-address',
  ])('refuses %s', (address) => {
    expect(checkAddress(address).allowed).toBe(false);
  });

  it.each([PUBLIC_ADDRESS, '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('allows %s', (address) => {
    expect(checkAddress(address)).toEqual({ allowed: true });
  });
});

describe('registration check (checkUrl)', () => {
  it.each([
    ['http://127.0.0.1/hook', 'loopback'],
    ['http://localhost/hook', 'loopback'],
    ['http://10.0.0.1/hook', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'linkLocal'],
    ['http://[::1]/hook', 'loopback'],
    ['http://[fc00::1]/hook', 'uniqueLocal'],
    ['http://[::ffff:7f00:1]/hook', 'loopback'],
    ['http://2130706433/hook', 'loopback'],
    ['http://0x7f.1/hook', 'loopback'],
    ['http://[::127.0.0.1]/hook', 'ipv4Compatible'],
  ])('refuses %s (%s)', async (url, range) => {
    const error = await refusal(client().checkUrl(url));
    expect(error.kind).toBe('URL_NOT_ALLOWED');
    expect(error.message).toContain(range);
  });

  it('refuses what is not an http(s) URL, or carries credentials', async () => {
    for (const url of ['ftp://93.184.215.14/x', 'file:///etc/passwd', 'not a url', `https://user:pass@${PUBLIC_ADDRESS}/`]) {
      expect((await refusal(client().checkUrl(url))).kind).toBe('URL_NOT_ALLOWED');
    }
  });

  it('takes https only in production, unless private networks are allowed', async () => {
    const production = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://localhost/x',
      JWT_SECRET: 'a-production-secret-of-at-least-32-chars',
      ADMIN_EMAIL: 'admin@example.com',
      ADMIN_PASSWORD: 'admin-password',
    });
    expect(production.outbound).toMatchObject({ allowPrivateNetworks: false, httpsOnly: true, connectTimeoutMs: 5_000, timeoutMs: 10_000, maxResponseBytes: 65_536 });
    const guarded = new OutboundClient(production.outbound);
    expect((await refusal(guarded.checkUrl(`http://${PUBLIC_ADDRESS}/hook`))).message).toContain('https');
    await expect(guarded.checkUrl(`https://${PUBLIC_ADDRESS}/hook`)).resolves.toBeInstanceOf(URL);
    expect(loadConfig({ NODE_ENV: 'test' }).outbound).toMatchObject({ allowPrivateNetworks: false, httpsOnly: false });
  });

  it('accepts a public address', async () => {
    expect((await client().checkUrl(`https://${PUBLIC_ADDRESS}/hooks?x=1`)).href).toBe(`https://${PUBLIC_ADDRESS}/hooks?x=1`);
  });
});

describe('connection-time check (the socket lookup hook)', () => {
  it('refuses a name resolving to loopback when connecting, not only at registration: the receiver sees no connection', async () => {
    const before = ok.connections;
    const error = await refusal(client().post(`http://localhost:${ok.port}/hook`, '{}', {}));
    expect(error).toMatchObject({ kind: 'URL_NOT_ALLOWED', stage: 'connect' });
    expect(error.message).toContain('loopback');
    expect(ok.connections).toBe(before);
    // Control: the same call with private networks allowed reaches the receiver by that name.
    const reached = await client({ allowPrivateNetworks: true }).post(`http://localhost:${ok.port}/hook`, '{}', {});
    expect(reached).toEqual({ status: 200, body: 'ok', truncated: false });
    expect(ok.connections).toBe(before + 1);
  });

  it('DNS rebinding: a name public at registration and loopback at delivery is refused at delivery', async () => {
    const answers = [PUBLIC_ADDRESS, '127.0.0.1'];
    const resolutions: string[] = [];
    const rebinding: Resolver = async () => {
      const address = answers[Math.min(resolutions.length, answers.length - 1)] as string;
      resolutions.push(address);
      return [{ address, family: 4 }];
    };
    const rebound = client({ resolve: rebinding });
    const url = `http://partner.rebind.test:${ok.port}/hook`;
    await expect(rebound.checkUrl(url)).resolves.toBeInstanceOf(URL);
    const before = ok.connections;
    const error = await refusal(rebound.post(url, '{}', {}));
    expect(error).toMatchObject({ kind: 'URL_NOT_ALLOWED', stage: 'connect' });
    expect(resolutions).toEqual([PUBLIC_ADDRESS, '127.0.0.1']);
    expect(ok.connections).toBe(before);
  });

  it('a name with one private address among public ones is refused', async () => {
    const mixed = client({ resolve: async () => [{ address: PUBLIC_ADDRESS, family: 4 }, { address: '10.1.2.3', family: 4 }] });
    expect((await refusal(mixed.checkUrl('https://mixed.test/'))).message).toContain('private');
    expect(await refusal(mixed.post(`http://mixed.test:${ok.port}/`, '{}', {}))).toMatchObject({ kind: 'URL_NOT_ALLOWED', stage: 'connect' });
  });

  it('an IP literal (never resolved) is refused before connecting', async () => {
    const before = ok.connections;
    for (const host of ['127.0.0.1', '[::ffff:127.0.0.1]']) {
      expect(await refusal(client().post(`http://${host}:${ok.port}/hook`, '{}', {}))).toMatchObject({ kind: 'URL_NOT_ALLOWED', stage: 'url' });
    }
    expect(ok.connections).toBe(before);
  });
});

describe('bounds on the receiver (private networks allowed, to reach it)', () => {
  const open = (options: Partial<OutboundClientOptions> = {}) => client({ allowPrivateNetworks: true, ...options });

  it('gives up on a receiver that does not answer within the total timeout', async () => {
    const slow = await startReceiver(() => {
      // Never answers.
    });
    try {
      const startedAt = performance.now();
      const error = await refusal(open({ timeoutMs: 300 }).post(`http://127.0.0.1:${slow.port}/`, '{}', {}));
      const elapsed = performance.now() - startedAt;
      expect(error.kind).toBe('TIMEOUT');
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(2_000);
    } finally {
      await slow.close();
    }
  });

  it('a receiver trickling its answer is cut at the total timeout too', async () => {
    const trickle = await startReceiver((_request, response) => {
      response.writeHead(200);
      const timer = setInterval(() => response.write('.'), 50);
      response.on('close', () => clearInterval(timer));
    });
    try {
      expect((await refusal(open({ timeoutMs: 400 }).post(`http://127.0.0.1:${trickle.port}/`, '{}', {}))).kind).toBe('TIMEOUT');
    } finally {
      await trickle.close();
    }
  });

  it('reads at most maxResponseBytes of a huge (endless) answer, then cuts it', async () => {
    const chunk = 'x'.repeat(16 * 1024);
    const huge = await startReceiver((_request, response) => {
      response.writeHead(500);
      const pump = () => {
        while (!response.destroyed && response.write(chunk)) {
          // Fill the socket until it pushes back.
        }
      };
      response.on('drain', pump);
      pump();
    });
    try {
      const startedAt = performance.now();
      const answer = await open({ maxResponseBytes: 1024, timeoutMs: 5_000 }).post(`http://127.0.0.1:${huge.port}/`, '{}', {});
      expect(answer.status).toBe(500);
      expect(answer.truncated).toBe(true);
      expect(answer.body).toBe('x'.repeat(1024));
      expect(performance.now() - startedAt).toBeLessThan(2_000);
    } finally {
      await huge.close();
    }
  });

  it('does not follow a redirect (to an internal address or anywhere)', async () => {
    const target = await startReceiver((_request, response) => response.end('internal'));
    const redirecting = await startReceiver((_request, response) => {
      response.writeHead(302, { location: `http://127.0.0.1:${target.port}/admin` });
      response.end();
    });
    try {
      const answer = await open().post(`http://127.0.0.1:${redirecting.port}/`, '{"a":1}', { 'x-extra': 'yes' });
      expect(answer.status).toBe(302);
      expect(target.connections).toBe(0);
      expect(redirecting.requests).toEqual([
        expect.objectContaining({ method: 'POST', url: '/', body: '{"a":1}', headers: expect.objectContaining({ 'content-type': 'application/json', 'x-extra': 'yes' }) }),
      ]);
    } finally {
      await target.close();
      await redirecting.close();
    }
  });

  it('gives up when resolving and connecting take longer than the connect timeout', async () => {
    const hanging = open({ connectTimeoutMs: 200, resolve: () => new Promise(() => undefined) });
    const startedAt = performance.now();
    expect((await refusal(hanging.post('http://stuck.test/', '{}', {}))).kind).toBe('CONNECT_TIMEOUT');
    expect(performance.now() - startedAt).toBeLessThan(1_000);
  });

  it('a refused connection is a CONNECTION_FAILED, and an abort stops the call', async () => {
    const gone = await startReceiver(() => undefined);
    const { port } = gone;
    await gone.close();
    expect((await refusal(open().post(`http://127.0.0.1:${port}/`, '{}', {}))).kind).toBe('CONNECTION_FAILED');

    const silent = await startReceiver(() => undefined);
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      expect((await refusal(open().post(`http://127.0.0.1:${silent.port}/`, '{}', {}, { signal: controller.signal }))).kind).toBe('ABORTED');
    } finally {
      await silent.close();
    }
  });
});
