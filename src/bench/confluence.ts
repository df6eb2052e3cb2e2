import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Services } from '../context.ts';
import { encryptJson } from '../metadata/secrets.ts';
import { closeServices } from '../services.ts';
import type { RunStats } from '../types.ts';
import { paragraph, rng } from './corpus.ts';
import { benchServices, timedSync } from './harness.ts';

interface Row {
  name: string;
  seconds: number;
  calls: number;
  byFamily: string;
  stats: RunStats;
}

/**
 * What a Confluence sync costs in API calls and time: a fake Cloud site (the test fake, on
 * 127.0.0.1, optionally with added latency per call) holds one space of `pages` pages in a
 * three-level tree with read restrictions on some sections and sub-sections, blog posts and text
 * attachments. A full sync, then an incremental sync after editing 1% of the pages, then one after
 * a restriction change on ~1% of the pages, then one with nothing changed. Embedded stores (PGlite
 * + LanceDB) in a temp dir and the configured embedding model (the shared offline one by default).
 */
export async function benchConfluence({ pages, latencyMs }: { pages: number; latencyMs: number }) {
  if (!Number.isInteger(pages) || pages < 200) throw new Error('--pages must be an integer of at least 200');
  // The fake lives with the tests; the benchmark is a development tool run from a checkout.
  const { startFakeConfluence } = await import('../../test/fakes/confluence/index.ts');
  const site = await startFakeConfluence({ pageSize: 250, latencyMs });
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'clearance-bench-confluence-'));
  let services: Services | undefined;
  try {
    const r = rng(11);
    const users = Array.from({ length: 60 }, (_, i) => site.addUser(`user${i}@bench.test`, { hidden: i % 30 === 29 }));
    const staff = site.addGroup('staff', users);
    const teams = Array.from({ length: 6 }, (_, t) => site.addGroup(`team-${t}`, users.filter((_, i) => i % 6 === t)));
    site.addSpace('KB', { view: [{ group: staff.id }] });

    const body = (title: string) => [
      `<h1>${title}</h1>`, `<p>${paragraph(r, 50)}</p>`,
      `<h2>Procedure</h2><p>${paragraph(r, 60)}</p>`, `<h2>Notes</h2><p>${paragraph(r, 40)}</p>`,
    ].join('');
    const home = site.addPage('KB', 'Knowledge base', body('Knowledge base'));
    const sections = 20;
    const perSub = Math.max(1, Math.round((pages - 1 - sections - sections * 10) / (sections * 10)));
    const leaves = [];
    for (let s = 0; s < sections; s++) {
      const section = site.addPage('KB', `Section ${s}`, body(`Section ${s}`), { parent: home });
      if (s % 5 === 0) site.setReadRestriction(section, { groups: [teams[s % 6]!, teams[(s + 1) % 6]!] });
      for (let u = 0; u < 10; u++) {
        const sub = site.addPage('KB', `Topic ${s}.${u}`, body(`Topic ${s}.${u}`), { parent: section });
        if (u === 3) site.setReadRestriction(sub, { users: users.slice(s, s + 12), groups: [teams[u % 6]!] });
        for (let k = 0; k < perSub; k++) leaves.push(site.addPage('KB', `Article ${s}.${u}.${k}`, body(`Article ${s}.${u}.${k}`), { parent: sub }));
      }
    }
    for (let i = 0; i < 20; i++) site.addBlogPost('KB', `Update ${i}`, body(`Update ${i}`));
    for (let i = 0; i < 50; i++) site.addAttachment(leaves[(i * 7) % leaves.length]!, `notes-${i}.txt`, paragraph(r, 80), 'text/plain');
    const pageCount = [...site.contents.values()].filter((c) => c.type === 'page').length;
    process.stdout.write(`fake site: ${pageCount} pages, 20 blog posts, 50 attachments, ${latencyMs} ms added per call\n`);

    services = await benchServices(tmp, { REDIS_URL: '', DATABASE_URL: '', QDRANT_URL: '' });
    const ctx = services;
    const { config, credentials } = site.sourceConfig(['KB']);
    const source = await ctx.metadata.sources.create({
      name: 'bench-confluence', type: 'confluence', config, credentialsEncrypted: encryptJson(ctx.secretKey, credentials), schedule: null, freshness: null,
    });

    const rows: Row[] = [];
    const sync = async (name: string) => {
      site.resetLog();
      const { stats, seconds } = await timedSync(ctx, source.id);
      const v2 = site.callCount(/\/api\/v2\//);
      const downloads = site.callCount(/download/); // the v1 download call and the file it redirects to
      const v1 = site.callCount(/\/rest\/api\//) - site.callCount(/\/rest\/api\/.*download/);
      rows.push({ name, seconds, calls: site.requests.length, byFamily: `v2 ${v2} / v1 ${v1} / download ${downloads}`, stats });
      process.stdout.write(`  ${name}: ${seconds.toFixed(1)} s, ${site.requests.length} API calls\n`);
    };

    await sync('full sync');
    const onePercent = Math.max(1, Math.round(pageCount / 100));
    const step = Math.floor(leaves.length / onePercent);
    for (let i = 0; i < onePercent; i++) {
      const page = leaves[i * step]!;
      site.editBody(page, page.body.replace(/<h2>Notes<\/h2><p>[^<]*<\/p>/, `<h2>Notes</h2><p>${paragraph(r, 40)}</p>`));
    }
    await sync(`1% content edit (${onePercent} pages)`);
    // Restrictions on two topic pages cover them and their articles: about 1% of the space.
    const topics = [...site.contents.values()].filter((c) => c.title === 'Topic 1.1' || c.title === 'Topic 2.2');
    for (const t of topics) site.setReadRestriction(t, { groups: [teams[2]!] });
    await sync(`restriction added (${topics.reduce((n, t) => n + 1 + site.descendants(t).length, 0)} pages)`);
    await sync('nothing changed');

    console.log('');
    console.log(`model: ${ctx.embedder.modelId}; metadata: ${ctx.metadata.kind}; vectors: ${ctx.vectors.kind}`);
    const header = ['run', 'time (s)', 'API calls', 'by family', 'added', 'updated', 'acl updated', 'deleted', 'chunks embedded'];
    const table = rows.map((x) => [x.name, x.seconds.toFixed(2), String(x.calls), x.byFamily, x.stats.added, x.stats.updated, x.stats.aclUpdated, x.stats.deleted, x.stats.chunksEmbedded].map(String));
    const widths = header.map((h, i) => Math.max(h.length, ...table.map((b) => b[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === 3 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
    console.log(line(header));
    console.log(widths.map((w) => '-'.repeat(w)).join('  '));
    for (const b of table) console.log(line(b));
    console.log('');
    const [, edit, acl] = rows;
    if (edit!.stats.updated !== onePercent) console.log(`WARNING: ${onePercent} pages were edited but ${edit!.stats.updated} were re-indexed`);
    if (acl!.stats.chunksEmbedded !== 0) console.log(`WARNING: the restriction change embedded ${acl!.stats.chunksEmbedded} chunks; it must embed none`);
  } finally {
    if (services) await closeServices(services);
    await site.close();
    await rm(tmp, { recursive: true, force: true });
  }
}
