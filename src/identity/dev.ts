import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { jwtVerify, SignJWT } from 'jose';
import { loadConfig, type Config } from '../config.ts';
import type { Caller } from '../types.ts';
import { CLOCK_TOLERANCE_SECONDS, emailFrom, groupsFrom, toAuthError, userCaller } from './claims.ts';

/** Issuer and audience of dev tokens; no real IdP uses them, so they cannot be mistaken for OIDC tokens. */
export const DEV_ISSUER = 'clearance-dev';
export const DEV_AUDIENCE = 'clearance-dev';
const DEV_ALG = 'HS256';
const KEY_FILE = 'dev-token.key';

export function devKeyPath(dataDir: string): string {
  return path.join(path.resolve(dataDir), KEY_FILE);
}

/**
 * The per-data-dir HMAC secret, created (0600) on first use. `wx` makes concurrent first uses by the
 * CLI and the server agree on one key: the loser of the race reads the winner's file.
 */
export function loadDevSecret(dataDir: string): Uint8Array {
  const file = devKeyPath(dataDir);
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64url') + '\n', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const secret = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64url');
  if (secret.length < 32) throw new Error(`The dev token key ${file} is empty or corrupt; delete it to generate a new one`);
  return new Uint8Array(secret);
}

export interface DevTokenOptions {
  email: string;
  groups?: string[];
  admin?: boolean;
  compliance?: boolean;
  /** Seconds from now, or a jose time span such as "8h" or "30 days". Default 12h. */
  expiresIn?: number | string;
  /** Defaults to the configured CLEARANCE_DATA_DIR. */
  dataDir?: string;
}

/** Mints a token that only a server running with AUTH_MODE=dev on the same data dir accepts. */
export async function mintDevToken(opts: DevTokenOptions): Promise<string> {
  const email = emailFrom(opts.email);
  const dataDir = opts.dataDir ?? loadConfig().dataDir;
  const claims: Record<string, unknown> = { email, groups: groupsFrom(opts.groups ?? []) };
  if (opts.admin) claims.admin = true;
  if (opts.compliance) claims.compliance = true;
  const expiresIn = opts.expiresIn ?? '12h';
  return new SignJWT(claims)
    .setProtectedHeader({ alg: DEV_ALG, typ: 'JWT' })
    .setIssuer(DEV_ISSUER)
    .setAudience(DEV_AUDIENCE)
    .setSubject(email)
    .setIssuedAt()
    // jose reads a bare number as an absolute epoch time; ours means "seconds from now".
    .setExpirationTime(typeof expiresIn === 'number' ? Math.floor(Date.now() / 1000) + expiresIn : expiresIn)
    .sign(loadDevSecret(dataDir));
}

export interface DevVerifier {
  verify(token: string): Promise<Caller>;
}

export function createDevVerifier(config: Pick<Config, 'dataDir' | 'ADMIN_GROUP' | 'COMPLIANCE_GROUP'>): DevVerifier {
  let secret: Uint8Array | undefined;
  const roles = { adminGroup: config.ADMIN_GROUP, complianceGroup: config.COMPLIANCE_GROUP };
  return {
    async verify(token: string): Promise<Caller> {
      secret ??= loadDevSecret(config.dataDir);
      let payload;
      try {
        ({ payload } = await jwtVerify(token, secret, {
          issuer: DEV_ISSUER,
          audience: DEV_AUDIENCE,
          algorithms: [DEV_ALG],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
          requiredClaims: ['exp'],
        }));
      } catch (err) {
        throw toAuthError(err);
      }
      return userCaller(emailFrom(payload.email), groupsFrom(payload.groups), roles, {
        admin: payload.admin === true,
        compliance: payload.compliance === true,
      });
    },
  };
}
