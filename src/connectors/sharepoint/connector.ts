import { CursorExpiredError, UpstreamError, errorMessage } from '../../errors.ts';
import type { Change, ChangePage, Connector, GroupMembers, ResolvedAcl } from '../interface.ts';
import { AppTokens, CredentialsError } from './auth.ts';
import {
  DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_FILE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS,
  normalizeAuthorityHost, normalizeGraphBase, parseCredential, sharepointConfigSchema,
} from './config.ts';
import { Directory } from './directory.ts';
import { GraphApi, GraphError, type GraphPage, type GraphTuning } from './graph.ts';
import { limiterFor } from './http.ts';
import {
  fileMeta, isFile, isFolderish, normalizeParentPath, sharepointExternalId, shortHash, siteRef,
  type DriveInfo, type DriveItem, type SharePointIds,
} from './items.ts';
import { PermissionMapper, type GraphPermission, type MappedAcl } from './permissions.ts';
import { SharePointRest } from './rest.ts';
import { SiteGroupReader, isSiteGroupKey, ownersOf, parseSiteGroupKey, type SiteRef } from './sitegroups.ts';
import { graphChangeWatch } from './subscriptions.ts';

/**
 * Asks delta for deletions as `deleted` items, for items whose permissions changed even where
 * the app could not see them before, and to flag sharing changes (`@microsoft.graph.sharedChanged`).
 * The flag is not relied on: every file in a delta page gets its ACL re-read anyway, and Graph does
 * not set it on folders.
 */
const DELTA_PREFER = 'deltashowremovedasdeleted, deltatraversepermissiongaps, deltashowsharingchanges';

/**
 * The cursor (opaque to the engine) per drive: the `@odata.deltaLink` and a fingerprint per folder
 * (name + parent, and effective ACL). Delta reports a renamed / re-permissioned folder but not its
 * descendants, and it also reports every ANCESTOR of any changed file (their cTag changed), so
 * "folder appeared" alone cannot mean "re-read everything below it". Comparing fingerprints tells
 * a real folder change from ancestor noise. `groups` remembers every source group (Entra group,
 * SharePoint group) seen in an ACL so an incremental run still refreshes memberships of groups no
 * changed item mentioned.
 *
 * With a client secret, `siteGroupItems` lists the files whose ACL names a SharePoint group
 * (1: nothing else grants them), so every run — incremental ones too — can say how many documents
 * a certificate would open. `auth` is the credential kind the state was built with; another kind
 * means a full enumeration.
 */
interface DriveState {
  deltaLink: string;
  folders: Record<string, string>;
  siteGroupItems?: Record<string, 0 | 1>;
}
interface CursorState {
  v: 2;
  auth: 'secret' | 'certificate';
  drives: Record<string, DriveState>;
  groups: string[];
}

export interface SharePointConnector extends Connector {
  groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers>;
  /** Exposed for tests and diagnostics (limiter.maxActive, tokens.tokenRequests). */
  readonly graph: GraphApi;
  readonly tokens: AppTokens;
}

export interface CreateSharePointArgs {
  sourceId: string;
  config: Record<string, unknown>;
  credentials: Record<string, unknown> | null;
  /** Retry/timeout tuning; production uses the defaults. */
  tuning?: GraphTuning;
}

const enc = encodeURIComponent;
type WalkMode = 'acl' | 'upsert';
/** Folder fingerprints are `<name+parent hash>.<acl hash>`. */
const pathPart = (print: string) => print.split('.')[0];

