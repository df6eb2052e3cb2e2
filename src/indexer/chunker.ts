import { cutAt, shortened } from '../text/cut.ts';
import { longestFitting, pack, widen } from './packing.ts';

export interface ChunkInput {
  text: string;
  /** From extractText: `markdown`, `html` and `docx` text has `#` headings; anything else is flat. */
  format: string;
  title?: string;
}

export interface ChunkOptions {
  /** Hard limit: no chunk's embedding text (context line + text) exceeds this many tokens. */
  maxTokens: number;
  /** The embedder's own token count, so the limit is measured the way the model measures it. */
  countTokens: (text: string) => number;
  /**
   * Preferred chunk size. Retrieval works best on passages of a few hundred tokens, so models with
   * huge windows (8k) still get modest chunks. Default min(maxTokens, 512).
   */
  targetTokens?: number;
  /**
   * Characters of the readable passage returned with a chunk (`passage`): the chunk widened with
   * neighbouring text of the document. Default 1,500.
   */
  passageChars?: number;
}

export interface Chunk {
  /** The passage itself, for display. */
  text: string;
  /** Headings above the passage, outermost first. */
  sectionPath: string[];
  index: number;
  /**
   * The breadcrumb ("Title > Section > Subsection") placed before the text when embedding, already
   * shortened so that the whole embedding text fits the model.
   */
  context: string;
  /** The chunk widened with its neighbours' text, up to `passageChars`: what a reader is shown. */
  passage: string;
}

const STRUCTURED = new Set(['markdown', 'html', 'docx']);
/** The breadcrumb may take at most this share of the model's window; the passage gets the rest. */
const MAX_CONTEXT_SHARE = 0.3;
/**
 * More characters per token than text holds. A chunk is at most its target in tokens times this
 * many characters: WordPiece reads any word over 100 characters as one unknown token, so a megabyte
 * without spaces would otherwise "fit" one chunk, which the model sees as a single token. A piece
 * longer than that is cut without being measured whole first.
 */
const MAX_CHARS_PER_TOKEN = 32;
/** Words longer than this are estimated in pieces of this many characters. */
const LONG_WORD_PIECE = 256;

/** The text that is embedded for a chunk: its context line, a blank line, then the passage. */
export function embeddingText(title: string | undefined, chunk: { text: string; sectionPath: string[]; context?: string }): string {
  const context = chunk.context ?? breadcrumb(title, chunk.sectionPath);
  return context ? `${context}\n\n${chunk.text}` : chunk.text;
}

function breadcrumb(title: string | undefined, sectionPath: string[]): string {
  const parts = contextParts(title, sectionPath);
  return parts.join(' > ');
}

function contextParts(title: string | undefined, sectionPath: string[]): string[] {
  const t = title?.replace(/\s+/g, ' ').trim();
  // A Markdown file often repeats its title as the first heading; say it once.
  const path = t && sectionPath[0]?.toLowerCase() === t.toLowerCase() ? sectionPath.slice(1) : sectionPath;
  return [...(t ? [t] : []), ...path].filter(Boolean);
}

/**
 * Splits a document into passages that each fit the embedding model, following its headings where
 * it has them so each passage knows its section. Empty documents give no chunks.
 */
