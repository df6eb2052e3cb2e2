import { SingleBar, Presets } from 'cli-progress';

interface Remote { url: string; token?: string }

async function call(o: Remote, method: string, path: string, body?: unknown) {
  if (!o.token) throw new Error('an admin token is needed: pass --token or set ADMIN_TOKEN');
  const res = await fetch(new URL(path, o.url), {
    method,
    headers: { authorization: `Bearer ${o.token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30_000),
  }).catch((err) => { throw new Error(`cannot reach ${o.url}: ${err.cause?.code ?? err.message}`); });
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  if (!res.ok) throw new Error(`${res.status} ${json?.title ?? ''}: ${json?.detail ?? text}`);
  return json;
}

const parseJson = (label: string, raw: string | undefined) => {
  if (raw === undefined) return undefined;
  try { return JSON.parse(raw); } catch { throw new Error(`--${label} is not valid JSON`); }
};

export async function add(o: Remote & { name: string; type: string; config: string; path?: string; credentials?: string; interval?: string }) {
  const config = o.path ? { path: o.path } : parseJson('config', o.config);
  const source = await call(o, 'POST', '/v1/sources', {
    name: o.name, type: o.type, config,
    credentials: parseJson('credentials', o.credentials),
    schedule: o.interval ? { intervalSeconds: Number(o.interval) } : undefined,
  });
  console.log(`added ${source.name} (${source.type}) as ${source.id}`);
}

export async function list(o: Remote) {
  const { sources } = await call(o, 'GET', '/v1/sources');
  if (!sources.length) return console.log('no sources');
  for (const s of sources) console.log(`${s.id}  ${s.type.padEnd(12)} ${s.name}${s.schedule ? `  every ${s.schedule.intervalSeconds}s` : ''}`);
}

export async function sync(id: string, o: Remote & { full?: boolean; wait?: boolean }) {
  const { runId, deduplicated } = await call(o, 'POST', `/v1/sources/${id}/sync`, { mode: o.full ? 'full' : undefined });
  console.log(`${deduplicated ? 'already running' : 'started'}: run ${runId}`);
  if (!o.wait) return;
  const run = await waitForRun((p) => call(o, 'GET', p), runId);
  printRun(run);
  if (run.status === 'failed') process.exitCode = 1;
}

export async function remove(id: string, o: Remote) {
  await call(o, 'DELETE', `/v1/sources/${id}`);
  console.log(`removed ${id}`);
}

/** Polls a run, drawing a progress bar over documents seen (total when known). */
export async function waitForRun(get: (path: string) => Promise<any>, runId: string, total?: number) {
  const bar = new SingleBar({ format: ' syncing [{bar}] {value}/{total} documents | {chunks} chunks embedded', hideCursor: true }, Presets.shades_classic);
  bar.start(total ?? 1, 0, { chunks: 0 });
  for (;;) {
    const run = await get(`/v1/runs/${runId}`);
    const seen = run.stats?.seen ?? 0;
    bar.setTotal(Math.max(total ?? seen, seen, 1));
    bar.update(seen, { chunks: run.stats?.chunksEmbedded ?? 0 });
    if (run.status === 'succeeded' || run.status === 'failed') {
      if (run.status === 'succeeded') bar.update(Math.max(total ?? seen, seen));
      bar.stop();
      return run;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

export function printRun(run: any) {
  const s = run.stats;
  console.log(`run ${run.runId ?? run.id}: ${run.status} (${run.mode})` + (run.error ? ` — ${run.error}` : ''));
  console.log(`  seen ${s.seen}, added ${s.added}, updated ${s.updated}, permissions updated ${s.aclUpdated}, deleted ${s.deleted}, unchanged ${s.unchanged}, failed ${s.failed}, skipped ${s.skipped ?? 0}, chunks embedded ${s.chunksEmbedded}`);
  for (const w of run.warnings ?? []) console.log(`  ! ${w}`);
}
