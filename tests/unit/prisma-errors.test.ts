import {
  foreignKeyViolation,
  isForeignKeyViolation,
  isViolationOf,
  uniqueViolation,
  uniqueViolationFields,
  type ConstraintRef,
} from '../../src/database/prisma-errors';
import { Prisma } from '../../src/generated/prisma/tenant/client';

/*
 * Which constraint a Prisma error names, in each shape Prisma reports it: the pg driver adapter
 * gives the index name (or only the columns, when PostgreSQL reports no constraint), Prisma's
 * engines give meta.target. The fleet maps a violation to a field only when it is sure which.
 */

const PLATE_KEY: ConstraintRef = { name: 'Vehicle_plate_key', fields: ['plate'] };
const DRIVER_KEY: ConstraintRef = { name: 'Vehicle_driverId_key', fields: ['driverId'] };

function prismaError(code: string, meta: Record<string, unknown>): Prisma.PrismaClientKnownRequestError {
  return new Prisma.PrismaClientKnownRequestError('constraint failed', { code, clientVersion: Prisma.prismaVersion.client, meta });
}

/** meta as Prisma 7 builds it from the pg adapter's error. */
const adapterMeta = (constraint: Record<string, unknown> | undefined) => ({
  modelName: 'Vehicle',
  driverAdapterError: Object.assign(new Error('UniqueConstraintViolation'), {
    name: 'DriverAdapterError',
    cause: { kind: 'UniqueConstraintViolation', constraint },
  }),
});

describe('uniqueViolation', () => {
  it('names the index the pg adapter reports, and matches only that constraint', () => {
    const violation = uniqueViolation(prismaError('P2002', adapterMeta({ index: 'Vehicle_driverId_key' })));
    expect(violation).toEqual({ name: 'Vehicle_driverId_key', fields: [] });
    expect(isViolationOf(violation, DRIVER_KEY)).toBe(true);
    expect(isViolationOf(violation, PLATE_KEY)).toBe(false);
  });

  it('matches by columns when the adapter gives only those (quoted as PostgreSQL prints them)', () => {
    const violation = uniqueViolation(prismaError('P2002', adapterMeta({ fields: ['"plate"'] })));
    expect(violation).toEqual({ name: null, fields: ['plate'] });
    expect(isViolationOf(violation, PLATE_KEY)).toBe(true);
    expect(isViolationOf(violation, DRIVER_KEY)).toBe(false);
  });

  it("reads the engines' meta.target, a column list or an index name", () => {
    expect(isViolationOf(uniqueViolation(prismaError('P2002', { target: ['driverId'] })), DRIVER_KEY)).toBe(true);
    expect(isViolationOf(uniqueViolation(prismaError('P2002', { target: 'Vehicle_plate_key' })), PLATE_KEY)).toBe(true);
    expect(isViolationOf(uniqueViolation(prismaError('P2002', { target: 'Vehicle_plate_key' })), DRIVER_KEY)).toBe(false);
  });

  it('matches nothing when the error names an unknown constraint, or none at all', () => {
    for (const meta of [adapterMeta({ index: 'Vehicle_vin_key' }), adapterMeta({ fields: ['plate', 'make'] }), adapterMeta(undefined), {}]) {
      const violation = uniqueViolation(prismaError('P2002', meta));
      expect(violation).not.toBeNull();
      expect(isViolationOf(violation, PLATE_KEY)).toBe(false);
      expect(isViolationOf(violation, DRIVER_KEY)).toBe(false);
    }
  });

  it('is null for other errors, and uniqueViolationFields keeps its answer for callers that only ask "was it unique?"', () => {
    expect(uniqueViolation(prismaError('P2003', adapterMeta({ index: 'Vehicle_driverId_fkey' })))).toBeNull();
    expect(uniqueViolation(new Error('P2002'))).toBeNull();
    expect(uniqueViolationFields(prismaError('P2002', adapterMeta({ index: 'Vehicle_plate_key' })))).toEqual([]);
    expect(uniqueViolationFields(prismaError('P2002', { target: ['plate'] }))).toEqual(['plate']);
    expect(uniqueViolationFields(prismaError('P2025', {}))).toBeNull();
  });
});

describe('foreignKeyViolation', () => {
  it('names the foreign key of a P2003 error, and nothing else', () => {
    const error = prismaError('P2003', adapterMeta({ index: 'Vehicle_driverId_fkey' }));
    expect(foreignKeyViolation(error)).toEqual({ name: 'Vehicle_driverId_fkey', fields: [] });
    expect(isViolationOf(foreignKeyViolation(error), { name: 'Vehicle_driverId_fkey', fields: ['driverId'] })).toBe(true);
    expect(isForeignKeyViolation(error)).toBe(true);
    expect(foreignKeyViolation(prismaError('P2002', adapterMeta({ index: 'Vehicle_driverId_key' })))).toBeNull();
  });
});
