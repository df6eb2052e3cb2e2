import { mapLimit } from '../../concurrency.ts';
import { usableEmail } from './acl.ts';
import { ConfluenceError, statusOf, type ConfluenceApi } from './client.ts';

/**
 * Everything the connector reads from a Confluence site, with confluence.js: the spaces and their
 * view permission (v2), the current pages and blog posts without bodies (v2), the read restrictions
 * of all of them (one v1 CQL content search per space with the restrictions expanded; a v1
 * `restriction/byOperation` call per item only where the search did not bring them, or brought a
 * capped list), the attachments (v1 CQL), non-page ancestors such as folders (v2), account emails
 * (v1 bulk lookup) and group members (v1, paged). The connector then works on this picture in
 * memory: paths, ACLs and the diff against the last sync cost no further calls.
 */

export interface SpaceRef {
  id: string;
  key: string;
  name: string;
}

export type ContentKind = 'page' | 'blogpost';

export interface ContentNode {
  id: string;
  /** `page`, `blogpost`, or the type of a non-document ancestor (`folder`, `whiteboard`…). */
  type: string;
  spaceKey: string;
  parentId: string | null;
  title: string;
  version: number;
  modifiedAt: Date | null;
  ownerId: string | null;
  modifierId: string | null;
  webui: string | null;
  /** Pages and blog posts are documents; other ancestors only carry restrictions and a title. */
  document: boolean;
}

export interface RestrictedUser {
  accountId: string | null;
  /** null: not in the answer; '': hidden by the person's profile visibility. */
  email: string | null;
  name: string;
}

export interface ReadRestriction {
  users: RestrictedUser[];
  groupIds: string[];
  /** Entries that name no usable account or group id. */
  unnamed: string[];
}

export type RestrictionState = ReadRestriction | { inaccessible: string };

export interface AttachmentNode {
  id: string;
  containerId: string;
  title: string;
  mediaType: string | null;
  size: number | undefined;
  version: number;
  modifiedAt: Date | null;
  modifierId: string | null;
  modifierEmail: string | null;
  webui: string | null;
}

export interface SpaceView {
  everyone: boolean;
  userAccountIds: string[];
  groupIds: string[];
  problems: string[];
}

const V2_LIMIT = 250;
const SEARCH_LIMIT = 100;
const MEMBERS_LIMIT = 200;
const RESTRICTION_LIMIT = 200;
const PARALLEL = 16;
/** Access classes that let in every signed-in person (contract: "open to all licensed users / anonymous"). */
const OPEN_ACCESS_CLASSES = new Set(['anonymous-users', 'authenticated-users', 'all-licensed-users', 'anonymous']);
const READ_RESTRICTIONS = 'restrictions.read.restrictions.user,restrictions.read.restrictions.group';

/**
 * Atlassian documents list parameters as one comma-separated value; confluence.js repeats an array
 * parameter once per element. A one-element array goes out as that single comma-joined value.
 */
const csv = <T>(values: Array<string | number>): T => [values.join(',')] as unknown as T;
const cursorOf = (next: string | undefined): string | undefined => (next ? new URL(next, 'http://x').searchParams.get('cursor') ?? undefined : undefined);
const cqlString = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const dateOf = (v: unknown): Date | null => {
  const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : null;
  return d && !Number.isNaN(d.getTime()) ? d : null;
};

/** Every page of a v2 listing, following the cursor in `_links.next`. */
async function* v2All<T>(call: (cursor: string | undefined) => Promise<{ results?: T[]; _links?: { next?: string } }>): AsyncGenerator<T[]> {
  let cursor: string | undefined;
  do {
    const page = await call(cursor);
    yield page.results ?? [];
    cursor = cursorOf(page._links?.next);
  } while (cursor);
}

export class SiteReader {
  /** accountId → email (null: not visible). */
  private readonly emails = new Map<string, string | null>();
  private readonly members = new Map<string, Promise<{ emails: Set<string>; hidden: number; missing: boolean }>>();

  constructor(private readonly api: ConfluenceApi) {}

  /** The configured spaces that exist and that the account can view; the rest are named in `missing`. */
  async spaces(keys: string[]): Promise<{ found: SpaceRef[]; missing: string[] }> {
    const found: SpaceRef[] = [];
    for await (const batch of v2All((cursor) => this.api.v2.space.getSpaces({ keys: csv(keys), cursor, limit: V2_LIMIT }))) {
      for (const s of batch) if (s.id && s.key) found.push({ id: s.id, key: s.key, name: s.name ?? s.key });
    }
    const have = new Set(found.map((s) => s.key));
    return { found: found.filter((s) => keys.includes(s.key)), missing: keys.filter((k) => !have.has(k)) };
  }

