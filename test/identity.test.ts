import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../src/config.ts';
import { AppError } from '../src/errors.ts';
import { callerPrincipals } from '../src/access/index.ts';
import { createAuthenticator, mintDevToken, requireAdmin, requireCompliance } from '../src/identity/index.ts';
import { devKeyPath } from '../src/identity/dev.ts';
import type { Caller } from '../src/types.ts';

const AUDIENCE = 'api://clearance';
const ADMIN_TOKEN = 'adm-0123456789abcdef-secret';

type Key = { privateKey: CryptoKey; jwk: JWK; alg: string; kid: string };
async function makeKey(alg: 'RS256' | 'ES256', kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg, kid };
}

let server: Server;
let issuer: string;
let rsa: Key, ec: Key, stranger: Key, impostor: Key;
const hits = { discovery: 0, jwks: 0 };
let dataDir: string;

beforeAll(async () => {
  rsa = await makeKey('RS256', 'rsa-1');
  ec = await makeKey('ES256', 'ec-1');
  stranger = await makeKey('RS256', 'not-published');
  // Same kid as a published key, different key material: a forged signature.
  impostor = await makeKey('RS256', 'rsa-1');
  server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      hits.discovery++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/only-in-discovery/keys.json` }));
    } else if (req.url === '/only-in-discovery/keys.json') {
      hits.jwks++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [rsa.jwk, ec.jwk] }));
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'clearance-identity-'));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(dataDir, { recursive: true, force: true });
});

function config(over: Record<string, string> = {}): Config {
  return loadConfig({
    CLEARANCE_DATA_DIR: dataDir,
    OIDC_ISSUER: issuer,
    OIDC_AUDIENCE: AUDIENCE,
    OIDC_JWKS_URL: `${issuer}/only-in-discovery/keys.json`,
    ADMIN_TOKEN,
    ADMIN_GROUP: 'clearance-admins',
    COMPLIANCE_GROUP: 'compliance',
    ...over,
  });
}

async function sign(key: Key, claims: JWTPayload, opts: { iss?: string; aud?: string; exp?: number | string | null; kid?: string | null } = {}) {
  const header: { alg: string; kid?: string } = { alg: key.alg };
  if (opts.kid !== null) header.kid = opts.kid ?? key.kid;
  const jwt = new SignJWT(claims).setProtectedHeader(header).setIssuer(opts.iss ?? issuer).setAudience(opts.aud ?? AUDIENCE).setIssuedAt();
  if (opts.exp !== null) jwt.setExpirationTime(opts.exp ?? '5m');
  return jwt.sign(key.privateKey);
}

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(() => { throw new Error('expected a rejection'); }, (e: unknown) => e);
  expect(err).toBeInstanceOf(AppError);
  return err as AppError;
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('OIDC bearer tokens', () => {
  const auth = () => createAuthenticator(config());

  it('accepts a valid RS256 token and lower-cases the email', async () => {
    const token = await sign(rsa, { email: 'Alice@Acme.TEST', groups: ['engineering', 'oncall'] });
    const caller = await auth().authenticate(`Bearer ${token}`);
    expect(caller).toEqual({ kind: 'user', email: 'alice@acme.test', groups: ['engineering', 'oncall'], isAdmin: false, isCompliance: false });
  });

  it('accepts a valid ES256 token', async () => {
    const token = await sign(ec, { email: 'bob@acme.test', groups: ['finance'] });
    const caller = await auth().authenticate(`bearer ${token}`);
    expect(caller.email).toBe('bob@acme.test');
    expect(caller.groups).toEqual(['finance']);
  });

  it('rejects an expired token, but tolerates small clock skew', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await sign(rsa, { email: 'a@acme.test' }, { exp: now - 120 });
    const err = await rejection(auth().authenticate(`Bearer ${expired}`));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/expired/i);
    const skewed = await sign(rsa, { email: 'a@acme.test' }, { exp: now - 5 });
    expect((await auth().authenticate(`Bearer ${skewed}`)).email).toBe('a@acme.test');
  });

  it('rejects a token without an expiry', async () => {
    const token = await sign(rsa, { email: 'a@acme.test' }, { exp: null });
    expect((await rejection(auth().authenticate(`Bearer ${token}`))).status).toBe(401);
  });

  it('rejects a wrong audience', async () => {
    const token = await sign(rsa, { email: 'a@acme.test' }, { aud: 'api://someone-else' });
    const err = await rejection(auth().authenticate(`Bearer ${token}`));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/audience/i);
  });

  it('rejects a wrong issuer', async () => {
    const token = await sign(rsa, { email: 'a@acme.test' }, { iss: 'https://evil.example' });
    const err = await rejection(auth().authenticate(`Bearer ${token}`));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/issuer/i);
  });

  it('rejects a token signed by a key that is not in the JWKS', async () => {
    const token = await sign(stranger, { email: 'a@acme.test' });
    const err = await rejection(auth().authenticate(`Bearer ${token}`));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/unknown/i);
  });

  it('rejects a forged signature under a published kid', async () => {
    const token = await sign(impostor, { email: 'a@acme.test' });
    const err = await rejection(auth().authenticate(`Bearer ${token}`));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/signature/i);
  });

  it('accepts a token without kid by trying each key of its type', async () => {
    const token = await sign(ec, { email: 'nokid@acme.test' }, { kid: null });
    expect((await auth().authenticate(`Bearer ${token}`)).email).toBe('nokid@acme.test');
  });

  it('rejects alg none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ iss: issuer, aud: AUDIENCE, exp: now + 300, email: 'a@acme.test' })}.`;
    const err = await rejection(auth().authenticate(`Bearer ${token}`));
    expect(err.status).toBe(401);
  });

  it('rejects HS256 tokens, including one keyed with the public key (key confusion)', async () => {
    for (const secret of [new TextEncoder().encode('x'.repeat(32)), new TextEncoder().encode(JSON.stringify(rsa.jwk))]) {
      const token = await new SignJWT({ email: 'a@acme.test' }).setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
        .setIssuer(issuer).setAudience(AUDIENCE).setExpirationTime('5m').sign(secret);
      const err = await rejection(auth().authenticate(`Bearer ${token}`));
      expect(err.status).toBe(401);
      expect(err.message).toMatch(/algorithm/i);
    }
  });

  it('never lets HS* or none in through OIDC_ALGORITHMS', async () => {
    expect(() => createAuthenticator(config({ OIDC_ALGORITHMS: 'HS256,none' }))).toThrow(/OIDC_ALGORITHMS/);
    const a = createAuthenticator(config({ OIDC_ALGORITHMS: 'HS256,ES256' }));
    const rs = await sign(rsa, { email: 'a@acme.test' });
    expect((await rejection(a.authenticate(`Bearer ${rs}`))).message).toMatch(/algorithm/i);
    expect((await a.authenticate(`Bearer ${await sign(ec, { email: 'a@acme.test' })}`)).email).toBe('a@acme.test');
  });

  it('rejects a token without an email claim', async () => {
    const token = await sign(rsa, { sub: 'user-1', groups: ['engineering'] });
    const err = await rejection(auth().authenticate(`Bearer ${token}`));
    expect(err.status).toBe(401);
    expect(err.message).toMatch(/email/i);
  });

  it('rejects an email explicitly marked unverified', async () => {
    const token = await sign(rsa, { email: 'ceo@acme.test', email_verified: false });
    expect((await rejection(auth().authenticate(`Bearer ${token}`))).status).toBe(401);
  });

  it('uses the configured email and groups claims, including dotted paths', async () => {
    const a = createAuthenticator(config({ OIDC_EMAIL_CLAIM: 'upn', OIDC_GROUPS_CLAIM: 'realm_access.roles' }));
    const token = await sign(rsa, { upn: 'Carol@Acme.test', email: 'other@acme.test', realm_access: { roles: ['hr'] } });
    const caller = await a.authenticate(`Bearer ${token}`);
    expect(caller.email).toBe('carol@acme.test');
    expect(caller.groups).toEqual(['hr']);
  });

  it('treats an absent or non-array groups claim as no groups', async () => {
    for (const claims of [{}, { groups: 'engineering' }, { groups: { engineering: true } }, { groups: null }]) {
      const token = await sign(rsa, { email: 'a@acme.test', ...claims });
      expect((await auth().authenticate(`Bearer ${token}`)).groups).toEqual([]);
    }
    const mixed = await sign(rsa, { email: 'a@acme.test', groups: ['finance', 7, '', null, 'finance'] });
    expect((await auth().authenticate(`Bearer ${mixed}`)).groups).toEqual(['finance']);
  });

  it('grants admin and compliance roles from the configured groups', async () => {
    const admin = await auth().authenticate(`Bearer ${await sign(rsa, { email: 'root@acme.test', groups: ['clearance-admins'] })}`);
    expect(admin).toMatchObject({ kind: 'user', isAdmin: true, isCompliance: true });
    expect(() => requireAdmin(admin)).not.toThrow();
    expect(() => requireCompliance(admin)).not.toThrow();

    const reviewer = await auth().authenticate(`Bearer ${await sign(rsa, { email: 'rev@acme.test', groups: ['compliance'] })}`);
    expect(reviewer).toMatchObject({ isAdmin: false, isCompliance: true });
    expect(() => requireCompliance(reviewer)).not.toThrow();
    expect(() => requireAdmin(reviewer)).toThrow(expect.objectContaining({ status: 403 }));

    const plain = await auth().authenticate(`Bearer ${await sign(rsa, { email: 'u@acme.test', groups: ['engineering'] })}`);
    expect(() => requireAdmin(plain)).toThrow(expect.objectContaining({ status: 403 }));
    expect(() => requireCompliance(plain)).toThrow(expect.objectContaining({ status: 403 }));
  });

  it('refuses every token when no issuer is configured', async () => {
    const a = createAuthenticator(config({ OIDC_ISSUER: '', OIDC_AUDIENCE: '', OIDC_JWKS_URL: '' }));
    const token = await sign(rsa, { email: 'a@acme.test' });
    expect((await rejection(a.authenticate(`Bearer ${token}`))).status).toBe(401);
  });

  it('finds the JWKS through the discovery document when OIDC_JWKS_URL is unset, fetching it once', async () => {
    const before = { ...hits };
    const withUrl = createAuthenticator(config());
    await withUrl.authenticate(`Bearer ${await sign(rsa, { email: 'a@acme.test' })}`);
    expect(hits.discovery).toBe(before.discovery);

    const a = createAuthenticator(config({ OIDC_JWKS_URL: '' }));
    for (let i = 0; i < 3; i++) {
      const caller = await a.authenticate(`Bearer ${await sign(i % 2 ? ec : rsa, { email: `d${i}@acme.test` })}`);
      expect(caller.email).toBe(`d${i}@acme.test`);
    }
    expect(hits.discovery).toBe(before.discovery + 1);
  });

  it('answers 503, not 401, when the identity provider cannot be reached', async () => {
    const a = createAuthenticator(config({ OIDC_ISSUER: 'http://127.0.0.1:1', OIDC_JWKS_URL: '' }));
    const token = await sign(rsa, { email: 'a@acme.test' }, { iss: 'http://127.0.0.1:1' });
    expect((await rejection(a.authenticate(`Bearer ${token}`))).status).toBe(503);
  });
});

