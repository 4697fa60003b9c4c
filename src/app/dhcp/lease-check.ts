import { IPV4_BROADCAST, isMulticastIpv4, prefixMask, type Ipv4Address } from '../../wire/address.js';
import { maskToPrefixLength, type DhcpMessage } from './wire.js';

/**
 * What a DHCP client checks before it takes a lease (RFC 2131 §4.4.1: the client may refuse an
 * offer, and declines an ACK whose address it cannot use). A server — misconfigured or hostile —
 * can hand out an address no host may hold: refused, counted, and the client backs off
 * (client.ts) instead of configuring it or asking again at once.
 */

export type LeaseRefusal =
  | 'zero-lease'
  | 'unusable-address'
  | 'address-is-network'
  | 'address-is-broadcast'
  | 'address-is-server'
  | 'address-is-router'
  | 'unusable-server'
  | 'unusable-router';

/**
 * A unicast address a host or router may hold: not 0/8 ("this network"), 127/8 (loopback),
 * 224/4 (multicast), 240/4 (class E) or 255.255.255.255 (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7).
 */
export function isUsableUnicast(address: Ipv4Address): boolean {
  const first = address >>> 24;
  return first !== 0 && first !== 127 && !isMulticastIpv4(address) && first < 240 && address !== IPV4_BROADCAST;
}

/** The mask a lease uses: the server's (option 1), or the address's class when it sends none. */
export function leaseMask(message: DhcpMessage): Ipv4Address {
  const mask = message.options.subnetMask;
  return mask !== undefined && maskToPrefixLength(mask) !== undefined ? mask : classfulMask(message.yiaddr);
}

/** RFC 791 classes, for a server that sends no subnet mask (RFC 2131 leaves the client to cope). */
function classfulMask(address: Ipv4Address): Ipv4Address {
  if (address >>> 31 === 0) return prefixMask(8);
  if (address >>> 30 === 0b10) return prefixMask(16);
  return prefixMask(24);
}

/** Why the lease in an OFFER or ACK cannot be used, or undefined if it can. */
export function leaseRefusal(message: DhcpMessage): LeaseRefusal | undefined {
  const o = message.options;
  const address = message.yiaddr;
  if (o.leaseTime === 0) return 'zero-lease';
  if (!isUsableUnicast(address)) return 'unusable-address';
  const mask = leaseMask(message);
  const prefixLength = maskToPrefixLength(mask)!;
  // RFC 3021: a /31 has no network or broadcast address; a /32 is the host alone.
  if (prefixLength < 31) {
    const network = (address & mask) >>> 0;
    const broadcast = (network | ~mask) >>> 0;
    if (address === network) return 'address-is-network';
    if (address === broadcast) return 'address-is-broadcast';
  }
  const server = o.serverIdentifier;
  if (server !== undefined) {
    if (!isUsableUnicast(server)) return 'unusable-server';
    if (server === address) return 'address-is-server';
  }
  for (const router of o.routers ?? []) {
    if (router === address) return 'address-is-router';
    if (!isUsableUnicast(router)) return 'unusable-router';
    if (prefixLength < 31 && ((router & ~mask) >>> 0 === 0 || (router | mask) >>> 0 === IPV4_BROADCAST) && ((router ^ address) & mask) >>> 0 === 0) {
      return 'unusable-router';
    }
  }
  return undefined;
}
