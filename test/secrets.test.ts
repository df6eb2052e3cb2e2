import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../src/config.ts';
import { decryptJson, encryptJson, loadOrCreateSecretKey } from '../src/metadata/secrets.ts';

describe('encryptJson / decryptJson', () => {
  const key = randomBytes(32);
  const creds = { clientId: 'abc', clientSecret: 's3cr3t', nested: { list: [1, 'two', null], ok: true }, unicode: 'ünïcødé ✓' };

  it('round-trips JSON values', () => {
    const enc = encryptJson(key, creds);
    expect(enc).toMatch(/^v1:[A-Za-z0-9+/]+=*$/);
    expect(enc).not.toContain('s3cr3t');
    expect(decryptJson(key, enc)).toEqual(creds);
    expect(decryptJson(key, encryptJson(key, 'plain string'))).toBe('plain string');
    expect(decryptJson(key, encryptJson(key, null))).toBeNull();
  });

  it('uses a fresh IV each time', () => {
    expect(encryptJson(key, creds)).not.toBe(encryptJson(key, creds));
  });

  it('throws on any tampering', () => {
    const enc = encryptJson(key, creds);
    const raw = Buffer.from(enc.slice(3), 'base64');
    // Flip one bit in the IV, the tag and the ciphertext in turn.
    for (const pos of [0, 12, 28, raw.length - 1]) {
      const t = Buffer.from(raw);
      t[pos]! ^= 0x01;
      expect(() => decryptJson(key, `v1:${t.toString('base64')}`)).toThrow(/authentication/);
    }
    expect(() => decryptJson(key, `v1:${raw.subarray(0, raw.length - 1).toString('base64')}`)).toThrow();
    expect(() => decryptJson(key, `v1:${raw.subarray(0, 20).toString('base64')}`)).toThrow(/truncated/);
    expect(() => decryptJson(key, enc.replace(/^v1:/, 'v2:'))).toThrow(/Unrecognised/);
    expect(() => decryptJson(key, 'not encrypted')).toThrow();
  });

  it('throws with another key', () => {
    expect(() => decryptJson(randomBytes(32), encryptJson(key, creds))).toThrow(/another key/);
  });

  it('refuses keys of the wrong size', () => {
    expect(() => encryptJson(randomBytes(16), creds)).toThrow(/32 bytes/);
  });
});

describe('loadOrCreateSecretKey', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'clearance-secret-')), 'nested', 'data');
  });
  afterEach(async () => {
    await fs.rm(path.dirname(path.dirname(dataDir)), { recursive: true, force: true });
  });

  it('uses CLEARANCE_SECRET_KEY when set and writes no file', async () => {
    const raw = randomBytes(32);
    const key = await loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: raw.toString('base64') });
    expect(key.equals(raw)).toBe(true);
    const urlSafe = await loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: raw.toString('base64url') });
    expect(urlSafe.equals(raw)).toBe(true);
    await expect(fs.stat(path.join(dataDir, 'secret.key'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects a CLEARANCE_SECRET_KEY that is not 32 bytes with a ConfigError naming it', async () => {
    const err = await loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: randomBytes(40).toString('base64') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(/^CLEARANCE_SECRET_KEY/);
  });

  it('creates <dataDir>/secret.key with mode 0600 on first start and reuses it', async () => {
    const first = await loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: undefined });
    expect(first.length).toBe(32);
    const file = path.join(dataDir, 'secret.key');
    const st = await fs.stat(file);
    expect(st.mode & 0o777).toBe(0o600);
    const second = await loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: undefined });
    expect(second.equals(first)).toBe(true);
    // What one start encrypted, the next can decrypt.
    expect(decryptJson(second, encryptJson(first, { a: 1 }))).toEqual({ a: 1 });
    expect((await fs.readdir(dataDir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('concurrent first starts agree on one key', async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, () => loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: undefined })));
    for (const k of keys) expect(k.equals(keys[0]!)).toBe(true);
  });

  it('refuses a damaged key file instead of silently replacing it', async () => {
    await fs.mkdir(dataDir, { recursive: true });
    await fs.writeFile(path.join(dataDir, 'secret.key'), 'too-short');
    await expect(loadOrCreateSecretKey({ dataDir, CLEARANCE_SECRET_KEY: undefined })).rejects.toThrow(/secret\.key/);
  });
});
