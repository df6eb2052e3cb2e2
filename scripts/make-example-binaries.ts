/**
 * Generates the DOCX and PDF documents of the Acme sample corpus (examples/acme) and checks that
 * mammoth and unpdf, the extractors the indexer uses, read back every paragraph.
 *
 *   npx tsx scripts/make-example-binaries.ts           write the files, then verify them
 *   npx tsx scripts/make-example-binaries.ts --check   verify the committed files are current
 *
 * Output is byte-for-byte deterministic (fixed zip timestamps, fixed PDF dates), so --check can
 * compare the committed binaries with freshly generated ones.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import JSZip from 'jszip';
import mammoth from 'mammoth';
import { extractText, getDocumentProxy } from 'unpdf';

type Block =
  | { h1: string }
  | { h2: string }
  | { p: string }
  | { table: string[][] };

interface Doc {
  file: string;
  title: string;
  author: string;
  /** ISO date written into the document's own metadata. */
  date: string;
  blocks: Block[];
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../examples/acme');

const DOCX: Doc[] = [
  {
    file: 'handbook/travel-policy.docx',
    title: 'Business Travel Policy',
    author: 'finance-ops@acme.test',
    date: '2024-03-18T09:00:00Z',
    blocks: [
      { h1: 'Business Travel Policy' },
      { p: 'This policy applies to every Acme Logistics employee travelling on company business: customer visits, warehouse visits, conferences and quarterly planning for remote employees. It works together with the Business Expenses Policy, whose approval thresholds apply to all travel costs.' },
      { h2: 'Booking' },
      { p: 'Book flights, hotels and rental cars through Navan, our travel booking tool, at least 14 days before departure where possible. Bookings made in Navan are paid by the company directly and do not need to be reimbursed. Economy class is standard for flights under 6 hours; premium economy is allowed for longer flights.' },
      { h2: 'Hotel caps per night' },
      { table: [
        ['City', 'Nightly cap (before tax)'],
        ['Columbus, Memphis, Reno', '$180'],
        ['Chicago, Atlanta, Dallas', '$240'],
        ['New York, San Francisco, Boston', '$325'],
        ['Everywhere else', '$200'],
      ] },
      { h2: 'Approval' },
      { p: 'Domestic trips are approved by your manager in Navan before booking. International travel and any single trip costing more than $5,000 in total also need approval from your department VP and Finance before booking, in line with the expenses policy.' },
      { h2: 'Per diem and meals' },
      { p: 'Meals while travelling are reimbursed at actual cost up to a per diem of $75 per day, or $95 per day in the high-cost cities listed above. Customer meals follow the client meal limit in the expenses policy.' },
      { h2: 'Safety' },
      { p: 'Register every trip in Navan so that Acme can reach you in an emergency. If you are affected by a travel disruption or a safety incident while travelling, call the 24-hour travel assistance line at +1 614-555-0177.' },
    ],
  },
  {
    file: 'hr/offer-letter-template.docx',
    title: 'Offer Letter Template (US, salaried)',
    author: 'talent@acme.test',
    date: '2024-04-22T09:00:00Z',
    blocks: [
      { h1: 'Offer Letter Template - US Salaried Roles' },
      { p: 'Instructions for recruiters: replace every field in square brackets. The base salary must be within the band for the level; an offer above the band midpoint needs HRBP and VP approval recorded in Greenhouse before this letter is sent.' },
      { h2: 'Letter' },
      { p: 'Dear [Candidate name],' },
      { p: 'We are delighted to offer you the position of [Job title] at Acme Logistics, Inc., reporting to [Manager name], starting on [Start date]. This is a full-time, exempt position based in [Location / Remote].' },
      { p: 'Your annual base salary will be [Base salary], paid semi-monthly. You will be eligible for the annual bonus program with a target of [Bonus target]% of base salary, subject to company and individual performance. [Sign-on bonus: You will receive a one-time sign-on bonus of [amount], repayable pro rata if you leave within 12 months.]' },
      { p: 'You will be eligible for Acme benefits from your first day, including medical, dental and vision coverage, a 401(k) plan with a 4% company match, 15 days of paid time off per year accruing from your start date, and 12 weeks of paid parental leave.' },
      { p: 'This offer is contingent on a satisfactory background check, verification of your eligibility to work in the United States, and your signing the Confidentiality and Invention Assignment Agreement. Employment with Acme is at will.' },
      { p: 'Please confirm your acceptance by signing this letter by [Offer expiry date, normally 5 business days].' },
      { p: 'Sincerely, [Hiring manager name], [Title], Acme Logistics, Inc.' },
    ],
  },
];

