import { errors as joseErrors, type JWTPayload } from 'jose';
import { AppError, unauthorized } from '../errors.ts';
import type { Caller } from '../types.ts';

/** Tokens a few seconds "expired" or "not yet valid" are usually clock skew between hosts, not replay. */
export const CLOCK_TOLERANCE_SECONDS = 30;

export interface RoleGroups {
  adminGroup?: string;
  complianceGroup?: string;
}

/**
 * Reads a claim by exact name first, then as a dotted path, so nested claims such as Keycloak's
 * `realm_access.roles` can be configured without a claim-mapping step at the IdP.
 */
export function readClaim(payload: JWTPayload, name: string): unknown {
  if (Object.prototype.hasOwnProperty.call(payload, name)) return payload[name];
  if (!name.includes('.')) return undefined;
  let cur: unknown = payload;
  for (const part of name.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A groups claim that is not an array is treated as no groups rather than guessed at (fail closed). */
export function groupsFrom(value: unknown): string[] {
  if (!Array.isArray(value)) return [];
  const out = new Set<string>();
  for (const g of value) if (typeof g === 'string' && g.trim() !== '') out.add(g.trim());
  return [...out];
}

export function emailFrom(value: unknown): string {
  if (typeof value !== 'string') throw unauthorized('Token has no email claim');
  const email = value.trim().toLowerCase();
  // Principals are derived from the address (user:, domain:), so anything that is not one grants nothing.
  if (!/^[^\s@]+@[^\s@]+$/.test(email)) throw unauthorized('Token email claim is not an email address');
  return email;
}

export function userCaller(email: string, groups: string[], roles: RoleGroups, extra: { admin?: boolean; compliance?: boolean } = {}): Caller {
  const isAdmin = extra.admin === true || (!!roles.adminGroup && groups.includes(roles.adminGroup));
  const isCompliance = isAdmin || extra.compliance === true || (!!roles.complianceGroup && groups.includes(roles.complianceGroup));
  return { kind: 'user', email, groups, isAdmin, isCompliance };
}

/** The identity provider (or its keys) could not be reached: not the caller's fault, so not a 401. */
export const idpUnavailable = () => new AppError(503, 'Service Unavailable', 'Identity provider keys are unavailable, try again shortly');

/**
 * Turns a jose failure into a short, caller-safe reason. Key-fetch failures become 503 so that clients
 * do not throw away a good token because the IdP had a hiccup.
 */
export function toAuthError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof joseErrors.JWTExpired) return unauthorized('Token expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud': return unauthorized('Token audience is not accepted');
      case 'iss': return unauthorized('Token issuer is not accepted');
      case 'nbf': return unauthorized('Token is not yet valid');
      case 'exp': return unauthorized('Token has no expiry');
      case 'iat': return unauthorized('Token issue time is invalid');
      default: return unauthorized('Token claims are invalid');
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return unauthorized('Token signing algorithm is not accepted');
  if (err instanceof joseErrors.JWKSNoMatchingKey) return unauthorized('Token signing key is unknown');
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return unauthorized('Token signature is invalid');
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid) return unauthorized('Token is malformed');
  if (err instanceof joseErrors.JOSENotSupported) return unauthorized('Token signing algorithm is not accepted');
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return idpUnavailable();
  // Plain JOSEError (non-200 JWKS response) and network errors from fetch.
  if (err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC') return idpUnavailable();
  if (err instanceof TypeError || (err instanceof Error && err.name === 'AbortError')) return idpUnavailable();
  return unauthorized('Token is invalid');
}
