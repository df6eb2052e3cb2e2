/** The content is of a kind we do not index (images, archives, spreadsheets, scanned PDFs…): skip it. */
export class UnsupportedContentError extends Error {
  readonly reason: string;
  constructor(reason: string) {
    super(reason);
    this.name = 'UnsupportedContentError';
    this.reason = reason;
  }
}

/** The content claims a supported format but cannot be read (corrupt, truncated, encrypted). */
export class ExtractionError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'ExtractionError';
  }
}
