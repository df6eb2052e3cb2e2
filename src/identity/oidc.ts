import { createRemoteJWKSet, errors as joseErrors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose';
import { ConfigError, type Config } from '../config.ts';
import { unauthorized } from '../errors.ts';
import type { Caller } from '../types.ts';
import { CLOCK_TOLERANCE_SECONDS, emailFrom, groupsFrom, idpUnavailable, readClaim, toAuthError, userCaller } from './claims.ts';

const FETCH_TIMEOUT_MS = 5_000;

export type OidcConfig = Pick<Config,
  'OIDC_ISSUER' | 'OIDC_AUDIENCE' | 'OIDC_JWKS_URL' | 'OIDC_EMAIL_CLAIM' | 'OIDC_GROUPS_CLAIM' | 'OIDC_ALGORITHMS' | 'ADMIN_GROUP' | 'COMPLIANCE_GROUP'>;

/**
 * The algorithms an OIDC token may use. Symmetric (HS*) algorithms are dropped: with an IdP they mean
 * either a shared secret we do not have or a key-confusion attack using a public key as the secret.
 */
export function oidcAlgorithms(list: string): string[] {
  const algs = list.split(',').map((a) => a.trim()).filter((a) => a !== '' && a.toLowerCase() !== 'none' && !/^HS/i.test(a));
  if (algs.length === 0) throw new ConfigError('Invalid configuration: OIDC_ALGORITHMS: no asymmetric signing algorithm left (none and HS* are never accepted)');
  return [...new Set(algs)];
}

/** Where the issuer's discovery document lives (OpenID Connect Discovery 1.0, section 4). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

async function fetchJwksUri(issuer: string): Promise<URL> {
  let res: Response;
  try {
    res = await fetch(discoveryUrl(issuer), { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), headers: { accept: 'application/json' } });
  } catch {
    throw idpUnavailable();
  }
  if (!res.ok) throw idpUnavailable();
  let doc: unknown;
  try {
    doc = await res.json();
  } catch {
    throw idpUnavailable();
  }
  const uri = doc && typeof doc === 'object' ? (doc as Record<string, unknown>).jwks_uri : undefined;
  if (typeof uri !== 'string') throw idpUnavailable();
  try {
    const url = new URL(uri);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('bad protocol');
    return url;
  } catch {
    throw idpUnavailable();
  }
}

export interface OidcVerifier {
  verify(token: string): Promise<Caller>;
}

/**
 * Verifies IdP-issued bearer tokens. Keys come from OIDC_JWKS_URL, or from the issuer's discovery
 * document, fetched once; a failed discovery is retried on the next request rather than cached.
 */
export function createOidcVerifier(config: OidcConfig): OidcVerifier {
  const issuer = config.OIDC_ISSUER;
  if (!issuer) {
    // Without an issuer nothing can be verified; every token is refused rather than half-checked.
    return { verify: async () => { throw unauthorized('Token issuer is not accepted'); } };
  }
  if (!config.OIDC_AUDIENCE) throw new ConfigError('Invalid configuration: OIDC_AUDIENCE is required when OIDC_ISSUER is set');
  const audience = config.OIDC_AUDIENCE.split(',').map((a) => a.trim()).filter(Boolean);
  const options: JWTVerifyOptions = {
    issuer,
    audience,
    algorithms: oidcAlgorithms(config.OIDC_ALGORITHMS),
    clockTolerance: CLOCK_TOLERANCE_SECONDS,
    requiredClaims: ['exp'],
  };
  const roles = { adminGroup: config.ADMIN_GROUP, complianceGroup: config.COMPLIANCE_GROUP };

  let jwks: Promise<JWTVerifyGetKey> | undefined;
  const keys = (): Promise<JWTVerifyGetKey> => {
    if (!jwks) {
      const remote = (url: URL) => createRemoteJWKSet(url, { timeoutDuration: FETCH_TIMEOUT_MS });
      jwks = config.OIDC_JWKS_URL
        ? Promise.resolve(remote(new URL(config.OIDC_JWKS_URL)))
        : fetchJwksUri(issuer).then(remote);
      jwks.catch(() => { jwks = undefined; });
    }
    return jwks;
  };

  const verifyPayload = async (token: string): Promise<JWTPayload> => {
    const getKey = await keys();
    try {
      return (await jwtVerify(token, getKey, options)).payload;
    } catch (err) {
      // A token without `kid` against a JWKS with several keys of its type: try each one (jose leaves this to us).
      if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
      for await (const key of err as unknown as AsyncIterable<CryptoKey>) {
        try {
          return (await jwtVerify(token, key, options)).payload;
        } catch (inner) {
          if (!(inner instanceof joseErrors.JWSSignatureVerificationFailed)) throw inner;
        }
      }
      throw new joseErrors.JWSSignatureVerificationFailed();
    }
  };

  return {
    async verify(token: string): Promise<Caller> {
      let payload: JWTPayload;
      try {
        payload = await verifyPayload(token);
      } catch (err) {
        throw toAuthError(err);
      }
      // IdPs that let users type any address (social logins) mark it; an unverified address is no identity.
      if (config.OIDC_EMAIL_CLAIM === 'email' && (payload.email_verified === false || payload.email_verified === 'false')) throw unauthorized('Token email is not verified');
      const email = emailFrom(readClaim(payload, config.OIDC_EMAIL_CLAIM));
      const groups = groupsFrom(readClaim(payload, config.OIDC_GROUPS_CLAIM));
      return userCaller(email, groups, roles);
    },
  };
}