describe('header handling and the admin token', () => {
  const auth = () => createAuthenticator(config());

  it('accepts ADMIN_TOKEN as the bootstrap admin', async () => {
    const caller = await auth().authenticate(`Bearer ${ADMIN_TOKEN}`);
    expect(caller).toEqual({ kind: 'admin-token', email: null, groups: [], isAdmin: true, isCompliance: true });
  });

  it('rejects a wrong admin token, a missing header and other schemes', async () => {
    for (const header of [`Bearer ${ADMIN_TOKEN}x`, `Bearer ${ADMIN_TOKEN.slice(0, -1)}`, undefined, '', `Basic ${ADMIN_TOKEN}`, ADMIN_TOKEN, 'Bearer ']) {
      const err = await rejection(auth().authenticate(header));
      expect(err.status).toBe(401);
      expect(err.message).not.toMatch(/ERR_|jose|stack/i);
    }
  });

  it('does not accept any token as admin when ADMIN_TOKEN is unset', async () => {
    const a = createAuthenticator(config({ ADMIN_TOKEN: '' }));
    expect((await rejection(a.authenticate(`Bearer ${ADMIN_TOKEN}`))).status).toBe(401);
  });
});

describe('dev mode', () => {
  const devConfig = () => config({ AUTH_MODE: 'dev' });

  it('round-trips a minted token and keeps the key private to the data dir', async () => {
    const token = await mintDevToken({ dataDir, email: 'Alice@acme.test', groups: ['engineering'], expiresIn: 600 });
    const caller = await createAuthenticator(devConfig()).authenticate(`Bearer ${token}`);
    expect(caller).toEqual({ kind: 'user', email: 'alice@acme.test', groups: ['engineering'], isAdmin: false, isCompliance: false });
    expect(statSync(devKeyPath(dataDir)).mode & 0o777).toBe(0o600);
  });

  it('marks admin dev tokens as admin', async () => {
    const token = await mintDevToken({ dataDir, email: 'ops@acme.test', groups: [], admin: true, expiresIn: '1h' });
    expect(await createAuthenticator(devConfig()).authenticate(`Bearer ${token}`)).toMatchObject({ isAdmin: true, isCompliance: true });
  });

  it('rejects expired dev tokens and tokens minted for another data dir', async () => {
    const expired = await mintDevToken({ dataDir, email: 'a@acme.test', expiresIn: -600 });
    expect((await rejection(createAuthenticator(devConfig()).authenticate(`Bearer ${expired}`))).message).toMatch(/expired/i);
    const otherDir = mkdtempSync(path.join(os.tmpdir(), 'clearance-identity-other-'));
    try {
      const foreign = await mintDevToken({ dataDir: otherDir, email: 'a@acme.test', expiresIn: 600 });
      expect((await rejection(createAuthenticator(devConfig()).authenticate(`Bearer ${foreign}`))).message).toMatch(/signature/i);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  });

  it('does not accept OIDC tokens in dev mode', async () => {
    const token = await sign(rsa, { email: 'a@acme.test' });
    expect((await rejection(createAuthenticator(devConfig()).authenticate(`Bearer ${token}`))).status).toBe(401);
  });

  it('does not accept dev tokens in oidc mode', async () => {
    const token = await mintDevToken({ dataDir, email: 'a@acme.test', groups: ['clearance-admins'], admin: true, expiresIn: 600 });
    expect((await rejection(createAuthenticator(config()).authenticate(`Bearer ${token}`))).status).toBe(401);
  });

  it('still accepts the admin token in dev mode', async () => {
    expect((await createAuthenticator(devConfig()).authenticate(`Bearer ${ADMIN_TOKEN}`)).kind).toBe('admin-token');
  });
});

describe('callerPrincipals', () => {
  const user = (email: string | null, groups: string[] = []): Caller =>
    ({ kind: email ? 'user' : 'admin-token', email, groups, isAdmin: !email, isCompliance: !email });

  it('lists user, groups, domain, everyone and the source groups', () => {
    const p = callerPrincipals(user('alice@acme.test', ['engineering', 'oncall']), ['sgroup:src1/g-42', 'sgroup:src2/eng@acme.test']);
    expect(p.sort()).toEqual([
      'domain:acme.test', 'everyone', 'group:engineering', 'group:oncall',
      'sgroup:src1/g-42', 'sgroup:src2/eng@acme.test', 'user:alice@acme.test',
    ]);
  });

  it('gives the admin token no principals at all', () => {
    expect(callerPrincipals(user(null), ['sgroup:src1/g-42'])).toEqual([]);
  });

  it('drops anything passed as a source group that is not an sgroup principal', () => {
    const p = callerPrincipals(user('bob@acme.test'), ['everyone', 'user:dana@acme.test', 'group:hr', 'sgroup:', 'sgroup:s1/x']);
    expect(p).not.toContain('user:dana@acme.test');
    expect(p).not.toContain('group:hr');
    expect(p.filter((x) => x.startsWith('sgroup:'))).toEqual(['sgroup:s1/x']);
  });

  it('agrees with the authenticator end to end', async () => {
    const token = await sign(rsa, { email: 'Bob@ACME.test', groups: ['finance'] });
    const caller = await createAuthenticator(config()).authenticate(`Bearer ${token}`);
    expect(callerPrincipals(caller, []).sort()).toEqual(['domain:acme.test', 'everyone', 'group:finance', 'user:bob@acme.test']);
  });
});
