import path from 'node:path';
import { ExtractionError, UnsupportedContentError } from './errors.ts';
import { htmlTitle, htmlToStructuredText } from './html.ts';

export { ExtractionError, UnsupportedContentError };

/**
 * What the text came from. `markdown`, `html` and `docx` text carries `#` heading lines (HTML and
 * DOCX are converted to that shape) so the chunker can follow sections; `pdf` and `text` are flat.
 */
export type DocumentFormat = 'markdown' | 'html' | 'docx' | 'pdf' | 'text';

export interface ExtractInput {
  bytes: Uint8Array;
  mimeType?: string | null;
  fileName?: string | null;
}

export interface ExtractedText {
  text: string;
  format: DocumentFormat;
  title?: string;
}

export interface ExtractOptions {
  /** Inputs larger than this are refused before parsing. */
  maxBytes?: number;
  /** Extracted text larger than this is refused (it would become thousands of chunks). */
  maxChars?: number;
}

export const DEFAULT_MAX_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_CHARS = 5_000_000;

const DOCX_MIME = 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';

const MIME_FORMATS: Record<string, DocumentFormat> = {
  'text/markdown': 'markdown',
  'text/x-markdown': 'markdown',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'application/pdf': 'pdf',
  [DOCX_MIME]: 'docx',
  'text/plain': 'text',
  'text/csv': 'text',
  'text/tab-separated-values': 'text',
  'text/xml': 'text',
  'application/xml': 'text',
  'application/json': 'text',
  'application/x-yaml': 'text',
  'application/yaml': 'text',
  'text/yaml': 'text',
  'application/javascript': 'text',
  'application/x-sh': 'text',
  'application/sql': 'text',
  'application/x-tex': 'text',
  'message/rfc822': 'text',
};

const EXT_FORMATS: Record<string, DocumentFormat> = {
  '.md': 'markdown', '.markdown': 'markdown', '.mdown': 'markdown', '.mkd': 'markdown', '.mdx': 'markdown',
  '.html': 'html', '.htm': 'html', '.xhtml': 'html',
  '.pdf': 'pdf',
  '.docx': 'docx',
  ...Object.fromEntries([
    '.txt', '.text', '.log', '.csv', '.tsv', '.json', '.jsonl', '.yaml', '.yml', '.toml', '.ini', '.cfg', '.conf',
    '.xml', '.rst', '.adoc', '.org', '.tex', '.eml', '.sql', '.sh', '.ps1', '.bat',
    '.ts', '.tsx', '.js', '.jsx', '.mjs', '.cjs', '.py', '.rb', '.go', '.rs', '.java', '.kt', '.scala', '.swift',
    '.c', '.h', '.cc', '.cpp', '.hpp', '.cs', '.php', '.pl', '.r', '.lua', '.css', '.scss', '.proto', '.graphql',
  ].map((e) => [e, 'text' as const])),
};

