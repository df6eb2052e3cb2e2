import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { Agent, setGlobalDispatcher } from 'undici';

/**
 * Key material made at test time, never committed: a throw-away CA and a server certificate for
 * 127.0.0.1 (the fake tenant serves HTTPS, because MSAL refuses non-https authorities and the
 * Graph client attaches tokens only to https hosts), and app certificates for certificate
 * credentials.
 */

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;
const DAY = 86_400_000;

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

export interface ServerTls {
  key: string;
  cert: string;
  caPem: string;
}

let serverTls: Promise<ServerTls> | null = null;

/** One CA and one 127.0.0.1/localhost certificate per test process. */
export function fakeServerTls(): Promise<ServerTls> {
  serverTls ??= (async () => {
    const caKeys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const ca = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: '01', name: 'CN=Clearance fake Microsoft tenant test CA',
      notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 7 * DAY), keys: caKeys, signingAlgorithm: EC,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ],
    });
    const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: '02', subject: 'CN=127.0.0.1', issuer: ca.subject,
      notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 7 * DAY),
      publicKey: keys.publicKey, signingKey: caKeys.privateKey, signingAlgorithm: EC,
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }, { type: 'dns', value: 'localhost' }]),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    });
    return { key: await pkcs8Pem(keys.privateKey), cert: cert.toString('pem'), caPem: ca.toString('pem') };
  })();
  return serverTls;
}

let trusted = false;

/**
 * Makes this process's fetch trust the test CA (in addition to the usual roots), the way
 * NODE_EXTRA_CA_CERTS does for a private endpoint in production. Node's fetch reads undici's
 * global dispatcher, so connectors created through the API (no injected fetch) reach the fake too.
 */
export async function trustFakeTenantCa(): Promise<void> {
  if (trusted) return;
  const { caPem } = await fakeServerTls();
  setGlobalDispatcher(new Agent({ connect: { ca: [...rootCertificates, caPem] } }));
  trusted = true;
}

export interface AppCertificateFixture {
  privateKeyPem: string;
  certificatePem: string;
}

/** A self-signed RSA certificate as an admin would upload to an app registration. */
export async function makeAppCertificate(subject = 'CN=clearance-test-app', opts: { notAfter?: Date } = {}): Promise<AppCertificateFixture> {
  const keys = await webcrypto.subtle.generateKey(RSA, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Date.now().toString(16), name: subject,
    notBefore: new Date(Date.now() - DAY), notAfter: opts.notAfter ?? new Date(Date.now() + 365 * DAY), keys, signingAlgorithm: RSA,
  });
  return { privateKeyPem: await pkcs8Pem(keys.privateKey), certificatePem: cert.toString('pem') };
}