export async function chunkDocument(doc: ChunkInput, opts: ChunkOptions): Promise<Chunk[]> {
  const { maxTokens } = opts;
  if (!Number.isInteger(maxTokens) || maxTokens < 8) throw new Error(`maxTokens must be an integer ≥ 8, got ${maxTokens}`);
  const count = memoise(opts.countTokens);
  // What an empty input already costs (special tokens, instruction prefixes); pieces are measured without it.
  const overhead = count('');
  const estimate = wordSumEstimate(count, overhead);
  const target = Math.min(maxTokens, opts.targetTokens ?? 512);

  const chunks: Omit<Chunk, 'passage'>[] = [];
  const contexts = new Map<string, string>();
  for (const section of sections(doc.text, STRUCTURED.has(doc.format))) {
    const key = section.path.join('\u0000');
    let context = contexts.get(key);
    if (context === undefined) {
      context = fitContext(contextParts(doc.title, section.path), maxTokens, count);
      contexts.set(key, context);
    }
    const contextCost = context ? estimate(context) : 0;
    const budget = Math.max(1, Math.min(target, maxTokens - overhead) - contextCost);
    // Summed word counts run up to ~10% under the count of the joined text (measured on the sample
    // corpus with the bundled model), so pieces are packed with that margin and rarely need cutting.
    // A tokenizer that maps unknown scripts to few tokens must not make kilobyte chunks: at most ~6
    // characters count as one token when packing.
    for (const piece of pack(section.body, Math.max(1, Math.floor(budget * 0.9)), (t) => Math.max(estimate(t), Math.ceil(t.length / 6)))) {
      for (const text of enforceLimit(piece, context, maxTokens, target * MAX_CHARS_PER_TOKEN, count)) {
        chunks.push({ text, sectionPath: section.path, index: chunks.length, context });
      }
    }
  }
  const passages = widen(chunks.map((c) => c.text), opts.passageChars ?? 1500);
  return chunks.map((c, i) => ({ ...c, passage: passages[i]! }));
}

/**
 * The splitter measures pieces one by one, and tokenizers do not add up exactly across joins, so every
 * chunk is measured as it will be embedded; one that is over is cut at the longest prefix that fits.
 */
function enforceLimit(piece: string, context: string, maxTokens: number, maxChars: number, count: (t: string) => number): string[] {
  const fits = (t: string) => count(embeddingText(undefined, { text: t, sectionPath: [], context })) <= maxTokens;
  const out: string[] = [];
  let rest = piece.trim();
  // How long the last cut was: the pieces of a long run are about the same length.
  let lastCut = 0;
  while (rest) {
    // A piece is measured whole only when it could be one chunk: what is left of a long unbroken
    // word (a base64 blob, say) is cut a chunk at a time, and measuring all of it before every cut
    // was quadratic in its length.
    const measured = rest.length <= maxChars;
    if (measured && fits(rest)) {
      out.push(rest);
      break;
    }
    // At least one character: one over the limit cannot be split further, and the model truncates it.
    // A piece that was measured whole is bisected (a first step of half the range); a long run is
    // searched from about where the last cut was.
    const hi = measured ? rest.length - 1 : maxChars;
    const best = longestFitting(1, hi, (n) => fits(rest.slice(0, n)), measured ? hi / 2 : 0.9 * lastCut);
    // Prefer ending at whitespace when that keeps at least half the piece.
    const space = rest.slice(0, best).search(/\s\S*$/);
    // Never between the halves of a surrogate pair (a pair alone over the limit stays whole).
    const cut = space > best / 2 ? space : cutAt(rest, best) || Math.min(2, rest.length);
    const head = rest.slice(0, cut).trim();
    if (head) out.push(head);
    rest = rest.slice(cut).trim();
    lastCut = cut;
  }
  return out;
}

/** Drops middle headings, then the title, then shortens what is left, until the breadcrumb is small enough. */
function fitContext(parts: string[], maxTokens: number, count: (t: string) => number): string {
  const limit = Math.floor(maxTokens * MAX_CONTEXT_SHARE);
  const overhead = count('');
  const cost = (s: string) => count(`${s}\n\n`) - overhead;
  let current = [...parts];
  while (current.length > 0) {
    const s = current.join(' > ');
    // Far too long to fit is not measured (a heading of a megabyte would be tokenized whole).
    if (s.length <= limit * MAX_CHARS_PER_TOKEN && cost(s) <= limit) return s;
    if (current.length > 2) current = [current[0], ...current.slice(2)];
    else if (current.length === 2) current = [current[1]];
    else break;
  }
  const last = current[0] ?? '';
  const lo = longestFitting(0, last.length, (n) => cost(`${last.slice(0, n)}…`) <= limit);
  return lo > 0 ? shortened(last, lo) : '';
}

