import type { KeyValueCache, KeyValueCacheSetOptions } from '@apollo/utils.keyvaluecache';
import type { RedisClient } from '../database/redis';
import { entryTtlMs, normaliseApqDocument, type ApqLimits, type Clock } from './apq-store';
import { splitCallerKey } from './per-caller-apq-cache';

/*
 * Each caller's entries live in three keys that share the caller's hash tag (one Redis Cluster
 * slot), so one script sees them all:
 *   <prefix>{<caller>}:apq         hash: Apollo's key -> stored document
 *   <prefix>{<caller>}:apq:expiry  sorted set: Apollo's key by expiry (ms since the epoch)
 *   <prefix>{<caller>}:apq:bytes   the documents' total size in bytes
 * Entries expire by their score: a read ignores an expired one, and every write first drops the
 * expired ones and gives their count and bytes back, so the budget never leaks. The keys
 * themselves expire with the caller's newest entry, so an idle caller leaves nothing behind.
 * The time comes from the instance (instances disagree by seconds, entries live for hours), which
 * lets tests move it forward instead of waiting.
 */

/** KEYS: entries, expiries. ARGV: entry, now. */
const GET_SCRIPT = `
local expiry = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]))
if expiry == nil or expiry <= tonumber(ARGV[2]) then return false end
return redis.call('HGET', KEYS[1], ARGV[1])
`;

/** The part of the write and delete scripts that loads the caller's bytes and drops entries. */
const ACCOUNTING = `
local entries, expiries, usage = KEYS[1], KEYS[2], KEYS[3]
local bytes = 0
local present = redis.call('EXISTS', entries, expiries, usage)
if present == 3 then
  bytes = tonumber(redis.call('GET', usage)) or 0
elseif present > 0 then
  -- Redis deletes an emptied hash or sorted set; a key lost on its own (maxmemory eviction)
  -- leaves counts that cannot be trusted: start the caller over.
  redis.call('DEL', entries, expiries, usage)
end
local function drop(entry)
  bytes = bytes - redis.call('HSTRLEN', entries, entry)
  redis.call('HDEL', entries, entry)
  redis.call('ZREM', expiries, entry)
end
`;

/** KEYS: entries, expiries, bytes. ARGV: entry, document, now, ttl ms, max entries, max bytes. */
const SET_SCRIPT = `${ACCOUNTING}
local entry, document = ARGV[1], ARGV[2]
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local max_entries, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
local size = string.len(document)
if size > max_bytes then return 0 end
for _, expired in ipairs(redis.call('ZRANGEBYSCORE', expiries, '-inf', now)) do drop(expired) end
if redis.call('ZSCORE', expiries, entry) then drop(entry) end
-- Oldest first (the lowest expiry) until the new entry fits.
while redis.call('ZCARD', expiries) >= max_entries or bytes + size > max_bytes do
  local oldest = redis.call('ZRANGE', expiries, 0, 0)[1]
  if not oldest then break end
  drop(oldest)
end
redis.call('HSET', entries, entry, document)
redis.call('ZADD', expiries, now + ttl, entry)
redis.call('SET', usage, bytes + size)
local keep = math.max(ttl, tonumber(redis.call('PTTL', entries)))
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, keep) end
return 1
`;

/** KEYS: entries, expiries, bytes. ARGV: entry. */
const DELETE_SCRIPT = `${ACCOUNTING}
if not redis.call('ZSCORE', expiries, ARGV[1]) then return 0 end
drop(ARGV[1])
if bytes > 0 then redis.call('SET', usage, bytes, 'KEEPTTL') else redis.call('DEL', usage) end
return 1
`;

interface ApqCommands {
  fleetApqGet(entries: string, expiries: string, entry: string, now: number): Promise<string | null>;
  fleetApqSet(
    entries: string,
    expiries: string,
    usage: string,
    entry: string,
    document: string,
    now: number,
    ttlMs: number,
    maxEntries: number,
    maxBytes: number,
  ): Promise<number>;
  fleetApqDelete(entries: string, expiries: string, usage: string, entry: string): Promise<number>;
}

/**
 * Apollo's automatic-persisted-query cache in Redis, so a query registered through one instance
 * is known to all, within each caller's budget (see apq-store.ts). A Redis failure degrades to
 * "not found": the client resends the full query.
 */
export class RedisApqCache implements KeyValueCache<string> {
  private readonly commands: ApqCommands;

  constructor(
    redis: RedisClient,
    private readonly limits: ApqLimits,
    /** Keeps installations that share a Redis apart. */
    private readonly prefix: string,
    private readonly clock: Clock = Date.now,
  ) {
    if (!(redis as unknown as Partial<ApqCommands>).fleetApqSet) {
      redis.defineCommand('fleetApqGet', { numberOfKeys: 2, lua: GET_SCRIPT });
      redis.defineCommand('fleetApqSet', { numberOfKeys: 3, lua: SET_SCRIPT });
      redis.defineCommand('fleetApqDelete', { numberOfKeys: 3, lua: DELETE_SCRIPT });
    }
    this.commands = redis as unknown as ApqCommands;
  }

  async get(key: string): Promise<string | undefined> {
    const parts = splitCallerKey(key);
    if (!parts) return undefined;
    const [entries, expiries] = this.keysOf(parts.caller);
    try {
      return (await this.commands.fleetApqGet(entries, expiries, parts.entry, this.clock())) ?? undefined;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: string, options?: KeyValueCacheSetOptions): Promise<void> {
    const parts = splitCallerKey(key);
    const document = parts && normaliseApqDocument(value, this.limits.maxDocumentBytes);
    if (!parts || document === null) return;
    const { maxEntriesPerCaller, maxBytesPerCaller } = this.limits;
    try {
      await this.commands.fleetApqSet(
        ...this.keysOf(parts.caller),
        parts.entry,
        document,
        this.clock(),
        entryTtlMs(options, this.limits),
        maxEntriesPerCaller,
        maxBytesPerCaller,
      );
    } catch {
      // The query still runs; only its registration is lost.
    }
  }

  async delete(key: string): Promise<boolean> {
    const parts = splitCallerKey(key);
    if (!parts) return false;
    try {
      return (await this.commands.fleetApqDelete(...this.keysOf(parts.caller), parts.entry)) === 1;
    } catch {
      return false;
    }
  }

  /** The caller's three keys (see above). */
  keysOf(caller: string): [entries: string, expiries: string, bytes: string] {
    const entries = `${this.prefix}{${caller}}:apq`;
    return [entries, `${entries}:expiry`, `${entries}:bytes`];
  }
}
