import ipaddr from 'ipaddr.js';

/*
 * Which addresses the server may call on a tenant's behalf. Only ordinary public unicast: what
 * ipaddr.js names `unicast` after unwrapping an IPv4-mapped IPv6 address (::ffff:127.0.0.1 is
 * 127.0.0.1). Everything it names otherwise is refused: loopback, private (RFC 1918), carrier-grade
 * NAT, link-local (169.254.169.254, the cloud metadata service, is one), unique-local, multicast,
 * unspecified, broadcast, reserved and documentation ranges, and the IPv6 ranges that embed an
 * IPv4 address (NAT64, 6to4, Teredo), which could otherwise smuggle a private one through.
 * An allow-list of one name rather than a deny-list: a range ipaddr.js learns later is refused
 * until someone decides otherwise.
 */

export type AddressVerdict = { allowed: true } | { allowed: false; range: string };

/** The verdict for one literal address; anything that does not parse is refused. */
export function checkAddress(address: string): AddressVerdict {
  if (!ipaddr.isValid(address)) return { allowed: false, range: 'invalid' };
  const parsed = ipaddr.process(address);
  const range = parsed.range();
  if (range !== 'unicast') return { allowed: false, range };
  // ::/96 (the deprecated IPv4-compatible form, ::7f00:1 = 127.0.0.1) is "unicast" to ipaddr.js,
  // yet carries an IPv4 address a host may route; nothing public lives there.
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).parts.slice(0, 6).every((part) => part === 0)) return { allowed: false, range: 'ipv4Compatible' };
  return { allowed: true };
}

/** A URL's host as an IP literal (brackets of IPv6 removed), or null for a name. */
export function ipLiteralOf(hostname: string): string | null {
  const bare = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(bare) ? bare : null;
}
