import { createHmac } from 'node:crypto';
import type { FakeAttachment, FakeContent, FakeSpace } from './model.ts';

/**
 * Webhooks of the fake site. Confluence Cloud registers webhooks through an app (Connect/Forge) or
 * an Automation rule's "Send web request"; Data Center through `POST /rest/api/webhooks`
 * {name, url, events, configuration: {secret}}. Either way, after a matching event the site POSTs
 * a JSON event — `{event, timestamp, userAccountId, page|blog|attachment: {id, spaceKey, title,
 * version, …}}` — and, with a secret, signs the raw body: `X-Hub-Signature: sha256=<hex HMAC>`
 * (`signing: 'hmac'`). An Automation rule cannot sign but can send a header
 * (`signing: 'header'`, the secret in `X-Clearance-Webhook-Secret`).
 */
export interface FakeWebhook {
  id: number;
  url: string;
  secret: string | null;
  signing: 'hmac' | 'header';
  /** null: every event. */
  events: string[] | null;
  active: boolean;
}

export interface WebhookDelivery {
  webhookId: number;
  event: string;
  status: number;
  at: number;
}

export class FakeConfluenceWebhooks {
  readonly webhooks: FakeWebhook[] = [];
  readonly deliveries: WebhookDelivery[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private next = 1;

  constructor(private readonly spaceKeyOf: (spaceId: string) => string, private readonly containerOf: (id: string) => FakeContent | undefined) {}

  register(w: { url: string; secret?: string | null; signing?: 'hmac' | 'header'; events?: string[] | null }): FakeWebhook {
    const hook: FakeWebhook = { id: this.next++, url: w.url, secret: w.secret ?? null, signing: w.signing ?? 'hmac', events: w.events ?? null, active: true };
    this.webhooks.push(hook);
    return hook;
  }

  emit(event: string, subject: { content?: FakeContent; attachment?: FakeAttachment; space?: FakeSpace }): void {
    const hooks = this.webhooks.filter((h) => h.active && (!h.events || h.events.includes(event)));
    if (!hooks.length) return;
    const body = JSON.stringify({ event, timestamp: Date.now(), userAccountId: 'fake-admin', ...this.payload(subject) });
    for (const hook of hooks) {
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-atlassian-webhook-identifier': String(hook.id) };
      if (hook.secret && hook.signing === 'hmac') headers['x-hub-signature'] = `sha256=${createHmac('sha256', hook.secret).update(body).digest('hex')}`;
      if (hook.secret && hook.signing === 'header') headers['x-clearance-webhook-secret'] = hook.secret;
      const p = fetch(hook.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(30_000) })
        .then(async (res) => {
          await res.arrayBuffer().catch(() => undefined);
          this.deliveries.push({ webhookId: hook.id, event, status: res.status, at: Date.now() });
        })
        .catch(() => this.deliveries.push({ webhookId: hook.id, event, status: 0, at: Date.now() }))
        .finally(() => this.inFlight.delete(p));
      this.inFlight.add(p);
    }
  }

  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private payload(s: { content?: FakeContent; attachment?: FakeAttachment; space?: FakeSpace }): Record<string, unknown> {
    const content = (c: FakeContent) => ({
      id: Number(c.id) || c.id, spaceKey: this.spaceKeyOf(c.spaceId), title: c.title, version: c.version,
      contentType: c.type, creationDate: c.createdAt.getTime(), modificationDate: c.modifiedAt.getTime(),
    });
    if (s.attachment) {
      const container = this.containerOf(s.attachment.containerId);
      return { attachment: { id: s.attachment.id, title: s.attachment.title, version: s.attachment.version, container: container ? content(container) : null } };
    }
    if (s.content) return { [s.content.type === 'blogpost' ? 'blog' : 'page']: content(s.content) };
    if (s.space) return { space: { key: s.space.key } };
    return {};
  }
}
