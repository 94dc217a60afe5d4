import { createHash } from 'node:crypto';
import { defaultFieldResolver, type GraphQLSchema } from 'graphql';
import { MapperKind, getDirective, mapSchema } from '@graphql-tools/utils';
import { rateLimitDirective, type RateLimitArgs } from 'graphql-rate-limit-directive';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  type RateLimiterAbstract,
  type IRateLimiterRedisOptions,
  type IRateLimiterOptions,
} from 'rate-limiter-flexible';
import { isTenantPrincipal, principalKey, type Principal } from '../auth/principal';
import type { RedisClient } from '../database/redis';
import { AppError, ErrorCode } from '../errors/app-error';
import { rateLimitAddress } from './client-address';
import { firedLate, type RedisFailurePolicy } from './request-rate-limiter';

/*
 * Field-level limits declared in the SDL (schema/limits.graphql):
 *   @rateLimit(limit, duration)          per tenant and caller; per client IP when signed out,
 *                                        and always on @public fields
 *   @rateLimitPerEmail(...)              failed calls per email address in the field's arguments,
 *                                        from one client address and from all of them
 * on rate-limiter-flexible, in Redis when there is one (shared by every instance) and in memory
 * otherwise. @rateLimit is graphql-rate-limit-directive's; @rateLimitPerEmail is our own small
 * transform because that library only counts calls, and a per-email login limit that counts
 * successes locks out a person who signs in often from several devices: here a call that
 * succeeds gives its points back, so only failures add up (each call still takes its points
 * first, so concurrent guesses cannot overrun the limit). The tighter count per (email, address)
 * is what makes a deliberate lock-out expensive: one address failing on purpose only locks
 * itself out, and the whole-email cap, which still bounds guessing spread over many addresses,
 * takes several addresses to reach.
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
 * the call through and `closed` refuses it; a real "limit reached" is passed on unchanged. A
 * failure long past the command timeout is this process having been too busy to read the answer
 * (see RequestRateLimiter): refused whatever the policy.
 */
