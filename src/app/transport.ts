import type { Ipv4Address } from '../wire/address.js';

/**
 * The small seams the application protocols (DNS, DHCP) are written against. They are injected,
 * so the protocol logic runs unchanged over the stack (src/app/stack-adapter.ts), over in-memory
 * fakes in tests, or over anything else that moves datagrams.
 */

export interface DatagramPeer {
  readonly address: Ipv4Address;
  readonly port: number;
}

/** An error reported by a socket, with Node's code (ECONNREFUSED from ICMP port-unreachable, …). */
export interface SocketError extends Error {
  code?: string;
  /** For ICMP-derived errors: the peer the failed datagram was sent to, when known. */
  peer?: DatagramPeer;
}

export interface DatagramSocket {
  /** The bound local port (an ephemeral one when `open` was not given a port). */
  readonly localPort: number;
  /** Fire-and-forget; a failure is reported through `onError`, never thrown. */
  send(data: Uint8Array, port: number, address: Ipv4Address): void;
  onMessage(listener: (data: Uint8Array, from: DatagramPeer) => void): void;
  onError(listener: (error: SocketError) => void): void;
  close(): void;
}

export interface DatagramOpenOptions {
  /** Local port; omitted → an ephemeral port. */
  readonly port?: number;
  /** Local address; omitted → any (0.0.0.0). */
  readonly address?: Ipv4Address;
  /** Allow sending to and receiving from broadcast addresses (SO_BROADCAST). */
  readonly broadcast?: boolean;
  /** Pin the socket to one interface (SO_BINDTODEVICE), as DHCP needs before it has an address. */
  readonly interfaceIndex?: number;
  /**
   * Connect the socket to this one peer (connect(2) on a UDP socket): only the peer's datagrams
   * arrive, sends go to it, and an ICMP error about it (port unreachable → ECONNREFUSED) reaches
   * `onError` — which an unconnected socket never hears, as on Linux. The resolver connects each
   * query's socket to the server it asks, as c-ares does.
   */
  readonly peer?: DatagramPeer;
}

export interface DatagramFactory {
  /** Opens and binds a socket. Throws an error with code EADDRINUSE when the port is taken. */
  open(options: DatagramOpenOptions): DatagramSocket;
}

/** Where a DHCP client writes the configuration it leased (one interface). */
export interface InterfaceConfigSink {
  setAddress(address: Ipv4Address, prefixLength: number): void;
  clearAddress(address: Ipv4Address): void;
  /** The default router, or undefined to remove it. */
  setRouter(router: Ipv4Address | undefined): void;
  setDnsServers(servers: readonly Ipv4Address[]): void;
}

/**
 * Resolves true once the link-layer next hop towards `address` is known — so a datagram queued
 * for it (waiting for ARP) has been handed to the NIC — or false after `timeoutMs`. Lets a
 * DHCPRELEASE leave before the caller takes the link down.
 */
export type NeighbourWait = (address: Ipv4Address, timeoutMs: number) => Promise<boolean>;

/** RFC 5227 §2.1 address probe on the client's interface: is anyone else using `address`? */
export type ArpProbe = (address: Ipv4Address) => Promise<'free' | 'conflict'>;