export function createSharePointConnector({ sourceId, config, credentials, tuning }: CreateSharePointArgs): SharePointConnector {
  const cfg = sharepointConfigSchema.parse(config);
  const credential = parseCredential(credentials);
  const graphBase = normalizeGraphBase(cfg.graphBaseUrl);
  const authorityHost = normalizeAuthorityHost(cfg.authorityHost);
  const timeoutMs = cfg.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const maxFileBytes = cfg.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;

  const tokens = new AppTokens({
    graphScope: `${graphBase}/.default`, authorityHost, tenantId: cfg.tenantId, credential, timeoutMs, fetch: tuning?.fetch, signal: tuning?.signal,
  });
  const limiter = limiterFor(`${graphBase}|${cfg.tenantId}`, cfg.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY);
  const graph = new GraphApi(graphBase, tokens, limiter, timeoutMs, tuning);
  const directory = new Directory(graph);
  // SharePoint REST accepts app-only tokens obtained with a certificate only.
  const certificate = credential.kind === 'certificate';
  const rest = certificate ? new SharePointRest(tokens, limiter, timeoutMs, tuning) : null;
  const siteGroups = rest ? new SiteGroupReader(rest, directory) : null;

  const mapper = new PermissionMapper(sourceId, (id) => directory.userEmail(id), cfg.siteGroupMembers, certificate);
  const seenGroups = new Set<string>();
  const cursorGroups = new Set<string>();
  const siteGroupPrefix = `sgroup:${sourceId}/`;
  const isSiteGroupPrincipal = (p: string) => p.startsWith(siteGroupPrefix) && isSiteGroupKey(p.slice(siteGroupPrefix.length));
  /** SharePoint group memberships read during changes(), handed out by groups(). */
  const siteGroupMembers = new Map<string, Promise<string[]>>();

  async function itemAcl(drive: DriveInfo, itemId: string): Promise<MappedAcl> {
    const driveId = drive.id;
    const perms: GraphPermission[] = [];
    try {
      for await (const page of graph.pages<GraphPermission>(`/drives/${enc(driveId)}/items/${enc(itemId)}/permissions`)) {
        perms.push(...(page.value ?? []));
      }
    } catch (err) {
      // Transient failures fail the run (the job layer retries it). A definitive refusal for this
      // item fails closed: nobody may read it, and the run reports why. Never keep a stale ACL.
      const credentialProblem = err instanceof CredentialsError || (err instanceof UpstreamError && err.status === 401);
      if (err instanceof UpstreamError && !err.retryable && !credentialProblem) {
        return { principals: [], problems: [`permissions could not be read (${err.message}); visible to no one`], groupIds: [] };
      }
      throw err;
    }
    const acl = await mapper.map(perms, drive.site);
    for (const g of acl.groupIds) seenGroups.add(g);
    return acl;
  }

  const toAcl = (a: MappedAcl): ResolvedAcl => (a.problems.length ? { principals: a.principals, problems: a.problems } : { principals: a.principals });

  /** Files whose ACL names a SharePoint group that a client secret cannot expand (null with a certificate). */
  type SiteGroupItems = Map<string, 0 | 1> | null;
  function trackSiteGroups(items: SiteGroupItems, itemId: string, acl: MappedAcl): void {
    if (!items) return;
    const named = acl.principals.filter(isSiteGroupPrincipal).length;
    if (named === 0) items.delete(itemId);
    else items.set(itemId, named === acl.principals.length ? 1 : 0);
  }

  async function upsertFor(drive: DriveInfo, item: DriveItem, path: string, sg: SiteGroupItems): Promise<Change> {
    const driveId = drive.id;
    const acl = await itemAcl(drive, item.id);
    trackSiteGroups(sg, item.id, acl);
    const contentPath = `/drives/${enc(driveId)}/items/${enc(item.id)}/content`;
    return {
      kind: 'upsert',
      doc: fileMeta(driveId, item, path),
      acl: toAcl(acl),
      // Every file is emitted, whatever its size or type: the engine records too-large and
      // unsupported files with a reason. The download itself refuses more than maxFileBytes.
      fetch: () => graph.download(contentPath, maxFileBytes),
    };
  }

  async function aclFor(drive: DriveInfo, item: DriveItem, sg: SiteGroupItems): Promise<Change> {
    const acl = await itemAcl(drive, item.id);
    trackSiteGroups(sg, item.id, acl);
    return { kind: 'acl', externalId: sharepointExternalId(drive.id, item.id), acl: toAcl(acl) };
  }

  async function explainMissing<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof GraphError && (err.status === 404 || err.status === 400)) {
        throw new UpstreamError(`${what} not found`, { retryable: false, status: err.status, cause: err });
      }
      if (err instanceof GraphError && err.status === 403) {
        throw new UpstreamError(`access to ${what} denied by Microsoft Graph (${err.code ?? 403}); grant the app Sites.Read.All (or Sites.Selected for it)`, { retryable: false, status: 403, cause: err });
      }
      throw err;
    }
  }

  /** The configured libraries, each with the site whose SharePoint groups its permissions may name. */
  async function listDrives(): Promise<DriveInfo[]> {
    const drives = new Map<string, DriveInfo>();
    for (const id of cfg.driveIds ?? []) {
      const d = await explainMissing(`drive ${id}`, () => graph.get<DriveInfo>(`/drives/${enc(id)}?$select=id,name,webUrl,driveType,sharePointIds`));
      let site = siteRef(d.sharePointIds);
      if (!site) {
        const root = await explainMissing(`drive ${id}`, () => graph.get<{ sharepointIds?: SharePointIds }>(`/drives/${enc(id)}/root?$select=sharepointIds`));
        site = siteRef(root.sharepointIds);
      }
      drives.set(d.id, { ...d, site });
    }
    for (const siteId of cfg.siteIds ?? []) {
      await explainMissing(`site ${siteId}`, async () => {
        const s = await graph.get<{ id: string; webUrl?: string; sharepointIds?: SharePointIds }>(`/sites/${enc(siteId)}?$select=id,webUrl,sharepointIds`);
        const site = siteRef(s.sharepointIds, { url: s.webUrl, graphSiteId: s.id });
        for await (const page of graph.pages<DriveInfo>(`/sites/${enc(siteId)}/drives?$select=id,name,webUrl,driveType`)) {
          for (const d of page.value ?? []) {
            if (!d.driveType || d.driveType === 'documentLibrary' || d.driveType === 'business') drives.set(d.id, { ...d, site });
          }
        }
      });
    }
    return [...drives.values()];
  }

  let drivesOnce: Promise<DriveInfo[]> | null = null;
  const drivesOfRun = () => (drivesOnce ??= listDrives().catch((err: unknown) => {
    drivesOnce = null;
    throw err;
  }));

  /**
   * Members of a SharePoint group (read once per run). With a client secret, or when the group's
   * site is no longer configured, it has none: fail closed.
   */
  function siteGroupMembersOf(key: string): Promise<string[]> {
    let p = siteGroupMembers.get(key);
    if (!p) {
      p = (async () => {
        const ref = parseSiteGroupKey(key);
        if (!ref || !siteGroups) return [];
        const site = (await drivesOfRun()).map((d) => d.site).find((s): s is SiteRef => !!s && s.collectionId === ref.collectionId);
        if (!site) return [];
        const { emails, skipped } = await siteGroups.members(site, ref.groupId);
        for (const reason of skipped) siteGroupSkips.add(`SharePoint group "${mapper.siteGroupNames.get(key) ?? key}": ${reason} grants nothing`);
        return emails;
      })();
      p.catch(() => siteGroupMembers.delete(key));
      siteGroupMembers.set(key, p);
    }
    return p;
  }
  const siteGroupSkips = new Set<string>();

  /** One drive's delta feed; the last yielded batch carries the drive's new state. */
  async function* scanDrive(drive: DriveInfo, prev: DriveState | null): AsyncGenerator<{ changes: Change[]; done?: DriveState; warnings: string[] }> {
    const incremental = prev !== null;
    const folders = new Map(Object.entries(prev?.folders ?? {}));
    const sg: SiteGroupItems = certificate ? null : new Map(Object.entries(prev?.siteGroupItems ?? {}));
    const paths = new Map<string, Promise<string>>();
    const walked = new Map<string, WalkMode>();

    // Delta items carry no parentReference.path ("track items by id"), so paths come from the
    // folders seen in this run, or from one GET per unknown parent folder (cached).
    const pathOf = (folderId: string): Promise<string> => {
      let p = paths.get(folderId);
      if (!p) {
        p = graph.get<DriveItem>(`/drives/${enc(drive.id)}/items/${enc(folderId)}?$select=id,name,root,parentReference`).then(async (f) => {
          if (f.root) return '';
          if (f.parentReference?.path) return `${normalizeParentPath(f.parentReference.path)}/${f.name ?? f.id}`;
          return f.parentReference?.id ? `${await pathOf(f.parentReference.id)}/${f.name ?? f.id}` : `/${f.name ?? f.id}`;
        });
        p.catch(() => paths.delete(folderId));
        paths.set(folderId, p);
      }
      return p;
    };
    const childPath = async (item: DriveItem): Promise<string> => {
      const parentId = item.parentReference?.id;
      if (parentId) return `${await pathOf(parentId)}/${item.name ?? item.id}`;
      if (item.parentReference?.path) return `${normalizeParentPath(item.parentReference.path)}/${item.name ?? item.id}`;
      return `/${item.name ?? item.id}`;
    };

    const fingerprint = async (folder: DriveItem): Promise<string> => {
      const acl = await itemAcl(drive, folder.id);
      const where = folder.root ? 'root' : `${folder.name ?? ''}\u0000${folder.parentReference?.id ?? ''}`;
      return `${shortHash(where)}.${shortHash(JSON.stringify([acl.principals, acl.problems]))}`;
    };

    /**
     * Re-reads everything below a folder whose fingerprint changed: `acl` changes when only
     * permissions changed, upserts (same contentVersion, new path) when it was renamed or moved.
     * A sub-folder found renamed on the way is re-read in upsert mode from there down.
     */
    async function* walk(root: { id: string; path: string }, mode: WalkMode): AsyncGenerator<Change[]> {
      const stack = [{ ...root, mode }];
      while (stack.length) {
        const cur = stack.pop()!;
        const done = walked.get(cur.id);
        if (done === 'upsert' || done === cur.mode) continue;
        walked.set(cur.id, cur.mode);
        for await (const page of graph.pages<DriveItem>(`/drives/${enc(drive.id)}/items/${enc(cur.id)}/children?$top=200`)) {
          const items = page.value ?? [];
          const subfolders = items.filter(isFolderish);
          const [changes] = await Promise.all([
            Promise.all(items.filter(isFile).map((f) => (cur.mode === 'upsert' ? upsertFor(drive, f, `${cur.path}/${f.name ?? f.id}`, sg) : aclFor(drive, f, sg)))),
            Promise.all(subfolders.map(async (s) => {
              const p = `${cur.path}/${s.name ?? s.id}`;
              paths.set(s.id, Promise.resolve(p));
              const before = folders.get(s.id);
              const print = await fingerprint(s);
              folders.set(s.id, print);
              const moved = before !== undefined && pathPart(before) !== pathPart(print);
              stack.push({ id: s.id, path: p, mode: cur.mode === 'upsert' || moved ? 'upsert' : 'acl' });
            })),
          ]);
          if (changes.length) yield changes;
        }
      }
    }

    let url = prev?.deltaLink ?? `/drives/${enc(drive.id)}/root/delta`;
    for (;;) {
      let page: GraphPage<DriveItem>;
      try {
        page = await graph.get<GraphPage<DriveItem>>(url, { Prefer: DELTA_PREFER });
      } catch (err) {
        if (err instanceof GraphError && (err.status === 410 || /^(resync|syncStateNotFound)/i.test(err.code ?? ''))) {
          throw new CursorExpiredError(`delta token of library "${drive.name}" is no longer valid (${err.code ?? 'HTTP 410'}); a full enumeration is needed`);
        }
        throw err;
      }
      // An item can appear more than once in a feed; the last occurrence is its current state.
      const byId = new Map<string, DriveItem>();
      for (const item of page.value ?? []) {
        if (!item?.id) continue;
        byId.delete(item.id);
        byId.set(item.id, item);
      }
      const items = [...byId.values()];
      const changes: Change[] = [];
      const warnings: string[] = [];
      const liveFolders = items.filter((i) => !i.deleted && isFolderish(i));
      for (const f of liveFolders) {
        const p = f.root ? Promise.resolve('') : childPath(f);
        p.catch(() => paths.delete(f.id));
        paths.set(f.id, p);
      }
      for (const item of items) {
        if (!item.deleted) continue;
        // Deleted items lose their facets and name, so file or folder cannot be told apart;
        // a delete of a folder id matches no document and is harmless.
        changes.push({ kind: 'delete', externalId: sharepointExternalId(drive.id, item.id) });
        folders.delete(item.id);
        sg?.delete(item.id);
        paths.delete(item.id);
      }
      const files = items.filter((i) => !i.deleted && isFile(i));
      const skipped = items.filter((i) => !i.deleted && !isFile(i) && !isFolderish(i));
      for (const s of skipped) warnings.push(`${drive.name}: item ${s.name ?? s.id} is neither a file nor a folder; skipped`);

      // All ACL reads of the page at once; the tenant limiter keeps in-flight requests bounded.
      const [fileChanges, folderPrints] = await Promise.all([
        Promise.all(files.map(async (f) => upsertFor(drive, f, await childPath(f), sg))),
        Promise.all(liveFolders.map(async (f) => ({ folder: f, print: await fingerprint(f) }))),
      ]);
      changes.push(...fileChanges);

      const walks: Array<{ id: string; mode: WalkMode }> = [];
      for (const { folder, print } of folderPrints) {
        const before = folders.get(folder.id);
        folders.set(folder.id, print);
        // A folder new to us (no fingerprint) brings its files in the same feed; only known
        // folders whose own name, place or permissions changed need their subtree re-read.
        if (incremental && before !== undefined && before !== print) {
          walks.push({ id: folder.id, mode: pathPart(before) !== pathPart(print) ? 'upsert' : 'acl' });
        }
      }

      const next = page['@odata.nextLink'];
      const deltaLink = page['@odata.deltaLink'];
      if (!next && !deltaLink) throw new GraphError(`delta of library "${drive.name}" answered without nextLink or deltaLink`, { retryable: true });
      const done = (): DriveState => ({ deltaLink: deltaLink!, folders: Object.fromEntries(folders), ...(sg ? { siteGroupItems: Object.fromEntries(sg) } : {}) });

      if (!next && walks.length === 0) {
        yield { changes, warnings, done: done() };
        return;
      }
      yield { changes, warnings };
      for (const w of walks) {
        for await (const batch of walk({ id: w.id, path: await paths.get(w.id)! }, w.mode)) yield { changes: batch, warnings: [] };
      }
      if (!next) {
        yield { changes: [], warnings: [], done: done() };
        return;
      }
      url = next;
    }
  }

  function parseCursor(cursor: string): CursorState {
    let state: unknown;
    try {
      state = JSON.parse(cursor);
    } catch {
      throw new CursorExpiredError('SharePoint cursor is not readable; a full enumeration is needed');
    }
    const s = state as Partial<CursorState>;
    // Version 1 predates SharePoint group principals: its ACLs must be read again.
    if (!s || s.v !== 2 || typeof s.drives !== 'object' || s.drives === null) {
      throw new CursorExpiredError('SharePoint cursor has an older or unknown format; a full enumeration is needed');
    }
    if (s.auth !== credential.kind) {
      throw new CursorExpiredError(`SharePoint credentials changed to a ${credential.kind === 'secret' ? 'client secret' : 'certificate'}; a full enumeration re-reads every permission`);
    }
    return { v: 2, auth: credential.kind, drives: s.drives, groups: Array.isArray(s.groups) ? s.groups.filter((g) => typeof g === 'string') : [] };
  }

  /**
   * The run's closing warnings: SharePoint groups a client secret cannot expand, counted over the
   * whole source (not only what this run saw), and members of SharePoint groups that grant nothing.
   */
  async function closingWarnings(state: CursorState): Promise<string[]> {
    const warnings: string[] = [];
    if (certificate) {
      const keys = [...new Set([...cursorGroups, ...seenGroups])].filter(isSiteGroupKey);
      for (const key of keys.sort()) await siteGroupMembersOf(key);
      warnings.push(...[...siteGroupSkips].sort());
      return warnings;
    }
    let named = 0;
    let only = 0;
    for (const d of Object.values(state.drives)) {
      for (const v of Object.values(d.siteGroupItems ?? {})) {
        named++;
        if (v === 1) only++;
      }
    }
    if (named > 0) {
      warnings.push(
        `SharePoint groups: ${named} document${named === 1 ? '' : 's'} of this source ${named === 1 ? 'is' : 'are'} shared through SharePoint ` +
          `groups whose members a client secret cannot read (${only} of them only that way, so visible to no one). Those grants give ` +
          'no one access. SharePoint\'s REST API, which lists SharePoint group members, accepts only certificate credentials: add a ' +
          'certificate to the source (credentials {clientId, certificate: {privateKeyPem, certificatePem}}) to resolve them.',
      );
    }
    return warnings;
  }

  return {
    type: 'sharepoint',
    enumeratesEverything: false,
    graph,
    tokens,
    watch: graphChangeWatch(graph, async () => (await listDrives()).map((d) => d.id)),

    /**
     * A token, every configured site and drive, and with a certificate SharePoint REST on each of
     * their sites (so a missing SharePoint API permission shows now, not at the first sync).
     */
    async test() {
      try {
        await tokens.get(graph.tokenScope);
      } catch (err) {
        if (err instanceof CredentialsError) throw new Error(err.message, { cause: err });
        throw new Error(`cannot obtain a Microsoft Graph token from ${authorityHost}: ${errorMessage(err)}`, { cause: err });
      }
      let drives: DriveInfo[];
      try {
        drives = await drivesOfRun();
      } catch (err) {
        throw new Error(errorMessage(err), { cause: err });
      }
      if (!rest) return;
      const sites = new Map(drives.flatMap((d) => (d.site ? [[d.site.url, d.site] as const] : [])));
      for (const site of sites.values()) {
        try {
          await rest.get(`${site.url}/_api/web/sitegroups?$select=Id&$top=1`);
        } catch (err) {
          throw new Error(
            `SharePoint REST on ${site.url} refused the app (${errorMessage(err)}); grant the app the SharePoint application permission ` +
              'Sites.Read.All (or Sites.Selected with read access to the site) and admin consent',
            { cause: err },
          );
        }
      }
    },

    /**
     * Pages follow Graph's delta pages. `cursor` stays null until a library's deltaLink is
     * reached; then it holds every finished library's state. The engine commits only non-null
     * cursors, so a crash mid-library replays that library's delta from its previous link (or its
     * full enumeration) — every change is idempotent, so replay is harmless.
     */
    async *changes({ cursor, full }): AsyncIterable<ChangePage> {
      const prev = full || cursor === null ? null : parseCursor(cursor);
      for (const g of prev?.groups ?? []) cursorGroups.add(g);
      drivesOnce = null;
      directory.forget();
      siteGroupMembers.clear();
      siteGroupSkips.clear();
      const drives = await drivesOfRun();
      const state: CursorState = { v: 2, auth: credential.kind, drives: {}, groups: [] };
      // Libraries not reached yet keep their old link, so a committed cursor resumes only the rest.
      // Libraries no longer configured are dropped.
      for (const d of drives) if (prev?.drives[d.id]) state.drives[d.id] = prev.drives[d.id]!;
      const encode = () => {
        state.groups = [...new Set([...cursorGroups, ...seenGroups])].sort();
        return JSON.stringify(state);
      };
      const warnings: string[] = [];
      if (drives.length === 0) {
        yield { changes: [], cursor: encode(), warnings: ['no document libraries found in the configured sites'] };
        return;
      }
      // One page is held back so the run's closing warnings travel with the last page (and cursor).
      let held: ChangePage | null = null;
      for (const drive of drives) {
        if (!drive.site) warnings.push(`library "${drive.name}": Graph did not say which site it belongs to; SharePoint groups in its permissions grant nothing`);
        for await (const batch of scanDrive(drive, prev?.drives[drive.id] ?? null)) {
          if (batch.done) state.drives[drive.id] = batch.done;
          if (held) yield held;
          held = { changes: batch.changes, cursor: batch.done ? encode() : null, warnings: [...warnings.splice(0), ...batch.warnings] };
        }
      }
      if (held) {
        held.warnings = [...(held.warnings ?? []), ...(await closingWarnings(state))];
        yield held;
      }
    },

    /**
     * Members of every source group seen in ACLs (this run, or remembered in the cursor),
     * configured in `groupIds`, or passed by the engine: Entra groups transitively, Microsoft 365
     * group owners, and SharePoint groups through SharePoint REST (with a certificate; none
     * otherwise). A group that no longer exists has no members.
     */
    async *groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers> {
      const ids = new Set([...(cfg.groupIds ?? []), ...(opts?.knownGroupIds ?? []), ...cursorGroups, ...seenGroups]);
      for (const id of [...ids].sort()) {
        const owners = ownersOf(id);
        const memberEmails = isSiteGroupKey(id)
          ? await siteGroupMembersOf(id)
          : owners ? await directory.groupOwners(owners) : await directory.transitiveUsers(id);
        yield { groupId: id, memberEmails };
      }
    },
  };
}
