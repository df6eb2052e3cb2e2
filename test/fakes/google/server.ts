import { FakeDriveChannels } from './channels.ts';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeJwt, jwtVerify } from 'jose';
import { selectFields, splitTop } from './fields.ts';
import { FakeWorkspace, FOLDER, GDOC, GSHEET, GSLIDES, SHORTCUT, md5, myDriveRoot, type FakeFile } from './model.ts';
import { matchesQuery, parseQuery, type Query } from './query.ts';

/**
 * A fake Google on 127.0.0.1: the OAuth 2.0 token endpoint for the JWT-bearer grant (service
 * accounts with domain-wide delegation), Drive v3 and Admin SDK Directory v1, built from the
 * documented request and response shapes. Use `google.url + '/'` as `rootUrl` and the key from
 * `serviceAccountKey()` (its token_uri points here).
 *
 * Faithful where a sync client depends on it: the assertion's RS256 signature is checked against
 * the service account's public key, delegation is checked per client id and scope, every API call
 * acts as the impersonated user (what they can see, list and read), `fields` selects fields,
 * paging with nextPageToken, changes with newStartPageToken that coalesce per file, report
 * removals, and do not report descendants of moved or re-permissioned folders, 400 Invalid Value
 * for expired page tokens, permissions.list with permissionDetails, exports of Google Docs, and
 * injectable throttling (429, 403 rate limits, 5xx, with or without Retry-After).
 */

export const DRIVE_SCOPE = 'https://www.googleapis.com/auth/drive.readonly';
export const DIRECTORY_SCOPE = 'https://www.googleapis.com/auth/admin.directory.group.readonly';

export interface FakeGoogleOptions {
  domain?: string;
  /** Items per page when the client asks for more (small, to exercise paging). */
  pageSize?: number;
  latencyMs?: number;
  tokenLifetimeSeconds?: number;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  kind: 'token' | 'drive' | 'directory';
  status: number;
  subject: string | null;
  startedAt: number;
  endedAt: number;
}

interface Injected {
  match: RegExp;
  status: number;
  reason: string;
  retryAfter: number | null;
  remaining: number;
}

interface ServiceAccount {
  email: string;
  clientId: string;
  publicKey: KeyObject;
  privateKeyPem: string;
  keyId: string;
}

interface IssuedToken {
  subject: string;
  scopes: Set<string>;
  expiresAt: number;
}

class HttpError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

const FILE_KIND = 'drive#file';
const DOWNLOADABLE_GOOGLE = new Set([GDOC, GSHEET, GSLIDES]);

export class FakeGoogle extends FakeWorkspace {
  url = '';
  pageSize: number;
  latencyMs: number;
  tokenLifetimeSeconds: number;
  readonly requests: RequestLogEntry[] = [];
  /** Scopes each service account's client id may be delegated, as set in the Admin console. */
  readonly delegation = new Map<string, Set<string>>();
  inFlight = 0;
  maxInFlight = 0;
  private server: Server | null = null;
  private readonly accounts = new Map<string, ServiceAccount>();
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly known = new Map<string, Set<string>>();
  private injected: Injected[] = [];
  /** changes.watch channels and their deliveries. */
  readonly notifications = new FakeDriveChannels();

  constructor(opts: FakeGoogleOptions = {}) {
    super(opts.domain ?? 'acme.test');
    this.pageSize = opts.pageSize ?? 100;
    this.latencyMs = opts.latencyMs ?? 0;
    this.tokenLifetimeSeconds = opts.tokenLifetimeSeconds ?? 3600;
  }

  /** A shared drive's channel fires for its changes; a user's own channel for changes to files they can see. */
  protected override fileChanged(f: FakeFile, drives: string[]): void {
    this.notifications?.changed((user, driveId) => (driveId ? drives.includes(driveId) : drives.length === 0 && this.canAccess(user, f)));
  }

