import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

/*
 * A real SMTP server on a local port (smtp-server, the nodemailer project's server), capturing
 * every message the API sends to it: tests read invitation, reset and verification codes from
 * the mail that arrived, as people do. `stop()` then `start()` again on the same port stands for
 * a relay that is down for a while.
 */

export interface CapturedEmail {
  /** Envelope recipients, lower-cased. */
  to: string[];
  from: string;
  subject: string;
  text: string;
}

export class SmtpCapture {
  readonly messages: CapturedEmail[] = [];
  private readonly taken = new WeakSet<CapturedEmail>();
  private server: SMTPServer | undefined;
  private waiters: (() => void)[] = [];

  private constructor(public port: number) {}

  static async start(port = 0): Promise<SmtpCapture> {
    const capture = new SmtpCapture(port);
    await capture.start();
    return capture;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Listens (again) on `port`. */
  async start(): Promise<void> {
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      // close() otherwise waits up to 30 s for clients still connected.
      closeTimeout: 500,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const to = session.envelope.rcptTo.map((address) => address.address.toLowerCase());
          this.messages.push({ to, ...parseMessage(Buffer.concat(chunks).toString('utf8')) });
          for (const wake of this.waiters.splice(0)) wake();
          callback();
        });
      },
    });
    await new Promise<void>((resolve, reject) => {
      const listener = server.listen(this.port, '127.0.0.1', () => resolve());
      listener.once('error', reject);
    });
    this.port = (server.server.address() as AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * The first message to `to` (whose subject contains `subject`, if given) that no earlier call
   * took, waiting up to `timeoutMs` for it.
   */
  async take(to: string, subject = '', timeoutMs = 15_000): Promise<CapturedEmail> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find((message) => !this.taken.has(message) && message.to.includes(to.toLowerCase()) && message.subject.includes(subject));
      if (found) {
        this.taken.add(found);
        return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no email to ${to}${subject ? ` about "${subject}"` : ''} within ${timeoutMs} ms (got ${this.messages.length}: ${this.messages.map((m) => `${m.to.join(',')} "${m.subject}"`).join('; ')})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Messages to `to` so far. */
  to(address: string): CapturedEmail[] {
    return this.messages.filter((message) => message.to.includes(address.toLowerCase()));
  }
}

/** The code after `label:` in a captured email's text (`Invitation code: inv_...`). */
export function codeIn(email: CapturedEmail, label: 'Invitation code' | 'Reset code' | 'Verification code'): string {
  const match = new RegExp(`${label}: (\\S+)`).exec(email.text);
  if (!match?.[1]) throw new Error(`no "${label}" in the email "${email.subject}"`);
  return match[1];
}

/** Just enough RFC 5322 for the single-part text messages the API sends. */
function parseMessage(raw: string): { from: string; subject: string; text: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const body = raw.slice(split + 4);
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  const encoding = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const text =
    encoding === 'quoted-printable'
      ? Buffer.from(
          body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_all, hex: string) => String.fromCharCode(parseInt(hex, 16))),
          'latin1',
        ).toString('utf8')
      : encoding === 'base64'
        ? Buffer.from(body, 'base64').toString('utf8')
        : body;
  return { from: headers.get('from') ?? '', subject: decodeWords(headers.get('subject') ?? ''), text: text.replace(/\r\n/g, '\n').trimEnd() };
}

/** RFC 2047 encoded words (`=?UTF-8?Q?...?=` / `?B?`), as nodemailer writes non-ASCII subjects. */
function decodeWords(value: string): string {
  return value.replace(/=\?utf-8\?([QB])\?([^?]*)\?=\s*/gi, (_all, kind: string, data: string) =>
    kind.toUpperCase() === 'B'
      ? Buffer.from(data, 'base64').toString('utf8')
      : Buffer.from(data.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8'),
  );
}
