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
 * A UDP source port towards one server, carrying one query at a time. Its deadline is the query's
 * timeout while a query waits on it, and its idle deadline while it waits in the pool; the ports'
 * one timer (QueryPorts) acts on it.
 */
export class QueryPort {
  used = 0;
  /** Clock time at which the query's onTimeout runs, or, when idle, the port closes. */
  deadline = 0;
  listener: PortListener | undefined;

  constructor(
    readonly socket: DatagramSocket,
    /** Which pool the port returns to (its server). */
    readonly poolKey: number,
    onStray: () => void,
  ) {
    socket.onMessage((data, from) => (this.listener ? this.listener.onMessage(data, from) : onStray()));
    socket.onError((error) => this.listener?.onError(error));
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
 * Reuse saves opening, binding, connecting and closing a socket per query; what it costs is a
 * port that stays open long enough to be found (docs/dns.md), hence a fresh port by default.
 */
export class QueryPorts {
  private readonly idle = new Map<number, QueryPort[]>();
  /**
   * Every open port, in use or idle, each with its deadline. One timer serves them all, armed for
   * the earliest: a port per query then costs no timer of its own, and the timer, which only
   * moves earlier when a deadline comes before it, fires about once per timeout on a busy resolver.
   */
  private readonly open = new Set<QueryPort>();
  private readonly timer: RearmableTimer;

  constructor(
    private readonly transport: DatagramFactory,
    private readonly clock: Clock,
    private readonly random: Random,
    private readonly queriesPerPort: number,
    private readonly idleMs: number,
    /** A datagram reached a port between its queries (a late or duplicate reply). */
    private readonly onStray: () => void,
  ) {
    this.timer = new RearmableTimer(clock, () => this.fireDeadlines());
  }

  /** A port towards `server` for one query; throws the transport's error when none can be opened. */
  acquire(server: DatagramPeer): QueryPort {
    const k = key(server);
    const pool = this.idle.get(k);
    if (pool && pool.length > 0) {
      const i = randomBelow(this.random, pool.length);
      const port = pool[i]!;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      return port;
    }
    const port = new QueryPort(this.openRandomPort(server), k, this.onStray);
    this.open.add(port);
    return port;
  }

  /** Hands the port to a query; `timeoutMs` later its listener hears onTimeout unless released. */
  attach(port: QueryPort, listener: PortListener, timeoutMs: number): void {
    port.listener = listener;
    port.used++;
    this.setDeadline(port, timeoutMs);
  }

  /**
   * The query is over. The port waits in the pool, closing after `idleMs` unless taken again —
   * or closes now if it has carried its queries or `healthy` is false (its socket reported an error).
   */
  release(port: QueryPort, healthy: boolean): void {
    if (!healthy || port.used >= this.queriesPerPort) {
      this.close(port);
      return;
    }
    port.listener = undefined;
    this.setDeadline(port, this.idleMs);
    let pool = this.idle.get(port.poolKey);
    if (!pool) this.idle.set(port.poolKey, (pool = []));
    pool.push(port);
  }

  /** Closes every idle port (in-flight ones close when their query ends). */
  closeIdle(): void {
    for (const pool of this.idle.values()) for (const port of pool) this.close(port);
    this.idle.clear();
  }

  get idleCount(): number {
    let n = 0;
    for (const pool of this.idle.values()) n += pool.length;
    return n;
  }

  private setDeadline(port: QueryPort, delayMs: number): void {
    port.deadline = this.clock.now() + delayMs;
    if (!this.timer.armed || port.deadline < this.timer.deadline) this.timer.arm(delayMs);
  }

  private close(port: QueryPort): void {
    port.listener = undefined;
    this.open.delete(port);
    port.socket.close();
    if (this.open.size === 0) this.timer.stop();
  }

  /** The timer: queries past their deadline time out, idle ports past theirs close. */
  private fireDeadlines(): void {
    const now = this.clock.now();
    const due: QueryPort[] = [];
    for (const port of this.open) if (port.deadline <= now) due.push(port);
    for (const port of due) {
      if (!this.open.has(port)) continue;
      if (port.listener) port.listener.onTimeout();
      else this.expire(port);
    }
    let next = Infinity;
    for (const port of this.open) next = Math.min(next, port.deadline);
    if (next < Infinity && !(this.timer.armed && this.timer.deadline <= next)) this.timer.arm(next - now);
  }

  private expire(port: QueryPort): void {
    const pool = this.idle.get(port.poolKey);
    const i = pool?.indexOf(port) ?? -1;
    if (i >= 0) pool!.splice(i, 1);
    this.close(port);
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

function key(server: DatagramPeer): number {
  return server.address * 0x1_0000 + server.port;
}
