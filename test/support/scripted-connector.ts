import { connectors, type ConnectorRegistration } from '../../src/connectors/index.ts';
import type { Change, ChangePage, Connector } from '../../src/connectors/interface.ts';
import type { Embedder } from '../../src/embedder/interface.ts';
import type { MetadataStore } from '../../src/metadata/interface.ts';
import type { Source, SourceType } from '../../src/types.ts';
import { z } from 'zod';

export interface ScriptedDoc {
  id: string;
  text: string;
  acl?: string[];
}

/**
 * What a scripted source returns. Each changes() call first takes the next entry of `failures`
 * (and throws it), otherwise enumerates `pages` in full, like a connector without a delta feed:
 * the cursor stays null until the last page.
 */
export interface Script {
  pages: ScriptedDoc[][];
  failures: Error[];
  /** Awaited before page `index` is handed to the engine. */
  beforePage?: (index: number) => Promise<void> | void;
  /** Date.now() of every changes() call, failed ones included. */
  calls: number[];
}

export const SCRIPTED_TYPE = 'scripted' as SourceType;
const scripts = new Map<string, Script>();

function scriptedConnector(sourceId: string): Connector {
  return {
    type: SCRIPTED_TYPE,
    enumeratesEverything: true,
    async test() {},
    async *changes(): AsyncIterable<ChangePage> {
      const script = scripts.get(sourceId);
      if (!script) throw new Error(`no script for source ${sourceId}`);
      script.calls.push(Date.now());
      const failure = script.failures.shift();
      if (failure) throw failure;
      for (let i = 0; i < script.pages.length; i++) {
        await script.beforePage?.(i);
        const changes: Change[] = script.pages[i]!.map((d) => ({
          kind: 'upsert',
          doc: {
            externalId: d.id, title: d.id, url: null, path: `/${d.id}`, mimeType: 'text/plain',
            lastModified: new Date(0), owner: null, contentVersion: null,
          },
          acl: { principals: d.acl ?? ['everyone'] },
          fetch: async () => ({ bytes: Buffer.from(d.text), mimeType: 'text/plain' }),
        }));
        yield { changes, cursor: i === script.pages.length - 1 ? 'done' : null };
      }
    },
  };
}

const registration: ConnectorRegistration = {
  factory: ({ sourceId }) => scriptedConnector(sourceId),
  configSchema: z.record(z.string(), z.unknown()),
  credentialsSchema: null,
};
(connectors as Record<string, ConnectorRegistration>)[SCRIPTED_TYPE] = registration;

/** A source whose connector plays `script` (which the test may keep changing). */
export async function createScriptedSource(metadata: MetadataStore, name: string, script: Partial<Script> = {}): Promise<{ source: Source; script: Script }> {
  const source = await metadata.sources.create({ name, type: SCRIPTED_TYPE, config: {}, credentialsEncrypted: null, schedule: null, freshness: null });
  const full: Script = { pages: [], failures: [], calls: [], ...script };
  scripts.set(source.id, full);
  return { source, script: full };
}

/** `n` pages of `perPage` one-paragraph documents; page p's texts all contain the word `pgp`. */
export function pagesOf(n: number, perPage: number, tag = 'doc'): ScriptedDoc[][] {
  return Array.from({ length: n }, (_, p) =>
    Array.from({ length: perPage }, (_, i) => ({ id: `${tag}-${p}-${i}`, text: `pg${p} item ${i} of ${tag}: the quarterly report of team ${i % 5} covers budget ${p * 100 + i}.` })));
}

export interface Gate {
  /** Resolves when a matching embed call has started and is being held. */
  hit: Promise<void>;
  release(): void;
}

/** Delegates to another embedder; a gate holds the first embed call whose texts match. */
export class GatedEmbedder implements Embedder {
  private gates: { match: (texts: string[]) => boolean; hit: () => void; released: Promise<void> }[] = [];
  constructor(private readonly inner: Embedder) {}
  get modelId() { return this.inner.modelId; }
  get dimension() { return this.inner.dimension; }
  get maxTokens() { return this.inner.maxTokens; }
  countTokens(text: string) { return this.inner.countTokens(text); }
  embedQuery(text: string) { return this.inner.embedQuery ? this.inner.embedQuery(text) : this.inner.embed([text]).then((v) => v[0]!); }

  gate(match: (texts: string[]) => boolean): Gate {
    let hit!: () => void;
    let release!: () => void;
    const hitP = new Promise<void>((r) => { hit = r; });
    const released = new Promise<void>((r) => { release = r; });
    this.gates.push({ match, hit, released });
    return { hit: hitP, release };
  }

  async embed(texts: string[]): Promise<number[][]> {
    const i = this.gates.findIndex((g) => g.match(texts));
    if (i >= 0) {
      const [g] = this.gates.splice(i, 1);
      g!.hit();
      await g!.released;
    }
    return this.inner.embed(texts);
  }
}

export async function waitFor<T>(fn: () => Promise<T | undefined | null | false>, what: string, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
