import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config.ts';
import { forbidden, unauthorized } from '../errors.ts';
import type { Caller } from '../types.ts';
import { createDevVerifier } from './dev.ts';
import { createOidcVerifier } from './oidc.ts';

export { mintDevToken, DEV_ISSUER, type DevTokenOptions } from './dev.ts';

export interface Authenticator {
  /** Resolves the Authorization header to a caller; throws a 401 AppError (503 when the IdP's keys are unreachable). */
  authenticate(authorizationHeader: string | undefined): Promise<Caller>;
}

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function createAuthenticator(config: Config): Authenticator {
  // Digests have a fixed length, so timingSafeEqual never throws and the comparison leaks neither
  // the token's content nor its length.
  const adminDigest = config.ADMIN_TOKEN ? sha256(config.ADMIN_TOKEN) : undefined;
  const verifier = config.AUTH_MODE === 'dev' ? createDevVerifier(config) : createOidcVerifier(config);

  return {
    async authenticate(header) {
      if (!header || header.trim() === '') throw unauthorized('Missing bearer token');
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
      if (!m) throw unauthorized('Expected an Authorization: Bearer token');
      const token = m[1]!;
      if (adminDigest && timingSafeEqual(sha256(token), adminDigest)) {
        return { kind: 'admin-token', email: null, groups: [], isAdmin: true, isCompliance: true };
      }
      return verifier.verify(token);
    },
  };
}

export function requireAdmin(caller: Caller): void {
  if (!caller.isAdmin) throw forbidden('This action needs the admin role');
}

export function requireCompliance(caller: Caller): void {
  if (!caller.isCompliance && !caller.isAdmin) throw forbidden('This action needs the compliance role');
}
