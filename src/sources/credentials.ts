import type { Services } from '../context.ts';
import { decryptJson } from '../metadata/secrets.ts';

/** A source's stored credentials, decrypted; null when the source type takes none. */
export async function sourceCredentials(ctx: Pick<Services, 'metadata' | 'secretKey'>, sourceId: string): Promise<Record<string, unknown> | null> {
  const enc = await ctx.metadata.getSourceCredentials(sourceId);
  return enc ? (decryptJson(ctx.secretKey, enc) as Record<string, unknown>) : null;
}
