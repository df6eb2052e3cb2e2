import { createHash } from 'node:crypto';

/**
 * The state of a fake Google Workspace: directory users and groups, shared drives with members,
 * My Drive and shared-drive files with their own permissions, and Drive's change log. Pure data
 * and rules; server.ts puts the documented HTTP shapes on top.
 */

export type Role = 'owner' | 'organizer' | 'fileOrganizer' | 'writer' | 'commenter' | 'reader';

export interface FakeUser {
  email: string;
  admin: boolean;
  /** Deleted from the directory: permissions naming them come back with `deleted: true`. */
  deleted: boolean;
}

export interface FakeMember {
  email: string;
  type: 'USER' | 'GROUP' | 'CUSTOMER';
  role?: 'OWNER' | 'MANAGER' | 'MEMBER';
}

export interface FakeGroup {
  id: string;
  email: string;
  name: string;
  members: FakeMember[];
}

/** A permission as stored on a file, folder or shared drive (Drive v3 `permission`). */
export interface FakePermission {
  id: string;
  type: 'user' | 'group' | 'domain' | 'anyone';
  role: Role;
  emailAddress?: string;
  domain?: string;
  allowFileDiscovery?: boolean;
  pendingOwner?: boolean;
  expirationTime?: string;
  view?: 'published' | 'metadata';
}

export type GrantInput = Omit<FakePermission, 'id' | 'role'> & { role?: Role };

export interface FakeSharedDrive {
  id: string;
  name: string;
  members: FakePermission[];
  createdTime: string;
}

export interface FakeFile {
  id: string;
  name: string;
  mimeType: string;
  /** Parent folder id; a shared drive's id for its top level; a user's root id for My Drive's. */
  parent: string;
  /** Shared drive the file lives in, null for My Drive. */
  driveId: string | null;
  /** My Drive owner (shared-drive files are owned by the drive). */
  owner: string | null;
  own: FakePermission[];
  /** Binary content (downloads) or, for Google Docs/Sheets/Slides, the export per MIME type. */
  content: Buffer;
  exports: Record<string, string> | null;
  shortcutTarget: string | null;
  explicitlyTrashed: boolean;
  /** Permanently deleted: gone from every listing, reported as removed by changes. */
  removed: boolean;
  version: number;
  createdTime: string;
  modifiedTime: string;
  lastModifyingUser: string | null;
  /** permissions.list answers 403 for everyone (models an ACL the crawler cannot read). */
  permissionsLocked: boolean;
}

export interface ChangeEntry {
  seq: number;
  fileId: string;
  /** Shared drives the file was in before and after the change (a move between drives touches both). */
  drives: string[];
  time: string;
}

export const FOLDER = 'application/vnd.google-apps.folder';
export const SHORTCUT = 'application/vnd.google-apps.shortcut';
export const GDOC = 'application/vnd.google-apps.document';
export const GSHEET = 'application/vnd.google-apps.spreadsheet';
export const GSLIDES = 'application/vnd.google-apps.presentation';

const ROLE_RANK: Record<Role, number> = { reader: 1, commenter: 2, writer: 3, fileOrganizer: 4, organizer: 5, owner: 6 };
export const myDriveRoot = (email: string) => `root-${email.toLowerCase()}`;
const hashId = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

export interface EffectivePermission extends FakePermission {
  deleted?: boolean;
  permissionDetails: Array<{ permissionType: 'file' | 'member'; role: Role; inherited: boolean; inheritedFrom?: string }>;
}

export class FakeWorkspace {
  readonly users = new Map<string, FakeUser>();
  readonly groups = new Map<string, FakeGroup>();
  readonly drives = new Map<string, FakeSharedDrive>();
  readonly files = new Map<string, FakeFile>();
  readonly changes: ChangeEntry[] = [];
  /** Page tokens carry the epoch they were issued in; expirePageTokens() starts a new one. */
  tokenEpoch = 1;
  private seq = 0;
  private nextId = 1;
  private clock = Date.parse('2025-01-06T09:00:00Z');

  constructor(readonly domain: string) {}

  // ---- directory --------------------------------------------------------------------------------

  addUser(email: string, opts: { admin?: boolean } = {}): FakeUser {
    const u: FakeUser = { email: email.toLowerCase(), admin: !!opts.admin, deleted: false };
    this.users.set(u.email, u);
    return u;
  }

  deleteUser(email: string): void {
    this.mustUser(email).deleted = true;
    for (const f of this.files.values()) if (this.grantsMention(f, email)) this.touch(f);
  }

