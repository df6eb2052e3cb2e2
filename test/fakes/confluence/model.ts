/**
 * The state of a fake Confluence Cloud site: users (some with emails hidden by their profile
 * visibility), groups, spaces with permission assignments, a content tree (pages, folders, blog
 * posts) with read/update restrictions, and attachments. Mutation helpers behave as Confluence does
 * where a sync client can tell: editing or renaming publishes a new version, moving does not;
 * trashing or purging a page lifts its children to its parent; moving a page to another space takes
 * its subtree along; archiving takes the subtree along; restriction changes publish no version.
 */

export interface FakeUser {
  accountId: string;
  email: string;
  displayName: string;
  /** Profile visibility hides the email: the REST API answers an empty string. */
  emailHidden: boolean;
}

export interface FakeGroup {
  id: string;
  name: string;
  members: Set<string>;
}

export type SpaceGrantee = { user: string } | { group: string } | { accessClass: string } | { role: string };

export interface FakeSpacePermission {
  id: string;
  principal: { type: string; id: string };
  operation: { key: string; targetType: string };
}

export interface FakeSpace {
  id: string;
  key: string;
  name: string;
  status: 'current' | 'archived';
  homepageId: string | null;
  createdAt: Date;
  permissions: FakeSpacePermission[];
  /** Permission reads answer 403 (the account lacks the right to see who may view the space). */
  permissionsHidden: boolean;
}

export interface Restriction {
  users: Set<string>;
  groups: Set<string>;
}

export type ContentType = 'page' | 'blogpost' | 'folder';
export type ContentStatus = 'current' | 'trashed' | 'archived' | 'draft';

export interface FakeContent {
  id: string;
  type: ContentType;
  spaceId: string;
  parentId: string | null;
  title: string;
  body: string;
  status: ContentStatus;
  version: number;
  modifiedAt: Date;
  createdAt: Date;
  authorId: string;
  ownerId: string;
  lastModifierId: string;
  read: Restriction;
  update: Restriction;
  /** Restriction reads answer 403 (the account may see the page but not who else may). */
  restrictionsHidden: boolean;
}

export interface FakeAttachment {
  id: string;
  containerId: string;
  title: string;
  mediaType: string;
  bytes: Buffer;
  version: number;
  modifiedAt: Date;
  createdAt: Date;
  authorId: string;
  status: 'current' | 'trashed';
}

export type AddContentOptions = { parent?: FakeContent | string | null; by?: FakeUser; owner?: FakeUser };

export class FakeConfluenceSite {
  readonly users = new Map<string, FakeUser>();
  readonly groups = new Map<string, FakeGroup>();
  readonly spaces = new Map<string, FakeSpace>();
  readonly contents = new Map<string, FakeContent>();
  readonly attachments = new Map<string, FakeAttachment>();
  /** The account the connector authenticates as. */
  readonly apiUser: FakeUser;
  private seq = 1000;
  private lastTime = 0;

  constructor(apiEmail: string) {
    this.apiUser = this.addUser(apiEmail, { name: 'Clearance indexer' });
  }

  /** Called after each change a Confluence webhook can announce (the server posts the events). */
  protected event(_name: string, _subject: { content?: FakeContent; attachment?: FakeAttachment; space?: FakeSpace }): void {}

  private contentEvent(c: FakeContent, action: string): void {
    const kind = c.type === 'blogpost' ? 'blog' : c.type === 'page' ? 'page' : null;
    if (kind) this.event(`${kind}_${action}`, { content: c });
  }

  /** Strictly increasing timestamps, so "modified since" questions have exact answers. */
  now(): Date {
    this.lastTime = Math.max(this.lastTime + 1, Date.now());
    return new Date(this.lastTime);
  }

  private nextId(): string {
    return String(++this.seq);
  }

  // ---- people ------------------------------------------------------------------------------

  addUser(email: string, opts: { hidden?: boolean; name?: string } = {}): FakeUser {
    const accountId = `5b10ac8d82e05b22cc7d${String(this.users.size).padStart(4, '0')}`;
    const user: FakeUser = { accountId, email, displayName: opts.name ?? email.split('@')[0]!, emailHidden: !!opts.hidden };
    this.users.set(accountId, user);
    return user;
  }

  addGroup(name: string, members: FakeUser[] = []): FakeGroup {
    const id = `${this.nextId()}-aaaa-bbbb-cccc-${name.length.toString().padStart(12, '0')}`;
    const group: FakeGroup = { id, name, members: new Set(members.map((m) => m.accountId)) };
    this.groups.set(id, group);
    return group;
  }