  /** Who holds `read`/`space` (view) permission. A failure to read it leaves nobody: fail closed. */
  async spaceView(space: SpaceRef): Promise<SpaceView> {
    const view: SpaceView = { everyone: false, userAccountIds: [], groupIds: [], problems: [] };
    try {
      for await (const batch of v2All((cursor) => this.api.v2.spacePermissions.getSpacePermissionsAssignments({ id: Number(space.id), cursor, limit: V2_LIMIT }))) {
        for (const a of batch) {
          if (a.operation?.key !== 'read' || a.operation?.targetType !== 'space') continue;
          const type = (a.principal?.type ?? '').toLowerCase();
          const id = a.principal?.id ?? '';
          if (type === 'user' && id) view.userAccountIds.push(id);
          else if (type === 'group' && id) view.groupIds.push(id);
          else if ((type === 'access_class' || type === 'anonymous') && OPEN_ACCESS_CLASSES.has(id.toLowerCase() || type)) view.everyone = true;
          else view.problems.push(`space ${space.key}: view permission for ${type || 'an unnamed principal'} ${id} cannot be mapped to people; it grants nothing`);
        }
      }
    } catch (err) {
      if (!definitive(err)) throw err;
      view.problems.push(`space ${space.key}: view permissions could not be read (${(err as Error).message}); nobody is granted through the space`);
      view.everyone = false;
      view.userAccountIds = [];
      view.groupIds = [];
    }
    return view;
  }

  /** Current pages or blog posts of a space, without bodies. */
  async contents(space: SpaceRef, kind: ContentKind): Promise<ContentNode[]> {
    const out: ContentNode[] = [];
    const calls = kind === 'page'
      ? v2All((cursor) => this.api.v2.page.getPagesInSpace({ id: Number(space.id), status: ['current'], cursor, limit: V2_LIMIT }))
      : v2All((cursor) => this.api.v2.blogPost.getBlogPostsInSpace({ id: Number(space.id), status: ['current'], cursor, limit: V2_LIMIT }));
    for await (const batch of calls) {
      for (const c of batch as Array<Record<string, unknown> & { id?: string; title?: string; version?: { number?: number; createdAt?: Date; authorId?: string } | null; _links?: { webui?: string } | null }>) {
        if (!c.id) continue;
        // The listing was asked for current content only; anything else that slips in is not indexed.
        if (c.status !== undefined && c.status !== 'current') continue;
        out.push({
          id: c.id, type: kind, spaceKey: space.key,
          parentId: kind === 'page' && typeof c.parentId === 'string' ? c.parentId : null,
          title: c.title ?? `${kind} ${c.id}`,
          version: c.version?.number ?? 0,
          modifiedAt: dateOf(c.version?.createdAt) ?? dateOf(c.createdAt),
          ownerId: typeof c.ownerId === 'string' ? c.ownerId : null,
          modifierId: c.version?.authorId ?? (typeof c.authorId === 'string' ? c.authorId : null),
          webui: c._links?.webui ?? null,
          document: true,
        });
      }
    }
    return out;
  }

  /** Storage-format bodies of pages or blog posts, by id, in batches of up to 250 per call. */
  async bodies(kind: ContentKind, ids: string[]): Promise<Map<string, { title: string; storage: string }>> {
    const out = new Map<string, { title: string; storage: string }>();
    for (let i = 0; i < ids.length; i += V2_LIMIT) {
      const slice = ids.slice(i, i + V2_LIMIT).map(Number);
      const calls = kind === 'page'
        ? v2All((cursor) => this.api.v2.page.getPages({ id: csv(slice), bodyFormat: 'storage', status: ['current'], cursor, limit: V2_LIMIT }))
        : v2All((cursor) => this.api.v2.blogPost.getBlogPosts({ id: csv(slice), bodyFormat: 'storage', status: ['current'], cursor, limit: V2_LIMIT }));
      for await (const batch of calls) {
        for (const c of batch) if (c.id) out.set(c.id, { title: c.title ?? '', storage: c.body?.storage?.value ?? '' });
      }
    }
    return out;
  }

  /**
   * Read restrictions of every current page and blog post of the space, in bulk. Items the search
   * did not return (its index lags behind edits) or returned with a capped list are absent from
   * the map; `restrictionsOf` reads those one by one.
   */
  async sweepRestrictions(space: SpaceRef): Promise<Map<string, ReadRestriction>> {
    const out = new Map<string, ReadRestriction>();
    const cql = `space = ${cqlString(space.key)} and type in (page, blogpost)`;
    for await (const batch of v2All((cursor) => this.api.v1.content.searchContentByCQL({ cql, expand: csv([READ_RESTRICTIONS]), cursor, limit: SEARCH_LIMIT }))) {
      for (const c of batch) {
        const read = c.id ? c.restrictions?.read : undefined;
        if (!c.id || !read?.restrictions) continue;
        const parsed = parseRestriction(read.restrictions);
        if (parsed) out.set(c.id, parsed);
      }
    }
    return out;
  }