const PDF: Doc[] = [
  {
    file: 'finance/q3-forecast-2024.pdf',
    title: 'Q3 2024 Reforecast',
    author: 'fpa@acme.test',
    date: '2024-07-19T09:00:00Z',
    blocks: [
      { h1: 'Q3 2024 Reforecast - Acme Logistics' },
      { p: 'Prepared by FP&A for the executive team. Figures in USD thousands unless noted. The reforecast does not change the approved FY2024 budget; it updates the expected outcome.' },
      { h2: 'Summary' },
      { table: [
        ['Line', 'Budget Q3', 'Forecast Q3', 'Variance'],
        ['Revenue', '48,200', '49,650', '+1,450'],
        ['Linehaul and carrier costs', '29,400', '30,310', '-910'],
        ['Fuel', '4,350', '4,120', '+230'],
        ['Warehouse labour', '6,800', '7,050', '-250'],
        ['Opex (corporate)', '5,100', '4,980', '+120'],
        ['EBITDA', '2,550', '3,190', '+640'],
      ] },
      { h2: 'Drivers' },
      { p: 'Shipment volume is running 8 percent above budget, driven by two new retail customers onboarded in June. Carrier costs rise with volume; spot-market rates were 4 percent lower than assumed. Diesel averaged $3.71 per gallon against a budget assumption of $3.85.' },
      { p: 'Warehouse labour is over budget because the Memphis site ran overtime during the warehouse-sync migration in July. Overtime is expected to return to normal in August.' },
      { h2: 'Risks' },
      { p: 'Peak season starts earlier this year: two large customers have asked for capacity from October 15. Temporary staffing for Q4 is forecast at $1.9M. Any department expense over $5,000 not in this forecast needs Controller review before commitment.' },
    ],
  },
  {
    file: 'finance/restricted/fy2025-board-budget-summary.pdf',
    title: 'FY2025 Budget - Board Summary (Draft)',
    author: 'cfo@acme.test',
    date: '2024-11-20T09:00:00Z',
    blocks: [
      { h1: 'FY2025 Budget - Board Summary (Draft)' },
      { p: 'Strictly confidential. Draft for the December 10 Board meeting; distribution limited to the CFO, the Controller\'s office and the AP lead.' },
      { h2: 'Headline numbers (USD millions)' },
      { table: [
        ['Item', 'FY2024 forecast', 'FY2025 budget', 'Change'],
        ['Revenue', '196.4', '211.0', '+7.4%'],
        ['Gross margin', '38.1', '42.2', '+10.8%'],
        ['EBITDA', '11.9', '14.3', '+20.2%'],
        ['Capex', '9.6', '12.8', '+33.3%'],
        ['Headcount (year end)', '612', '648', '+36'],
      ] },
      { h2: 'Capital plan' },
      { p: 'Capex includes 40 replacement tractors ($6.2M), automated sortation at the Columbus warehouse ($3.1M, payback 2.6 years) and the tracking platform rebuild ($1.4M capitalised engineering time).' },
      { h2: 'Financing' },
      { p: 'The revolving credit facility of $25M with First Meridian Bank is renewed through 2027 at SOFR plus 1.85 percent. No draw is planned in FY2025; the minimum cash balance target is $18M.' },
    ],
  },
];

// ---------------------------------------------------------------------------------------------
// DOCX

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const run = (text: string, bold = false) => `<w:r>${bold ? '<w:rPr><w:b/></w:rPr>' : ''}<w:t xml:space="preserve">${xmlEscape(text)}</w:t></w:r>`;
const para = (text: string, style?: string) => `<w:p>${style ? `<w:pPr><w:pStyle w:val="${style}"/></w:pPr>` : ''}${run(text)}</w:p>`;

function docxBody(blocks: Block[]): string {
  return blocks.map((b) => {
    if ('h1' in b) return para(b.h1, 'Heading1');
    if ('h2' in b) return para(b.h2, 'Heading2');
    if ('p' in b) return para(b.p);
    const rows = b.table.map((row, i) => `<w:tr>${row.map((cell) => `<w:tc><w:tcPr><w:tcW w:w="0" w:type="auto"/></w:tcPr><w:p>${run(cell, i === 0)}</w:p></w:tc>`).join('')}</w:tr>`);
    return `<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="0" w:type="auto"/></w:tblPr>${rows.join('')}</w:tbl>`;
  }).join('');
}