  addGroup(email: string, members: Array<string | FakeMember> = [], name = email.split('@')[0]!): FakeGroup {
    const g: FakeGroup = { id: `grp-${hashId(email.toLowerCase())}`, email: email.toLowerCase(), name, members: [] };
    this.groups.set(g.email, g);
    for (const m of members) this.addMember(g.email, m);
    return g;
  }

  addMember(groupEmail: string, member: string | FakeMember): void {
    const g = this.mustGroup(groupEmail);
    const m: FakeMember = typeof member === 'string'
      ? { email: member.toLowerCase(), type: this.groups.has(member.toLowerCase()) ? 'GROUP' : 'USER', role: 'MEMBER' }
      : { ...member, email: member.email.toLowerCase() };
    g.members = g.members.filter((x) => x.email !== m.email).concat(m);
  }

  removeMember(groupEmail: string, memberEmail: string): void {
    const g = this.mustGroup(groupEmail);
    g.members = g.members.filter((m) => m.email !== memberEmail.toLowerCase());
  }

  /** Transitive user members of a group (cycles allowed). */
  usersInGroup(groupEmail: string, seen = new Set<string>()): Set<string> {
    const out = new Set<string>();
    const g = this.groups.get(groupEmail.toLowerCase());
    if (!g || seen.has(g.email)) return out;
    seen.add(g.email);
    for (const m of g.members) {
      if (m.type === 'USER') out.add(m.email);
      else if (m.type === 'GROUP') for (const e of this.usersInGroup(m.email, seen)) out.add(e);
    }
    return out;
  }

  // ---- drives and files ------------------------------------------------------------------------------

  addSharedDrive(name: string, members: GrantInput[] = []): FakeSharedDrive {
    const d: FakeSharedDrive = { id: `0A${this.id()}`, name, members: [], createdTime: this.now() };
    this.drives.set(d.id, d);
    for (const m of members) d.members.push(this.permission({ role: 'organizer', ...m }));
    return d;
  }

  setDriveMembers(driveId: string, members: GrantInput[]): void {
    const d = this.mustDrive(driveId);
    // Drive reports no change for the drive's files when its membership changes.
    d.members = members.map((m) => this.permission({ role: 'organizer', ...m }));
  }

  /** A folder under `parent` (a folder id, a shared drive id, or `myDriveRoot(owner)`). */
  addFolder(parent: string, name: string, opts: { owner?: string; permissions?: GrantInput[] } = {}): FakeFile {
    return this.create(parent, name, FOLDER, Buffer.alloc(0), null, opts);
  }

  addFile(parent: string, name: string, content: string | Buffer, opts: { owner?: string; mimeType?: string; permissions?: GrantInput[]; modifiedBy?: string } = {}): FakeFile {
    const mimeType = opts.mimeType ?? guessMime(name);
    return this.create(parent, name, mimeType, Buffer.isBuffer(content) ? content : Buffer.from(content), null, opts);
  }

  /** A Google Doc (exported as text/plain), Sheet (text/csv) or Slides deck (text/plain). */
  addGoogleFile(parent: string, name: string, kind: 'document' | 'spreadsheet' | 'presentation', text: string, opts: { owner?: string; permissions?: GrantInput[] } = {}): FakeFile {
    const mime = kind === 'document' ? GDOC : kind === 'spreadsheet' ? GSHEET : GSLIDES;
    return this.create(parent, name, mime, Buffer.alloc(0), exportsFor(mime, text), opts);
  }

  /** Any other Google Workspace type (drawing, form…): no export we ask for. */
  addGoogleOther(parent: string, name: string, mimeType: string, opts: { owner?: string } = {}): FakeFile {
    return this.create(parent, name, mimeType, Buffer.alloc(0), {}, opts);
  }

  addShortcut(parent: string, name: string, targetId: string, opts: { owner?: string } = {}): FakeFile {
    const f = this.create(parent, name, SHORTCUT, Buffer.alloc(0), null, opts);
    f.shortcutTarget = targetId;
    return f;
  }

  updateContent(fileId: string, content: string | Buffer, opts: { modifiedBy?: string } = {}): void {
    const f = this.mustFile(fileId);
    if (f.exports) f.exports = exportsFor(f.mimeType, String(content));
    else f.content = Buffer.isBuffer(content) ? content : Buffer.from(content);
    f.modifiedTime = this.now();
    f.lastModifyingUser = opts.modifiedBy?.toLowerCase() ?? f.lastModifyingUser;
    this.touch(f);
  }

