import { createHash, randomUUID } from 'node:crypto';

/**
 * In-memory tenant behind the fake Microsoft Graph: directory (users, nested Entra groups),
 * SharePoint sites and document libraries, a folder tree with SharePoint-style permission
 * inheritance, and a change log that drives `delta`.
 *
 * Inheritance: an item whose `own` permission set is null inherits its parent's effective set
 * (the library root always has its own set, standing in for the site's permissions). Breaking
 * inheritance gives the item its own set, copied from what it inherited, as SharePoint does.
 */

export interface FakeUser {
  id: string;
  mail: string | null;
  userPrincipalName: string;
  displayName: string;
}

export interface FakeGroup {
  id: string;
  displayName: string;
  /** `unified`: a Microsoft 365 group (the group behind a group-connected team site). */
  kind: 'security' | 'unified';
  /** Direct members: user ids or group ids. */
  members: Set<string>;
  /** Owners (user ids); a group-connected site's Owners group holds them. */
  owners: Set<string>;
}

/** A member of a SharePoint site group, as SharePoint REST lists it. */
export type FakeSiteGroupMember =
  /** An Entra user by id (`i:0#.f|membership|<upn>`). */
  | { user: string }
  /** An Entra security group (`c:0t.c|tenant|<id>`) or Microsoft 365 group (`c:0o.c|federateddirectoryclaimprovider|<id>`). */
  | { group: string }
  /** A Microsoft 365 group's owners (`c:0o.c|federateddirectoryclaimprovider|<id>_o`). */
  | { groupOwners: string }
  /** Any other claims login, e.g. "Everyone except external users". */
  | { login: string; title?: string; principalType?: number; email?: string };

export interface FakeSiteGroup {
  /** SharePoint's numeric id, unique within the site collection. */
  id: number;
  title: string;
  members: FakeSiteGroupMember[];
}

export interface FakeSite {
  id: string;
  displayName: string;
  webUrl: string;
  driveIds: string[];
  /** Site collection and web ids (Graph `sharepointIds`). */
  collectionId: string;
  webId: string;
  /** The Microsoft 365 group of a group-connected site. */
  groupId: string | null;
  siteGroups: Map<number, FakeSiteGroup>;
}

export interface FakeDrive {
  id: string;
  name: string;
  siteId: string;
  rootId: string;
}

export type FakeRole = 'read' | 'write' | 'owner' | (string & {});

/** What a permission grants to; rendered into Graph's permission resource by the server. */
export type FakeGrant =
  /** An Entra user by id. `withEmail: false` leaves `email` out so clients must look the user up. */
  | { user: string; roles?: FakeRole[]; withEmail?: boolean }
  /** An Entra group by id. */
  | { group: string; roles?: FakeRole[] }
  /** A SharePoint user by claims login, e.g. `i:0#.f|membership|alice@acme.test`. */
  | { siteUser: string; roles?: FakeRole[] }
  /** A SharePoint site group (membership not available through Graph v1.0). */
  | { siteGroup: { id: string; displayName: string }; roles?: FakeRole[] }
  /** A sharing link; only `identities` (user or group ids) are listed in grantedToIdentitiesV2. */
  | { link: { scope: 'anonymous' | 'organization' | 'users'; type?: 'view' | 'edit' }; identities?: string[]; roles?: FakeRole[] }
  /** Any permission JSON, for shapes the fake does not model. */
  | { raw: Record<string, unknown> };

export interface StoredPermission {
  id: string;
  grant: FakeGrant;
}

export interface FakeItem {
  id: string;
  driveId: string;
  name: string;
  parentId: string | null;
  kind: 'root' | 'folder' | 'file';
  content: Buffer;
  mimeType: string;
  contentVersion: number;
  metaVersion: number;
  createdAt: Date;
  modifiedAt: Date;
  createdBy: string | null;
  modifiedBy: string | null;
  own: StoredPermission[] | null;
  deleted: boolean;
  /** Change-log position of the item's last change. */
  seq: number;
  /** Its last change was a sharing change (delta annotates it). */
  sharedChanged: boolean;
  order: number;
}

const MIME: Record<string, string> = {
  '.txt': 'text/plain', '.md': 'text/markdown', '.html': 'text/html', '.pdf': 'application/pdf',
  '.csv': 'text/csv', '.json': 'application/json',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
};

export function guessMime(name: string): string {
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.')).toLowerCase() : '';
  return MIME[ext] ?? 'application/octet-stream';
}

