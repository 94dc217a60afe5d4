import nodemailer, { type Transporter } from 'nodemailer';
import type { Logger } from '../observability/logger';

/*
 * The server's outgoing mail. With SMTP_URL, nodemailer speaks SMTP to that relay; without it
 * (the embedded quick start, development), the log transport prints each message through the
 * logger, and that log line IS the delivery: it carries the whole message, codes included. No
 * other log line ever names a code or token (docs/decisions/0021-email.md).
 */

export interface EmailMessage {
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

export function createMailer(config: MailerConfig, logger: Logger): Mailer {
  return config.smtpUrl ? new SmtpMailer(config.smtpUrl, config.from) : new LogMailer(config.from, logger);
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