const W_NS = 'http://schemas.openxmlformats.org/wordprocessingml/2006/main';
const STYLES = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="${W_NS}">
<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:rPr><w:rFonts w:ascii="Calibri" w:hAnsi="Calibri"/><w:sz w:val="22"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:sz w:val="32"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading2"><w:name w:val="heading 2"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:pPr><w:outlineLvl w:val="1"/></w:pPr><w:rPr><w:b/><w:sz w:val="26"/></w:rPr></w:style>
<w:style w:type="table" w:styleId="TableGrid"><w:name w:val="Table Grid"/><w:tblPr><w:tblBorders><w:top w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:left w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:bottom w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:right w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:insideH w:val="single" w:sz="4" w:space="0" w:color="auto"/><w:insideV w:val="single" w:sz="4" w:space="0" w:color="auto"/></w:tblBorders></w:tblPr></w:style>
</w:styles>`;

async function makeDocx(doc: Doc): Promise<Buffer> {
  const date = new Date(doc.date);
  const zip = new JSZip();
  const add = (name: string, content: string) => zip.file(name, content, { date, createFolders: false });
  add('[Content_Types].xml', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/><Override PartName="/docProps/core.xml" ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>`);
  add('_rels/.rels', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties" Target="docProps/core.xml"/></Relationships>`);
  add('word/_rels/document.xml.rels', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/></Relationships>`);
  add('word/styles.xml', STYLES);
  add('word/document.xml', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="${W_NS}"><w:body>${docxBody(doc.blocks)}<w:sectPr><w:pgSz w:w="12240" w:h="15840"/><w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" w:header="720" w:footer="720" w:gutter="0"/></w:sectPr></w:body></w:document>`);
  add('docProps/core.xml', `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:title>${xmlEscape(doc.title)}</dc:title><dc:creator>${xmlEscape(doc.author)}</dc:creator><dcterms:created xsi:type="dcterms:W3CDTF">${doc.date}</dcterms:created><dcterms:modified xsi:type="dcterms:W3CDTF">${doc.date}</dcterms:modified></cp:coreProperties>`);
  return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE', compressionOptions: { level: 9 }, platform: 'UNIX' });
}

// ---------------------------------------------------------------------------------------------
// PDF: one Helvetica font pair (WinAnsi), text only, US Letter, pages filled top to bottom.

const PAGE_W = 612, PAGE_H = 792, MARGIN = 72;

/** Wraps text to a width in points using Helvetica's average glyph width (good enough for prose). */
function wrap(text: string, size: number, width = PAGE_W - 2 * MARGIN): string[] {
  const maxChars = Math.floor(width / (size * 0.5));
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > maxChars) { lines.push(line); line = word; }
    else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

const pdfString = (s: string) => `(${s.replace(/[\\()]/g, (c) => `\\${c}`)})`;
const pdfDate = (iso: string) => `D:${iso.replace(/[-:T]/g, '').slice(0, 14)}Z`;

interface Line { text: string; font: 'F1' | 'F2'; size: number; gapBefore: number; x?: number }

function pdfLines(blocks: Block[]): Line[][] {
  const out: Line[] = [];
  for (const b of blocks) {
    if ('h1' in b) out.push(...wrap(b.h1, 16).map((text, i) => ({ text, font: 'F2' as const, size: 16, gapBefore: i ? 0 : 4 })));
    else if ('h2' in b) out.push(...wrap(b.h2, 12).map((text, i) => ({ text, font: 'F2' as const, size: 12, gapBefore: i ? 0 : 10 })));
    else if ('p' in b) out.push(...wrap(b.p, 10).map((text, i) => ({ text, font: 'F1' as const, size: 10, gapBefore: i ? 0 : 6 })));
    else {
      // Columns as separate text runs at fixed x positions, so extracted text keeps cells apart.
      const colW = (PAGE_W - 2 * MARGIN) / b.table[0]!.length;
      b.table.forEach((row, r) => row.forEach((cell, c) => out.push({
        text: cell, font: r === 0 ? 'F2' : 'F1', size: 10, gapBefore: c === 0 ? (r === 0 ? 6 : 0) : -1, x: MARGIN + c * colW,
      })));
    }
  }
  const pages: Line[][] = [[]];
  let y = PAGE_H - MARGIN;
  for (const l of out) {
    const advance = l.gapBefore < 0 ? 0 : l.size * 1.4 + l.gapBefore;
    if (y - advance < MARGIN && l.gapBefore >= 0) { pages.push([]); y = PAGE_H - MARGIN; }
    y -= advance;
    pages[pages.length - 1]!.push({ ...l, gapBefore: y });
  }
  return pages;
}

