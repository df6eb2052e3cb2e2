import { CursorExpiredError, UpstreamError } from '../../errors.ts';
import { mapLimit } from '../../concurrency.ts';
import type { Change, ChangePage, Connector, FetchedContent, GroupMembers } from '../interface.ts';
import { GoogleApi, GoogleApiError, GoogleCredentialsError, type GoogleTuning } from './api.ts';
import {
  DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_FILE_BYTES, DEFAULT_REQUEST_TIMEOUT_MS,
  googleDriveConfigSchema, googleDriveCredentialsSchema, type GoogleDriveConfig,
} from './config.ts';
import { testConnection } from './connection.ts';
import { GroupExpander } from './groups.ts';
import {
  FILE_FIELDS, FOLDER_MIME, PERMISSION_FIELDS, driveExternalId, fetchPlan, fileMeta, isFolder, isShortcut, joinPath,
  type DriveFile,
} from './items.ts';
import { mapPermissions, toResolvedAcl, type DrivePermission, type MappedAcl } from './permissions.ts';
import { hash, resolveUnits, type Unit } from './units.ts';
import { driveChangeWatch } from './channels.ts';

/**
 * The cursor (opaque to the engine). Per unit: the change feed's page token, the in-scope folders
 * (name, parent and a hash of their effective permissions, so a folder reported by the feed can be
 * told renamed / moved / re-permissioned from unchanged: Drive does not report the descendants of
 * such a folder), the drive's member fingerprint, and the shortcuts followed out of scope with the
 * version of every file they brought in. `groups` remembers every Google group seen in an ACL.
 */
interface FolderState { n: string; p: string | null; a: string }
interface ShortcutState { t: string; path: string; docs: Record<string, string> }
interface UnitState {
  token: string;
  roots: string[] | null;
  members: string | null;
  folders: Record<string, FolderState>;
  shortcuts: Record<string, ShortcutState>;
}
interface CursorState { v: 1; units: Record<string, UnitState>; groups: string[] }

interface UnitRun {
  unit: Unit;
  st: UnitState;
  /** Folder id → its path when in scope, else null; cleared whenever folders move. */
  memo: Map<string, Promise<string | null>>;
}

interface DriveChange {
  fileId?: string | null;
  removed?: boolean | null;
  changeType?: string | null;
  file?: DriveFile | null;
}

export interface GoogleDriveConnector extends Connector {
  groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers>;
  /** Exposed for tests, benchmarks and diagnostics (request counts, limiter.maxActive). */
  readonly api: GoogleApi;
}

export interface CreateGoogleDriveArgs {
  sourceId: string;
  config: Record<string, unknown>;
  credentials: Record<string, unknown> | null;
  tuning?: GoogleTuning;
}

/** Concurrent permission reads per page; the service-account limiter bounds what reaches Google. */
const PAGE_CONCURRENCY = 16;
/** Parent folders per `'a' in parents or 'b' in parents …` listing. */
const PARENTS_PER_QUERY = 20;
const CHANGE_FIELDS = `nextPageToken,newStartPageToken,changes(changeType,removed,fileId,file(${FILE_FIELDS}))`;