  /** One item's read restriction, paged; a definitive refusal (403/404) is "inaccessible". */
  async restrictionsOf(id: string): Promise<RestrictionState> {
    try {
      const first = await this.api.v1.contentRestrictions.getRestrictionsByOperation({ id, expand: csv(['restrictions.user', 'restrictions.group']) });
      const parsed = first.read?.restrictions ? parseRestriction(first.read.restrictions) : null;
      if (parsed) return parsed;
      // The list was capped (or not expanded): page through the read operation alone. The server
      // may apply a smaller limit than asked; its answer says which, and that is the step.
      const all: ReadRestriction = { users: [], groupIds: [], unnamed: [] };
      for (let start = 0; ;) {
        const page = await this.api.v1.contentRestrictions.getRestrictionsForOperation({
          id, operationKey: 'read', expand: csv(['restrictions.user', 'restrictions.group']), start, limit: RESTRICTION_LIMIT,
        });
        const u = page.restrictions?.user;
        const g = page.restrictions?.group;
        const part = parseEntries(u?.results ?? [], g?.results ?? []);
        all.users.push(...part.users);
        all.groupIds.push(...part.groupIds);
        all.unnamed.push(...part.unnamed);
        const full = (l: { results?: unknown[]; limit?: number; size?: number } | undefined) =>
          !!l && (l.results?.length ?? 0) > 0 && (l.size ?? l.results?.length ?? 0) >= (l.limit ?? RESTRICTION_LIMIT);
        if (!full(u) && !full(g)) return all;
        start += Math.max(1, Math.min(u?.limit ?? RESTRICTION_LIMIT, g?.limit ?? RESTRICTION_LIMIT));
      }
    } catch (err) {
      if (!definitive(err)) throw err;
      return { inaccessible: (err as Error).message };
    }
  }

  /** Restrictions for every id, from the sweep where it has them, else one call each. */
  async allRestrictions(ids: string[], swept: Map<string, ReadRestriction>): Promise<Map<string, RestrictionState>> {
    const out = new Map<string, RestrictionState>();
    const missing = ids.filter((id) => {
      const r = swept.get(id);
      if (r) out.set(id, r);
      return !r;
    });
    const read = await mapLimit(missing, PARALLEL, (id) => this.restrictionsOf(id));
    missing.forEach((id, i) => out.set(id, read[i]!));
    return out;
  }

  /**
   * Ancestors of a page that are not pages of the listing (folders, whiteboards, pages of another
   * status), top-down, with their titles where Confluence gives them.
   */
  async foreignAncestors(pageId: string, known: (id: string) => boolean): Promise<ContentNode[]> {
    // One answer holds up to 250 ancestors, deeper than Confluence lets a tree grow; it has no cursor.
    const answer = await this.api.v2.ancestors.getPageAncestors({ id: Number(pageId), limit: V2_LIMIT });
    const chain = (answer.results ?? []).filter((a) => a.id).map((a) => ({ id: a.id!, type: String(a.type ?? 'page') }));
    const out: ContentNode[] = [];
    for (let i = 0; i < chain.length; i++) {
      const a = chain[i]!;
      if (known(a.id)) continue;
      let title = a.type;
      try {
        if (a.type === 'folder') title = (await this.api.v2.folder.getFolderById({ id: Number(a.id) })).title ?? title;
        // A page above current pages that is not current itself (archived, say) still names the path.
        else if (a.type === 'page') title = (await this.api.v2.page.getPageById({ id: Number(a.id), status: ['current', 'archived', 'draft'] })).title ?? title;
      } catch (err) {
        if (!definitive(err)) throw err;
      }
      out.push({
        id: a.id, type: a.type, spaceKey: '', parentId: i > 0 ? chain[i - 1]!.id : null, title, version: 0, modifiedAt: null,
        ownerId: null, modifierId: null, webui: null, document: false,
      });
    }
    return out;
  }

