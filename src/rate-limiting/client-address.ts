import ipaddr from 'ipaddr.js';

/**
 * The address a per-client limit counts against. An IPv6 client usually holds a whole /64 (one
 * household, one VM), so each of its addresses counting apart would multiply every per-address
 * limit by 2^64: IPv6 addresses count by their /64. IPv4 (also written IPv4-mapped, ::ffff:a.b.c.d)
 * counts by the address.
 */
export function rateLimitAddress(clientIp: string): string {
  if (!ipaddr.isValid(clientIp)) return clientIp;
  const address = ipaddr.process(clientIp);
  if (address.kind() === 'ipv4') return address.toString();
  const prefix = (address as ipaddr.IPv6).toNormalizedString().split(':').slice(0, 4).join(':');
  return `${prefix}::/64`;
}
