import { isTenantPrincipal } from '../auth/principal';
import { forbidden } from '../errors/app-error';
import type { RequestContext } from '../graphql/context';
import type { BusMessage } from './event-bus';
import type { EventQueue } from './event-queue';

/*
 * What a subscription field's `subscribe` returns, built on the event bus: the caller's own
 * tenant's messages (the only tenant it can listen to), mapped to what the field resolves from.
 * A field's `step` may read through `ctx.tenantScope()`; the lease it takes is given back once
 * the event's answer is sent (subscription-server.ts), or here when `step` skips the message.
 */

/**
 * Maps the queue's messages to values, skipping those `step` turns into undefined. A hand-made
 * iterator rather than an async generator so that `return()` (the client completed, the socket
 * closed) ends the queue at once instead of after the next message.
 */
export function mapMessages<U>(queue: EventQueue<BusMessage>, step: (message: BusMessage) => Promise<U | undefined>): AsyncIterableIterator<U> {
  const iterator: AsyncIterableIterator<U> = {
    async next() {
      for (;;) {
        const result = await queue.next();
        if (result.done) return { done: true, value: undefined };
        const mapped = await step(result.value);
        if (mapped !== undefined) return { done: false, value: mapped };
      }
    },
    async return() {
      await queue.return();
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      await queue.return();
      throw error;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * The caller's tenant's messages that `accept` picks, each turned into a value by `step`
 * (undefined: skipped). Resolves once the bus listens (what is published from then on arrives).
 */
export async function tenantStream<U>(
  ctx: RequestContext,
  accept: (message: BusMessage) => boolean,
  step: (message: BusMessage) => Promise<U | undefined>,
): Promise<AsyncIterableIterator<U>> {
  const { principal } = ctx;
  if (!isTenantPrincipal(principal)) throw forbidden('Subscriptions act on a tenant; sign in as a member of that tenant');
  const queue = await ctx.services.eventBus.listen(principal.tenant.id, accept);
  return mapMessages(queue, async (message) => {
    let mapped: U | undefined;
    try {
      mapped = await step(message);
    } finally {
      // Skipped or failed: nothing will be sent for it, so its lease goes back now.
      if (mapped === undefined) ctx.release();
    }
    return mapped;
  });
}

/**
 * The signed-in member's own messages (`EventBus.publishToUser` with their user id), as
 * published: what a per-user field such as in-app notifications resolves from. API keys have no
 * user: FORBIDDEN.
 */
export function userMessages(ctx: RequestContext): Promise<AsyncIterableIterator<unknown>> {
  const { principal } = ctx;
  if (principal.kind !== 'member') throw forbidden('Only a signed-in member receives their own messages');
  return tenantStream(
    ctx,
    (message) => message.kind === 'user' && message.userId === principal.userId,
    async (message) => (message.kind === 'user' ? message.payload : undefined),
  );
}
