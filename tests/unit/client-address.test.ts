import { rateLimitAddress } from '../../src/rate-limiting/client-address';

describe('the address per-client limits count against', () => {
  it('is the IPv4 address itself, however it is written', () => {
    expect(rateLimitAddress('203.0.113.7')).toBe('203.0.113.7');
    expect(rateLimitAddress('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(rateLimitAddress('203.0.113.8')).not.toBe(rateLimitAddress('203.0.113.7'));
  });

  it('is the /64 for IPv6: every address of one network counts together, other networks apart', () => {
    const network = rateLimitAddress('2001:db8:1:2::1');
    expect(network).toBe('2001:db8:1:2::/64');
    expect(rateLimitAddress('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe(network);
    expect(rateLimitAddress('2001:0db8:0001:0002:0000:0000:0000:0abc')).toBe(network);
    expect(rateLimitAddress('2001:db8:1:3::1')).not.toBe(network);
    expect(rateLimitAddress('::1')).toBe('0:0:0:0::/64');
  });

  it('passes anything else through unchanged', () => {
    expect(rateLimitAddress('unknown')).toBe('unknown');
  });
});
