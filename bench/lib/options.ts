import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/*
 * Command-line options of `npm run bench -- ...` and the counts each mode uses. See
 * bench/README.md for what every section measures.
 */

export const SECTIONS = ['request', 'hot', 'cold', 'provision', 'migrate', 'memory', 'scale', 'noisy', 'upgrade', 'clusters'] as const;
export type Section = (typeof SECTIONS)[number];

/**
 * The order sections run in, whatever the order asked for: tenants accumulate in one scratch
 * database, and migrate goes last because its new migrations change 200 tenants' schemas. Hot
 * runs right after request, whose tenant-server figure it compares with. Clusters comes after
 * everything else: it leaves tenants on a second PostgreSQL server that only its own server
 * instance knows (the shared tenant server would find them unreachable, e.g. in migrate's
 * whole-fleet run).
 */
export const RUN_ORDER: readonly Section[] = ['request', 'hot', 'cold', 'provision', 'memory', 'scale', 'noisy', 'migrate', 'upgrade', 'clusters'];

/** Sections that run only when --only names them. */
export const ONLY_WHEN_ASKED: readonly Section[] = ['upgrade', 'clusters'];

export interface Counts {
  /** Tenants (20 vehicles and drivers each) the request path rotates over. */
  requestTenants: number;
  vehiclesPerTenant: number;
  /** Vehicles (each with its driver) of the hot section's one tenant. */
  hotVehicles: number;
  /** Rounds per load figure; the table shows the median. */
  rounds: number;
  durationSec: number;
  warmupSec: number;
  /** Concurrent connections of the load generator (request, hot and scale). */
  connections: number;
  coldTenants: number;
  provisionTenants: number;
  migrateTenants: number;
  /** Rounds of migrateTenants with a new migration (each up-to-date check runs 3 times). */
  migrateRounds: number;
  /** Tenants the upgrade section provisions at the first release and migrates to today. */
  upgradeTenants: number;
  memoryClients: number[];
  scaleTenants: number;
  scaleHot: number;
  /** Noisy section: seconds tenant B is measured in each scenario, and the noise's head start. */
  noisyWindowSec: number;
  noisyWarmupSec: number;
  /** createTenant calls in flight while loading tenants in-process (not a measured figure). */
  bulkConcurrency: number;
  /** Clusters section: createTenant calls placed over two clusters, and the moved tenant's vehicles. */
  clusterTenants: number;
  moveVehicles: number;
}

export interface Options {
  sections: Section[];
  quick: boolean;
  counts: Counts;
  logLevel: string;
  /** Environment overrides for the product's server (--set KEY=VALUE), e.g. TENANT_POOL_MAX=1. */
  serverEnv: Record<string, string>;
  keepDatabase: boolean;
  /** --profile: where the hot section writes a CPU profile of the tenant server's rounds. */
  profileFile: string | null;
  help: boolean;
}

const FULL: Counts = {
  requestTenants: 50,
  vehiclesPerTenant: 20,
  hotVehicles: 1000,
  rounds: 3,
  durationSec: 10,
  warmupSec: 3,
  connections: 32,
  coldTenants: 20,
  provisionTenants: 20,
  migrateTenants: 200,
  migrateRounds: 3,
  upgradeTenants: 1000,
  memoryClients: [50, 500],
  scaleTenants: 1000,
  scaleHot: 50,
  noisyWindowSec: 15,
  noisyWarmupSec: 5,
  bulkConcurrency: 4,
  clusterTenants: 20,
  moveVehicles: 10_000,
};

const QUICK: Counts = {
  ...FULL,
  requestTenants: 10,
  rounds: 2,
  durationSec: 3,
  warmupSec: 1,
  coldTenants: 10,
  provisionTenants: 5,
  migrateTenants: 50,
  migrateRounds: 1,
  upgradeTenants: 50,
  memoryClients: [10, 100],
  scaleTenants: 200,
  scaleHot: 10,
  noisyWindowSec: 5,
  noisyWarmupSec: 2,
  clusterTenants: 6,
};

