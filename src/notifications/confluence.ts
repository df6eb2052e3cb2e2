import type { Source } from '../types.ts';
import { hmacMatches, sameSecret, type NotificationIntake } from './intake.ts';
import type { Reply } from './sharepoint.ts';

/** Header an Automation rule's "Send web request" (or a proxy) can carry instead of a signature. */
export const SECRET_HEADER = 'x-clearance-webhook-secret';

export interface ConfluenceCandidate {
  source: Source;
  secret: string;
}

/**
 * Confluence webhooks (`/v1/notifications/confluence[?source=<id>]`): page, blog post and
 * attachment created/updated/removed/trashed/restored/moved and restriction or permission changes
 * — any event the webhook was set up for. The request must prove the source's shared secret
 * (`webhookSecret` in the source's credentials): either an `X-Hub-Signature: sha256=<HMAC of the
 * body>` as Confluence webhooks with a secret send, or the secret itself in
 * `X-Clearance-Webhook-Secret` (Automation rules can set headers but not sign). Without
 * `?source=`, the signature or secret tells which Confluence source the event is for. An event for
 * a space the source does not index is accepted and ignored.
 */
export async function receiveConfluence(
  deps: { intake: NotificationIntake; candidates: (sourceId: string | undefined) => Promise<ConfluenceCandidate[]>; now: () => Date; limit: (sourceId: string) => number | null },
  input: { sourceId: string | undefined; body: string; headers: (name: string) => string | undefined },
): Promise<Reply> {
  const candidates = await deps.candidates(input.sourceId);
  const signature = input.headers('x-hub-signature') ?? input.headers('x-hub-signature-256');
  const presented = input.headers(SECRET_HEADER);
  const match = candidates.find((c) => (signature ? hmacMatches(signature, input.body, c.secret) : sameSecret(presented, c.secret)));
  if (!match) {
    deps.intake.count(candidates.length === 1 ? candidates[0]!.source.id : null, 'confluence', 'rejected');
    return { status: 403, detail: 'the webhook secret or signature does not match a Confluence source' };
  }
  const sourceId = match.source.id;
  const wait = deps.limit(sourceId);
  if (wait !== null) return { status: 429, detail: 'too many notifications for this source', retryAfterSeconds: wait };
  deps.intake.count(sourceId, 'confluence', 'accepted');
  const space = spaceKeyOf(input.body);
  const keys = Array.isArray(match.source.config.spaceKeys) ? (match.source.config.spaceKeys as string[]) : [];
  if (space && keys.length && !keys.includes(space)) return { status: 200, json: { ignored: `space ${space} is not indexed by this source` } };
  void deps.intake.trigger(sourceId, deps.now());
  return { status: 202 };
}

/** The space key an event names, wherever its payload shape keeps it (Cloud, Data Center, Automation). */
function spaceKeyOf(body: string): string | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (!parsed || typeof parsed !== 'object') return null;
  const o = parsed as Record<string, any>;
  for (const holder of [o.page, o.blog, o.blogpost, o.content, o.attachment?.container, o.attachment, o]) {
    const key = holder?.spaceKey ?? holder?.space?.key;
    if (typeof key === 'string' && key) return key;
  }
  return null;
}
