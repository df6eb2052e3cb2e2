import { randomBytes, randomUUID } from 'node:crypto';

/**
 * Microsoft Graph change-notification subscriptions, as documented for driveItems:
 *
 * - `POST /subscriptions` {changeType, notificationUrl, lifecycleNotificationUrl?, resource,
 *   expirationDateTime, clientState?} → 201 with the subscription. Before answering, Graph
 *   validates each URL: it POSTs `?validationToken=<token>` (text/plain) and needs 200 with the
 *   token as the plain-text body within 10 seconds, or the creation fails with 400.
 * - driveItem subscriptions: only on a drive's root (`/drives/{id}/root`, or `me/drive/root`),
 *   only changeType `updated`, at most 42,300 minutes.
 * - `PATCH /subscriptions/{id}` {expirationDateTime} renews; `DELETE` removes (204); `GET` lists.
 * - After a change anywhere in the drive, Graph POSTs `{value: [changeNotification]}` to the
 *   notificationUrl with subscriptionId, clientState, changeType `updated`, resource,
 *   subscriptionExpirationDateTime and tenantId — nothing about what changed. Expired
 *   subscriptions are dropped and notify nobody.
 * - Lifecycle notifications (`reauthorizationRequired`, `subscriptionRemoved`, `missed`) go to the
 *   lifecycleNotificationUrl (the notificationUrl when none was given) with `lifecycleEvent`.
 */
export interface FakeSubscription {
  id: string;
  resource: string;
  driveId: string;
  changeType: string;
  notificationUrl: string;
  lifecycleNotificationUrl: string | null;
  clientState: string | null;
  expirationDateTime: Date;
  applicationId: string;
}

export interface Delivery {
  subscriptionId: string;
  url: string;
  kind: 'validation' | 'change' | 'lifecycle';
  status: number;
  at: number;
  body: unknown;
}

type Answer = { status: number; body?: unknown };

export const MAX_DRIVE_SUBSCRIPTION_MINUTES = 42_300;

export class FakeGraphSubscriptions {
  readonly subscriptions = new Map<string, FakeSubscription>();
  readonly deliveries: Delivery[] = [];
  /** false: changes are not posted (a delivery outage); Graph would later send `missed`. */
  delivering = true;
  /** Delay before a change is posted (Graph batches; real delivery takes seconds). */
  delayMs = 0;
  private readonly pendingDrives = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(private readonly tenantId: string, private readonly clientId: string, private readonly hasDrive: (id: string) => boolean) {}

  /** Routes /subscriptions[/{id}]; null when the path is not a subscriptions path. */
  async handle(method: string, path: string, body: string): Promise<Answer | null> {
    const m = /^\/subscriptions(?:\/([^/]+))?\/?$/.exec(path);
    if (!m) return null;
    const id = m[1] ? decodeURIComponent(m[1]) : undefined;
    if (!id && method === 'GET') return { status: 200, body: { value: [...this.live()].map((s) => this.render(s)) } };
    if (!id && method === 'POST') return this.create(body);
    const sub = id ? this.subscriptions.get(id) : undefined;
    if (!sub || sub.expirationDateTime.getTime() <= Date.now()) {
      if (sub) this.subscriptions.delete(sub.id);
      return error(404, 'ResourceNotFound', `The object was not found.`);
    }
    if (method === 'GET') return { status: 200, body: this.render(sub) };
    if (method === 'DELETE') {
      this.subscriptions.delete(sub.id);
      return { status: 204 };
    }
    if (method === 'PATCH') {
      const patch = parse(body);
      const exp = parseExpiry(patch?.expirationDateTime);
      if (!exp) return error(400, 'InvalidRequest', 'expirationDateTime is required');
      if (exp.getTime() > Date.now() + MAX_DRIVE_SUBSCRIPTION_MINUTES * 60_000) return error(400, 'InvalidRequest', 'Subscription expiration can only be 42300 minutes in the future.');
      sub.expirationDateTime = exp;
      return { status: 200, body: this.render(sub) };
    }
    return error(405, 'BadRequest', 'method not allowed');
  }