  addGroupMember(group: FakeGroup, user: FakeUser): void {
    group.members.add(user.accountId);
  }

  removeGroupMember(group: FakeGroup, user: FakeUser): void {
    group.members.delete(user.accountId);
  }

  // ---- spaces ------------------------------------------------------------------------------

  addSpace(key: string, opts: { name?: string; view?: SpaceGrantee[] } = {}): FakeSpace {
    const space: FakeSpace = {
      id: this.nextId(), key, name: opts.name ?? key, status: 'current', homepageId: null, createdAt: this.now(), permissions: [], permissionsHidden: false,
    };
    this.spaces.set(space.id, space);
    // Whoever creates a space administers it; the indexer's account is given view here.
    this.grantSpace(space, { user: this.apiUser.accountId });
    for (const g of opts.view ?? []) this.grantSpace(space, g);
    return space;
  }

  spaceByKey(key: string): FakeSpace {
    const s = [...this.spaces.values()].find((x) => x.key === key);
    if (!s) throw new Error(`no space ${key}`);
    return s;
  }

  /** Adds view permission (`read`/`space`) and, for realism, a few other operations. */
  grantSpace(space: FakeSpace, grantee: SpaceGrantee, operations: Array<[string, string]> = [['read', 'space'], ['create', 'page']]): void {
    const principal = 'user' in grantee ? { type: 'user', id: grantee.user }
      : 'group' in grantee ? { type: 'group', id: grantee.group }
        : 'accessClass' in grantee ? { type: 'access_class', id: grantee.accessClass }
          : { type: 'role', id: grantee.role };
    for (const [key, targetType] of operations) {
      space.permissions.push({ id: this.nextId(), principal, operation: { key, targetType } });
    }
  }

  /** Removes every permission of this grantee in the space. */
  revokeSpace(space: FakeSpace, grantee: SpaceGrantee): void {
    const id = 'user' in grantee ? grantee.user : 'group' in grantee ? grantee.group : 'accessClass' in grantee ? grantee.accessClass : grantee.role;
    space.permissions = space.permissions.filter((p) => p.principal.id !== id);
  }

  // ---- content -----------------------------------------------------------------------------

  private add(type: ContentType, spaceKey: string, title: string, body: string, opts: AddContentOptions): FakeContent {
    const space = this.spaceByKey(spaceKey);
    const parent = typeof opts.parent === 'string' ? this.mustContent(opts.parent) : opts.parent ?? null;
    if (parent && parent.spaceId !== space.id) throw new Error('a parent must be in the same space');
    const by = opts.by ?? this.apiUser;
    const at = this.now();
    const c: FakeContent = {
      id: this.nextId(), type, spaceId: space.id, parentId: parent?.id ?? null, title, body, status: 'current', version: 1,
      modifiedAt: at, createdAt: at, authorId: by.accountId, ownerId: (opts.owner ?? by).accountId, lastModifierId: by.accountId,
      read: { users: new Set(), groups: new Set() }, update: { users: new Set(), groups: new Set() }, restrictionsHidden: false,
    };
    this.contents.set(c.id, c);
    if (type === 'page' && !parent && !space.homepageId) space.homepageId = c.id;
    this.contentEvent(c, 'created');
    return c;
  }

  addPage(spaceKey: string, title: string, body: string, opts: AddContentOptions = {}): FakeContent {
    return this.add('page', spaceKey, title, body, opts);
  }

  addFolder(spaceKey: string, title: string, opts: AddContentOptions = {}): FakeContent {
    return this.add('folder', spaceKey, title, '', opts);
  }

  addBlogPost(spaceKey: string, title: string, body: string, opts: Omit<AddContentOptions, 'parent'> = {}): FakeContent {
    return this.add('blogpost', spaceKey, title, body, { ...opts, parent: null });
  }

  mustContent(id: string): FakeContent {
    const c = this.contents.get(id);
    if (!c) throw new Error(`no content ${id}`);
    return c;
  }

  private publish(c: FakeContent, by?: FakeUser): void {
    c.version++;
    c.modifiedAt = this.now();
    if (by) c.lastModifierId = by.accountId;
    this.contentEvent(c, 'updated');
  }

  editBody(c: FakeContent, body: string, opts: { by?: FakeUser } = {}): void {
    c.body = body;
    this.publish(c, opts.by);
  }

  /** A title change is a new version of the page in Confluence. */
  rename(c: FakeContent, title: string, opts: { by?: FakeUser } = {}): void {
    c.title = title;
    this.publish(c, opts.by);
  }

  children(c: FakeContent): FakeContent[] {
    return [...this.contents.values()].filter((x) => x.parentId === c.id);
  }

