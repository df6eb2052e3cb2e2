import type { Services } from '../context.ts';
import type { FreshnessPolicy } from '../types.ts';
import { evaluateFreshness, ruleMatches } from './policy.ts';

export interface PolicyPreview {
  documents: number;
  /** Per rule, in order: documents it decides (the first matching rule wins) and how many of those are stale. */
  rules: { decides: number; stale: number }[];
  /** Documents no rule matches, which the policy's default limit decides. */
  fallback: { decides: number; stale: number };
  stale: number;
  exempt: number;
}

/**
 * What a freshness policy would do to a source's indexed documents today, before it is saved: the
 * console's rules editor shows it next to each rule. The rule semantics are the evaluator's own.
 */
export async function previewPolicy({ ctx, input }: { ctx: Pick<Services, 'metadata' | 'now'>; input: { sourceId: string; policy: FreshnessPolicy } }): Promise<PolicyPreview> {
  const { policy } = input;
  const rules = (policy.rules ?? []).map(() => ({ decides: 0, stale: 0 }));
  const out: PolicyPreview = { documents: 0, rules, fallback: { decides: 0, stale: 0 }, stale: 0, exempt: 0 };
  const now = ctx.now();
  let afterId: string | undefined;
  for (;;) {
    const page = await ctx.metadata.documents.list({ sourceId: input.sourceId, afterId, limit: 1000 });
    for (const doc of page) {
      if (doc.status !== 'indexed') continue;
      out.documents++;
      const index = (policy.rules ?? []).findIndex((r) => ruleMatches(r.match, doc));
      const verdict = evaluateFreshness(policy, doc, now);
      const bucket = index >= 0 ? rules[index]! : out.fallback;
      bucket.decides++;
      if (verdict.status === 'stale') { bucket.stale++; out.stale++; }
      if (verdict.maxAgeDays === null) out.exempt++;
    }
    if (page.length < 1000) break;
    afterId = page.at(-1)!.id;
  }
  return out;
}
