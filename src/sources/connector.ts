import { connectorFor } from '../connectors/index.ts';
import type { Connector } from '../connectors/interface.ts';
import type { MetadataStore } from '../metadata/interface.ts';
import { decryptJson } from '../metadata/secrets.ts';
import type { Source } from '../types.ts';

type Keyed = { metadata: MetadataStore; secretKey: Buffer };

/** A source's stored credentials, decrypted; null when the source type takes none. */
export async function sourceCredentials(ctx: Keyed, sourceId: string): Promise<Record<string, unknown> | null> {
  const enc = await ctx.metadata.sources.credentials(sourceId);
  return enc ? (decryptJson(ctx.secretKey, enc) as Record<string, unknown>) : null;
}

/** The connector for a stored source, with its credentials decrypted. */
export async function openConnector(ctx: Keyed, source: Source): Promise<Connector> {
  const reg = connectorFor(source.type);
  if (!reg) throw new Error(`source type ${source.type} is not supported by this build`);
  return reg.factory({ sourceId: source.id, config: source.config, credentials: await sourceCredentials(ctx, source.id) });
}