function policyAwareRedisLimiter(policy: RedisFailurePolicy, commandTimeoutMs: number): typeof RateLimiterRedis {
  return class PolicyAwareRedisLimiter extends RateLimiterRedis {
    override async consume(key: string | number, points?: number, options?: { [key: string]: unknown }): Promise<RateLimiterRes> {
      const startedAt = performance.now();
      try {
        return await super.consume(key, points, options);
      } catch (error) {
        if (error instanceof RateLimiterRes) throw error;
        if (firedLate(performance.now() - startedAt, commandTimeoutMs)) {
          throw new AppError(ErrorCode.OVERLOADED, 'The server is overloaded; retry shortly', { extensions: { retryAfter: 1 } });
        }
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
  return addressKey(context);
}

const addressKey = (context: FieldLimitContext) => `ip:${rateLimitAddress(context.clientIp)}`;

/** `Type.field` of every field declared @public (anyone may call it, signed in or not). */
function publicFields(schema: GraphQLSchema): Set<string> {
  const coordinates = new Set<string>();
  mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (field, fieldName, typeName) => {
      if (getDirective(schema, field, 'public')?.length) coordinates.add(`${typeName}.${fieldName}`);
      return field;
    },
  });
  return coordinates;
}

function emailIn(args: Record<string, unknown>): string {
  const input = args.input as { email?: unknown } | undefined;
  const email = typeof args.email === 'string' ? args.email : typeof input?.email === 'string' ? input.email : '';
  // Hashed: Redis keys should not collect email addresses.
  return createHash('sha256').update(email.trim().toLowerCase()).digest('hex').slice(0, 32);
}

export function fieldRateLimitTransformer(options: {
  redis: RedisClient | null;
  failurePolicy: RedisFailurePolicy;
  /** REDIS_COMMAND_TIMEOUT_MS: a failure far past it is a stall of this process, not of Redis. */
  commandTimeoutMs: number;
  /** Keeps installations sharing one Redis apart (per-IP and per-email keys name no tenant). */
  namespace: string;
  /** Called for every call a field limit refuses (metrics). */
  onRefused?: () => void;
}): (schema: GraphQLSchema) => GraphQLSchema {
  const { redis } = options;
  const redisLimiterClass = redis ? policyAwareRedisLimiter(options.failurePolicy, options.commandTimeoutMs) : null;
  const limiterClass = redisLimiterClass ?? RateLimiterMemory;
  const keyPrefix = `rlf:${options.namespace}`;
  const limiterOptions: Partial<IRateLimiterRedisOptions> & Partial<IRateLimiterOptions> = redis
    ? { storeClient: redis, keyPrefix, rejectIfRedisNotReady: true }
    : { keyPrefix };
  // The library types limiterClass as the abstract base and limiterOptions per limiter kind;
  // ours are a concrete subclass and its options, which its declarations cannot express.
  // A field anyone may call is counted per client address even when the call carries a
  // credential: otherwise every API key or account an attacker holds would be a fresh budget
  // of logins to spray from one address.
  let countedPerAddress = new Set<string>();
  const perCaller = rateLimitDirective<FieldLimitContext, IRateLimiterOptions>({
    name: 'rateLimit',
    keyGenerator: (_args, _source, _fieldArgs, context, info) => {
      const coordinate = `${info.parentType.name}.${info.fieldName}`;
      return `${countedPerAddress.has(coordinate) ? addressKey(context) : callerKey(context)}:${coordinate}`;
    },
    onLimit: (response, args, _source, _fieldArgs, _context, info) => {
      options.onRefused?.();
      throw rateLimitedError(response, args, `${info.fieldName} calls`);
    },
    limiterClass: limiterClass as never,
    limiterOptions: limiterOptions as never,
  });
  const perEmail = failedCallsPerEmailTransformer((scope, points, duration) => {
    const emailOptions = { keyPrefix: `${keyPrefix}:${scope}`, points, duration };
    return redis && redisLimiterClass
      ? new redisLimiterClass({ ...emailOptions, storeClient: redis, rejectIfRedisNotReady: true })
      : new RateLimiterMemory(emailOptions);
  }, options.onRefused);
  return (schema) => {
    countedPerAddress = publicFields(schema);
    return perEmail(perCaller.rateLimitDirectiveTransformer(schema));
  };
}

interface PerEmailArgs {
  limit: number;
  perAddress: number;
  duration: number;
}

function failedCallsPerEmailTransformer(
  limiterFor: (scope: 'email' | 'email-address', points: number, duration: number) => RateLimiterAbstract,
  onRefused?: () => void,
): (schema: GraphQLSchema) => GraphQLSchema {
  const countOrRefuse = (limiter: RateLimiterAbstract, key: string, args: RateLimitArgs, what: string, counted: Counted[]) =>
    takeOrRefuse(limiter, key, args, what, counted).catch((error: unknown) => {
      if (error instanceof AppError && error.code === ErrorCode.RATE_LIMITED) onRefused?.();
      throw error;
    });
  return (schema) =>
    mapSchema(schema, {
      [MapperKind.OBJECT_FIELD]: (field, fieldName, typeName) => {
        const args = getDirective(schema, field, 'rateLimitPerEmail')?.[0] as PerEmailArgs | undefined;
        if (!args) return field;
        // One window for both counts: a shorter one per address would let one address add
        // perAddress failures to the whole-email count every time its own window turned.
        const fromAddress = limiterFor('email-address', args.perAddress, args.duration);
        const overall = limiterFor('email', args.limit, args.duration);
        const resolve = field.resolve ?? defaultFieldResolver;
        return {
          ...field,
          resolve: async (source, fieldArgs: Record<string, unknown>, context: FieldLimitContext, info) => {
            const email = emailIn(fieldArgs);
            const counted: Counted[] = [];
            // Refunds are not awaited: the caller need not wait for them; a lost one only errs strict.
            const refund = () => counted.forEach(({ limiter, key }) => limiter.reward(key, 1).catch(() => undefined));
            const addressKey = `${email}:${rateLimitAddress(context.clientIp)}:${typeName}.${fieldName}`;
            const addressLimit = { limit: args.perAddress, duration: args.duration };
            await countOrRefuse(fromAddress, addressKey, addressLimit, `failed ${fieldName} attempts for this email from your address`, counted);
            try {
              await countOrRefuse(overall, `${email}:${typeName}.${fieldName}`, args, `failed ${fieldName} attempts for this email`, counted);
            } catch (error) {
              refund(); // refused before any attempt: no failure of this address
              throw error;
            }
            try {
              const result: unknown = await resolve(source, fieldArgs, context, info);
              refund();
              return result;
            } catch (error) {
              // Only a refused credential is a failure; refused by another limit (per IP), or a
              // suspended tenant or an unreachable database, the password was never judged.
              if (!(error instanceof AppError && error.code === ErrorCode.UNAUTHENTICATED)) refund();
              throw error;
            }
          },
        };
      },
    });
}

interface Counted {
  limiter: RateLimiterAbstract;
  key: string;
}

/**
 * Takes a point, remembering it in `counted` only when one was really taken: under the open
 * failure policy an unreachable Redis admits the call without taking one, and refunding that
 * would credit the count below zero once Redis is back.
 */
async function takeOrRefuse(limiter: RateLimiterAbstract, key: string, args: RateLimitArgs, what: string, counted: Counted[]): Promise<void> {
  try {
    const taken = await limiter.consume(key);
    if (taken.consumedPoints > 0) counted.push({ limiter, key });
  } catch (error) {
    if (error instanceof RateLimiterRes) throw rateLimitedError(error, args, what);
    throw error;
  }
}