  rename(fileId: string, name: string): void {
    const f = this.mustFile(fileId);
    f.name = name;
    this.touch(f);
  }

  /** Moves a file or folder; a folder's descendants change place without changes of their own. */
  move(fileId: string, newParent: string): void {
    const f = this.mustFile(fileId);
    const before = f.driveId;
    f.parent = newParent;
    const driveId = this.driveOfParent(newParent);
    f.driveId = driveId;
    if (driveId) f.owner = null;
    // Moving between drives moves the subtree; every descendant really changes corpus.
    for (const d of this.descendants(f.id)) {
      if (d.driveId !== driveId) {
        d.driveId = driveId;
        if (driveId) d.owner = null;
        this.touch(d, [before, driveId]);
      }
    }
    this.touch(f, [before, driveId]);
  }

  /** Trashes a file or folder; only the item itself is reported (its descendants are trashed implicitly). */
  trash(fileId: string): void {
    const f = this.mustFile(fileId);
    f.explicitlyTrashed = true;
    this.touch(f);
  }

  untrash(fileId: string): void {
    const f = this.mustFile(fileId);
    f.explicitlyTrashed = false;
    this.touch(f);
  }

  /** Permanently deletes a file or folder and everything below it; each is reported removed. */
  remove(fileId: string): void {
    const f = this.mustFile(fileId);
    for (const d of [f, ...this.descendants(f.id)]) {
      d.removed = true;
      this.touch(d);
    }
  }

  addPermission(fileId: string, grant: GrantInput): FakePermission {
    const f = this.mustFile(fileId);
    const p = this.permission({ role: 'reader', ...grant });
    f.own = f.own.filter((x) => x.id !== p.id).concat(p);
    this.touchPermissions(f);
    return p;
  }

  removePermission(fileId: string, match: (p: FakePermission) => boolean): void {
    const f = this.mustFile(fileId);
    f.own = f.own.filter((p) => !match(p));
    this.touchPermissions(f);
  }

  setPermissions(fileId: string, grants: GrantInput[]): void {
    const f = this.mustFile(fileId);
    f.own = grants.map((g) => this.permission({ role: 'reader', ...g }));
    this.touchPermissions(f);
  }

  lockPermissions(fileId: string, locked = true): void {
    const f = this.mustFile(fileId);
    f.permissionsLocked = locked;
    this.touch(f);
  }

  // ---- derived state -------------------------------------------------------------------------------

  isTrashed(f: FakeFile): boolean {
    for (let cur: FakeFile | undefined = f; cur; cur = this.files.get(cur.parent)) if (cur.explicitlyTrashed) return true;
    return false;
  }

  isLive(f: FakeFile): boolean {
    return !f.removed && !this.isTrashed(f);
  }

  /** Folder ids from the file's parent up to (not including) the drive root or My Drive root. */
  ancestors(f: FakeFile): FakeFile[] {
    const out: FakeFile[] = [];
    for (let cur = this.files.get(f.parent); cur; cur = this.files.get(cur.parent)) out.push(cur);
    return out;
  }

  descendants(folderId: string): FakeFile[] {
    const out: FakeFile[] = [];
    const stack = [folderId];
    while (stack.length) {
      const id = stack.pop()!;
      for (const f of this.files.values()) {
        if (f.parent === id && !f.removed) {
          out.push(f);
          stack.push(f.id);
        }
      }
    }
    return out;
  }

  /** Path from the drive (or My Drive) root, e.g. `/Finance/Budget.pdf`. */
  pathOf(f: FakeFile): string {
    return '/' + [...this.ancestors(f)].reverse().map((a) => a.name).concat(f.name).join('/');
  }

