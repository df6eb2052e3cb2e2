import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EVERYONE, assertPermissionFilter, buildPermissionFilter, callerPrincipals, domainPrincipal, grantsNothing, groupPrincipal,
  isPrincipal, matches, normalizeAcl, normalizeEmail, normalizePrincipal, parsePrincipal, sourceGroupPrincipal, userPrincipal,
  type PermissionFilter,
} from '../src/access/index.ts';

/**
 * The permission boundary, piece by piece. Every rule here is one a mutation of src/access must
 * break (npm run test:mutation measures that): the principal grammar, the one email rule, how a
 * caller's principals are formed, how scopes intersect, and the one matching rule.
 */

describe('the email rule', () => {
  it('trims, lower-cases and accepts exactly one @ with something on each side', () => {
    expect(normalizeEmail('  Alice@ACME.Test ')).toBe('alice@acme.test');
    expect(normalizeEmail('a@b')).toBe('a@b');
    for (const bad of ['', ' ', 'alice', '@acme.test', 'alice@', 'a@b@c', 'a b@c.test', 'a@b c.test', 'a\t@b', '@']) {
      expect(normalizeEmail(bad), JSON.stringify(bad)).toBeNull();
    }
    for (const notString of [null, undefined, 42, {}, ['a@b']]) expect(normalizeEmail(notString)).toBeNull();
  });
});

describe('principal constructors', () => {
  it('build canonical principals or refuse', () => {
    expect(userPrincipal(' Bob@Acme.test')).toBe('user:bob@acme.test');
    expect(userPrincipal('bob')).toBeNull();
    expect(userPrincipal(7)).toBeNull();
    expect(groupPrincipal(' Finance Team ')).toBe('group:Finance Team');
    expect(groupPrincipal('')).toBeNull();
    expect(groupPrincipal('   ')).toBeNull();
    expect(groupPrincipal(null)).toBeNull();
    expect(sourceGroupPrincipal('src-1', 'g/with/slash')).toBe('sgroup:src-1/g/with/slash');
    expect(sourceGroupPrincipal('', 'g')).toBeNull();
    expect(sourceGroupPrincipal('a/b', 'g')).toBeNull();
    expect(sourceGroupPrincipal('s', '')).toBeNull();
    expect(sourceGroupPrincipal(1, 'g')).toBeNull();
    expect(sourceGroupPrincipal('s', 2)).toBeNull();
    expect(domainPrincipal(' ACME.test ')).toBe('domain:acme.test');
    for (const bad of ['', 'a b', 'a@b', 'a/b', undefined]) expect(domainPrincipal(bad)).toBeNull();
    expect(EVERYONE).toBe('everyone');
  });
});

describe('parsePrincipal / isPrincipal', () => {
  it('reads each kind in its canonical spelling', () => {
    expect(parsePrincipal('everyone')).toEqual({ kind: 'everyone' });
    expect(parsePrincipal('user:a@b.test')).toEqual({ kind: 'user', email: 'a@b.test' });
    expect(parsePrincipal('group:Legal Team')).toEqual({ kind: 'group', name: 'Legal Team' });
    expect(parsePrincipal('sgroup:s1/g:1/x')).toEqual({ kind: 'sgroup', sourceId: 's1', groupId: 'g:1/x' });
    expect(parsePrincipal('domain:acme.test')).toEqual({ kind: 'domain', domain: 'acme.test' });
  });

  it('rejects everything else, including non-canonical spellings', () => {
    const bad = [
      'Everyone', 'everyone ', ' everyone', 'all', ':x', 'user', 'user:', 'user:bob', 'user:Bob@acme.test', 'user: bob@acme.test',
      'user:a@b@c', 'group:', 'group: padded', 'group:padded ', 'sgroup:', 'sgroup:s', 'sgroup:/g', 'sgroup:s/', 'domain:',
      'domain:ACME.test', 'domain:a b', 'domain:a@b', 'role:admin', 'USER:a@b.test', 'x:y',
      // Kinds only as whole words before the colon.
      'groupx', 'groups:x', 'xgroup:x', 'users:a@b.test', 'domainx.test', 'domain.x', 'sgroups:s/g', 'usera@b.test', ' group:x',
    ];
    for (const b of bad) {
      expect(parsePrincipal(b), b).toBeNull();
      expect(isPrincipal(b), b).toBe(false);
    }
    expect(isPrincipal(undefined)).toBe(false);
    // Only strings: not an array or an object that would print as a principal.
    expect(parsePrincipal(['group:x'])).toBeNull();
    expect(parsePrincipal({ toString: () => 'group:x' })).toBeNull();
    expect(isPrincipal(3)).toBe(false);
    expect(isPrincipal('group:x')).toBe(true);
  });
});

