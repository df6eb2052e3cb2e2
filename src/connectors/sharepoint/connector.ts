import { CursorExpiredError, UpstreamError, errorMessage } from '../../errors.ts';
import type { Change, ChangePage, Connector, GroupMembers, ResolvedAcl } from '../interface.ts';
import { CredentialsError, TokenClient } from './auth.ts';
import {
  DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_FILE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS,
  normalizeAuthorityHost, normalizeGraphBase, sharepointConfigSchema, sharepointCredentialsSchema,
} from './config.ts';
import { GraphClient, GraphError, limiterFor, type GraphPage, type GraphTuning } from './graph.ts';
import {
  fileMeta, isFile, isFolderish, normalizeParentPath, sharepointExternalId, shortHash,
  type DriveInfo, type DriveItem,
} from './items.ts';
import { PermissionMapper, type GraphPermission, type MappedAcl } from './permissions.ts';

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
 * a real folder change from ancestor noise. `groups` remembers every Entra group seen in an ACL so
 * an incremental run still refreshes memberships of groups no changed item mentioned.
 */
interface DriveState {
  deltaLink: string;
  folders: Record<string, string>;
}
interface CursorState {
  v: 1;
  drives: Record<string, DriveState>;
  groups: string[];
}

export interface SharePointConnector extends Connector {
  groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers>;
  /** Exposed for tests and diagnostics (limiter.maxActive, tokens.tokenRequests). */
  readonly graph: GraphClient;
  readonly tokens: TokenClient;
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
const EMAIL = /^[^\s@|]+@[^\s@|]+$/;

export function createSharePointConnector({ sourceId, config, credentials, tuning }: CreateSharePointArgs): SharePointConnector {
  const cfg = sharepointConfigSchema.parse(config);
  const parsedCreds = sharepointCredentialsSchema.safeParse(credentials ?? {});
  if (!parsedCreds.success) throw new Error('SharePoint sources need credentials {clientId, clientSecret} (an app registration with a client secret)');
  const creds = parsedCreds.data;
  const graphBase = normalizeGraphBase(cfg.graphBaseUrl);
  const authorityHost = normalizeAuthorityHost(cfg.authorityHost);
  const timeoutMs = cfg.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const maxFileBytes = cfg.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;

  const tokens = new TokenClient({
    authorityHost, tenantId: cfg.tenantId, clientId: creds.clientId, clientSecret: creds.clientSecret,
    scope: `${graphBase}/.default`, timeoutMs, fetch: tuning?.fetch,
  });
  const limiter = limiterFor(`${graphBase}|${cfg.tenantId}`, cfg.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY);
  const graph = new GraphClient(graphBase, tokens, limiter, timeoutMs, tuning);

  const userEmails = new Map<string, Promise<string | null>>();
  const lookupUserEmail = (id: string): Promise<string | null> => {
    let p = userEmails.get(id);
    if (!p) {
      p = graph.get<{ mail?: string | null; userPrincipalName?: string | null }>(`/users/${enc(id)}?$select=mail,userPrincipalName`)
        .then((u) => u.mail || u.userPrincipalName || null)
        .catch((err: unknown) => {
          if (err instanceof GraphError && (err.status === 404 || err.status === 400)) return null;
          userEmails.delete(id); // transient: let a later item try again
          throw err;
        });
      userEmails.set(id, p);
    }
    return p;
  };
  const mapper = new PermissionMapper(sourceId, lookupUserEmail, cfg.siteGroupMembers);
  const seenGroups = new Set<string>();
  const cursorGroups = new Set<string>();

  async function itemAcl(driveId: string, itemId: string): Promise<MappedAcl> {
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
    const acl = await mapper.map(perms);
    for (const g of acl.groupIds) seenGroups.add(g);
    return acl;
  }

  const toAcl = (a: MappedAcl): ResolvedAcl => (a.problems.length ? { principals: a.principals, problems: a.problems } : { principals: a.principals });

  async function upsertFor(driveId: string, item: DriveItem, path: string): Promise<Change> {
    const acl = await itemAcl(driveId, item.id);
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

  async function aclFor(driveId: string, item: DriveItem): Promise<Change> {
    return { kind: 'acl', externalId: sharepointExternalId(driveId, item.id), acl: toAcl(await itemAcl(driveId, item.id)) };
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

  async function listDrives(): Promise<DriveInfo[]> {
    const drives = new Map<string, DriveInfo>();
    for (const id of cfg.driveIds ?? []) {
      const d = await explainMissing(`drive ${id}`, () => graph.get<DriveInfo>(`/drives/${enc(id)}?$select=id,name,webUrl,driveType`));
      drives.set(d.id, d);
    }
    for (const siteId of cfg.siteIds ?? []) {
      await explainMissing(`site ${siteId}`, async () => {
        for await (const page of graph.pages<DriveInfo>(`/sites/${enc(siteId)}/drives?$select=id,name,webUrl,driveType`)) {
          for (const d of page.value ?? []) {
            if (!d.driveType || d.driveType === 'documentLibrary' || d.driveType === 'business') drives.set(d.id, d);
          }
        }
      });
    }
    return [...drives.values()];
  }

  /** One drive's delta feed; the last yielded batch carries the drive's new state. */
  async function* scanDrive(drive: DriveInfo, prev: DriveState | null): AsyncGenerator<{ changes: Change[]; done?: DriveState; warnings: string[] }> {
    const incremental = prev !== null;
    const folders = new Map(Object.entries(prev?.folders ?? {}));
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
      const acl = await itemAcl(drive.id, folder.id);
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
            Promise.all(items.filter(isFile).map((f) => (cur.mode === 'upsert' ? upsertFor(drive.id, f, `${cur.path}/${f.name ?? f.id}`) : aclFor(drive.id, f)))),
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
        paths.delete(item.id);
      }
      const files = items.filter((i) => !i.deleted && isFile(i));
      const skipped = items.filter((i) => !i.deleted && !isFile(i) && !isFolderish(i));
      for (const s of skipped) warnings.push(`${drive.name}: item ${s.name ?? s.id} is neither a file nor a folder; skipped`);

      // All ACL reads of the page at once; the tenant limiter keeps in-flight requests bounded.
      const [fileChanges, folderPrints] = await Promise.all([
        Promise.all(files.map(async (f) => upsertFor(drive.id, f, await childPath(f)))),
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
      const done = (): DriveState => ({ deltaLink: deltaLink!, folders: Object.fromEntries(folders) });

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
    if (!s || s.v !== 1 || typeof s.drives !== 'object' || s.drives === null) {
      throw new CursorExpiredError('SharePoint cursor has an unknown format; a full enumeration is needed');
    }
    return { v: 1, drives: s.drives, groups: Array.isArray(s.groups) ? s.groups.filter((g) => typeof g === 'string') : [] };
  }

  return {
    type: 'sharepoint',
    enumeratesEverything: false,
    graph,
    tokens,

    async test() {
      try {
        await tokens.get(tuning?.signal);
      } catch (err) {
        if (err instanceof CredentialsError) throw new Error(err.message, { cause: err });
        throw new Error(`cannot obtain a Microsoft Graph token from ${authorityHost}: ${errorMessage(err)}`, { cause: err });
      }
      const check = async (what: string, path: string) => {
        try {
          await explainMissing(what, () => graph.get(path));
        } catch (err) {
          throw new Error(errorMessage(err), { cause: err });
        }
      };
      for (const id of cfg.siteIds ?? []) await check(`site ${id}`, `/sites/${enc(id)}?$select=id,displayName,webUrl`);
      for (const id of cfg.driveIds ?? []) await check(`drive ${id}`, `/drives/${enc(id)}?$select=id,name`);
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
      const drives = await listDrives();
      const state: CursorState = { v: 1, drives: {}, groups: [] };
      // Libraries not reached yet keep their old link, so a committed cursor resumes only the rest.
      // Libraries no longer configured are dropped.
      for (const d of drives) if (prev?.drives[d.id]) state.drives[d.id] = prev.drives[d.id]!;
      const encode = () => {
        state.groups = [...new Set([...cursorGroups, ...seenGroups])].sort();
        return JSON.stringify(state);
      };
      if (drives.length === 0) {
        yield { changes: [], cursor: encode(), warnings: ['no document libraries found in the configured sites'] };
        return;
      }
      for (const drive of drives) {
        for await (const batch of scanDrive(drive, prev?.drives[drive.id] ?? null)) {
          if (batch.done) state.drives[drive.id] = batch.done;
          yield { changes: batch.changes, cursor: batch.done ? encode() : null, warnings: batch.warnings };
        }
      }
    },

    /**
     * Transitive user members of every Entra group seen in ACLs (this run, or remembered in the
     * cursor), configured in `groupIds`, or passed by the engine. A group Graph no longer knows
     * has no members.
     */
    async *groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers> {
      const ids = new Set([...(cfg.groupIds ?? []), ...(opts?.knownGroupIds ?? []), ...cursorGroups, ...seenGroups]);
      for (const id of [...ids].sort()) {
        const emails = new Set<string>();
        try {
          const url = `/groups/${enc(id)}/transitiveMembers/microsoft.graph.user?$select=id,mail,userPrincipalName&$top=999`;
          for await (const page of graph.pages<{ mail?: string | null; userPrincipalName?: string | null }>(url)) {
            for (const m of page.value ?? []) {
              const e = (m.mail || m.userPrincipalName || '').trim().toLowerCase();
              if (EMAIL.test(e)) emails.add(e);
            }
          }
        } catch (err) {
          if (!(err instanceof GraphError && (err.status === 404 || err.status === 400))) throw err;
        }
        yield { groupId: id, memberEmails: [...emails].sort() };
      }
    },
  };
}
