import { FakeConfluenceWebhooks } from './webhooks.ts';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CqlError, parseCql, type CqlSubject } from './cql.ts';
import { FakeConfluenceSite, type FakeAttachment, type FakeContent, type FakeGroup, type FakeUser, type Restriction } from './model.ts';

/**
 * A fake Confluence Cloud site on 127.0.0.1, answering the documented shapes of the REST API v2
 * (spaces, space permission assignments, pages and blog posts with bodies, ancestors, folders) and
 * v1 (content restrictions by operation, CQL content search with cursors, group members, bulk
 * users, current user, attachment download). Basic auth with the account's email and API token is
 * checked on every call. Use `site.sourceConfig()` for a source pointing at it.
 *
 * Faithful where a sync client can go wrong: v2 listings default to current AND archived content
 * unless `status` says otherwise; cursors come back in `_links.next` (and a `Link` header); a
 * hidden email is an empty string; restriction lists are capped per response (`restrictionPageSize`)
 * and must be paged through `byOperation/{operation}`; throttling answers 429 with `Retry-After`
 * and `X-RateLimit-*` headers, or 503.
 */

export interface FakeConfluenceOptions {
  apiEmail?: string;
  apiToken?: string;
  /** Most items per v2 listing page and CQL search page, whatever limit is asked (Cloud caps limits too). */
  pageSize?: number;
  /** Users (and groups) per restriction list in one answer. */
  restrictionPageSize?: number;
  /** Delay added to every call, so concurrency becomes observable. */
  latencyMs?: number;
}

export interface RequestLogEntry {
  method: string;
  /** pathname + search */
  path: string;
  status: number;
  startedAt: number;
  endedAt: number;
}

interface Injected {
  match: RegExp;
  status: number;
  retryAfter: number | null;
  remaining: number;
  delayMs?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const enc = encodeURIComponent;
const slug = (title: string) => enc(title).replace(/%20/g, '+');

export class FakeConfluence extends FakeConfluenceSite {
  readonly apiToken: string;
  pageSize: number;
  restrictionPageSize: number;
  latencyMs: number;
  readonly requests: RequestLogEntry[] = [];
  inFlight = 0;
  maxInFlight = 0;
  url = '';
  private server: Server | null = null;
  private injected: Injected[] = [];

  /** Webhooks registered by the admin (an app, an Automation rule, or Data Center's REST API). */
  readonly webhooks = new FakeConfluenceWebhooks((spaceId) => [...this.spaces.values()].find((x) => x.id === spaceId)?.key ?? '', (id) => this.contents.get(id));

  protected override event(name: string, subject: Parameters<FakeConfluenceWebhooks['emit']>[1]): void {
    // Called while the site is being built too, before the webhooks exist.
    this.webhooks?.emit(name, subject);
  }

  constructor(opts: FakeConfluenceOptions = {}) {
    super(opts.apiEmail ?? 'indexer@acme.test');
    this.apiToken = opts.apiToken ?? 'fake-api-token-0123456789';
    this.pageSize = opts.pageSize ?? 25;
    this.restrictionPageSize = opts.restrictionPageSize ?? 100;
    this.latencyMs = opts.latencyMs ?? 0;
  }

  async listen(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) this.json(res, 500, { statusCode: 500, message: String(err) });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server = null;
  }

  /** Source config + credentials for `type: "confluence"` pointing at this fake. */
  sourceConfig(spaceKeys: string[], extra: Record<string, unknown> = {}): { config: Record<string, unknown>; credentials: Record<string, unknown> } {
    return { config: { baseUrl: `${this.url}/wiki`, spaceKeys, ...extra }, credentials: { email: this.apiUser.email, apiToken: this.apiToken } };
  }

  // ---- test controls --------------------------------------------------------------------------

  /** The next `n` calls matching `match` answer `status` (429 with Retry-After and X-RateLimit-* headers, or 5xx). */
  throttleNext(n: number, status: 429 | 500 | 502 | 503 | 504 = 429, retryAfterSeconds: number | null = 1, match: RegExp = /./): void {
    this.injected.push({ match, status, retryAfter: retryAfterSeconds, remaining: n });
  }

