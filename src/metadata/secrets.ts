import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, type Config } from '../config.ts';

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

function parseKey(b64: string, where: string): Buffer {
  // Node's base64 decoder accepts the URL-safe alphabet too, so both spellings work.
  const key = Buffer.from(b64.trim(), 'base64');
  if (key.length !== KEY_BYTES) throw new ConfigError(`${where} must be ${KEY_BYTES} bytes, base64 (got ${key.length} bytes)`);
  return key;
}

/**
 * The key that encrypts source credentials at rest: CLEARANCE_SECRET_KEY when set, otherwise
 * `<dataDir>/secret.key`, created (mode 0600) on first start and reused afterwards.
 */
export async function loadOrCreateSecretKey(config: Pick<Config, 'dataDir' | 'CLEARANCE_SECRET_KEY'>): Promise<Buffer> {
  if (config.CLEARANCE_SECRET_KEY) return parseKey(config.CLEARANCE_SECRET_KEY, 'CLEARANCE_SECRET_KEY');
  const file = path.join(config.dataDir, 'secret.key');
  try {
    return parseKey(await fs.readFile(file, 'utf8'), `CLEARANCE_SECRET_KEY: key file ${file}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await fs.mkdir(config.dataDir, { recursive: true });
  // Written fully under a temporary name, then linked into place: link() fails if the file exists,
  // so when two processes start at once exactly one key wins and nobody reads a half-written file.
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, randomBytes(KEY_BYTES).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  try {
    await fs.link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await fs.rm(tmp, { force: true });
  }
  return parseKey(await fs.readFile(file, 'utf8'), `CLEARANCE_SECRET_KEY: key file ${file}`);
}

/** AES-256-GCM; output is `v1:` + base64(iv ‖ tag ‖ ciphertext). */
export function encryptJson(key: Buffer, value: unknown): string {
  if (key.length !== KEY_BYTES) throw new Error(`Secret key must be ${KEY_BYTES} bytes`);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  return `${VERSION}:${Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64')}`;
}

/** Throws when the ciphertext was altered or encrypted under another key (GCM authentication). */
export function decryptJson<T = unknown>(key: Buffer, payload: string): T {
  if (key.length !== KEY_BYTES) throw new Error(`Secret key must be ${KEY_BYTES} bytes`);
  const [version, b64, ...rest] = payload.split(':');
  if (version !== VERSION || b64 === undefined || rest.length > 0) throw new Error('Unrecognised encrypted value');
  const raw = Buffer.from(b64, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new Error('Encrypted value is truncated');
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new Error('Encrypted value failed authentication (tampered, or encrypted with another key)');
  }
  return JSON.parse(plain.toString('utf8')) as T;
}
