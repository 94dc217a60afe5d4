import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';
import { AppError, ErrorCode } from '../errors/app-error';
import type { MemberRole } from './principal';

/** Claims of our access tokens. `tid` is absent for platform admins. */
export interface AccessClaims {
  sub: string;
  sid: string;
  role: MemberRole | 'PLATFORM_ADMIN';
  tid?: string;
}

export interface IssuedAccessToken {
  token: string;
  expiresAt: Date;
}

const ALGORITHM = 'HS256';

/**
 * Short-lived JWT access tokens: HS256 only (an `alg: none` or RS256 token is refused before
 * its signature is even considered), and exp, iss and aud are always checked.
 */
export class AccessTokens {
  /**
   * Built once: given a string, jsonwebtoken first tries to read it as a public key on every
   * call (~0.3 ms, a fifth of a request's CPU under load); a secret KeyObject skips that.
   */
  private readonly key: KeyObject;
  /**
   * Tokens already verified, until they expire: a client sends the same token with every
   * request, and re-checking its signature each time cost ~3% of a request's CPU. Only a token
   * string that passed verification is remembered; exp is still checked on every use.
   */
  private readonly verified = new LRUCache<string, AccessClaims & { exp: number }>({ max: 10_000 });

  constructor(
    private readonly options: { secret: string; issuer: string; audience: string; ttlSeconds: number },
  ) {
    this.key = createSecretKey(Buffer.from(options.secret, 'utf8'));
  }

  issue(claims: AccessClaims, now = new Date()): IssuedAccessToken {
    const issuedAt = Math.floor(now.getTime() / 1000);
    const expiresAt = issuedAt + this.options.ttlSeconds;
    const token = jwt.sign({ ...claims, iat: issuedAt, exp: expiresAt }, this.key, {
      algorithm: ALGORITHM,
      issuer: this.options.issuer,
      audience: this.options.audience,
    });
    return { token, expiresAt: new Date(expiresAt * 1000) };
  }

  verify(token: string): AccessClaims {
    const known = this.verified.get(token);
    if (known) {
      if (known.exp * 1000 > Date.now()) {
        const { exp: _exp, ...claims } = known;
        return claims;
      }
      this.verified.delete(token);
    }
    return this.verifySignature(token);
  }

  private verifySignature(token: string): AccessClaims {
    let payload: string | jwt.JwtPayload;
    try {
      payload = jwt.verify(token, this.key, {
        algorithms: [ALGORITHM],
        issuer: this.options.issuer,
        audience: this.options.audience,
      });
    } catch (error) {
      const expired = error instanceof jwt.TokenExpiredError;
      throw new AppError(ErrorCode.UNAUTHENTICATED, expired ? 'Access token expired' : 'Invalid access token', {
        httpStatus: 401,
      });
    }
    if (typeof payload === 'string' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string' || typeof payload.role !== 'string') {
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid access token', { httpStatus: 401 });
    }
    if (payload.tid !== undefined && typeof payload.tid !== 'string') {
      throw new AppError(ErrorCode.UNAUTHENTICATED, 'Invalid access token', { httpStatus: 401 });
    }
    const claims: AccessClaims = {
      sub: payload.sub,
      sid: payload.sid,
      role: payload.role as AccessClaims['role'],
      ...(payload.tid ? { tid: payload.tid } : {}),
    };
    if (typeof payload.exp === 'number') this.verified.set(token, { ...claims, exp: payload.exp });
    return claims;
  }
}