  /** The next `n` calls matching `match` answer only after `ms` (for timeouts). */
  delayNext(n: number, ms: number, match: RegExp = /./): void {
    this.injected.push({ match, status: 0, retryAfter: null, remaining: n, delayMs: ms });
  }

  resetLog(): void {
    this.requests.length = 0;
    this.maxInFlight = this.inFlight;
  }

  /** Calls by API family, e.g. `{ v2: 12, v1: 30 }`. */
  callCount(match: RegExp = /./): number {
    return this.requests.filter((r) => match.test(r.path)).length;
  }

  // ---- HTTP -----------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = Date.now();
    const url = new URL(req.url ?? '/', 'http://fake');
    const entry: RequestLogEntry = { method: req.method ?? 'GET', path: url.pathname + url.search, status: 0, startedAt, endedAt: 0 };
    this.requests.push(entry);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => {
      this.inFlight--;
      entry.endedAt = Date.now();
    });
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      entry.status = status;
      this.json(res, status, body, headers);
    };
    try {
      if (this.latencyMs) await sleep(this.latencyMs);
      const inj = this.injected.find((i) => i.remaining > 0 && i.match.test(entry.path));
      if (inj) {
        inj.remaining--;
        if (inj.delayMs) await sleep(inj.delayMs);
        if (inj.status) {
          const headers: Record<string, string> = { 'X-RateLimit-Limit': '100', 'X-RateLimit-Remaining': '0' };
          if (inj.retryAfter !== null) {
            headers['Retry-After'] = String(inj.retryAfter);
            headers['X-RateLimit-Reset'] = new Date(Date.now() + inj.retryAfter * 1000).toISOString();
          }
          if (inj.status === 429) headers['RateLimit-Reason'] = 'confluence-quota-global-based';
          send(inj.status, { statusCode: inj.status, message: inj.status === 429 ? 'Rate limit exceeded' : 'Service unavailable' }, headers);
          return;
        }
      }
      if (!this.authorized(req)) {
        send(401, { statusCode: 401, message: 'Client must be authenticated to access this resource.' }, { 'WWW-Authenticate': 'Basic realm="protected-area"' });
        return;
      }
      if (req.method !== 'GET') throw new HttpError(405, 'only GET is modelled');
      const path = url.pathname.replace(/^\/wiki(?=\/)/, '');
      const download = /^\/download\/attachments\/(\d+)\/([^/]+)$/.exec(path);
      if (download) {
        const a = [...this.attachments.values()].find((x) => x.containerId === download[1] && x.title === decodeURIComponent(download[2]!));
        if (!a) throw new HttpError(404, 'no such attachment');
        entry.status = 200;
        res.writeHead(200, { 'content-type': a.mediaType, 'content-length': String(a.bytes.length) });
        res.end(a.bytes);
        return;
      }
      const redirect = /^\/rest\/api\/content\/(\d+)\/child\/attachment\/([^/]+)\/download$/.exec(path);
      if (redirect) {
        const a = this.attachments.get(redirect[2]!);
        if (!a || a.containerId !== redirect[1]) throw new HttpError(404, 'no such attachment');
        entry.status = 302;
        // Cloud sends the bytes from another URL; the client follows the redirect.
        res.writeHead(302, { location: `/wiki/download/attachments/${a.containerId}/${enc(a.title)}?version=${a.version}&api=v2` });
        res.end();
        return;
      }
      const [status, body, headers] = this.route(path, url.searchParams);
      send(status, body, headers);
    } catch (err) {
      if (err instanceof HttpError) {
        const v2 = url.pathname.includes('/api/v2/');
        send(err.status, v2
          ? { errors: [{ status: err.status, code: err.status === 404 ? 'NOT_FOUND' : 'BAD_REQUEST', title: err.message, detail: null }] }
          : { statusCode: err.status, data: { authorized: err.status !== 403, valid: true, errors: [], successful: false }, message: err.message });
        return;
      }
      throw err;
    }
  }

  private authorized(req: IncomingMessage): boolean {
    const m = /^Basic\s+(.+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    return decoded === `${this.apiUser.email}:${this.apiToken}`;
  }

  private json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json;charset=UTF-8', ...headers });
    res.end(text);
  }

  private route(path: string, q: URLSearchParams): [number, unknown, Record<string, string>?] {
    let m: RegExpExecArray | null;
    // ---- v2 ----
    if (path === '/api/v2/spaces') {
      const keys = list(q, 'keys');
      const ids = list(q, 'ids');
      const spaces = [...this.spaces.values()].filter((s) => (!keys.length || keys.includes(s.key)) && (!ids.length || ids.includes(s.id)));
      return this.v2Page(path, q, spaces.map((s) => this.spaceJson(s)));
    }
    if ((m = /^\/api\/v2\/spaces\/(\d+)$/.exec(path))) return [200, this.spaceJson(this.mustSpace(m[1]!))];
    if ((m = /^\/api\/v2\/spaces\/(\d+)\/permissions$/.exec(path))) {
      const s = this.mustSpace(m[1]!);
      if (s.permissionsHidden) throw new HttpError(403, 'Not permitted to read space permissions');
      return this.v2Page(path, q, s.permissions.map((p) => ({ id: p.id, principal: p.principal, operation: p.operation })));
    }
    if ((m = /^\/api\/v2\/spaces\/(\d+)\/(pages|blogposts)$/.exec(path))) {
      const s = this.mustSpace(m[1]!);
      const type = m[2] === 'pages' ? 'page' : 'blogpost';
      const items = this.filterContent(q, type).filter((c) => c.spaceId === s.id);
      const depth = q.get('depth');
      return this.v2Page(path, q, items.filter((c) => depth !== 'root' || c.parentId === null).map((c) => this.contentV2(c, q.get('body-format'))));
    }
    if ((m = /^\/api\/v2\/(pages|blogposts)$/.exec(path))) {
      const type = m[1] === 'pages' ? 'page' : 'blogpost';
      const ids = list(q, 'id');
      const spaceIds = list(q, 'space-id');
      const items = this.filterContent(q, type).filter((c) => (!ids.length || ids.includes(c.id)) && (!spaceIds.length || spaceIds.includes(c.spaceId)));
      return this.v2Page(path, q, items.map((c) => this.contentV2(c, q.get('body-format'))));
    }
    if ((m = /^\/api\/v2\/(pages|blogposts|folders)\/(\d+)$/.exec(path))) {
      const type = { pages: 'page', blogposts: 'blogpost', folders: 'folder' }[m[1]!]!;
      const c = this.contents.get(m[2]!);
      if (!c || c.type !== type || c.status === 'draft') throw new HttpError(404, `No ${type} with id ${m[2]}`);
      return [200, this.contentV2(c, q.get('body-format'))];
    }
    if ((m = /^\/api\/v2\/(pages|folders)\/(\d+)\/ancestors$/.exec(path))) {
      const c = this.contents.get(m[2]!);
      if (!c) throw new HttpError(404, 'not found');
      return this.v2Page(path, q, this.ancestors(c).map((a) => ({ id: a.id, type: a.type })));
    }
    if ((m = /^\/api\/v2\/(pages|blogposts)\/(\d+)\/attachments$/.exec(path))) {
      const c = this.contents.get(m[2]!);
      if (!c) throw new HttpError(404, 'not found');
      const atts = [...this.attachments.values()].filter((a) => a.containerId === c.id && a.status === 'current');
      return this.v2Page(path, q, atts.map((a) => this.attachmentV2(a)));
    }
    // ---- v1 ----
    if (path === '/rest/api/user/current') return [200, this.userV1(this.apiUser)];
    if (path === '/rest/api/user/bulk') {
      const ids = list(q, 'accountId').slice(0, 100);
      const users = ids.map((id) => this.users.get(id)).filter((u): u is FakeUser => !!u);
      return [200, { results: users.map((u) => this.userV1(u)), start: 0, limit: 100, size: users.length, _links: { base: `${this.url}/wiki`, context: '/wiki' } }];
    }
    if (path === '/rest/api/group') {
      const groups = [...this.groups.values()].sort((a, b) => a.name.localeCompare(b.name));
      return [200, this.v1Slice(path, q, groups.map(groupV1), 200)];
    }
    if ((m = /^\/rest\/api\/group\/([^/]+)\/membersByGroupId$/.exec(path))) {
      const g = this.groups.get(decodeURIComponent(m[1]!));
      if (!g) throw new HttpError(404, `No group found with id ${m[1]}`);
      const members = [...g.members].map((id) => this.users.get(id)).filter((u): u is FakeUser => !!u).map((u) => this.userV1(u));
      return [200, this.v1Slice(path, q, members, 200)];
    }
    if ((m = /^\/rest\/api\/content\/(\d+)\/restriction\/byOperation(?:\/(\w+))?$/.exec(path))) {
      const c = this.contents.get(m[1]!);
      if (!c || c.status === 'draft') throw new HttpError(404, `No content found with id ${m[1]}`);
      if (c.restrictionsHidden) throw new HttpError(403, 'User not permitted to view restrictions');
      const expand = list(q, 'expand');
      const start = Number(q.get('start') ?? 0);
      const limit = Math.min(Number(q.get('limit') ?? this.restrictionPageSize), this.restrictionPageSize);
      if (m[2]) {
        if (m[2] !== 'read' && m[2] !== 'update') throw new HttpError(400, `unknown operation ${m[2]}`);
        return [200, this.restrictionV1(c, m[2], expand, start, limit)];
      }
      return [200, {
        read: this.restrictionV1(c, 'read', expand, 0, this.restrictionPageSize),
        update: this.restrictionV1(c, 'update', expand, 0, this.restrictionPageSize),
        _links: { base: `${this.url}/wiki`, context: '/wiki' },
      }];
    }
    if (path === '/rest/api/content/search' || path === '/rest/api/search') return this.search(path, q);
    throw new HttpError(404, `no route for ${path}`);
  }

  private mustSpace(id: string) {
    const s = this.spaces.get(id);
    if (!s) throw new HttpError(404, `No space with id ${id}`);
    return s;
  }

  /** v2 listings answer current AND archived content unless `status` narrows them (documented default). */
  private filterContent(q: URLSearchParams, type: string): FakeContent[] {
    const statuses = list(q, 'status');
    const wanted = statuses.length ? statuses : type === 'page' ? ['current', 'archived'] : ['current'];
    return [...this.contents.values()]
      .filter((c) => c.type === type && wanted.includes(c.status) && this.spaces.get(c.spaceId)?.status === 'current')
      .sort((a, b) => Number(a.id) - Number(b.id));
  }

  private v2Page(path: string, q: URLSearchParams, items: unknown[]): [number, unknown, Record<string, string>] {
    const limit = Math.max(1, Math.min(Number(q.get('limit') ?? this.pageSize) || this.pageSize, this.pageSize));
    const offset = q.get('cursor') ? decodeCursor(q.get('cursor')!) : 0;
    const slice = items.slice(offset, offset + limit);
    const links: Record<string, string> = { base: `${this.url}/wiki` };
    const headers: Record<string, string> = {};
    if (offset + limit < items.length) {
      const nq = new URLSearchParams(q);
      nq.set('cursor', encodeCursor(offset + limit));
      nq.set('limit', String(limit));
      links.next = `/wiki${path}?${nq}`;
      headers.Link = `<${links.next}>; rel="next", <${this.url}/wiki>; rel="base"`;
    }
    return [200, { results: slice, _links: links }, headers];
  }

  private v1Slice(path: string, q: URLSearchParams, items: unknown[], maxLimit: number) {
    const start = Number(q.get('start') ?? 0);
    const limit = Math.min(Number(q.get('limit') ?? 50), maxLimit);
    const results = items.slice(start, start + limit);
    const links: Record<string, string> = { base: `${this.url}/wiki`, context: '/wiki' };
    if (start + limit < items.length) links.next = `${path}?start=${start + limit}&limit=${limit}`;
    return { results, start, limit, size: results.length, _links: links };
  }

  private spaceJson(s: { id: string; key: string; name: string; status: string; homepageId: string | null; createdAt: Date }) {
    return {
      id: s.id, key: s.key, name: s.name, type: 'global', status: s.status, authorId: this.apiUser.accountId,
      createdAt: s.createdAt.toISOString(), ...(s.homepageId ? { homepageId: s.homepageId } : {}), description: null, icon: null,
      _links: { webui: `/spaces/${s.key}` },
    };
  }

  webui(c: FakeContent): string {
    const key = this.spaceOf(c).key;
    if (c.type === 'blogpost') {
      const d = c.createdAt.toISOString().slice(0, 10).replace(/-/g, '/');
      return `/spaces/${key}/blog/${d}/${c.id}/${slug(c.title)}`;
    }
    if (c.type === 'folder') return `/spaces/${key}/folder/${c.id}`;
    return `/spaces/${key}/pages/${c.id}/${slug(c.title)}`;
  }

  private contentV2(c: FakeContent, bodyFormat: string | null) {
    const parent = c.parentId ? this.contents.get(c.parentId) : undefined;
    return {
      id: c.id, status: c.status, title: c.title, spaceId: c.spaceId,
      ...(c.type === 'blogpost' ? {} : { parentId: c.parentId, parentType: parent?.type ?? null, position: Number(c.id) % 1000 }),
      authorId: c.authorId, ...(c.type === 'page' ? { ownerId: c.ownerId, lastOwnerId: null } : {}),
      createdAt: c.createdAt.toISOString(),
      version: { createdAt: c.modifiedAt.toISOString(), message: '', number: c.version, minorEdit: false, authorId: c.lastModifierId },
      ...(c.type === 'folder' ? {} : { body: bodyFormat === 'storage' ? { storage: { representation: 'storage', value: c.body } } : {} }),
      _links: { webui: this.webui(c), editui: `/pages/resumedraft.action?draftId=${c.id}`, tinyui: `/x/${Buffer.from(c.id).toString('base64url')}` },
    };
  }

  private attachmentV2(a: FakeAttachment) {
    return {
      id: a.id, status: a.status, title: a.title, createdAt: a.createdAt.toISOString(), pageId: a.containerId,
      mediaType: a.mediaType, fileSize: a.bytes.length, comment: '', fileId: `f-${a.id}`,
      version: { createdAt: a.modifiedAt.toISOString(), message: '', number: a.version, minorEdit: false, authorId: a.authorId },
      downloadLink: this.downloadPath(a),
      _links: { webui: `/pages/viewpageattachments.action?pageId=${a.containerId}&preview=${enc(`/${a.containerId}/${a.id}/${a.title}`)}`, download: this.downloadPath(a) },
    };
  }

  private downloadPath(a: FakeAttachment): string {
    return `/download/attachments/${a.containerId}/${enc(a.title)}?version=${a.version}&modificationDate=${a.modifiedAt.getTime()}&api=v2`;
  }

  userV1(u: FakeUser) {
    return {
      type: 'known', accountId: u.accountId, accountType: 'atlassian', email: u.emailHidden ? '' : u.email,
      publicName: u.displayName, displayName: u.displayName,
      profilePicture: { path: '/wiki/aa-avatar/default.png', width: 48, height: 48, isDefault: true },
      isExternalCollaborator: false, isGuest: false,
      _expandable: { operations: '', personalSpace: '' },
      _links: { self: `${this.url}/wiki/rest/api/user?accountId=${u.accountId}` },
    };
  }

  private restrictionV1(c: FakeContent, operation: 'read' | 'update', expand: string[], start: number, limit: number) {
    const r: Restriction = operation === 'read' ? c.read : c.update;
    const wants = (what: string) => expand.some((e) => e === `restrictions.${what}` || e === `${operation}.restrictions.${what}` || e.endsWith(`.restrictions.${what}`));
    const restrictions: Record<string, unknown> = {};
    const expandable: Record<string, string> = {};
    const base = `/rest/api/content/${c.id}/restriction/byOperation/${operation}`;
    if (wants('user')) {
      const users = [...r.users].map((id) => this.users.get(id)).filter((u): u is FakeUser => !!u);
      const slice = users.slice(start, start + limit);
      restrictions.user = { results: slice.map((u) => this.userV1(u)), start, limit, size: slice.length, _links: {} };
    } else expandable.user = `${base}/user`;
    if (wants('group')) {
      const groups = [...r.groups].map((id) => this.groups.get(id)).filter((g): g is FakeGroup => !!g);
      const slice = groups.slice(start, start + limit);
      restrictions.group = { results: slice.map(groupV1), start, limit, size: slice.length };
    } else expandable.group = `${base}/group`;
    if (Object.keys(expandable).length) restrictions._expandable = expandable;
    return { operation, restrictions, _expandable: { content: `/rest/api/content/${c.id}` }, _links: { self: `${this.url}/wiki${base}` } };
  }

  // ---- CQL search -------------------------------------------------------------------------------

  private subjects(): Array<{ subject: CqlSubject; content?: FakeContent; attachment?: FakeAttachment }> {
    const out: Array<{ subject: CqlSubject; content?: FakeContent; attachment?: FakeAttachment }> = [];
    for (const c of this.contents.values()) {
      if (!this.isLive(c)) continue; // CQL finds current content only
      out.push({
        content: c,
        subject: {
          id: c.id, type: c.type, spaceKey: this.spaceOf(c).key, ancestors: this.ancestors(c).map((a) => a.id), parentId: c.parentId,
          modifiedAt: c.modifiedAt, createdAt: c.createdAt, title: c.title,
        },
      });
    }
    for (const a of this.attachments.values()) {
      const c = this.contents.get(a.containerId);
      if (!c || !this.isLive(c) || a.status !== 'current') continue;
      out.push({
        attachment: a,
        subject: {
          id: a.id, type: 'attachment', spaceKey: this.spaceOf(c).key, ancestors: [...this.ancestors(c).map((x) => x.id), c.id], parentId: c.id,
          modifiedAt: a.modifiedAt, createdAt: a.createdAt, title: a.title,
        },
      });
    }
    return out;
  }

  private search(path: string, q: URLSearchParams): [number, unknown] {
    const cql = q.get('cql');
    if (!cql) throw new HttpError(400, 'cql is required');
    let query;
    try {
      query = parseCql(cql);
    } catch (err) {
      if (err instanceof CqlError) throw new HttpError(400, `Could not parse cql : ${cql} (${err.message})`);
      throw err;
    }
    let hits = this.subjects().filter((s) => query.matches(s.subject));
    hits.sort((a, b) => Number(a.subject.id.replace(/\D/g, '')) - Number(b.subject.id.replace(/\D/g, '')));
    if (query.order?.field === 'lastmodified') hits.sort((a, b) => a.subject.modifiedAt.getTime() - b.subject.modifiedAt.getTime());
    if (query.order?.desc) hits = hits.reverse();
    const expand = list(q, 'expand');
    const limit = Math.max(1, Math.min(Number(q.get('limit') ?? 25) || 25, this.pageSize));
    const offset = q.get('cursor') ? decodeCursor(q.get('cursor')!) : 0;
    const slice = hits.slice(offset, offset + limit);
    const links: Record<string, string> = { base: `${this.url}/wiki`, context: '/wiki', self: `${this.url}/wiki${path}` };
    if (offset + limit < hits.length) {
      const nq = new URLSearchParams(q);
      nq.set('cursor', encodeCursor(offset + limit));
      nq.set('limit', String(limit));
      links.next = `${path}?${nq}`;
    }
    const contentSearch = path === '/rest/api/content/search';
    const prefix = contentSearch ? '' : 'content.';
    const strip = expand.filter((e) => e.startsWith(prefix)).map((e) => e.slice(prefix.length));
    const results = slice.map((h) => {
      const content = h.content ? this.contentV1(h.content, strip) : this.attachmentV1(h.attachment!, strip);
      return contentSearch ? content : {
        content, title: h.subject.title, excerpt: '', url: (content._links as { webui: string }).webui,
        resultGlobalContainer: { title: h.subject.spaceKey, displayUrl: `/spaces/${h.subject.spaceKey}` },
        entityType: 'content', iconCssClass: 'aui-icon', lastModified: h.subject.modifiedAt.toISOString(), friendlyLastModified: '',
      };
    });
    const body: Record<string, unknown> = { results, start: offset, limit, size: results.length, _links: links };
    if (!contentSearch) Object.assign(body, { totalSize: hits.length, cqlQuery: cql, searchDuration: 1 });
    return [200, body];
  }

  private contentV1(c: FakeContent, expand: string[]): Record<string, unknown> {
    const wants = (p: string) => expand.some((e) => e === p || e.startsWith(`${p}.`));
    const out: Record<string, unknown> = {
      id: c.id, type: c.type, status: c.status, title: c.title,
      version: { by: this.userV1(this.users.get(c.lastModifierId)!), when: c.modifiedAt.toISOString(), number: c.version, minorEdit: false, _expandable: {} },
      _links: { webui: this.webui(c), self: `${this.url}/wiki/rest/api/content/${c.id}`, tinyui: `/x/${c.id}` },
    };
    const expandable: Record<string, string> = { container: '', ancestors: '', children: '', history: '' };
    if (wants('space')) out.space = { id: Number(c.spaceId), key: this.spaceOf(c).key, name: this.spaceOf(c).name, type: 'global', status: 'current', _expandable: {}, _links: {} };
    if (wants('ancestors')) out.ancestors = this.ancestors(c).map((a) => ({ id: a.id, type: a.type, status: a.status, title: a.title }));
    if (wants('restrictions') && !c.restrictionsHidden) {
      const sub = expand.filter((e) => e.startsWith('restrictions.')).map((e) => e.slice('restrictions.'.length));
      const restrictions: Record<string, unknown> = {};
      for (const op of ['read', 'update'] as const) {
        if (sub.some((s) => s.startsWith(op))) {
          restrictions[op] = this.restrictionV1(c, op, sub.filter((s) => s.startsWith(`${op}.`)).map((s) => s.slice(op.length + 1)), 0, this.restrictionPageSize);
        }
      }
      out.restrictions = restrictions;
    } else expandable.restrictions = `/rest/api/content/${c.id}/restriction/byOperation`;
    out._expandable = expandable;
    return out;
  }

  private attachmentV1(a: FakeAttachment, expand: string[]): Record<string, unknown> {
    const container = this.contents.get(a.containerId)!;
    const out: Record<string, unknown> = {
      id: a.id, type: 'attachment', status: a.status, title: a.title,
      version: { by: this.userV1(this.users.get(a.authorId)!), when: a.modifiedAt.toISOString(), number: a.version, minorEdit: false, _expandable: {} },
      extensions: { mediaType: a.mediaType, fileSize: a.bytes.length, comment: '', mediaTypeDescription: '', fileId: `f-${a.id}` },
      _links: {
        webui: `/pages/viewpageattachments.action?pageId=${a.containerId}&preview=${enc(`/${a.containerId}/${a.id}/${a.title}`)}`,
        download: this.downloadPath(a), self: `${this.url}/wiki/rest/api/content/${a.id}`,
      },
      _expandable: { restrictions: '', ancestors: '', children: '' },
    };
    if (expand.some((e) => e === 'container' || e.startsWith('container.'))) {
      out.container = { id: container.id, type: container.type, status: container.status, title: container.title, _links: { webui: this.webui(container) } };
    } else (out._expandable as Record<string, string>).container = `/rest/api/content/${container.id}`;
    if (expand.includes('space')) out.space = { id: Number(container.spaceId), key: this.spaceOf(container).key, name: this.spaceOf(container).name, type: 'global', status: 'current' };
    return out;
  }
}

function groupV1(g: FakeGroup) {
  return { type: 'group', name: g.name, id: g.id, usageType: 'USERBASE_GROUP', managedBy: 'ADMINS', _links: { self: `/rest/api/group/by-id?id=${g.id}` } };
}

/** Atlassian documents comma-separated lists; clients also repeat the parameter. Both are read. */
function list(q: URLSearchParams, name: string): string[] {
  return q.getAll(name).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset, r: Math.random().toString(36).slice(2, 8) })).toString('base64url');
}

function decodeCursor(cursor: string): number {
  try {
    const o = (JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { o?: unknown }).o;
    if (typeof o === 'number' && o >= 0) return o;
  } catch {
    // fall through
  }
  throw new HttpError(400, 'invalid cursor');
}

export async function startFakeConfluence(opts: FakeConfluenceOptions = {}): Promise<FakeConfluence> {
  return new FakeConfluence(opts).listen();
}

export type { FakeAttachment, FakeContent, FakeGroup, FakeUser };