/** Formats we know and deliberately do not index; named so the skip reason says what the file was. */
const UNSUPPORTED_MIME: Array<[RegExp, string]> = [
  [/^image\//, 'image'], [/^audio\//, 'audio'], [/^video\//, 'video'], [/^font\//, 'font'],
  [/^application\/(zip|x-zip-compressed|gzip|x-gzip|x-tar|x-7z-compressed|x-rar-compressed|vnd\.rar)$/, 'archive'],
  [/^application\/msword$/, 'legacy Word (.doc) document'],
  [/^application\/vnd\.ms-/, 'legacy Office document'],
  [/^application\/vnd\.openxmlformats-officedocument\.(spreadsheetml|presentationml)/, 'spreadsheet or presentation'],
  [/^application\/vnd\.oasis\.opendocument\./, 'OpenDocument file'],
  [/^application\/vnd\.google-apps\./, 'Google Workspace file that was not exported'],
];

const MAGIC: Array<[number[], number, string]> = [
  [[0x89, 0x50, 0x4e, 0x47], 0, 'PNG image'],
  [[0xff, 0xd8, 0xff], 0, 'JPEG image'],
  [[0x47, 0x49, 0x46, 0x38], 0, 'GIF image'],
  [[0x52, 0x49, 0x46, 0x46], 0, 'RIFF media file'],
  [[0x1f, 0x8b], 0, 'gzip archive'],
  [[0x37, 0x7a, 0xbc, 0xaf], 0, '7z archive'],
  [[0x52, 0x61, 0x72, 0x21], 0, 'RAR archive'],
  [[0xd0, 0xcf, 0x11, 0xe0], 0, 'legacy Office document'],
  [[0x49, 0x44, 0x33], 0, 'MP3 audio'],
  [[0x66, 0x74, 0x79, 0x70], 4, 'MP4/QuickTime media'],
  [[0x7f, 0x45, 0x4c, 0x46], 0, 'executable'],
  [[0x4d, 0x5a], 0, 'Windows executable'],
  [[0x00, 0x61, 0x73, 0x6d], 0, 'WebAssembly module'],
];

const startsWith = (b: Uint8Array, sig: number[], at = 0) => b.length >= at + sig.length && sig.every((x, i) => b[at + i] === x);
const PDF_SIG = [0x25, 0x50, 0x44, 0x46, 0x2d]; // %PDF-
const ZIP_SIG = [0x50, 0x4b, 0x03, 0x04];

/**
 * Turns a file's bytes into text for chunking. The type comes from the content's own signature
 * first (sources mislabel files), then the MIME type, then the file extension, then a sniff.
 */
export async function extractText(input: ExtractInput, opts: ExtractOptions = {}): Promise<ExtractedText> {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const maxChars = opts.maxChars ?? DEFAULT_MAX_CHARS;
  const bytes = input.bytes;
  if (bytes.byteLength > maxBytes) throw new UnsupportedContentError(`file is larger than ${maxBytes} bytes`);

  const format = detectFormat(bytes, input.mimeType, input.fileName);
  let result: ExtractedText;
  switch (format) {
    case 'pdf': {
      const { extractPdf } = await import('./pdf.ts');
      result = await extractPdf(bytes);
      break;
    }
    case 'docx': {
      const { docxToHtml } = await import('./docx.ts');
      result = { text: htmlToStructuredText(await docxToHtml(bytes), maxChars), format: 'docx' };
      break;
    }
    case 'html': {
      const html = decodeText(bytes);
      result = { text: htmlToStructuredText(html, maxChars), format: 'html', title: htmlTitle(html) };
      break;
    }
    case 'markdown':
      result = markdown(decodeText(bytes));
      break;
    default:
      result = { text: decodeText(bytes), format: 'text' };
  }
  if (result.text.length > maxChars) throw new UnsupportedContentError(`extracted text is longer than ${maxChars} characters`);
  return result;
}

export function detectFormat(bytes: Uint8Array, mimeType?: string | null, fileName?: string | null): DocumentFormat {
  const mime = (mimeType ?? '').split(';')[0].trim().toLowerCase();
  const ext = fileName ? path.extname(fileName).toLowerCase() : '';

  if (startsWith(bytes, PDF_SIG)) return 'pdf';
  if (startsWith(bytes, ZIP_SIG)) {
    // Entry names in a zip are stored uncompressed, so the main part's name is visible in the bytes.
    if (containsAscii(bytes, 'word/document.xml')) return 'docx';
    if (containsAscii(bytes, 'xl/workbook.xml') || containsAscii(bytes, 'ppt/presentation.xml')) {
      throw new UnsupportedContentError('spreadsheet or presentation (not indexed)');
    }
    if (mime === DOCX_MIME || ext === '.docx') throw new ExtractionError('DOCX file is damaged: word/document.xml not found');
    throw new UnsupportedContentError('zip archive (not indexed)');
  }
  for (const [sig, at, name] of MAGIC) {
    if (startsWith(bytes, sig, at)) throw new UnsupportedContentError(`${name} (not indexed)`);
  }

  const claimed = MIME_FORMATS[mime] ?? EXT_FORMATS[ext];
  // The signature checks above found no PDF/DOCX, so a file claiming to be one is damaged.
  if (claimed === 'pdf') throw new ExtractionError('PDF file is damaged: no %PDF- header');
  if (claimed === 'docx') throw new ExtractionError('DOCX file is damaged: not a zip package');
  if (claimed) return claimed;

  const unsupported = UNSUPPORTED_MIME.find(([re]) => re.test(mime));
  if (unsupported) throw new UnsupportedContentError(`${unsupported[1]} (${mime}) is not indexed`);
  if (mime.startsWith('text/')) return 'text';

  // Unknown or generic (application/octet-stream): index it only if it really is text.
  if (looksBinary(bytes)) throw new UnsupportedContentError(`binary content${mime ? ` (${mime})` : ''} is not indexed`);
  const head = new TextDecoder().decode(bytes.subarray(0, 1024)).trimStart().toLowerCase();
  return head.startsWith('<!doctype html') || head.startsWith('<html') ? 'html' : 'text';
}

function containsAscii(bytes: Uint8Array, needle: string): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(needle, 0, 'latin1');
}

