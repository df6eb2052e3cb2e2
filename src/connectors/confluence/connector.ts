import { CursorExpiredError, errorMessage } from '../../errors.ts';
import { UnsupportedContentError, detectFormat } from '../../extract/index.ts';
import { sha256 } from '../../hash.ts';
import { mapLimit } from '../../concurrency.ts';
import type { Change, ChangePage, Connector, DocumentMeta, FetchedContent, GroupMembers, ResolvedAcl } from '../interface.ts';
import { intersectReaders, toPrincipals, type ReaderSet } from './acl.ts';
import { ConfluenceError, createConfluenceApi, toConfluenceError, type ConfluenceApi, type ConfluenceTuning } from './client.ts';
import {
  DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_RETRY_AFTER_SECONDS, DEFAULT_REQUEST_TIMEOUT_MS,
  confluenceConfigSchema, confluenceCredentialsSchema, siteHost, wikiRoot,
} from './config.ts';
import { SiteReader, type AttachmentNode, type ContentNode, type RestrictionState, type SpaceView } from './site.ts';
import { storageToHtml } from './storage.ts';

/**
 * Confluence Cloud → Clearance documents (pages, blog posts, their attachments).
 *
 * Every run, full or incremental, takes a cheap picture of the configured spaces (listings without
 * bodies, the read restrictions in bulk, space permissions, group members; see site.ts) and derives
 * each document's path, owner and ACL in memory. Restriction and membership changes publish no new
 * version in Confluence and move no `lastmodified` date, so no "changed since" query can see them;
 * re-deriving every ACL from the picture is what makes a restriction removed from a grandparent, a
 * page moved under a restricted parent or a user leaving a group show up on the next sync. The
 * cursor keeps, per document, its content version and a fingerprint of its metadata and ACL, so
 * an incremental run emits only what differs: new or re-versioned content (bodies fetched then, 250
 * per call), metadata-only changes (renamed ancestors, moves), ACL-only changes (never re-embedded),
 * and deletions — pages trashed, purged, archived or moved to a space that is not configured are
 * simply absent from the current listing.
 */

export interface ConfluenceConnector extends Connector {
  groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers>;
  /** Exposed for tests and the benchmark (request counts, limiter). */
  readonly api: ConfluenceApi;
}

export interface CreateConfluenceArgs {
  sourceId: string;
  config: Record<string, unknown>;
  credentials: Record<string, unknown> | null;
  tuning?: ConfluenceTuning;
}

interface CursorState {
  v: 1;
  /** externalId → `<contentVersion>|<metadata fingerprint>|<ACL fingerprint>` */
  docs: Record<string, string>;
}

interface Doc {
  meta: DocumentMeta;
  acl: ResolvedAcl;
  kind: 'page' | 'blogpost' | 'attachment';
  node?: ContentNode;
  attachment?: AttachmentNode;
}

/** Changes per page handed to the engine. */
const PAGE_SIZE = 50;
/** Bodies read per call (v2 `GET /pages?id=…` takes up to 250 ids); a multiple of PAGE_SIZE. */
const BODY_BATCH = 250;
const PARALLEL_GROUPS = 8;

export const confluenceExternalId = (kind: 'page' | 'blogpost' | 'attachment', id: string) => `${kind}:${id}`;

