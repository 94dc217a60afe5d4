import { randomUUID } from 'node:crypto';
import type pg from 'pg';

/*
 * Idempotency keys in the platform schema (platform."IdempotencyKey"): durable, and shared by
 * every instance. A request claims its (scope, key) with one INSERT ... ON CONFLICT; whoever
 * inserts (or takes over an expired or abandoned row) executes, everyone else reads the row.
 * docs/decisions/0012-idempotency-keys.md says why here and not in Redis.
 */

export interface IdempotencyTimes {
  /** How long a key is kept (24 h). */
  ttlMs: number;
  /** How long a request waits for another one holding its key before answering 409. */
  waitMs: number;
  /** An IN_PROGRESS claim older than this is taken as abandoned (its instance died). */
  staleClaimMs: number;
}

/** A key this request holds: found by (scope, key), the unique index; written only under its claim id. */
export interface HeldKey {
  scope: string;
  key: string;
  claim: string;
}

/** What claiming a key came to. */
export type Claim =
  /** This request executes; it must `complete` or `release` the claim. */
  | { kind: 'claimed'; claim: HeldKey }
  /** The key holds another request (another fingerprint). */
  | { kind: 'reused' }
  /** The stored answer. */
  | { kind: 'completed'; status: number; body: string }
  /** The first request succeeded, but its answer held a secret and was not stored. */
  | { kind: 'withheld'; completedAt: Date }
  /** Still running after the wait; retry after `retryAfterSeconds`. */
  | { kind: 'in-progress'; retryAfterSeconds: number };

interface KeyRow {
  fingerprint: string;
  state: 'IN_PROGRESS' | 'COMPLETED';
  status: number | null;
  body: string | null;
  withheld: boolean;
  completedAt: Date | null;
  /** Past expiresAt: the key counts as absent. */
  expired: boolean;
  /** IN_PROGRESS for longer than the stale limit: taken as abandoned by a dead instance. */
  stale: boolean;
}

const TABLE = 'platform."IdempotencyKey"';

/**
 * Inserts a claim, or takes over a row that counts as absent: expired (any request), or an
 * IN_PROGRESS claim older than the stale limit for the same request (its instance died between
 * claiming and answering). Returns the claim when this request holds the key.
 */
const CLAIM = `
  INSERT INTO ${TABLE} AS existing ("id", "scope", "key", "fingerprint", "claim", "expiresAt")
  VALUES (gen_random_uuid(), $1, $2, $3, $4, now() + $5 * interval '1 millisecond')
  ON CONFLICT ("scope", "key") DO UPDATE SET
    "fingerprint" = EXCLUDED."fingerprint", "claim" = EXCLUDED."claim", "state" = 'IN_PROGRESS',
    "status" = NULL, "body" = NULL, "withheld" = false, "createdAt" = now(), "completedAt" = NULL,
    "expiresAt" = EXCLUDED."expiresAt"
  WHERE existing."expiresAt" <= now()
     OR (existing."state" = 'IN_PROGRESS' AND existing."fingerprint" = EXCLUDED."fingerprint"
         AND existing."createdAt" <= now() - $6 * interval '1 millisecond')
  RETURNING "claim"`;

const READ = `
  SELECT "fingerprint", "state", "status", "body", "withheld", "completedAt",
         "expiresAt" <= now() AS "expired",
         ("state" = 'IN_PROGRESS' AND "createdAt" <= now() - $3 * interval '1 millisecond') AS "stale"
  FROM ${TABLE} WHERE "scope" = $1 AND "key" = $2`;

/** Expired rows, oldest first, a bounded batch at a time (the expiresAt index finds them). */
const SWEEP = `
  DELETE FROM ${TABLE} WHERE "id" IN (
    SELECT "id" FROM ${TABLE} WHERE "expiresAt" <= now() ORDER BY "expiresAt" LIMIT $1
  )`;

