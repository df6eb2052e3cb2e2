import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { AuditEntry, MetadataStore, SqlDriver } from '../src/metadata/interface.ts';
import { PgDriver } from '../src/metadata/pg.ts';
import { SqlMetadataStore } from '../src/metadata/store.ts';
import { canonicalJson } from '../src/metadata/audit-chain.ts';
import { memoryDriver } from './support/stores.ts';
import { PG_URL, postgresReachable } from './support/services.ts';

const hasPostgres = await postgresReachable();

const entry = (i: number, over: Partial<AuditEntry> = {}): AuditEntry => ({
  user: `u${i % 3}@acme.test`, agent: i % 2 ? 'helper' : null, action: 'search', query: `q${i}`,
  documentIds: [`d${i}`], documents: [{ id: `d${i}`, title: `Doc ${i}`, url: `https://x.test/${i}`, sourceId: 's1' }],
  sourceIds: ['s1'], details: { topK: 10, nested: { b: 1, a: [i] } }, requestId: `r${i}`, ...over,
});

/**
 * The audit trail's tamper evidence, at the storage level where tampering would happen: every
 * record holds the hash of the one before, so changing or deleting any stored record (or the
 * newest one) makes verify fail at that record, while retention pruning keeps the rest verifiable.
 */
function chainSuite(name: string, open: () => Promise<{ store: MetadataStore; driver: SqlDriver; cleanup: () => Promise<void> }>) {
  describe(name, () => {
    async function withChain(n: number, fn: (s: { store: MetadataStore; driver: SqlDriver; ids: string[] }) => Promise<void>) {
      const { store, driver, cleanup } = await open();
      try {
        const ids: string[] = [];
        for (let i = 1; i <= n; i++) ids.push((await store.audit.append(entry(i))).id);
        await fn({ store, driver, ids });
      } finally {
        await cleanup();
      }
    }

    it('links each record to the one before and verifies an untouched chain', async () => {
      await withChain(5, async ({ store, ids }) => {
        const all = (await store.audit.search({})).reverse();
        expect(all.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(all[0]!.prevHash).toBe('0'.repeat(64));
        for (let i = 1; i < all.length; i++) {
          expect(all[i]!.prevHash).toBe(all[i - 1]!.hash);
          expect(all[i]!.prevId).toBe(ids[i - 1]);
        }
        expect(all[2]).toMatchObject({ actor: 'u0@acme.test', user: 'u0@acme.test', agent: 'helper', outcome: 'ok', documents: [{ id: 'd3', title: 'Doc 3' }] });
        expect(await store.audit.verify()).toEqual({ ok: true, records: 5 });
      });
    });

    it.each([
      ['the query', `UPDATE audit_log SET query = 'nothing to see' WHERE seq = 3`],
      ['the returned documents', `UPDATE audit_log SET document_ids = '{}' WHERE seq = 3`],
      ['the document titles', `UPDATE audit_log SET documents = '[]'::jsonb WHERE seq = 3`],
      ['the actor', `UPDATE audit_log SET actor = 'someone@else.test' WHERE seq = 3`],
      ['the time', `UPDATE audit_log SET at = at - interval '1 day' WHERE seq = 3`],
      ['the outcome', `UPDATE audit_log SET outcome = 'denied' WHERE seq = 3`],
      ['the details', `UPDATE audit_log SET details = '{"topK": 11}'::jsonb WHERE seq = 3`],
      ['the record and its hash together', `UPDATE audit_log SET query = 'x', hash = repeat('a', 64) WHERE seq = 3`],
    ])('fails at the record whose %s was changed', async (_what, sql) => {
      await withChain(5, async ({ store, driver, ids }) => {
        await driver.query(sql);
        expect(await store.audit.verify()).toMatchObject({ ok: false, firstBrokenId: ids[2], firstBrokenSeq: 3 });
      });
    });

    it('fails at a record that was deleted, in the middle, at the start or at the head', async () => {
      for (const [seq, n] of [[3, 5], [1, 5], [5, 5]] as const) {
        await withChain(n, async ({ store, driver, ids }) => {
          await driver.query(`DELETE FROM audit_log WHERE seq = ${seq}`);
          expect(await store.audit.verify()).toMatchObject({ ok: false, firstBrokenId: ids[seq - 1], firstBrokenSeq: seq });
        });
      }
    });

    it('fails when every record is deleted', async () => {
      await withChain(3, async ({ store, driver }) => {
        await driver.query('DELETE FROM audit_log');
        expect(await store.audit.verify()).toMatchObject({ ok: false, records: 0 });
      });
    });

    it('prunes old records from the tail and the rest still verifies; tampering after pruning is still caught', async () => {
      const { store, driver, cleanup } = await open();
      try {
        const day = 86_400_000;
        const now = Date.now();
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push((await store.audit.append(entry(i, { at: new Date(now - (6 - i) * 100 * day) }))).id);
        expect(await store.audit.prune(new Date(now - 365 * day))).toBe(3);
        expect((await store.audit.search({})).map((r) => r.id)).toEqual([...ids.slice(3)].reverse());
        expect(await store.audit.verify()).toEqual({ ok: true, records: 3 });
        expect(await store.audit.prune(new Date(now - 365 * day))).toBe(0);
        await store.audit.append(entry(7));
        expect(await store.audit.verify()).toEqual({ ok: true, records: 4 });
        await driver.query(`DELETE FROM audit_log WHERE seq = 4`);
        expect(await store.audit.verify()).toMatchObject({ ok: false, firstBrokenId: ids[3] });
      } finally {
        await cleanup();
      }
    });

    it('filters by user, agent, action, document, source, outcome and time; pages by seq', async () => {
      await withChain(6, async ({ store }) => {
        await store.audit.append({ user: 'ADMIN@acme.test', agent: null, action: 'source.disable', target: 's9', query: null, documentIds: [], requestId: null });
        await store.audit.append({ user: 'u1@acme.test', agent: 'helper', action: 'search', outcome: 'denied', query: 'x', documentIds: [], requestId: null });
        const q = async (f: Parameters<MetadataStore['audit']['search']>[0]) => (await store.audit.search(f)).map((r) => r.seq);
        expect(await q({ user: 'U1@acme.test' })).toEqual([8, 4, 1]);
        expect(await q({ agent: 'helper', outcome: 'ok' })).toEqual([5, 3, 1]);
        expect(await q({ action: 'source.disable' })).toEqual([7]);
        expect(await q({ documentId: 'd4' })).toEqual([4]);
        expect(await q({ sourceId: 's9' })).toEqual([7]);
        expect(await q({ sourceId: 's1', beforeSeq: 3 })).toEqual([2, 1]);
        expect(await q({ from: new Date(Date.now() + 60_000) })).toEqual([]);
        expect(await q({ limit: 2 })).toEqual([8, 7]);
      });
    });

    it('keeps one chain under concurrent appends', async () => {
      const { store, cleanup } = await open();
      try {
        await Promise.all(Array.from({ length: 40 }, (_, i) => store.audit.append(entry(i))));
        expect(await store.audit.verify()).toEqual({ ok: true, records: 40 });
      } finally {
        await cleanup();
      }
    });
  });
}

chainSuite('audit chain on PGlite', async () => {
  const driver = await memoryDriver();
  return { store: new SqlMetadataStore(driver), driver, cleanup: () => driver.close() };
});

describe.runIf(hasPostgres)('on Postgres', () => {
  const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
  afterAll(() => admin.end());
  const fresh = async () => {
    const schema = `clr_audit_${randomBytes(6).toString('hex')}`;
    await admin.query(`CREATE SCHEMA ${schema}`);
    return { schema, drop: () => admin.query(`DROP SCHEMA ${schema} CASCADE`).then(() => undefined) };
  };

  chainSuite('audit chain on Postgres', async () => {
    const { schema, drop } = await fresh();
    const driver = new PgDriver({ connectionString: PG_URL, schema, max: 4 });
    const store = new SqlMetadataStore(driver);
    await store.migrate();
    return { store, driver, cleanup: async () => { await driver.close(); await drop(); } };
  });

  it('two API processes (two pools) appending at once keep one verifiable chain', async () => {
    const { schema, drop } = await fresh();
    const a = new PgDriver({ connectionString: PG_URL, schema, max: 4 });
    const b = new PgDriver({ connectionString: PG_URL, schema, max: 4 });
    try {
      const sa = new SqlMetadataStore(a);
      const sb = new SqlMetadataStore(b);
      await Promise.all([sa.migrate(), sb.migrate()]);
      await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? sa : sb).audit.append(entry(i))));
      expect(await sa.audit.verify()).toEqual({ ok: true, records: 60 });
    } finally {
      await a.close();
      await b.close();
      await drop();
    }
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and drops undefined, so a jsonb round trip hashes the same', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: null }], c: 'x' }, u: undefined })).toBe('{"a":{"c":"x","d":[1,{"y":null,"z":1}]},"b":1}');
  });
});

