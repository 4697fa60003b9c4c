import { IPV4_BROADCAST, isMulticastIpv4, type Ipv4Address } from '../wire/address.js';

/**
 * Martian filtering: addresses that can never be genuine on a datagram from the wire (RFC 1122
 * §3.2.1.3, RFC 1812 §5.3.7). A host answers what it receives, so a datagram "from" one of its own
 * addresses or from 127/8 would be answered to itself — a UDP echo to our echo port, or a LAND SYN
 * (RFC 4987 §4.1 lists it) — and a datagram from a broadcast or multicast source would make
 * every receiver answer at once. Each class is its own drop reason, like Linux's "martian source".
 *
 * Only datagrams that arrived on an interface are checked; loopback delivery never passes here.
 */

/** The receiving interface, as far as the filter needs it. */
export interface ReceivingInterface {
  /** The directed broadcast of one of its subnets. */
  isDirectedBroadcast(address: Ipv4Address): boolean;
}

export type MartianSource =
  | 'martian-source-own'
  | 'martian-source-loopback'
  | 'martian-source-this-network'
  | 'martian-source-multicast'
  | 'martian-source-broadcast'
  | 'martian-source-class-e';

export type MartianDestination = 'martian-destination-loopback' | 'martian-destination-this-network';

/**
 * Why `source` cannot be a sender on the wire, or undefined if it may be. 0.0.0.0 is allowed only
 * towards the limited broadcast: a host without an address yet (DHCP's DISCOVER and REQUEST, RFC
 * 1122 §3.2.1.3 (a), RFC 2131 §4.1), as Linux accepts it. `isOwnAddress`: one of our addresses on
 * any interface (weak host model).
 */
export function martianSource(
  source: Ipv4Address,
  destination: Ipv4Address,
  iface: ReceivingInterface,
  isOwnAddress: (address: Ipv4Address) => boolean,
): MartianSource | undefined {
  const first = source >>> 24;
  // (a), (b): {0, 0} is "this host" only while it learns its address; {0, host} never leaves a host.
  if (first === 0) return source === 0 && destination === IPV4_BROADCAST ? undefined : 'martian-source-this-network';
  // (g): 127/8 MUST NOT appear outside a host.
  if (first === 127) return 'martian-source-loopback';
  // §3.2.1.3: a broadcast or multicast source MUST be discarded silently.
  if (source === IPV4_BROADCAST || iface.isDirectedBroadcast(source)) return 'martian-source-broadcast';
  if (isMulticastIpv4(source)) return 'martian-source-multicast';
  // RFC 1812 §5.3.7: class E (240/4) is reserved; no host sends from it.
  if (first >= 240) return 'martian-source-class-e';
  if (isOwnAddress(source)) return 'martian-source-own';
  return undefined;
}

/** Destinations that are ours by address but must never arrive from a wire. */
export function martianDestination(destination: Ipv4Address): MartianDestination | undefined {
  const first = destination >>> 24;
  // RFC 1122 §3.2.1.3 (g): a loopback destination seen on a wire MUST be discarded.
  if (first === 127) return 'martian-destination-loopback';
  // RFC 1812 §5.3.7: {0, …} is not a destination (4.2BSD's old broadcast).
  if (first === 0) return 'martian-destination-this-network';
  return undefined;
}
