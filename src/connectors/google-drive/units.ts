import { createHash } from 'node:crypto';
import { UpstreamError } from '../../errors.ts';
import { GoogleApiError, type GoogleApi } from './api.ts';
import type { GoogleDriveConfig } from './config.ts';
import type { GroupExpander } from './groups.ts';
import { FOLDER_MIME, PERMISSION_FIELDS } from './items.ts';
import type { DrivePermission } from './permissions.ts';

/**
 * A crawl unit: one change feed read as one user. Shared drives have a feed of their own
 * (`changes.list?driveId=`), read as a member; folders in someone's My Drive are read through
 * their owner's feed, as the owner (the only identity sure to see everything placed in them).
 */
export interface Unit {
  key: string;
  driveId: string | null;
  /** Drive name, or the owner's email for My Drive folders. */
  name: string;
  /** The user impersonated to list and read this unit. */
  reader: string;
  /** null: the whole shared drive; otherwise the folder ids in scope (with everything below). */
  roots: string[] | null;
  /** Fingerprint of the shared drive's member list; its change re-reads every file's permissions. */
  membersHash: string | null;
}

export const hash = (v: unknown) => createHash('sha256').update(typeof v === 'string' ? v : JSON.stringify(v)).digest('base64url').slice(0, 16);

const ROLE_ORDER = ['organizer', 'fileOrganizer', 'writer', 'commenter', 'reader'];

export async function listDriveMembers(api: GoogleApi, driveId: string): Promise<DrivePermission[]> {
  const out: DrivePermission[] = [];
  let pageToken: string | undefined;
  do {
    const page = await api.call(`members of shared drive ${driveId}`, api.adminEmail, () =>
      api.drive().permissions.list({ fileId: driveId, supportsAllDrives: true, useDomainAdminAccess: true, pageSize: 100, pageToken, fields: PERMISSION_FIELDS }, api.options()));
    out.push(...((page.permissions ?? []) as DrivePermission[]));
    pageToken = page.nextPageToken ?? undefined;
  } while (pageToken);
  return out;
}

/**
 * Who reads a shared drive: the admin when a member (directly or through a group), else an
 * organizer, else any member. Domain admins can list every shared drive but read only those they
 * belong to, so impersonating a member is what domain-wide delegation is for here.
 */
async function pickReader(api: GoogleApi, members: DrivePermission[], groups: GroupExpander): Promise<string | null> {
  const live = members.filter((m) => !m.deleted && !m.pendingOwner && !m.view && m.emailAddress);
  const users = live.filter((m) => m.type === 'user').sort((a, b) => ROLE_ORDER.indexOf(a.role ?? '') - ROLE_ORDER.indexOf(b.role ?? ''));
  if (users.some((u) => u.emailAddress!.toLowerCase() === api.adminEmail)) return api.adminEmail;
  const groupMembers: string[] = [];
  for (const g of live.filter((m) => m.type === 'group')) groupMembers.push(...(await groups.transitiveUsers(g.emailAddress!)));
  if (groupMembers.includes(api.adminEmail)) return api.adminEmail;
  return users[0]?.emailAddress?.toLowerCase() ?? groupMembers[0] ?? null;
}

function membersFingerprint(members: DrivePermission[]): string {
  return hash(members.map((m) => [m.type, m.role, m.emailAddress?.toLowerCase(), m.domain, m.allowFileDiscovery, m.deleted, m.view]).map((x) => JSON.stringify(x)).sort());
}

const notFound = (what: string, err: unknown) => new UpstreamError(what, { retryable: false, status: 404, cause: err });

/** The units of this run, from the configuration and what the admin can see now. */
export async function resolveUnits(api: GoogleApi, cfg: GoogleDriveConfig, groups: GroupExpander): Promise<{ units: Unit[]; warnings: string[] }> {
  const warnings: string[] = [];
  const drives = new Map<string, { name: string }>();
  if (cfg.driveIds === undefined) {
    let pageToken: string | undefined;
    do {
      const page = await api.call('list shared drives', api.adminEmail, () =>
        api.drive().drives.list({ useDomainAdminAccess: true, pageSize: 100, pageToken, fields: 'nextPageToken,drives(id,name)' }, api.options()));
      for (const d of page.drives ?? []) if (d.id) drives.set(d.id, { name: d.name ?? d.id });
      pageToken = page.nextPageToken ?? undefined;
    } while (pageToken);
  } else {
    for (const id of cfg.driveIds) drives.set(id, { name: await driveName(api, id) });
  }

  const rootsByUnit = new Map<string, { driveId: string | null; owner: string | null; roots: string[] }>();
  for (const id of cfg.folderIds ?? []) {
    let folder;
    try {
      folder = await api.call(`folder ${id}`, api.adminEmail, () =>
        api.drive().files.get({ fileId: id, supportsAllDrives: true, fields: 'id,name,mimeType,driveId,trashed,owners(emailAddress)' }, api.options()));
    } catch (err) {
      if (err instanceof GoogleApiError && err.status === 404) throw notFound(`folder ${id} not found, or not shared with ${api.adminEmail}`, err);
      throw err;
    }
    if (folder.mimeType !== FOLDER_MIME) throw new UpstreamError(`folderIds: ${id} ("${folder.name}") is not a folder`, { retryable: false });
    if (folder.trashed) {
      warnings.push(`folder ${id} ("${folder.name}") is in the trash; nothing below it is indexed`);
      continue;
    }
    if (folder.driveId) {
      if (drives.has(folder.driveId)) continue; // the whole drive is in scope already
      const key = `drive:${folder.driveId}`;
      const u = rootsByUnit.get(key) ?? { driveId: folder.driveId, owner: null, roots: [] };
      u.roots.push(id);
      rootsByUnit.set(key, u);
    } else {
      const owner = folder.owners?.[0]?.emailAddress?.toLowerCase();
      if (!owner) throw new UpstreamError(`folder ${id} ("${folder.name}") has no owner Drive reports; it cannot be read`, { retryable: false });
      const key = `user:${owner}`;
      const u = rootsByUnit.get(key) ?? { driveId: null, owner, roots: [] };
      u.roots.push(id);
      rootsByUnit.set(key, u);
    }
  }

  const units: Unit[] = [];
  const driveUnit = async (driveId: string, name: string, roots: string[] | null) => {
    const members = await listDriveMembers(api, driveId);
    const reader = await pickReader(api, members, groups);
    if (!reader) {
      warnings.push(`shared drive "${name}" has no member who can be impersonated to read it; nothing in it is indexed`);
      return;
    }
    units.push({ key: `drive:${driveId}`, driveId, name, reader, roots: roots ? [...roots].sort() : null, membersHash: membersFingerprint(members) });
  };
  for (const [id, d] of drives) await driveUnit(id, d.name, null);
  for (const [key, u] of rootsByUnit) {
    if (u.driveId) await driveUnit(u.driveId, await driveName(api, u.driveId), u.roots);
    else units.push({ key, driveId: null, name: u.owner!, reader: u.owner!, roots: [...u.roots].sort(), membersHash: null });
  }
  return { units, warnings };
}

async function driveName(api: GoogleApi, id: string): Promise<string> {
  try {
    const d = await api.call(`shared drive ${id}`, api.adminEmail, () =>
      api.drive().drives.get({ driveId: id, useDomainAdminAccess: true, fields: 'id,name' }, api.options()));
    return d.name ?? id;
  } catch (err) {
    if (err instanceof GoogleApiError && err.status === 404) throw notFound(`shared drive ${id} not found`, err);
    throw err;
  }
}
