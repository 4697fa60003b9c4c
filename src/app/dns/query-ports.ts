import type { Clock } from '../../time/clock.js';
import { randomBelow, type Random } from '../../time/random.js';
import { RearmableTimer } from '../../time/timer.js';
import type { DatagramFactory, DatagramPeer, DatagramSocket, SocketError } from '../transport.js';
import { DNS_DEFAULTS } from './options.js';

/** What the query using a port hears: replies, an ICMP error about the server, its timeout. */
export interface PortListener {
  onMessage(data: Uint8Array, from: DatagramPeer): void;
  onError(error: SocketError): void;
  onTimeout(): void;
}

/**
 * A UDP source port towards one server, carrying one query at a time. Its timer is the query's
 * timeout while a query waits on it, and its idle deadline while it waits in the pool.
 */
export class QueryPort {
  used = 0;
  private listener: PortListener | undefined;
  private readonly timer: RearmableTimer;

  constructor(
    readonly socket: DatagramSocket,
    clock: Clock,
    private readonly onIdleTimeout: (port: QueryPort) => void,
    onStray: () => void,
  ) {
    this.timer = new RearmableTimer(clock, () => (this.listener ? this.listener.onTimeout() : this.onIdleTimeout(this)));
    socket.onMessage((data, from) => (this.listener ? this.listener.onMessage(data, from) : onStray()));
    socket.onError((error) => this.listener?.onError(error));
  }

  /** Hands the port to a query; `timeoutMs` later its listener hears onTimeout unless released. */
  attach(listener: PortListener, timeoutMs: number): void {
    this.listener = listener;
    this.used++;
    this.timer.arm(timeoutMs);
  }

  /** The query is over; the port waits in the pool, closing after `idleMs` unless taken again. */
  detach(idleMs: number): void {
    this.listener = undefined;
    this.timer.arm(idleMs);
  }

  close(): void {
    this.listener = undefined;
    this.timer.stop();
    this.socket.close();
  }
}

/**
 * The resolver's source ports (RFC 5452 §9.2). Each is a random port in the dynamic range,
 * connected to one server. With `queriesPerPort` 1 (the default) every query and every retry
 * gets a fresh one. With more, a port goes back to a pool after its query and is taken again —
 * at random among the idle ones — up to that many queries or until idle for `idleMs`, as c-ares
 * reuses its socket up to `udp_max_queries`. Concurrent queries never share a port ("use multiple
 * different source ports simultaneously in case of multiple outstanding queries", §9.2), so a
 * reply is matched by the port it arrives on, then by id and question, as with fresh ports.
 * Reuse saves opening, binding, connecting and closing a socket per query; an off-path spoofer
 * still has to guess the port, which it never sees.
 */
export class QueryPorts {
  private readonly idle = new Map<number, QueryPort[]>();

  constructor(
    private readonly transport: DatagramFactory,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly queriesPerPort: number,
    private readonly idleMs: number,
    /** A datagram reached a port between its queries (a late or duplicate reply). */
    private readonly onStray: () => void,
  ) {}

  /** A port towards `server` for one query; throws the transport's error when none can be opened. */
  acquire(server: DatagramPeer): QueryPort {
    const pool = this.idle.get(key(server));
    if (pool && pool.length > 0) {
      const i = randomBelow(this.random, pool.length);
      const port = pool[i]!;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      return port;
    }
    return new QueryPort(this.openRandomPort(server), this.clock, (port) => this.expire(server, port), this.onStray);
  }

  /** The query is over. `healthy` false (the socket reported an error) closes the port. */
  release(server: DatagramPeer, port: QueryPort, healthy: boolean): void {
    if (!healthy || port.used >= this.queriesPerPort) {
      port.close();
      return;
    }
    port.detach(this.idleMs);
    const k = key(server);
    let pool = this.idle.get(k);
    if (!pool) this.idle.set(k, (pool = []));
    pool.push(port);
  }

  /** Closes every idle port (in-flight ones close when their query ends). */
  closeIdle(): void {
    for (const pool of this.idle.values()) for (const port of pool) port.close();
    this.idle.clear();
  }

  get idleCount(): number {
    let n = 0;
    for (const pool of this.idle.values()) n += pool.length;
    return n;
  }

  private expire(server: DatagramPeer, port: QueryPort): void {
    const pool = this.idle.get(key(server));
    const i = pool?.indexOf(port) ?? -1;
    if (i >= 0) pool!.splice(i, 1);
    port.close();
  }

  private openRandomPort(server: DatagramPeer): DatagramSocket {
    const { sourcePortMin, sourcePortMax, sourcePortTries } = DNS_DEFAULTS;
    let lastError: unknown;
    for (let i = 0; i < sourcePortTries; i++) {
      const port = sourcePortMin + randomBelow(this.random, sourcePortMax - sourcePortMin + 1);
      try {
        return this.transport.open({ port, peer: server });
      } catch (error) {
        if ((error as SocketError).code !== 'EADDRINUSE') throw error;
        lastError = error;
      }
    }
    throw lastError;
  }
}

/** address·2¹⁶ + port: a number (below 2⁴⁸), so finding a server's pool allocates nothing. */
function key(server: DatagramPeer): number {
  return server.address * 0x1_0000 + server.port;
}