export class FakeTenant {
  readonly users = new Map<string, FakeUser>();
  readonly groups = new Map<string, FakeGroup>();
  readonly sites = new Map<string, FakeSite>();
  readonly drives = new Map<string, FakeDrive>();
  readonly items = new Map<string, FakeItem>();
  /** Change-log clock; delta tokens remember a position in it. */
  seq = 0;
  /** Bumped by expireDeltaTokens(): tokens from an older epoch answer 410. */
  epoch = 0;
  /** Host (and port) of new sites' web URLs: where the fake serves SharePoint REST. */
  sharepointHost = 'acme.sharepoint.test';
  private counter = 0;
  private permCounter = 0;

  // ---- directory ----------------------------------------------------------------------------

  addUser(mail: string, opts: { id?: string; displayName?: string; noMail?: boolean; upn?: string } = {}): FakeUser {
    const user: FakeUser = {
      id: opts.id ?? randomUUID(),
      mail: opts.noMail ? null : mail,
      userPrincipalName: opts.upn ?? mail,
      displayName: opts.displayName ?? mail.split('@')[0]!,
    };
    this.users.set(user.id, user);
    return user;
  }

  removeUser(userId: string): void {
    this.users.delete(userId);
  }

  addGroup(displayName: string, members: string[] = [], opts: { id?: string; kind?: FakeGroup['kind']; owners?: string[] } = {}): FakeGroup {
    const group: FakeGroup = {
      id: opts.id ?? randomUUID(), displayName, kind: opts.kind ?? 'security', members: new Set(members), owners: new Set(opts.owners ?? []),
    };
    this.groups.set(group.id, group);
    return group;
  }

  addGroupOwner(groupId: string, userId: string): void {
    this.mustGroup(groupId).owners.add(userId);
  }

  removeGroupOwner(groupId: string, userId: string): void {
    this.mustGroup(groupId).owners.delete(userId);
  }

  addGroupMember(groupId: string, memberId: string): void {
    this.mustGroup(groupId).members.add(memberId);
  }

  removeGroupMember(groupId: string, memberId: string): void {
    this.mustGroup(groupId).members.delete(memberId);
  }

  /** Users reachable from the group through nested groups (cycles tolerated). */
  transitiveUsers(groupId: string): FakeUser[] {
    const seen = new Set<string>();
    const users = new Map<string, FakeUser>();
    const visit = (gid: string) => {
      if (seen.has(gid)) return;
      seen.add(gid);
      for (const m of this.groups.get(gid)?.members ?? []) {
        const u = this.users.get(m);
        if (u) users.set(u.id, u);
        else if (this.groups.has(m)) visit(m);
      }
    };
    visit(groupId);
    return [...users.values()];
  }

  /** Nested groups reachable from the group. */
  transitiveGroups(groupId: string): FakeGroup[] {
    const seen = new Set<string>([groupId]);
    const out: FakeGroup[] = [];
    const visit = (gid: string) => {
      for (const m of this.groups.get(gid)?.members ?? []) {
        const g = this.groups.get(m);
        if (g && !seen.has(g.id)) {
          seen.add(g.id);
          out.push(g);
          visit(g.id);
        }
      }
    };
    visit(groupId);
    return out;
  }

  // ---- sites and libraries ------------------------------------------------------------------

  /**
   * A site with SharePoint's three default groups: "<name> Owners" (3), "<name> Visitors" (4) and
   * "<name> Members" (5). With `group` (a Microsoft 365 group) it is group-connected: Members
   * holds the group and Owners its owners, as SharePoint sets them up.
   */
  addSite(displayName: string, opts: { id?: string; host?: string; group?: string } = {}): FakeSite {
    const host = opts.host ?? this.sharepointHost;
    const slug = displayName.toLowerCase().replace(/[^a-z0-9]+/g, '-');
    const collectionId = randomUUID();
    const webId = randomUUID();
    // Real site ids are "hostname,siteCollectionGuid,webGuid": commas must survive URL encoding.
    const site: FakeSite = {
      id: opts.id ?? `${host.split(':')[0]},${collectionId},${webId}`, displayName, webUrl: `https://${host}/sites/${slug}`, driveIds: [],
      collectionId, webId, groupId: opts.group ?? null, siteGroups: new Map(),
    };
    if (opts.group) this.mustGroup(opts.group);
    const defaults: Array<[number, string, FakeSiteGroupMember[]]> = [
      [3, 'Owners', opts.group ? [{ groupOwners: opts.group }] : []],
      [4, 'Visitors', []],
      [5, 'Members', opts.group ? [{ group: opts.group }] : []],
    ];
    for (const [id, role, members] of defaults) site.siteGroups.set(id, { id, title: `${displayName} ${role}`, members });
    this.sites.set(site.id, site);
    return site;
  }

