/**
 * Signed statements between parties of a federation: an unambiguous byte encoding (a domain tag,
 * then each field length-prefixed, so no two field lists share bytes) signed with ECDSA P-256 /
 * SHA-256 by a party's certificate key. Committee keys and measure contributions are both signed
 * this way, each under its own domain tag so a signature for one can never pass as the other.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, X509Certificate, type KeyObject } from 'node:crypto';

export type StatementField =
  | { readonly str: string }
  | { readonly u32: number }
  /** Raw bytes of a fixed length the domain defines (a digest): not length-prefixed. */
  | { readonly digest: Uint8Array };

export function statementBytes(domain: string, fields: readonly StatementField[]): Buffer {
  const parts: Buffer[] = [];
  const str = (s: string): void => {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  };
  str(domain);
  for (const f of fields) {
    if ('str' in f) str(f.str);
    else if ('u32' in f) {
      if (!Number.isInteger(f.u32) || f.u32 < 0 || f.u32 > 0xffffffff) throw new RangeError(`not a 32-bit unsigned integer: ${f.u32}`);
      const b = Buffer.alloc(4);
      b.writeUInt32BE(f.u32);
      parts.push(b);
    } else parts.push(Buffer.from(f.digest));
  }
  return Buffer.concat(parts);
}

export function sha256(bytes: Uint8Array): Buffer {
  return createHash('sha256').update(bytes).digest();
}

function assertP256(key: KeyObject, what: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || (curve !== 'prime256v1' && curve !== 'P-256')) {
    throw new RangeError(`${what} must be an ECDSA P-256 key, got ${key.asymmetricKeyType}${curve ? ` (${curve})` : ''}`);
  }
}

/** ECDSA-P256/SHA-256 signature (DER) over `message` with a PEM private key. */
export function signStatement(privateKeyPem: string, message: Uint8Array): Uint8Array {
  const key = createPrivateKey(privateKeyPem);
  assertP256(key, 'signing key');
  return new Uint8Array(sign('sha256', message, key));
}

/**
 * Verifies a signature against an X.509 certificate (PEM) or a bare public key (PEM). False for a
 * wrong signature or tampered message; throws only for unusable key material.
 */
export function verifyStatement(certificatePem: string, message: Uint8Array, signature: Uint8Array): boolean {
  const key = certificatePem.includes('BEGIN CERTIFICATE')
    ? new X509Certificate(certificatePem).publicKey
    : createPublicKey(certificatePem);
  assertP256(key, 'verification key');
  try {
    return verify('sha256', message, key, signature);
  } catch {
    return false;
  }
}