  /**
   * What `permissions.list` answers: the item's own grants, those of every folder above it, its
   * owner (My Drive) or the drive's members (shared drives), merged per grantee with the highest
   * role and one `permissionDetails` entry per source.
   */
  effectivePermissions(f: FakeFile): EffectivePermission[] {
    const merged = new Map<string, EffectivePermission>();
    const add = (p: FakePermission, detail: EffectivePermission['permissionDetails'][number]) => {
      const cur = merged.get(p.id);
      if (!cur) {
        const deleted = (p.type === 'user' && p.emailAddress && this.users.get(p.emailAddress)?.deleted) || undefined;
        merged.set(p.id, { ...p, ...(deleted ? { deleted: true } : {}), permissionDetails: [detail] });
        return;
      }
      cur.permissionDetails.push(detail);
      if (ROLE_RANK[p.role] > ROLE_RANK[cur.role]) cur.role = p.role;
      // The grant discovers the file when any of its sources does.
      if (p.allowFileDiscovery) cur.allowFileDiscovery = true;
      if (!p.pendingOwner) delete cur.pendingOwner;
      if (!p.view) delete cur.view;
      if (!p.expirationTime) delete cur.expirationTime;
    };
    for (const p of f.own) add(p, { permissionType: 'file', role: p.role, inherited: false });
    for (const a of this.ancestors(f)) {
      for (const p of a.own) add(p, { permissionType: 'file', role: p.role, inherited: true, inheritedFrom: a.id });
      if (!f.driveId && a.owner && a.owner !== f.owner) add(this.permission({ type: 'user', emailAddress: a.owner, role: 'writer' }), { permissionType: 'file', role: 'writer', inherited: true, inheritedFrom: a.id });
    }
    if (f.driveId) {
      for (const m of this.mustDrive(f.driveId).members) add(m, { permissionType: 'member', role: m.role, inherited: true, inheritedFrom: f.driveId });
    } else if (f.owner) {
      add(this.permission({ type: 'user', emailAddress: f.owner, role: 'owner' }), { permissionType: 'file', role: 'owner', inherited: false });
    }
    return [...merged.values()];
  }

  /** Whether `user` can open the file: owner, drive member, or a user/group grant (domain and link grants aside). */
  canAccess(user: string, f: FakeFile): boolean {
    if (f.removed) return false;
    const email = user.toLowerCase();
    if (this.users.get(email)?.deleted) return false;
    if (f.owner === email) return true;
    if (f.driveId && this.isDriveMember(email, f.driveId)) return true;
    return this.effectivePermissions(f).some((p) => this.grantReaches(p, email));
  }

  /** Whether `user` may read the file's permissions (owners, writers and above, drive members). */
  canReadPermissions(user: string, f: FakeFile): boolean {
    if (f.permissionsLocked || !this.canAccess(user, f)) return false;
    if (f.driveId) return this.isDriveMember(user, f.driveId);
    if (f.owner === user.toLowerCase()) return true;
    return this.effectivePermissions(f).some((p) => this.grantReaches(p, user) && ROLE_RANK[p.role] >= ROLE_RANK.writer);
  }

  isDriveMember(user: string, driveId: string): boolean {
    const email = user.toLowerCase();
    return this.mustDrive(driveId).members.some((m) => this.grantReaches(m, email));
  }

  /** Whether the file sits in `user`'s My Drive tree. */
  inMyDrive(user: string, f: FakeFile): boolean {
    if (f.driveId) return false;
    let cur: FakeFile | undefined = f;
    while (cur) {
      if (cur.parent === myDriveRoot(user)) return true;
      cur = this.files.get(cur.parent);
    }
    return false;
  }

  private grantReaches(p: FakePermission, email: string): boolean {
    if (p.pendingOwner || p.view) return false;
    if (p.expirationTime && Date.parse(p.expirationTime) <= this.clock) return false;
    if (p.type === 'user') return p.emailAddress === email;
    if (p.type === 'group') return !!p.emailAddress && this.usersInGroup(p.emailAddress).has(email);
    return false;
  }

  private grantsMention(f: FakeFile, email: string): boolean {
    return this.effectivePermissions(f).some((p) => p.emailAddress === email.toLowerCase());
  }

  // ---- change log --------------------------------------------------------------------------------------

  get currentSeq(): number {
    return this.seq;
  }

  /** Every page token handed out so far stops working (Drive answers 400 Invalid Value). */
  expirePageTokens(): void {
    this.tokenEpoch++;
  }

  /** Drive's page tokens are opaque; these say where in the change log they point. */
  pageToken(seq: number): string {
    return `${this.tokenEpoch}.${seq}`;
  }

  /** The change-log position of a still valid token, else null. */
  readToken(token: string): number | null {
    const m = /^(\d+)\.(\d+)$/.exec(token);
    if (!m || Number(m[1]) !== this.tokenEpoch) return null;
    const seq = Number(m[2]);
    return seq >= 1 && seq <= this.seq + 1 ? seq : null;
  }

  /** Records a change of the item itself. Children of a changed folder are not reported. */
  touch(f: FakeFile, drives: Array<string | null> = [f.driveId]): void {
    f.version++;
    const ds = [...new Set(drives.filter((d): d is string => !!d))];
    this.changes.push({ seq: ++this.seq, fileId: f.id, drives: ds, time: this.now() });
    this.fileChanged(f, ds);
  }

