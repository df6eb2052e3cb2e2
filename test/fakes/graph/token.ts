import { X509Certificate, createHash } from 'node:crypto';
import { compactVerify, decodeProtectedHeader, errors as joseErrors } from 'jose';

/**
 * The fake Entra token endpoint's judgement of a client-credentials request, following Microsoft's
 * "certificate credentials" documentation: a client assertion is a JWT signed (RS256 or PS256)
 * with the private key of a certificate registered on the app, naming it by `x5t` (base64url
 * SHA-1 thumbprint) or `x5t#S256` (SHA-256), with `aud` = the token endpoint, `iss` = `sub` =
 * the client id, and `exp`/`nbf` around now. A client secret is accepted for apps that have one.
 */

export const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** Entra allows a few minutes of clock skew on assertions. */
const SKEW_SECONDS = 300;

export interface FakeApp {
  tenantId: string;
  clientId: string;
  /** null: the app has no secret. */
  clientSecret: string | null;
  certificates: X509Certificate[];
  tokenEndpoint: string;
  /** Resources tokens may be issued for (`<resource>/.default`). */
  resources: string[];
}

export type TokenDecision =
  | { ok: true; resource: string; credential: 'secret' | 'certificate' }
  | { ok: false; status: number; error: string; description: string };

const fail = (status: number, error: string, description: string): TokenDecision => ({ ok: false, status, error, description });

export const thumbprint = (cert: X509Certificate, alg: 'sha1' | 'sha256') => createHash(alg).update(cert.raw).digest('base64url');

export async function judgeTokenRequest(app: FakeApp, tenant: string, body: URLSearchParams): Promise<TokenDecision> {
  if (tenant !== app.tenantId) return fail(400, 'invalid_request', `AADSTS90002: Tenant '${tenant}' not found.`);
  if (body.get('grant_type') !== 'client_credentials') return fail(400, 'unsupported_grant_type', 'AADSTS70003: The app requested an unsupported grant type.');
  const clientId = body.get('client_id');
  if (clientId !== app.clientId) {
    return fail(400, 'unauthorized_client', `AADSTS700016: Application with identifier '${clientId}' was not found in the directory '${tenant}'.`);
  }
  let credential: 'secret' | 'certificate';
  const assertion = body.get('client_assertion');
  if (assertion !== null) {
    if (body.get('client_assertion_type') !== ASSERTION_TYPE) {
      return fail(400, 'invalid_request', `AADSTS50027: client_assertion_type must be ${ASSERTION_TYPE}.`);
    }
    const problem = await judgeAssertion(app, assertion);
    if (problem) return fail(401, 'invalid_client', problem);
    credential = 'certificate';
  } else if (body.get('client_secret') !== null) {
    if (app.clientSecret === null || body.get('client_secret') !== app.clientSecret) {
      return fail(401, 'invalid_client', `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${app.clientId}'.`);
    }
    credential = 'secret';
  } else {
    return fail(401, 'invalid_client', "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }
  const scope = body.get('scope') ?? '';
  const resource = app.resources.find((r) => scope === `${r}/.default`);
  if (!resource) return fail(400, 'invalid_scope', `AADSTS1002012: The provided value for scope ${scope} is not valid.`);
  return { ok: true, resource, credential };
}

async function judgeAssertion(app: FakeApp, jwt: string): Promise<string | null> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jwt);
  } catch {
    return 'AADSTS50027: JWT token is invalid or malformed.';
  }
  if (header.alg !== 'RS256' && header.alg !== 'PS256') return `AADSTS5002738: Invalid JWT token. '${String(header.alg)}' is not a supported signature algorithm.`;
  const x5t = typeof header.x5t === 'string' ? header.x5t : undefined;
  const x5t256 = typeof header['x5t#S256'] === 'string' ? (header['x5t#S256'] as string) : undefined;
  if (!x5t && !x5t256) return 'AADSTS700027: Client assertion contains no certificate thumbprint (x5t or x5t#S256).';
  const cert = app.certificates.find((c) => (x5t256 ? thumbprint(c, 'sha256') === x5t256 : thumbprint(c, 'sha1') === x5t));
  if (!cert) {
    return `AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${x5t256 ?? x5t}']`;
  }
  if (Date.parse(cert.validTo) < Date.now()) return 'AADSTS700027: Client assertion contains an invalid signature. [Reason - The key used is expired.]';
  let payload: Record<string, unknown>;
  try {
    const verified = await compactVerify(jwt, cert.publicKey, { algorithms: ['RS256', 'PS256'] });
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'AADSTS700027: Client assertion contains an invalid signature.';
    return 'AADSTS50027: JWT token is invalid or malformed.';
  }
  const now = Date.now() / 1000;
  if (payload.aud !== app.tokenEndpoint) return `AADSTS700027: Client assertion audience '${String(payload.aud)}' is not this token endpoint.`;
  if (payload.iss !== app.clientId || payload.sub !== app.clientId) return "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.";
  if (typeof payload.exp !== 'number' || payload.exp < now - SKEW_SECONDS) return 'AADSTS700024: Client assertion is not within its valid time range.';
  if (typeof payload.nbf === 'number' && payload.nbf > now + SKEW_SECONDS) return 'AADSTS700024: Client assertion is not within its valid time range.';
  if (typeof payload.jti !== 'string' || !payload.jti) return 'AADSTS50027: JWT token is invalid or malformed (no jti).';
  return null;
}
