import { extractText, getDocumentProxy, getMeta } from 'unpdf';
import { errorMessage } from '../errors.ts';
import { ExtractionError, UnsupportedContentError } from './errors.ts';
import type { ExtractedText } from './index.ts';

/** Text layer of every page, pages separated by blank lines; the Info dictionary's Title if any. */
export async function extractPdf(bytes: Uint8Array): Promise<ExtractedText> {
  let doc: Awaited<ReturnType<typeof getDocumentProxy>>;
  try {
    // pdf.js takes ownership of (and may detach) the buffer it is given, so it gets a copy.
    doc = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0, isEvalSupported: false, stopAtErrors: false });
  } catch (err) {
    const name = (err as { name?: string }).name;
    if (name === 'PasswordException') throw new UnsupportedContentError('password-protected PDF is not indexed');
    throw new ExtractionError(`PDF cannot be read: ${errorMessage(err)}`, err);
  }
  try {
    const { text } = await extractText(doc, { mergePages: false });
    const pages = text.map((p) => p.replace(/[ \t]+\n/g, '\n').trim()).filter(Boolean);
    if (pages.length === 0) throw new UnsupportedContentError('PDF has no text layer (scanned image?)');
    let title: string | undefined;
    try {
      const info = (await getMeta(doc)).info as { Title?: unknown };
      if (typeof info.Title === 'string' && info.Title.trim()) title = info.Title.trim();
    } catch {
      // A broken Info dictionary does not make the text unusable.
    }
    return { text: pages.join('\n\n'), format: 'pdf', title };
  } catch (err) {
    if (err instanceof UnsupportedContentError) throw err;
    throw new ExtractionError(`PDF text cannot be extracted: ${errorMessage(err)}`, err);
  } finally {
    await doc.destroy().catch(() => undefined);
  }
}