  private async create(body: string): Promise<Answer> {
    const b = parse(body);
    if (!b) return error(400, 'BadRequest', 'Unable to read JSON request payload.');
    const resource = String(b.resource ?? '').replace(/^\//, '');
    const drive = /^drives\/([^/]+)\/root$/.exec(resource);
    if (!drive) return error(400, 'InvalidRequest', `Resource '${b.resource}' is not supported: driveItem subscriptions are on a drive's root.`);
    const driveId = decodeURIComponent(drive[1]!);
    if (!this.hasDrive(driveId)) return error(404, 'itemNotFound', 'The resource could not be found.');
    if (b.changeType !== 'updated') return error(400, 'InvalidRequest', `changeType '${b.changeType}' is not supported for driveItem: only 'updated'.`);
    const exp = parseExpiry(b.expirationDateTime);
    if (!exp || exp.getTime() <= Date.now()) return error(400, 'InvalidRequest', 'expirationDateTime must be in the future');
    if (exp.getTime() > Date.now() + MAX_DRIVE_SUBSCRIPTION_MINUTES * 60_000) return error(400, 'InvalidRequest', 'Subscription expiration can only be 42300 minutes in the future.');
    if (typeof b.clientState === 'string' && b.clientState.length > 128) return error(400, 'InvalidRequest', 'clientState is limited to 128 characters.');
    const urls = [b.notificationUrl, b.lifecycleNotificationUrl].filter((u) => u !== undefined && u !== null);
    for (const u of urls) {
      if (typeof u !== 'string' || !/^https?:\/\//.test(u)) return error(400, 'InvalidRequest', 'notificationUrl must be an absolute URL');
      const ok = await this.validate(String(u));
      if (!ok) return error(400, 'InvalidRequest', 'Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.');
    }
    const sub: FakeSubscription = {
      id: randomUUID(), resource, driveId, changeType: 'updated', notificationUrl: String(b.notificationUrl),
      lifecycleNotificationUrl: typeof b.lifecycleNotificationUrl === 'string' ? b.lifecycleNotificationUrl : null,
      clientState: typeof b.clientState === 'string' ? b.clientState : null, expirationDateTime: exp, applicationId: this.clientId,
    };
    this.subscriptions.set(sub.id, sub);
    return { status: 201, body: this.render(sub) };
  }

  /** The validation handshake: the token must come back as the plain-text body within 10 s. */
  private async validate(url: string): Promise<boolean> {
    const token = `Validation: ${randomBytes(12).toString('hex')}`;
    const target = `${url}${url.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`;
    try {
      const res = await fetch(target, { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '', signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      this.deliveries.push({ subscriptionId: '', url, kind: 'validation', status: res.status, at: Date.now(), body: token });
      return res.status === 200 && text === token && /^text\/plain/.test(res.headers.get('content-type') ?? '');
    } catch {
      return false;
    }
  }

  /** Called by the tenant after any change to a drive's items; coalesced per drive. */
  driveChanged(driveId: string): void {
    if (!this.subscriptions.size) return;
    this.pendingDrives.add(driveId);
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      const drives = [...this.pendingDrives];
      this.pendingDrives.clear();
      if (this.delivering) for (const d of drives) for (const s of this.live()) if (s.driveId === d) this.post(s, 'change');
    }, this.delayMs);
  }

  /** Sends a lifecycle notification; `subscriptionRemoved` also deletes the subscription. */
  lifecycle(id: string, event: 'reauthorizationRequired' | 'subscriptionRemoved' | 'missed'): void {
    const sub = this.subscriptions.get(id);
    if (!sub) throw new Error(`no subscription ${id}`);
    this.post(sub, 'lifecycle', event);
    if (event === 'subscriptionRemoved') this.subscriptions.delete(id);
  }

  /** Makes the subscription expire now (Graph drops it: no more notifications). */
  expire(id: string): void {
    const sub = this.subscriptions.get(id);
    if (sub) sub.expirationDateTime = new Date(Date.now() - 1);
  }

  /** Resolves once every posted notification has been answered. */
  async settled(): Promise<void> {
    while (this.timer || this.inFlight.size) {
      await Promise.allSettled([...this.inFlight]);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  *live(): Iterable<FakeSubscription> {
    for (const s of this.subscriptions.values()) {
      if (s.expirationDateTime.getTime() > Date.now()) yield s;
    }
  }

  private post(sub: FakeSubscription, kind: 'change' | 'lifecycle', event?: string) {
    const url = kind === 'lifecycle' ? sub.lifecycleNotificationUrl ?? sub.notificationUrl : sub.notificationUrl;
    const body = {
      value: [{
        subscriptionId: sub.id,
        subscriptionExpirationDateTime: sub.expirationDateTime.toISOString(),
        tenantId: this.tenantId,
        clientState: sub.clientState,
        ...(kind === 'lifecycle' ? { lifecycleEvent: event } : { changeType: 'updated' }),
        resource: sub.resource,
        resourceData: { '@odata.type': '#Microsoft.Graph.DriveItem', '@odata.id': sub.resource },
      }],
    };
    const p = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(30_000) })
      .then(async (res) => {
        await res.arrayBuffer().catch(() => undefined);
        this.deliveries.push({ subscriptionId: sub.id, url, kind, status: res.status, at: Date.now(), body });
      })
      .catch(() => this.deliveries.push({ subscriptionId: sub.id, url, kind, status: 0, at: Date.now(), body }))
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  private render(s: FakeSubscription) {
    return {
      id: s.id, resource: s.resource, applicationId: s.applicationId, changeType: s.changeType, clientState: s.clientState,
      notificationUrl: s.notificationUrl, lifecycleNotificationUrl: s.lifecycleNotificationUrl,
      expirationDateTime: s.expirationDateTime.toISOString(), creatorId: null, latestSupportedTlsVersion: 'v1_2',
      notificationQueryOptions: null, encryptionCertificate: null, encryptionCertificateId: null, includeResourceData: null, notificationUrlAppId: null,
    };
  }
}

function parse(body: string): Record<string, any> | null {
  try {
    const v = JSON.parse(body);
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

function parseExpiry(v: unknown): Date | null {
  if (typeof v !== 'string') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function error(status: number, code: string, message: string): Answer {
  return { status, body: { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomUUID() } } } };
}
