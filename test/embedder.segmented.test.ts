import fs from 'node:fs';
import path from 'node:path';
import { AutoTokenizer } from '@huggingface/transformers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { paragraph, rng } from '../src/bench/corpus.ts';
import { SegmentedEncoder, type IdTokenizer } from '../src/embedder/segmented-encoder.ts';
import { modelAvailable, modelPath } from './support/services.ts';

/** A WordPiece-like tokenizer: [CLS] … [SEP] around one id per character, spaces dropped. */
const charTokenizer = (quirk?: (text: string) => number[] | undefined): IdTokenizer & { calls: number } => {
  const t = {
    calls: 0,
    encode(text: string, special: boolean) {
      t.calls++;
      const ids = quirk?.(text) ?? [...text].filter((c) => c !== ' ').map((c) => c.codePointAt(0)!);
      return special ? [101, ...ids, 102] : ids;
    },
  };
  return t;
};

describe('SegmentedEncoder', () => {
  it('assembles a text from its words, special tokens around, tokenizing each distinct word once', () => {
    const tok = charTokenizer();
    const enc = SegmentedEncoder.forTokenizer(tok, { spotCheckEvery: 1e9 })!;
    expect(enc).toBeDefined();
    expect(enc.encode('ab  c ')).toEqual(tok.encode('ab  c ', true));
    const before = tok.calls;
    expect(enc.encode('c ab c ab')).toEqual([101, 99, 97, 98, 99, 97, 98, 102]);
    expect(tok.calls).toBe(before);
    expect(enc.encode('')).toEqual([101, 102]);
  });

  it('keeps words, not long unbroken runs (each prefix of a blob the chunker cuts is a new one)', () => {
    const tok = charTokenizer();
    const enc = SegmentedEncoder.forTokenizer(tok, { spotCheckEvery: 1e9 })!;
    const url = `https://example.com/${'a'.repeat(230)}`;
    const blob = 'Q'.repeat(257);
    for (const text of [`see ${url}`, `see ${blob}`]) expect(enc.encode(text)).toEqual(tok.encode(text, true));
    const before = tok.calls;
    expect(enc.encode(`${url} see`)).toEqual(tok.encode(`${url} see`, true));
    expect(tok.calls).toBe(before + 1); // only the comparison above: the URL and the word were kept
    expect(enc.encode(`${blob} see`)).toEqual(tok.encode(`${blob} see`, true));
    expect(tok.calls).toBe(before + 3); // the blob was tokenized again
  });

  it('refuses a tokenizer whose ids do not compose across spaces', () => {
    // BPE-style: a word after a space is a different token from the same word at the start.
    const bpe: IdTokenizer = { encode: (text) => text.split(/(?= )/).map((w) => (w.startsWith(' ') ? 1000 : 0) + w.trim().length) };
    expect(SegmentedEncoder.forTokenizer(bpe)).toBeUndefined();
    // A merge that spans a space, but only in a text none of the samples contain.
    const sneaky = charTokenizer((t) => (t.includes('q z') ? [7] : undefined));
    const enc = SegmentedEncoder.forTokenizer(sneaky, { spotCheckEvery: 1 })!;
    expect(enc).toBeDefined();
    // The spot check sees the difference, answers with the tokenizer's ids and stops assembling.
    expect(enc.encode('q z')).toEqual([101, 7, 102]);
    expect(enc.active).toBe(false);
    expect(enc.encode('a b')).toEqual([101, 97, 98, 102]);
  });

  it('checks every n-th text until enough checks agreed, then fewer, and still stops at a difference', () => {
    const tok = charTokenizer((t) => (t.includes('q z') ? [7] : undefined));
    const enc = SegmentedEncoder.forTokenizer(tok, { spotCheckEvery: 2, relaxAfter: 3, relaxedEvery: 5 })!;
    enc.encode('w'); // the word's ids, kept
    const comparisons = () => {
      const before = tok.calls;
      enc.encode('w w');
      return tok.calls - before;
    };
    // Calls 2..10 (the first was above): compared at 2, 4, 6 (three agreeing), then only at 10.
    expect(Array.from({ length: 9 }, comparisons)).toEqual([1, 0, 1, 0, 1, 0, 0, 0, 1]);
    for (let i = 11; i < 15; i++) expect(enc.encode('q z')).toEqual([101, 113, 122, 102]); // assembled, not compared
    expect(enc.active).toBe(true);
    expect(enc.encode('q z')).toEqual([101, 7, 102]); // call 15: compared, differs
    expect(enc.active).toBe(false);
  });

  describe.runIf(modelAvailable())('with the bundled model\'s tokenizer', () => {
    it('gives exactly the tokenizer\'s ids on generated documents and arbitrary strings', async () => {
      const dir = modelPath();
      expect(fs.existsSync(path.join(dir, 'tokenizer.json'))).toBe(true);
      const tokenizer = await AutoTokenizer.from_pretrained(dir, { local_files_only: true });
      const tok: IdTokenizer = { encode: (t, special) => tokenizer.encode(t, { add_special_tokens: special }) };
      const enc = SegmentedEncoder.forTokenizer(tok, { spotCheckEvery: 1e9 })!;
      expect(enc).toBeDefined();
      const r = rng(7);
      for (let i = 0; i < 200; i++) {
        const text = `# Title ${i}\n\n${paragraph(r, 20 + (i % 80))}\n\n- item  one\n- item\ttwo `;
        expect(enc.encode(text)).toEqual(tok.encode(text, true));
      }
      const pieces = fc.array(fc.oneof(fc.constantFrom(' ', '  ', '\n', '\t', '\u00a0', ' - '), fc.string({ unit: 'grapheme', maxLength: 8 })), { maxLength: 30 });
      fc.assert(fc.property(fc.oneof(fc.string({ unit: 'grapheme', maxLength: 80 }), pieces.map((p) => p.join(''))), (s) => {
        expect(enc.encode(s)).toEqual(tok.encode(s, true));
      }), { numRuns: 1000 });
      expect(enc.active).toBe(true);
    });
  });
});
