import { z } from 'zod';
import type { Principal } from '../../types.ts';

export const ACL_FILE = '.clearance-acl.json';

const aclFileSchema = z.object({ read: z.array(z.string()) });

export interface ParsedAclFile {
  principals: Principal[];
  /** Entries that were ignored (they grant nothing); the file as a whole still applies. */
  problems: string[];
}

/**
 * Parses a `.clearance-acl.json`. Returns null when the file does not parse: the contract says such
 * a file grants nothing, and it still shadows any file above it (it is the nearest one).
 */
export function parseAclFile(raw: string): ParsedAclFile | null {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return null;
  }
  const parsed = aclFileSchema.safeParse(json);
  if (!parsed.success) return null;
  const principals = new Set<Principal>();
  const problems: string[] = [];
  for (const entry of parsed.data.read) {
    const p = toPrincipal(entry.trim());
    if (p) principals.add(p);
    else problems.push(`unknown principal "${entry}"`);
  }
  return { principals: [...principals].sort(), problems };
}

function toPrincipal(entry: string): Principal | null {
  if (entry === 'everyone') return 'everyone';
  const m = /^(user|group):(.+)$/.exec(entry);
  if (!m) return null;
  const value = m[2]!.trim();
  if (!value) return null;
  if (m[1] === 'user') {
    // Emails compare case-insensitively; a value without "@" cannot match any caller's email claim.
    return value.includes('@') ? `user:${value.toLowerCase()}` : null;
  }
  return `group:${value}`;
}
