import { forgetAllClients, type BenchContext, type SectionReport } from '../lib/context';
import { describeRounds, loadRounds, summarize, type TargetRounds } from '../lib/load-rounds';
import { ratio, rps } from '../lib/stats';
import { churnNotes, tenantTarget } from './request';

/*
 * 7. Scale: the request-path figure again once the database holds many provisioned tenants
 * (schemas, roles, catalog entries, directory rows), of which only a few are hot.
 */

export async function scaleSection(ctx: BenchContext): Promise<SectionReport> {
  const { counts } = ctx;
  await ctx.fleet.ensureTenants(counts.scaleTenants);
  const hot = await ctx.fleet.ensureHot(counts.scaleHot);
  const total = ctx.fleet.everyTenant().length;
  const catalog = (
    await ctx.monitor.query<{ schemas: string; relations: string; roles: string }>(
      `SELECT (SELECT count(*) FROM pg_namespace WHERE nspname LIKE 't\\_%') AS schemas,
              (SELECT count(*) FROM pg_class) AS relations,
              (SELECT count(*) FROM pg_roles WHERE rolname LIKE $1) AS roles`,
      [`fg\\_${ctx.app.server.installationId}\\_%`],
    )
  ).rows[0];
  await forgetAllClients(ctx);
  const [result] = await loadRounds(ctx, [tenantTarget(ctx, hot, `tenant server, ${total} tenants`)]);
  const target = result as TargetRounds;
  const summary = summarize(target);
  const churn = churnNotes(target, hot.length);
  const rows = [
    {
      measurement: `Tenant server, ${hot.length} hot of ${total} tenants`,
      result: rps(summary.rps),
      detail: `${describeRounds(target)}; ${churn.detail}`,
    },
  ];
  const before = ctx.shared.requestTenantRps;
  if (before && before.tenants === hot.length) {
    rows.push({
      measurement: `Throughput at ${total} tenants / at ${ctx.counts.requestTenants} (request path above)`,
      result: ratio(summary.rps / before.rps),
      detail: `p50 ${before.p50.toFixed(1)} → ${summary.p50.toFixed(1)} ms · p99 ${before.p99.toFixed(1)} → ${summary.p99.toFixed(1)} ms`,
    });
  }
  rows.push({
    measurement: 'Catalog size in the scratch database',
    result: `${catalog?.schemas ?? '?'} tenant schemas`,
    detail: `${catalog?.relations ?? '?'} pg_class rows; ${catalog?.roles ?? '?'} tenant roles (cluster-wide)`,
  });
  const notes = [...churn.notes];
  if (summary.failures > 0) notes.push(`scale: ${summary.failures} responses failed or did not match.`);
  return { title: `Scale — request path with ${total} provisioned tenants, ${hot.length} hot`, rows, notes };
}
