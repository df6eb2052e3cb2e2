import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { explainAccess, type Denial, type ExplainInput } from '../src/access/explain.ts';

/**
 * explainAccess on its own, without a registry: the denial reasons, the chains of nested groups and
 * the unresolved groups it reports, and (property) that `allowed` is the visibility rule written
 * out here independently. The end-to-end agreement with search is explain.property.test.ts; this
 * file is fast enough for mutation testing.
 */
const SG = 'sgroup:s1';
const doc = (over: Partial<NonNullable<ExplainInput['document']>> = {}) => ({ id: 'd1', sourceId: 's1', lastModified: 1_000, acl: ['group:eng'], ...over });
const input = (over: Partial<ExplainInput> = {}): ExplainInput => ({
  user: { email: 'ana@acme.test', groups: [] },
  memberships: [],
  document: doc(),
  hidden: { sourceIds: [], documentIds: [] },
  ...over,
});

describe('explainAccess', () => {
  it('says not_indexed, and nothing else, when there is no indexed document', () => {
    expect(explainAccess(input({ document: null, user: { email: 'ana@acme.test', groups: ['eng'] } })))
      .toEqual({ allowed: false, reasons: [], denial: 'not_indexed', denials: ['not_indexed'] });
  });

  it('lists every ACL entry the user holds, in ACL order, each with its chain of nested groups', () => {
    const e = explainAccess(input({
      user: { email: 'Ana@Acme.test', groups: ['eng'] },
      memberships: [
        { principal: `${SG}/core`, via: [] },
        { principal: `${SG}/all`, via: [`${SG}/core`] },
      ],
      document: doc({ acl: [`${SG}/all`, `${SG}/core`, 'domain:acme.test', 'group:eng', 'group:hr', 'user:ana@acme.test', 'user:ben@acme.test'] }),
    }));
    expect(e).toEqual({
      allowed: true,
      reasons: [
        { principal: `${SG}/all`, via: [`${SG}/core`] },
        { principal: `${SG}/core`, via: [] },
        { principal: 'domain:acme.test', via: [] },
        { principal: 'group:eng', via: [] },
        { principal: 'user:ana@acme.test', via: [] },
      ],
    });
  });

  it('hands out copies of the chains, not the caller\'s arrays', () => {
    const via = [`${SG}/core`];
    const e = explainAccess(input({ memberships: [{ principal: `${SG}/all`, via }], document: doc({ acl: [`${SG}/all`] }) }));
    e.reasons[0]!.via.push('group:intruder');
    expect(via).toEqual([`${SG}/core`]);
  });

  it('grants through IdP groups only as the caller presents them, and through everyone', () => {
    expect(explainAccess(input({ user: { email: 'ana@acme.test', groups: ['eng'] } })).allowed).toBe(true);
    expect(explainAccess(input({ user: { email: 'ana@acme.test', groups: ['hr'] } })))
      .toEqual({ allowed: false, reasons: [], denial: 'no_matching_principal', denials: ['no_matching_principal'] });
    expect(explainAccess(input({ document: doc({ acl: ['everyone'] }) })))
      .toEqual({ allowed: true, reasons: [{ principal: 'everyone', via: [] }] });
  });

  it('gives a caller without a valid email nothing, even through everyone', () => {
    expect(explainAccess(input({ user: { email: null, groups: ['eng'] }, document: doc({ acl: ['everyone', 'group:eng'] }) })))
      .toEqual({ allowed: false, reasons: [], denial: 'no_matching_principal', denials: ['no_matching_principal'] });
  });

  it('never counts a membership that is not a source group, whatever the lookup hands over', () => {
    const e = explainAccess(input({ memberships: [{ principal: 'user:ben@acme.test', via: [] }], document: doc({ acl: ['user:ben@acme.test'] }) }));
    expect(e).toMatchObject({ allowed: false, reasons: [], denial: 'no_matching_principal' });
  });

  it('names the kill switch that hides a document the user could otherwise read, most specific first', () => {
    const eng = { email: 'ana@acme.test', groups: ['eng'] };
    const grant = [{ principal: 'group:eng', via: [] }];
    expect(explainAccess(input({ user: eng, hidden: { sourceIds: [], documentIds: ['d1'] } })))
      .toEqual({ allowed: false, reasons: grant, denial: 'document_quarantined', denials: ['document_quarantined'] });
    expect(explainAccess(input({ user: eng, hidden: { sourceIds: ['s1'], documentIds: [] } })))
      .toEqual({ allowed: false, reasons: grant, denial: 'source_disabled', denials: ['source_disabled'] });
    expect(explainAccess(input({ user: eng, hidden: { sourceIds: ['s1'], documentIds: ['d1'] } })))
      .toEqual({ allowed: false, reasons: grant, denial: 'document_quarantined', denials: ['document_quarantined', 'source_disabled'] });
    // Switches on other sources and documents change nothing.
    expect(explainAccess(input({ user: eng, hidden: { sourceIds: ['s2'], documentIds: ['d2'] } }))).toEqual({ allowed: true, reasons: grant });
  });

  it('holds an agent to its key\'s sources', () => {
    const eng = { email: 'ana@acme.test', groups: ['eng'] };
    expect(explainAccess(input({ user: eng, agentSourceIds: ['s1', 's2'] })).allowed).toBe(true);
    expect(explainAccess(input({ user: eng, agentSourceIds: ['s2'] })))
      .toEqual({ allowed: false, reasons: [{ principal: 'group:eng', via: [] }], denial: 'agent_scope', denials: ['agent_scope'] });
    expect(explainAccess(input({ user: eng, agentSourceIds: [] })).denials).toEqual(['agent_scope']);
  });

  it('lists every reason that applies, in order', () => {
    expect(explainAccess(input({ hidden: { sourceIds: ['s1'], documentIds: ['d1'] }, agentSourceIds: ['s2'] }))).toEqual({
      allowed: false, reasons: [], denial: 'document_quarantined',
      denials: ['document_quarantined', 'source_disabled', 'agent_scope', 'no_matching_principal'],
    });
  });

  it('points out source groups nobody is known to be in, only when denied and only for sgroup entries', () => {
    const acl = [`${SG}/empty`, `${SG}/known`, 'group:hr'];
    expect(explainAccess(input({ document: doc({ acl }), resolvedGroups: [`${SG}/known`] }))).toEqual({
      allowed: false, reasons: [], denial: 'no_matching_principal', denials: ['no_matching_principal'], unresolved: [`${SG}/empty`],
    });
    // Every group resolved, or no membership data to judge by: nothing to point out.
    expect(explainAccess(input({ document: doc({ acl }), resolvedGroups: [`${SG}/empty`, `${SG}/known`] }))).not.toHaveProperty('unresolved');
    expect(explainAccess(input({ document: doc({ acl }) }))).not.toHaveProperty('unresolved');
    // Allowed through another entry: the unresolved group does not matter.
    expect(explainAccess(input({ user: { email: 'ana@acme.test', groups: ['hr'] }, document: doc({ acl }), resolvedGroups: [] })))
      .toEqual({ allowed: true, reasons: [{ principal: 'group:hr', via: [] }] });
  });
});

