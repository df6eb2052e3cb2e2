import { z } from 'zod';

const httpUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}, { message: 'baseUrl must be an http(s) URL such as https://acme.atlassian.net/wiki' });

/** Contract §3 `type: "confluence"`, plus optional tuning knobs (additions are allowed). */
export const confluenceConfigSchema = z
  .object({
    baseUrl: httpUrl,
    spaceKeys: z.array(z.string().trim().min(1)).min(1, 'spaceKeys needs at least one space key'),
    /** Blog posts of the spaces are indexed unless this is false. */
    includeBlogPosts: z.boolean().optional(),
    /** Attachments of indexed pages and blog posts are indexed unless this is false. */
    includeAttachments: z.boolean().optional(),
    /** Requests in flight per site. Atlassian rate-limits per site and account, not per source. */
    maxConcurrency: z.number().int().min(1).max(16).optional(),
    requestTimeoutMs: z.number().int().min(100).max(600_000).optional(),
    /** A Retry-After longer than this is handed to the job layer instead of being slept through. */
    maxRetryAfterSeconds: z.number().int().min(0).max(3600).optional(),
  })
  .strict();

export const confluenceCredentialsSchema = z
  .object({
    email: z.string().trim().min(3),
    apiToken: z.string().min(1),
    /** Shared secret of this source's webhooks (Confluence webhook secret → X-Hub-Signature, or a header an Automation rule sends). */
    webhookSecret: z.string().min(16).max(255).optional(),
  })
  .strict();

export type ConfluenceConfig = z.infer<typeof confluenceConfigSchema>;
export type ConfluenceCredentials = z.infer<typeof confluenceCredentialsSchema>;

export const DEFAULT_MAX_CONCURRENCY = 4;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RETRY_AFTER_SECONDS = 60;

/**
 * confluence.js wants the bare site (`host`) and puts `/wiki/api/v2/…` and `/wiki/rest/api/…` on
 * every request itself; the contract's `baseUrl` is the wiki root (`https://acme.atlassian.net/wiki`).
 * Both spellings, with or without `/wiki` and trailing slashes, mean the same site; a proxy prefix
 * before `/wiki` is kept.
 */
export function siteHost(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '').replace(/\/wiki$/i, '');
}

/** Where the wiki's web pages live: `_links.webui` paths are relative to it. */
export function wikiRoot(baseUrl: string): string {
  return `${siteHost(baseUrl)}/wiki`;
}