  /** A custom SharePoint group on the site (ids continue after the defaults). */
  addSiteGroup(siteId: string, title: string, members: Array<FakeSiteGroupMember | string> = []): FakeSiteGroup {
    const site = this.mustSite(siteId);
    const id = Math.max(5, ...site.siteGroups.keys()) + 1;
    const group: FakeSiteGroup = { id, title, members: [] };
    site.siteGroups.set(id, group);
    for (const m of members) this.addSiteGroupMember(siteId, id, m);
    return group;
  }

  /** By id, full title, or default role ("Owners", "Members", "Visitors"). */
  siteGroup(siteId: string, ref: number | string): FakeSiteGroup {
    const site = this.mustSite(siteId);
    const found = typeof ref === 'number'
      ? site.siteGroups.get(ref)
      : [...site.siteGroups.values()].find((g) => g.title.toLowerCase() === ref.toLowerCase() || g.title.toLowerCase() === `${site.displayName} ${ref}`.toLowerCase());
    if (!found) throw new Error(`no site group ${ref} on ${site.displayName}`);
    return found;
  }

  /** A plain id is an Entra user or group. */
  addSiteGroupMember(siteId: string, group: number | string, member: FakeSiteGroupMember | string): void {
    const g = this.siteGroup(siteId, group);
    const m = this.siteMember(member);
    if (!g.members.some((x) => siteMemberKey(x) === siteMemberKey(m))) g.members.push(m);
  }

  removeSiteGroupMember(siteId: string, group: number | string, member: FakeSiteGroupMember | string): void {
    const g = this.siteGroup(siteId, group);
    const key = siteMemberKey(this.siteMember(member));
    g.members = g.members.filter((x) => siteMemberKey(x) !== key);
  }

  /** A permission granted to a site group (what Graph reports as `grantedToV2.siteGroup`). */
  siteGroupGrant(siteId: string, group: number | string, roles?: FakeRole[]): FakeGrant {
    const g = this.siteGroup(siteId, group);
    return { siteGroup: { id: String(g.id), displayName: g.title }, ...(roles ? { roles } : {}) };
  }

  private siteMember(member: FakeSiteGroupMember | string): FakeSiteGroupMember {
    if (typeof member !== 'string') return member;
    if (this.users.has(member)) return { user: member };
    if (this.groups.has(member)) return { group: member };
    throw new Error(`no user or group ${member}`);
  }

  /** A document library; `permissions` is the site-level set every item inherits by default. */
  addDrive(siteId: string, name: string, opts: { id?: string; permissions?: FakeGrant[] } = {}): FakeDrive {
    const site = this.mustSite(siteId);
    const id = opts.id ?? `b!${randomUUID().replace(/-/g, '')}`;
    const root = this.newItem({ driveId: id, name: 'root', parentId: null, kind: 'root' });
    root.own = (opts.permissions ?? []).map((g) => this.stored(g));
    const drive: FakeDrive = { id, name, siteId, rootId: root.id };
    this.drives.set(id, drive);
    site.driveIds.push(id);
    return drive;
  }

  // ---- items ----------------------------------------------------------------------------------

  /** Creates the folder and any missing parents; returns the existing one if present. */
  addFolder(driveId: string, path: string): FakeItem {
    let parent = this.mustItem(this.mustDrive(driveId).rootId);
    for (const part of splitPath(path)) {
      const existing = this.childNamed(parent.id, part);
      if (existing) {
        if (existing.kind === 'file') throw new Error(`${part} is a file`);
        parent = existing;
        continue;
      }
      const folder = this.newItem({ driveId, name: part, parentId: parent.id, kind: 'folder' });
      this.touch(folder, { ancestors: true });
      parent = folder;
    }
    return parent;
  }

  addFile(
    driveId: string,
    path: string,
    content: string | Buffer,
    opts: { mimeType?: string; modifiedBy?: string; permissions?: FakeGrant[] } = {},
  ): FakeItem {
    const parts = splitPath(path);
    const name = parts.pop();
    if (!name) throw new Error('file path needs a name');
    const parent = parts.length ? this.addFolder(driveId, parts.join('/')) : this.mustItem(this.mustDrive(driveId).rootId);
    if (this.childNamed(parent.id, name)) throw new Error(`${path} already exists`);
    const file = this.newItem({ driveId, name, parentId: parent.id, kind: 'file' });
    file.content = Buffer.from(content);
    file.mimeType = opts.mimeType ?? guessMime(name);
    file.createdBy = file.modifiedBy = opts.modifiedBy ?? null;
    if (opts.permissions) file.own = opts.permissions.map((g) => this.stored(g));
    this.touch(file, { ancestors: true });
    return file;
  }

