// JWT bearer tokens of a configured OpenID Connect issuer, accepted besides the service's own API
// keys. Signature, iss, aud, exp and nbf are checked by jose; a configured claim maps the caller to
// the service's roles. Every refusal names its reason, which the 401 passes on to the client.
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { OidcConfig } from '../config.ts';
import { ROLES, type Role } from '../store/index.ts';

/** Who a request acts for: an API key, or the subject of a verified JWT. */
export interface Principal {
  id: string;
  name: string;
  /** The role this request acts in (for a JWT granting several: the first the route allows). */
  role: Role;
  /** Every role the credential grants (one for an API key). */
  roles: Role[];
  scheme: 'api-key' | 'oidc';
}

/** A token refused, with the reason the client is told (never a secret or a key). */
export class TokenRefused extends Error {
  /** 401, or 503 when the issuer's keys could not be had (the token itself may be fine). */
  constructor(
    message: string,
    readonly status: 401 | 503 = 401,
  ) {
    super(message);
  }
}

/** Three base64url segments: the compact JWS form (an API key never has dots). */
export const looksLikeJwt = (token: string) => /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);

function claimAt(payload: JWTPayload, path: string): unknown {
  let v: unknown = payload;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

export class JwtVerifier {
  private readonly keys: JWTVerifyGetKey;

  constructor(private readonly cfg: OidcConfig) {
    if ('file' in cfg.jwks) {
      let jwks: unknown;
      try {
        jwks = JSON.parse(readFileSync(cfg.jwks.file, 'utf8'));
      } catch (err) {
        throw new Error(`http.oidc.jwksFile ${cfg.jwks.file}: ${(err as Error).message}`, { cause: err });
      }
      if (typeof jwks !== 'object' || jwks === null || !Array.isArray((jwks as { keys?: unknown }).keys))
        throw new Error(`http.oidc.jwksFile ${cfg.jwks.file} is not a JWK Set (an object with a "keys" list)`);
      this.keys = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    } else {
      // jose caches the set, refetches on an unknown kid (at most every 30 s) and times out at 5 s.
      this.keys = createRemoteJWKSet(new URL(cfg.jwks.url));
    }
  }

  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        algorithms: this.cfg.algorithms,
        clockTolerance: this.cfg.clockToleranceSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (err) {
      const why = reason(err, this.cfg);
      throw new TokenRefused(why, why.startsWith('issuer keys unavailable') ? 503 : 401);
    }
    const granted = claimAt(payload, this.cfg.roleClaim);
    const values = typeof granted === 'string' ? granted.split(/\s+/) : Array.isArray(granted) ? granted.map(String) : [];
    const roles = ROLES.filter((r) => this.cfg.roleValues[r].some((v) => values.includes(v)));
    if (roles.length === 0)
      throw new TokenRefused(
        `token of ${payload.sub} grants no role of this service: claim ${this.cfg.roleClaim} must hold one of ${ROLES.map((r) => this.cfg.roleValues[r].join('|')).join(', ')}`,
      );
    const name = [payload.preferred_username, payload.email, payload.name].find((v): v is string => typeof v === 'string') ?? payload.sub!;
    return { id: `oidc:${payload.sub}`, name, role: roles[0], roles, scheme: 'oidc' };
  }
}

function reason(err: unknown, cfg: OidcConfig): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return `token audience is not ${cfg.audience.join(' or ')}`;
    if (err.claim === 'iss') return `token issuer is not ${cfg.issuer}`;
    if (err.claim === 'nbf') return 'token is not valid yet (nbf)';
    return `token claim ${err.claim}: ${err.message}`;
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature does not verify against the issuer keys';
  if (err instanceof errors.JOSEAlgNotAllowed) return `token algorithm not accepted (accepted: ${cfg.algorithms.join(', ')})`;
  if (err instanceof errors.JWKSNoMatchingKey) return 'token was signed by a key the issuer does not publish';
  if (err instanceof errors.JWKSMultipleMatchingKeys) return 'token names no key id and the issuer publishes several keys';
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid) return `issuer keys unavailable: ${(err as Error).message}`;
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return `malformed token: ${(err as Error).message}`;
  if (err instanceof errors.JOSEError) return `token refused: ${(err as Error).message}`;
  // A failed JWKS fetch surfaces as a plain error: the token may be fine, the keys are unreachable.
  return `issuer keys unavailable: ${(err as Error).message}`;
}