function makePdf(doc: Doc): Buffer {
  const objects: string[] = [];
  const pages = pdfLines(doc.blocks);
  const firstPage = 6;
  const kids = pages.map((_, i) => `${firstPage + 2 * i} 0 R`).join(' ');
  objects[1] = '<< /Type /Catalog /Pages 2 0 R >>';
  objects[2] = `<< /Type /Pages /Kids [${kids}] /Count ${pages.length} >>`;
  objects[3] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>';
  objects[4] = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>';
  objects[5] = `<< /Title ${pdfString(doc.title)} /Author ${pdfString(doc.author)} /Producer (Acme example generator) /CreationDate (${pdfDate(doc.date)}) /ModDate (${pdfDate(doc.date)}) >>`;
  pages.forEach((lines, i) => {
    const ops = lines.map((l) => `BT /${l.font} ${l.size} Tf 1 0 0 1 ${(l.x ?? MARGIN).toFixed(2)} ${l.gapBefore.toFixed(2)} Tm ${pdfString(l.text)} Tj ET`);
    const stream = ops.join('\n');
    const pageObj = firstPage + 2 * i;
    objects[pageObj] = `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PAGE_W} ${PAGE_H}] /Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents ${pageObj + 1} 0 R >>`;
    objects[pageObj + 1] = `<< /Length ${Buffer.byteLength(stream, 'latin1')} >>\nstream\n${stream}\nendstream`;
  });

  // Offsets are byte positions, so build in latin1 and count bytes, never characters.
  let body = '%PDF-1.4\n%\xE2\xE3\xCF\xD3\n';
  const offsets: number[] = [];
  for (let n = 1; n < objects.length; n++) {
    offsets[n] = Buffer.byteLength(body, 'latin1');
    body += `${n} 0 obj\n${objects[n]}\nendobj\n`;
  }
  const xrefAt = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length}\n0000000000 65535 f \n`;
  for (let n = 1; n < objects.length; n++) body += `${String(offsets[n]).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${objects.length} /Root 1 0 R /Info 5 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

// ---------------------------------------------------------------------------------------------
// Verification with the same extractors the indexer uses.

const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
const expectedTexts = (doc: Doc) => doc.blocks.flatMap((b) => ('h1' in b ? [b.h1] : 'h2' in b ? [b.h2] : 'p' in b ? [b.p] : b.table.flat()));

async function extract(file: string, bytes: Buffer): Promise<string> {
  if (file.endsWith('.docx')) return (await mammoth.extractRawText({ buffer: bytes })).value;
  const pdf = await getDocumentProxy(new Uint8Array(bytes));
  return (await extractText(pdf, { mergePages: true })).text;
}

async function verify(doc: Doc, bytes: Buffer): Promise<string[]> {
  const text = norm(await extract(doc.file, bytes));
  return expectedTexts(doc).filter((t) => !text.includes(norm(t))).map((t) => `${doc.file}: missing "${t.slice(0, 60)}"`);
}

async function main(): Promise<void> {
  const check = process.argv.includes('--check');
  const problems: string[] = [];
  const docs: Array<[Doc, Promise<Buffer> | Buffer]> = [...DOCX.map((d) => [d, makeDocx(d)] as [Doc, Promise<Buffer>]), ...PDF.map((d) => [d, makePdf(d)] as [Doc, Buffer])];
  for (const [doc, made] of docs) {
    const bytes = await made;
    const target = path.join(root, doc.file);
    if (check) {
      let current: Buffer | undefined;
      try { current = readFileSync(target); } catch { /* reported below */ }
      if (!current || !current.equals(bytes)) problems.push(`${doc.file}: committed file differs from the generator's output`);
    } else {
      writeFileSync(target, bytes);
    }
    problems.push(...await verify(doc, readFileSync(target)));
    console.log(`${check ? 'checked' : 'wrote'} ${doc.file} (${bytes.length} bytes)`);
  }
  if (problems.length) {
    for (const p of problems) console.error(p);
    process.exit(1);
  }
}

await main();
