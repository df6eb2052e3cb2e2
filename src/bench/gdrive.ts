import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Services } from '../context.ts';
import { encryptJson } from '../metadata/secrets.ts';
import { closeServices } from '../services.ts';
import type { RunStats } from '../types.ts';
import { markdownDoc, paragraph, rng } from './corpus.ts';
import { benchServices, timedSync } from './harness.ts';

const FOLDERS = 20;

interface Row {
  name: string;
  seconds: number;
  stats: RunStats;
  api: number;
  token: number;
}

/**
 * Google Drive sync cost on the fake Google (test/fakes/google, served over HTTP on 127.0.0.1 and
 * read through the real googleapis client): a full sync of a shared drive of `files` Markdown
 * files in 20 folders, then an incremental sync after 1% of the files were edited, then one after
 * 1% of the files were re-shared. API calls are counted by the fake (retries included); wall time
 * includes extraction and embedding with the configured model (the shared offline one by default)
 * into embedded stores in a temp dir.
 */
export async function benchGdrive({ files, latencyMs }: { files: number; latencyMs: number }) {
  if (!Number.isInteger(files) || files < 100) throw new Error('--files must be an integer of at least 100');
  let fakes: typeof import('../../test/fakes/google/index.ts');
  try {
    fakes = await import('../../test/fakes/google/index.ts');
  } catch {
    throw new Error('bench gdrive needs the fake Google of the test suite (test/fakes/google); run it from a source checkout');
  }
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-gdrive-'));
  const google = await fakes.startFakeGoogle({ domain: 'acme.test', pageSize: 1000, latencyMs });
  let services: Services | undefined;
  try {
    google.addUser('admin@acme.test', { admin: true });
    for (let t = 0; t < FOLDERS; t++) {
      const members = Array.from({ length: 5 }, (_, i) => `user${t * 5 + i}@acme.test`);
      for (const m of members) google.addUser(m);
      google.addGroup(`team-${t}@acme.test`, members);
    }
    google.addGroup('staff@acme.test', Array.from({ length: FOLDERS }, (_, t) => `team-${t}@acme.test`));
    const key = google.createServiceAccount('bench', { delegate: [fakes.DRIVE_SCOPE, fakes.DIRECTORY_SCOPE] });
    const drive = google.addSharedDrive('Bench', [
      { type: 'user', emailAddress: 'admin@acme.test', role: 'organizer' },
      { type: 'group', emailAddress: 'staff@acme.test', role: 'reader' },
    ]);
    const folders = Array.from({ length: FOLDERS }, (_, t) =>
      google.addFolder(drive.id, `team-${t}`, { permissions: [{ type: 'group', emailAddress: `team-${t}@acme.test`, role: 'writer' }] }));
    const r = rng(7);
    const docs = Array.from({ length: files }, (_, i) => google.addFile(folders[i % FOLDERS]!.id, `doc-${String(i).padStart(5, '0')}.md`, markdownDoc(r, i)));
    process.stdout.write(`fake Google: 1 shared drive, ${FOLDERS} folders, ${files} files${latencyMs ? `, ${latencyMs} ms per call` : ''}\n`);

    services = await benchServices(tmp, { REDIS_URL: '', DATABASE_URL: '', QDRANT_URL: '' });
    const ctx = services;
    const { config, credentials } = google.sourceConfig(key, { driveIds: [drive.id] });
    const source = await ctx.metadata.sources.create({
      name: 'bench-gdrive', type: 'google_drive', config, credentialsEncrypted: encryptJson(ctx.secretKey, credentials), schedule: null, freshness: null,
    });
    const sync = async (name: string): Promise<Row> => {
      google.resetLog();
      const timed = await timedSync(ctx, source.id);
      const row = { name, ...timed, api: google.apiRequests().length, token: google.requests.length - google.apiRequests().length };
      process.stdout.write(`  ${name}: ${row.seconds.toFixed(1)} s, ${row.api} API calls\n`);
      return row;
    };

    const full = await sync('full sync');

    const onePercent = Math.max(1, Math.round(files / 100));
    const step = files / onePercent;
    const picked = Array.from({ length: onePercent }, (_, i) => docs[Math.floor(i * step + step / 2)]!);
    for (const d of picked) {
      const text = d.content.toString('utf8');
      const at = text.lastIndexOf('\n## ');
      google.updateContent(d.id, `${at > 0 ? text.slice(0, at) : text}\n## Revised procedure\n\n${paragraph(r, 70)}\n`);
    }
    const content = await sync('1% content edit');

    const shared = Array.from({ length: onePercent }, (_, i) => docs[Math.floor(i * step)]!);
    for (const d of shared) google.addPermission(d.id, { type: 'user', emailAddress: 'auditor@acme.test' });
    const acl = await sync('1% sharing change');

    console.log('');
    console.log(`model: ${ctx.embedder.modelId} (${ctx.embedder.dimension}-d); metadata: ${ctx.metadata.kind}; vectors: ${ctx.vectors.kind}`);
    const header = ['run', 'time (s)', 'API calls', 'token calls', 'seen', 'added', 'updated', 'acl updated', 'chunks embedded'];
    const body = [full, content, acl].map((x) => [x.name, x.seconds.toFixed(1), x.api, x.token, x.stats.seen, x.stats.added, x.stats.updated, x.stats.aclUpdated, x.stats.chunksEmbedded].map(String));
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of body) console.log(line(b));
    const ratio = (a: number, b: number) => (b === 0 ? 'n/a' : `${((a / b) * 100).toFixed(1)}%`);
    console.log(`\n1% content edit vs full: API calls ${ratio(content.api, full.api)}, time ${ratio(content.seconds, full.seconds)}`);
    console.log(`1% sharing change vs full: API calls ${ratio(acl.api, full.api)}, time ${ratio(acl.seconds, full.seconds)}, chunks embedded ${acl.stats.chunksEmbedded}`);
    if (content.stats.updated !== onePercent) console.log(`WARNING: ${onePercent} files were edited but ${content.stats.updated} were re-indexed`);
    if (acl.stats.aclUpdated !== onePercent || acl.stats.chunksEmbedded !== 0) console.log(`WARNING: expected ${onePercent} ACL updates and no embedding`);
  } finally {
    if (services) await closeServices(services);
    await google.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
