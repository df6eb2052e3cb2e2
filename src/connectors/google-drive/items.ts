import path from 'node:path';
import type { drive_v3 } from 'googleapis/build/src/apis/drive/v3.js';
import type { DocumentMeta } from '../interface.ts';

export type DriveFile = drive_v3.Schema$File;

export const FOLDER_MIME = 'application/vnd.google-apps.folder';
export const SHORTCUT_MIME = 'application/vnd.google-apps.shortcut';

/** The file fields every listing, change and lookup asks for (Drive answers only what `fields` names). */
export const FILE_FIELDS =
  'id,name,mimeType,parents,driveId,trashed,md5Checksum,size,version,modifiedTime,createdTime,webViewLink,' +
  'owners(emailAddress),lastModifyingUser(emailAddress),shortcutDetails(targetId,targetMimeType)';

export const PERMISSION_FIELDS =
  'nextPageToken,permissions(id,type,role,emailAddress,domain,allowFileDiscovery,deleted,pendingOwner,expirationTime,view,' +
  'permissionDetails(permissionType,role,inherited,inheritedFrom))';

/** Docs, Sheets and Slides have no bytes of their own: they are exported (Sheets: first sheet only). */
export const EXPORT_AS: Record<string, string> = {
  'application/vnd.google-apps.document': 'text/plain',
  'application/vnd.google-apps.spreadsheet': 'text/csv',
  'application/vnd.google-apps.presentation': 'text/plain',
};

const DOWNLOAD_MIME = new Set([
  'application/pdf',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  'text/html', 'application/xhtml+xml', 'text/markdown', 'text/x-markdown',
]);
const DOWNLOAD_EXT = new Set(['.pdf', '.docx', '.html', '.htm', '.md', '.markdown', '.txt', '.text', '.csv']);
const GENERIC_MIME = new Set(['', 'application/octet-stream', 'binary/octet-stream']);

export type FetchPlan = { kind: 'export'; as: string } | { kind: 'media' } | { kind: 'none' };

/**
 * What fetching a file means. Everything that is neither exported nor one of the formats the
 * extractors read is not downloaded at all; the engine records it as skipped with the reason.
 */
export function fetchPlan(f: DriveFile): FetchPlan {
  const mime = (f.mimeType ?? '').toLowerCase();
  const as = EXPORT_AS[mime];
  if (as) return { kind: 'export', as };
  if (mime.startsWith('application/vnd.google-apps.')) return { kind: 'none' };
  if (DOWNLOAD_MIME.has(mime) || mime.startsWith('text/')) return { kind: 'media' };
  if (GENERIC_MIME.has(mime) && DOWNLOAD_EXT.has(path.extname(f.name ?? '').toLowerCase())) return { kind: 'media' };
  return { kind: 'none' };
}

export const isFolder = (f: DriveFile) => f.mimeType === FOLDER_MIME;
export const isShortcut = (f: DriveFile) => f.mimeType === SHORTCUT_MIME;

/** Drive file ids are unique across the whole of Drive, shared drives included. */
export const driveExternalId = (fileId: string) => fileId;

/**
 * The token the engine compares before downloading. Binary files carry an MD5 of their content,
 * which renames, moves and sharing do not touch. Docs/Sheets/Slides have none; their modifiedTime
 * moves with content edits (a rename may move it too, which costs an export, never an embedding:
 * the engine compares the exported bytes before embedding).
 */
export function contentVersion(f: DriveFile): string | null {
  if (f.md5Checksum) return `md5:${f.md5Checksum}`;
  if (f.modifiedTime) return `mod:${f.modifiedTime}`;
  return null;
}

function date(v: string | null | undefined): Date | null {
  if (!v) return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fileMeta(f: DriveFile, filePath: string): DocumentMeta {
  const size = f.size !== undefined && f.size !== null ? Number(f.size) : undefined;
  const owner = f.owners?.[0]?.emailAddress ?? f.lastModifyingUser?.emailAddress ?? null;
  return {
    externalId: driveExternalId(f.id!),
    title: f.name ?? f.id!,
    url: f.webViewLink ?? null,
    path: filePath,
    mimeType: f.mimeType ?? null,
    lastModified: date(f.modifiedTime) ?? date(f.createdTime) ?? new Date(0),
    owner: owner ? owner.toLowerCase() : null,
    size: size !== undefined && Number.isFinite(size) ? size : undefined,
    contentVersion: contentVersion(f),
  };
}

/** `/Finance/Q1` + `report.pdf`; names may contain `/`, which would fake a folder level. */
export function joinPath(parent: string, name: string): string {
  return `${parent}/${name.replace(/\//g, '∕')}`;
}
