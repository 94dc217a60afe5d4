import { graphql } from '../generated';
import type { GraphQLClient } from '../support/graphql-request';
import { expectErrors, startTestServer, type TenantFixture, type TestServer } from '../support/test-server';

/* Fleet settings over HTTP: members read them, ADMIN+ change them, invalid values are refused by field. */

let app: TestServer;
let tenant: TenantFixture;
let manager: GraphQLClient;

const READ = graphql(`query SettingsRead { fleetSettings { timeZone distanceUnit currency lateToleranceMinutes defaultNotificationChannel updatedAt } }`);
const UPDATE = graphql(`mutation SettingsUpdate($input: UpdateFleetSettingsInput!) {
  updateFleetSettings(input: $input) { settings { timeZone distanceUnit currency lateToleranceMinutes defaultNotificationChannel } }
}`);

beforeAll(async () => {
  app = await startTestServer();
  tenant = await app.createTenant();
  await tenant.owner.request(graphql(`mutation SettingsAddManager($input: AddMemberInput!) { addMember(input: $input) { member { id } } }`), {
    input: { email: 'manager@settings.test', name: 'Manager', password: 'settings-password-1', role: 'MANAGER' },
  });
  manager = app.bearer(await app.login(tenant.slug, 'manager@settings.test', 'settings-password-1'));
}, 60_000);

afterAll(async () => {
  await app?.close();
});

describe('fleet settings', () => {
  it('start with the seeded defaults, readable by any member', async () => {
    const { fleetSettings } = await manager.request(READ);
    expect(fleetSettings).toMatchObject({ timeZone: 'UTC', distanceUnit: 'KM', currency: 'EUR', lateToleranceMinutes: 15, defaultNotificationChannel: 'EMAIL' });
  });

  it('change for ADMIN+, field by field; a MANAGER is refused and changes nothing', async () => {
    const changed = await tenant.owner.request(UPDATE, { input: { timeZone: 'Europe/Paris', currency: 'usd', distanceUnit: 'MI' } });
    expect(changed.updateFleetSettings.settings).toEqual({ timeZone: 'Europe/Paris', distanceUnit: 'MI', currency: 'USD', lateToleranceMinutes: 15, defaultNotificationChannel: 'EMAIL' });
    const refused = await expectErrors(manager.request(UPDATE, { input: { currency: 'GBP' } }));
    expect(refused.errors.map((error) => error.extensions.code)).toEqual(['FORBIDDEN']);
    expect((await manager.request(READ)).fleetSettings.currency).toBe('USD');
  });

  it.each([
    [{ timeZone: 'Mars/Olympus_Mons' }, 'timeZone'],
    [{ timeZone: '' }, 'timeZone'],
    [{ currency: 'EURO' }, 'currency'],
    [{ currency: 'XYZ1' }, 'currency'],
    [{ lateToleranceMinutes: -1 }, 'lateToleranceMinutes'],
    [{ lateToleranceMinutes: 1441 }, 'lateToleranceMinutes'],
  ])('refuses %j with BAD_USER_INPUT naming %s, and changes nothing', async (input, field) => {
    const before = (await tenant.owner.request(READ)).fleetSettings;
    const { errors } = await expectErrors(tenant.owner.request(UPDATE, { input }));
    expect(errors.map((error) => [error.extensions.code, error.extensions.field])).toEqual([['BAD_USER_INPUT', field]]);
    expect((await tenant.owner.request(READ)).fleetSettings).toEqual(before);
  });
});