  async listen(): Promise<this> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) this.apiError(res, 500, 'backendError', String(err));
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

  // ---- service accounts and delegation ---------------------------------------------------------------

  /** A service account and its JSON key (as downloaded from the Cloud console), token_uri pointing here. */
  createServiceAccount(name = 'clearance-sync', opts: { delegate?: string[] } = {}): Record<string, string> {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = `${name}@fake-project.iam.gserviceaccount.com`;
    const account: ServiceAccount = {
      email, clientId: String(100000000000000000000n + BigInt(this.accounts.size + 1)), publicKey,
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), keyId: randomBytes(20).toString('hex'),
    };
    this.accounts.set(email, account);
    if (opts.delegate) this.delegation.set(account.clientId, new Set(opts.delegate));
    return this.keyFile(account);
  }

  /** The same account's key file, but with a private key Google never issued for it. */
  foreignKey(key: Record<string, string>): Record<string, string> {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    return { ...key, private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }

  sourceConfig(key: Record<string, string>, extra: Record<string, unknown> = {}) {
    const admin = [...this.users.values()].find((u) => u.admin);
    return {
      config: { domain: this.domain, adminEmail: admin?.email ?? `admin@${this.domain}`, rootUrl: `${this.url}/`, ...extra },
      credentials: { serviceAccountKey: key },
    };
  }

  private keyFile(a: ServiceAccount): Record<string, string> {
    return {
      type: 'service_account', project_id: 'fake-project', private_key_id: a.keyId, private_key: a.privateKeyPem,
      client_email: a.email, client_id: a.clientId, auth_uri: `${this.url}/auth`, token_uri: `${this.url}/token`,
      auth_provider_x509_cert_url: `${this.url}/certs`, universe_domain: 'googleapis.com',
    };
  }

  // ---- test controls ----------------------------------------------------------------------------------

  /**
   * The next `n` API calls matching `match` fail: 429, 403 with a rate-limit reason
   * (`userRateLimitExceeded` by default), or 5xx; with `Retry-After` unless it is null.
   */
  throttleNext(n: number, opts: { status?: 429 | 403 | 500 | 502 | 503; reason?: string; retryAfter?: number | null; match?: RegExp } = {}): void {
    const status = opts.status ?? 429;
    this.injected.push({
      match: opts.match ?? /./, status, remaining: n, retryAfter: opts.retryAfter === undefined ? 1 : opts.retryAfter,
      reason: opts.reason ?? (status === 403 ? 'userRateLimitExceeded' : status === 429 ? 'rateLimitExceeded' : 'backendError'),
    });
  }

  resetLog(): void {
    this.requests.length = 0;
    this.maxInFlight = this.inFlight;
  }

  apiRequests(): RequestLogEntry[] {
    return this.requests.filter((r) => r.kind !== 'token');
  }

  // ---- HTTP ------------------------------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const kind: RequestLogEntry['kind'] = path === '/token' ? 'token' : path.startsWith('/admin/') ? 'directory' : 'drive';
    const entry: RequestLogEntry = { method: req.method ?? 'GET', path: path + url.search, kind, status: 0, subject: null, startedAt: Date.now(), endedAt: 0 };
    this.requests.push(entry);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => {
      this.inFlight--;
      entry.status = res.statusCode;
      entry.endedAt = Date.now();
    });
    if (this.latencyMs) await sleep(this.latencyMs);
    try {
      if (kind === 'token') return await this.token(req, res);
      const token = this.authenticate(req);
      entry.subject = token.subject;
      const injected = this.injected.find((i) => i.remaining > 0 && i.match.test(entry.path));
      if (injected) {
        injected.remaining--;
        if (injected.retryAfter !== null) res.setHeader('retry-after', String(injected.retryAfter));
        throw new HttpError(injected.status, injected.reason, injected.status === 403 ? 'User Rate Limit Exceeded' : 'Rate limit or backend error');
      }
      if (req.method === 'POST' && (path === '/drive/v3/changes/watch' || path === '/drive/v3/channels/stop')) {
        const body = await readBody(req);
        const a = path.endsWith('/watch')
          ? this.notifications.watch(token.subject, url.searchParams, body, (t) => this.readToken(t) !== null)
          : this.notifications.stop(token.subject, body);
        if (a.status === 204) {
          res.writeHead(204);
          res.end();
          return;
        }
        return this.json(res, a.status, a.body);
      }
      if (req.method !== 'GET') throw new HttpError(405, 'methodNotAllowed', 'Only reads are served');
      if (kind === 'directory') return this.directory(token, path, url.searchParams, res);
      return this.drive(token, path, url.searchParams, res);
    } catch (err) {
      if (err instanceof HttpError) return this.apiError(res, err.status, err.reason, err.message, err.extra);
      throw err;
    }
  }

  private async token(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const oauthError = (status: number, error: string, description: string) => this.json(res, status, { error, error_description: description });
    if (req.method !== 'POST') return oauthError(405, 'invalid_request', 'POST required');
    const body = new URLSearchParams(await readBody(req));
    if (body.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return oauthError(400, 'unsupported_grant_type', 'Invalid grant_type: ' + body.get('grant_type'));
    const assertion = body.get('assertion') ?? '';
    let claims: ReturnType<typeof decodeJwt>;
    try {
      claims = decodeJwt(assertion);
    } catch {
      return oauthError(400, 'invalid_grant', 'Invalid JWT: could not parse the assertion.');
    }
    const account = this.accounts.get(String(claims.iss ?? ''));
    if (!account) return oauthError(400, 'invalid_grant', 'Invalid grant: account not found');
    try {
      await jwtVerify(assertion, account.publicKey, { algorithms: ['RS256'], audience: `${this.url}/token`, clockTolerance: 300 });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return oauthError(400, 'invalid_grant', `Invalid JWT: ${(err as Error).message}`);
      if (code === 'ERR_JWT_EXPIRED') return oauthError(400, 'invalid_grant', 'Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.');
      return oauthError(400, 'invalid_grant', 'Invalid JWT Signature.');
    }
    const scopes = String(claims.scope ?? '').split(/\s+/).filter(Boolean);
    if (scopes.length === 0) return oauthError(400, 'invalid_scope', 'Invalid OAuth scope or ID token audience provided.');
    const subject = typeof claims.sub === 'string' ? claims.sub.toLowerCase() : null;
    if (subject) {
      const allowed = this.delegation.get(account.clientId);
      if (!allowed || !scopes.every((s) => allowed.has(s))) {
        return oauthError(401, 'unauthorized_client', 'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.');
      }
      const user = this.users.get(subject);
      if (!user || user.deleted) return oauthError(400, 'invalid_grant', 'Invalid email or User ID');
    }
    const token = `ya29.fake-${randomBytes(16).toString('hex')}`;
    this.tokens.set(token, { subject: subject ?? account.email, scopes: new Set(scopes), expiresAt: Date.now() + this.tokenLifetimeSeconds * 1000 });
    this.json(res, 200, { access_token: token, expires_in: this.tokenLifetimeSeconds, token_type: 'Bearer' });
  }

  private authenticate(req: IncomingMessage): IssuedToken {
    const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const t = m ? this.tokens.get(m[1]!) : undefined;
    if (!t || t.expiresAt < Date.now()) {
      throw new HttpError(401, 'authError', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.', { location: 'Authorization' });
    }
    return t;
  }

  // ---- Directory ---------------------------------------------------------------------------------------

  private directory(token: IssuedToken, path: string, q: URLSearchParams, res: ServerResponse): void {
    if (!token.scopes.has(DIRECTORY_SCOPE) && !token.scopes.has('https://www.googleapis.com/auth/admin.directory.group')) {
      throw new HttpError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.');
    }
    const user = this.users.get(token.subject);
    if (!user?.admin) throw new HttpError(403, 'forbidden', 'Not Authorized to access this resource/api');
    let m: RegExpExecArray | null;
    if (path === '/admin/directory/v1/groups') {
      const domain = q.get('domain');
      if (!domain && q.get('customer') !== 'my_customer') throw new HttpError(400, 'badRequest', 'Bad Request');
      if (domain && domain.toLowerCase() !== this.domain) throw new HttpError(403, 'forbidden', 'Not Authorized to access this resource/api');
      const groups = [...this.groups.values()].map((g) => ({ kind: 'admin#directory#group', id: g.id, email: g.email, name: g.name, directMembersCount: String(g.members.length) }));
      return this.page(res, 'groups', groups, q, 'maxResults', 200, { kind: 'admin#directory#groups' });
    }
    if ((m = /^\/admin\/directory\/v1\/groups\/([^/]+)\/members$/.exec(path))) {
      const g = this.groupByKey(decodeURIComponent(m[1]!));
      const members = g.members.map((mm) => ({
        kind: 'admin#directory#member', id: mm.type === 'GROUP' ? this.groups.get(mm.email)?.id : `u-${mm.email}`,
        email: mm.type === 'CUSTOMER' ? undefined : mm.email, role: mm.role ?? 'MEMBER', type: mm.type, status: mm.type === 'USER' ? 'ACTIVE' : undefined,
      }));
      return this.page(res, 'members', members, q, 'maxResults', 200, { kind: 'admin#directory#members' });
    }
    if ((m = /^\/admin\/directory\/v1\/groups\/([^/]+)$/.exec(path))) {
      const g = this.groupByKey(decodeURIComponent(m[1]!));
      return this.json(res, 200, { kind: 'admin#directory#group', id: g.id, email: g.email, name: g.name });
    }
    throw new HttpError(404, 'notFound', `No handler for ${path}`);
  }

  private groupByKey(key: string) {
    const g = this.groups.get(key.toLowerCase()) ?? [...this.groups.values()].find((x) => x.id === key);
    if (!g) throw new HttpError(404, 'notFound', 'Resource Not Found: groupKey');
    return g;
  }

  // ---- Drive -------------------------------------------------------------------------------------------

  private drive(token: IssuedToken, path: string, q: URLSearchParams, res: ServerResponse): void {
    if (![...token.scopes].some((s) => s.startsWith('https://www.googleapis.com/auth/drive'))) {
      throw new HttpError(403, 'insufficientPermissions', 'Request had insufficient authentication scopes.');
    }
    const who = token.subject;
    const fields = q.get('fields');
    let m: RegExpExecArray | null;
    if (path === '/drive/v3/about') {
      return this.json(res, 200, selectFields({ kind: 'drive#about', user: { kind: 'drive#user', emailAddress: who, me: true } }, fields));
    }
    if (path === '/drive/v3/drives') {
      const admin = q.get('useDomainAdminAccess') === 'true';
      if (admin && !this.users.get(who)?.admin) throw new HttpError(403, 'forbidden', 'The user does not have sufficient permissions for this operation.');
      const drives = [...this.drives.values()].filter((d) => admin || this.isDriveMember(who, d.id)).map((d) => this.driveResource(d.id));
      return this.page(res, 'drives', drives.map((d) => selectFields(d, subFields(fields, 'drives'))), q, 'pageSize', 100, { kind: 'drive#driveList' }, true);
    }
    if ((m = /^\/drive\/v3\/drives\/([^/]+)$/.exec(path))) {
      const d = this.visibleDrive(who, decodeURIComponent(m[1]!), q.get('useDomainAdminAccess') === 'true');
      return this.json(res, 200, selectFields(this.driveResource(d.id), fields));
    }
    if (path === '/drive/v3/changes/startPageToken') {
      const driveId = q.get('driveId');
      if (driveId) this.visibleDrive(who, driveId, false);
      return this.json(res, 200, { kind: 'drive#startPageToken', startPageToken: this.pageToken(this.currentSeq + 1) });
    }
    if (path === '/drive/v3/changes') return this.changesList(who, q, res);
    if (path === '/drive/v3/files') return this.filesList(who, q, res);
    if ((m = /^\/drive\/v3\/files\/([^/]+)\/permissions$/.exec(path))) return this.permissionsList(who, decodeURIComponent(m[1]!), q, res);
    if ((m = /^\/drive\/v3\/files\/([^/]+)\/export$/.exec(path))) {
      // files.export takes no supportsAllDrives: shared-drive files export like any other.
      const f = this.visibleFile(who, decodeURIComponent(m[1]!), new URLSearchParams({ supportsAllDrives: 'true' }));
      const mime = q.get('mimeType') ?? '';
      if (!f.exports) throw new HttpError(400, 'badRequest', 'Export only supports Docs Editors files.');
      const text = f.exports[mime];
      if (text === undefined) throw new HttpError(400, 'badRequest', `The requested conversion is not supported.`);
      res.writeHead(200, { 'content-type': `${mime}; charset=utf-8` });
      res.end(Buffer.from(text));
      return;
    }
    if ((m = /^\/drive\/v3\/files\/([^/]+)$/.exec(path))) {
      const f = this.visibleFile(who, decodeURIComponent(m[1]!), q);
      if (q.get('alt') === 'media') {
        if (f.mimeType.startsWith('application/vnd.google-apps.')) {
          throw new HttpError(403, 'fileNotDownloadable', 'Only files with binary content can be downloaded. Use Export with Docs Editors files.');
        }
        res.writeHead(200, { 'content-type': f.mimeType, 'content-length': String(f.content.length) });
        res.end(f.content);
        return;
      }
      this.markKnown(who, f.id);
      return this.json(res, 200, selectFields(this.fileResource(f), fields));
    }
    throw new HttpError(404, 'notFound', `No handler for ${path}`);
  }

  private filesList(who: string, q: URLSearchParams, res: ServerResponse): void {
    let query: Query | null = null;
    try {
      query = q.get('q') ? parseQuery(q.get('q')!) : null;
    } catch (err) {
      throw new HttpError(400, 'invalid', `Invalid Value: ${(err as Error).message}`, { location: 'q' });
    }
    const corpora = q.get('corpora') ?? 'user';
    const driveId = q.get('driveId');
    const allDrives = q.get('includeItemsFromAllDrives') === 'true';
    if (driveId && q.get('supportsAllDrives') !== 'true') throw new HttpError(403, 'teamDrivesParameterNotSupported', 'supportsAllDrives must be true with driveId');
    if (corpora === 'drive') {
      if (!driveId) throw new HttpError(400, 'badRequest', 'The driveId parameter must be specified if and only if corpora is set to drive.');
      if (!allDrives) throw new HttpError(403, 'teamDrivesParameterNotSupported', 'includeItemsFromAllDrives must be true with corpora=drive');
      this.visibleDrive(who, driveId, false);
    }
    const files = [...this.files.values()].filter((f) => {
      if (f.removed || !this.canAccess(who, f)) return false;
      if (corpora === 'drive') return f.driveId === driveId;
      if (f.driveId && !allDrives) return false;
      return true;
    }).filter((f) => !query || matchesQuery(query, f, (x) => this.isTrashed(x)));
    files.sort((a, b) => a.id.localeCompare(b.id));
    for (const f of files) this.markKnown(who, f.id);
    this.page(res, 'files', files.map((f) => selectFields(this.fileResource(f), subFields(q.get('fields'), 'files') ?? 'kind,id,name,mimeType')), q, 'pageSize', 1000, { kind: 'drive#fileList', incompleteSearch: false }, true);
  }

  private permissionsList(who: string, fileId: string, q: URLSearchParams, res: ServerResponse): void {
    const fields = subFields(q.get('fields'), 'permissions') ?? 'kind,id,type,role,emailAddress,domain,allowFileDiscovery,deleted,pendingOwner,expirationTime,view';
    let perms;
    if (this.drives.has(fileId)) {
      const admin = q.get('useDomainAdminAccess') === 'true';
      if (q.get('supportsAllDrives') !== 'true') throw new HttpError(404, 'notFound', `File not found: ${fileId}.`, { location: 'fileId' });
      this.visibleDrive(who, fileId, admin);
      perms = this.mustDrive(fileId).members.map((p) => ({ ...p, permissionDetails: [{ permissionType: 'member', role: p.role, inherited: false }] }));
    } else {
      const f = this.visibleFile(who, fileId, q);
      if (!this.canReadPermissions(who, f)) throw new HttpError(403, 'insufficientFilePermissions', 'The user does not have sufficient permissions for this file.');
      perms = this.effectivePermissions(f);
    }
    const out = perms.map((p) => selectFields({ kind: 'drive#permission', ...p }, fields));
    this.page(res, 'permissions', out, q, 'pageSize', 100, { kind: 'drive#permissionList' }, true);
  }

  /**
   * changes.list: every file changed at or after the token, once, in its current state. With
   * `driveId`, changes of that shared drive (files that left it are reported removed); without,
   * the user's corpus (files they can access now, or could before: those are reported removed).
   */
  private changesList(who: string, q: URLSearchParams, res: ServerResponse): void {
    const start = this.readToken(q.get('pageToken') ?? '');
    if (start === null) {
      throw new HttpError(400, 'invalid', 'Invalid Value', { location: 'pageToken', locationType: 'parameter' });
    }
    const driveId = q.get('driveId');
    if (driveId) {
      if (q.get('supportsAllDrives') !== 'true' || q.get('includeItemsFromAllDrives') !== 'true') {
        throw new HttpError(403, 'teamDrivesParameterNotSupported', 'driveId requires supportsAllDrives and includeItemsFromAllDrives');
      }
      this.visibleDrive(who, driveId, false);
    }
    const includeRemoved = q.get('includeRemoved') !== 'false';
    const restrict = q.get('restrictToMyDrive') === 'true';
    const allDrives = q.get('includeItemsFromAllDrives') === 'true';
    const latest = new Map<string, number>();
    for (const c of this.changes) {
      if (c.seq < start) continue;
      if (driveId && !c.drives.includes(driveId)) continue;
      latest.set(c.fileId, c.seq);
    }
    const entries = this.changes.filter((c) => latest.get(c.fileId) === c.seq).sort((a, b) => a.seq - b.seq);
    const size = Math.min(Number(q.get('pageSize') ?? 100), this.pageSize, 1000);
    const out: unknown[] = [];
    let last = start - 1;
    let i = 0;
    for (; i < entries.length && out.length < size; i++) {
      const c = entries[i]!;
      last = c.seq;
      const f = this.files.get(c.fileId)!;
      const accessible = !f.removed && this.canAccess(who, f);
      // Outside the requested corpus but still accessible: simply not this feed's business.
      if (accessible && !driveId && ((f.driveId && !allDrives) || (restrict && !this.inMyDrive(who, f)))) continue;
      const visible = accessible && (!driveId || f.driveId === driveId);
      if (visible) {
        this.markKnown(who, f.id);
        out.push({ kind: 'drive#change', changeType: 'file', time: c.time, removed: false, fileId: f.id, file: this.fileResource(f) });
      } else if (driveId || this.known.get(who)?.has(f.id)) {
        this.known.get(who)?.delete(f.id);
        if (includeRemoved) out.push({ kind: 'drive#change', changeType: 'file', time: c.time, removed: true, fileId: f.id });
      }
    }
    const more = i < entries.length;
    const body: Record<string, unknown> = {
      kind: 'drive#changeList',
      changes: out.map((c) => selectFields(c as Record<string, unknown>, subFields(q.get('fields'), 'changes') ?? 'kind,changeType,time,removed,fileId,file(kind,id,name,mimeType)')),
    };
    if (more) body.nextPageToken = this.pageToken(last + 1);
    else body.newStartPageToken = this.pageToken(this.currentSeq + 1);
    this.json(res, 200, selectFields(body, topFields(q.get('fields'))));
  }

  // ---- resources ---------------------------------------------------------------------------------------

  private fileResource(f: FakeFile): Record<string, unknown> {
    const r: Record<string, unknown> = {
      kind: FILE_KIND, id: f.id, name: f.name, mimeType: f.mimeType, parents: [f.parent],
      trashed: this.isTrashed(f), explicitlyTrashed: f.explicitlyTrashed, version: String(f.version),
      createdTime: f.createdTime, modifiedTime: f.modifiedTime,
      webViewLink: f.mimeType === FOLDER ? `https://drive.fake/drive/folders/${f.id}` : `https://drive.fake/file/d/${f.id}/view`,
    };
    if (f.driveId) r.driveId = f.driveId;
    if (f.owner) r.owners = [{ kind: 'drive#user', emailAddress: f.owner, displayName: f.owner.split('@')[0] }];
    if (f.lastModifyingUser) r.lastModifyingUser = { kind: 'drive#user', emailAddress: f.lastModifyingUser };
    if (!f.mimeType.startsWith('application/vnd.google-apps.')) {
      r.md5Checksum = md5(f.content);
      r.size = String(f.content.length);
      r.headRevisionId = `rev-${md5(f.content).slice(0, 8)}`;
    }
    if (f.mimeType === SHORTCUT && f.shortcutTarget) {
      const t = this.files.get(f.shortcutTarget);
      r.shortcutDetails = { targetId: f.shortcutTarget, targetMimeType: t?.mimeType ?? 'application/octet-stream' };
    }
    if (DOWNLOADABLE_GOOGLE.has(f.mimeType)) r.exportLinks = Object.fromEntries(Object.keys(f.exports ?? {}).map((k) => [k, `${this.url}/export/${f.id}`]));
    return r;
  }

  private driveResource(id: string): Record<string, unknown> {
    const d = this.mustDrive(id);
    return { kind: 'drive#drive', id: d.id, name: d.name, createdTime: d.createdTime, hidden: false };
  }

  private visibleFile(who: string, id: string, q: URLSearchParams): FakeFile {
    const f = this.files.get(id);
    const notFound = new HttpError(404, 'notFound', `File not found: ${id}.`, { location: 'fileId' });
    if (!f || !this.canAccess(who, f)) throw notFound;
    if (f.driveId && q.get('supportsAllDrives') !== 'true') throw notFound;
    return f;
  }

  private visibleDrive(who: string, id: string, adminAccess: boolean) {
    const d = this.drives.get(id);
    const notFound = new HttpError(404, 'notFound', `Shared drive not found: ${id}`, { location: 'driveId' });
    if (!d) throw notFound;
    if (adminAccess) {
      if (!this.users.get(who)?.admin) throw new HttpError(403, 'forbidden', 'The user does not have sufficient permissions for this operation.');
      return d;
    }
    if (!this.isDriveMember(who, id)) throw notFound;
    return d;
  }

  private markKnown(who: string, fileId: string): void {
    let s = this.known.get(who);
    if (!s) this.known.set(who, (s = new Set()));
    s.add(fileId);
  }

  // ---- plumbing ----------------------------------------------------------------------------------------

  /** Offset paging with opaque tokens; `cap` is the API's own maximum page size. */
  private page(res: ServerResponse, key: string, items: unknown[], q: URLSearchParams, sizeParam: string, cap: number, extra: Record<string, unknown>, fieldsApply = false): void {
    const offset = q.get('pageToken') ? Number(Buffer.from(q.get('pageToken')!, 'base64url').toString().replace(/^o:/, '')) : 0;
    if (!Number.isInteger(offset) || offset < 0) throw new HttpError(400, 'invalid', 'Invalid Value', { location: 'pageToken' });
    const size = Math.min(Number(q.get(sizeParam) ?? cap) || cap, cap, this.pageSize);
    const slice = items.slice(offset, offset + size);
    const body: Record<string, unknown> = { ...extra, [key]: slice };
    if (offset + size < items.length) body.nextPageToken = Buffer.from(`o:${offset + size}`).toString('base64url');
    this.json(res, 200, fieldsApply ? selectFields(body, topFields(q.get('fields'))) : body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private apiError(res: ServerResponse, status: number, reason: string, message: string, extra: Record<string, unknown> = {}): void {
    const statusText: Record<number, string> = { 400: 'INVALID_ARGUMENT', 401: 'UNAUTHENTICATED', 403: 'PERMISSION_DENIED', 404: 'NOT_FOUND', 429: 'RESOURCE_EXHAUSTED', 500: 'INTERNAL', 503: 'UNAVAILABLE' };
    this.json(res, status, { error: { code: status, message, errors: [{ message, domain: status === 403 && /Rate/.test(reason) ? 'usageLimits' : 'global', reason, ...extra }], status: statusText[status] ?? 'UNKNOWN' } });
  }
}

/** `fields=nextPageToken,files(id,name)` → `id,name` for key `files`; null when the key is not narrowed. */
function subFields(fields: string | null, key: string): string | null {
  if (!fields) return null;
  for (const part of splitTop(fields)) {
    if (part === key || part === '*') return '*';
    if (part.startsWith(`${key}(`) && part.endsWith(')')) return part.slice(key.length + 1, -1);
    if (part.startsWith(`${key}/`)) return part.slice(key.length + 1);
  }
  return null;
}

/** The top-level selection of a list response (`files(…)` counts as `files`). */
function topFields(fields: string | null): string | null {
  if (!fields) return null;
  return splitTop(fields).map((p) => p.replace(/[(/].*$/, '')).join(',');
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeGoogle(opts: FakeGoogleOptions = {}): Promise<FakeGoogle> {
  return new FakeGoogle(opts).listen();
}

export { myDriveRoot };
