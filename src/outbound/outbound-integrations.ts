import type { Config } from '../config/config';
import type { Logger } from '../observability/logger';
import { SlackChannel } from '../slack/slack-channel';
import { SlackWebhooks } from '../slack/slack-webhook';
import { WebhookChannel } from '../webhooks/webhook-channel';
import { WebhookEndpoints } from '../webhooks/webhook-endpoints';
import { CredentialBox } from './credential-box';
import { OutboundClient } from './outbound-client';

/** Everything that calls tenants' URLs, sharing one guarded client and one credential key. */
export interface OutboundIntegrations {
  outbound: OutboundClient;
  box: CredentialBox;
  webhooks: WebhookEndpoints;
  slack: SlackWebhooks;
  /** The notification channels the delivery worker calls. */
  webhookChannel: WebhookChannel;
  slackChannel: SlackChannel;
}

export function createOutboundIntegrations(config: Pick<Config, 'outbound' | 'webhooks' | 'tenantDbSecret'>, logger: Logger): OutboundIntegrations {
  const outbound = new OutboundClient(config.outbound);
  const box = new CredentialBox(config.tenantDbSecret);
  return {
    outbound,
    box,
    webhooks: new WebhookEndpoints({ outbound, box }),
    slack: new SlackWebhooks({ outbound, box }),
    webhookChannel: new WebhookChannel({ outbound, box, disableAfterFailures: config.webhooks.disableAfterFailures, logger }),
    slackChannel: new SlackChannel({ outbound, box }),
  };
}