const SWEEP_BATCH = 1_000;
const SWEEP_INTERVAL_MS = 60_000;
const FIRST_POLL_MS = 20;
const MAX_POLL_MS = 250;

export class IdempotencyStore {
  private lastSweepAt = -Infinity;

  constructor(
    private readonly pool: pg.Pool,
    private readonly times: IdempotencyTimes,
    private readonly onSweepError: (error: unknown) => void,
  ) {}

  /**
   * Claims the key for this request, or, when another request holds it, waits (polling with
   * backoff, up to `waitMs`) for that one's answer. A key released meanwhile (its request was
   * refused before it ran) is claimed again.
   */
  async claim(scope: string, key: string, fingerprint: string): Promise<Claim> {
    const deadline = performance.now() + this.times.waitMs;
    let pollMs = FIRST_POLL_MS;
    let tryClaiming = true;
    for (;;) {
      if (tryClaiming) {
        const claimed = await this.tryClaim(scope, key, fingerprint);
        if (claimed) return { kind: 'claimed', claim: { scope, key, claim: claimed } };
      }
      const row = await this.read(scope, key);
      const left = deadline - performance.now();
      // No row (released since), or one that counts as absent: claim it. Bounded by the wait, in
      // case other requests keep taking it first.
      tryClaiming = !row || row.expired || (row.stale && row.fingerprint === fingerprint);
      if (tryClaiming && left > 0) continue;
      if (row && !row.expired) {
        if (row.fingerprint !== fingerprint) return { kind: 'reused' };
        if (row.state === 'COMPLETED') {
          if (row.withheld) return { kind: 'withheld', completedAt: row.completedAt ?? new Date() };
          if (row.status !== null && row.body !== null) return { kind: 'completed', status: row.status, body: row.body };
        }
      }
      if (left <= 0) return { kind: 'in-progress', retryAfterSeconds: 1 };
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, left)));
      pollMs = Math.min(pollMs * 2, MAX_POLL_MS);
    }
  }

  /** Stores the answer under this request's claim (a claim taken over since writes nothing). */
  async complete({ scope, key, claim }: HeldKey, answer: { status: number; body: string } | 'withheld'): Promise<void> {
    await this.pool.query(
      `UPDATE ${TABLE} SET "state" = 'COMPLETED', "completedAt" = now(), "status" = $4, "body" = $5, "withheld" = $6
       WHERE "scope" = $1 AND "key" = $2 AND "claim" = $3 AND "state" = 'IN_PROGRESS'`,
      answer === 'withheld' ? [scope, key, claim, null, null, true] : [scope, key, claim, answer.status, answer.body, false],
    );
  }

  /** Gives the key back: the request was refused before it ran, so a retry may run. */
  async release({ scope, key, claim }: HeldKey): Promise<void> {
    await this.pool.query(`DELETE FROM ${TABLE} WHERE "scope" = $1 AND "key" = $2 AND "claim" = $3 AND "state" = 'IN_PROGRESS'`, [scope, key, claim]);
  }

  /** Deletes a batch of expired keys, at most once a minute per instance, without holding anyone up. */
  sweepWhenDue(): void {
    const now = performance.now();
    if (now - this.lastSweepAt < SWEEP_INTERVAL_MS) return;
    this.lastSweepAt = now;
    this.pool.query(SWEEP, [SWEEP_BATCH]).catch(this.onSweepError);
  }

  private async tryClaim(scope: string, key: string, fingerprint: string): Promise<string | undefined> {
    const claim = randomUUID();
    const result = await this.pool.query<{ claim: string }>(CLAIM, [scope, key, fingerprint, claim, this.times.ttlMs, this.times.staleClaimMs]);
    return result.rows[0]?.claim;
  }

  private async read(scope: string, key: string): Promise<KeyRow | undefined> {
    const result = await this.pool.query<KeyRow>(READ, [scope, key, this.times.staleClaimMs]);
    return result.rows[0];
  }
}