describe('normalizePrincipal / normalizeAcl', () => {
  it('canonicalises what is meant as a principal and refuses the rest', () => {
    expect(normalizePrincipal(' user:Alice@Acme.Test ')).toBe('user:alice@acme.test');
    expect(normalizePrincipal('domain:ACME.test')).toBe('domain:acme.test');
    expect(normalizePrincipal('group: Finance ')).toBe('group:Finance');
    expect(normalizePrincipal(' everyone ')).toBe('everyone');
    expect(normalizePrincipal('sgroup:s/g')).toBe('sgroup:s/g');
    expect(normalizePrincipal('sgroup:s')).toBeNull();
    expect(normalizePrincipal('user:nobody')).toBeNull();
    expect(normalizePrincipal('Everyone')).toBeNull();
    expect(normalizePrincipal('role:x')).toBeNull();
    expect(normalizePrincipal(':x')).toBeNull();
    for (const bad of ['groupx', 'groups:x', 'usera@b.test', 'domainacme.test', 'sgroupx/y', 'xgroup:y']) expect(normalizePrincipal(bad), bad).toBeNull();
    expect(normalizePrincipal(null)).toBeNull();
  });

  it('stores an ACL canonical, de-duplicated and sorted, and reports what it dropped', () => {
    expect(normalizeAcl(['user:B@x.test', 'everyone', 'user:b@x.test', 'group:z', 'bogus', 'user:nobody', 42])).toEqual({
      acl: ['everyone', 'group:z', 'user:b@x.test'],
      rejected: ['bogus', 'user:nobody', '42'],
    });
    expect(normalizeAcl([])).toEqual({ acl: [], rejected: [] });
  });
});

describe('callerPrincipals', () => {
  const caller = (email: string | null, groups: string[] = []) => ({ email, groups });

  it('is the user, their domain, everyone, their IdP groups and their source groups', () => {
    expect(callerPrincipals(caller(' Ana@Acme.test', ['eng', ' ops ', '', 'eng']), ['sgroup:s1/g1', 'sgroup:s2/g2']).sort()).toEqual([
      'domain:acme.test', 'everyone', 'group:eng', 'group:ops', 'sgroup:s1/g1', 'sgroup:s2/g2', 'user:ana@acme.test',
    ]);
  });

  it('gives nothing to a caller without a valid email', () => {
    expect(callerPrincipals(caller(null, ['eng']), ['sgroup:s/g'])).toEqual([]);
    expect(callerPrincipals(caller('not-an-email', ['eng']), [])).toEqual([]);
    expect(callerPrincipals(caller('a@b@c'), [])).toEqual([]);
  });

  it('never takes anything but sgroup principals from the source-group lookup', () => {
    const p = callerPrincipals(caller('bob@acme.test'), ['everyone', 'user:dana@acme.test', 'group:hr', 'domain:evil.test', 'sgroup:', 'sgroup:s1/x']);
    expect(p.sort()).toEqual(['domain:acme.test', 'everyone', 'sgroup:s1/x', 'user:bob@acme.test']);
  });

  it('leaves out a domain that is not a domain principal, but keeps the user', () => {
    expect(callerPrincipals(caller('a@b/c'), []).sort()).toEqual(['everyone', 'user:a@b/c']);
  });
});

