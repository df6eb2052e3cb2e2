import { z } from 'zod';
import type { NotificationSubscription } from '../metadata/interface.ts';
import { secretMatches, type NotificationIntake } from './intake.ts';
import type { SubscriptionManager } from './lifecycle.ts';

/** What a receiver answers; the route turns it into HTTP. */
export type Reply =
  | { status: 200; text: string }
  | { status: 200 | 202; json?: unknown }
  | { status: 400 | 403 | 429; detail: string; retryAfterSeconds?: number };

/** Graph's validation token is echoed as text; anything longer than this is not one. */
const MAX_VALIDATION_TOKEN = 1024;

const changeNotification = z.object({
  subscriptionId: z.string().min(1).max(200),
  clientState: z.string().max(4096).nullish(),
  changeType: z.string().max(100).optional(),
  lifecycleEvent: z.string().max(100).optional(),
  resource: z.string().max(2000).optional(),
  subscriptionExpirationDateTime: z.string().max(100).optional(),
  tenantId: z.string().max(100).optional(),
}).passthrough();

const collection = z.object({ value: z.array(z.unknown()).max(1000) }).passthrough();

/**
 * Microsoft Graph change and lifecycle notifications (`/v1/notifications/sharepoint`).
 *
 * - Subscription validation: Graph POSTs with `?validationToken=…` when a subscription is created
 *   (and for lifecycle URLs); the token is echoed as text/plain with 200 at once — Graph gives
 *   10 seconds. The subscription is not known yet at that moment (its id comes back in Graph's
 *   answer), so nothing is looked up.
 * - Notifications: a batch `{value: [...]}`; each must name a subscription this service created
 *   and carry its clientState (compared in constant time with the stored hash). Change
 *   notifications request an incremental sync of the subscription's source; lifecycle events
 *   `reauthorizationRequired` renew the subscription, `subscriptionRemoved` re-creates it and
 *   syncs, `missed` syncs.
 * The answer is 202 when at least one notification was accepted, 403 when none was.
 */
export async function receiveGraph(
  deps: { intake: NotificationIntake; lookup: (kind: string, externalId: string) => Promise<NotificationSubscription | null>; manager: SubscriptionManager; now: () => Date; limit: (sourceId: string) => number | null },
  input: { validationToken: string | undefined; body: unknown },
): Promise<Reply> {
  if (input.validationToken !== undefined) {
    if (!input.validationToken || input.validationToken.length > MAX_VALIDATION_TOKEN) return { status: 400, detail: 'invalid validationToken' };
    return { status: 200, text: input.validationToken };
  }
  const batch = collection.safeParse(input.body);
  if (!batch.success) {
    deps.intake.count(null, 'sharepoint', 'rejected');
    return { status: 400, detail: 'expected a change notification collection {"value": [...]}' };
  }
  const now = deps.now();
  let accepted = 0;
  let throttled: number | null = null;
  for (const raw of batch.data.value) {
    const n = changeNotification.safeParse(raw);
    const sub = n.success ? await deps.lookup('graph', n.data.subscriptionId) : null;
    if (!n.success || !sub || !secretMatches(n.data.clientState, sub.secretHash)) {
      deps.intake.count(sub?.sourceId ?? null, 'sharepoint', 'rejected');
      continue;
    }
    const wait = deps.limit(sub.sourceId);
    if (wait !== null) {
      throttled = wait;
      continue;
    }
    deps.intake.count(sub.sourceId, 'sharepoint', 'accepted');
    accepted++;
    const event = n.data.lifecycleEvent;
    if (event === 'reauthorizationRequired') void deps.manager.renewSoon(sub);
    else if (event === 'subscriptionRemoved') void deps.manager.replace(sub, 'subscription removed by Microsoft Graph');
    else void deps.intake.trigger(sub.sourceId, now);
  }
  if (accepted > 0) return { status: 202 };
  if (throttled !== null) return { status: 429, detail: 'too many notifications for this source', retryAfterSeconds: throttled };
  return { status: 403, detail: 'no notification in the batch belongs to a known subscription with its clientState' };
}
