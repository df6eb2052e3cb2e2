import { describe, expect, it } from 'vitest';
import { ExtractionError, UnsupportedContentError, detectFormat, extractText } from '../src/extract/index.ts';
import { chunkDocument } from '../src/indexer/chunker.ts';
import { buildDocx, buildPdf, buildXlsxLikeZip } from './fixtures/documents.ts';

const utf8 = (s: string) => Buffer.from(s, 'utf8');

describe('plain text', () => {
  it('decodes UTF-8 and normalises line endings', async () => {
    const r = await extractText({ bytes: utf8('Café menu\r\nline two\rline three'), mimeType: 'text/plain', fileName: 'menu.txt' });
    expect(r).toEqual({ text: 'Café menu\nline two\nline three', format: 'text' });
  });

  it('honours UTF-16 byte order marks and falls back to Windows-1252', async () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('naïve résumé', 'utf16le')]);
    expect((await extractText({ bytes: le, fileName: 'a.txt' })).text).toBe('naïve résumé');
    const cp1252 = Buffer.from([0x43, 0x61, 0x66, 0xe9, 0x20, 0x80, 0x35]); // "Café €5"
    expect((await extractText({ bytes: cp1252, mimeType: 'text/plain' })).text).toBe('Café €5');
  });

  it('detects text by extension, and sniffs unknown content', async () => {
    expect(detectFormat(utf8('x'), null, 'src/main.py')).toBe('text');
    expect(detectFormat(utf8('<!DOCTYPE html><html><body>x</body></html>'), 'application/octet-stream', 'page')).toBe('html');
    expect(detectFormat(utf8('just words'), undefined, 'README')).toBe('text');
  });
});

describe('markdown', () => {
  it('keeps the alt and link text of images and files inlined as data: URIs, not their bytes', async () => {
    const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='.repeat(200);
    const src = [
      '# Design', '',
      `The flow: ![Architecture diagram](data:image/png;base64,${png} "Figure 1") as drawn.`, '',
      `Get the [signed PDF](<data:application/pdf;base64,${png}>) and the logo ![logo][l].`, '',
      'A linked image stays: ![chart](https://example.com/chart.png).', '',
      `[l]: data:image/png;base64,${png}`,
    ].join('\n');
    const r = await extractText({ bytes: utf8(src), mimeType: 'text/markdown', fileName: 'design.md' });
    expect(r.text).toContain('The flow: Architecture diagram as drawn.');
    expect(r.text).toContain('Get the signed PDF and the logo ![logo][l].');
    expect(r.text).toContain('![chart](https://example.com/chart.png)');
    expect(r.text).not.toMatch(/base64|iVBOR/);
    // Brackets by the thousand, with or without a data: URI somewhere, come through unchanged.
    for (const text of ['!['.repeat(80_000), `${'['.repeat(80_000)} data:`, `${'](data:'.repeat(40_000)}x`, `[a](data:x) ${'['.repeat(50_000)}`]) {
      const out = await extractText({ bytes: utf8(text), mimeType: 'text/markdown', fileName: 'odd.md' });
      expect(out.text).toBe(text.startsWith('[a]') ? `a ${'['.repeat(50_000)}` : text.trim());
    }
  });

  it('stays markdown and takes the title from front matter', async () => {
    const src = '---\ntitle: "Travel Policy"\nowner: finance\n---\n# Travel\n\nBook through the portal.\n';
    const r = await extractText({ bytes: utf8(src), mimeType: 'text/markdown', fileName: 'travel.md' });
    expect(r).toEqual({ text: '# Travel\n\nBook through the portal.', format: 'markdown', title: 'Travel Policy' });
  });

  it('is recognised by extension when the MIME type is generic', async () => {
    const r = await extractText({ bytes: utf8('# A\n\ntext'), mimeType: 'application/octet-stream', fileName: 'notes.md' });
    expect(r).toEqual({ text: '# A\n\ntext', format: 'markdown' });
  });
});

describe('html', () => {
  const page = `<!doctype html><html><head><title>Expenses &amp; Travel</title><style>p{color:red}</style>
    <script>alert("x")</script></head><body><nav><a href="/">Home</a> | <a href="/x">Menu</a></nav>
    <h1>Expense <em>policy</em></h1><p>Claims are due within <b>30&nbsp;days</b>. See <a href="https://x.test/claims">the portal</a>.</p>
    <h2>Meals</h2><ul><li>Breakfast</li><li>Dinner</li></ul>
    <table><tr><th>Item</th><th>Limit</th></tr><tr><td>Hotel</td><td>150</td></tr></table>
    <img src="data:image/png;base64,AAAA" alt="logo"><script>var hidden = 1;</script></body></html>`;

  it('keeps headings as # lines, drops chrome and separates table cells', async () => {
    const r = await extractText({ bytes: utf8(page), mimeType: 'text/html; charset=utf-8', fileName: 'expenses.html' });
    expect(r.format).toBe('html');
    expect(r.title).toBe('Expenses & Travel');
    expect(r.text).toContain('# Expense policy');
    expect(r.text).toContain('## Meals');
    expect(r.text).toMatch(/Claims are due within 30\s+days\. See the portal\./);
    expect(r.text).toContain('Hotel | 150');
    expect(r.text).toMatch(/Breakfast/);
    for (const noise of ['alert', 'hidden', 'color:red', 'Menu', 'https://x.test', 'base64']) expect(r.text).not.toContain(noise);
  });

  it('gives the chunker section paths', async () => {
    const r = await extractText({ bytes: utf8(page), mimeType: 'text/html' });
    const chunks = await chunkDocument(r, { maxTokens: 128, countTokens: (t) => t.split(/\s+/).filter(Boolean).length });
    expect(chunks.map((c) => c.sectionPath)).toEqual([['Expense policy'], ['Expense policy', 'Meals']]);
  });
});

