import { createHash } from 'node:crypto';
import type { DocumentMeta } from '../interface.ts';
import type { GraphIdentity } from './permissions.ts';
import type { SiteRef } from './sitegroups.ts';

/** The driveItem fields this connector reads (Graph returns many more). */
export interface DriveItem {
  id: string;
  name?: string;
  eTag?: string;
  cTag?: string;
  size?: number;
  webUrl?: string;
  createdDateTime?: string;
  lastModifiedDateTime?: string;
  parentReference?: { driveId?: string; id?: string; path?: string; siteId?: string } | null;
  file?: { mimeType?: string; hashes?: { quickXorHash?: string; sha256Hash?: string; sha1Hash?: string } } | null;
  folder?: { childCount?: number } | null;
  /** OneNote notebooks and similar: folder-like containers. */
  package?: { type?: string } | null;
  root?: object | null;
  deleted?: { state?: string } | null;
  createdBy?: { user?: GraphIdentity | null } | null;
  lastModifiedBy?: { user?: GraphIdentity | null } | null;
}

/** Graph's `sharepointIds` (drives spell it `sharePointIds`): where an item lives for SharePoint REST. */
export interface SharePointIds {
  siteId?: string | null;
  siteUrl?: string | null;
  webId?: string | null;
}

export interface DriveInfo {
  id: string;
  name: string;
  webUrl?: string;
  driveType?: string;
  sharePointIds?: SharePointIds | null;
  /** Resolved by the connector: the site whose SharePoint groups the library's permissions name. */
  site?: SiteRef | null;
}

/** A site reference from Graph's ids; null when they do not say where the site is. */
export function siteRef(ids: SharePointIds | null | undefined, fallback?: { url?: string; graphSiteId?: string }): SiteRef | null {
  const url = ids?.siteUrl || fallback?.url;
  // A Graph site id is "<hostname>,<site collection id>,<web id>".
  const collectionId = ids?.siteId || fallback?.graphSiteId?.split(',')[1];
  return url && collectionId ? { url: url.replace(/\/+$/, ''), collectionId: collectionId.toLowerCase() } : null;
}

export const isFolderish = (item: DriveItem): boolean => !!(item.folder || item.package || item.root);
export const isFile = (item: DriveItem): boolean => !!item.file && !item.folder;

/** Item ids are only promised unique within a drive. */
export function sharepointExternalId(driveId: string, itemId: string): string {
  return `${driveId}:${itemId}`;
}

/**
 * The version token the engine compares to decide whether to download again. A CONTENT token is
 * required so renames and moves (which change eTag) never re-embed. The delta docs say OneDrive
 * for Business / SharePoint omit `cTag` from delta results on create/modify, so the file's content
 * hash (quickXorHash, reported for business drives in delta and listings alike) comes first and
 * cTag is the fallback; null makes the engine download and compare bytes.
 */
export function contentVersion(item: DriveItem): string | null {
  const h = item.file?.hashes;
  if (h?.quickXorHash) return `qxh:${h.quickXorHash}`;
  if (h?.sha256Hash) return `sha256:${h.sha256Hash}`;
  if (h?.sha1Hash) return `sha1:${h.sha1Hash}`;
  if (item.cTag) return `ctag:${item.cTag}`;
  return null;
}

/** `/drives/{id}/root:/Finance/Q1` → `/Finance/Q1`; `/drive/root:` → ``. */
export function normalizeParentPath(path: string): string {
  const i = path.indexOf('root:');
  const rest = i >= 0 ? path.slice(i + 'root:'.length) : path;
  return rest.replace(/\/+$/, '');
}

function date(v: string | undefined): Date | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

function email(user: GraphIdentity | null | undefined): string | null {
  const e = user?.email?.trim();
  return e && e.includes('@') ? e.toLowerCase() : null;
}

export function fileMeta(driveId: string, item: DriveItem, path: string): DocumentMeta {
  return {
    externalId: sharepointExternalId(driveId, item.id),
    title: item.name ?? item.id,
    url: item.webUrl ?? null,
    path,
    mimeType: item.file?.mimeType ?? null,
    lastModified: date(item.lastModifiedDateTime) ?? date(item.createdDateTime) ?? new Date(0),
    owner: email(item.lastModifiedBy?.user) ?? email(item.createdBy?.user),
    size: typeof item.size === 'number' ? item.size : undefined,
    contentVersion: contentVersion(item),
  };
}

export function shortHash(value: string): string {
  return createHash('sha256').update(value).digest('base64url').slice(0, 12);
}
