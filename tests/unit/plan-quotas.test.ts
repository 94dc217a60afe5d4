import { effectiveQuota, PLAN_QUOTAS, QUOTAS, type QuotaSubject } from '../../src/rate-limiting/plan-quotas';

/* The limit in force per quota: the plan's, an override (a number, or null for unbounded), and stored overrides that are not well-formed. */

const tenant = (plan: QuotaSubject['plan'], quotaOverrides: QuotaSubject['quotaOverrides']): QuotaSubject => ({ id: 't', plan, quotaOverrides });

describe('effectiveQuota', () => {
  it("follows the plan when nothing is overridden", () => {
    for (const plan of ['FREE', 'STANDARD', 'ENTERPRISE'] as const) {
      for (const quota of QUOTAS) expect(effectiveQuota(tenant(plan, null), quota)).toEqual({ limit: PLAN_QUOTAS[plan][quota], overridden: false });
    }
  });

  it('an override wins, a null override is unbounded, and other quotas keep the plan', () => {
    const overridden = tenant('FREE', { VEHICLES: 100, API_KEYS: null, MEMBERS: 0 });
    expect(effectiveQuota(overridden, 'VEHICLES')).toEqual({ limit: 100, overridden: true });
    expect(effectiveQuota(overridden, 'API_KEYS')).toEqual({ limit: null, overridden: true });
    expect(effectiveQuota(overridden, 'MEMBERS')).toEqual({ limit: 0, overridden: true });
    expect(effectiveQuota(overridden, 'DRIVERS')).toEqual({ limit: 25, overridden: false });
    expect(effectiveQuota(tenant('ENTERPRISE', { OPEN_TRIPS: 10 }), 'OPEN_TRIPS')).toEqual({ limit: 10, overridden: true });
  });

  it('ignores stored entries that are not limits (a hand-edited row cannot break requests)', () => {
    for (const stored of [[1, 2], 'VEHICLES', 7, { VEHICLES: -1 }, { VEHICLES: 1.5 }, { VEHICLES: '10' }, { vehicles: 10 }]) {
      expect(effectiveQuota(tenant('FREE', stored), 'VEHICLES')).toEqual({ limit: 25, overridden: false });
    }
  });
});
