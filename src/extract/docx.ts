import mammoth from 'mammoth';
import { errorMessage } from '../errors.ts';
import { ExtractionError } from './errors.ts';

/**
 * DOCX through mammoth to semantic HTML (Word heading styles become h1–h6), which the HTML
 * converter then flattens with `#` headings. Images are not read and external files never opened.
 */
export async function docxToHtml(bytes: Uint8Array): Promise<string> {
  try {
    const result = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      { convertImage: mammoth.images.imgElement(async () => ({ src: '' })), externalFileAccess: false },
    );
    return result.value;
  } catch (err) {
    throw new ExtractionError(`DOCX cannot be read: ${errorMessage(err)}`, err);
  }
}