  descendants(c: FakeContent): FakeContent[] {
    const out: FakeContent[] = [];
    const stack = [c];
    while (stack.length) {
      for (const k of this.children(stack.pop()!)) {
        out.push(k);
        stack.push(k);
      }
    }
    return out;
  }

  /** Ancestors from the top of the tree down to the direct parent. */
  ancestors(c: FakeContent): FakeContent[] {
    const out: FakeContent[] = [];
    for (let p = c.parentId ? this.contents.get(c.parentId) : undefined; p; p = p.parentId ? this.contents.get(p.parentId) : undefined) out.unshift(p);
    return out;
  }

  /** Moves a page (with its subtree) under another parent, to the top of its space, or into another space. */
  move(c: FakeContent, to: { parent: FakeContent } | { spaceKey: string }): void {
    if ('parent' in to) {
      if (to.parent.id === c.id || this.descendants(c).includes(to.parent)) throw new Error('cannot move a page under itself');
      if (to.parent.spaceId !== c.spaceId) for (const x of [c, ...this.descendants(c)]) x.spaceId = to.parent.spaceId;
      c.parentId = to.parent.id;
    } else {
      const space = this.spaceByKey(to.spaceKey);
      for (const x of [c, ...this.descendants(c)]) x.spaceId = space.id;
      c.parentId = null;
    }
    this.contentEvent(c, 'moved');
  }

  /** Trash (or purge) lifts the page's children to its parent, as Confluence does. */
  trash(c: FakeContent): void {
    for (const k of this.children(c)) k.parentId = c.parentId;
    c.status = 'trashed';
    c.parentId = null;
    this.contentEvent(c, 'trashed');
  }

  purge(c: FakeContent): void {
    if (c.status !== 'trashed') this.trash(c);
    this.contents.delete(c.id);
    for (const a of this.attachments.values()) if (a.containerId === c.id) this.attachments.delete(a.id);
    this.contentEvent(c, 'removed');
  }

  restore(c: FakeContent, parent: FakeContent | null = null): void {
    c.status = 'current';
    c.parentId = parent?.id ?? null;
    this.contentEvent(c, 'restored');
  }

  archive(c: FakeContent): void {
    for (const x of [c, ...this.descendants(c)]) x.status = 'archived';
    this.contentEvent(c, 'archived');
  }

  setReadRestriction(c: FakeContent, who: { users?: FakeUser[]; groups?: FakeGroup[] }): void {
    c.read = { users: new Set((who.users ?? []).map((u) => u.accountId)), groups: new Set((who.groups ?? []).map((g) => g.id)) };
    this.event('content_restrictions_updated', { content: c });
  }

  setEditRestriction(c: FakeContent, who: { users?: FakeUser[]; groups?: FakeGroup[] }): void {
    c.update = { users: new Set((who.users ?? []).map((u) => u.accountId)), groups: new Set((who.groups ?? []).map((g) => g.id)) };
    this.event('content_restrictions_updated', { content: c });
  }

  clearReadRestriction(c: FakeContent): void {
    c.read = { users: new Set(), groups: new Set() };
    this.event('content_restrictions_updated', { content: c });
  }

  // ---- attachments -------------------------------------------------------------------------

  addAttachment(container: FakeContent, title: string, bytes: Buffer | string, mediaType: string, opts: { by?: FakeUser } = {}): FakeAttachment {
    const at = this.now();
    const a: FakeAttachment = {
      id: `att${this.nextId()}`, containerId: container.id, title, mediaType, bytes: Buffer.from(bytes), version: 1,
      modifiedAt: at, createdAt: at, authorId: (opts.by ?? this.apiUser).accountId, status: 'current',
    };
    this.attachments.set(a.id, a);
    this.event('attachment_created', { attachment: a });
    return a;
  }

  updateAttachment(a: FakeAttachment, bytes: Buffer | string): void {
    a.bytes = Buffer.from(bytes);
    a.version++;
    a.modifiedAt = this.now();
    this.event('attachment_updated', { attachment: a });
  }

  deleteAttachment(a: FakeAttachment): void {
    this.attachments.delete(a.id);
    this.event('attachment_removed', { attachment: a });
  }

  // ---- derived -----------------------------------------------------------------------------

  spaceOf(c: FakeContent): FakeSpace {
    return this.spaces.get(c.spaceId)!;
  }

  /** Current content whose whole ancestor chain is current too (what listings return). */
  isLive(c: FakeContent): boolean {
    return c.status === 'current' && this.spaces.get(c.spaceId)?.status === 'current';
  }
}
