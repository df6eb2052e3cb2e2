import pino from 'pino';

/** Structured logs on stderr; credentials and tokens are redacted wherever they appear. */
export function createLogger(level: string) {
  return pino({
    level,
    redact: { paths: ['*.credentials', '*.clientSecret', '*.apiToken', '*.serviceAccountKey', '*.authorization', 'req.headers.authorization'], censor: '[redacted]' },
  }, pino.destination(2));
}
