import { graphql } from '../generated';
import { ADMIN_EMAIL, errorCode, startTestServer, type TestServer } from '../support/test-server';

let app: TestServer;

beforeAll(async () => {
  app = await startTestServer();
});

afterAll(async () => {
  await app.close();
});

describe('a fresh server', () => {
  it('answers /healthz and /readyz over HTTP', async () => {
    const base = app.url.replace(/\/graphql$/, '');
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { postgres: 'ok' } });
  });

  it('signs in the bootstrap admin, who provisions a tenant whose owner can then sign in', async () => {
    const admin = await app.admin();
    const me = await admin.request(graphql(`query AdminMe { me { email kind } }`));
    expect(me.me).toEqual({ email: ADMIN_EMAIL, kind: 'PLATFORM_ADMIN' });

    const tenant = await app.createTenant();
    const owner = await tenant.owner.request(graphql(`query OwnerMe { me { role tenant { slug status } } }`));
    expect(owner.me).toEqual({ role: 'OWNER', tenant: { slug: tenant.slug, status: 'ACTIVE' } });
  });

  it('refuses tenant data to anonymous callers with UNAUTHENTICATED', async () => {
    expect(await errorCode(app.client().request(graphql(`query VehicleCount { vehicles { totalCount } }`)))).toBe('UNAUTHENTICATED');
  });
});
