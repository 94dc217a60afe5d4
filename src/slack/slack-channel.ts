import type { DomainEvent } from '../events/domain-event';
import { summarizeEvent } from '../events/event-summary';
import { DeliveryError, type DeliveryContext, type NotificationChannel } from '../notifications/channel';
import { failureOfError, failureOfResponse } from '../outbound/call-outcome';
import type { CredentialBox } from '../outbound/credential-box';
import type { OutboundClient, OutboundResponse } from '../outbound/outbound-client';
import { readSlackRow, slackUrlBinding } from './slack-webhook';

/*
 * The tenant's Slack channel: one target ('slack') when an incoming webhook is set, one
 * message `{ text }` per event (the same one-line title the other channels show), through the
 * outbound client like every call to a tenant's URL.
 */

/** Slack reads &, < and > as markup (links, mentions): escaped, a tenant's text stays text. */
export function slackEscape(value: string): string {
  return value.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export const SLACK_TARGET = 'slack';

export class SlackChannel implements NotificationChannel {
  readonly kind = 'SLACK' as const;

  constructor(private readonly options: { outbound: OutboundClient; box: CredentialBox }) {}

  async targets(_event: DomainEvent, _recipients: readonly string[], context: Pick<DeliveryContext, 'tenantData'>): Promise<string[]> {
    return (await readSlackRow(context.tenantData.sql)) ? [SLACK_TARGET] : [];
  }

  async deliver(event: DomainEvent, target: string, context: DeliveryContext): Promise<void> {
    if (target !== SLACK_TARGET) throw new DeliveryError(`not a Slack target: ${target}`, false);
    const row = await readSlackRow(context.tenantData.sql);
    if (!row) throw new DeliveryError('no Slack webhook is set', false);
    let url: string;
    try {
      url = this.options.box.open(row.urlCiphertext, slackUrlBinding(context.tenant.id));
    } catch {
      throw new DeliveryError('the Slack webhook URL cannot be read (was TENANT_DB_SECRET changed?); set it again', false);
    }
    const body = JSON.stringify({ text: slackEscape(summarizeEvent(event, context.tenant.name).title) });
    let response: OutboundResponse;
    try {
      response = await this.options.outbound.post(url, body, {}, { signal: context.signal });
    } catch (error) {
      const failure = failureOfError(error);
      throw new DeliveryError(failure.detail, failure.retryable);
    }
    // The URL's path is its secret: never part of what is kept about a failure.
    const failure = failureOfResponse(response, [url, new URL(url).pathname]);
    if (failure) throw new DeliveryError(failure.detail, failure.retryable);
  }
}
