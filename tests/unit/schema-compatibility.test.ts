import { readFileSync } from 'node:fs';
import path from 'node:path';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';
import { buildContractSchema, loadTypeDefs } from '../../src/graphql/schema';
import { sha256Hex } from '../../src/persisted-queries/operation-safelist';
import { checkOperations, operationsOfManifest, type OperationToCheck } from '../../src/persisted-queries/schema-compatibility';

/*
 * The check behind `npm run schema:check`, on the real SDL changed in memory the way a careless
 * change would: what a partner's registered operation would stop doing is reported as broken,
 * with graphql-js's message; what it uses that is deprecated is listed, not broken.
 */

/** The SDL of schema/, with `edit` applied to the file that holds `find` (which must be there). */
function schemaWith(find: string | RegExp, replace: string): GraphQLSchema {
  const typeDefs = loadTypeDefs();
  const index = typeDefs.findIndex((text) => (typeof find === 'string' ? text.includes(find) : find.test(text)));
  if (index < 0) throw new Error(`${String(find)} is not in the SDL`);
  typeDefs[index] = (typeDefs[index] as string).replace(find, replace);
  return makeExecutableSchema({ typeDefs });
}

function operation(name: string, document: string, tenantSlug: string | null = 'acme'): OperationToCheck {
  return { scope: tenantSlug ? 'tenant-id' : 'global', tenantSlug, id: `id-of-${name}`, sha256: sha256Hex(document), operationName: name, document };
}

const BY_STATUS = operation(
  'VehiclesByStatus',
  `query VehiclesByStatus($status: VehicleStatus) {
  vehicles(first: 20, filter: { status: $status }) { edges { node { plate status } } }
}`,
);
const WITH_ODOMETER = operation('Odometers', '{ vehicles(first: 5) { edges { node { plate odometerKm } } } }');
const ACTIVE = operation('Active', '{ vehicles(first: 5, filter: { status: ACTIVE }) { totalCount } }', null);
const ALL = [BY_STATUS, WITH_ODOMETER, ACTIVE];

