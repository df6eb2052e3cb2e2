import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config.ts';
import { mintDevToken } from '../identity/dev.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where `npm run demo` keeps its stores and its dev-token key (see demo.ts). */
export const DEMO_DATA_DIR = path.join(repoRoot, 'data/demo');

/** A data directory some server has started on: it holds the generated credential key. */
const usedByServer = (dir: string) => existsSync(path.join(dir, 'secret.key'));

/**
 * Which data directory's key signs a dev token. A server only accepts tokens signed with the key of
 * its own data directory, so the token must be minted there: `--data-dir` or `CLEARANCE_DATA_DIR`
 * when given; otherwise the default `./data` when a server has run on it, else the demo's
 * directory when the demo has run (the usual first run: `npm run demo`, then this command).
 */
export function tokenDataDir(opts: { dataDir?: string; env: Record<string, string | undefined>; demoDir?: string }): { dir: string; note?: string } {
  if (opts.dataDir) return { dir: path.resolve(opts.dataDir) };
  const configured = loadConfig(opts.env).dataDir;
  if (opts.env.CLEARANCE_DATA_DIR) return { dir: configured };
  const demo = path.resolve(opts.demoDir ?? DEMO_DATA_DIR);
  if (!usedByServer(configured) && usedByServer(demo)) {
    return { dir: demo, note: `signed for the demo's data directory ${path.relative(process.cwd(), demo) || demo}; pass --data-dir to sign for another server` };
  }
  return { dir: configured };
}

export async function token(o: { email: string; groups?: string; expires?: string; admin?: boolean; compliance?: boolean; dataDir?: string }, env = process.env) {
  const config = loadConfig(env);
  if (config.AUTH_MODE !== 'dev') throw new Error('dev tokens are only accepted with AUTH_MODE=dev; set it explicitly for local use');
  const { dir, note } = tokenDataDir({ dataDir: o.dataDir, env });
  const groups = o.groups ? String(o.groups).split(',').map((g) => g.trim()).filter(Boolean) : [];
  const minted = await mintDevToken({ email: o.email, groups, admin: o.admin, compliance: o.compliance, expiresIn: o.expires, dataDir: dir });
  if (note) process.stderr.write(`clearance: ${note}\n`);
  process.stdout.write(minted + '\n');
}
