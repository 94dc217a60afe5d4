import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { bearer, postJson, send } from '../support/raw-graphql';
import { startTestServer, type TestServer } from '../support/test-server';

/*
 * Keeps the Prometheus + Grafana setup of docker-compose.yml valid without Docker (none here):
 * the dashboard JSON parses, every metric its PromQL queries exists in the real server's
 * /metrics after a few requests, its panels use the provisioned data source, and Prometheus
 * scrapes the compose API with the compose API's METRICS_TOKEN. Runs in `npm test`, so in `.ci/run`.
 */

const ROOT = path.resolve(__dirname, '../..');
const DASHBOARD = path.join(ROOT, 'docker/grafana/dashboards/fleet-graphql.json');

interface Panel {
  type: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

/** PromQL words that are not metric names (aggregations, functions are followed by "(", modifiers). */
const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression selects: identifiers left once strings, label matchers,
 * groupings, ranges and numbers are removed, other than functions (followed by "(") and keywords.
 */
function metricNamesOf(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\boffset\s+-?\w+/gi, ' ')
    // Numbers and durations (0.95, 5m, 1e3): no metric name starts with a digit.
    .replace(/(^|[^A-Za-z0-9_:])\d[\w.]*/g, '$1');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const after = stripped.slice((match.index ?? 0) + match[0].length).trimStart();
    if (after.startsWith('(') || PROMQL_KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

function panelsOf(panels: Panel[]): Panel[] {
  return panels.flatMap((panel) => [panel, ...panelsOf(panel.panels ?? [])]);
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; panels: Panel[] };
const queried = panelsOf(dashboard.panels).filter((panel) => panel.type !== 'row');
const exprs = queried.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr ?? ''));

describe('metricNamesOf', () => {
  it('finds the selected metrics, not functions, labels or keywords', () => {
    expect(metricNamesOf('histogram_quantile(0.95, sum by (le, operation_name) (rate(fleet_x_bucket{outcome!="ok"}[5m])))')).toEqual(['fleet_x_bucket']);
    expect(metricNamesOf('fleet_a / on (job) fleet_b offset 5m')).toEqual(['fleet_a', 'fleet_b']);
  });
});

describe('the provisioned Grafana dashboard and Prometheus config', () => {
  it('parse, and every panel queries the provisioned Prometheus data source', () => {
    expect(dashboard.uid).toBe('fleet-graphql');
    expect(queried.length).toBeGreaterThan(10);
    const datasources = parseYaml(readFileSync(path.join(ROOT, 'docker/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: { uid: string; type: string; url: string }[];
    };
    const uids = new Set(datasources.datasources.map((source) => source.uid));
    for (const panel of queried) {
      expect(panel.targets?.length).toBeGreaterThan(0);
      expect(uids.has(panel.datasource?.uid ?? '')).toBe(true);
    }
    const providers = parseYaml(readFileSync(path.join(ROOT, 'docker/grafana/provisioning/dashboards/fleet.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    const compose = parseYaml(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { environment?: Record<string, string>; volumes?: string[]; ports?: string[] }>;
    };
    // The dashboards folder is mounted where the provider looks.
    expect(compose.services.grafana?.volumes).toContain(`./docker/grafana/dashboards:${providers.providers[0]?.options.path}:ro`);
    const prometheus = parseYaml(readFileSync(path.join(ROOT, 'docker/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: { metrics_path: string; authorization: { credentials: string }; static_configs: { targets: string[] }[] }[];
    };
    const scrape = prometheus.scrape_configs[0]!;
    expect(scrape.metrics_path).toBe('/metrics');
    expect(scrape.static_configs[0]?.targets).toEqual([`api:${compose.services.api?.environment?.PORT}`]);
    expect(scrape.authorization.credentials).toBe(compose.services.api?.environment?.METRICS_TOKEN);
  });

  describe('against a running server', () => {
    const token = 'dashboard-check-token-0123456789';
    let app: TestServer;

    beforeAll(async () => {
      app = await startTestServer({ env: { METRICS_TOKEN: token } });
      // A few requests, so that the families labelled per request have series.
      const tenant = await app.createTenant();
      await postJson(app.url, { query: 'query DashboardVehicles { vehicles { totalCount } }' }, bearer(tenant.ownerToken));
      await postJson(app.url, { query: '{ vehicles { totalCount } }' }, bearer('not-a-token'));
    }, 60_000);

    afterAll(async () => {
      await app?.close();
    });

    it('exposes every metric the dashboard queries', async () => {
      const response = await send(app.url.replace(/\/graphql$/, '/metrics'), { headers: bearer(token) });
      expect(response.status).toBe(200);
      const exposed = new Set(
        response.text
          .split('\n')
          .filter((line) => line !== '' && !line.startsWith('#'))
          .map((line) => /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line)?.[0]),
      );
      const names = [...new Set(exprs.flatMap(metricNamesOf))];
      expect(names.length).toBeGreaterThan(15);
      expect(names.filter((name) => !exposed.has(name))).toEqual([]);
    });
  });
});
