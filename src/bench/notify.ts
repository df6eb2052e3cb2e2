import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/**
 * `clearance bench notify`: notification-to-searchable latency per source kind. Against each fake
 * upstream (Graph, Drive, Confluence over HTTP) and a watched folder, with the service listening
 * on a real port, notifications on (debounce window NOTIFICATION_DEBOUNCE_MS, 2 s by default) and
 * no schedule: `changes` content edits are made one after another, each with a fresh word, and the
 * time from the edit to the first search that returns the new text is recorded. Prints p50/p95/max.
 */
export async function benchNotify(opts: { changes: number; kinds: string[]; debounceMs: number }) {
  const world = await import('../../test/support/notify-world.ts');
  const env = { NOTIFICATION_DEBOUNCE_MS: String(opts.debounceMs), LOG_LEVEL: 'silent' };
  const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]!;
  const rows: string[] = [];

  async function measure(kind: string, w: Awaited<ReturnType<typeof world.startNotifyWorld>>, email: string, edit: (word: string) => Promise<void> | void) {
    const lat: number[] = [];
    for (let i = 0; i < opts.changes; i++) {
      const word = `zq${kind.replace(/_/g, '')}${i}x${Math.random().toString(36).slice(2, 7)}`;
      const t0 = Date.now();
      await edit(word);
      await world.waitUntil(async () => (await w.texts(email, word)).some((t) => t.includes(word)), 60_000, `${kind} change ${i}`);
      lat.push(Date.now() - t0);
    }
    const line = `${kind.padEnd(13)} changes=${lat.length} p50=${pct(lat, 50)} ms p95=${pct(lat, 95)} ms max=${Math.max(...lat)} ms`;
    rows.push(line);
    console.log(line);
  }

  if (opts.kinds.includes('sharepoint')) {
    const { startFakeGraph } = await import('../../test/fakes/graph/index.ts');
    const g = await startFakeGraph({ pageSize: 100 });
    const w = await world.startNotifyWorld({ notifications: true, env });
    try {
      const alice = g.addUser('alice@contoso.test');
      const site = g.addSite('Bench');
      const drive = g.addDrive(site.id, 'Documents', { permissions: [{ user: alice.id }] });
      const file = g.addFile(drive.id, '/bench.txt', 'Contoso bench document.');
      for (let i = 0; i < 20; i++) g.addFile(drive.id, `/other/${i}.txt`, `Contoso filler ${i}.`);
      const { config, credentials } = g.sourceConfig({ siteIds: [site.id] });
      const { body } = await w.admin('/v1/sources', { name: 'bench-sp', type: 'sharepoint', config, credentials });
      await w.syncAndWait(body.id, 'full');
      await measure('sharepoint', w, alice.mail!, (word) => g.updateContent(file.id, `Contoso bench document ${word}.`));
    } finally {
      await w.close();
      await g.close();
    }
  }
  if (opts.kinds.includes('google_drive')) {
    const { startFakeGoogle, DRIVE_SCOPE, DIRECTORY_SCOPE } = await import('../../test/fakes/google/index.ts');
    const g = await startFakeGoogle({ domain: 'acme.test', pageSize: 100 });
    const w = await world.startNotifyWorld({ notifications: true, env });
    try {
      g.addUser('alice@acme.test');
      g.addUser('admin@acme.test', { admin: true });
      const key = g.createServiceAccount('bench', { delegate: [DRIVE_SCOPE, DIRECTORY_SCOPE] });
      const d = g.addSharedDrive('Bench', [{ type: 'user', emailAddress: 'admin@acme.test', role: 'organizer' }, { type: 'user', emailAddress: 'alice@acme.test', role: 'reader' }]);
      const file = g.addFile(d.id, 'bench.txt', 'Acme bench document.');
      for (let i = 0; i < 20; i++) g.addFile(d.id, `filler-${i}.txt`, `Acme filler ${i}.`);
      const { config, credentials } = g.sourceConfig(key, { driveIds: [d.id] });
      const { body } = await w.admin('/v1/sources', { name: 'bench-drive', type: 'google_drive', config, credentials });
      await w.syncAndWait(body.id, 'full');
      await measure('google_drive', w, 'alice@acme.test', (word) => g.updateContent(file.id, `Acme bench document ${word}.`));
    } finally {
      await w.close();
      await g.close();
    }
  }
  if (opts.kinds.includes('confluence')) {
    const { startFakeConfluence } = await import('../../test/fakes/confluence/index.ts');
    const site = await startFakeConfluence({ pageSize: 50 });
    const w = await world.startNotifyWorld({ notifications: true, env });
    try {
      const alice = site.addUser('alice@acme.test');
      site.addSpace('BENCH', { view: [{ user: alice.accountId }] });
      const page = site.addPage('BENCH', 'Bench', '<p>Acme bench page.</p>');
      for (let i = 0; i < 20; i++) site.addPage('BENCH', `Filler ${i}`, `<p>Acme filler ${i}.</p>`);
      const secret = 'bench-confluence-webhook-secret-01';
      const { config, credentials } = site.sourceConfig(['BENCH']);
      const { body } = await w.admin('/v1/sources', { name: 'bench-wiki', type: 'confluence', config, credentials: { ...credentials, webhookSecret: secret } });
      site.webhooks.register({ url: `${w.baseUrl}/v1/notifications/confluence?source=${body.id}`, secret, signing: 'hmac' });
      await w.syncAndWait(body.id, 'full');
      await measure('confluence', w, alice.email, (word) => site.editBody(page, `<p>Acme bench page ${word}.</p>`));
    } finally {
      await w.close();
      await site.close();
    }
  }
  if (opts.kinds.includes('filesystem')) {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-notify-'));
    const w = await world.startNotifyWorld({ notifications: false, env });
    try {
      await writeFile(path.join(dir, '.clearance-acl.json'), JSON.stringify({ read: ['user:alice@acme.test'] }));
      await writeFile(path.join(dir, 'bench.md'), '# Bench\n\nAcme bench file.\n');
      for (let i = 0; i < 20; i++) await writeFile(path.join(dir, `filler-${i}.md`), `# Filler ${i}\n\nAcme filler.\n`);
      const { body } = await w.admin('/v1/sources', { name: 'bench-fs', type: 'filesystem', config: { path: dir, watch: true } });
      await w.syncAndWait(body.id, 'full');
      const { filesystemWatchers } = await import('../services.ts');
      await world.waitUntil(async () => filesystemWatchers(w.h)?.watched().includes(body.id), 15_000, 'the watcher');
      await measure('filesystem', w, 'alice@acme.test', (word) => writeFile(path.join(dir, 'bench.md'), `# Bench\n\nAcme bench file ${word}.\n`));
    } finally {
      await w.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  console.log(`\nnotification-to-searchable latency (debounce ${opts.debounceMs} ms, fake embedder, in-process queue, embedded PGlite), load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  for (const r of rows) console.log(r);
}