  /** Called after every recorded change (the server notifies watch channels). */
  protected fileChanged(_f: FakeFile, _drives: string[]): void {}

  /** A permission change reports the item; inherited grants below it change without their own change. */
  private touchPermissions(f: FakeFile): void {
    this.touch(f);
  }

  // ---- helpers ------------------------------------------------------------------------------------------

  now(): string {
    this.clock += 1000;
    return new Date(this.clock).toISOString();
  }

  private id(): string {
    return `${(this.nextId++).toString(36).padStart(4, '0')}${hashId(String(this.nextId)).slice(0, 8)}`;
  }

  private create(parent: string, name: string, mimeType: string, content: Buffer, exports: Record<string, string> | null, opts: { owner?: string; permissions?: GrantInput[]; modifiedBy?: string }): FakeFile {
    const driveId = this.driveOfParent(parent);
    const owner = driveId ? null : (opts.owner ?? this.ownerOfParent(parent))?.toLowerCase() ?? null;
    if (!driveId && !owner) throw new Error(`cannot tell who owns a file created under ${parent}`);
    const now = this.now();
    const f: FakeFile = {
      id: `1${this.id()}`, name, mimeType, parent, driveId, owner,
      own: (opts.permissions ?? []).map((g) => this.permission({ role: 'reader', ...g })),
      content, exports, shortcutTarget: null, explicitlyTrashed: false, removed: false, version: 0,
      createdTime: now, modifiedTime: now, lastModifyingUser: opts.modifiedBy?.toLowerCase() ?? owner, permissionsLocked: false,
    };
    this.files.set(f.id, f);
    this.touch(f);
    return f;
  }

  private driveOfParent(parent: string): string | null {
    if (this.drives.has(parent)) return parent;
    const p = this.files.get(parent);
    return p ? p.driveId : null;
  }

  private ownerOfParent(parent: string): string | null {
    if (parent.startsWith('root-')) return parent.slice('root-'.length);
    return this.files.get(parent)?.owner ?? null;
  }

  /** Drive's permission ids: the grantee's id for users and groups, fixed ids for link grants. */
  permission(g: GrantInput & { role: Role }): FakePermission {
    let id: string;
    if (g.type === 'user' || g.type === 'group') id = `${g.type === 'user' ? '0' : '1'}${BigInt(`0x${hashId(g.emailAddress!.toLowerCase())}`).toString().slice(0, 18)}`;
    else if (g.type === 'anyone') id = g.allowFileDiscovery ? 'anyone' : 'anyoneWithLink';
    else id = `${hashId(`${g.domain}|${!!g.allowFileDiscovery}`)}k`;
    const p: FakePermission = { id, type: g.type, role: g.role };
    if (g.emailAddress) p.emailAddress = g.emailAddress.toLowerCase();
    if (g.domain) p.domain = g.domain.toLowerCase();
    if (g.type === 'domain' || g.type === 'anyone') p.allowFileDiscovery = !!g.allowFileDiscovery;
    if (g.pendingOwner) p.pendingOwner = true;
    if (g.expirationTime) p.expirationTime = g.expirationTime;
    if (g.view) p.view = g.view;
    return p;
  }

  mustFile(id: string): FakeFile {
    const f = this.files.get(id);
    if (!f) throw new Error(`no file ${id}`);
    return f;
  }

  mustDrive(id: string): FakeSharedDrive {
    const d = this.drives.get(id);
    if (!d) throw new Error(`no shared drive ${id}`);
    return d;
  }

  mustUser(email: string): FakeUser {
    const u = this.users.get(email.toLowerCase());
    if (!u) throw new Error(`no user ${email}`);
    return u;
  }

  mustGroup(email: string): FakeGroup {
    const g = this.groups.get(email.toLowerCase());
    if (!g) throw new Error(`no group ${email}`);
    return g;
  }
}

function exportsFor(mime: string, text: string): Record<string, string> {
  if (mime === GSHEET) return { 'text/csv': text };
  return { 'text/plain': text };
}

export function guessMime(name: string): string {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  const map: Record<string, string> = {
    md: 'text/markdown', txt: 'text/plain', html: 'text/html', htm: 'text/html', pdf: 'application/pdf', csv: 'text/csv',
    docx: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', png: 'image/png', jpg: 'image/jpeg',
    zip: 'application/zip', mp4: 'video/mp4',
  };
  return map[ext] ?? 'application/octet-stream';
}

export function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}