  itemByPath(driveId: string, path: string): FakeItem {
    let cur = this.mustItem(this.mustDrive(driveId).rootId);
    for (const part of splitPath(path)) {
      const next = this.childNamed(cur.id, part);
      if (!next) throw new Error(`no item at ${path}`);
      cur = next;
    }
    return cur;
  }

  updateContent(itemId: string, content: string | Buffer, opts: { modifiedBy?: string } = {}): void {
    const item = this.mustItem(itemId);
    item.content = Buffer.from(content);
    item.contentVersion++;
    item.metaVersion++;
    item.modifiedAt = new Date();
    if (opts.modifiedBy) item.modifiedBy = opts.modifiedBy;
    this.touch(item, { ancestors: true });
  }

  rename(itemId: string, newName: string): void {
    const item = this.mustItem(itemId);
    item.name = newName;
    item.metaVersion++;
    this.touch(item, { ancestors: true });
  }

  move(itemId: string, newParentId: string, newName?: string): void {
    const item = this.mustItem(itemId);
    const target = this.mustItem(newParentId);
    if (target.kind === 'file') throw new Error('cannot move into a file');
    for (let p: FakeItem | null = target; p; p = p.parentId ? this.mustItem(p.parentId) : null) {
      if (p.id === item.id) throw new Error('cannot move a folder into itself');
    }
    this.touchAncestors(item);
    item.parentId = target.id;
    if (newName) item.name = newName;
    item.metaVersion++;
    // As documented for delta: the moved item shows up, its descendants do not.
    this.touch(item, { ancestors: true });
  }

  /** Deletes the item and everything below it; all of them show up in delta with `deleted`. */
  delete(itemId: string): void {
    const item = this.mustItem(itemId);
    if (item.kind === 'root') throw new Error('cannot delete a library root');
    this.touchAncestors(item);
    for (const d of [item, ...this.descendants(item.id)]) {
      d.deleted = true;
      this.touch(d, { ancestors: false });
    }
  }

  // ---- permissions ----------------------------------------------------------------------------

  /** Gives the item exactly these permissions (breaking inheritance). */
  setPermissions(itemId: string, grants: FakeGrant[]): void {
    const item = this.mustItem(itemId);
    item.own = grants.map((g) => this.stored(g));
    this.sharingChanged(item);
  }

  /** Unique permissions, starting as a copy of the inherited ones. */
  breakInheritance(itemId: string): void {
    const item = this.mustItem(itemId);
    if (item.own) return;
    item.own = this.effective(item).map(({ perm }) => this.stored(perm.grant));
    this.sharingChanged(item);
  }

  resetInheritance(itemId: string): void {
    const item = this.mustItem(itemId);
    if (item.kind === 'root') throw new Error('a library root cannot inherit');
    item.own = null;
    this.sharingChanged(item);
  }

  /** Adds one permission, breaking inheritance first as SharePoint does when sharing. Returns its id. */
  addPermission(itemId: string, grant: FakeGrant): string {
    const item = this.mustItem(itemId);
    if (!item.own) item.own = this.effective(item).map(({ perm }) => this.stored(perm.grant));
    const p = this.stored(grant);
    item.own.push(p);
    this.sharingChanged(item);
    return p.id;
  }

  addLink(itemId: string, link: { scope: 'anonymous' | 'organization' | 'users'; type?: 'view' | 'edit'; identities?: string[] }): string {
    return this.addPermission(itemId, { link: { scope: link.scope, type: link.type ?? 'view' }, identities: link.identities });
  }

  removePermission(itemId: string, permissionId: string): void {
    const item = this.mustItem(itemId);
    if (!item.own) throw new Error('item inherits its permissions; break inheritance first');
    item.own = item.own.filter((p) => p.id !== permissionId);
    this.sharingChanged(item);
  }

  /** The item's effective permissions and where each comes from (null = set on the item). */
  effective(item: FakeItem): Array<{ perm: StoredPermission; from: FakeItem | null }> {
    let cur = item;
    while (cur.own === null) cur = this.mustItem(cur.parentId!);
    return cur.own.map((perm) => ({ perm, from: cur === item ? null : cur }));
  }

  // ---- change log -----------------------------------------------------------------------------

  /** Every delta token issued so far answers 410 from now on. */
  expireDeltaTokens(): void {
    this.epoch++;
  }

