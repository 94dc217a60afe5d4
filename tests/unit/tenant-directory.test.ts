import type { PlatformPrisma } from '../../src/database/platform-database';
import { TenantDirectory, type TenantRecord } from '../../src/tenancy/tenant-directory';
import { HOSTILE_SLUGS } from '../support/hostile-slugs';

/** A platform client that records the slugs it was asked for and knows one tenant. */
function fakePlatform(known: Pick<TenantRecord, 'id' | 'slug'>) {
  const asked: string[] = [];
  const prisma = {
    tenant: {
      findUnique: ({ where }: { where: { slug?: string; id?: string } }) => {
        asked.push(where.slug ?? where.id ?? '');
        // Like PostgreSQL, which refuses text holding NUL outright (Prisma's P2039).
        if ((where.slug ?? '').includes('\u0000')) return Promise.reject(new Error('P2039: invalid byte sequence (NUL)'));
        return Promise.resolve(where.slug === known.slug ? (known as TenantRecord) : null);
      },
    },
  };
  return { prisma: prisma as unknown as PlatformPrisma, asked };
}

describe('TenantDirectory.findBySlug', () => {
  const known = { id: '01900000-0000-7000-8000-000000000001', slug: 'acme' };

  const notSlugs: [why: string, slug: string][] = [
    ...HOSTILE_SLUGS.map(([slug, why]): [string, string] => [why, slug]),
    ['a real slug and a NUL', 'acme\u0000'],
    ['100 000 characters', 'x'.repeat(100_000)],
  ];

  it.each(notSlugs)('answers null for a slug that is not one (%s) without querying', async (_why, slug) => {
      const { prisma, asked } = fakePlatform(known);
      const directory = new TenantDirectory(prisma, null, 10);
    await expect(directory.findBySlug(slug)).resolves.toBeNull();
    expect(asked).toEqual([]);
  });

  it('still looks up a valid slug', async () => {
    const { prisma, asked } = fakePlatform(known);
    const directory = new TenantDirectory(prisma, null, 10);
    await expect(directory.findBySlug('acme')).resolves.toMatchObject(known);
    await expect(directory.findBySlug('other')).resolves.toBeNull();
    expect(asked).toEqual(['acme', 'other']);
  });
});
