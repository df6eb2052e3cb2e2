import picomatch from 'picomatch';
import type { DocumentRecord, FreshnessPolicy } from '../types.ts';

const DAY = 86_400_000;

export interface FreshnessVerdict {
  status: 'fresh' | 'stale';
  ageDays: number;
  /** null → exempt (no limit applies). */
  maxAgeDays: number | null;
}

type DocLike = Pick<DocumentRecord, 'path' | 'title' | 'labels' | 'mimeType' | 'lastModified'>;

/** The limit for a document: the first matching rule wins, else the policy default. */
export function maxAgeFor(policy: FreshnessPolicy | null, doc: DocLike): number | null {
  if (!policy) return null;
  for (const rule of policy.rules ?? []) if (ruleMatches(rule.match, doc)) return rule.maxAgeDays;
  return policy.maxAgeDays;
}

export function ruleMatches(match: NonNullable<FreshnessPolicy['rules']>[number]['match'], doc: DocLike): boolean {
  const keys = Object.keys(match).filter((k) => (match as Record<string, unknown>)[k] !== undefined);
  if (keys.length === 0) return false;
  if (match.pathGlob !== undefined) {
    const p = (doc.path ?? '').replace(/^\/+/, '');
    if (!globMatcher(match.pathGlob)(p)) return false;
  }
  if (match.titleRegex !== undefined && !safeRegex(match.titleRegex).test(doc.title)) return false;
  if (match.label !== undefined && !doc.labels.includes(match.label)) return false;
  if (match.mimeType !== undefined && doc.mimeType !== match.mimeType) return false;
  return true;
}

// isMatch compiles the glob on every call; evaluating a large source tests the same few globs
// hundreds of thousands of times.
const globCache = new Map<string, (path: string) => boolean>();
function globMatcher(glob: string): (path: string) => boolean {
  let m = globCache.get(glob);
  if (!m) {
    m = picomatch(glob.replace(/^\/+/, ''), { dot: true });
    if (globCache.size > 1000) globCache.clear();
    globCache.set(glob, m);
  }
  return m;
}

const regexCache = new Map<string, RegExp>();
function safeRegex(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    re = new RegExp(source, 'i');
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(source, re);
  }
  return re;
}

export function evaluateFreshness(policy: FreshnessPolicy | null, doc: DocLike, now: Date): FreshnessVerdict {
  const ageDays = Math.max(0, Math.floor((now.getTime() - doc.lastModified.getTime()) / DAY));
  const maxAgeDays = maxAgeFor(policy, doc);
  return { status: maxAgeDays !== null && ageDays > maxAgeDays ? 'stale' : 'fresh', ageDays, maxAgeDays };
}

/** The policy as stored may carry a webhook next to the limits (see freshnessPolicySchema). */
export function webhookUrlOf(policy: FreshnessPolicy | null | undefined): string | null {
  const url = (policy as { webhookUrl?: unknown } | null | undefined)?.webhookUrl;
  return typeof url === 'string' && url.length > 0 ? url : null;
}

/** Ids of the sources whose alert events are to be notified. */
export function notifySourcesOf(sources: { id: string; freshness: FreshnessPolicy | null }[]): Set<string> {
  return new Set(sources.filter((s) => webhookUrlOf(s.freshness)).map((s) => s.id));
}