export function createConfluenceConnector({ sourceId, config, credentials, tuning }: CreateConfluenceArgs): ConfluenceConnector {
  const cfg = confluenceConfigSchema.parse(config);
  const parsedCreds = confluenceCredentialsSchema.safeParse(credentials ?? {});
  if (!parsedCreds.success) throw new Error('Confluence sources need credentials {email, apiToken} (an Atlassian account email and an API token)');
  const creds = parsedCreds.data;
  const root = wikiRoot(cfg.baseUrl);
  const api = createConfluenceApi({
    host: siteHost(cfg.baseUrl), email: creds.email, apiToken: creds.apiToken,
    maxConcurrency: cfg.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY,
    timeoutMs: cfg.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
    maxRetryAfterSeconds: cfg.maxRetryAfterSeconds ?? DEFAULT_MAX_RETRY_AFTER_SECONDS,
    tuning,
  });
  const includeBlogPosts = cfg.includeBlogPosts ?? true;
  const includeAttachments = cfg.includeAttachments ?? true;

  /** The current run's reader: groups() serves memberships from the same reads the ACLs used. */
  let reader = new SiteReader(api);
  const principalGroups = new Set<string>();

  function parseCursor(cursor: string): CursorState {
    try {
      const s = JSON.parse(cursor) as Partial<CursorState>;
      if (s && s.v === 1 && s.docs && typeof s.docs === 'object') return { v: 1, docs: s.docs };
    } catch {
      // fall through
    }
    throw new CursorExpiredError('Confluence cursor is not readable; a full enumeration is needed');
  }

  /** Reads the picture of all configured spaces and turns it into documents with ACLs. */
  async function snapshot(): Promise<{ docs: Map<string, Doc>; warnings: string[] }> {
    reader = new SiteReader(api);
    principalGroups.clear();
    const warnings: string[] = [];
    const { found, missing } = await reader.spaces(cfg.spaceKeys);
    for (const key of missing) warnings.push(`space ${key} was not found or is not visible to ${creds.email}; its documents are removed from the index`);

    const nodes = new Map<string, ContentNode>();
    const views = new Map<string, SpaceView>();
    const swept = new Map<string, Extract<RestrictionState, { users: unknown }>>();
    const attachments: AttachmentNode[] = [];
    for (const space of found) {
      views.set(space.key, await reader.spaceView(space));
      for (const n of await reader.contents(space, 'page')) nodes.set(n.id, n);
      if (includeBlogPosts) for (const n of await reader.contents(space, 'blogpost')) nodes.set(n.id, n);
      for (const [id, r] of await reader.sweepRestrictions(space)) swept.set(id, r);
      if (includeAttachments) attachments.push(...await reader.attachments(space));
    }
    // Parents that are not pages of the listing (folders and the like) still restrict their subtree.
    for (const n of [...nodes.values()]) {
      if (n.parentId && !nodes.has(n.parentId)) {
        for (const a of await reader.foreignAncestors(n.id, (id) => nodes.has(id))) nodes.set(a.id, { ...a, spaceKey: n.spaceKey });
      }
    }
    const restrictions = await reader.allRestrictions([...nodes.keys()], swept);

    const accounts = new Set<string>();
    for (const v of views.values()) for (const id of v.userAccountIds) accounts.add(id);
    for (const r of restrictions.values()) {
      if ('inaccessible' in r) continue;
      for (const u of r.users) {
        reader.noteEmail(u.accountId, u.email);
        if (u.accountId && u.email === null) accounts.add(u.accountId);
      }
    }
    for (const n of nodes.values()) for (const id of [n.ownerId, n.modifierId]) if (id) accounts.add(id);
    for (const a of attachments) {
      reader.noteEmail(a.modifierId, a.modifierEmail);
      if (a.modifierId && !a.modifierEmail) accounts.add(a.modifierId);
    }
    await reader.resolveEmails(accounts);

    const groupIds = new Set<string>();
    for (const v of views.values()) for (const g of v.groupIds) groupIds.add(g);
    for (const r of restrictions.values()) if (!('inaccessible' in r)) for (const g of r.groupIds) groupIds.add(g);
    const members = new Map<string, ReadonlySet<string>>();
    const ids = [...groupIds].sort();
    const read = await mapLimit(ids, PARALLEL_GROUPS, (g) => reader.membersOf(g));
    ids.forEach((g, i) => {
      const m = read[i]!;
      members.set(g, m.emails);
      if (m.missing) warnings.push(`group ${g} no longer exists; it grants nothing`);
      if (m.hidden) warnings.push(`group ${g}: ${m.hidden} member(s) have no visible email (profile visibility); they are granted nothing through it`);
    });

    const spaceLevel = (key: string): { level: ReaderSet; problems: string[] } => {
      const v = views.get(key)!;
      const problems = [...v.problems];
      const users = new Set<string>();
      for (const id of v.userAccountIds) {
        const e = reader.emailOf(id);
        if (e) users.add(e);
        else problems.push(`space ${key}: view permission of account ${id}, whose email is not visible, grants nothing`);
      }
      return { level: { everyone: v.everyone, users, groups: new Set(v.groupIds) }, problems };
    };
    const spaceLevels = new Map([...views.keys()].map((k) => [k, spaceLevel(k)]));

    const chainOf = (n: ContentNode): ContentNode[] => {
      const chain = [n];
      const seen = new Set([n.id]);
      for (let p = n.parentId ? nodes.get(n.parentId) : undefined; p && !seen.has(p.id); p = p.parentId ? nodes.get(p.parentId) : undefined) {
        chain.push(p);
        seen.add(p.id);
      }
      return chain;
    };

    const aclOf = (chain: ContentNode[]): ResolvedAcl => {
      const space = spaceLevels.get(chain[0]!.spaceKey)!;
      const problems = [...space.problems];
      const levels: ReaderSet[] = [space.level];
      for (const node of chain) {
        const r = restrictions.get(node.id);
        if (!r || 'inaccessible' in r) {
          problems.push(`read restrictions of "${node.title}" (${node.id}) could not be read${r ? ` (${r.inaccessible})` : ''}; visible to no one`);
          return { principals: [], problems };
        }
        if (r.users.length + r.groupIds.length + r.unnamed.length === 0) continue;
        const users = new Set<string>();
        for (const u of r.users) {
          const e = reader.emailOf(u.accountId);
          if (e) users.add(e);
          else problems.push(`"${node.title}" restricts reading to ${u.name} (${u.accountId}), whose email is not visible; that entry grants nothing`);
        }
        for (const x of r.unnamed) problems.push(`"${node.title}" restricts reading to ${x} without an id; that entry grants nothing`);
        levels.push({ everyone: false, users, groups: new Set(r.groupIds) });
      }
      const result = intersectReaders(levels, (g) => members.get(g) ?? new Set());
      for (const g of result.groups) principalGroups.add(g);
      const principals = toPrincipals(sourceId, result);
      return problems.length ? { principals, problems } : { principals };
    };

    const clean = (t: string) => t.replace(/\//g, '∕').trim() || '(untitled)';
    const docs = new Map<string, Doc>();
    const pathById = new Map<string, string>();
    const aclById = new Map<string, ResolvedAcl>();
    for (const n of nodes.values()) {
      if (!n.document) continue;
      const kind = n.type as 'page' | 'blogpost';
      const chain = chainOf(n);
      const path = kind === 'blogpost'
        ? `/${n.spaceKey}/blog/${clean(n.title)}`
        : `/${n.spaceKey}/${chain.slice().reverse().map((x) => clean(x.title)).join('/')}`;
      const acl = aclOf(chain);
      pathById.set(n.id, path);
      aclById.set(n.id, acl);
      const meta: DocumentMeta = {
        externalId: confluenceExternalId(kind, n.id),
        title: n.title,
        url: n.webui ? `${root}${n.webui}` : null,
        path,
        mimeType: 'text/html',
        lastModified: n.modifiedAt ?? new Date(0),
        owner: reader.emailOf(n.ownerId) ?? reader.emailOf(n.modifierId),
        contentVersion: `v${n.version}`,
      };
      docs.set(meta.externalId, { meta, acl, kind, node: n });
    }
    for (const a of attachments) {
      const path = pathById.get(a.containerId);
      if (!path) continue; // on content that is not indexed (a comment, an archived page…)
      const meta: DocumentMeta = {
        externalId: confluenceExternalId('attachment', a.id),
        title: a.title,
        url: a.webui ? `${root}${a.webui}` : null,
        path: `${path}/${clean(a.title)}`,
        mimeType: a.mediaType,
        lastModified: a.modifiedAt ?? new Date(0),
        owner: a.modifierEmail ?? reader.emailOf(a.modifierId),
        size: a.size,
        contentVersion: `v${a.version}`,
      };
      // An attachment is readable by exactly those who can read its page.
      docs.set(meta.externalId, { meta, acl: aclById.get(a.containerId)!, kind: 'attachment', attachment: a });
    }
    return { docs, warnings };
  }

  const shortHash = (s: string) => sha256(s).slice(0, 12);
  const metaPrint = (m: DocumentMeta) => shortHash(JSON.stringify([m.title, m.path, m.url, m.owner, m.mimeType, m.lastModified.toISOString()]));
  const aclPrint = (a: ResolvedAcl) => shortHash(JSON.stringify([...a.principals].sort()));
  const entry = (d: Doc) => `${d.meta.contentVersion}|${metaPrint(d.meta)}|${aclPrint(d.acl)}`;

  /** One body read per batch: the first fetch in the batch reads every re-versioned page and blog post of it. */
  function bodyLoader(batch: Doc[]) {
    let loaded: Promise<Map<string, { title: string; storage: string }>> | null = null;
    const load = () => {
      loaded ??= (async () => {
        const out = new Map<string, { title: string; storage: string }>();
        for (const kind of ['page', 'blogpost'] as const) {
          const ids = batch.filter((d) => d.kind === kind).map((d) => d.node!.id);
          if (ids.length) for (const [id, b] of await reader.bodies(kind, ids)) out.set(id, b);
        }
        return out;
      })();
      loaded.catch(() => {
        loaded = null;
      });
      return loaded;
    };
    return async (doc: Doc): Promise<FetchedContent> => {
      const node = doc.node!;
      let body = (await load()).get(node.id);
      if (!body) body = (await reader.bodies(doc.kind as 'page' | 'blogpost', [node.id])).get(node.id);
      if (!body) throw new ConfluenceError(`${doc.kind} ${node.id} is no longer current in Confluence`, { retryable: false, status: 404 });
      return { bytes: Buffer.from(storageToHtml(node.title, body.storage), 'utf8'), mimeType: 'text/html' };
    };
  }

  async function fetchAttachment(doc: Doc): Promise<FetchedContent> {
    const a = doc.attachment!;
    try {
      // Types the extractors refuse anyway are not downloaded: the engine records them as skipped.
      detectFormat(new Uint8Array(0), a.mediaType, a.title);
    } catch (err) {
      if (err instanceof UnsupportedContentError) return { bytes: Buffer.alloc(0), mimeType: a.mediaType };
    }
    return { bytes: await reader.download(a), mimeType: a.mediaType };
  }

  return {
    type: 'confluence',
    enumeratesEverything: false,
    api,

    async test() {
      let me: { type?: string };
      try {
        me = await api.v1.users.getCurrentUser();
      } catch (err) {
        const e = toConfluenceError(err, 'GET current user');
        if (e.status === 401 || e.status === 403) {
          throw new Error(`Confluence at ${root} rejected the credentials of ${creds.email} (HTTP ${e.status}): check the account email and the API token`, { cause: err });
        }
        throw new Error(`cannot reach Confluence at ${root}: ${e.message}`, { cause: err });
      }
      if (me.type === 'anonymous') {
        throw new Error(`Confluence at ${root} did not accept the credentials of ${creds.email} (it answered as an anonymous user): check the API token`);
      }
      let missing: string[];
      try {
        ({ missing } = await new SiteReader(api).spaces(cfg.spaceKeys));
      } catch (err) {
        throw new Error(`cannot list the spaces of ${root}: ${errorMessage(err)}`, { cause: err });
      }
      if (missing.length) {
        throw new Error(`unknown space key${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: no such space on ${root}, or ${creds.email} may not view it`);
      }
    },

    async *changes({ cursor, full }): AsyncIterable<ChangePage> {
      const prev = full || cursor === null ? null : parseCursor(cursor);
      const { docs, warnings } = await snapshot();
      const state: CursorState = { v: 1, docs: {} };
      const pending: Array<{ doc: Doc; kind: 'upsert' | 'acl'; needsBody: boolean }> = [];
      for (const [id, doc] of docs) {
        const now = entry(doc);
        state.docs[id] = now;
        const before = prev?.docs[id];
        if (before === now) continue;
        const [version, meta] = before?.split('|') ?? [];
        if (before && version === doc.meta.contentVersion && meta === metaPrint(doc.meta)) pending.push({ doc, kind: 'acl', needsBody: false });
        else pending.push({ doc, kind: 'upsert', needsBody: version !== doc.meta.contentVersion });
      }
      const deletes: Change[] = Object.keys(prev?.docs ?? {}).filter((id) => !docs.has(id)).map((externalId) => ({ kind: 'delete', externalId }));

      const pages: Change[][] = [];
      let bodyOf: ReturnType<typeof bodyLoader> | null = null;
      for (let i = 0; i < pending.length; i += PAGE_SIZE) {
        // Bodies are read for BODY_BATCH documents at once, across the engine pages that hold them.
        if (i % BODY_BATCH === 0) bodyOf = bodyLoader(pending.slice(i, i + BODY_BATCH).filter((p) => p.needsBody && p.doc.kind !== 'attachment').map((p) => p.doc));
        const batch = pending.slice(i, i + PAGE_SIZE);
        const load = bodyOf!;
        pages.push(batch.map(({ doc, kind }): Change => (kind === 'acl'
          ? { kind: 'acl', externalId: doc.meta.externalId, acl: doc.acl }
          : { kind: 'upsert', doc: doc.meta, acl: doc.acl, fetch: () => (doc.kind === 'attachment' ? fetchAttachment(doc) : load(doc)) })));
      }
      for (let i = 0; i < deletes.length; i += PAGE_SIZE) pages.push(deletes.slice(i, i + PAGE_SIZE));
      if (pages.length === 0) pages.push([]);
      for (let i = 0; i < pages.length; i++) {
        const last = i === pages.length - 1;
        yield { changes: pages[i]!, cursor: last ? JSON.stringify(state) : null, warnings: i === 0 ? warnings : undefined };
      }
    },

    /**
     * Members of every group an ACL of this run names (and of every group the engine already
     * holds), from the same reads the ACLs were computed with. A group Confluence no longer knows
     * has no members.
     */
    async *groups(opts?: { knownGroupIds?: string[] }): AsyncIterable<GroupMembers> {
      const ids = new Set([...principalGroups, ...(opts?.knownGroupIds ?? [])]);
      for (const id of [...ids].sort()) {
        const m = await reader.membersOf(id);
        yield { groupId: id, memberEmails: [...m.emails].sort() };
      }
    },
  };
}
