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
    const glob = match.pathGlob.replace(/^\/+/, '');
    if (!picomatch.isMatch(p, glob, { dot: true })) return false;
  }
  if (match.titleRegex !== undefined && !safeRegex(match.titleRegex).test(doc.title)) return false;
  if (match.label !== undefined && !doc.labels.includes(match.label)) return false;
  if (match.mimeType !== undefined && doc.mimeType !== match.mimeType) return false;
  return true;
}

const regexCache = new Map<string, RegExp>();
function safeRegex(source: string): RegExp {
  let re = regexCache.get(source);
  if (!re) {
    re = new RegExp(source, 'i');
    regexCache.set(source, re);
  }
  return re;
}

export function evaluateFreshness(policy: FreshnessPolicy | null, doc: DocLike, now: Date): FreshnessVerdict {
  const ageDays = Math.max(0, Math.floor((now.getTime() - doc.lastModified.getTime()) / DAY));
  const maxAgeDays = maxAgeFor(policy, doc);
  return { status: maxAgeDays !== null && ageDays > maxAgeDays ? 'stale' : 'fresh', ageDays, maxAgeDays };
}
