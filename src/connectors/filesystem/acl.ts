import { z } from 'zod';
import { EVERYONE, groupPrincipal, userPrincipal, type Principal } from '../../access/principals.ts';

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

/** The contract's three kinds only: `user:<email>` (case-insensitive), `group:<name>`, `everyone`. */
function toPrincipal(entry: string): Principal | null {
  if (entry === EVERYONE) return EVERYONE;
  const m = /^(user|group):(.*)$/s.exec(entry);
  if (!m) return null;
  return m[1] === 'user' ? userPrincipal(m[2]) : groupPrincipal(m[2]);
}