/** NUL bytes or many control characters in the first 8 KB mean binary (UTF-16 is caught by its BOM first). */
function looksBinary(bytes: Uint8Array): boolean {
  if (hasUtf16Bom(bytes)) return false;
  const head = bytes.subarray(0, 8192);
  let control = 0;
  for (const b of head) {
    if (b === 0) return true;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) control++;
  }
  return head.length > 0 && control / head.length > 0.1;
}

const hasUtf16Bom = (b: Uint8Array) => startsWith(b, [0xff, 0xfe]) || startsWith(b, [0xfe, 0xff]);

/** UTF-8 (BOM optional), UTF-16 with a BOM, else Windows-1252; line endings normalised. */
export function decodeText(bytes: Uint8Array): string {
  if (looksBinary(bytes)) throw new UnsupportedContentError('binary content is not indexed');
  let text: string;
  if (startsWith(bytes, [0xff, 0xfe])) text = new TextDecoder('utf-16le').decode(bytes.subarray(2));
  else if (startsWith(bytes, [0xfe, 0xff])) text = new TextDecoder('utf-16be').decode(bytes.subarray(2));
  else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      text = decodeWindows1252(bytes);
    }
  }
  return text
    .replace(/\r\n?/g, '\n')
    // Other C0 controls carry no meaning in prose and confuse tokenizers.
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u0008\u000b\u000e-\u001f\u007f]/g, '')
    .replace(/^\ufeff/, '');
}

/** Characters of Windows-1252 at 0x80–0x9F, where it differs from Latin-1 (undefined bytes map to themselves). */
const CP1252_HIGH = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ';

/** Node's TextDecoder treats the 'windows-1252' label as plain Latin-1, so the 0x80–0x9F block is mapped here. */
function decodeWindows1252(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    const slice = bytes.subarray(i, i + 8192);
    out += String.fromCharCode(...Array.from(slice, (b) => (b >= 0x80 && b <= 0x9f ? CP1252_HIGH.charCodeAt(b - 0x80) : b)));
  }
  return out;
}

/** The target of an inline link or image when it is a `data:` URI: `](data:…)`, optionally `<…>` and a title. */
const DATA_TARGET = /\]\(\s*<?data:[^()[\]\s<>"]*>?(?:\s+"[^"\n]*")?\s*\)/g;
/** A reference-style definition whose target is a `data:` URI. */
const DATA_DEFINITION = /^ {0,3}\[[^\]\n]+\]:[ \t]*<?data:\S*.*$/gm;

/**
 * An image or file inlined as a `data:` URI is bytes, not text: a 1.2 MB image became 9,244 chunks
 * of base64, each embedded and found by searches. Its alt or link text stays. Found from the rare
 * `](data:` back to its `[`, never further back than the previous target, so the scan is linear
 * (a pattern starting at `![` retried at every bracket: 80,000 of them took 11.7 s).
 */
function withoutInlineData(text: string): string {
  if (!text.includes('data:')) return text;
  let out = '';
  let kept = 0;
  let floor = 0;
  for (const m of text.matchAll(DATA_TARGET)) {
    const close = m.index;
    let open = close - 1;
    while (open >= floor && text[open] !== '[' && text[open] !== '\n') open--;
    floor = close + m[0].length;
    if (open < kept || text[open] !== '[') continue;
    const start = open > kept && text[open - 1] === '!' ? open - 1 : open;
    out += text.slice(kept, start) + text.slice(open + 1, close);
    kept = floor;
  }
  return (kept === 0 ? text : out + text.slice(kept)).replace(DATA_DEFINITION, '');
}

/** Markdown stays Markdown (the chunker reads its headings); YAML front matter gives the title. */
function markdown(source: string): ExtractedText {
  const text = withoutInlineData(source);
  const fm = /^---[ \t]*\n([\s\S]*?)\n(?:---|\.\.\.)[ \t]*(?:\n|$)/.exec(text);
  if (!fm) return { text: text.trim(), format: 'markdown' };
  const titleLine = /^title:[ \t]*(.+?)[ \t]*$/m.exec(fm[1]);
  const title = titleLine ? titleLine[1].replace(/^(['"])(.*)\1$/, '$2').trim() || undefined : undefined;
  return { text: text.slice(fm[0].length).trim(), format: 'markdown', title };
}
