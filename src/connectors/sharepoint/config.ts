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

/** Contract §3 `type: "sharepoint"`, plus a few optional tuning knobs (additions are allowed). */
export const sharepointConfigSchema = z
  .object({
    tenantId: z.string().min(1),
    siteIds: z.array(z.string().min(1)).optional(),
    driveIds: z.array(z.string().min(1)).optional(),
    graphBaseUrl: httpUrl('graphBaseUrl').default('https://graph.microsoft.com'),
    authorityHost: httpUrl('authorityHost').default('https://login.microsoftonline.com'),
    /** Entra groups whose memberships are always synced, even when no ACL mentioned them this run. */
    groupIds: z.array(z.string().min(1)).optional(),
    /**
     * SharePoint site groups (by display name, e.g. "Finance Members") → the Entra group ids and/or
     * emails that make them up. Graph v1.0 cannot list a SharePoint group's members, so without an
     * entry such a grant gives nothing (fail closed); with one, the admin's declaration is used.
     */
    siteGroupMembers: z.record(z.string().min(1), z.array(z.string().min(1))).optional(),
    /** Downloads larger than this are refused (the document is recorded as failed, not indexed). */
    maxFileBytes: z.number().int().positive().optional(),
    /** Graph requests in flight per tenant. Microsoft throttles per app and tenant, not per source. */
    maxConcurrency: z.number().int().min(1).max(16).optional(),
    requestTimeoutMs: z.number().int().min(100).max(600_000).optional(),
  })
  .strict()
  .refine((c) => (c.siteIds?.length ?? 0) + (c.driveIds?.length ?? 0) > 0, {
    message: 'at least one of siteIds or driveIds is required',
  });

export const sharepointCredentialsSchema = z
  .object({ clientId: z.string().min(1), clientSecret: z.string().min(1) })
  .strict();

export type SharePointConfig = z.infer<typeof sharepointConfigSchema>;
export type SharePointCredentials = z.infer<typeof sharepointCredentialsSchema>;

export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENCY = 4;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** `https://graph.microsoft.com/v1.0/` and `https://graph.microsoft.com` both mean the same service. */
export function normalizeGraphBase(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1\.0$/, '').replace(/\/beta$/, '');
}

export function normalizeAuthorityHost(url: string): string {
  return url.replace(/\/+$/, '');
}