export function createGoogleDriveConnector({ sourceId, config, credentials, tuning }: CreateGoogleDriveArgs): GoogleDriveConnector {
  const cfg: GoogleDriveConfig = googleDriveConfigSchema.parse(config);
  const parsedCreds = googleDriveCredentialsSchema.safeParse(credentials ?? {});
  if (!parsedCreds.success) {
    const issue = parsedCreds.error.issues[0];
    throw new Error(`Google Drive sources need credentials {serviceAccountKey: <the service account's JSON key>}` +
      (issue ? ` (${issue.path.join('.') || 'credentials'}: ${issue.message})` : ''));
  }
  const key = parsedCreds.data.serviceAccountKey;
  const timeoutMs = cfg.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  const maxFileBytes = cfg.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const api = new GoogleApi(key, cfg.rootUrl, cfg.adminEmail, timeoutMs, cfg.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY, tuning);

  const seenGroups = new Set<string>();
  const cursorGroups = new Set<string>();
  let runExpander: GroupExpander | null = null;
  /** Every run's units, by key, so a shortcut's target can be checked against the whole scope. */
  let runs = new Map<string, UnitRun>();
  /** Files upserted in this run: a shortcut going away must not delete what is in scope anyway. */
  let emitted = new Set<string>();

  const q = (s: string) => s.replace(/\\/g, '\\\\').replace(/'/g, "\\'");

  // ---- reading -----------------------------------------------------------------------------------------

  async function listPermissions(subject: string, fileId: string): Promise<DrivePermission[]> {
    const out: DrivePermission[] = [];
    let pageToken: string | undefined;
    do {
      const page = await api.call(`permissions of ${fileId}`, subject, () =>
        api.drive(subject).permissions.list({ fileId, supportsAllDrives: true, pageSize: 100, pageToken, fields: PERMISSION_FIELDS }, api.options()));
      out.push(...((page.permissions ?? []) as DrivePermission[]));
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
    return out;
  }

  /**
   * The file's effective ACL, read as the unit's reader, or as the file's owner when the reader may
   * not see the sharing settings (My Drive files shared with the reader as viewer). Transient
   * failures fail the run; a definitive refusal fails closed: visible to no one, with the reason.
   */
  async function fileAcl(unit: Unit, f: DriveFile): Promise<MappedAcl> {
    const readers = [unit.reader];
    const owner = f.owners?.[0]?.emailAddress?.toLowerCase();
    if (owner && owner !== unit.reader) readers.push(owner);
    let last: unknown;
    for (const subject of readers) {
      try {
        const acl = mapPermissions(sourceId, await listPermissions(subject, f.id!));
        for (const g of acl.groupEmails) seenGroups.add(g);
        return acl;
      } catch (err) {
        last = err;
        const refused = err instanceof GoogleCredentialsError || (err instanceof GoogleApiError && !err.retryable && (err.status === 403 || err.status === 404));
        if (!refused) throw err;
      }
    }
    return { principals: [], problems: [`permissions could not be read (${(last as Error).message}); visible to no one`], groupEmails: [] };
  }

  async function download(subject: string, f: DriveFile): Promise<FetchedContent> {
    const plan = fetchPlan(f);
    // Not an indexable format: no download. One NUL byte makes the extractor skip it with a reason
    // ("image (image/png) is not indexed", "binary content (…) is not indexed") whatever its name.
    if (plan.kind === 'none') return { bytes: Buffer.from([0]), mimeType: f.mimeType ?? null };
    const opts = api.options({ responseType: 'arraybuffer', maxContentLength: maxFileBytes });
    const data = await api.call(`${plan.kind === 'export' ? 'export' : 'download'} of ${f.name ?? f.id}`, subject, () =>
      (plan.kind === 'export'
        ? api.drive(subject).files.export({ fileId: f.id!, mimeType: plan.as }, opts)
        : api.drive(subject).files.get({ fileId: f.id!, alt: 'media', supportsAllDrives: true }, opts)) as unknown as Promise<{ data: ArrayBuffer }>)
      .catch((err: unknown) => {
        if (err instanceof GoogleApiError && /content-length.*over the limit/i.test(err.message)) {
          throw new UpstreamError(`${f.name ?? f.id} is larger than the ${maxFileBytes}-byte limit (maxFileBytes)`, { retryable: false });
        }
        throw err;
      });
    const bytes = Buffer.from(data);
    if (bytes.byteLength > maxFileBytes) throw new UpstreamError(`${f.name ?? f.id} is larger than the ${maxFileBytes}-byte limit (maxFileBytes)`, { retryable: false });
    return { bytes, mimeType: plan.kind === 'export' ? plan.as : (f.mimeType ?? null) };
  }

  /** The change for a file in scope: an upsert, or a delete when its permissions reach no one. */
  async function fileChange(unit: Unit, f: DriveFile, filePath: string): Promise<Change> {
    const acl = await fileAcl(unit, f);
    if (acl.principals.length === 0 && acl.problems.length === 0) return { kind: 'delete', externalId: driveExternalId(f.id!) };
    emitted.add(f.id!);
    return { kind: 'upsert', doc: fileMeta(f, filePath), acl: toResolvedAcl(acl), fetch: () => download(unit.reader, f) };
  }

  async function getFile(subject: string, fileId: string): Promise<DriveFile | null> {
    try {
      return await api.call(`file ${fileId}`, subject, () => api.drive(subject).files.get({ fileId, supportsAllDrives: true, fields: FILE_FIELDS }, api.options()));
    } catch (err) {
      if (err instanceof GoogleApiError && err.status === 404) return null;
      throw err;
    }
  }

  /** Files matching `query` in the unit's corpus, or in the shared drive `driveId` given (null: the reader's own corpus). */
  async function* listFiles(unit: Unit, query: string, corpus: { driveId: string | null } = { driveId: unit.driveId }): AsyncGenerator<DriveFile[]> {
    let pageToken: string | undefined;
    do {
      const page = await api.call(`list ${unit.name}`, unit.reader, () =>
        api.drive(unit.reader).files.list({
          q: query, pageSize: 1000, pageToken, fields: `nextPageToken,files(${FILE_FIELDS})`,
          supportsAllDrives: true, includeItemsFromAllDrives: true,
          corpora: corpus.driveId ? 'drive' : 'user', driveId: corpus.driveId ?? undefined,
        }, api.options()));
      yield page.files ?? [];
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
  }

  // ---- scope and paths -------------------------------------------------------------------------------

  const isRoot = (run: UnitRun, id: string) => run.unit.roots?.includes(id) ?? false;

  /** The path of folder `id` when it is in the unit's scope, else null. */
  function locate(run: UnitRun, id: string | null | undefined, depth = 0): Promise<string | null> {
    if (!id) return Promise.resolve(null);
    let p = run.memo.get(id);
    if (p) return p;
    p = (async () => {
      if (depth > 100) return null;
      if (run.unit.roots === null && id === run.unit.driveId) return `/${run.unit.name}`;
      const known = run.st.folders[id];
      if (isRoot(run, id)) return `/${known?.n ?? id}`;
      if (known) {
        const parent = await locate(run, known.p, depth + 1);
        return parent === null ? null : joinPath(parent, known.n);
      }
      // A folder the cursor does not know: new, or outside the scope. Drive knows which.
      const f = await getFile(run.unit.reader, id);
      if (!f || !isFolder(f) || f.trashed) return null;
      const parent = await locate(run, f.parents?.[0], depth + 1);
      return parent === null ? null : joinPath(parent, f.name ?? id);
    })();
    run.memo.set(id, p);
    return p;
  }

  async function inAnyScope(f: DriveFile): Promise<boolean> {
    for (const run of runs.values()) {
      if ((run.unit.driveId ?? null) !== (f.driveId ?? null)) continue;
      if (run.unit.roots === null || isRoot(run, f.id!) || (await locate(run, f.parents?.[0])) !== null) return true;
    }
    return false;
  }

  async function folderAcl(run: UnitRun, f: DriveFile): Promise<string> {
    const acl = await fileAcl(run.unit, f);
    return hash([acl.principals, acl.problems]);
  }

  // ---- walking ---------------------------------------------------------------------------------------

  /**
   * Everything below `root` (breadth first, many parents per query), as batches of files with
   * their paths (trashed ones too with `trashed`). Shortcuts are listed, not followed. A
   * shortcut's target may live in another corpus (`driveId`) than the unit.
   */
  async function* walk(run: UnitRun, root: { id: string; path: string }, opts: { trashed?: boolean; driveId?: string | null } = {}): AsyncGenerator<Array<{ f: DriveFile; path: string }>> {
    const paths = new Map([[root.id, root.path]]);
    const queue = [root.id];
    const visited = new Set(queue);
    while (queue.length) {
      const batch = queue.splice(0, PARENTS_PER_QUERY);
      const query = `(${batch.map((id) => `'${q(id)}' in parents`).join(' or ')})${opts.trashed ? '' : ' and trashed = false'}`;
      for await (const files of listFiles(run.unit, query, { driveId: opts.driveId === undefined ? run.unit.driveId : opts.driveId })) {
        const out: Array<{ f: DriveFile; path: string }> = [];
        for (const f of files) {
          const parent = f.parents?.find((p) => paths.has(p));
          if (!parent || !f.id) continue;
          const p = joinPath(paths.get(parent)!, f.name ?? f.id);
          if (isFolder(f) && !visited.has(f.id)) {
            visited.add(f.id);
            paths.set(f.id, p);
            queue.push(f.id);
          }
          out.push({ f, path: p });
        }
        if (out.length) yield out;
      }
    }
  }

  /** Upserts for everything below a folder (new to the scope, moved, renamed or re-permissioned). */
  async function* walkUpserts(run: UnitRun, root: { id: string; path: string }): AsyncGenerator<Change[]> {
    for await (const batch of walk(run, root)) {
      const changes: Change[] = [];
      await mapLimit(batch, PAGE_CONCURRENCY, async ({ f, path }) => {
        if (isFolder(f)) {
          run.st.folders[f.id!] = { n: f.name ?? f.id!, p: f.parents?.[0] ?? null, a: await folderAcl(run, f) };
        } else if (isShortcut(f)) {
          await followShortcut(run, f.id!, f.shortcutDetails?.targetId, path, changes, null);
        } else {
          changes.push(await fileChange(run.unit, f, path));
        }
      });
      if (changes.length) yield changes;
    }
  }

  /** Every file of the unit, as in a first sync. Folders are read first so every path is known. */
  async function* enumerate(run: UnitRun): AsyncGenerator<Change[]> {
    run.st.folders = {};
    run.memo.clear();
    const { unit } = run;
    if (unit.roots === null) {
      const folders: DriveFile[] = [];
      for await (const page of listFiles(unit, `mimeType = '${FOLDER_MIME}' and trashed = false`)) folders.push(...page);
      await mapLimit(folders, PAGE_CONCURRENCY, async (f) => {
        run.st.folders[f.id!] = { n: f.name ?? f.id!, p: f.parents?.[0] ?? null, a: await folderAcl(run, f) };
      });
      for await (const page of listFiles(unit, `mimeType != '${FOLDER_MIME}' and trashed = false`)) {
        const changes: Change[] = [];
        await mapLimit(page, PAGE_CONCURRENCY, async (f) => {
          const parent = await locate(run, f.parents?.[0]);
          if (parent === null) return;
          const p = joinPath(parent, f.name ?? f.id!);
          if (isShortcut(f)) await followShortcut(run, f.id!, f.shortcutDetails?.targetId, p, changes, null);
          else changes.push(await fileChange(unit, f, p));
        });
        if (changes.length) yield changes;
      }
      return;
    }
    for (const rootId of unit.roots) {
      const root = await getFile(unit.reader, rootId);
      if (!root || root.trashed) throw new UpstreamError(`folder ${rootId} is no longer readable as ${unit.reader}`, { retryable: false, status: 404 });
      run.st.folders[rootId] = { n: root.name ?? rootId, p: root.parents?.[0] ?? null, a: await folderAcl(run, root) };
      yield* walkUpserts(run, { id: rootId, path: `/${root.name ?? rootId}` });
    }
  }

  /**
   * A folder that held indexed files left the scope (trashed, moved out, access lost): delete
   * everything below it. If its contents can no longer be listed, only a full enumeration can tell
   * what is gone.
   */
  async function folderLeft(run: UnitRun, folderId: string, out: Change[]): Promise<void> {
    const gone = new Set([folderId]);
    let grew = true;
    while (grew) {
      grew = false;
      for (const [id, f] of Object.entries(run.st.folders)) {
        if (!gone.has(id) && f.p && gone.has(f.p)) {
          gone.add(id);
          grew = true;
        }
      }
    }
    try {
      for await (const batch of walk(run, { id: folderId, path: '' }, { trashed: true })) {
        for (const { f } of batch) {
          if (isFolder(f)) continue;
          if (isShortcut(f)) dropShortcut(run, f.id!, out);
          else out.push({ kind: 'delete', externalId: driveExternalId(f.id!) });
        }
      }
    } catch (err) {
      if (err instanceof GoogleApiError && !err.retryable) {
        throw new CursorExpiredError(`folder ${folderId} left the scope and its contents cannot be listed (${err.message}); a full enumeration is needed`);
      }
      throw err;
    }
    for (const id of gone) delete run.st.folders[id];
    run.memo.clear();
  }

  // ---- shortcuts -------------------------------------------------------------------------------------

  const broughtElsewhere = (docId: string, except: string) => {
    for (const run of runs.values()) {
      for (const [id, s] of Object.entries(run.st.shortcuts)) if (id !== except && docId in s.docs) return true;
    }
    return false;
  };

  function dropShortcut(run: UnitRun, shortcutId: string, out: Change[], keep: Record<string, string> = {}): void {
    const prev = run.st.shortcuts[shortcutId];
    if (!prev) return;
    delete run.st.shortcuts[shortcutId];
    for (const docId of Object.keys(prev.docs)) {
      if (docId in keep || emitted.has(docId) || broughtElsewhere(docId, shortcutId)) continue;
      out.push({ kind: 'delete', externalId: driveExternalId(docId) });
    }
  }

  /**
   * Follows a shortcut once: a target inside the scope is indexed on its own; one outside is
   * indexed under the shortcut's path (a folder with everything below it, shortcuts in there not
   * followed again, so no chain of shortcuts can loop). `prev` versions limit the work to files
   * that changed since the shortcut was last followed.
   */
  async function followShortcut(run: UnitRun, shortcutId: string, targetId: string | null | undefined, shortcutPath: string, out: Change[], warnings: string[] | null): Promise<void> {
    const prev = run.st.shortcuts[shortcutId];
    const target = targetId ? await getFile(run.unit.reader, targetId) : null;
    if (!target || target.trashed || isShortcut(target)) {
      if (!target && warnings) warnings.push(`${shortcutPath}: shortcut target ${targetId ?? '(none)'} is not readable as ${run.unit.reader}; not indexed`);
      dropShortcut(run, shortcutId, out);
      return;
    }
    if (await inAnyScope(target)) {
      // Indexed at its own place; what this shortcut brought before stays only if still in scope.
      dropShortcut(run, shortcutId, out, prev?.docs ?? {});
      return;
    }
    const docs: Record<string, string> = {};
    const samePath = prev?.path === shortcutPath;
    const consider = async (f: DriveFile, p: string) => {
      docs[f.id!] = f.version ?? '';
      if (samePath && prev?.docs[f.id!] === docs[f.id!]) return;
      out.push(await fileChange(run.unit, f, p));
    };
    if (isFolder(target)) {
      for await (const batch of walk(run, { id: target.id!, path: shortcutPath }, { driveId: target.driveId ?? null })) {
        await mapLimit(batch.filter(({ f }) => !isFolder(f) && !isShortcut(f)), PAGE_CONCURRENCY, ({ f, path }) => consider(f, path));
      }
    } else {
      await consider(target, shortcutPath);
    }
    run.st.shortcuts[shortcutId] = { t: target.id!, path: shortcutPath, docs };
    for (const docId of Object.keys(prev?.docs ?? {})) {
      if (docId in docs || emitted.has(docId) || broughtElsewhere(docId, shortcutId)) continue;
      out.push({ kind: 'delete', externalId: driveExternalId(docId) });
    }
  }

  /** Targets outside the scope have no feed of ours: re-check each followed shortcut every run. */
  async function* refreshShortcuts(run: UnitRun, warnings: string[]): AsyncGenerator<Change[]> {
    for (const [id, s] of Object.entries(run.st.shortcuts)) {
      const out: Change[] = [];
      await followShortcut(run, id, s.t, s.path, out, warnings);
      if (out.length) yield out;
    }
  }

  // ---- the change feed -------------------------------------------------------------------------------

  async function processFeedPage(run: UnitRun, entries: DriveChange[], warnings: string[]): Promise<{ changes: Change[]; walks: Array<{ id: string; path: string }> }> {
    const { st } = run;
    // A file can appear more than once; its last entry is its current state.
    const latest = new Map<string, DriveChange>();
    for (const c of entries) {
      const id = c.fileId ?? c.file?.id;
      if (!id || (c.changeType && c.changeType !== 'file')) continue;
      latest.delete(id);
      latest.set(id, c);
    }
    const out: Change[] = [];
    const walks: Array<{ id: string; path: string }> = [];
    const live: DriveFile[] = [];
    for (const [id, c] of latest) {
      if (c.removed || !c.file) {
        if (st.folders[id]) await folderLeft(run, id, out);
        else if (st.shortcuts[id]) dropShortcut(run, id, out);
        else if (!broughtElsewhere(id, '')) out.push({ kind: 'delete', externalId: driveExternalId(id) });
      } else live.push(c.file);
    }

    // Folders first, with their new names and places, so the files' paths below are current.
    const folders = live.filter(isFolder);
    const before = new Map(folders.map((f) => [f.id!, st.folders[f.id!]]));
    for (const f of folders) {
      const cur = st.folders[f.id!];
      if (cur && !f.trashed) st.folders[f.id!] = { ...cur, n: f.name ?? f.id!, p: f.parents?.[0] ?? null };
    }
    run.memo.clear();
    for (const f of folders) {
      const path = f.trashed ? null : isRoot(run, f.id!) ? `/${f.name ?? f.id}` : await locate(run, f.id!);
      const prev = before.get(f.id!);
      if (path === null) {
        if (prev) await folderLeft(run, f.id!, out);
        continue;
      }
      const next: FolderState = { n: f.name ?? f.id!, p: f.parents?.[0] ?? null, a: await folderAcl(run, f) };
      st.folders[f.id!] = next;
      // New to the scope (created, or moved in with its contents), renamed, moved or re-shared:
      // its descendants changed without being reported, so they are re-read.
      if (!prev || prev.n !== next.n || prev.p !== next.p || prev.a !== next.a) walks.push({ id: f.id!, path });
    }
    run.memo.clear();

    await mapLimit(live.filter((f) => !isFolder(f)), PAGE_CONCURRENCY, async (f) => {
      const parent = f.trashed ? null : await locate(run, f.parents?.[0]);
      const path = parent === null ? null : joinPath(parent, f.name ?? f.id!);
      if (isShortcut(f)) {
        if (path === null) dropShortcut(run, f.id!, out);
        else await followShortcut(run, f.id!, f.shortcutDetails?.targetId, path, out, warnings);
      } else if (path === null) {
        // Out of the scope, unless a followed shortcut still brings it in.
        if (!broughtElsewhere(f.id!, '')) out.push({ kind: 'delete', externalId: driveExternalId(f.id!) });
      } else {
        out.push(await fileChange(run.unit, f, path));
      }
    });
    // Nested walks: an outer walk covers an inner one.
    const covered = (w: { path: string }) => walks.some((o) => o !== w && w.path.startsWith(`${o.path}/`));
    return { changes: out, walks: walks.filter((w) => !covered(w)) };
  }

  async function* feed(run: UnitRun, encode: () => string): AsyncGenerator<ChangePage> {
    const { unit, st } = run;
    for (;;) {
      let page;
      try {
        page = await api.call(`changes of ${unit.name}`, unit.reader, () =>
          api.drive(unit.reader).changes.list({
            pageToken: st.token, pageSize: 1000, includeRemoved: true, fields: CHANGE_FIELDS, spaces: 'drive',
            ...(unit.driveId
              ? { driveId: unit.driveId, supportsAllDrives: true, includeItemsFromAllDrives: true }
              // The owner's whole corpus, not restrictToMyDrive: a file moved from the owner's
              // folder into someone else's must still be reported, and the scope is ours to judge.
              : { supportsAllDrives: true, includeItemsFromAllDrives: false }),
          }, api.options()));
      } catch (err) {
        // Drive answers an unknown or expired page token with 400 Invalid Value (location pageToken).
        if (err instanceof GoogleApiError && !err.retryable && (err.status === 400 || err.status === 404 || err.status === 410)) {
          throw new CursorExpiredError(`change page token of "${unit.name}" is no longer valid (${err.message}); a full enumeration is needed`);
        }
        throw err;
      }
      const next = page.nextPageToken ?? page.newStartPageToken;
      if (!next) throw new GoogleApiError(`changes of "${unit.name}" answered without nextPageToken or newStartPageToken`, { retryable: true });
      const warnings: string[] = [];
      const { changes, walks } = await processFeedPage(run, (page.changes ?? []) as DriveChange[], warnings);
      st.token = next;
      if (walks.length === 0) {
        yield { changes, cursor: encode(), warnings };
      } else {
        yield { changes, cursor: null, warnings };
        for (const w of walks) for await (const batch of walkUpserts(run, w)) yield { changes: batch, cursor: null };
        yield { changes: [], cursor: encode() };
      }
      if (page.newStartPageToken) return;
    }
  }

  function parseCursor(cursor: string): CursorState {
    let state: unknown;
    try {
      state = JSON.parse(cursor);
    } catch {
      throw new CursorExpiredError('Google Drive cursor is not readable; a full enumeration is needed');
    }
    const s = state as Partial<CursorState>;
    if (!s || s.v !== 1 || typeof s.units !== 'object' || s.units === null) {
      throw new CursorExpiredError('Google Drive cursor has an unknown format; a full enumeration is needed');
    }
    return { v: 1, units: s.units, groups: Array.isArray(s.groups) ? s.groups.filter((g) => typeof g === 'string') : [] };
  }

  return {
    type: 'google_drive',
    watch: driveChangeWatch(api, async () => (await resolveUnits(api, cfg, new GroupExpander(api, cfg.domain))).units),
    enumeratesEverything: false,
    api,

    test: () => testConnection(api, cfg),

    /**
     * One unit after the other. A unit's first sync enumerates it (its page token taken before,
     * so nothing changed meanwhile is missed) and commits the cursor when done; later syncs read
     * its change feed and commit after every page (and the folder walks it caused). A scope that
     * lost a unit (a drive or folder removed from the configuration or deleted) cannot say what
     * to delete incrementally: that is a CursorExpiredError, and the engine re-enumerates and prunes.
     */
    async *changes({ cursor, full }): AsyncIterable<ChangePage> {
      const prev = full || cursor === null ? null : parseCursor(cursor);
      for (const g of prev?.groups ?? []) cursorGroups.add(g);
      runExpander = new GroupExpander(api, cfg.domain);
      const { units, warnings } = await resolveUnits(api, cfg, runExpander);
      if (prev) {
        for (const k of Object.keys(prev.units)) {
          const u = units.find((x) => x.key === k);
          if (!u) throw new CursorExpiredError(`"${k}" is no longer in scope; a full enumeration prunes what it held`);
          if (JSON.stringify(u.roots) !== JSON.stringify(prev.units[k]!.roots)) throw new CursorExpiredError(`the folders in scope of "${u.name}" changed; a full enumeration is needed`);
        }
      }
      const state: CursorState = { v: 1, units: {}, groups: [] };
      const encode = () => {
        state.groups = [...new Set([...cursorGroups, ...seenGroups])].sort();
        return JSON.stringify(state);
      };
      emitted = new Set();
      runs = new Map(units.map((u) => {
        const st = prev?.units[u.key] ?? { token: '', roots: u.roots, members: u.membersHash, folders: {}, shortcuts: {} };
        if (prev?.units[u.key]) state.units[u.key] = st;
        return [u.key, { unit: u, st, memo: new Map() }];
      }));
      if (warnings.length) yield { changes: [], cursor: null, warnings };
      if (units.length === 0) {
        yield { changes: [], cursor: encode(), warnings: ['nothing is in scope: no shared drive and no folder'] };
        return;
      }
      for (const unit of units) {
        const run = runs.get(unit.key)!;
        if (!prev?.units[unit.key]) {
          const token = await api.call(`start page token of ${unit.name}`, unit.reader, () =>
            api.drive(unit.reader).changes.getStartPageToken({ supportsAllDrives: true, driveId: unit.driveId ?? undefined }, api.options()));
          if (!token.startPageToken) throw new GoogleApiError(`no start page token for "${unit.name}"`, { retryable: true });
          run.st = { token: token.startPageToken, roots: unit.roots, members: unit.membersHash, folders: {}, shortcuts: {} };
          for await (const batch of enumerate(run)) yield { changes: batch, cursor: null };
          state.units[unit.key] = run.st;
          yield { changes: [], cursor: encode() };
          continue;
        }
        const pageWarnings: string[] = [];
        if (unit.membersHash !== run.st.members) {
          // Membership of a shared drive changes every file's permissions without a change entry.
          for await (const batch of enumerate(run)) yield { changes: batch, cursor: null };
          run.st.members = unit.membersHash;
        }
        for await (const batch of refreshShortcuts(run, pageWarnings)) yield { changes: batch, cursor: null };
        yield* feed(run, encode);
        if (pageWarnings.length) yield { changes: [], cursor: null, warnings: pageWarnings };
      }
      if (runExpander.notes.length) yield { changes: [], cursor: null, warnings: [...new Set(runExpander.notes)] };
    },

    /**
     * Transitive user members of every Google group seen in an ACL (this run, remembered in the
     * cursor, or known to the engine). Memberships are read fresh every run: a person leaving a
     * group changes visibility at the next sync without any document changing.
     */
    async *groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers> {
      const ids = new Set([...(opts?.knownGroupIds ?? []), ...cursorGroups, ...seenGroups].map((g) => g.toLowerCase()));
      const expander = runExpander ?? new GroupExpander(api, cfg.domain);
      for (const id of [...ids].sort()) yield { groupId: id, memberEmails: await expander.transitiveUsers(id) };
    },
  };
}
