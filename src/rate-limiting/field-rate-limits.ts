import { createHash } from 'node:crypto';
import type { GraphQLSchema } from 'graphql';
import { rateLimitDirective, type RateLimitArgs } from 'graphql-rate-limit-directive';
import type Redis from 'ioredis';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type IRateLimiterRedisOptions,
  type IRateLimiterOptions,
} from 'rate-limiter-flexible';
import { isTenantPrincipal, principalKey, type Principal } from '../auth/principal';
import { AppError, ErrorCode } from '../errors/app-error';
import type { RedisFailurePolicy } from './tenant-rate-limiter';

/*
 * Field-level limits declared in the SDL (schema/limits.graphql):
 *   @rateLimit(limit, duration)          per tenant and caller; per client IP when signed out
 *   @rateLimitPerEmail(limit, duration)  per email address in the field's arguments (login)
 * enforced with graphql-rate-limit-directive on rate-limiter-flexible, in Redis when there is
 * one (shared by every instance) and in memory otherwise.
 */

export interface FieldLimitContext {
  principal: Principal;
  clientIp: string;
}

function rateLimitedError(response: RateLimiterRes, args: RateLimitArgs, what: string): AppError {
  const retryAfter = Math.max(1, Math.ceil(response.msBeforeNext / 1000));
  return new AppError(
    ErrorCode.RATE_LIMITED,
    `Too many ${what}: at most ${args.limit} per ${args.duration} s; retry in ${retryAfter} s`,
    // A refused field fails its whole operation when it is the only field (login): 429.
    { extensions: { retryAfter }, httpStatus: 429 },
  );
}

/**
 * rate-limiter-flexible's Redis limiter with our failure policy: when Redis fails, `open` lets
 * the call through and `closed` refuses it; a real "limit reached" is passed on unchanged.
 */
function policyAwareRedisLimiter(policy: RedisFailurePolicy): typeof RateLimiterRedis {
  return class PolicyAwareRedisLimiter extends RateLimiterRedis {
    override async consume(key: string | number, points?: number, options?: { [key: string]: unknown }): Promise<RateLimiterRes> {
      try {
        return await super.consume(key, points, options);
      } catch (error) {
        if (error instanceof RateLimiterRes) throw error;
        if (policy === 'open') return new RateLimiterRes(this.points, 0, 0, false);
        throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, 'Rate limiting is unavailable; retry shortly', {
          extensions: { retryAfter: 1 },
        });
      }
    }
  };
}

function callerKey(context: FieldLimitContext): string {
  const { principal } = context;
  if (isTenantPrincipal(principal)) return `{t:${principal.tenant.id}}:${principalKey(principal)}`;
  if (principal.kind === 'platformAdmin') return `admin:${principal.adminId}`;
  return `ip:${context.clientIp}`;
}

function emailIn(args: Record<string, unknown>): string {
  const input = args.input as { email?: unknown } | undefined;
  const email = typeof args.email === 'string' ? args.email : typeof input?.email === 'string' ? input.email : '';
  // Hashed: Redis keys should not collect email addresses.
  return createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 32);
}

export function fieldRateLimitTransformer(options: {
  redis: Redis | null;
  failurePolicy: RedisFailurePolicy;
  /** Keeps installations sharing one Redis apart (per-IP and per-email keys name no tenant). */
  namespace: string;
}): (schema: GraphQLSchema) => GraphQLSchema {
  const limiterClass = options.redis ? policyAwareRedisLimiter(options.failurePolicy) : RateLimiterMemory;
  const keyPrefix = `rlf:${options.namespace}`;
  const limiterOptions: Partial<IRateLimiterRedisOptions> & Partial<IRateLimiterOptions> = options.redis
    ? { storeClient: options.redis, keyPrefix, rejectIfRedisNotReady: true }
    : { keyPrefix };
  // The library types limiterClass as the abstract base and limiterOptions per limiter kind;
  // ours are a concrete subclass and its options, which its declarations cannot express.
  const perCaller = rateLimitDirective<FieldLimitContext, IRateLimiterOptions>({
    name: 'rateLimit',
    keyGenerator: (_args, _source, _fieldArgs, context, info) => `${callerKey(context)}:${info.parentType.name}.${info.fieldName}`,
    onLimit: (response, args, _source, _fieldArgs, _context, info) => {
      throw rateLimitedError(response, args, `${info.fieldName} calls`);
    },
    limiterClass: limiterClass as never,
    limiterOptions: limiterOptions as never,
  });
  const perEmail = rateLimitDirective<FieldLimitContext, IRateLimiterOptions>({
    name: 'rateLimitPerEmail',
    keyGenerator: (_args, _source, fieldArgs, _context, info) => `email:${emailIn(fieldArgs)}:${info.parentType.name}.${info.fieldName}`,
    onLimit: (response, args, _source, _fieldArgs, _context, info) => {
      throw rateLimitedError(response, args, `${info.fieldName} attempts for this email`);
    },
    limiterClass: limiterClass as never,
    limiterOptions: limiterOptions as never,
  });
  return (schema) => perEmail.rateLimitDirectiveTransformer(perCaller.rateLimitDirectiveTransformer(schema));
}
