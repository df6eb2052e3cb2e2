import { X509Certificate, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { rng } from '../../../src/bench/corpus.ts';
import { FakeTenant, type FakeItem, type FakeUser, type StoredPermission } from './model.ts';
import { odataFormat, restError, siteForPath, siteRest } from './sharepoint.ts';
import { fakeServerTls, makeAppCertificate, trustFakeTenantCa, type AppCertificateFixture } from './tls.ts';
import { FakeGraphSubscriptions } from './subscriptions.ts';
import { judgeTokenRequest } from './token.ts';

/**
 * A fake Microsoft tenant on 127.0.0.1, over HTTPS with a test-time CA this process trusts:
 * Microsoft Graph (v1.0) and the Entra token endpoint at `url` (use it as both `graphBaseUrl` and
 * `authorityHost`), and SharePoint (sites' web URLs and their REST API) at `sharepointUrl`.
 * Built from the documented request/response shapes.
 *
 * Faithful where it matters to a sync client: delta paging with @odata.nextLink/@odata.deltaLink,
 * delta items without parentReference.path or cTag (as documented for business drives), ancestors
 * of changed items re-reported, descendants of renamed/re-permissioned folders NOT reported,
 * deletions with the `deleted` facet, 410 for expired tokens, effective permissions per item,
 * 302 content redirects to a pre-authenticated URL, transitive group members and owners, bearer
 * validation on every call (a token is good for the one resource it was issued for), client
 * secrets and certificate client assertions at the token endpoint, SharePoint site groups over
 * REST (paged, three OData flavours; app-only tokens obtained with a secret are refused, as
 * SharePoint Online does), and injectable throttling on every API.
 */

export interface FakeGraphOptions {
  tenantId?: string;
  clientId?: string;
  /** null: the app has no client secret (certificate only). */
  clientSecret?: string | null;
  /** Items per page for delta, children and member listings (small, to exercise paging). */
  pageSize?: number;
  tokenLifetimeSeconds?: number;
  /** Delay added to every Graph call, so concurrency becomes observable. */
  latencyMs?: number;
}

export interface RequestLogEntry {
  method: string;
  /** pathname + search */
  path: string;
  kind: 'token' | 'graph' | 'download' | 'sharepoint';
  status: number;
  startedAt: number;
  endedAt: number;
  authorization: boolean;
  prefer: string | null;
  /** Token requests: how the app authenticated and the resource asked for (set when granted). */
  token?: { credential: 'secret' | 'certificate'; resource: string };
  /** Set when chaos made this request misbehave. */
  fault?: FaultKind;
}

interface Injected {
  match: RegExp;
  status: number;
  code: string;
  message: string;
  retryAfter: number | null;
  remaining: number;
  /** Applies to the token endpoint instead of the APIs. */
  token?: boolean;
}

/** What a misbehaving upstream does to one request (see FakeGraph.chaos). */
export type FaultKind = '429' | '500' | '503' | 'reset' | 'stall' | 'truncate';

export interface ChaosOptions {
  /** Share of requests that misbehave, 0..1. */
  rate: number;
  /** The same seed gives the same sequence of decisions. */
  seed: number;
  kinds?: FaultKind[];
  /** How long a stalled request hangs before its connection is dropped (set above the client's timeout). */
  stallMs?: number;
  /** Retry-After on 429s (and on half the 503s). */
  retryAfterSeconds?: number;
  /** Whether the token endpoint misbehaves too (default true). */
  token?: boolean;
}

interface DeltaSession {
  driveId: string;
  items: unknown[];
  endSeq: number;
  epoch: number;
}

interface IssuedToken {
  exp: number;
  resource: string;
  credential: 'secret' | 'certificate';
}

export class FakeGraph extends FakeTenant {
  readonly tenantId: string;
  readonly clientId: string;
  clientSecret: string | null;
  /** Certificates registered on the app registration (certificate credentials). */
  readonly certificates: X509Certificate[] = [];
  pageSize: number;
  latencyMs: number;
  tokenLifetimeSeconds: number;
  readonly requests: RequestLogEntry[] = [];
  inFlight = 0;
  maxInFlight = 0;
  /** Graph and the token endpoint. */
  url = '';
  /** SharePoint: sites' web URLs and REST API. */
  sharepointUrl = '';
  private servers: Server[] = [];
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly downloads = new Map<string, { content: Buffer; mimeType: string }>();
  private readonly sessions = new Map<string, DeltaSession>();
  private injected: Injected[] = [];
  private chaosOpts: (ChaosOptions & { random: () => number }) | null = null;
  /** Change-notification subscriptions (POST/PATCH/DELETE /subscriptions) and their deliveries. */
  readonly notifications: FakeGraphSubscriptions;

  constructor(opts: FakeGraphOptions = {}) {
    super();
    this.notifications = new FakeGraphSubscriptions(
      opts.tenantId ?? '11111111-2222-3333-4444-555555555555', opts.clientId ?? 'fake-client-id', (id) => this.drives.has(id));
    this.tenantId = opts.tenantId ?? '11111111-2222-3333-4444-555555555555';
    this.clientId = opts.clientId ?? 'fake-client-id';
    this.clientSecret = opts.clientSecret === undefined ? 'fake-client-secret' : opts.clientSecret;
    this.pageSize = opts.pageSize ?? 3;
    this.latencyMs = opts.latencyMs ?? 0;
    this.tokenLifetimeSeconds = opts.tokenLifetimeSeconds ?? 3600;
  }

  async listen(): Promise<this> {
    const tls = await fakeServerTls();
    await trustFakeTenantCa();
    const start = async (api: 'graph' | 'sharepoint') => {
      const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
        this.handle(req, res, api).catch((err) => {
          if (!res.headersSent) this.json(res, 500, { error: { code: 'generalException', message: String(err) } });
          else res.destroy();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.servers.push(server);
      return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    this.url = await start('graph');
    this.sharepointUrl = await start('sharepoint');
    this.sharepointHost = new URL(this.sharepointUrl).host;
    return this;
  }

  async close(): Promise<void> {
    const servers = this.servers.splice(0);
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }

  get tokenEndpoint(): string {
    return `${this.url}/${this.tenantId}/oauth2/v2.0/token`;
  }

  /**
   * Connector config + credentials pointing at this fake: the app's client secret, or with
   * `certificate` that certificate (register it first: addCertificate()).
   */
  sourceConfig(extra: Record<string, unknown> = {}, opts: { certificate?: AppCertificateFixture } = {}): { config: Record<string, unknown>; credentials: Record<string, unknown> } {
    return {
      config: { tenantId: this.tenantId, graphBaseUrl: this.url, authorityHost: this.url, ...extra },
      credentials: opts.certificate
        ? { clientId: this.clientId, certificate: { ...opts.certificate } }
        : { clientId: this.clientId, clientSecret: this.clientSecret },
    };
  }

  /** Generates a certificate and registers it on the app, as an admin uploads one. */
  async addCertificate(subject?: string): Promise<AppCertificateFixture> {
    const fixture = await makeAppCertificate(subject);
    this.registerCertificate(fixture.certificatePem);
    return fixture;
  }

  registerCertificate(certificatePem: string): void {
    this.certificates.push(new X509Certificate(certificatePem));
  }

  removeCertificates(): void {
    this.certificates.length = 0;
  }

  // ---- test controls --------------------------------------------------------------------------

  /**
   * The next `n` API calls answer `status` with `Retry-After: retryAfterSeconds` (null: no
   * header). `match` is tried on the Graph path after /v1.0 and on SharePoint paths (`/sites/…/_api/…`).
   */
  throttleNext(n: number, status: 429 | 503 = 429, retryAfterSeconds: number | null = 1, match: RegExp = /./): void {
    this.injected.push({
      match, status, remaining: n, retryAfter: retryAfterSeconds,
      code: status === 429 ? 'TooManyRequests' : 'serviceNotAvailable',
      message: status === 429 ? 'Too many requests' : 'Service unavailable',
    });
  }

  /** Calls whose path matches answer `status` (for `times` calls, default: until cleared). */
  failRequests(match: RegExp, status: number, opts: { code?: string; message?: string; times?: number } = {}): void {
    this.injected.push({
      match, status, retryAfter: null, remaining: opts.times ?? Number.POSITIVE_INFINITY,
      code: opts.code ?? (status === 403 ? 'accessDenied' : status === 404 ? 'itemNotFound' : 'generalException'),
      message: opts.message ?? `injected ${status}`,
    });
  }

  /** The next `n` token requests answer `status` (Entra's `temporarily_unavailable`), with Retry-After. */
  throttleTokenEndpoint(n: number, status: 429 | 503 = 503, retryAfterSeconds: number | null = 1): void {
    this.injected.push({ match: /./, status, remaining: n, retryAfter: retryAfterSeconds, code: 'temporarily_unavailable', message: 'The service is temporarily unavailable.', token: true });
  }

  clearFailures(): void {
    this.injected = [];
  }

  /**
   * From now on a share of all requests (Graph, downloads, SharePoint REST, and the token endpoint
   * unless `token: false`) misbehave the way real upstreams do: 429 with Retry-After, 500, 503,
   * the connection reset before any answer, a stall past the client's timeout, or a body cut off
   * halfway (the connection drops after the headers promised more). `null` stops it.
   */
  chaos(opts: ChaosOptions | null): void {
    this.chaosOpts = opts && { ...opts, random: rng(opts.seed) };
  }

  /** Requests chaos made misbehave, by kind. */
  faultCounts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.requests) if (r.fault) out[r.fault] = (out[r.fault] ?? 0) + 1;
    return out;
  }

  private pickFault(kind: RequestLogEntry['kind']): FaultKind | null {
    const c = this.chaosOpts;
    if (!c || (kind === 'token' && c.token === false)) return null;
    if (c.random() >= c.rate) return null;
    const kinds = c.kinds ?? ['429', '500', '503', 'reset', 'stall', 'truncate'];
    return kinds[Math.floor(c.random() * kinds.length)]!;
  }

  /** Answers (or fails to answer) a request chaos picked; false for 'truncate', which lets the real answer start. */
  private async misbehave(fault: FaultKind, req: IncomingMessage, res: ServerResponse, kind: RequestLogEntry['kind']): Promise<boolean> {
    const retryAfter = String(this.chaosOpts?.retryAfterSeconds ?? 1);
    const fail = (status: number, code: string, message: string) => {
      if (kind === 'token') return this.json(res, status, { error: 'temporarily_unavailable', error_description: `AADSTS90033: ${message}`, error_codes: [90033] });
      if (kind === 'sharepoint') {
        const a = restError(odataFormat(req.headers.accept), status, '-1, Microsoft.SharePoint.Client.ServerException', message);
        return this.json(res, a.status, a.body);
      }
      return this.graphError(res, status, code, message);
    };
    switch (fault) {
      case '429':
        res.setHeader('retry-after', retryAfter);
        fail(429, 'TooManyRequests', 'Too many requests');
        return true;
      case '500':
        fail(500, 'generalException', 'An unspecified error has occurred.');
        return true;
      case '503':
        if (this.chaosOpts!.random() < 0.5) res.setHeader('retry-after', retryAfter);
        fail(503, 'serviceNotAvailable', 'Service unavailable');
        return true;
      case 'reset':
        req.socket.destroy();
        return true;
      case 'stall':
        await sleep(this.chaosOpts?.stallMs ?? 5000);
        req.socket.destroy();
        return true;
      case 'truncate': {
        const end = res.end.bind(res);
        res.end = ((chunk?: unknown) => {
          const body = chunk === undefined || typeof chunk === 'function' ? Buffer.alloc(0) : Buffer.from(chunk as string | Uint8Array);
          if (!res.headersSent && !res.hasHeader('content-length')) res.setHeader('content-length', body.length);
          if (body.length < 2) return end(chunk as string);
          res.write(body.subarray(0, body.length >> 1));
          setImmediate(() => req.socket.destroy());
          return res;
        }) as typeof res.end;
        return false;
      }
    }
  }

  protected override driveChanged(driveId: string): void {
    // Called from the tenant's constructor path too, before the notifier exists.
    this.notifications?.driveChanged(driveId);
  }

  /** Every issued access token becomes invalid (Graph answers 401 until a new one is fetched). */
  expireAccessTokens(): void {
    this.tokens.clear();
  }

  resetLog(): void {
    this.requests.length = 0;
    this.maxInFlight = this.inFlight;
  }

  tokenRequests(): RequestLogEntry[] {
    return this.requests.filter((r) => r.kind === 'token');
  }

  graphRequests(match?: RegExp): RequestLogEntry[] {
    return this.requests.filter((r) => r.kind === 'graph' && (!match || match.test(r.path)));
  }

  sharepointRequests(match?: RegExp): RequestLogEntry[] {
    return this.requests.filter((r) => r.kind === 'sharepoint' && (!match || match.test(r.path)));
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse, api: 'graph' | 'sharepoint'): Promise<void> {
    const url = new URL(req.url ?? '/', api === 'graph' ? this.url : this.sharepointUrl);
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET', path: url.pathname + url.search, kind: api, status: 0,
      startedAt: Date.now(), endedAt: 0, authorization: !!req.headers.authorization, prefer: (req.headers.prefer as string | undefined) ?? null,
    };
    this.requests.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
      entry.endedAt = Date.now();
    });

    const isToken = api === 'graph' && /^\/[^/]+\/oauth2\/v2\.0\/token$/.test(url.pathname);
    const kind = isToken ? 'token' : api === 'graph' && url.pathname.startsWith('/download/') ? 'download' : api;
    const fault = this.pickFault(kind);
    if (fault) {
      entry.fault = fault;
      if (await this.misbehave(fault, req, res, kind)) return;
    }

    if (isToken) {
      entry.kind = 'token';
      return this.token(req, res, decodeURIComponent(url.pathname.split('/')[1]!), entry);
    }

    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    if (this.latencyMs) await sleep(this.latencyMs);
    if (api === 'sharepoint') return this.sharepoint(req, res, url);

    if (url.pathname.startsWith('/download/')) {
      entry.kind = 'download';
      const d = this.downloads.get(url.pathname.slice('/download/'.length));
      if (!d) return this.json(res, 404, { error: { code: 'itemNotFound', message: 'download URL expired' } });
      res.writeHead(200, { 'content-type': d.mimeType, 'content-length': d.content.length });
      res.end(d.content);
      return;
    }

    if (!url.pathname.startsWith('/v1.0/')) return this.graphError(res, 400, 'BadRequest', `Invalid version: ${url.pathname}`);
    const token = this.bearer(req, this.url);
    if (!token) {
      res.setHeader('www-authenticate', 'Bearer realm="", error="invalid_token"');
      return this.graphError(res, 401, 'InvalidAuthenticationToken', req.headers.authorization ? 'Access token has expired or is not yet valid.' : 'Access token is empty.');
    }
    const path = url.pathname.slice('/v1.0'.length);
    const inj = this.injection(path + url.search);
    if (inj) {
      if (inj.retryAfter !== null) res.setHeader('retry-after', String(inj.retryAfter));
      return this.graphError(res, inj.status, inj.code, inj.message);
    }
    if (path.startsWith('/subscriptions')) {
      const answer = await this.notifications.handle(req.method ?? 'GET', path, await readBody(req));
      if (answer) {
        if (answer.status === 204) {
          res.writeHead(204);
          res.end();
          return;
        }
        return this.json(res, answer.status, answer.body);
      }
    }
    if (req.method !== 'GET') return this.graphError(res, 405, 'BadRequest', 'Only GET is implemented by the fake');
    return this.route(url, path, res);
  }

  /** A live token issued for this resource, or null. */
  private bearer(req: IncomingMessage, resource: string): IssuedToken | null {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const issued = token ? this.tokens.get(token) : undefined;
    return issued && issued.exp >= Date.now() && issued.resource === resource ? issued : null;
  }

  private injection(path: string, token = false): Injected | undefined {
    const inj = this.injected.find((i) => i.remaining > 0 && !!i.token === token && i.match.test(path));
    if (inj) inj.remaining--;
    return inj;
  }

  private sharepoint(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const format = odataFormat(req.headers.accept);
    const answer = (a: { status: number; body: unknown }) => this.json(res, a.status, a.body);
    const token = this.bearer(req, this.sharepointUrl);
    if (!token) {
      res.setHeader('www-authenticate', `Bearer realm="${this.tenantId}",client_id="00000003-0000-0ff1-ce00-000000000000"`);
      return answer({ status: 401, body: { error_description: 'Invalid issuer or signature.' } });
    }
    // SharePoint Online accepts app-only Entra tokens only when the app proved itself with a certificate.
    if (token.credential !== 'certificate') return answer({ status: 401, body: { error_description: 'Unsupported app only token.' } });
    const inj = this.injection(url.pathname + url.search);
    if (inj) {
      if (inj.retryAfter !== null) res.setHeader('retry-after', String(inj.retryAfter));
      return answer(restError(format, inj.status, inj.status === 429 ? '-2147024860, Microsoft.SharePoint.SPQueryThrottledException' : '-1, Microsoft.SharePoint.Client.ServerException', inj.message));
    }
    if (req.method !== 'GET') return answer(restError(format, 405, '-1, System.NotSupportedException', 'Only GET is implemented by the fake'));
    const found = siteForPath(this, this.sharepointUrl, url.pathname);
    if (!found) return answer(restError(format, 404, '-2147024894, System.IO.FileNotFoundException', 'File Not Found.'));
    return answer(siteRest(this, found.site, found.api, url, format, this.pageSize));
  }

  private async token(req: IncomingMessage, res: ServerResponse, tenant: string, entry: RequestLogEntry): Promise<void> {
    const body = new URLSearchParams(await readBody(req));
    const aad = (status: number, error: string, description: string) =>
      this.json(res, status, { error, error_description: `${description}\r\nTrace ID: ${randomBytes(8).toString('hex')}\r\nTimestamp: ${new Date().toISOString()}`, error_codes: [Number(/AADSTS(\d+)/.exec(description)?.[1] ?? 0)] });
    if (req.method !== 'POST') return aad(405, 'invalid_request', 'AADSTS900561: The endpoint only accepts POST requests.');
    const inj = this.injection(`/${tenant}/oauth2/v2.0/token`, true);
    if (inj) {
      if (inj.retryAfter !== null) res.setHeader('retry-after', String(inj.retryAfter));
      return aad(inj.status, inj.status === 429 || inj.status >= 500 ? 'temporarily_unavailable' : 'invalid_request', `AADSTS90033: ${inj.message}`);
    }
    const decision = await judgeTokenRequest({
      tenantId: this.tenantId, clientId: this.clientId, clientSecret: this.clientSecret, certificates: this.certificates,
      tokenEndpoint: this.tokenEndpoint, resources: [this.url, this.sharepointUrl],
    }, tenant, body);
    if (!decision.ok) return aad(decision.status, decision.error, decision.description);
    entry.token = { credential: decision.credential, resource: decision.resource };
    const token = `fake.${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { exp: Date.now() + this.tokenLifetimeSeconds * 1000, resource: decision.resource, credential: decision.credential });
    return this.json(res, 200, { token_type: 'Bearer', expires_in: this.tokenLifetimeSeconds, ext_expires_in: this.tokenLifetimeSeconds, access_token: token });
  }

  private route(url: URL, path: string, res: ServerResponse): void {
    const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
    const [a, b, c, d, e] = seg;
    if (a === 'sites' && b && seg.length === 2) {
      const site = this.sites.get(b);
      if (!site) return this.graphError(res, 404, 'itemNotFound', 'Requested site could not be found');
      return this.json(res, 200, {
        id: site.id, displayName: site.displayName, name: site.displayName, webUrl: site.webUrl,
        ...(selected(url, 'sharepointIds') ? { sharepointIds: { siteId: site.collectionId, siteUrl: site.webUrl, webId: site.webId } } : {}),
      });
    }
    if (a === 'sites' && b && c === 'drives' && seg.length === 3) {
      const site = this.sites.get(b);
      if (!site) return this.graphError(res, 404, 'itemNotFound', 'Requested site could not be found');
      return this.json(res, 200, this.paged(url, site.driveIds.map((id) => this.driveJson(id))));
    }
    if (a === 'drives' && b) {
      const drive = this.drives.get(b);
      if (!drive) return this.graphError(res, 404, 'itemNotFound', 'The requested drive was not found');
      const site = this.mustSite(drive.siteId);
      const ids = { siteId: site.collectionId, siteUrl: site.webUrl, webId: site.webId };
      // Documented as returned only when selected (drives spell it sharePointIds, items sharepointIds).
      if (seg.length === 2) return this.json(res, 200, { ...this.driveJson(b), ...(selected(url, 'sharePointIds') ? { sharePointIds: ids } : {}) });
      if (c === 'root' && d === 'delta' && seg.length === 4) return this.delta(url, drive.id, res);
      if (c === 'root' && seg.length === 3) {
        return this.json(res, 200, { ...this.itemJson(this.mustItem(drive.rootId), false), ...(selected(url, 'sharepointIds') ? { sharepointIds: ids } : {}) });
      }
      if (c === 'items' && d) {
        const item = this.items.get(d);
        if (!item || item.deleted || item.driveId !== drive.id) return this.graphError(res, 404, 'itemNotFound', 'The resource could not be found.');
        if (seg.length === 4) return this.json(res, 200, this.itemJson(item, false));
        if (e === 'children' && seg.length === 5) return this.json(res, 200, this.paged(url, this.children(item.id).map((i) => this.itemJson(i, false))));
        if (e === 'permissions' && seg.length === 5) {
          return this.json(res, 200, { value: this.effective(item).map(({ perm, from }) => this.permissionJson(perm, from)) });
        }
        if (e === 'content' && seg.length === 5) {
          if (item.kind !== 'file') return this.graphError(res, 400, 'invalidRequest', 'Folders have no content');
          const key = randomBytes(16).toString('hex');
          this.downloads.set(key, { content: item.content, mimeType: item.mimeType });
          res.writeHead(302, { location: `${this.url}/download/${key}` });
          res.end();
          return;
        }
      }
    }
    if (a === 'users' && b && seg.length === 2) {
      const user = this.users.get(b) ?? [...this.users.values()].find((u) => u.userPrincipalName.toLowerCase() === b.toLowerCase());
      if (!user) return this.graphError(res, 404, 'Request_ResourceNotFound', `Resource '${b}' does not exist or one of its queried reference-property objects are not present.`);
      return this.json(res, 200, { id: user.id, mail: user.mail, userPrincipalName: user.userPrincipalName, displayName: user.displayName });
    }
    const userJson = (u: FakeUser) => ({ '@odata.type': '#microsoft.graph.user', id: u.id, mail: u.mail, userPrincipalName: u.userPrincipalName });
    if (a === 'groups' && b && c === 'transitiveMembers' && (seg.length === 3 || (seg.length === 4 && d === 'microsoft.graph.user'))) {
      if (!this.groups.has(b)) return this.graphError(res, 404, 'Request_ResourceNotFound', `Resource '${b}' does not exist or one of its queried reference-property objects are not present.`);
      const users = this.transitiveUsers(b).map(userJson);
      const groups = d ? [] : this.transitiveGroups(b).map((g) => ({
        '@odata.type': '#microsoft.graph.group', id: g.id, displayName: g.displayName, groupTypes: g.kind === 'unified' ? ['Unified'] : [],
      }));
      return this.json(res, 200, this.paged(url, [...groups, ...users]));
    }
    if (a === 'groups' && b && c === 'owners' && (seg.length === 3 || (seg.length === 4 && d === 'microsoft.graph.user'))) {
      const group = this.groups.get(b);
      if (!group) return this.graphError(res, 404, 'Request_ResourceNotFound', `Resource '${b}' does not exist or one of its queried reference-property objects are not present.`);
      const owners = [...group.owners].map((id) => this.users.get(id)).filter((u): u is FakeUser => !!u).map(userJson);
      return this.json(res, 200, this.paged(url, owners));
    }
    return this.graphError(res, 400, 'BadRequest', `Resource not found for the segment '${seg[seg.length - 1] ?? ''}'.`);
  }

  private delta(url: URL, driveId: string, res: ServerResponse): void {
    const skip = url.searchParams.get('$skiptoken');
    const tokenParam = url.searchParams.get('token');
    let session: DeltaSession;
    let offset = 0;
    if (skip) {
      const [sid, off] = skip.split('.');
      const s = this.sessions.get(sid ?? '');
      if (!s || s.driveId !== driveId) return this.graphError(res, 400, 'invalidRequest', 'Invalid skip token');
      if (s.epoch !== this.epoch) return this.resync(res, driveId);
      session = s;
      offset = Number(off) || 0;
    } else {
      let since: number | null = null;
      if (tokenParam === 'latest') {
        return this.json(res, 200, { value: [], '@odata.deltaLink': this.deltaLink(driveId, this.seq) });
      }
      if (tokenParam) {
        let parsed: { d?: string; s?: number; e?: number };
        try {
          parsed = JSON.parse(Buffer.from(tokenParam, 'base64url').toString('utf8')) as typeof parsed;
        } catch {
          return this.graphError(res, 400, 'invalidRequest', 'Provided sync token is malformed');
        }
        if (parsed.d !== driveId || typeof parsed.s !== 'number') return this.graphError(res, 400, 'invalidRequest', 'Provided sync token is malformed');
        if (parsed.e !== this.epoch) return this.resync(res, driveId);
        since = parsed.s;
      }
      const items = this.changedSince(driveId, since).map((i) => (i.deleted ? this.tombstone(i) : this.itemJson(i, true)));
      session = { driveId, items, endSeq: this.seq, epoch: this.epoch };
      const sid = randomBytes(6).toString('hex');
      this.sessions.set(sid, session);
      skipIds.set(session, sid);
    }
    const page = session.items.slice(offset, offset + this.pageSize);
    const nextOffset = offset + this.pageSize;
    const body: Record<string, unknown> = { '@odata.context': `${this.url}/v1.0/$metadata#Collection(driveItem)`, value: page };
    if (nextOffset < session.items.length) {
      body['@odata.nextLink'] = `${this.url}/v1.0/drives/${encodeURIComponent(driveId)}/root/delta?$skiptoken=${skipIds.get(session)}.${nextOffset}`;
    } else {
      body['@odata.deltaLink'] = this.deltaLink(driveId, session.endSeq);
    }
    return this.json(res, 200, body);
  }

  private deltaLink(driveId: string, seq: number): string {
    const token = Buffer.from(JSON.stringify({ d: driveId, s: seq, e: this.epoch })).toString('base64url');
    return `${this.url}/v1.0/drives/${encodeURIComponent(driveId)}/root/delta?token=${token}`;
  }

  private resync(res: ServerResponse, driveId: string): void {
    res.setHeader('location', `${this.url}/v1.0/drives/${encodeURIComponent(driveId)}/root/delta`);
    return this.graphError(res, 410, 'resyncChangesApplyDifferences',
      "Resync required. Replace any local items with the server's version (including deletes) if you're sure that the service was up to date with your local changes when you last sync'd. Upload any local changes that the server doesn't know about.");
  }

  // ---- JSON shapes ----------------------------------------------------------------------------

  private driveJson(id: string) {
    const drive = this.mustDrive(id);
    const site = this.sites.get(drive.siteId)!;
    return { id: drive.id, name: drive.name, driveType: 'documentLibrary', webUrl: `${site.webUrl}/${encodeURIComponent(drive.name)}` };
  }

  private identity(userId: string | null): Record<string, unknown> | undefined {
    const u = userId ? this.users.get(userId) : undefined;
    return u ? { user: { id: u.id, displayName: u.displayName, ...(u.mail ? { email: u.mail } : {}) } } : undefined;
  }

  itemJson(item: FakeItem, forDelta: boolean): Record<string, unknown> {
    const drive = this.mustDrive(item.driveId);
    const site = this.sites.get(drive.siteId)!;
    const parent = item.parentId ? this.mustItem(item.parentId) : null;
    const path = this.pathOf(item);
    const json: Record<string, unknown> = {
      id: item.id,
      name: item.name,
      eTag: `"{${item.id}},${item.metaVersion}"`,
      createdDateTime: item.createdAt.toISOString(),
      lastModifiedDateTime: item.modifiedAt.toISOString(),
      webUrl: `${site.webUrl}/${encodeURIComponent(drive.name)}${path.split('/').map(encodeURIComponent).join('/')}`,
      size: item.kind === 'file' ? item.content.length : this.descendants(item.id).reduce((n, i) => n + (i.kind === 'file' ? i.content.length : 0), 0),
      parentReference: {
        driveType: 'documentLibrary',
        driveId: drive.id,
        siteId: site.id,
        ...(parent ? { id: parent.id } : {}),
        // Documented: delta does not return parentReference.path ("track items by id").
        ...(parent && !forDelta ? { path: `/drives/${drive.id}/root:${this.pathOf(parent)}` } : {}),
      },
      createdBy: this.identity(item.createdBy),
      lastModifiedBy: this.identity(item.modifiedBy),
    };
    // Documented for OneDrive for Business / SharePoint: delta omits cTag on create/modify.
    if (!forDelta) json.cTag = `"c:{${item.id}},${item.contentVersion}"`;
    if (item.kind === 'file') json.file = { mimeType: item.mimeType, hashes: { quickXorHash: this.quickXorHash(item) } };
    else json.folder = { childCount: this.children(item.id).length };
    if (item.kind === 'root') json.root = {};
    if (forDelta && item.sharedChanged) json['@microsoft.graph.sharedChanged'] = 'True';
    return json;
  }

  private tombstone(item: FakeItem): Record<string, unknown> {
    // Documented: delete results omit name and cTag.
    return { id: item.id, deleted: { state: 'deleted' }, parentReference: { driveId: item.driveId, ...(item.parentId ? { id: item.parentId } : {}) } };
  }

  private userSet(u: FakeUser, withEmail: boolean): Record<string, unknown> {
    return {
      user: { id: u.id, displayName: u.displayName, ...(withEmail && u.mail ? { email: u.mail } : {}) },
      siteUser: { id: String(hashCode(u.id) % 1000), displayName: u.displayName, loginName: `i:0#.f|membership|${u.userPrincipalName.toLowerCase()}` },
    };
  }

  private principalSet(id: string, withEmail = true): Record<string, unknown> {
    const u = this.users.get(id);
    if (u) return this.userSet(u, withEmail);
    const g = this.groups.get(id);
    if (g) return { group: { id: g.id, displayName: g.displayName } };
    // A principal deleted from the directory: Graph still returns the id it remembers.
    return { user: { id, displayName: 'Former user' } };
  }

  permissionJson(perm: StoredPermission, from: FakeItem | null): Record<string, unknown> {
    const g = perm.grant;
    const inheritedFrom = from ? { inheritedFrom: { driveId: from.driveId, id: from.id, path: `/drives/${from.driveId}/root:${this.pathOf(from)}` } } : {};
    if ('raw' in g) return { id: perm.id, ...g.raw, ...inheritedFrom };
    const roles = g.roles ?? ('link' in g ? [g.link.type === 'edit' ? 'write' : 'read'] : ['read']);
    const base = { id: perm.id, roles, ...inheritedFrom };
    if ('user' in g) {
      const set = this.principalSet(g.user, g.withEmail !== false);
      return { ...base, grantedToV2: set, grantedTo: { user: set.user } };
    }
    if ('group' in g) {
      return { ...base, grantedToV2: this.principalSet(g.group) };
    }
    if ('siteUser' in g) return { ...base, grantedToV2: { siteUser: { id: String(hashCode(g.siteUser) % 1000), displayName: g.siteUser, loginName: g.siteUser } } };
    if ('siteGroup' in g) {
      return { ...base, grantedToV2: { siteGroup: { id: g.siteGroup.id, displayName: g.siteGroup.displayName, loginName: g.siteGroup.displayName } } };
    }
    const sets = (g.identities ?? []).map((id) => this.principalSet(id));
    return {
      ...base,
      link: { scope: g.link.scope, type: g.link.type ?? 'view', webUrl: `https://acme.sharepoint.test/:w:/s/x/${perm.id}`, preventsDownload: false },
      hasPassword: false,
      ...(sets.length ? { grantedToIdentitiesV2: sets } : {}),
    };
  }

  private paged(url: URL, list: unknown[]): Record<string, unknown> {
    const top = Number(url.searchParams.get('$top')) || this.pageSize;
    const size = Math.max(1, Math.min(top, this.pageSize));
    const offset = Number(url.searchParams.get('$skiptoken') ?? 0) || 0;
    const body: Record<string, unknown> = { value: list.slice(offset, offset + size) };
    if (offset + size < list.length) {
      const next = new URL(url.href);
      next.searchParams.set('$skiptoken', String(offset + size));
      body['@odata.nextLink'] = `${this.url}${next.pathname}${next.search}`;
    }
    return body;
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private graphError(res: ServerResponse, status: number, code: string, message: string): void {
    this.json(res, status, { error: { code, message, innerError: { date: new Date().toISOString(), 'request-id': randomBytes(8).toString('hex') } } });
  }
}

const skipIds = new WeakMap<DeltaSession, string>();

/** Whether `$select` names the property (properties "returned only on $select"). */
function selected(url: URL, property: string): boolean {
  return (url.searchParams.get('$select') ?? '').split(',').some((p) => p.trim().toLowerCase() === property.toLowerCase());
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function hashCode(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) >>> 0;
  return h;
}

export async function startFakeGraph(opts: FakeGraphOptions = {}): Promise<FakeGraph> {
  return new FakeGraph(opts).listen();
}
