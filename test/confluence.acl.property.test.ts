import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { intersectReaders, toPrincipals, type ReaderSet } from '../src/connectors/confluence/acl.ts';

/**
 * The ACL of a Confluence page is an AND of levels (space view permission, then each read
 * restriction on the page and its ancestors) written as an OR of principals. These properties check
 * that what the engine will grant — each principal expanded through the synced group memberships —
 * is exactly the set of people an independent brute-force evaluation lets through, for arbitrary
 * worlds, and that a membership change is either irrelevant to the ACL or flagged for recomputation.
 */

const SOURCE = 'src1';
const USERS = ['u0@x.test', 'u1@x.test', 'u2@x.test', 'u3@x.test', 'u4@x.test', 'u5@x.test'];
/** Someone in no group and on no list: only `everyone` reaches them. */
const STRANGER = 'stranger@x.test';
const GROUPS = ['g0', 'g1', 'g2', 'g3'];

const memberships = fc.record(Object.fromEntries(GROUPS.map((g) => [g, fc.subarray(USERS)]))) as fc.Arbitrary<Record<string, string[]>>;
const level: fc.Arbitrary<ReaderSet> = fc.record({
  everyone: fc.boolean(),
  users: fc.subarray(USERS).map((a) => new Set(a)),
  groups: fc.subarray(GROUPS).map((a) => new Set(a)),
}).map((l) => (l.everyone ? { everyone: true, users: new Set<string>(), groups: new Set<string>() } : l));
const levels = fc.array(level, { minLength: 1, maxLength: 5 });

const membersOf = (m: Record<string, string[]>) => (g: string) => new Set(m[g] ?? []);

/** Ground truth: a person reads the page when every level admits them. */
function oracle(ls: ReaderSet[], m: Record<string, string[]>): string[] {
  const admits = (l: ReaderSet, u: string) => l.everyone || l.users.has(u) || [...l.groups].some((g) => (m[g] ?? []).includes(u));
  return [...USERS, STRANGER].filter((u) => ls.every((l) => admits(l, u))).sort();
}

/** What the search filter grants for these principals, given the synced memberships. */
function granted(principals: string[], m: Record<string, string[]>): string[] {
  return [...USERS, STRANGER].filter((u) => principals.some((p) =>
    p === 'everyone' || p === `user:${u}` || (p.startsWith(`sgroup:${SOURCE}/`) && (m[p.slice(`sgroup:${SOURCE}/`.length)] ?? []).includes(u)),
  )).sort();
}

describe('Confluence ACL: space permission ∩ every read restriction, as "any of" principals', () => {
  it('grants exactly the people who pass every level', () => {
    fc.assert(fc.property(levels, memberships, (ls, m) => {
      const acl = toPrincipals(SOURCE, intersectReaders(ls, membersOf(m)));
      expect(granted(acl, m)).toEqual(oracle(ls, m));
    }), { numRuns: 2000 });
  });

  it('an ACL not flagged as membership-dependent stays exact after any membership change', () => {
    fc.assert(fc.property(levels, memberships, memberships, (ls, before, after) => {
      const result = intersectReaders(ls, membersOf(before));
      fc.pre(!result.usesMembership);
      expect(granted(toPrincipals(SOURCE, result), after)).toEqual(oracle(ls, after));
    }), { numRuns: 1000 });
  });

  it('a flagged ACL recomputed from the new memberships is exact again (what every sync does)', () => {
    fc.assert(fc.property(levels, memberships, memberships, (ls, before, after) => {
      const first = intersectReaders(ls, membersOf(before));
      fc.pre(first.usesMembership);
      expect(granted(toPrincipals(SOURCE, intersectReaders(ls, membersOf(after))), after)).toEqual(oracle(ls, after));
    }), { numRuns: 1000 });
  });

  it('keeps groups symbolic when they are named on every limiting level, and lists no member twice', () => {
    fc.assert(fc.property(levels, memberships, (ls, m) => {
      const r = intersectReaders(ls, membersOf(m));
      const limiting = ls.filter((l) => !l.everyone);
      for (const g of GROUPS) {
        if (limiting.length > 1 && limiting.every((l) => l.groups.has(g))) expect(r.groups).toContain(g);
      }
      for (const u of r.users) for (const g of r.groups) if (limiting.length > 1) expect(m[g]).not.toContain(u);
    }), { numRuns: 1000 });
  });

  it('open levels drop out, and an open space with no restriction is everyone', () => {
    const open: ReaderSet = { everyone: true, users: new Set(), groups: new Set() };
    expect(toPrincipals(SOURCE, intersectReaders([open, open], () => new Set()))).toEqual(['everyone']);
    const onlyBob: ReaderSet = { everyone: false, users: new Set(['bob@x.test']), groups: new Set(['eng']) };
    expect(toPrincipals(SOURCE, intersectReaders([open, onlyBob], () => new Set()))).toEqual([`sgroup:${SOURCE}/eng`, 'user:bob@x.test']);
    // A restriction whose every entry was unresolvable still restricts: nobody passes it.
    const nobody: ReaderSet = { everyone: false, users: new Set(), groups: new Set() };
    expect(toPrincipals(SOURCE, intersectReaders([open, nobody], () => new Set()))).toEqual([]);
  });
});
