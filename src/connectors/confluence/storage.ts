/**
 * Confluence "storage format" (XHTML with `ac:`/`ri:` elements) → an HTML document the existing
 * extractor turns into heading-structured text. The HTML parser behind html-to-text reads the
 * namespaced elements as unknown inline tags and keeps their text, which is right for most macros;
 * three things need help first:
 *  - code and other plain-text macro bodies sit in CDATA sections, which an HTML parser drops as
 *    comments: their text is escaped into the document instead;
 *  - macro parameters (`<ac:parameter ac:name="language">java</ac:parameter>`) are settings, not
 *    prose, and would otherwise leak into the text;
 *  - links to other pages without a link body show nothing: the target's title is their text.
 * The page title becomes the document's <title>, so it (not the first heading) titles the document.
 */

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function storageToHtml(title: string, storage: string): string {
  const body = storage
    .replace(/<!\[CDATA\[([\s\S]*?)\]\]>/g, (_, text: string) => escapeHtml(text))
    .replace(/<ac:parameter\b[^>]*\/>/gi, '')
    .replace(/<ac:parameter\b[^>]*>[\s\S]*?<\/ac:parameter>/gi, '')
    .replace(/<ac:link\b[^>]*>\s*<ri:page\b[^>]*ri:content-title="([^"]*)"[^>]*\/>\s*<\/ac:link>/gi, (_, t: string) => t)
    // Code macros become <pre> so their lines stay lines.
    .replace(/<ac:plain-text-body\b[^>]*>([\s\S]*?)<\/ac:plain-text-body>/gi, (_, code: string) => `<pre>${code}</pre>`);
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}
