import { availableParallelism } from 'node:os';
import express from 'express';
import { ConfigError, loadConfig, parseTrustProxy } from '../../src/config/config';

/*
 * TRUST_PROXY is parsed into what Express's `trust proxy` setting means, not passed as a raw
 * string: "1" is one hop (as a string, Express would trust the address 0.0.0.1), "true" a
 * boolean (as a string, Express refuses it at start-up).
 */

describe('parseTrustProxy', () => {
  it.each([
    ['true', true],
    ['TRUE', true],
    ['false', false],
    [' false ', false],
    ['0', 0],
    ['1', 1],
    ['2', 2],
    ['loopback', ['loopback']],
    ['loopback, linklocal,uniquelocal', ['loopback', 'linklocal', 'uniquelocal']],
    ['10.0.0.1', ['10.0.0.1']],
    ['10.0.0.0/8, 192.168.1.0/255.255.255.0', ['10.0.0.0/8', '192.168.1.0/255.255.255.0']],
    ['loopback, fc00::/7, 2001:db8::1', ['loopback', 'fc00::/7', '2001:db8::1']],
  ])('parses %j as %j', (raw, expected) => {
    expect(parseTrustProxy(raw)).toEqual({ value: expected });
  });

  it.each([
    ['yes', 'not a name Express knows'],
    ['-1', 'a negative number of hops'],
    ['1.5', 'a fractional number of hops'],
    ['10.0.0.0/33', 'a prefix longer than the address'],
    ['300.1.1.1', 'not an address'],
    ['loopback,,linklocal', 'an empty entry'],
    ['Loopback', 'names are lower-case'],
    ['99999999999999999999', 'more hops than a number holds exactly'],
  ])('refuses %j (%s)', (raw) => {
    expect(parseTrustProxy(raw)).toEqual({ error: expect.any(String) });
  });

  it('gives Express a value it treats as that many hops', () => {
    const parsed = parseTrustProxy('1');
    if (!('value' in parsed)) throw new Error('expected a value');
    const trust = express().set('trust proxy', parsed.value).get('trust proxy fn') as (address: string, hop: number) => boolean;
    // One hop: the socket's peer (hop 0) is trusted, whatever its address; the next is not.
    expect(trust('203.0.113.7', 0)).toBe(true);
    expect(trust('0.0.0.1', 1)).toBe(false);
  });
});

describe('loadConfig TRUST_PROXY', () => {
  it('defaults to trusting no proxy', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ TRUST_PROXY: '' }).trustProxy).toBe(false);
  });

  it('parses the variable', () => {
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toBe(true);
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toEqual(['loopback', '10.0.0.0/8']);
  });

  it('refuses an invalid value at start-up with a ConfigError naming the variable', () => {
    let thrown: unknown;
    try {
      loadConfig({ TRUST_PROXY: 'yes' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).problems).toEqual([expect.stringMatching(/^TRUST_PROXY: .*yes.*true, false, a number of proxy hops/)]);
  });
});

describe('loadConfig MIGRATE_CONCURRENCY', () => {
  it('accepts 1 to 32 (what migrateTenants accepts), and fails start-up above', () => {
    expect(loadConfig({}).migrateConcurrency).toBe(4);
    expect(loadConfig({ MIGRATE_CONCURRENCY: '32' }).migrateConcurrency).toBe(32);
    for (const value of ['33', '0', 'many']) expect(() => loadConfig({ MIGRATE_CONCURRENCY: value })).toThrow(ConfigError);
  });
});

describe('loadConfig MIGRATOR', () => {
  it('defaults to the in-process migrator, still takes its old name `wasm`, and refuses anything else', () => {
    expect(loadConfig({}).migrator).toBe('in-process');
    expect(loadConfig({ MIGRATOR: 'wasm' }).migrator).toBe('in-process');
    expect(loadConfig({ MIGRATOR: 'cli' }).migrator).toBe('cli');
    expect(() => loadConfig({ MIGRATOR: 'engine' })).toThrow(ConfigError);
  });
});

