import type { Clock } from '../../time/clock.js';
import { randomBelow, type Random } from '../../time/random.js';
import { RearmableTimer } from '../../time/timer.js';
import type { DatagramFactory, DatagramPeer, DatagramSocket, SocketError } from '../transport.js';
import { DNS_DEFAULTS } from './options.js';

/** A query on a port: what it hears (replies, an ICMP error about the server, its timeout). */
export interface PortListener {
  /** Its DNS id, unique among the queries outstanding on its port. */
  readonly id: number;
  /** Clock time of its timeout; set by QueryPorts.attach. */
  deadline: number;
  onMessage(data: Uint8Array, from: DatagramPeer): void;
  onError(error: SocketError): void;
  onTimeout(): void;
}

/** What QueryPorts does with a datagram no query takes. */
export interface StrayHandlers {
  /** It reached a port between its queries (a late or duplicate reply). */
  between(): void;
  /** It reached a port shared by several queries and carries none of their ids. */
  unmatched(data: Uint8Array, from: DatagramPeer, server: DatagramPeer): void;
}

/**
 * A UDP source port towards one server, carrying its queries (one at a time unless
 * `concurrentPerPort` lets several share it). Its deadline is its earliest query's timeout while
 * queries wait on it, and its idle deadline while it waits in the pool; the ports' one timer
 * (QueryPorts) acts on it.
 */
export class QueryPort {
  used = 0;
  /** Clock time at which its earliest query may time out, or, when idle, the port closes. */
  deadline = 0;
  /** No further query may take it: it carried `queriesPerPort`, or its socket reported an error. */
  retired = false;
  /** The queries outstanding on it, by id. */
  readonly queries = new Map<number, PortListener>();

  constructor(
    readonly socket: DatagramSocket,
    readonly server: DatagramPeer,
    /** Which pool the port returns to (its server). */
    readonly poolKey: number,
    stray: StrayHandlers,
  ) {
    socket.onMessage((data, from) => {
      const queries = this.queries;
      if (queries.size === 0) return stray.between();
      // One query: it judges every datagram (source, id, question), as on a port of its own.
      if (queries.size === 1) {
        for (const query of queries.values()) query.onMessage(data, from);
        return;
      }
      // Shared: the id picks the query, which still checks source and question (RFC 5452 §9.1).
      const query = data.length >= 2 ? queries.get((data[0]! << 8) | data[1]!) : undefined;
      if (query) query.onMessage(data, from);
      else stray.unmatched(data, from, server);
    });
    // An ICMP error concerns the server, so every query on the port hears it.
    socket.onError((error) => {
      for (const query of [...this.queries.values()]) query.onError(error);
    });
  }
}

/**
 * The resolver's source ports (RFC 5452 §9.2). Each is a random port in the dynamic range,
 * connected to one server. With `queriesPerPort` 1 (the default) every query and every retry
 * gets a fresh one. With more, a port goes back to a pool after its query and is taken again —
 * at random among the idle ones — up to that many queries or until idle for `idleMs`, as c-ares
 * reuses its socket up to `udp_max_queries`. With `concurrentPerPort` 1 (the default) concurrent
 * queries never share a port ("use multiple different source ports simultaneously in case of
 * multiple outstanding queries", §9.2), so a reply is matched by the port it arrives on, then by
 * id and question. With more, up to that many queries to one server are outstanding on one port
 * at once, as c-ares puts every concurrent query on its one socket: a new query joins a port that
 * has room before an idle port is taken or a new one opened, its id is unique among the port's
 * outstanding ones, and a reply goes to the query with its id, which accepts it only if its
 * question is the query's too.
 * Reuse saves opening, binding, connecting and closing a socket per query, sharing a socket's
 * events per reply; what they cost is a port that stays open long enough to be found, and, shared,
 * a port whose queries are guarded by their ids alone once it is found (docs/dns.md), hence a
 * fresh port per query by default.
 */
export class QueryPorts {
  private readonly idle = new Map<number, QueryPort[]>();
  /** Ports with queries outstanding and room for more, by server (only with concurrentPerPort > 1). */
  private readonly sharing = new Map<number, Set<QueryPort>>();
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
    private readonly concurrentPerPort: number,
    private readonly idleMs: number,
    private readonly stray: StrayHandlers,
  ) {
    this.timer = new RearmableTimer(clock, () => this.fireDeadlines());
  }

  /**
   * A port towards `server` for one query: one with room among those in use, else an idle one,
   * else a new one. Throws the transport's error when none can be opened. Attach the query
   * before the next acquire.
   */
  acquire(server: DatagramPeer): QueryPort {
    const k = key(server);
    if (this.concurrentPerPort > 1) {
      const busy = this.sharing.get(k);
      if (busy) for (const port of busy) return port;
    }
    const pool = this.idle.get(k);
    if (pool && pool.length > 0) {
      const i = randomBelow(this.random, pool.length);
      const port = pool[i]!;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      return port;
    }
    const port = new QueryPort(this.openRandomPort(server), server, k, this.stray);
    this.open.add(port);
    return port;
  }

  /**
   * Hands the port to a query (its id not among the port's outstanding ones); `timeoutMs` later
   * the query hears onTimeout unless released.
   */
  attach(port: QueryPort, query: PortListener, timeoutMs: number): void {
    query.deadline = this.clock.now() + timeoutMs;
    if (port.queries.size === 0 || query.deadline < port.deadline) this.setDeadline(port, timeoutMs);
    port.queries.set(query.id, query);
    if (++port.used >= this.queriesPerPort) port.retired = true;
    this.updateSharing(port);
  }

  /**
   * The query is over. When it was the port's last, the port waits in the pool, closing after
   * `idleMs` unless taken again — or closes now if it has carried its queries or `healthy` is
   * false (its socket reported an error; a shared port then takes no new query and closes when
   * its last one ends).
   */
  release(port: QueryPort, query: PortListener, healthy: boolean): void {
    if (port.queries.get(query.id) === query) port.queries.delete(query.id);
    if (!healthy) port.retired = true;
    this.updateSharing(port);
    if (port.queries.size > 0) return;
    if (port.retired) {
      this.close(port);
      return;
    }
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

  /** Keeps `sharing` to the ports that are in use, open to new queries and not full. */
  private updateSharing(port: QueryPort): void {
    if (this.concurrentPerPort === 1) return;
    const n = port.queries.size;
    let busy = this.sharing.get(port.poolKey);
    if (n > 0 && n < this.concurrentPerPort && !port.retired) {
      if (!busy) this.sharing.set(port.poolKey, (busy = new Set()));
      busy.add(port);
    } else busy?.delete(port);
  }

  private setDeadline(port: QueryPort, delayMs: number): void {
    port.deadline = this.clock.now() + delayMs;
    if (!this.timer.armed || port.deadline < this.timer.deadline) this.timer.arm(delayMs);
  }

  private close(port: QueryPort): void {
    port.retired = true;
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
      if (port.queries.size === 0) {
        this.expire(port);
        continue;
      }
      // Each late query releases itself; the others on a shared port keep waiting.
      const late: PortListener[] = [];
      for (const query of port.queries.values()) if (query.deadline <= now) late.push(query);
      for (const query of late) if (port.queries.get(query.id) === query) query.onTimeout();
      if (port.queries.size > 0) {
        let earliest = Infinity;
        for (const query of port.queries.values()) earliest = Math.min(earliest, query.deadline);
        port.deadline = earliest;
      }
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
