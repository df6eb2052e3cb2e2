import { convert, type HtmlToTextOptions } from 'html-to-text';

type FormatCallback = NonNullable<HtmlToTextOptions['formatters']>[string];

/**
 * HTML becomes Markdown-flavoured plain text: headings turn into `#` lines so the chunker can keep
 * section paths, table cells are separated so they do not run together, and chrome (scripts,
 * navigation, images) is dropped because it only adds noise to embeddings.
 */
const mdHeading: FormatCallback = (elem, walk, builder, formatOptions) => {
  const level = Number((formatOptions as { level?: number }).level ?? 1);
  builder.openBlock({ leadingLineBreaks: 2 });
  builder.addInline(`${'#'.repeat(level)} `);
  walk(elem.children, builder);
  builder.closeBlock({ trailingLineBreaks: 2 });
};

const SKIP = ['script', 'style', 'noscript', 'template', 'svg', 'iframe', 'object', 'nav', 'img', 'head', 'button', 'select'];

function optionsFor(maxChars: number): HtmlToTextOptions {
  return {
    wordwrap: false,
    formatters: { mdHeading },
    limits: { maxInputLength: maxChars },
    selectors: [
      ...[1, 2, 3, 4, 5, 6].map((level) => ({ selector: `h${level}`, format: 'mdHeading', options: { level } })),
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'ul', options: { itemPrefix: ' - ' } },
      { selector: 'table', format: 'block' },
      { selector: 'tr', format: 'block', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
      { selector: 'td', format: 'inlineSurround', options: { suffix: ' | ' } },
      { selector: 'th', format: 'inlineSurround', options: { suffix: ' | ' } },
      // Word tables (via mammoth) wrap each cell's text in <p>; keep a row on one line anyway.
      { selector: 'td > p', format: 'inlineSurround', options: { suffix: ' ' } },
      { selector: 'th > p', format: 'inlineSurround', options: { suffix: ' ' } },
      { selector: 'hr', format: 'blockString', options: { string: '' } },
      ...SKIP.map((selector) => ({ selector, format: 'skip' })),
    ],
  };
}

export function htmlToStructuredText(html: string, maxChars: number): string {
  const text = convert(html, optionsFor(maxChars));
  return text
    .split('\n')
    .map((line) => line.replace(/[ \t]+\|/g, ' |').replace(/\s*\|\s*$/, '').replace(/[ \t]+$/, ''))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** The document's <title>, entity-decoded and whitespace-collapsed. */
export function htmlTitle(html: string): string | undefined {
  const m = /<title[^>]*>([\s\S]*?)<\/title\s*>/i.exec(html.slice(0, 200_000));
  if (!m) return undefined;
  const title = convert(`<p>${m[1]}</p>`, { wordwrap: false }).replace(/\s+/g, ' ').trim();
  return title || undefined;
}
