import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from '../observability/logger';
import type { EmailKind, EmailOutcome } from '../observability/metrics';

/*
 * The server's outgoing mail. With SMTP_URL, nodemailer speaks SMTP to that relay; without it
 * (the embedded quick start, development), the log transport prints each message through the
 * logger, and that log line IS the delivery: it carries the whole message, codes included. No
 * other log line ever names a code or token (docs/decisions/0021-email.md).
 */

export interface EmailMessage {
  /** Which email this is, for metrics (a fixed set; never the address or the subject). */
  kind: EmailKind;
  to: string;
  subject: string;
  /** Plain text; the part every client shows. */
  text: string;
  /** An optional simple HTML alternative. */
  html?: string;
}

export interface Mailer {
  readonly kind: 'smtp' | 'log';
  /** Resolves once the relay accepted the message (SMTP) or it was printed (log); throws otherwise. */
  send(message: EmailMessage): Promise<void>;
  close(): void;
}

export interface MailerConfig {
  smtpUrl: string | undefined;
  from: string;
}

/** Slow relays fail the job (which retries) instead of holding a worker for minutes. */
const SMTP_TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 };

/** `onSend`: told of each message's outcome (fleet_emails_total), whoever sends it. */
export function createMailer(config: MailerConfig, logger: Logger, onSend?: (kind: EmailKind, outcome: EmailOutcome) => void): Mailer {
  const mailer = config.smtpUrl ? new SmtpMailer(config.smtpUrl, config.from) : new LogMailer(config.from, logger);
  return onSend ? new CountedMailer(mailer, onSend) : mailer;
}

/** Counts at the one place every email goes through: account emails' jobs and the EMAIL channel alike. */
class CountedMailer implements Mailer {
  constructor(
    private readonly mailer: Mailer,
    private readonly onSend: (kind: EmailKind, outcome: EmailOutcome) => void,
  ) {}

  get kind(): Mailer['kind'] {
    return this.mailer.kind;
  }

  async send(message: EmailMessage): Promise<void> {
    try {
      await this.mailer.send(message);
    } catch (error) {
      this.onSend(message.kind, 'failed');
      throw error;
    }
    this.onSend(message.kind, 'sent');
  }

  close(): void {
    this.mailer.close();
  }
}

class SmtpMailer implements Mailer {
  readonly kind = 'smtp';
  private readonly transport: Transporter;

  constructor(
    smtpUrl: string,
    private readonly from: string,
  ) {
    // One connection per message: a pooled connection the relay dropped while idle would fail
    // the next send for nothing; our volume (account emails, notifications) does not need a pool.
    this.transport = nodemailer.createTransport({ url: smtpUrl, ...SMTP_TIMEOUTS });
  }

  async send(message: EmailMessage): Promise<void> {
    await this.transport.sendMail({ from: this.from, to: message.to, subject: message.subject, text: message.text, ...(message.html ? { html: message.html } : {}) });
  }

  close(): void {
    this.transport.close();
  }
}

class LogMailer implements Mailer {
  readonly kind = 'log';

  constructor(
    private readonly from: string,
    private readonly logger: Logger,
  ) {}

  async send(message: EmailMessage): Promise<void> {
    // Under `email`, not `*.token` or `*.code`, on purpose: this line is the message itself.
    this.logger.info(
      { email: { from: this.from, to: message.to, subject: message.subject, text: message.text } },
      `email (no SMTP_URL: printed, not sent) to ${message.to}: ${message.subject}\n${message.text}`,
    );
  }

  close(): void {}
}