describe('buildPermissionFilter', () => {
  it('keeps only valid principals, sorted and de-duplicated', () => {
    const f = buildPermissionFilter({ principals: ['user:b@x.test', 'bogus', 'everyone', 'user:b@x.test', 'group:a', ''] });
    expect(f.principals).toEqual(['everyone', 'group:a', 'user:b@x.test']);
    expect(f.sourceIds).toBeUndefined();
    // No scope means no clause at all: a store that translates by key presence must not see a source restriction.
    expect(Object.keys(f)).toEqual(['principals']);
    expect(f.modifiedAfter).toBeUndefined();
    expect(f.excludedSourceIds).toBeUndefined();
    expect(f.excludedDocumentIds).toBeUndefined();
  });

  it('intersects the agent scope with the requested sources, in either order', () => {
    expect(buildPermissionFilter({ principals: ['everyone'], agentSourceIds: ['b', 'a', 'c'], requestedSourceIds: ['c', 'd', 'a'] }).sourceIds).toEqual(['a', 'c']);
    expect(buildPermissionFilter({ principals: ['everyone'], requestedSourceIds: ['z', 'y', 'z'] }).sourceIds).toEqual(['y', 'z']);
    expect(buildPermissionFilter({ principals: ['everyone'], agentSourceIds: ['q'] }).sourceIds).toEqual(['q']);
    expect(buildPermissionFilter({ principals: ['everyone'], agentSourceIds: ['a'], requestedSourceIds: ['b'] }).sourceIds).toEqual([]);
    expect(buildPermissionFilter({ principals: ['everyone'], agentSourceIds: [] }).sourceIds).toEqual([]);
    expect(buildPermissionFilter({ principals: ['everyone'], agentSourceIds: [], requestedSourceIds: ['a'] }).sourceIds).toEqual([]);
  });

  it('keeps only string ids, whatever a JavaScript caller passes', () => {
    const f = buildPermissionFilter({ principals: ['everyone'], requestedSourceIds: ['s', 5, null] as unknown as string[], excludedDocumentIds: [{}, 'd'] as unknown as string[] });
    expect(f.sourceIds).toEqual(['s']);
    expect(f.excludedDocumentIds).toEqual(['d']);
  });

  it('carries exclusions and the time bound; an invalid date keeps nothing', () => {
    const f = buildPermissionFilter({
      principals: ['everyone'], excludedSourceIds: ['s2', 's1', 's2'], excludedDocumentIds: ['d'], modifiedAfter: new Date(5000),
    });
    expect(f.excludedSourceIds).toEqual(['s1', 's2']);
    expect(f.excludedDocumentIds).toEqual(['d']);
    expect(f.modifiedAfter).toBe(5000);
    expect(buildPermissionFilter({ principals: ['everyone'], excludedSourceIds: [], excludedDocumentIds: [] })).not.toHaveProperty('excludedSourceIds');
    expect(buildPermissionFilter({ principals: ['everyone'], modifiedAfter: new Date('nonsense') }).modifiedAfter).toBe(Infinity);
    expect(buildPermissionFilter({ principals: ['everyone'], modifiedAfter: new Date(0) }).modifiedAfter).toBe(0);
  });

  it('is frozen: a filter cannot be widened after it was built', () => {
    const f = buildPermissionFilter({ principals: ['group:a'], requestedSourceIds: ['s'] });
    expect(Object.isFrozen(f)).toBe(true);
    expect(Object.isFrozen(f.principals)).toBe(true);
    expect(Object.isFrozen(f.sourceIds)).toBe(true);
    expect(() => { (f.principals as string[]).push('everyone'); }).toThrow();
    expect(() => { (f as { sourceIds?: string[] }).sourceIds = undefined; }).toThrow();
  });

  it('only narrows (property): every principal is valid and given, every source is in every scope given', () => {
    fc.assert(fc.property(
      fc.array(fc.oneof(fc.string(), fc.constantFrom('everyone', 'group:g', 'user:a@b.test', 'domain:b.test', 'sgroup:s/g'))),
      fc.option(fc.array(fc.constantFrom('a', 'b', 'c', 'd'))),
      fc.option(fc.array(fc.constantFrom('a', 'b', 'c', 'd'))),
      (principals, agent, requested) => {
        const f = buildPermissionFilter({ principals, agentSourceIds: agent ?? undefined, requestedSourceIds: requested ?? undefined });
        for (const p of f.principals) {
          expect(principals).toContain(p);
          expect(isPrincipal(p)).toBe(true);
        }
        for (const p of principals) if (isPrincipal(p)) expect(f.principals).toContain(p);
        expect(f.sourceIds === undefined).toBe(agent === null && requested === null);
        for (const id of f.sourceIds ?? []) {
          if (agent) expect(agent).toContain(id);
          if (requested) expect(requested).toContain(id);
        }
        if (agent && requested) for (const id of agent) if (requested.includes(id)) expect(f.sourceIds).toContain(id);
      },
    ));
  });
});

