/**
 * The cache sizes an operator sets (LANCEDB_INDEX_CACHE_MB, LANCEDB_METADATA_CACHE_MB) reach the
 * LanceDB connection the store reads through: they are what bounds its memory on a large table.
 * LanceDB 0.37's connect() drops a session passed as its third argument, which once left both
 * caches at LanceDB's 6 GB / 1 GB defaults while the store reported 0 bytes cached.
 */
import { describe, expect, it } from 'vitest';
import { lanceStores } from './support/lancedb-stores.ts';
import { QUERY, at, filter, point } from './support/vectorstore-conformance.ts';

describe('LanceDB caches', () => {
  const open = lanceStores('lancedb-caches');
  const everyone = filter({ principals: ['everyone'] });

  async function searched(opts: { indexCacheBytes?: number; metadataCacheBytes?: number }) {
    const { store } = await open({ indexCheckIntervalMs: Number.POSITIVE_INFINITY, ...opts });
    for (let w = 0; w < 3; w++) {
      await store.upsert(Array.from({ length: 40 }, (_, i) => point({
        documentId: `d-${w}-${i}`, vector: at(0.01 * (w * 40 + i)), acl: ['everyone'], text: `report ${w} number ${i} on budgets`,
      })));
    }
    await store.buildIndexes();
    for (let q = 0; q < 5; q++) {
      await store.search(QUERY, everyone, 10);
      await store.ranking!.keywordSearch('budgets', everyone, 10);
    }
    return store.cacheBytes();
  }

  it('holds what the connection reads in the session the store was configured with', async () => {
    // A session the connection never used holds a few hundred bytes of its own; this one holds
    // the table's manifests, file metadata and full-text index (~170 KB for these 120 rows).
    expect(await searched({})).toBeGreaterThan(32 * 1024);
  });

  it('stays within the configured sizes', async () => {
    const roomy = await searched({});
    const small = 16 * 1024;
    const bounded = await searched({ indexCacheBytes: small, metadataCacheBytes: small });
    expect(bounded).toBeLessThanOrEqual(2 * small);
    expect(bounded).toBeLessThan(roomy);
  });
});
