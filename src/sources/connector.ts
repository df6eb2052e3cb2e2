import type { Config } from '../config.ts';
import { connectorFor } from '../connectors/index.ts';
import type { Connector } from '../connectors/interface.ts';
import type { MetadataStore } from '../metadata/interface.ts';
import { decryptJson } from '../metadata/secrets.ts';
import { errorMessage } from '../errors.ts';
import type { Source } from '../types.ts';
import { checkFilesystemPath } from './filesystem-roots.ts';

type Keyed = { metadata: MetadataStore; secretKey: Buffer };
type Opening = Keyed & { config: Pick<Config, 'FILESYSTEM_ROOTS' | 'dataDir'> };

/** A source's stored credentials, decrypted; null when the source type takes none. */
export async function sourceCredentials(ctx: Keyed, sourceId: string): Promise<Record<string, unknown> | null> {
  const enc = await ctx.metadata.sources.credentials(sourceId);
  return enc ? (decryptJson(ctx.secretKey, enc) as Record<string, unknown>) : null;
}

/**
 * The connector for a stored source, with its credentials decrypted. A filesystem source is held
 * to FILESYSTEM_ROOTS at every sync, not only when it was added: roots can shrink, and a folder
 * can be replaced by a symlink.
 */
export async function openConnector(ctx: Opening, source: Source): Promise<Connector> {
  const reg = connectorFor(source.type);
  if (!reg) throw new Error(`source type ${source.type} is not supported by this build`);
  let config = source.config;
  if (source.type === 'filesystem') {
    try {
      config = { ...config, path: await checkFilesystemPath(String(config.path ?? ''), ctx.config) };
    } catch (err) {
      throw new Error(errorMessage(err), { cause: err });
    }
  }
  return reg.factory({ sourceId: source.id, config, credentials: await sourceCredentials(ctx, source.id) });
}
