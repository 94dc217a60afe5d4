/*
 * The order jest starts test files in. Its default runs the files that took longest last time
 * first, but that timing lives in jest's cache, which CI's fresh clone does not have: it then
 * orders by file size, and a short but slow file (a Redis Cluster, a production build, a server
 * killed at every statement) can start near the end and keep one of the two workers busy while
 * the other sits idle. So the files known to be slow go first, longest first (durations measured
 * on the 2-core CI machine, December 2026); every other file follows in jest's own order.
 * A file missing from the list is only scheduled later, never skipped.
 */
const Sequencer = require('@jest/test-sequencer').default;

/** Slowest first (seconds measured in a full run, for whoever updates this list). */
const KNOWN_SLOW = [
  'integration/production-image.test.ts', // 65
  'integration/crash-recovery.test.ts', // 52
  'integration/rate-limits.test.ts', // 50
  'integration/role-matrix.test.ts', // 48
  'integration/tenant-client-pool.test.ts', // 39
  'integration/auth.test.ts', // 35
  'integration/plan-quotas.test.ts', // 30
  'integration/shutdown.test.ts', // 24
  'integration/clusters.test.ts', // 23
  'integration/password-hashing.test.ts', // 22
  'integration/cross-tenant-isolation.test.ts', // 21
  'integration/email.test.ts', // 21
  'integration/fair-share.test.ts', // 19
  'integration/persisted-operation-limits.test.ts', // 19
  'integration/redis-cluster.test.ts', // 19
  'integration/tenant-jobs.test.ts', // 20
  'integration/migrate-tenants.test.ts', // 18
  'integration/provisioning.test.ts', // 17
  'integration/notification-retries.test.ts', // 17
  'integration/schema-check.test.ts', // 16
  'integration/tracing.test.ts', // 15
];

function rankOf(testPath) {
  const normalized = testPath.split('\\').join('/');
  const index = KNOWN_SLOW.findIndex((suffix) => normalized.endsWith(`/tests/${suffix}`));
  return index < 0 ? KNOWN_SLOW.length : index;
}

class KnownSlowFirstSequencer extends Sequencer {
  async sort(tests) {
    const byJest = await super.sort(tests);
    const position = new Map(byJest.map((test, index) => [test, index]));
    return [...byJest].sort((a, b) => rankOf(a.path) - rankOf(b.path) || position.get(a) - position.get(b));
  }
}

module.exports = KnownSlowFirstSequencer;
