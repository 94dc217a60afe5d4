import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { scramSha256Verifier, tenantConnectionConfig, tenantRolePassword } from '../../src/tenancy/tenant-credentials';

/** RFC 5802's Hi(), written out with HMAC rather than calling pbkdf2. */
function hi(password: string, salt: Buffer, iterations: number): Buffer {
  let u = createHmac('sha256', password).update(Buffer.concat([salt, Buffer.from([0, 0, 0, 1])])).digest();
  const result = Buffer.from(u);
  for (let i = 1; i < iterations; i += 1) {
    u = createHmac('sha256', password).update(u).digest();
    for (let j = 0; j < result.length; j += 1) result[j] = (result[j] as number) ^ (u[j] as number);
  }
  return result;
}

function independentVerifier(password: string, salt: Buffer, iterations: number): string {
  const salted = hi(password, salt, iterations);
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

const VERIFIER_FORMAT = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

function parseVerifier(verifier: string) {
  const match = VERIFIER_FORMAT.exec(verifier);
  if (!match) throw new Error(`not a SCRAM-SHA-256 verifier: ${verifier}`);
  const [, iterations, salt, storedKey, serverKey] = match as unknown as [string, string, string, string, string];
  return {
    iterations: Number(iterations),
    salt: Buffer.from(salt, 'base64'),
    storedKey: Buffer.from(storedKey, 'base64'),
    serverKey: Buffer.from(serverKey, 'base64'),
  };
}

describe('scramSha256Verifier', () => {
  it('has PostgreSQL\'s format: SCRAM-SHA-256$4096:<salt>$<stored key>:<server key>', () => {
    const parsed = parseVerifier(scramSha256Verifier('a password'));
    expect(parsed.iterations).toBe(4096);
    expect(parsed.salt).toHaveLength(16);
    expect(parsed.storedKey).toHaveLength(32);
    expect(parsed.serverKey).toHaveLength(32);
  });

  it('uses a fresh random salt by default', () => {
    const a = parseVerifier(scramSha256Verifier('same password'));
    const b = parseVerifier(scramSha256Verifier('same password'));
    expect(a.salt.equals(b.salt)).toBe(false);
    expect(a.storedKey.equals(b.storedKey)).toBe(false);
  });

  it('is deterministic for a fixed salt and matches an independent computation', () => {
    const salt = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const verifier = scramSha256Verifier('correct horse battery staple', salt);
    expect(scramSha256Verifier('correct horse battery staple', salt)).toBe(verifier);
    expect(verifier).toBe(independentVerifier('correct horse battery staple', salt, 4096));
    expect(scramSha256Verifier('correct horse battery stapler', salt)).not.toBe(verifier);
    expect(scramSha256Verifier('x', salt, 10)).toBe(independentVerifier('x', salt, 10));
    expect(scramSha256Verifier('x', salt, 10)).toMatch(/^SCRAM-SHA-256\$10:/);
  });

  it('authenticates the RFC 7677 example exchange (user "user", password "pencil")', () => {
    const salt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const { storedKey, serverKey } = parseVerifier(scramSha256Verifier('pencil', salt, 4096));
    const clientFirstBare = 'n=user,r=rOprNGfwEbeRWgbNEkqO';
    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
    const clientFinalWithoutProof = 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0';
    const authMessage = `${clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
    const clientProof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');

    // What the server does with the stored verifier: recover ClientKey from the proof, hash it.
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const clientKey = Buffer.from(clientProof.map((byte, index) => byte ^ (clientSignature[index] as number)));
    expect(timingSafeEqual(createHash('sha256').update(clientKey).digest(), storedKey)).toBe(true);
    // And the server's own proof, which the client checks.
    expect(createHmac('sha256', serverKey).update(authMessage).digest('base64')).toBe('6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=');
  });
});

describe('tenantRolePassword', () => {
  it('is deterministic for a secret and role', () => {
    expect(tenantRolePassword('secret-1', 'fg_0a1b2c3d_acme')).toBe(tenantRolePassword('secret-1', 'fg_0a1b2c3d_acme'));
  });

  it('differs per role and per secret', () => {
    const passwords = new Set([
      tenantRolePassword('secret-1', 'fg_0a1b2c3d_acme'),
      tenantRolePassword('secret-1', 'fg_0a1b2c3d_acme_co'),
      tenantRolePassword('secret-1', 'fg_ffffffff_acme'),
      tenantRolePassword('secret-2', 'fg_0a1b2c3d_acme'),
    ]);
    expect(passwords.size).toBe(4);
  });

  it('is the HMAC-SHA256 of the role name, base64url: 43 characters without padding', () => {
    const password = tenantRolePassword('secret-1', 'fg_0a1b2c3d_acme');
    expect(password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(password).toBe(createHmac('sha256', 'secret-1').update('tenant-role:fg_0a1b2c3d_acme').digest('base64url'));
    expect(password).not.toContain('secret-1');
  });
});

describe('tenantConnectionConfig', () => {
  it('keeps the platform server and database and logs in as the tenant role', () => {
    const config = tenantConnectionConfig('postgresql://postgres:pw@db.example:6543/fleet', 'fg_0a1b2c3d_acme', 'secret-1');
    expect(config).toMatchObject({
      host: 'db.example',
      port: 6543,
      database: 'fleet',
      user: 'fg_0a1b2c3d_acme',
      password: tenantRolePassword('secret-1', 'fg_0a1b2c3d_acme'),
    });
    expect(config.password).not.toBe('pw');
  });
});