  /** Drive-relative path: '' for the root, '/A/b.txt' otherwise. */
  pathOf(item: FakeItem): string {
    if (item.kind === 'root' || item.parentId === null) return '';
    return `${this.pathOf(this.mustItem(item.parentId))}/${item.name}`;
  }

  children(itemId: string): FakeItem[] {
    return [...this.items.values()].filter((i) => i.parentId === itemId && !i.deleted).sort((a, b) => a.order - b.order);
  }

  descendants(itemId: string): FakeItem[] {
    const out: FakeItem[] = [];
    for (const c of this.children(itemId)) out.push(c, ...this.descendants(c.id));
    return out;
  }

  /** Live items changed after `since` (all when null) in tree order, then deletions. */
  changedSince(driveId: string, since: number | null): FakeItem[] {
    const root = this.mustItem(this.mustDrive(driveId).rootId);
    const live = [root, ...this.descendants(root.id)].filter((i) => since === null || i.seq > since);
    if (since === null) return live;
    const gone = [...this.items.values()].filter((i) => i.driveId === driveId && i.deleted && i.seq > since).sort((a, b) => a.seq - b.seq);
    return [...live, ...gone];
  }

  quickXorHash(item: FakeItem): string {
    // Opaque content hash standing in for QuickXorHash: changes with content, not with name.
    return createHash('sha1').update(item.content).digest('base64');
  }

  // ---- internals ------------------------------------------------------------------------------

  mustItem(id: string): FakeItem {
    const i = this.items.get(id);
    if (!i) throw new Error(`no item ${id}`);
    return i;
  }

  mustDrive(id: string): FakeDrive {
    const d = this.drives.get(id);
    if (!d) throw new Error(`no drive ${id}`);
    return d;
  }

  mustSite(id: string): FakeSite {
    const s = this.sites.get(id);
    if (!s) throw new Error(`no site ${id}`);
    return s;
  }

  private mustGroup(id: string): FakeGroup {
    const g = this.groups.get(id);
    if (!g) throw new Error(`no group ${id}`);
    return g;
  }

  private childNamed(parentId: string, name: string): FakeItem | undefined {
    return this.children(parentId).find((c) => c.name.toLowerCase() === name.toLowerCase());
  }

  private stored(grant: FakeGrant): StoredPermission {
    return { id: `perm-${++this.permCounter}`, grant };
  }

  private newItem(init: { driveId: string; name: string; parentId: string | null; kind: FakeItem['kind'] }): FakeItem {
    const n = ++this.counter;
    const now = new Date();
    const item: FakeItem = {
      id: `01FAKE${String(n).padStart(8, '0')}${init.kind === 'file' ? 'F' : 'D'}`,
      ...init,
      content: Buffer.alloc(0),
      mimeType: 'application/octet-stream',
      contentVersion: 1,
      metaVersion: 1,
      createdAt: now,
      modifiedAt: now,
      createdBy: null,
      modifiedBy: null,
      own: null,
      deleted: false,
      seq: (this.driveChanged(init.driveId), ++this.seq),
      sharedChanged: false,
      order: n,
    };
    this.items.set(item.id, item);
    return item;
  }

  /** Called after every change to a drive's items (the server notifies its subscriptions). */
  protected driveChanged(_driveId: string): void {}

  private touch(item: FakeItem, opts: { ancestors: boolean }): void {
    this.driveChanged(item.driveId);
    item.seq = ++this.seq;
    item.sharedChanged = false;
    if (opts.ancestors) this.touchAncestors(item);
  }

  /** Folders' cTag changes with their content, so real delta reports every ancestor too. */
  private touchAncestors(item: FakeItem): void {
    for (let p = item.parentId ? this.items.get(item.parentId) : undefined; p; p = p.parentId ? this.items.get(p.parentId) : undefined) {
      p.seq = ++this.seq;
      p.sharedChanged = false;
    }
  }

  /** Only the item itself shows up in delta, not the descendants that inherit from it. */
  private sharingChanged(item: FakeItem): void {
    this.driveChanged(item.driveId);
    item.seq = ++this.seq;
    item.sharedChanged = true;
    item.metaVersion++;
  }
}

export function siteMemberKey(m: FakeSiteGroupMember): string {
  if ('user' in m) return `u:${m.user}`;
  if ('group' in m) return `g:${m.group}`;
  if ('groupOwners' in m) return `o:${m.groupOwners}`;
  return `l:${m.login}`;
}

export function splitPath(path: string): string[] {
  return path.split('/').filter(Boolean);
}
