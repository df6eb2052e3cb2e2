import { windowEnd } from '../text/cut.ts';

/**
 * How a section's text becomes chunks: cut at the largest natural boundary that fits (paragraphs,
 * then list/table lines, then sentences, then words), pack the pieces greedily up to the token
 * budget, keep a sentence that introduces a list or table (ending in ":") with what follows it,
 * and merge a fragment below a third of the budget into a neighbour of the same section. No
 * overlap: readers get neighbouring text through the widened passage instead.
 */

interface Unit {
  text: string;
  /** Put between this unit and the previous one when both land in one chunk. */
  sep: string;
  /** Must share a chunk with the next unit (an introduction and the first item of its list). */
  stickNext: boolean;
  cost: number;
}

const MIN_SHARE = 1 / 3;
const sentences = new Intl.Segmenter('en', { granularity: 'sentence' });
/** Characters of text handed to the sentence segmenter at once (see sentencesOf). */
const SENTENCE_WINDOW = 8192;

/**
 * The sentences of `text`. V8's Intl.Segmenter slows down with the length of the text it is given
 * (per character 0.5 µs at 6 KB, 1.75 µs at 85 KB; one 300 KB paragraph of 40,000 short sentences
 * took 56 s to segment), so a long text is segmented a window at a time, and the last sentence of
 * each window, which may go on past it, is segmented again at the start of the next. A sentence
 * longer than a window is passed on a window at a time, cut at a space.
 */
function sentencesOf(text: string): Iterable<{ segment: string }> {
  return text.length <= SENTENCE_WINDOW ? sentences.segment(text) : windowedSentences(text);
}