describe('checkOperations', () => {
  it('passes every operation against the schema as it is', () => {
    expect(checkOperations(buildContractSchema(), ALL)).toEqual({ checked: 3, broken: [], deprecatedOnly: [] });
  });

  it('reports an operation selecting a removed field as broken, naming the field and where', () => {
    const report = checkOperations(schemaWith(/\n {2}odometerKm: Int!\n/, '\n'), ALL);
    expect(report.broken.map((result) => result.operation.operationName)).toEqual(['Odometers']);
    expect(report.broken[0]?.broken).toEqual([
      { message: 'Cannot query field "odometerKm" on type "Vehicle".', locations: [{ line: 1, column: 45 }] },
    ]);
    // The report carries the operation's name and hash, never its text.
    expect(report.broken[0]?.operation).toEqual({ scope: 'tenant-id', tenantSlug: 'acme', id: 'id-of-Odometers', sha256: WITH_ODOMETER.sha256, operationName: 'Odometers' });
    expect(JSON.stringify(report)).not.toContain('edges');
  });

  it('reports a changed argument type (status: VehicleStatus -> [VehicleStatus!]) as broken for the operation passing a variable', () => {
    const report = checkOperations(schemaWith('input VehicleFilter {\n  status: VehicleStatus', 'input VehicleFilter {\n  status: [VehicleStatus!]'), ALL);
    // A literal ACTIVE still coerces to a list of one; the variable of the enum type does not fit.
    expect(report.broken.map((result) => result.operation.operationName)).toEqual(['VehiclesByStatus']);
    const [problem] = report.broken[0]?.broken ?? [];
    expect(problem?.message).toBe('Variable "$status" of type "VehicleStatus" used in position expecting type "[VehicleStatus!]".');
    expect(problem?.locations).toEqual([{ line: 1, column: 24 }, { line: 2, column: 41 }]);
  });

  it('lists deprecated fields, input fields, arguments and enum values an operation uses, without calling it broken', () => {
    const schema = makeExecutableSchema({
      typeDefs: loadTypeDefs().map((text) =>
        text
          .replace(/\n {2}odometerKm: Int!\n/, '\n  odometerKm: Int! @deprecated(reason: "Use odometer { value unit }.")\n')
          .replace('input VehicleFilter {\n  status: VehicleStatus', 'input VehicleFilter {\n  status: VehicleStatus @deprecated(reason: "Use statuses.")')
          .replace(/enum VehicleStatus \{\n {2}ACTIVE\n/, 'enum VehicleStatus {\n  ACTIVE @deprecated(reason: "Now IN_SERVICE.")\n')
          .replace('vehicles(first: Int = 20,', 'vehicles(first: Int = 20 @deprecated(reason: "Pages of 20."),'),
      ),
    });
    const report = checkOperations(schema, ALL);
    expect(report.broken).toEqual([]);
    const uses = Object.fromEntries(report.deprecatedOnly.map((result) => [result.operation.operationName, result.deprecated]));
    expect(uses).toEqual({
      VehiclesByStatus: [
        { coordinate: 'Query.vehicles(first:)', reason: 'Pages of 20.' },
        { coordinate: 'VehicleFilter.status', reason: 'Use statuses.' },
      ],
      Odometers: [
        { coordinate: 'Query.vehicles(first:)', reason: 'Pages of 20.' },
        { coordinate: 'Vehicle.odometerKm', reason: 'Use odometer { value unit }.' },
      ],
      Active: [
        { coordinate: 'Query.vehicles(first:)', reason: 'Pages of 20.' },
        { coordinate: 'VehicleFilter.status', reason: 'Use statuses.' },
        { coordinate: 'VehicleStatus.ACTIVE', reason: 'Now IN_SERVICE.' },
      ],
    });
  });

  it('reports a document that no longer parses as broken, and never throws', () => {
    const report = checkOperations(buildContractSchema(), [operation('Cut', '{ vehicles(first: 1) { totalCount ')]);
    expect(report.broken[0]?.broken[0]?.message).toMatch(/^Syntax Error/);
  });
});

describe('checkOperations with the deployed schema as a base: what validation cannot see', () => {
  const base = buildContractSchema();
  const CREATE_TRIP = operation('CreateTrip', 'mutation CreateTrip($input: CreateTripInput!) { createTrip(input: $input) { trip { id } } }');
  const TRANSITION = operation('Transition', 'mutation Transition($id: ID!, $to: TripStatus!) { transitionTrip(input: { id: $id, to: $to }) { trip { id status } } }');
  const PLATES = operation('Plates', '{ vehicles(first: 5) { edges { node { plate year } } } }');
  const OPERATIONS = [CREATE_TRIP, TRANSITION, PLATES, BY_STATUS];

  const brokenBy = (schema: GraphQLSchema) =>
    Object.fromEntries(checkOperations(schema, OPERATIONS, { base }).broken.map((result) => [result.operation.operationName, result.broken.map((problem) => problem.message)]));

  it('finds nothing when nothing changed, and nothing without a base', () => {
    expect(checkOperations(base, OPERATIONS, { base }).broken).toEqual([]);
    expect(checkOperations(schemaWith('input CreateTripInput {', 'input CreateTripInput {\n  customerRef: String!'), OPERATIONS).broken).toEqual([]);
  });

  it('a required input field added to an input type received through a variable', () => {
    expect(brokenBy(schemaWith('input CreateTripInput {', 'input CreateTripInput {\n  customerRef: String!'))).toEqual({
      CreateTrip: ['CreateTripInput.customerRef was added as a required field; this operation receives it through $input'],
    });
    // An optional one (or one with a default) is fine.
    expect(brokenBy(schemaWith('input CreateTripInput {', 'input CreateTripInput {\n  customerRef: String! = "none"\n  note: String'))).toEqual({});
  });

  it('an enum value removed from an enum a variable may carry', () => {
    expect(brokenBy(schemaWith(/enum TripStatus \{([^}]*)\n {2}CANCELLED\n/, 'enum TripStatus {$1\n'))).toEqual({
      Transition: ['TripStatus.CANCELLED was removed; this operation receives it through $to'],
    });
  });

  it('a selected field whose type widened (non-null to nullable, another scalar)', () => {
    expect(brokenBy(schemaWith(/\n {2}plate: String!\n/, '\n  plate: String\n'))).toEqual({
      Plates: ['Vehicle.plate changed type from String! to String; this operation selects it'],
      VehiclesByStatus: ['Vehicle.plate changed type from String! to String; this operation selects it'],
    });
    expect(brokenBy(schemaWith(/\n {2}year: Int!\n/, '\n  year: Float!\n'))).toEqual({
      Plates: ['Vehicle.year changed type from Int! to Float!; this operation selects it'],
    });
  });
});

describe('operationsOfManifest', () => {
  it('reads the partner fixture, whose every operation validates against the SDL (CI runs the same check)', () => {
    const file = path.resolve(__dirname, '../fixtures/partner-operations.json');
    const operations = operationsOfManifest(JSON.parse(readFileSync(file, 'utf8')), sha256Hex, 'partner-operations.json');
    expect(operations.length).toBeGreaterThanOrEqual(10);
    expect(checkOperations(buildContractSchema(), operations)).toMatchObject({ broken: [], deprecatedOnly: [] });
  });

  it('refuses what is not an Apollo manifest, and an id that is not the sha256 of its body', () => {
    expect(() => operationsOfManifest({ operations: [] }, sha256Hex, 'm.json')).toThrow(/not an Apollo persisted-query manifest/);
    const manifest = { format: 'apollo-persisted-query-manifest', version: 1, operations: [{ id: 'abc', name: 'X', type: 'query', body: '{ me { id } }' }] };
    expect(() => operationsOfManifest(manifest, sha256Hex, 'm.json')).toThrow('m.json: operations[0].id is not the sha256 of its body');
  });
});
