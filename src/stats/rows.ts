/**
 * The rows of the stack's tables (`stack.tables()`), here so that any layer may report its own
 * (ARP its neighbours, IP its routes, a transport its sockets); src/stack/tables.ts prints them.
 */

export type NeighbourState = 'incomplete' | 'reachable' | 'static';

export interface ArpEntryRow {
  readonly interfaceIndex: number;
  readonly interfaceName: string;
  readonly address: string;
  readonly mac: string | undefined;
  readonly state: NeighbourState;
  /** Milliseconds until expiry (undefined for static / incomplete). */
  readonly expiresInMs: number | undefined;
  /** Milliseconds since the MAC was learned or last confirmed (reachable entries). */
  readonly ageMs: number | undefined;
  readonly queued: number;
}

export interface RouteRow {
  readonly destination: string;
  readonly prefixLength: number;
  readonly gateway: string | undefined;
  readonly interfaceIndex: number;
  readonly metric: number;
  readonly origin: 'connected' | 'static';
}

/**
 * A socket as `netstat -an` lists it. Transports add their sockets through
 * `stack.registerSocketTable`.
 */
export interface SocketRow {
  /** 'udp', 'tcp', … */
  readonly protocol: string;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress?: string;
  readonly remotePort?: number;
  /** TCP state, or e.g. 'bound' for UDP. */
  readonly state?: string;
  readonly receiveQueue?: number;
  readonly sendQueue?: number;
  /** Interface the socket is pinned to, if any. */
  readonly interface?: string;
  /**
   * The timer running on the socket, as the transport names it (TCP: 'retransmit', 'persist',
   * 'keepalive', 'time-wait', 'fin-wait-2', 'delayed-ack', or 'off'), like `netstat -o` / `ss -o`.
   */
  readonly timer?: string;
  /** Milliseconds until that timer fires. */
  readonly timerRemaining?: number;
}

export interface InterfaceRow {
  readonly index: number;
  readonly name: string;
  readonly mac: string;
  readonly mtu: number;
  readonly linkUp: boolean;
  readonly addresses: readonly string[];
  readonly rxFrames: number;
  readonly txFrames: number;
  readonly nicDrops: Readonly<Record<string, number>>;
}

export interface StackTables {
  readonly interfaces: readonly InterfaceRow[];
  readonly arp: readonly ArpEntryRow[];
  readonly routes: readonly RouteRow[];
  readonly sockets: readonly SocketRow[];
}

