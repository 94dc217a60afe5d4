import { AuditMetadataError, auditRow, userActor } from '../../src/audit/audit-entry';

describe('audit entries', () => {
  const actor = userActor('0190a000-0000-7000-8000-000000000001', 'req-1');
  const entry = (metadata: Record<string, never> | object) => ({ action: 'probe.made', targetType: 'Probe', targetId: 'x', metadata: metadata as never });

  it.each(['secret', 'password', 'newPassword', 'accessToken', 'refresh_token', 'apiKey', 'api_key', 'code', 'invitationCode', 'signature', 'privateKey', 'credentials', 'passwordHash'])(
    'refuses metadata with a field named %s, also nested',
    (name) => {
      expect(() => auditRow(actor, entry({ [name]: 'x' }))).toThrow(AuditMetadataError);
      expect(() => auditRow(actor, entry({ outer: [{ [name]: 'x' }] }))).toThrow(AuditMetadataError);
    },
  );

  it('keeps ordinary summaries, and names the request it was written in', () => {
    const row = auditRow(actor, entry({ fields: ['status'], from: 'DRAFT', to: 'PLANNED', currencyCode: 'EUR', keysRevoked: 2 }));
    expect(row).toMatchObject({ actorKind: 'USER', requestId: 'req-1', metadata: { fields: ['status'], currencyCode: 'EUR' } });
    expect(auditRow({ actorKind: 'SYSTEM', actorId: null, requestId: null }, entry({})).requestId).toBeNull();
  });

  it('refuses metadata over 4 KiB', () => {
    expect(() => auditRow(actor, entry({ note: 'x'.repeat(5000) }))).toThrow(AuditMetadataError);
  });
});