function* windowedSentences(text: string): Generator<{ segment: string }> {
  let start = 0;
  while (text.length - start > SENTENCE_WINDOW) {
    const end = windowEnd(text, start, SENTENCE_WINDOW);
    let done = start;
    let last: string | undefined;
    for (const { segment } of sentences.segment(text.slice(start, end))) {
      if (last !== undefined) {
        yield { segment: last };
        done += last.length;
      }
      last = segment;
    }
    if (done === start) {
      yield { segment: text.slice(start, end) };
      done = end;
    }
    start = done;
  }
  yield* sentences.segment(text.slice(start));
}
const LIST_OR_TABLE_LINE = /^\s*(?:[-*+]\s|\d+[.)]\s|\|)/;
const FENCE_LINE = /^\s*(?:```|~~~)/;

/** A block whose lines carry structure (list, table, code): its line breaks are boundaries. */
const isStructured = (lines: string[]) => lines.some((l) => LIST_OR_TABLE_LINE.test(l) || FENCE_LINE.test(l));

/** A list item with its continuation lines, a table row, or a line of anything else. */
function items(lines: string[]): string[] {
  const out: string[] = [];
  let inFence = false;
  for (const line of lines) {
    if (!line.trim()) continue;
    const fence = FENCE_LINE.test(line);
    const continuation = !inFence && !fence && out.length > 0 && /^\s+\S/.test(line) && !LIST_OR_TABLE_LINE.test(line);
    if (continuation) out[out.length - 1] += `\n${line}`;
    else out.push(line);
    if (fence) inFence = !inFence;
  }
  return out;
}

const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
/** A table's header row and its |---| rule belong with the first body row. */
const isTableHeader = (us: { text: string }[], i: number) => TABLE_RULE.test(us[i]!.text) || TABLE_RULE.test(us[i + 1]?.text ?? '');

function sentenceUnits(text: string, first: string, cost: (t: string) => number, budget: number): Omit<Unit, 'stickNext'>[] {
  const out: Omit<Unit, 'stickNext'>[] = [];
  for (const { segment } of sentencesOf(text)) {
    const s = segment.trim();
    if (!s) continue;
    const c = cost(s);
    if (c <= budget) {
      out.push({ text: s, sep: out.length ? ' ' : first, cost: c });
      continue;
    }
    // A sentence longer than the budget: the longest word runs that fit (a single overlong word is
    // cut later, exactly). A run's cost only grows with each word added, so its end is searched for,
    // not found by trying every word (which re-measured the run once per word).
    const words = s.split(/\s+/);
    // First guess: as many words as fit at the sentence's average cost per word; then the last run's length.
    let guess = (0.9 * words.length * budget) / c;
    for (let start = 0; start < words.length;) {
      const end = longestFitting(start + 1, words.length, (e) => cost(words.slice(start, e).join(' ')) <= budget, guess);
      guess = 0.9 * (end - start);
      const t = words.slice(start, end).join(' ');
      out.push({ text: t, sep: out.length ? ' ' : first, cost: cost(t) });
      start = end;
    }
  }
  return out;
}

/**
 * The largest n in [lo, hi] for which `fits(n)` holds, given that it holds for lo (or lo is taken
 * anyway) and, once it fails, fails for every larger n. While the range is wider than twice the
 * step, probes grow from lo (by `firstStep`, a guess a little under the answer, then twice that, …)
 * before bisecting what is left, so no probe goes past a few times the answer (or the guess). A
 * probe costs about its n: bisecting the whole range measured pieces up to hi long at every step,
 * and cutting a long text into many short pieces that way was quadratic (with the bundled model's
 * tokenizer, a 50,000-word paragraph without a sentence end took 1.9 s to chunk, and a 100 KB run
 * without spaces 259 s).
 */
export function longestFitting(lo: number, hi: number, fits: (n: number) => boolean, firstStep = 1): number {
  for (let step = Math.max(1, Math.floor(firstStep)); hi - lo > 2 * step; step *= 2) {
    const probe = lo + step;
    if (!fits(probe)) {
      hi = probe - 1;
      break;
    }
    lo = probe;
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (fits(mid)) lo = mid; else hi = mid - 1;
  }
  return lo;
}

function units(body: string, budget: number, cost: (t: string) => number): Unit[] {
  const out: Unit[] = [];
  const blocks = body.split(/\n[ \t]*\n/).map((b) => b.replace(/^\n+|\s+$/g, '')).filter((b) => b.trim());
  for (const block of blocks) {
    const sep = out.length ? '\n\n' : '';
    const c = cost(block);
    let pieces: Omit<Unit, 'stickNext'>[];
    const lines = block.split('\n');
    if (isStructured(lines)) {
      // Lists and tables are packed item by item, so an introduction can travel with its first item.
      pieces = [];
      for (const item of items(lines)) {
        const lc = cost(item);
        const first = pieces.length ? '\n' : sep;
        if (lc <= budget) pieces.push({ text: item, sep: first, cost: lc });
        else pieces.push(...sentenceUnits(item.replace(/[ \t]*\n[ \t]*/g, ' '), first, cost, budget));
      }
    } else if (c <= budget) {
      pieces = [{ text: block, sep, cost: c }];
    } else {
      // Prose, possibly hard-wrapped: sentences, with wrapped line breaks read as spaces.
      pieces = sentenceUnits(block.replace(/[ \t]*\n[ \t]*/g, ' '), sep, cost, budget);
    }
    const introduces = /:\s*$/.test(block);
    pieces.forEach((p, i) => out.push({ ...p, stickNext: introduces && i === pieces.length - 1 }));
    // Inside a block, an introducing item ("Steps:") and a table's header rows stick to what follows.
    for (let i = out.length - pieces.length; i < out.length - 1; i++) {
      if (/:\s*$/.test(out[i]!.text) || isTableHeader(out, i)) out[i]!.stickNext = true;
    }
  }
  if (out.length) out[out.length - 1]!.stickNext = false;
  return out;
}

const join = (us: Unit[]) => us.map((u, i) => (i ? u.sep : '') + u.text).join('');
const costOf = (us: Unit[]) => us.reduce((n, u) => n + u.cost, 0);

/** The section body as chunk texts, each estimated within `budget` tokens (single overlong words excepted). */
export function pack(body: string, budget: number, cost: (t: string) => number): string[] {
  const all = units(body, budget, cost);
  const groups: Unit[][] = [];
  let current: Unit[] = [];
  for (const u of all) {
    if (current.length && costOf(current) + u.cost > budget) {
      // Never end a chunk on an introduction: it moves to the next chunk with what it introduces.
      let carry: Unit[] = [];
      while (current.length > 1 && current[current.length - 1]!.stickNext) carry = [current.pop()!, ...carry];
      groups.push(current);
      current = carry;
      if (current.length && costOf(current) + u.cost > budget) {
        groups.push(current);
        current = [];
      }
    }
    current.push(u);
  }
  if (current.length) groups.push(current);

  // Fragments below a third of the budget join a neighbour when the two fit together.
  const min = budget * MIN_SHARE;
  for (let i = 0; i < groups.length; i++) {
    if (groups.length < 2 || costOf(groups[i]!) >= min) continue;
    const prev = groups[i - 1];
    const next = groups[i + 1];
    if (prev && costOf(prev) + costOf(groups[i]!) <= budget) {
      prev.push(...groups[i]!);
      groups.splice(i--, 1);
    } else if (next && costOf(next) + costOf(groups[i]!) <= budget) {
      next.unshift(...groups[i]!);
      groups.splice(i--, 1);
    } else if (prev) {
      // Neither fits whole: take units from the end of the previous chunk until the two are about even.
      while (prev.length > 1 && costOf(groups[i]!) + prev[prev.length - 1]!.cost <= costOf(prev) - prev[prev.length - 1]!.cost) {
        groups[i]!.unshift(prev.pop()!);
      }
    }
  }
  return groups.map(join).map((t) => t.trim()).filter(Boolean);
}

/**
 * Each chunk widened with whole neighbouring chunks of the same document, nearest first and
 * alternating before/after, while the passage stays within `maxChars` (a chunk alone may exceed it).
 */
export function widen(texts: string[], maxChars: number): string[] {
  return texts.map((text, i) => {
    let passage = text;
    let lo = i - 1;
    let hi = i + 1;
    for (let grew = true; grew;) {
      grew = false;
      if (lo >= 0 && passage.length + 2 + texts[lo]!.length <= maxChars) {
        passage = `${texts[lo--]}\n\n${passage}`;
        grew = true;
      }
      if (hi < texts.length && passage.length + 2 + texts[hi]!.length <= maxChars) {
        passage = `${passage}\n\n${texts[hi++]}`;
        grew = true;
      }
    }
    return passage;
  });
}
