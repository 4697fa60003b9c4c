import type { Ipv4Address } from '../wire/address.js';

/**
 * The seam between IPv4 and the transports (UDP, TCP, ICMP echo users). Data flows up through
 * TransportProtocol.receive and down through IpSender.send; neither side imports the other's
 * implementation.
 */

/** What the IP layer tells a transport about a received datagram. */
export interface IpReceiveInfo {
  readonly source: Ipv4Address;
  readonly destination: Ipv4Address;
  readonly protocol: number;
  readonly ttl: number;
  readonly tos: number;
  /** Index of the interface it arrived on. */
  readonly interfaceIndex: number;
  /** Sent to a broadcast (limited or directed) or multicast address. */
  readonly broadcastOrMulticast: boolean;
  /** The IP header plus the first bytes of the datagram: what an ICMP error must quote (RFC 792). */
  readonly quote: Uint8Array;
}

export type IcmpErrorKind =
  | 'port-unreachable'
  | 'protocol-unreachable'
  | 'host-unreachable'
  | 'net-unreachable'
  | 'fragmentation-needed'
  | 'time-exceeded'
  | 'parameter-problem'
  | 'other-unreachable';

/** An ICMP error about a datagram we sent, routed to the transport that sent it. */
export interface IcmpErrorInfo {
  readonly kind: IcmpErrorKind;
  readonly type: number;
  readonly code: number;
  /** Who reported it. */
  readonly reporter: Ipv4Address;
  /** Our original datagram's addresses and protocol. */
  readonly originalSource: Ipv4Address;
  readonly originalDestination: Ipv4Address;
  readonly protocol: number;
  /** At least the first 8 bytes of the original transport header (ports live there). */
  readonly originalTransportHeader: Uint8Array;
  /** For fragmentation-needed: the next-hop MTU (RFC 1191), 0 if not given. */
  readonly nextHopMtu: number;
}

export interface TransportProtocol {
  /** IP protocol number (1 ICMP, 6 TCP, 17 UDP). */
  readonly protocol: number;
  /**
   * A datagram for us. `payload` is the transport header and data (after reassembly), read-only.
   * Return 'unreachable' when no socket wants it, so IP can answer port-unreachable.
   */
  receive(info: IpReceiveInfo, payload: Uint8Array): 'delivered' | 'unreachable' | 'dropped';
  /** An ICMP error that quotes one of our datagrams of this protocol. */
  icmpError?(error: IcmpErrorInfo): void;
  /**
   * ARP gave up on `nextHop` (no reply to its requests): what is sent through it cannot arrive. As
   * Linux does, a connection still opening fails with EHOSTUNREACH rather than waiting out its SYN
   * retransmissions.
   */
  neighbourUnreachable?(nextHop: Ipv4Address): void;
}

export interface IpSendOptions {
  readonly destination: Ipv4Address;
  /** Source address; chosen by route lookup when omitted. 0.0.0.0 is allowed (DHCP). */
  readonly source?: Ipv4Address;
  readonly protocol: number;
  readonly ttl?: number;
  readonly tos?: number;
  readonly dontFragment?: boolean;
  /** Send out of this interface regardless of routes (DHCP, broadcast to 255.255.255.255). */
  readonly interfaceIndex?: number;
}

/**
 * Result of a send. 'queued' means waiting for ARP resolution; the packet goes out (or is dropped
 * and counted) later. Errors use Node's codes so the socket layer can pass them straight up.
 */
export type IpSendResult =
  | { readonly ok: true; readonly status: 'sent' | 'queued' }
  | { readonly ok: false; readonly code: 'EHOSTUNREACH' | 'ENETUNREACH' | 'EMSGSIZE' | 'ENOBUFS' | 'EADDRNOTAVAIL' | 'ENETDOWN' };

export interface RouteChoice {
  readonly interfaceIndex: number;
  /** Local address to use as source. */
  readonly source: Ipv4Address;
  /** Next hop: the destination itself when on-link, else the gateway. */
  readonly nextHop: Ipv4Address;
  /** IP MTU of the outgoing interface. */
  readonly mtu: number;
  /** The interface NIC's receive buffer, when it declares one (NicCapabilities.receiveBuffer). */
  readonly receiveBuffer?: { readonly bytes: number; readonly frameOverhead: number };
}

export interface IpSender {
  /** Send `payload` (a complete transport segment, checksum already filled in) as an IPv4 datagram. */
  send(options: IpSendOptions, payload: Uint8Array): IpSendResult;
  /**
   * Route lookup without sending: which interface, source address and MTU a destination gets.
   * With `interfaceIndex`, the lookup is confined to that interface (a socket pinned to it, e.g.
   * DHCP before it has an address: the source is then 0.0.0.0).
   */
  route(destination: Ipv4Address, interfaceIndex?: number): RouteChoice | undefined;
  /** Is `address` one of ours (on any interface)? */
  isLocalAddress(address: Ipv4Address): boolean;
}