describe('retention', () => {
  it('prunes records older than AUDIT_RETENTION_DAYS; 0 keeps everything', async () => {
    const { pruneAudit } = await import('../src/governance/retention.ts');
    const { loadConfig } = await import('../src/config.ts');
    const pino = (await import('pino')).default;
    const driver = await memoryDriver();
    try {
      const metadata = new SqlMetadataStore(driver);
      const now = new Date('2026-06-01T00:00:00Z');
      for (const daysAgo of [400, 366, 364, 1]) await metadata.audit.append(entry(daysAgo, { at: new Date(now.getTime() - daysAgo * 86_400_000) }));
      const base = { metadata, now: () => now, log: pino({ level: 'silent' }) };
      expect(loadConfig({}).AUDIT_RETENTION_DAYS).toBe(365);
      expect(await pruneAudit({ ...base, config: loadConfig({ AUDIT_RETENTION_DAYS: '0' }) })).toBe(0);
      expect(await pruneAudit({ ...base, config: loadConfig({}) })).toBe(2);
      expect((await metadata.audit.search({})).map((r) => r.query)).toEqual(['q1', 'q364']);
      expect(await metadata.audit.verify()).toEqual({ ok: true, records: 2 });
      expect(() => loadConfig({ AUDIT_RETENTION_DAYS: '-1' })).toThrow(/AUDIT_RETENTION_DAYS/);
    } finally {
      await driver.close();
    }
  });
});