describe('loadConfig PASSWORD_HASH_*', () => {
  it('leaves one core to the event loop, and bounds the queue by default', () => {
    expect(loadConfig({}).auth.passwordJobs).toEqual({ threads: Math.max(1, availableParallelism() - 1), queueMax: 32, queueWaitMs: 500 });
  });

  it('takes the variables, with 0 meaning no queue beyond the threads and no wait', () => {
    const env = { PASSWORD_HASH_THREADS: '3', PASSWORD_HASH_QUEUE_MAX: '0', PASSWORD_HASH_QUEUE_WAIT_MS: '0' };
    expect(loadConfig(env).auth.passwordJobs).toEqual({ threads: 3, queueMax: 0, queueWaitMs: 0 });
  });

  it('fails start-up without a thread, or with an unbounded queue or wait', () => {
    for (const env of [{ PASSWORD_HASH_THREADS: '0' }, { PASSWORD_HASH_QUEUE_MAX: '-1' }, { PASSWORD_HASH_QUEUE_MAX: 'Infinity' }, { PASSWORD_HASH_QUEUE_WAIT_MS: '600000' }]) {
      expect(() => loadConfig(env)).toThrow(ConfigError);
    }
  });
});

describe('loadConfig APQ budget', () => {
  it('has defaults, reads the variables, and fails start-up on a budget that is not a positive integer', () => {
    expect(loadConfig({}).apqLimits).toEqual({ maxDocumentBytes: 20_000, maxEntriesPerCaller: 1_000, maxBytesPerCaller: 1_000_000 });
    expect(
      loadConfig({ APQ_MAX_DOCUMENT_BYTES: '5000', APQ_MAX_ENTRIES_PER_CALLER: '10', APQ_MAX_BYTES_PER_CALLER: '50000' }).apqLimits,
    ).toEqual({ maxDocumentBytes: 5_000, maxEntriesPerCaller: 10, maxBytesPerCaller: 50_000 });
    for (const name of ['APQ_MAX_DOCUMENT_BYTES', 'APQ_MAX_ENTRIES_PER_CALLER', 'APQ_MAX_BYTES_PER_CALLER']) {
      for (const value of ['0', '-1', '1.5', 'lots']) expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    }
  });
});

describe('loadConfig TENANT_MAX_IN_FLIGHT*', () => {
  it('lets a tenant alone on an instance run four times its share by default, or what TENANT_MAX_IN_FLIGHT_ALONE says', () => {
    expect(loadConfig({}).tenantInFlight).toEqual({ maxInFlight: 8, maxInFlightAlone: 32, quietMs: 1_000, maxQueued: 64, maxWaitMs: 5_000 });
    expect(loadConfig({ TENANT_MAX_IN_FLIGHT: '2' }).tenantInFlight.maxInFlightAlone).toBe(8);
    expect(loadConfig({ TENANT_MAX_IN_FLIGHT: '2', TENANT_MAX_IN_FLIGHT_ALONE: '2', TENANT_IN_FLIGHT_QUIET_MS: '0' }).tenantInFlight).toMatchObject({ maxInFlightAlone: 2, quietMs: 0 });
  });

  it('fails start-up when the cap alone is below the share', () => {
    expect(() => loadConfig({ TENANT_MAX_IN_FLIGHT: '8', TENANT_MAX_IN_FLIGHT_ALONE: '4' })).toThrow(/TENANT_MAX_IN_FLIGHT_ALONE \(4\) must be at least TENANT_MAX_IN_FLIGHT \(8\)/);
  });
});

describe('loadConfig SHUTDOWN_*', () => {
  it('gives requests in flight what closing leaves of the shutdown time: a quarter, at most 2 s', () => {
    expect(loadConfig({}).shutdown).toEqual({ timeoutMs: 8_000, delayMs: 0, drainMs: 6_000 });
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: '2000', SHUTDOWN_DELAY_MS: '500' }).shutdown).toEqual({ timeoutMs: 2_000, delayMs: 500, drainMs: 1_500 });
    expect(loadConfig({ SHUTDOWN_TIMEOUT_MS: '30000' }).shutdown.drainMs).toBe(28_000);
  });

  it('fails start-up on a readiness delay that would leave requests in flight no time, or on a timeout below 100 ms', () => {
    expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: '2000', SHUTDOWN_DELAY_MS: '1500' })).toThrow(/SHUTDOWN_DELAY_MS/);
    for (const value of ['99', '-1', 'soon']) expect(() => loadConfig({ SHUTDOWN_TIMEOUT_MS: value })).toThrow(ConfigError);
  });
});