  /** Current attachments of the space's pages and blog posts (v1 CQL, container expanded). */
  async attachments(space: SpaceRef): Promise<AttachmentNode[]> {
    const out: AttachmentNode[] = [];
    const cql = `space = ${cqlString(space.key)} and type = attachment`;
    for await (const batch of v2All((cursor) => this.api.v1.content.searchContentByCQL({ cql, expand: csv(['container', 'version']), cursor, limit: SEARCH_LIMIT }))) {
      for (const a of batch) {
        const containerId = a.container?.id as string | undefined;
        if (!a.id || !containerId || a.status !== 'current') continue;
        const ext = (a.extensions ?? {}) as { mediaType?: unknown; fileSize?: unknown };
        const by = (a.version as { by?: { accountId?: string; email?: string | null } } | undefined)?.by;
        out.push({
          id: a.id, containerId, title: a.title ?? a.id,
          mediaType: typeof ext.mediaType === 'string' ? ext.mediaType : null,
          size: typeof ext.fileSize === 'number' ? ext.fileSize : undefined,
          version: a.version?.number ?? 0,
          modifiedAt: dateOf(a.version?.when),
          modifierId: by?.accountId ?? null,
          modifierEmail: usableEmail(by?.email),
          webui: (a._links as { webui?: string } | undefined)?.webui ?? null,
        });
      }
    }
    return out;
  }

  async download(att: AttachmentNode): Promise<Buffer> {
    const bytes = await this.api.v1.contentAttachments.downloadAttatchment({ id: att.containerId, attachmentId: att.id, version: att.version || undefined });
    return ArrayBuffer.isView(bytes) ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes);
  }

  /** Remembers emails that answers already carried, so they are not looked up again. */
  noteEmail(accountId: string | null, email: string | null): void {
    if (!accountId || email === null) return;
    if (!this.emails.has(accountId) || this.emails.get(accountId) === null) this.emails.set(accountId, usableEmail(email));
  }

  /** Emails of accounts (batches of 100); null where the person's profile hides it. */
  async resolveEmails(accountIds: Iterable<string>): Promise<void> {
    const todo = [...new Set(accountIds)].filter((id) => !this.emails.has(id));
    for (let i = 0; i < todo.length; i += 100) {
      const slice = todo.slice(i, i + 100);
      const res = await this.api.v1.users.getBulkUserLookup({ accountId: slice.join(',') });
      for (const u of res.results ?? []) if (u.accountId) this.emails.set(u.accountId, usableEmail(u.email));
      for (const id of slice) if (!this.emails.has(id)) this.emails.set(id, null);
    }
  }

  emailOf(accountId: string | null | undefined): string | null {
    return accountId ? this.emails.get(accountId) ?? null : null;
  }

  /** Members' emails of a group, paged; one read per run however often it is asked. */
  membersOf(groupId: string): Promise<{ emails: Set<string>; hidden: number; missing: boolean }> {
    let p = this.members.get(groupId);
    if (!p) {
      p = (async () => {
        const emails = new Set<string>();
        let hidden = 0;
        try {
          for (let start = 0; ; start += MEMBERS_LIMIT) {
            const page = await this.api.v1.group.getGroupMembersByGroupId({ groupId, start, limit: MEMBERS_LIMIT });
            for (const u of page.results ?? []) {
              const e = usableEmail(u.email);
              if (e) emails.add(e);
              else hidden++;
            }
            if ((page.results ?? []).length < MEMBERS_LIMIT) break;
          }
        } catch (err) {
          if (statusOf(err) === 404) return { emails, hidden, missing: true };
          throw err;
        }
        return { emails, hidden, missing: false };
      })();
      p.catch(() => this.members.delete(groupId));
      this.members.set(groupId, p);
    }
    return p;
  }
}

/** 403/404 answer for this item: retrying will not help, and the item must fail closed. */
function definitive(err: unknown): boolean {
  return err instanceof ConfluenceError && (err.status === 403 || err.status === 404);
}

type V1User = { accountId?: string | null; email?: string | null; displayName?: string | null; publicName?: string };
type V1Group = { id?: string | null; name?: string | null };

/** A complete restriction from an expanded answer, or null when a list is missing or was capped. */
function parseRestriction(r: { user?: { results?: V1User[]; limit?: number; size?: number }; group?: { results?: V1Group[]; limit?: number; size?: number } }): ReadRestriction | null {
  if (!r.user || !r.group) return null;
  const capped = (l: { results?: unknown[]; limit?: number; size?: number }) => l.limit !== undefined && (l.size ?? l.results?.length ?? 0) >= l.limit;
  if (capped(r.user) || capped(r.group)) return null;
  return parseEntries(r.user.results ?? [], r.group.results ?? []);
}

function parseEntries(users: V1User[], groups: V1Group[]): ReadRestriction {
  const out: ReadRestriction = { users: [], groupIds: [], unnamed: [] };
  for (const u of users) {
    if (!u.accountId) out.unnamed.push(`user ${u.displayName ?? u.publicName ?? '?'}`);
    else out.users.push({ accountId: u.accountId, email: u.email ?? null, name: u.displayName ?? u.publicName ?? u.accountId });
  }
  for (const g of groups) {
    if (g.id) out.groupIds.push(g.id);
    else out.unnamed.push(`group ${g.name ?? '?'}`);
  }
  return out;
}
