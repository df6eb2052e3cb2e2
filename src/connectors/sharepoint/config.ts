import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';

/**
 * MSAL refuses non-https authorities, and the Graph client attaches tokens only to https hosts,
 * so both endpoints must be https (sovereign clouds and private endpoints are).
 */
const httpsUrl = (name: string) =>
  z.string().refine((v) => {
    try {
      return new URL(v).protocol === 'https:';
    } catch {
      return false;
    }
  }, { message: `${name} must be an https URL` });

/** Contract §3 `type: "sharepoint"`, plus a few optional tuning knobs (additions are allowed). */
export const sharepointConfigSchema = z
  .object({
    tenantId: z.string().min(1),
    siteIds: z.array(z.string().min(1)).optional(),
    driveIds: z.array(z.string().min(1)).optional(),
    graphBaseUrl: httpsUrl('graphBaseUrl').default('https://graph.microsoft.com'),
    authorityHost: httpsUrl('authorityHost').default('https://login.microsoftonline.com'),
    /** Entra groups whose memberships are always synced, even when no ACL mentioned them this run. */
    groupIds: z.array(z.string().min(1)).optional(),
    /**
     * SharePoint site groups (by display name, e.g. "Finance Members") → the Entra group ids and/or
     * emails that make them up. An override: a declared group is never read from SharePoint.
     */
    siteGroupMembers: z.record(z.string().min(1), z.array(z.string().min(1))).optional(),
    /** Downloads larger than this are refused (the document is recorded as failed, not indexed). */
    maxFileBytes: z.number().int().positive().optional(),
    /** Requests in flight per tenant. Microsoft throttles per app and tenant, not per source. */
    maxConcurrency: z.number().int().min(1).max(16).optional(),
    requestTimeoutMs: z.number().int().min(100).max(600_000).optional(),
  })
  .strict()
  .refine((c) => (c.siteIds?.length ?? 0) + (c.driveIds?.length ?? 0) > 0, {
    message: 'at least one of siteIds or driveIds is required',
  });

const pem = (label: string) => z.string().min(1).refine((v) => v.includes(`-----BEGIN `) && v.includes(label), { message: `must be a PEM ${label}` });

export const sharepointCredentialsSchema = z.union([
  z.object({ clientId: z.string().min(1), clientSecret: z.string().min(1) }).strict(),
  z.object({
    clientId: z.string().min(1),
    certificate: z.object({ privateKeyPem: pem('PRIVATE KEY'), certificatePem: pem('CERTIFICATE') }).strict(),
  }).strict(),
]);

export type SharePointConfig = z.infer<typeof sharepointConfigSchema>;
export type SharePointCredentials = z.infer<typeof sharepointCredentialsSchema>;

/** What MSAL needs from a certificate credential, checked once when the connector is built. */
export interface AppCertificate {
  /** PKCS#8 PEM, re-encoded from whatever form was given. */
  privateKeyPem: string;
  /** The leaf certificate, re-encoded (what MSAL sends as `x5c`). */
  certificatePem: string;
  /** Hex SHA-256 of the DER certificate (MSAL signs PS256 with an `x5t#S256` header). */
  thumbprintSha256: string;
}

export type AppCredential =
  | { kind: 'secret'; clientId: string; clientSecret: string }
  | { kind: 'certificate'; clientId: string; certificate: AppCertificate };

/**
 * Validated credentials. Errors name the problem, never the key material (they reach the admin
 * through the API's 422/400 detail).
 */
export function parseCredential(credentials: Record<string, unknown> | null): AppCredential {
  const parsed = sharepointCredentialsSchema.safeParse(credentials ?? {});
  if (!parsed.success) {
    throw new Error('SharePoint sources need credentials {clientId, clientSecret} or {clientId, certificate: {privateKeyPem, certificatePem}} (an app registration with a client secret or a certificate)');
  }
  const c = parsed.data;
  if ('clientSecret' in c) return { kind: 'secret', clientId: c.clientId, clientSecret: c.clientSecret };
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(c.certificate.certificatePem);
  } catch {
    throw new Error('certificate.certificatePem is not a readable X.509 certificate (PEM)');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(c.certificate.privateKeyPem);
  } catch {
    throw new Error('certificate.privateKeyPem is not a readable, unencrypted private key (PEM, PKCS#8 or PKCS#1)');
  }
  // Entra ID signs client assertions as RS256/PS256 only.
  if (privateKey.asymmetricKeyType !== 'rsa') throw new Error(`certificate.privateKeyPem must be an RSA key (got ${privateKey.asymmetricKeyType ?? 'unknown'})`);
  if (!cert.checkPrivateKey(privateKey)) throw new Error('certificate.privateKeyPem does not belong to certificate.certificatePem');
  return {
    kind: 'certificate',
    clientId: c.clientId,
    certificate: {
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
      certificatePem: cert.toString(),
      thumbprintSha256: cert.fingerprint256.replace(/:/g, '').toLowerCase(),
    },
  };
}

export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;
export const DEFAULT_MAX_CONCURRENCY = 4;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** `https://graph.microsoft.com/v1.0/` and `https://graph.microsoft.com` both mean the same service. */
export function normalizeGraphBase(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1\.0$/, '').replace(/\/beta$/, '');
}

export function normalizeAuthorityHost(url: string): string {
  return url.replace(/\/+$/, '');
}
