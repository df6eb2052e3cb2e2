import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';
import { LanceDbVectorStore, type LanceDbOptions } from '../../src/vectorstore/lancedb.ts';
import { DIM } from './vectorstore-conformance.ts';

/**
 * Opens LanceDB stores of DIM dimensions for the tests of one describe block, each in a new temp
 * directory unless given one (a second process on the same table); all are closed and the
 * directories removed after each test.
 */
export function lanceStores(prefix: string) {
  const dirs: string[] = [];
  const stores: LanceDbVectorStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await Promise.all(dirs.splice(0).map((d) => fs.rm(d, { recursive: true, force: true })));
  });
  return async (opts: Omit<LanceDbOptions, 'dir'> & { dir?: string } = {}) => {
    const dir = opts.dir ?? await fs.mkdtemp(path.join(os.tmpdir(), `clearance-${prefix}-`));
    if (!opts.dir) dirs.push(dir);
    const store = new LanceDbVectorStore({ ...opts, dir });
    stores.push(store);
    await store.init(DIM);
    return { store, dir };
  };
}