describe('loadConfig REDIS_CLUSTER_NODES', () => {
  it('reads host:port entries, IPv6 in brackets', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: 'redis-a:7000, 10.0.0.2:7001,[::1]:7002' }).redisClusterNodes).toEqual([
      { host: 'redis-a', port: 7000 },
      { host: '10.0.0.2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(loadConfig({}).redisClusterNodes).toBeUndefined();
  });

  it('refuses malformed entries, naming the variable', () => {
    for (const value of ['redis-a', 'redis-a:0', 'redis-a:7000,', 'redis://a:7000', 'a:70000']) {
      const thrown = (() => {
        try {
          loadConfig({ REDIS_CLUSTER_NODES: value });
        } catch (error) {
          return error;
        }
      })();
      expect(thrown).toBeInstanceOf(ConfigError);
      expect((thrown as ConfigError).problems).toEqual([expect.stringMatching(/^REDIS_CLUSTER_NODES: .*host:port/)]);
    }
  });

  it('refuses REDIS_URL together with REDIS_CLUSTER_NODES', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7000' })).toThrow(
      /REDIS_URL and REDIS_CLUSTER_NODES are both set/,
    );
  });
});

describe('loadConfig TENANT_CLUSTERS and TENANT_CLUSTER_STATES', () => {
  it('lists main (DATABASE_URL) first, then the named clusters, open unless a state says otherwise', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://fleet@db-main:5432/fleet',
      TENANT_CLUSTERS: 'east=postgres://fleet:p%2Cw@db-east:5432/fleet, west=postgresql://fleet@db-west/fleet',
      TENANT_CLUSTER_STATES: 'main=draining,west=closed',
    });
    expect(config.clusters).toEqual([
      { name: 'main', url: 'postgres://fleet@db-main:5432/fleet', state: 'draining' },
      { name: 'east', url: 'postgres://fleet:p%2Cw@db-east:5432/fleet', state: 'open' },
      { name: 'west', url: 'postgresql://fleet@db-west/fleet', state: 'closed' },
    ]);
    expect(loadConfig({}).clusters).toEqual([{ name: 'main', url: undefined, state: 'open' }]);
  });

  it('refuses a reserved, repeated or malformed name, a URL that is not postgres://, a bad state and a state for an unknown cluster', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
      } catch (error) {
        return (error as ConfigError).problems;
      }
      return [];
    };
    expect(problems({ TENANT_CLUSTERS: 'main=postgres://a/b' })).toEqual([expect.stringMatching(/^TENANT_CLUSTERS: "main" is DATABASE_URL's cluster/)]);
    expect(problems({ TENANT_CLUSTERS: 'east=postgres://a/b,east=postgres://c/d' })).toEqual([expect.stringMatching(/named twice/)]);
    expect(problems({ TENANT_CLUSTERS: 'East-1=postgres://a/b' })).toEqual([expect.stringMatching(/is not a cluster name/)]);
    expect(problems({ TENANT_CLUSTERS: 'east=redis://a:6379' })).toEqual([expect.stringMatching(/needs a postgres:\/\/ URL/)]);
    expect(problems({ TENANT_CLUSTER_STATES: 'main=open=closed' })).toEqual([expect.stringMatching(/is not name=open\|draining\|closed/)]);
    expect(problems({ TENANT_CLUSTER_STATES: 'main=paused' })).toEqual([expect.stringMatching(/is not name=open\|draining\|closed/)]);
    expect(problems({ TENANT_CLUSTER_STATES: 'east=open' })).toEqual([expect.stringMatching(/names clusters TENANT_CLUSTERS does not: east/)]);
  });
});
