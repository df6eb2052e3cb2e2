import { randomBytes } from 'node:crypto';

/**
 * Drive push notifications (`changes.watch`, `channels.stop`), as documented:
 * - `POST /drive/v3/changes/watch?pageToken=…[&driveId=…]` with a channel
 *   {id, type: 'web_hook', address, token?, expiration? (ms)} → {kind: 'api#channel', id,
 *   resourceId, resourceUri, token, expiration}. Changes channels last at most one week (a later
 *   expiration is cut to it); without one, an hour.
 * - Right after, a `sync` message; then one `change` message (changes carry no body) after each
 *   change the watching user's changes feed would show. Headers: X-Goog-Channel-ID,
 *   X-Goog-Channel-Token, X-Goog-Channel-Expiration, X-Goog-Resource-ID, X-Goog-Resource-URI,
 *   X-Goog-Resource-State, X-Goog-Message-Number.
 * - `POST /drive/v3/channels/stop` {id, resourceId} by the user who opened it → 204; unknown → 404.
 * - Expired channels stop delivering; Drive sends nothing about it.
 */
export interface FakeChannel {
  id: string;
  resourceId: string;
  resourceUri: string;
  address: string;
  token: string | null;
  expiration: number;
  user: string;
  driveId: string | null;
  messageNumber: number;
}

export interface ChannelDelivery {
  channelId: string;
  state: string;
  status: number;
  at: number;
}

const WEEK_MS = 7 * 86_400_000;
const HOUR_MS = 3_600_000;

export class FakeDriveChannels {
  readonly channels = new Map<string, FakeChannel>();
  readonly deliveries: ChannelDelivery[] = [];
  delivering = true;
  private readonly inFlight = new Set<Promise<unknown>>();

  watch(user: string, q: URLSearchParams, body: string, validToken: (t: string) => boolean): { status: number; body: unknown } {
    let b: Record<string, any>;
    try {
      b = JSON.parse(body);
    } catch {
      return bad('parseError', 'Parse Error');
    }
    const pageToken = q.get('pageToken');
    if (!pageToken || !validToken(pageToken)) return bad('invalid', 'Invalid Value', 'pageToken');
    if (typeof b?.id !== 'string' || !b.id) return bad('required', 'Required', 'resource.id');
    if (b.type !== 'web_hook' && b.type !== 'webhook') return bad('invalid', 'Invalid value for type', 'resource.type');
    if (typeof b.address !== 'string' || !/^https?:\/\//.test(b.address)) return bad('push.webhookUrlUnauthorized', 'Unauthorized WebHook callback channel', 'resource.address');
    if (this.channels.has(b.id)) return bad('channelIdNotUnique', 'Channel id not unique', 'resource.id');
    const now = Date.now();
    const asked = b.expiration !== undefined ? Number(b.expiration) : now + HOUR_MS;
    const driveId = q.get('driveId');
    const ch: FakeChannel = {
      id: b.id, resourceId: randomBytes(12).toString('base64url'), address: b.address, token: typeof b.token === 'string' ? b.token : null,
      expiration: Math.min(Number.isFinite(asked) ? asked : now + HOUR_MS, now + WEEK_MS), user, driveId, messageNumber: 0,
      resourceUri: `https://www.googleapis.com/drive/v3/changes?alt=json&pageToken=${encodeURIComponent(pageToken)}${driveId ? `&driveId=${driveId}` : ''}`,
    };
    this.channels.set(ch.id, ch);
    setImmediate(() => this.post(ch, 'sync'));
    return { status: 200, body: { kind: 'api#channel', id: ch.id, resourceId: ch.resourceId, resourceUri: ch.resourceUri, token: ch.token ?? undefined, expiration: String(ch.expiration) } };
  }

  stop(user: string, body: string): { status: number; body?: unknown } {
    let b: Record<string, any> = {};
    try {
      b = JSON.parse(body);
    } catch { /* empty */ }
    const ch = this.channels.get(String(b?.id));
    if (!ch || ch.resourceId !== b?.resourceId || ch.user !== user) return { status: 404, body: { error: { code: 404, message: `Channel '${b?.id}' not found for project`, errors: [{ reason: 'notFound' }] } } };
    this.channels.delete(ch.id);
    return { status: 204 };
  }

  /** A change the `affects(user, driveId)` test says the channel's feed shows. */
  changed(affects: (user: string, driveId: string | null) => boolean): void {
    if (!this.delivering) return;
    for (const ch of this.channels.values()) {
      if (ch.expiration <= Date.now()) continue;
      if (affects(ch.user, ch.driveId)) this.post(ch, 'change');
    }
  }

  expire(id: string): void {
    const ch = this.channels.get(id);
    if (ch) ch.expiration = Date.now() - 1;
  }

  live(): FakeChannel[] {
    return [...this.channels.values()].filter((c) => c.expiration > Date.now());
  }

  async settled(): Promise<void> {
    while (this.inFlight.size) await Promise.allSettled([...this.inFlight]);
  }

  private post(ch: FakeChannel, state: 'sync' | 'change') {
    ch.messageNumber++;
    const headers: Record<string, string> = {
      'x-goog-channel-id': ch.id,
      'x-goog-channel-expiration': new Date(ch.expiration).toUTCString(),
      'x-goog-resource-id': ch.resourceId,
      'x-goog-resource-uri': ch.resourceUri,
      'x-goog-resource-state': state,
      'x-goog-message-number': String(ch.messageNumber),
      ...(ch.token !== null ? { 'x-goog-channel-token': ch.token } : {}),
    };
    const p = fetch(ch.address, { method: 'POST', headers, signal: AbortSignal.timeout(30_000) })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        this.deliveries.push({ channelId: ch.id, state, status: res.status, at: Date.now() });
      })
      .catch(() => this.deliveries.push({ channelId: ch.id, state, status: 0, at: Date.now() }))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }
}

function bad(reason: string, message: string, location?: string) {
  return { status: 400, body: { error: { code: 400, message, errors: [{ domain: 'global', reason, message, ...(location ? { location, locationType: 'parameter' } : {}) }] } } };
}