/**
 * Sizes pieces as the sum of their whitespace-separated words' token counts, each word counted once
 * and remembered. Tokenizers split on whitespace before anything else (WordPiece, Metaspace), so this
 * matches the real count closely at a fraction of the cost of re-tokenizing every candidate merge;
 * enforceLimit then measures each finished chunk exactly.
 */
function wordSumEstimate(count: (t: string) => number, overhead: number): (t: string) => number {
  // split, not matchAll(/\S+/g): the packer estimates every candidate piece, and a match object
  // per word was a sixth of what a sync allocated on its main thread.
  return (t) => {
    let n = 0;
    for (const word of t.split(/\s+/)) {
      if (word.length <= LONG_WORD_PIECE) n += Math.max(0, count(word) - overhead);
      // A long unbroken run (a data: URI, a base64 blob) is measured a piece at a time: whole, one
      // tokenization of a megabyte took seconds and overflowed the tokenizer's stack.
      else for (let i = 0; i < word.length; i += LONG_WORD_PIECE) n += Math.max(0, count(word.slice(i, i + LONG_WORD_PIECE)) - overhead);
    }
    return n;
  };
}

function memoise(fn: (t: string) => number): (t: string) => number {
  const cache = new Map<string, number>();
  return (t) => {
    let n = cache.get(t);
    if (n === undefined) {
      n = fn(t);
      if (cache.size > 50_000) cache.clear();
      cache.set(t, n);
    }
    return n;
  };
}

interface Section { path: string[]; body: string }

const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const ATX = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const SETEXT = /^ {0,3}(=+|-+)[ \t]*$/;
const NOT_SETEXT_TEXT = /^\s*$|^ {0,3}(?:[-*+][ \t]|\d+[.)][ \t]|>|\||#)/;

/** Markdown headings (ATX and setext, outside code fences) cut the text into sections with heading paths. */
export function sections(text: string, structured: boolean): Section[] {
  if (!structured) return text.trim() ? [{ path: [], body: text.trim() }] : [];
  const out: Section[] = [];
  const stack: Array<{ level: number; text: string }> = [];
  let body: string[] = [];
  let fence: string | null = null;
  const flush = () => {
    const b = body.join('\n').trim();
    if (b) out.push({ path: stack.map((h) => h.text), body: b });
    body = [];
  };
  const open = (level: number, heading: string) => {
    flush();
    while (stack.length && stack[stack.length - 1].level >= level) stack.pop();
    const clean = cleanHeading(heading);
    if (clean) stack.push({ level, text: clean });
  };
  for (const line of text.split('\n')) {
    const f = FENCE.exec(line);
    if (fence) {
      if (f && f[1][0] === fence[0] && f[1].length >= fence.length && line.trim() === f[1]) fence = null;
      body.push(line);
      continue;
    }
    if (f) {
      fence = f[1];
      body.push(line);
      continue;
    }
    const atx = ATX.exec(line);
    if (atx) {
      open(atx[1].length, atx[2] ?? '');
      continue;
    }
    const prev = body[body.length - 1];
    // An underline directly below a paragraph line is a setext heading; below a blank line it is a rule.
    if (SETEXT.test(line) && prev !== undefined && !NOT_SETEXT_TEXT.test(prev)) {
      body.pop();
      open(line.trim()[0] === '=' ? 1 : 2, prev);
      continue;
    }
    body.push(line);
  }
  flush();
  return out;
}

/**
 * Longest heading kept in a section path. The path goes with every chunk of the section (its
 * stored payload, its keyword terms, search results), so a "heading" of a whole file's text would
 * be copied into each of them.
 */
const MAX_HEADING_CHARS = 300;

/** Heading text without Markdown decoration: links and images keep their text, emphasis and code marks go. */
function cleanHeading(s: string): string {
  const clean = s
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/(\*\*|__|`)/g, '')
    .replace(/(^|\s)[*_]+|[*_]+(?=\s|$)/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
  if (clean.length <= MAX_HEADING_CHARS) return clean;
  return shortened(clean, MAX_HEADING_CHARS);
}
