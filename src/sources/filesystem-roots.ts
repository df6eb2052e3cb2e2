import fs from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { unprocessable } from '../errors.ts';

type RootsConfig = Pick<Config, 'FILESYSTEM_ROOTS' | 'dataDir'>;

const inside = (child: string, parent: string) => child === parent || child.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

async function real(p: string): Promise<string | null> {
  try {
    return await fs.realpath(path.resolve(p));
  } catch {
    return null;
  }
}

/** The configured roots, resolved (symlinks followed); roots that do not exist are left out. */
export async function filesystemRoots(config: RootsConfig): Promise<string[]> {
  const listed = (config.FILESYSTEM_ROOTS ?? '').split(',').map((r) => r.trim()).filter(Boolean);
  const out: string[] = [];
  for (const r of listed) {
    const p = await real(r);
    if (p) out.push(p);
  }
  return out;
}

/**
 * Where a `filesystem` source may point: under one of FILESYSTEM_ROOTS, after resolving `..` and
 * following symlinks, and never at, inside or above the service's own data directory (its
 * database, vectors and secret key). Anything else is refused with a 422 naming the allowed roots.
 * Returns the resolved folder.
 */
export async function checkFilesystemPath(requested: string, config: RootsConfig): Promise<string> {
  const roots = await filesystemRoots(config);
  if (roots.length === 0) {
    throw unprocessable('filesystem sources are not allowed: set FILESYSTEM_ROOTS to the folders they may read (comma-separated)');
  }
  const allowed = `allowed roots: ${roots.join(', ')}`;
  const resolved = await real(requested);
  if (!resolved) throw unprocessable(`folder ${requested} does not exist (${allowed})`);
  const dataDir = (await real(config.dataDir)) ?? path.resolve(config.dataDir);
  if (inside(resolved, dataDir) || inside(dataDir, resolved)) {
    throw unprocessable(`folder ${requested} holds or is inside the service's data directory, which is never indexed (${allowed})`);
  }
  if (!roots.some((root) => inside(resolved, root))) throw unprocessable(`folder ${requested} is outside FILESYSTEM_ROOTS (${allowed})`);
  return resolved;
}
