import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { analyze, analyzeByIcu, icuWords, keywordText, MAX_TERM_LENGTH, queryTerms } from '../src/text/analyzer.ts';
import { cutAt } from '../src/text/cut.ts';

describe('the keyword analyzer', () => {
  it('stems English words, drops stop words and lower-cases', () => {
    expect(analyze('The Policies are running')).toEqual(['polici', 'run']);
    expect(analyze('policy policies')).toEqual(['polici', 'polici']);
    expect(analyze('the and of')).toEqual([]);
    expect(analyze('')).toEqual([]);
  });

  it('keeps identifiers whole as well as in parts', () => {
    const terms = analyze('Incident INC-4711 raised ERR_CONN_RESET on v2.3.1; mail alice@acme.test.');
    for (const whole of ['inc-4711', 'err_conn_reset', 'v2.3.1', 'alice@acme.test']) expect(terms).toContain(whole);
    for (const part of ['inc', '4711', 'err', 'conn', 'reset']) expect(terms).toContain(part);
    // A query for the identifier shares its whole term only with the documents that have it exactly.
    expect(queryTerms('INC-4711')).toContain('inc-4711');
    expect(analyze('INC-4712')).not.toContain('inc-4711');
    // Plain hyphenated words are searched by their parts.
    expect(analyze('state-of-the-art')).toEqual(['state', 'art']);
  });

  it('segments scripts without spaces and normalises compatibility forms', () => {
    expect(analyze('東京都の会議')).toEqual(expect.arrayContaining(['東京', '会議']));
    expect(analyze('ＩＮＣ－４７１１')).toContain('inc-4711');
    expect(analyze("the policy's scope")).toEqual(['polici', 'scope']);
  });

  // V8's segmenter slows down with the length of its input (213 KB of words: 56 s), so a long
  // text is handed to it a window at a time, cut at spaces: the words must be the same.
  it('segments long text a window at a time into the same words', () => {
    const whole = new Intl.Segmenter('en', { granularity: 'word' });
    const reference = (t: string) => [...whole.segment(t)].filter((s) => s.isWordLike).map((s) => s.segment);
    const segment = vi.spyOn(Intl.Segmenter.prototype, 'segment');
    try {
      const r = fc.sample(fc.constantFrom('naïve', 'café', 'policy’s', '東京都の会議', 'don’t', 'v2.3', 'ёлка', '🙂', 'a', '12,5'), 3_500);
      const text = r.map((w, i) => (i % 97 === 0 ? `${w}\n` : w)).join(' ').normalize('NFKC').toLowerCase();
      expect(text.length).toBeGreaterThan(15_000);
      const expected = reference(text);
      segment.mockClear();
      expect([...icuWords(text)]).toEqual(expected);
      expect(Math.max(...segment.mock.calls.map(([t]) => t.length))).toBeLessThanOrEqual(4096);
      // Without a space to cut at, a run is still cut (never inside a surrogate pair) and nothing is lost.
      const run = '𝒜é'.repeat(5_000);
      expect([...icuWords(run)].join('')).toBe(run);
    } finally {
      segment.mockRestore();
    }
  });

  it('cuts text only between whole characters', () => {
    fc.assert(fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), fc.integer({ min: -2, max: 90 }), (s, at) => {
      const n = cutAt(s, at);
      const clamped = Math.max(0, Math.min(at, s.length));
      expect([clamped, clamped - 1]).toContain(n);
      expect(s.slice(0, n)).not.toMatch(/\p{Cs}/u);
      expect(s.slice(n)).not.toMatch(/\p{Cs}/u);
    }), { numRuns: 500 });
  });

  it('cuts very long terms at the length every store keeps', () => {
    const long = `${'x'.repeat(60)}_1`;
    expect(analyze(long).every((t) => t.length <= MAX_TERM_LENGTH)).toBe(true);
  });

  it('analyses the heading path with the chunk text', () => {
    expect(analyze(keywordText({ sectionPath: ['Security', 'Breach'], text: 'Notify within 72 hours.' }))).toEqual(['secur', 'breach', 'notifi', 'within', '72', 'hour']);
    expect(queryTerms('hours hours')).toEqual(['hour']);
  });
});

describe('the ASCII path of the analyzer', () => {
  // Letters, digits and every ASCII character with a word-break role (joiners, quotes, connectors), plus a few others.
  const tricky = fc.constantFrom(...'aAbzZ09_.,;:\'"-@/#+ \t\r\n!?()[]$%&*=<>`~|\\^{}'.split(''), 'the', 'policy', "'s", 'e.g', '1,000', 'v2.3');
  const asciiText = fc.array(tricky, { maxLength: 40 }).map((parts) => parts.join(''));

  it('gives the terms ICU segmentation gives, on any ASCII text', () => {
    fc.assert(fc.property(asciiText, (text) => {
      expect(analyze(text)).toEqual(analyzeByIcu(text));
    }), { numRuns: 20_000 });
  });

  it('gives the terms ICU segmentation gives on generated prose and identifiers', () => {
    const words = fc.constantFrom('Quarterly', 'budget', 'review', "owner's", "don't", 'INC-4711', 'ERR_CONN_RESET', 'v2.3.1', 'alice@acme.test', '/srv/data', 'e.g.', '3.14', '1,000,000', 'key:value', 'a_b_c', '__init__');
    const prose = fc.array(fc.tuple(words, fc.constantFrom(' ', ', ', '. ', '\n', ' - ', ': ', '; ')), { maxLength: 30 })
      .map((ws) => ws.map(([w, sep]) => w + sep).join(''));
    fc.assert(fc.property(prose, (text) => {
      expect(analyze(text)).toEqual(analyzeByIcu(text));
    }), { numRuns: 5_000 });
  });

  it('leaves text with any non-ASCII character to ICU', () => {
    for (const text of ['naïve café', 'policy’s owner', 'Ｆｕｌｌｗｉｄｔｈ text', '東京 office', 'a\u00a0b', 'lone \ud800 surrogate']) expect(analyze(text)).toEqual(analyzeByIcu(text));
  });
});
