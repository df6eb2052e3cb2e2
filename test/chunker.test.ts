import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FakeEmbedder } from './fakes/embedder.ts';
import { LocalEmbedder } from '../src/embedder/local.ts';
import { chunkDocument, embeddingText, sections, type Chunk } from '../src/indexer/chunker.ts';
import { longestFitting, pack } from '../src/indexer/packing.ts';
import { modelAvailable, modelPath } from './support/services.ts';

const MODEL_DIR = modelPath();
const haveModel = modelAvailable();

const fake = new FakeEmbedder({ maxTokens: 128 });
const fakeOpts = { maxTokens: 128, countTokens: (t: string) => fake.countTokens(t) };

const sentence = (i: number) => `Sentence ${i} explains how parental leave is requested, approved and recorded.`;
const paragraph = (from: number, n: number) => Array.from({ length: n }, (_, i) => sentence(from + i)).join(' ');

describe('chunkDocument structure', () => {
  it('gives no chunks for empty or blank documents', async () => {
    for (const text of ['', '   \n\n\t ']) {
      expect(await chunkDocument({ text, format: 'text', title: 'Empty' }, fakeOpts)).toEqual([]);
      expect(await chunkDocument({ text, format: 'markdown' }, fakeOpts)).toEqual([]);
    }
    expect(await chunkDocument({ text: '# Only a heading\n\n## And another', format: 'markdown' }, fakeOpts)).toEqual([]);
  });

  it('follows markdown headings (ATX and setext), ignoring # lines inside code fences', async () => {
    const md = [
      'Preamble before any heading.',
      '# Handbook', 'Welcome.',
      '## Leave', 'Annual leave is 25 days.',
      '### Parental *leave*', 'Sixteen weeks, fully paid.',
      '## [Expenses](https://x.test/e)', 'Claim within 30 days.',
      '```', '# not a heading', '```',
      'Benefits', '========', 'Pension and health cover.',
      'Travel', '------', 'Book via the portal.',
    ].join('\n\n').replace('Benefits\n\n========', 'Benefits\n========').replace('Travel\n\n------', 'Travel\n------');
    const chunks = await chunkDocument({ text: md, format: 'markdown', title: 'Acme' }, fakeOpts);
    expect(chunks.map((c) => [c.sectionPath, c.text])).toEqual([
      [[], 'Preamble before any heading.'],
      [['Handbook'], 'Welcome.'],
      [['Handbook', 'Leave'], 'Annual leave is 25 days.'],
      [['Handbook', 'Leave', 'Parental leave'], 'Sixteen weeks, fully paid.'],
      [['Handbook', 'Expenses'], 'Claim within 30 days.\n\n```\n\n# not a heading\n\n```'],
      [['Benefits'], 'Pension and health cover.'],
      [['Benefits', 'Travel'], 'Book via the portal.'],
    ]);
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('does not read headings into flat formats', async () => {
    const chunks = await chunkDocument({ text: '# literally a hash\nplain text', format: 'pdf' }, fakeOpts);
    expect(chunks).toHaveLength(1);
    expect(chunks[0]).toMatchObject({ sectionPath: [], text: '# literally a hash\nplain text' });
  });

  it('prefixes the title and section path for embedding, keeps the raw text for display', async () => {
    const [c] = await chunkDocument({ text: '# Leave\n\n## Parental\n\nSixteen weeks.', format: 'markdown', title: 'Employee Handbook' }, fakeOpts);
    expect(c.text).toBe('Sixteen weeks.');
    expect(embeddingText('Employee Handbook', c)).toBe('Employee Handbook > Leave > Parental\n\nSixteen weeks.');
    // The first heading repeating the title is said once.
    const [d] = await chunkDocument({ text: '# Employee Handbook\n\nHello.', format: 'markdown', title: 'Employee Handbook' }, fakeOpts);
    expect(embeddingText('Employee Handbook', d)).toBe('Employee Handbook\n\nHello.');
    // Chunks made elsewhere (no fitted context) get the same breadcrumb.
    expect(embeddingText('T', { text: 'x', sectionPath: ['A', 'B'] })).toBe('T > A > B\n\nx');
    expect(embeddingText(undefined, { text: 'x', sectionPath: [] })).toBe('x');
  });

  it('splits long sections at sentence boundaries without overlap and loses no text', async () => {
    const text = `# Policy\n\n${paragraph(0, 10)}\n\n${paragraph(10, 10)}`;
    const chunks = await chunkDocument({ text, format: 'markdown', title: 'Leave' }, fakeOpts);
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(fake.countTokens(embeddingText('Leave', c))).toBeLessThanOrEqual(128);
    expect(chunks.map((c) => c.text).join(' ').replace(/\s+/g, ' ')).toBe(`${paragraph(0, 10)} ${paragraph(10, 10)}`);
    for (const c of chunks) expect(c.text).toMatch(/^Sentence \d+ .*recorded\.$/s);
  });

  it('keeps a sentence introducing a list or table with it, and merges fragments within a section', async () => {
    const table = ['| Severity | Definition | Response |', '| --- | --- | --- |',
      ...Array.from({ length: 6 }, (_, i) => `| SEV${i} | ${'customers cannot book shipments '.repeat(2)}| page the on-call within ${i * 5} minutes |`)].join('\n');
    const text = `# Runbook\n\n## Declare\n\n${paragraph(0, 3)}\n\n1. Run the bot in the incidents channel.\n2. Pick a severity:\n\n${table}\n\nShort tail.`;
    const chunks = await chunkDocument({ text, format: 'markdown', title: 'Runbook' }, fakeOpts);
    const intro = chunks.find((c) => c.text.includes('Pick a severity:'))!;
    expect(intro.text).toContain('| Severity | Definition | Response |\n| --- | --- | --- |\n| SEV0 |');
    expect(chunks.some((c) => c.text === 'Short tail.')).toBe(false);
    expect(chunks.filter((c) => /^\| ---/.test(c.text))).toEqual([]);
    for (const c of chunks) expect(fake.countTokens(embeddingText('Runbook', c))).toBeLessThanOrEqual(128);
    // List items with wrapped continuation lines stay whole.
    const list = `# L\n\n${Array.from({ length: 12 }, (_, i) => `${i + 1}. **Step ${i}** — do the thing number ${i} carefully and\n   write down what happened in the tracker.`).join('\n')}`;
    for (const c of await chunkDocument({ text: list, format: 'markdown' }, fakeOpts)) {
      expect(c.text).toMatch(/^1?\d\. \*\*Step/);
      expect(c.text).toMatch(/tracker\.$/);
    }
  });

  it('gives each chunk a passage widened with its neighbours, within the configured size', async () => {
    const text = `# Policy\n\n${paragraph(0, 40)}`;
    const chunks = await chunkDocument({ text, format: 'markdown', title: 'Leave' }, { ...fakeOpts, passageChars: 600 });
    expect(chunks.length).toBeGreaterThan(4);
    for (const [i, c] of chunks.entries()) {
      expect(c.passage).toContain(c.text);
      expect(c.passage.length).toBeLessThanOrEqual(Math.max(600, c.text.length));
      if (i > 0 && c.text.length + chunks[i - 1]!.text.length + 2 <= 600) expect(c.passage).toContain(chunks[i - 1]!.text);
    }
    const whole = await chunkDocument({ text, format: 'markdown', title: 'Leave' }, fakeOpts);
    expect(Math.max(...whole.map((c) => c.passage.length))).toBeLessThanOrEqual(1500);
    expect(whole[2]!.passage.length).toBeGreaterThan(whole[2]!.text.length + 100);
    const none = await chunkDocument({ text, format: 'markdown', title: 'Leave' }, { ...fakeOpts, passageChars: 0 });
    for (const c of none) expect(c.passage).toBe(c.text);
  });

  it('keeps chunks near the target size even when the model allows far more', async () => {
    const big = new FakeEmbedder({ maxTokens: 8191 });
    const chunks = await chunkDocument({ text: paragraph(0, 200), format: 'text' }, { maxTokens: 8191, countTokens: (t) => big.countTokens(t) });
    expect(chunks.length).toBeGreaterThan(4);
    for (const c of chunks) expect(big.countTokens(c.text)).toBeLessThanOrEqual(512);
  });

  it('parses sections without a model', () => {
    expect(sections('Title\n===\nbody\n\n---\n\nafter rule', true)).toEqual([{ path: ['Title'], body: 'body\n\n---\n\nafter rule' }]);
  });
});

/** `n` characters of something like base64: no spaces, and no run of it recurring soon. */
const blob = (n: number) => Array.from({ length: n }, (_, i) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'[(i * 37 + (i >> 3)) % 64]).join('');

describe('chunkDocument on long text without boundaries', () => {
  /** Chunks `text` with the fake tokenizer, checking the limit and that no text is lost; returns the characters it measured. */
  const measuredChars = async (text: string, rejoin: (texts: string[]) => string) => {
    let chars = 0;
    const countTokens = (t: string) => { chars += t.length; return fake.countTokens(t); };
    const chunks = await chunkDocument({ text, format: 'text' }, { maxTokens: 128, countTokens });
    for (const c of chunks) expect(fake.countTokens(embeddingText(undefined, c))).toBeLessThanOrEqual(128);
    expect(rejoin(chunks.map((c) => c.text))).toBe(text);
    return { chars, chunks: chunks.length };
  };
  const words = (n: number) => Array.from({ length: n }, (_, i) => ['review', 'the', 'quarterly', 'access', 'grants', 'of', 'vendor', 'accounts'][(i * 5) % 8]).join(' ');

  // Four times the text must cost about four times the measuring: cutting it by searching over all
  // that is left (the old way) measured 12-13 times as much.
  it('measures about linearly much of a paragraph that never ends a sentence', async () => {
    // The packer sizes word runs with its own estimate (summed word counts), so it is measured there.
    const packed = (text: string) => {
      let chars = 0;
      const pieces = pack(text, 100, (t) => { chars += t.length; return t.split(' ').length; });
      expect(pieces.join(' ')).toBe(text);
      for (const p of pieces) expect(p.split(' ').length).toBeLessThanOrEqual(100);
      return { chars, pieces: pieces.length };
    };
    const small = packed(words(4_000));
    const large = packed(words(16_000));
    expect(large.pieces).toBeGreaterThan(3.5 * small.pieces);
    expect(large.chars / small.chars).toBeLessThan(6);
    // And end to end, with the chunker's exact measurement of every chunk.
    const doc = await measuredChars(words(16_000), (ts) => ts.join(' '));
    expect(doc.chunks).toBeGreaterThan(150);
  });

  // V8's sentence segmenter slows down with the length of its input (one 300 KB paragraph of short
  // sentences: 56 s), so it is only ever given a window of a long paragraph.
  it('splits a paragraph of thousands of sentences at sentence ends, segmenting it a window at a time', async () => {
    const text = Array.from({ length: 30_000 }, (_, i) => `Rule ${i} applies.`).join(' ');
    const segment = vi.spyOn(Intl.Segmenter.prototype, 'segment');
    try {
      const { chunks } = await measuredChars(text, (ts) => ts.join(' '));
      expect(chunks).toBeGreaterThan(1000);
      expect(Math.max(...segment.mock.calls.map(([t]) => t.length))).toBeLessThanOrEqual(8192);
      const pieces = await chunkDocument({ text, format: 'text' }, fakeOpts);
      for (const c of pieces) expect(c.text).toMatch(/^Rule \d+ applies\.( Rule \d+ applies\.)*$/);
    } finally {
      segment.mockRestore();
    }
  });

  it('keeps chunks to a bounded length even where a tokenizer reads a long run as one unknown token', async () => {
    // WordPiece: a word over 100 characters is one [UNK]; everything would fit one "chunk".
    const wordPiece = (t: string) => 2 + t.split(/\s+/).filter(Boolean).reduce((n, w) => n + (w.length > 100 ? 1 : Math.ceil(w.length / 4)), 0);
    const run = 'é'.repeat(100_000);
    const chunks = await chunkDocument({ text: `Intro.\n\n${run}`, format: 'text' }, { maxTokens: 128, countTokens: wordPiece });
    expect(chunks.map((c) => c.text).join('')).toBe(`Intro.${run}`);
    expect(Math.max(...chunks.map((c) => c.text.length))).toBeLessThanOrEqual(128 * 32);
    expect(chunks.length).toBeGreaterThanOrEqual(100_000 / (128 * 32));
  });

  it('never cuts between the halves of a surrogate pair, with or without spaces', async () => {
    for (const text of ['𝒜'.repeat(20_000), `${'𝒜'.repeat(8_191)}x${'𝒜'.repeat(9_000)}`, Array.from({ length: 4_000 }, (_, i) => '𝒜'.repeat(1 + (i % 9))).join(' ')]) {
      const chunks = await chunkDocument({ text, format: 'text' }, fakeOpts);
      expect(chunks.length).toBeGreaterThan(1);
      for (const c of chunks) expect(c.text).not.toMatch(/\p{Cs}/u); // a lone surrogate
      expect(chunks.map((c) => c.text).join(text.includes(' ') ? ' ' : '')).toBe(text);
    }
    // A pair that alone is over the limit is kept whole rather than split.
    expect((await chunkDocument({ text: '𝒜', format: 'text' }, { maxTokens: 8, countTokens: () => 9 })).map((c) => c.text)).toEqual(['𝒜']);
  });

  it('loses and repeats no text of long paragraphs, whatever their sentences', async () => {
    const word = fc.stringMatching(/^[A-Za-z0-9]{1,12}[.!?,;:]?$/);
    await fc.assert(fc.asyncProperty(fc.array(word, { minLength: 1_000, maxLength: 6_000 }), async (words) => {
      const text = words.join(' ');
      const chunks = await chunkDocument({ text, format: 'text' }, fakeOpts);
      expect(chunks.map((c) => c.text).join(' ')).toBe(text);
      for (const c of chunks) expect(fake.countTokens(c.text)).toBeLessThanOrEqual(128);
    }), { numRuns: 15 });
  });

  it('measures about linearly much of one long unbroken word, cutting it into pieces that fit', async () => {
    const small = await measuredChars(blob(20_000), (ts) => ts.join(''));
    const large = await measuredChars(blob(80_000), (ts) => ts.join(''));
    expect(large.chunks).toBeGreaterThan(3.5 * small.chunks);
    expect(large.chars / small.chars).toBeLessThan(6);
  });
});

describe('longestFitting', () => {
  it('finds the last fitting n of a monotone test, never probing far past it', () => {
    fc.assert(fc.property(
      fc.nat(1_000), fc.nat(200_000), fc.integer({ min: -10, max: 250_000 }),
      (lo, span, threshold) => {
        const hi = lo + span;
        const probes: number[] = [];
        const n = longestFitting(lo, hi, (k) => { probes.push(k); return k <= threshold; });
        expect(n).toBe(Math.min(hi, Math.max(lo, threshold)));
        for (const k of probes) expect(k).toBeLessThanOrEqual(lo + 3 * (n - lo) + 2);
        expect(probes.length).toBeLessThanOrEqual(2 * Math.log2(n - lo + 2) + 3);
      },
    ), { numRuns: 500 });
  });
});

describe.runIf(haveModel)('chunkDocument with the real tokenizer (128 tokens)', () => {
  let e: LocalEmbedder;
  beforeAll(async () => { e = await LocalEmbedder.create({ modelPath: MODEL_DIR }); });
  afterAll(async () => { await e?.close(); });

  const check = async (text: string, format: string, title?: string): Promise<Chunk[]> => {
    const chunks = await chunkDocument({ text, format, title }, { maxTokens: e.maxTokens, countTokens: (t) => e.countTokens(t) });
    for (const c of chunks) {
      const n = e.countTokens(embeddingText(title, c));
      expect(n, JSON.stringify(embeddingText(title, c)).slice(0, 200)).toBeLessThanOrEqual(128);
      expect(c.text.trim()).not.toBe('');
    }
    return chunks;
  };

  it('keeps every embedding text within 128 tokens on awkward inputs', async () => {
    const longTitle = 'Quarterly Operating Review and Forward-Looking Financial Planning Memorandum '.repeat(6);
    const deep = Array.from({ length: 6 }, (_, i) => `${'#'.repeat(i + 1)} Section level ${i + 1} with a rather long descriptive heading text`).join('\n\n');
    const inputs: Array<[string, string, string | undefined]> = [
      [paragraph(0, 40), 'text', 'Leave'],
      [`${deep}\n\n${paragraph(0, 15)}`, 'markdown', longTitle],
      ['x'.repeat(5000), 'text', 'No spaces'],
      ['https://example.com/' + 'a1b2c3/'.repeat(600), 'text', undefined],
      ['東京都の従業員は年次休暇を二十五日取得できます。'.repeat(60), 'text', '休暇規程'],
      ['🙂🚀✨ '.repeat(400), 'markdown', 'Emoji'],
      [Array.from({ length: 300 }, (_, i) => `| ${i} | ${i * 7} | value-${i} |`).join('\n'), 'markdown', 'Table'],
    ];
    for (const [text, format, title] of inputs) {
      const chunks = await check(text, format, title);
      expect(chunks.length).toBeGreaterThan(1);
    }
  });

  // A document with an image inlined as a data: URI, or a heading of a whole file's text: measured
  // whole, such runs took minutes to cut (a 100 KB one: 259 s) or overflowed the tokenizer's stack.
  it('cuts megabyte runs without spaces, in a paragraph and in a heading, into chunks that fit', async () => {
    const b64 = blob(1_200_000);
    const image = `![diagram](data:image/png;base64,${b64})`;
    const chunks = await check(`# Architecture\n\nThe diagram:\n\n${image}\n\nThe end.`, 'markdown', 'Design');
    expect(chunks.map((c) => c.text).join('')).toContain(b64);
    const headed = await check(`# ${b64.slice(0, 300_000)}\n\nBody text under a heading nobody could read.`, 'markdown');
    expect(headed.map((c) => c.text)).toEqual(['Body text under a heading nobody could read.']);
    expect(headed[0]!.context.length).toBeLessThan(200);
    // The path, which every chunk of the section carries, keeps the heading's start only.
    expect(headed[0]!.sectionPath).toEqual([`${b64.slice(0, 300)}…`]);
  });

  it('holds for arbitrary text', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: 'grapheme', maxLength: 1500 }),
        fc.option(fc.string({ maxLength: 300 }), { nil: undefined }),
        fc.constantFrom('text', 'markdown'),
        async (text, title, format) => { await check(text, format, title); },
      ),
      { numRuns: 40 },
    );
  });

  it('fills chunks close to the limit rather than leaving them tiny', async () => {
    const chunks = await check(paragraph(0, 40), 'text', 'Leave');
    const sizes = chunks.slice(0, -1).map((c) => e.countTokens(embeddingText('Leave', c)));
    expect(Math.min(...sizes)).toBeGreaterThan(80);
  });
});
