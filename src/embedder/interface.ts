export interface Embedder {
  /** Stable identifier of model + provider; part of the embedding cache key. */
  readonly modelId: string;
  readonly dimension: number;
  /** Largest input, in the model's tokens, that is not truncated. Chunk sizes follow it. */
  readonly maxTokens: number;
  /** Counts tokens as the model's tokenizer does (used by the chunker). */
  countTokens(text: string): number;
  /** Returns one L2-normalised vector per input, in order. */
  embed(texts: string[]): Promise<number[][]>;
  /**
   * True when the embedder forms its own batches from everything handed to it, whichever call it
   * came in (the local model): a caller may hand over all its texts at once, not a batch or two at a time.
   */
  readonly batchesAcrossCalls?: boolean;
  /**
   * Embeds a search query. Asymmetric retrieval models (bge, e5, nomic…) expect queries to carry an
   * instruction prefix that documents do not; callers embedding queries should prefer this over `embed`.
   */
  embedQuery?(text: string): Promise<number[]>;
  close?(): Promise<void>;
}