// The visibility rule written out independently of src/access, for the property below.
const USERS = ['ana', 'ben'];
const sgroups = ['a', 'b', 'c'].map((g) => `${SG}/${g}`);
const entry = fc.oneof(
  fc.constantFrom(...USERS).map((u) => `user:${u}@acme.test`),
  fc.constantFrom('group:eng', 'group:hr', 'everyone', 'domain:acme.test', 'domain:other.test', 'junk:x', 'User:ana@acme.test'),
  fc.constantFrom(...sgroups),
);
const world = fc.record({
  user: fc.constantFrom(...USERS, 'not-an-email'),
  groups: fc.subarray(['eng', 'hr', ' eng ']),
  memberships: fc.subarray([...sgroups, 'everyone', 'group:hr']),
  acl: fc.array(entry, { maxLength: 4 }),
  source: fc.constantFrom('s1', 's2'),
  quarantined: fc.boolean(),
  disabled: fc.subarray(['s1', 's2']),
  agent: fc.option(fc.subarray(['s1', 's2']), { nil: undefined }),
});

describe('explainAccess (property)', () => {
  it('allows exactly what the visibility rule allows, and gives every reason that applies', () => {
    fc.assert(fc.property(world, (w) => {
      const email = w.user.includes('-') ? w.user : `${w.user}@acme.test`;
      const e = explainAccess({
        user: { email, groups: w.groups },
        memberships: w.memberships.map((principal) => ({ principal, via: [] })),
        document: { id: 'd1', sourceId: w.source, lastModified: 1_000, acl: w.acl },
        hidden: { sourceIds: w.disabled, documentIds: w.quarantined ? ['d1'] : [] },
        agentSourceIds: w.agent,
      });
      const held = email.includes('@')
        ? [`user:${email}`, 'everyone', 'domain:acme.test', ...w.groups.map((g) => `group:${g.trim()}`), ...w.memberships.filter((m) => m.startsWith('sgroup:'))]
        : [];
      const granting = w.acl.filter((p) => held.includes(p));
      const denials: Denial[] = [];
      if (w.quarantined) denials.push('document_quarantined');
      if (w.disabled.includes(w.source)) denials.push('source_disabled');
      if (w.agent && !w.agent.includes(w.source)) denials.push('agent_scope');
      if (granting.length === 0) denials.push('no_matching_principal');
      expect(e.allowed).toBe(denials.length === 0);
      expect(e.reasons.map((r) => r.principal)).toEqual(granting);
      if (e.allowed) expect(e).not.toHaveProperty('denials');
      else expect(e).toMatchObject({ denial: denials[0], denials });
    }), { numRuns: 300, seed: 20261202 });
  });
});
