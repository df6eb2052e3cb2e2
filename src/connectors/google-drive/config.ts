import { z } from 'zod';

const httpUrl = (name: string) =>
  z.string().refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  }, { message: `${name} must be an http(s) URL` });

const DOMAIN = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i;
const EMAIL = /^[^\s@]+@[^\s@]+$/;

/**
 * Contract §3 `type: "google_drive"`, plus optional tuning knobs (additions are allowed).
 *
 * `driveIds` unset means every shared drive of the domain; `driveIds: []` means none, which is how
 * an admin indexes only `folderIds`.
 */
export const googleDriveConfigSchema = z
  .object({
    driveIds: z.array(z.string().min(1)).optional(),
    folderIds: z.array(z.string().min(1)).optional(),
    domain: z.string().trim().toLowerCase().regex(DOMAIN, 'domain must be a DNS domain such as acme.com'),
    adminEmail: z.string().trim().toLowerCase().regex(EMAIL, 'adminEmail must be an email address'),
    rootUrl: httpUrl('rootUrl').default('https://www.googleapis.com/'),
    /** Downloads and exports larger than this are refused (the document is recorded as failed). */
    maxFileBytes: z.number().int().positive().optional(),
    /** Google API requests in flight for this service account. Drive's quota is per user and per project. */
    maxConcurrency: z.number().int().min(1).max(16).optional(),
    requestTimeoutMs: z.number().int().min(100).max(600_000).optional(),
  })
  .strict();

/**
 * The service-account key file as downloaded from the Cloud console. Only the fields the JWT-bearer
 * grant needs are required; the rest (project_id, auth_uri, …) are kept but not used.
 */
export const serviceAccountKeySchema = z
  .object({
    type: z.literal('service_account').optional(),
    client_email: z.string().regex(EMAIL, 'client_email must be the service account\'s email'),
    private_key: z.string().includes('PRIVATE KEY', { message: 'private_key must be a PEM private key' }),
    private_key_id: z.string().optional(),
    client_id: z.string().optional(),
    token_uri: httpUrl('token_uri').default('https://oauth2.googleapis.com/token'),
  })
  .passthrough();

export const googleDriveCredentialsSchema = z.object({ serviceAccountKey: serviceAccountKeySchema }).strict();

export type GoogleDriveConfig = z.infer<typeof googleDriveConfigSchema>;
export type ServiceAccountKey = z.infer<typeof serviceAccountKeySchema>;

export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENCY = 4;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Read-only scopes the service account's domain-wide delegation must allow (docs/google-drive.md). */
export const DRIVE_SCOPE = 'https://www.googleapis.com/auth/drive.readonly';
export const DIRECTORY_SCOPE = 'https://www.googleapis.com/auth/admin.directory.group.readonly';
