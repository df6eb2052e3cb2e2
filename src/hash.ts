import { createHash } from 'node:crypto';

/** Hex sha256 of a string or bytes: content hashes, key hashes, idempotency keys. */
export const sha256 = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