describe('assertPermissionFilter / grantsNothing', () => {
  it('refuses anything not built by the builder, including copies', () => {
    const f = buildPermissionFilter({ principals: ['everyone'] });
    expect(() => assertPermissionFilter(f)).not.toThrow();
    for (const fake of [{ principals: ['everyone'] }, { ...f }, null, undefined, 'everyone', Object.freeze({ principals: ['everyone'] })]) {
      expect(() => assertPermissionFilter(fake), JSON.stringify(fake)).toThrow(/buildPermissionFilter/);
    }
    expect(() => grantsNothing({ principals: [] } as unknown as PermissionFilter)).toThrow(/buildPermissionFilter/);
    expect(() => matches({ principals: ['everyone'] } as unknown as PermissionFilter, { documentId: 'd', sourceId: 's', lastModified: 0, acl: ['everyone'] })).toThrow();
  });

  it('knows when nothing can match', () => {
    expect(grantsNothing(buildPermissionFilter({ principals: [] }))).toBe(true);
    expect(grantsNothing(buildPermissionFilter({ principals: ['bogus'] }))).toBe(true);
    expect(grantsNothing(buildPermissionFilter({ principals: ['everyone'], requestedSourceIds: [] }))).toBe(true);
    expect(grantsNothing(buildPermissionFilter({ principals: ['everyone'], modifiedAfter: new Date('x') }))).toBe(true);
    expect(grantsNothing(buildPermissionFilter({ principals: ['everyone'] }))).toBe(false);
    expect(grantsNothing(buildPermissionFilter({ principals: ['everyone'], requestedSourceIds: ['s'], modifiedAfter: new Date(1) }))).toBe(false);
  });
});

describe('matches', () => {
  const item = (over: Partial<Parameters<typeof matches>[1]> = {}) => ({ documentId: 'd1', sourceId: 's1', lastModified: 1000, acl: ['group:eng'], ...over });
  const f = (over: Parameters<typeof buildPermissionFilter>[0]) => buildPermissionFilter(over);

  it('needs a shared principal', () => {
    expect(matches(f({ principals: ['group:eng'] }), item())).toBe(true);
    expect(matches(f({ principals: ['group:ops', 'group:eng'] }), item())).toBe(true);
    expect(matches(f({ principals: ['group:ops'] }), item())).toBe(false);
    expect(matches(f({ principals: ['group:eng'] }), item({ acl: [] }))).toBe(false);
    expect(matches(f({ principals: [] }), item({ acl: ['everyone'] }))).toBe(false);
    expect(matches(f({ principals: ['group:Eng'] }), item())).toBe(false);
  });

  it('honours the source scope, exclusions and the time bound', () => {
    const me = ['group:eng'];
    expect(matches(f({ principals: me, requestedSourceIds: ['s1'] }), item())).toBe(true);
    expect(matches(f({ principals: me, requestedSourceIds: ['s2'] }), item())).toBe(false);
    expect(matches(f({ principals: me, requestedSourceIds: [] }), item())).toBe(false);
    expect(matches(f({ principals: me, agentSourceIds: ['s1'], requestedSourceIds: ['s2'] }), item())).toBe(false);
    expect(matches(f({ principals: me, excludedSourceIds: ['s1'] }), item())).toBe(false);
    expect(matches(f({ principals: me, excludedSourceIds: ['s2'] }), item())).toBe(true);
    expect(matches(f({ principals: me, excludedDocumentIds: ['d1'] }), item())).toBe(false);
    expect(matches(f({ principals: me, excludedDocumentIds: ['d2'] }), item())).toBe(true);
    expect(matches(f({ principals: me, modifiedAfter: new Date(1000) }), item())).toBe(true);
    expect(matches(f({ principals: me, modifiedAfter: new Date(1001) }), item())).toBe(false);
    expect(matches(f({ principals: me, modifiedAfter: new Date(999) }), item())).toBe(true);
    expect(matches(f({ principals: me, modifiedAfter: new Date('x') }), item())).toBe(false);
    expect(matches(f({ principals: me, modifiedAfter: new Date(0) }), item({ lastModified: Number.NaN }))).toBe(false);
  });
});