describe('docx', () => {
  it('converts Word headings to # lines and keeps paragraphs and tables', async () => {
    const bytes = await buildDocx([
      { heading: 1, text: 'Employee Handbook' },
      { text: 'Welcome to the company.' },
      { heading: 2, text: 'Leave' },
      { text: 'Everyone gets 25 days of annual leave.' },
      { table: [['Type', 'Days'], ['Sick', '10']] },
    ]);
    const r = await extractText({ bytes, mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document', fileName: 'handbook.docx' });
    expect(r.format).toBe('docx');
    expect(r.text).toContain('# Employee Handbook');
    expect(r.text).toContain('## Leave');
    expect(r.text).toContain('Everyone gets 25 days of annual leave.');
    expect(r.text).toContain('Sick | 10');
    const chunks = await chunkDocument(r, { maxTokens: 128, countTokens: (t) => t.split(/\s+/).filter(Boolean).length });
    expect(chunks.map((c) => c.sectionPath)).toEqual([['Employee Handbook'], ['Employee Handbook', 'Leave']]);
  });

  it('is detected from its content even when mislabelled', async () => {
    const bytes = await buildDocx([{ text: 'Hello from Word' }]);
    const r = await extractText({ bytes, mimeType: 'application/octet-stream', fileName: 'download' });
    expect(r).toMatchObject({ format: 'docx', text: 'Hello from Word' });
  });

  it('reports damaged files as ExtractionError', async () => {
    const garbage = Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), Buffer.from('word/document.xml not really a zip')]);
    await expect(extractText({ bytes: garbage, fileName: 'broken.docx' })).rejects.toBeInstanceOf(ExtractionError);
    await expect(extractText({ bytes: utf8('plain text pretending'), fileName: 'fake.docx' })).rejects.toBeInstanceOf(ExtractionError);
    const badXml = await buildDocx([], { documentXml: '<w:document><w:body><w:p>' });
    await expect(extractText({ bytes: badXml, fileName: 'bad.docx' })).rejects.toBeInstanceOf(ExtractionError);
  });
});

describe('pdf', () => {
  it('extracts every page and the Info title', async () => {
    const bytes = buildPdf([['Quarterly report', 'Revenue grew (slightly).'], ['Page two: outlook']], 'Q3 Report');
    const r = await extractText({ bytes, mimeType: 'application/pdf', fileName: 'q3.pdf' });
    expect(r.format).toBe('pdf');
    expect(r.title).toBe('Q3 Report');
    expect(r.text).toBe('Quarterly report\nRevenue grew (slightly).\n\nPage two: outlook');
  });

  it('treats a PDF without a text layer as unsupported', async () => {
    const bytes = buildPdf([[]]);
    await expect(extractText({ bytes, fileName: 'scan.pdf' })).rejects.toThrow(UnsupportedContentError);
  });

  it('reports damaged PDFs as ExtractionError, not a crash', async () => {
    const good = buildPdf([['Some text']]);
    const cases = [
      Buffer.from('%PDF-1.4\nthis is not a pdf at all\n%%EOF'),
      good.subarray(0, 40),
      utf8('no header at all'),
    ];
    for (const bytes of cases) {
      const err = await extractText({ bytes, mimeType: 'application/pdf', fileName: 'x.pdf' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExtractionError);
      expect((err as Error).message).toMatch(/PDF/);
    }
  });
});

describe('unsupported content', () => {
  it('skips images, archives, spreadsheets and binary blobs with a reason', async () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0]);
    const cases: Array<[Parameters<typeof extractText>[0], RegExp]> = [
      [{ bytes: png, mimeType: 'image/png', fileName: 'a.png' }, /PNG image/],
      [{ bytes: utf8('whatever'), mimeType: 'image/svg+xml', fileName: 'a.svg' }, /image/],
      [{ bytes: await buildXlsxLikeZip(), fileName: 'book.xlsx' }, /spreadsheet/],
      [{ bytes: Buffer.from([1, 2, 0, 0, 5, 6, 7]), mimeType: 'application/octet-stream' }, /binary/],
      [{ bytes: Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1]), fileName: 'old.doc' }, /legacy Office/],
    ];
    for (const [input, reason] of cases) {
      const err = await extractText(input).catch((e: unknown) => e);
      expect(err, String(input.fileName)).toBeInstanceOf(UnsupportedContentError);
      expect((err as UnsupportedContentError).reason).toMatch(reason);
    }
  });

  it('guards input and output sizes', async () => {
    await expect(extractText({ bytes: Buffer.alloc(2048, 0x61), fileName: 'a.txt' }, { maxBytes: 1024 }))
      .rejects.toThrow(/larger than 1024 bytes/);
    await expect(extractText({ bytes: Buffer.alloc(2048, 0x61), fileName: 'a.txt' }, { maxChars: 1000 }))
      .rejects.toThrow(UnsupportedContentError);
  });
});