export const USAGE = `npm run bench -- [options]

  --only <list>        comma-separated subset of: ${SECTIONS.join(', ')} (default: all but upgrade,
                       which provisions 1,000 more tenants, and clusters, which starts a second
                       PostgreSQL server; those two run only when asked for)
  --quick              scaled-down counts and short rounds (10 tenants, 200 for scale, 2 x 3 s,
                       noisy windows of 5 s, 6 tenants placed over two clusters)
  --duration <s>       seconds per load round (default 10; quick 3; not the noisy section's windows)
  --rounds <n>         rounds per load figure, median shown (default 3; quick 2)
  --connections <n>    concurrent connections of the load generator (default 32)
  --log-level <level>  the tenant server's log level; logs go to a file (default info, as in production)
  --set KEY=VALUE      server configuration override (environment variable of src/config/config.ts),
                       repeatable, e.g. --set TENANT_CONNECTION_BUDGET=60 --set TENANT_POOL_MAX=1
  --keep-database      leave the scratch database (and its tenant roles) behind for inspection
  --profile <file>     CPU profile of the tenant server during the hot section's measured rounds,
                       written as a .cpuprofile; self time by category goes into the notes
  --help               this text`;

function positiveInt(flag: string, value: string | undefined): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1) throw new Error(`${flag} needs a positive integer, got ${value ?? 'nothing'}`);
  return parsed;
}

/** An absolute path in a folder that exists and can be written to: checked now, not after the run. */
function writableFile(flag: string, value: string | undefined): string {
  if (!value || value.startsWith('--')) throw new Error(`${flag} takes a file name, e.g. ${flag} /tmp/hot.cpuprofile`);
  const file = path.resolve(value);
  try {
    accessSync(path.dirname(file), constants.W_OK);
  } catch {
    throw new Error(`${flag}: cannot write to ${path.dirname(file)}`);
  }
  return file;
}

export function parseOptions(argv: string[]): Options {
  let sections: Section[] = SECTIONS.filter((section) => !ONLY_WHEN_ASKED.includes(section));
  let quick = false;
  let logLevel = 'info';
  let keepDatabase = false;
  let profileFile: string | null = null;
  let help = false;
  const serverEnv: Record<string, string> = {};
  const overrides: Partial<Counts> = {};
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? (arg.split(/=(.*)/s, 2) as [string, string]) : [arg, undefined];
    const value = () => inline ?? argv[++index];
    switch (flag) {
      case '--only': {
        const wanted = (value() ?? '').split(',').map((name) => name.trim()).filter(Boolean);
        const unknown = wanted.filter((name) => !(SECTIONS as readonly string[]).includes(name));
        if (wanted.length === 0 || unknown.length > 0) {
          throw new Error(`--only takes a list of ${SECTIONS.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
        }
        sections = wanted as Section[];
        break;
      }
      case '--quick':
        quick = true;
        break;
      case '--duration':
        overrides.durationSec = positiveInt(flag, value());
        break;
      case '--rounds':
        overrides.rounds = positiveInt(flag, value());
        break;
      case '--connections':
        overrides.connections = positiveInt(flag, value());
        break;
      case '--log-level':
        logLevel = value() ?? 'info';
        break;
      case '--set': {
        const assignment = value() ?? '';
        const match = /^([A-Z][A-Z0-9_]*)=(.*)$/s.exec(assignment);
        if (!match) throw new Error(`--set takes KEY=VALUE, got ${assignment || 'nothing'}`);
        serverEnv[match[1] as string] = match[2] as string;
        break;
      }
      case '--keep-database':
        keepDatabase = true;
        break;
      case '--profile':
        profileFile = writableFile(flag, value());
        break;
      case '--help':
      case '-h':
        help = true;
        break;
      default:
        throw new Error(`unknown option ${arg}\n\n${USAGE}`);
    }
  }
  const counts: Counts = { ...(quick ? QUICK : FULL), ...overrides };
  // migrateTenants allows 10 calls a minute per admin: 3 + 3 up-to-date checks + at most 3 rounds.
  counts.migrateRounds = Math.min(counts.rounds, quick ? 1 : 3);
  if (profileFile && !sections.includes('hot')) throw new Error(`--profile records the hot section's rounds: add hot to --only`);
  return { sections: RUN_ORDER.filter((section) => sections.includes(section)), quick, counts, logLevel, serverEnv, keepDatabase, profileFile, help };
}
