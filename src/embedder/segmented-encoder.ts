/**
 * Token ids of a text assembled from the ids of its space-separated segments, each tokenized once
 * and remembered. The tokenizers of sentence-embedding models split at spaces before anything else
 * (WordPiece and BPE pre-tokenizers split there; SentencePiece's Metaspace turns each space into
 * `▁`, which begins a piece and never sits inside one), so a text's ids are its segments' ids in
 * order. Words recur across chunks of a corpus, so most segments are found in the cache, and the
 * chunker's exact measurement of every chunk costs a fraction of tokenizing it.
 *
 * This holds for a tokenizer only if it is checked: `SegmentedEncoder.forTokenizer` compares both
 * ways on sample texts and gives up (returns undefined) on any difference, and every
 * `spotCheckEvery`-th text is still compared with the tokenizer; a difference there switches the
 * encoder off for good, so a tokenizer that looked segmentable but is not costs a few wrong counts
 * at most, never a stream of wrong ids. Once `relaxAfter` checks in a row have agreed, every
 * `relaxedEvery`-th text is checked: a check tokenizes the whole text, which with the benchmark
 * model's (USE-lite's) Unigram tokenizer is ~0.7 ms for a 256-character text (115 checks were
 * 85 ms of a 300-document sync's ~700 ms on its main thread), and after thousands of agreeing
 * texts a tokenizer that does not compose has had its chances to show it.
 */
export interface IdTokenizer {
  /** The ids of `text` with special tokens when `special`, without otherwise. */
  encode(text: string, special: boolean): number[];
}

const SAMPLES = [
  'a', 'a b', 'a  b', ' a', 'a ', '  leading and trailing  ', 'Hello, world! How are you?',
  'line one\nline two\n\nnew paragraph', 'tabs\tand\tmore', 'non\u00a0breaking space', 'Ünïcödé — 東京タワー 🙂 naïve café',
  'INC-4711 v2.3.1 e-mail@example.com https://example.com/a/b?c=d', 'x'.repeat(300), 'supercalifragilisticexpialidocious antidisestablishmentarianism',
];

interface Options {
  maxEntries: number;
  /** Compare every n-th text with the tokenizer… */
  spotCheckEvery: number;
  /** …until this many comparisons have agreed… */
  relaxAfter: number;
  /** …and every n-th text after that. */
  relaxedEvery: number;
}

/** Segments up to this long are remembered (a long URL still is). */
const MAX_SEGMENT_CHARS = 256;

export class SegmentedEncoder {
  private readonly segments = new Map<string, number[]>();
  private calls = 0;
  private agreed = 0;
  private disabled = false;

  private constructor(
    private readonly tokenizer: IdTokenizer,
    /** Ids of a segment that is empty (between two spaces, or at either end): `▁` for SentencePiece, nothing for WordPiece. */
    private readonly emptySegment: number[],
    private readonly prefix: number[],
    private readonly suffix: number[],
    private readonly opts: Options,
  ) {}

  static forTokenizer(tokenizer: IdTokenizer, opts: Partial<Options> = {}): SegmentedEncoder | undefined {
    const plain = tokenizer.encode('x', false);
    const full = tokenizer.encode('x', true);
    const at = indexOfRun(full, plain);
    if (plain.length === 0 || at < 0) return undefined;
    const withSpace = tokenizer.encode('x ', false);
    if (!startsWith(withSpace, plain)) return undefined;
    const encoder = new SegmentedEncoder(tokenizer, withSpace.slice(plain.length), full.slice(0, at), full.slice(at + plain.length),
      { maxEntries: opts.maxEntries ?? 100_000, spotCheckEvery: opts.spotCheckEvery ?? 16, relaxAfter: opts.relaxAfter ?? 256, relaxedEvery: opts.relaxedEvery ?? 256 });
    for (const s of SAMPLES) if (!sameIds(encoder.assemble(s), tokenizer.encode(s, true))) return undefined;
    return encoder;
  }

  /** Whether the spot checks still trust it (false after a difference). */
  get active(): boolean {
    return !this.disabled;
  }

  /** The ids `tokenizer.encode(text, true)` gives. */
  encode(text: string): number[] {
    if (this.disabled || text === '') return this.tokenizer.encode(text, true);
    const ids = this.assemble(text);
    const every = this.agreed >= this.opts.relaxAfter ? this.opts.relaxedEvery : this.opts.spotCheckEvery;
    if (++this.calls % every === 0) {
      const truth = this.tokenizer.encode(text, true);
      if (!sameIds(ids, truth)) {
        this.disabled = true;
        this.segments.clear();
        return truth;
      }
      this.agreed++;
    }
    return ids;
  }

  private assemble(text: string): number[] {
    const ids = [...this.prefix];
    for (const segment of text.split(' ')) {
      if (segment === '') {
        for (const id of this.emptySegment) ids.push(id);
        continue;
      }
      let seg = this.segments.get(segment);
      if (seg === undefined) {
        seg = this.tokenizer.encode(segment, false);
        // Words recur; a long unbroken run (a blob the chunker cuts, measuring many prefixes of it)
        // does not, and kept it would fill the cache with megabytes of ids used once.
        if (segment.length <= MAX_SEGMENT_CHARS) {
          if (this.segments.size >= this.opts.maxEntries) this.segments.clear();
          this.segments.set(segment, seg);
        }
      }
      for (const id of seg) ids.push(id);
    }
    for (const id of this.suffix) ids.push(id);
    return ids;
  }
}

function sameIds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function startsWith(a: number[], b: number[]): boolean {
  return b.every((x, i) => a[i] === x);
}

function indexOfRun(haystack: number[], needle: number[]): number {
  for (let i = 0; i + needle.length <= haystack.length; i++) if (needle.every((x, j) => haystack[i + j] === x)) return i;
  return -1;
}
