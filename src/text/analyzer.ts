import { stemmer } from 'stemmer';
import { eng as ENGLISH_STOP_WORDS } from 'stopword';
import { windowEnd } from './cut.ts';

/**
 * The one text analyzer of the keyword channel, used when a chunk is indexed and when a query is
 * searched, by every store (the in-memory BM25, LanceDB's full-text index over the analyzed terms,
 * Qdrant's sparse vectors). Identical analysis on both sides is what makes a term match at all, so
 * no store tokenizes on its own.
 *
 * - Words: Unicode word segmentation (UAX #29 via Intl.Segmenter), lower-cased, NFKC-normalised.
 * - English: Porter stemming (`stemmer`) of plain Latin words, the `stopword` English list dropped.
 * - Identifiers: ticket numbers, error codes, versions, emails, paths (`INC-4711`, `ERR_CONN_RESET`,
 *   `v2.3.1`, `alice@acme.test`) are kept whole as one unstemmed term, in addition to their parts, so
 *   an exact identifier outranks documents that merely share a part of it.
 */

/** Longest term kept; longer ones are cut. LanceDB's tokenizer drops tokens above its limit, so every store cuts here. */
export const MAX_TERM_LENGTH = 40;

const STOP = new Set(ENGLISH_STOP_WORDS.map((w) => w.toLowerCase()));
const segmenter = new Intl.Segmenter('en', { granularity: 'word' });
/** Letters/digits joined by connectors: the shape of codes, versions, emails and paths. */
const COMPOUND = /[\p{L}\p{N}]+(?:[-_.@/+#:][\p{L}\p{N}]+)+/gu;
/** A compound is an identifier (worth a term of its own) when it has a digit, an underscore or an @. */
const IDENTIFIER_MARK = /[\p{N}_@]/u;
const PART_SPLIT = /[._]+/;
const LATIN_WORD = /^[a-z]+$/;

const cut = (t: string) => (t.length > MAX_TERM_LENGTH ? t.slice(0, MAX_TERM_LENGTH) : t);

function wordTerm(part: string): string | null {
  if (!part || STOP.has(part)) return null;
  return cut(LATIN_WORD.test(part) ? stemmer(part) : part);
}

/**
 * The terms of a text in order of appearance, with repeats (term frequency counts). The same
 * function analyses documents and queries.
 */
export function analyze(text: string): string[] {
  return analyzeWith(text, words);
}

/** analyze() with every text segmented by ICU, the reference the ASCII path is tested against. */
export function analyzeByIcu(text: string): string[] {
  return analyzeWith(text, icuWords);
}

function analyzeWith(text: string, segment: (normal: string) => Iterable<string>): string[] {
  if (typeof text !== 'string' || !text) return [];
  const normal = text.normalize('NFKC').toLowerCase();
  const out: string[] = [];
  for (const m of normal.matchAll(COMPOUND)) {
    const whole = m[0].replace(/[.:]+$/, '');
    if (IDENTIFIER_MARK.test(whole)) out.push(cut(whole));
  }
  for (const word of segment(normal)) {
    let terms = wordTerms.get(word);
    if (!terms) {
      terms = termsOfWord(word);
      if (wordTerms.size >= WORD_TERMS_ENTRIES) wordTerms.clear();
      wordTerms.set(word, terms);
    }
    for (const t of terms) out.push(t);
  }
  return out;
}

function termsOfWord(segment: string): string[] {
  // Possessives and elisions: "policy's" is "policy", "don't" is "dont".
  const word = segment.replace(/['’]s$/, '').replace(/['’]/g, '');
  const out: string[] = [];
  for (const part of word.split(PART_SPLIT)) {
    const term = wordTerm(part);
    if (term) out.push(term);
  }
  return out;
}

/**
 * Words recur (a vocabulary is small next to a corpus), so each one's terms are kept; a few MB at most.
 */
const wordTerms = new Map<string, string[]>();
const WORD_TERMS_ENTRIES = 50_000;

/**
 * Characters handed to ICU at once. V8's Intl.Segmenter slows down with the length of its input
 * (47 KB of words took 0.17 s, 213 KB 56 s), so a longer text is segmented a window at a time, cut
 * at a space, which no word spans: the words are the same.
 */
const ICU_WINDOW = 4096;

export function* icuWords(normal: string): Iterable<string> {
  // A window without a space is cut anyway: a term is at most MAX_TERM_LENGTH.
  for (let start = 0; start < normal.length;) {
    const end = windowEnd(normal, start, ICU_WINDOW);
    for (const s of segmenter.segment(normal.slice(start, end))) if (s.isWordLike) yield s.segment;
    start = end;
  }
}

/**
 * UAX #29 words of ASCII text, without ICU (whose segment objects were two thirds of the
 * analyzer's time): runs of letters, digits and `_`, joined across `.`, `'` and `:` between two
 * letters and across `.`, `'`, `,` and `;` between two digits (rules WB5-WB13b; ASCII has no
 * Extend, Format, Katakana or Hebrew letters). ICU calls a run of underscores alone word-like or
 * not depending on its length; either way it gives no term. Anything outside ASCII goes to ICU.
 */
const ASCII_WORD = /[a-z0-9_]+(?:(?:(?<=[a-z])[.:'](?=[a-z])|(?<=[0-9])[.,;'](?=[0-9]))[a-z0-9_]+)*/g;
/** Any character past ASCII (a range from U+0080, so the pattern holds no control character). */
const NON_ASCII = /[\u0080-\u{10ffff}]/u;

function words(normal: string): Iterable<string> {
  if (NON_ASCII.test(normal)) return icuWords(normal);
  return normal.match(ASCII_WORD) ?? [];
}

/** Distinct query terms (a query repeating a word does not weigh it twice). */
export function queryTerms(query: string): string[] {
  return [...new Set(analyze(query))];
}

/** Term → count for one text. */
export function termFrequencies(text: string): Map<string, number> {
  const tf = new Map<string, number>();
  for (const t of analyze(text)) tf.set(t, (tf.get(t) ?? 0) + 1);
  return tf;
}

/**
 * What the keyword channel indexes for a chunk: its heading path (the document's title and
 * section headings, which BM25 benefits from like a title field) and its text.
 */
export function keywordText(chunk: { sectionPath: readonly string[]; text: string }): string {
  return chunk.sectionPath.length ? `${chunk.sectionPath.join('\n')}\n${chunk.text}` : chunk.text;
}

/** BM25 parameters shared by the stores that compute term weights themselves (LanceDB uses the same defaults). */
export const BM25 = { k1: 1.2, b: 0.75 } as const;
