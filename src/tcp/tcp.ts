import type { Ipv4Address } from '../wire/address.js';
import { formatIpv4 } from '../wire/address.js';
import type { Clock } from '../time/clock.js';
import type { Random } from '../time/random.js';
import { randomBelow } from '../time/random.js';
import type { IcmpErrorInfo, IpReceiveInfo, IpSendResult, IpSender, RouteChoice, TransportProtocol } from '../ip/types.js';
import { TCP_PROTOCOL, TcpFlag, TcpPacket, TcpParseError, TcpRepr } from '../wire/tcp.js';
import { ETHERNET_HEADER_LENGTH } from '../wire/ethernet.js';
import {
  TcpConnection,
  connectionKey,
  windowScaleFor,
  type ConnectionHost,
  type TcpConnectionEvents,
  type TcpConnectionInfo,
  type TcpErrorCode,
  type TcpState,
  type TcpTimerName,
} from './connection.js';
import { TupleHasher } from './isn.js';
import { resolveTcpOptions, type TcpOptions } from './options.js';
import { seqAdd, seqGt } from './seq.js';
import { createTcpStats, type TcpStats } from './stats.js';
import { resetReplyTo } from './reset.js';
import { RateLimit } from './rate-limit.js';
import { IPV4_TCP_HEADERS, TIMESTAMP_OPTION_LENGTH, localMssFor } from './mss.js';
import { timestampClock } from './rtt.js';
import { countDrop } from '../stats/counters.js';
import type { SocketRow } from '../stats/rows.js';
import { Containment } from '../stats/containment.js';
import { NO_TRACE, type TraceHook } from '../stats/trace.js';
import { describeSegmentIn, describeSegmentOut, describeSocketOut } from './trace.js';

export interface TcpConnectOptions {
  readonly remoteAddress: Ipv4Address;
  readonly remotePort: number;
  /** Source address; chosen by route lookup when omitted. */
  readonly localAddress?: Ipv4Address;
  /** 0 or omitted: an ephemeral port (RFC 6056). */
  readonly localPort?: number;
  /** Force the initial sequence number (tests of wraparound); RFC 6528 generation otherwise. */
  readonly initialSequenceNumber?: number;
}

export interface TcpListenOptions {
  /** 0 or omitted: an ephemeral port. */
  readonly port?: number;
  /** 0 or omitted: every local address. */
  readonly address?: Ipv4Address;
  /** Accept-queue length (listen(2) backlog). */
  readonly backlog?: number;
}

export type TcpOpenError = 'EADDRINUSE' | 'EHOSTUNREACH' | 'EADDRNOTAVAIL';

/** One TCP socket with its state, queues, timer and estimators (`rows()` is its `netstat` view). */
export interface TcpSocketRow {
  readonly state: TcpState;
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Bytes queued and not yet acknowledged by the peer (Send-Q). */
  readonly sendQueue: number;
  /** Bytes received and not yet read by the application (Recv-Q); for LISTEN the accept-queue length. */
  readonly receiveQueue: number;
  readonly timer: TcpTimerName;
  /** Milliseconds until that timer fires. */
  readonly timerRemaining: number;
  readonly retransmits: number;
  readonly rto: number;
  readonly srtt: number | undefined;
  readonly cwnd: number;
  /** A connection's internals as `ss -ti` shows them (listeners have none). */
  readonly info?: TcpConnectionInfo;
}

/** RFC 4987 §3.6 SYN cookies: the MSS values a cookie can carry (Linux's table). */
const COOKIE_MSS = [536, 1300, 1440, 1460] as const;
/** A cookie's time counter ticks every 64 s; cookies older than one tick are refused. */
const COOKIE_PERIOD = 64_000;
/** Low bits of a cookie SYN-ACK's TSval carry the peer's window scale (4 bits) and SACK-permitted. */
const COOKIE_TS_MASK = 0x3f;
const COOKIE_NO_WSCALE = 0x0f;
const COOKIE_SACK_BIT = 0x10;

/** A passive open: the SYN queue (half-open) and the accept queue (established, not accepted). */
export class TcpListener {
  readonly synQueue = new Map<string, TcpConnection>();
  readonly acceptQueue: TcpConnection[] = [];
  /** Called whenever a connection joins the accept queue. */
  onConnection: (() => void) | undefined;
  /** When this listener last answered with a cookie: cookie ACKs are only checked shortly after. */
  lastCookieTime = -Infinity;
  closed = false;

  constructor(
    private readonly tcp: Tcp,
    readonly localAddress: Ipv4Address,
    readonly localPort: number,
    public backlog: number,
  ) {}

  /** Take the oldest established connection, if any. */
  accept(events?: TcpConnectionEvents): TcpConnection | undefined {
    const connection = this.acceptQueue.shift();
    if (connection && events) connection.events = events;
    return connection;
  }

  /** Stop listening; queued connections are reset (as close(2) on a listening socket does). */
  close(): void {
    this.tcp.unlisten(this);
  }
}

/**
 * TCP (RFC 9293): demultiplexing, listeners, SYN cookies, resets for strays, ICMP errors, and the
 * connection table. Plug into a stack with `stack.registerTransport(tcp)`; it sends through the
 * stack's IpSender.
 */
export class Tcp implements TransportProtocol {
  readonly protocol = TCP_PROTOCOL;
  readonly options: TcpOptions;
  readonly stats: TcpStats = createTcpStats();
  private readonly connections = new Map<string, TcpConnection>();
  /** Where the last segment went: a busy connection is found again without building its key. */
  private lastConnection: TcpConnection | undefined;
  private readonly listeners = new Map<string, TcpListener>();
  private readonly parents = new Map<TcpConnection, TcpListener>();
  private readonly hasher: TupleHasher;
  private readonly host: ConnectionHost;
  private readonly resetLimit: RateLimit;
  private trace: TraceHook = NO_TRACE;

  constructor(
    readonly ip: IpSender,
    readonly clock: Clock,
    private readonly random: Random,
    options: Partial<TcpOptions> = {},
    /** Where exceptions from socket callbacks are reported (pass the stack's: `stack.containment`). */
    private readonly containment: Containment = new Containment(),
  ) {
    this.options = resolveTcpOptions(options);
    this.hasher = new TupleHasher(random);
    this.resetLimit = new RateLimit(this.options.resetRateLimit);
    this.host = {
      clock,
      options: this.options,
      stats: this.stats,
      send: (connection, segment) => {
        if (this.trace.emit) {
          const info = connection.info();
          this.trace.emit('socket', 'out', describeSocketOut(connection, info));
          this.trace.emit('tcp', 'out', describeSegmentOut(info, segment));
        }
        return this.sendSegment(connection.localAddress, connection.remoteAddress, segment);
      },
      canEstablish: (connection) => {
        const listener = this.parents.get(connection);
        return !listener || listener.acceptQueue.length < listener.backlog;
      },
      established: (connection) => {
        const listener = this.parents.get(connection);
        if (!listener) return;
        listener.synQueue.delete(connection.key);
        listener.acceptQueue.push(connection);
        this.parents.delete(connection);
        listener.onConnection?.();
      },
      released: (connection) => this.forget(connection),
    };
  }

  // ---------------------------------------------------------------------------------
  // Application side
  // ---------------------------------------------------------------------------------

  /** Report to the stack's trace hook (Stack.registerTransport hands it over). */
  useTrace(hook: TraceHook): void {
    this.trace = hook;
  }

  /** Active open. The SYN leaves at once; `events.onConnect` fires when established. */
  connect(options: TcpConnectOptions, events: TcpConnectionEvents = {}): TcpConnection | TcpOpenError {
    const route = this.ip.route(options.remoteAddress);
    if (!route) return 'EHOSTUNREACH';
    const localAddress = options.localAddress ?? route.source;
    if (options.localAddress !== undefined && options.localAddress !== 0 && !this.ip.isLocalAddress(options.localAddress)) return 'EADDRNOTAVAIL';
    let localPort = options.localPort ?? 0;
    if (localPort === 0) {
      const port = this.ephemeralPort((p) => !this.connections.has(connectionKey(localAddress, p, options.remoteAddress, options.remotePort)) && !this.portListened(p));
      if (port === undefined) return 'EADDRINUSE';
      localPort = port;
    } else if (this.connections.has(connectionKey(localAddress, localPort, options.remoteAddress, options.remotePort))) {
      return 'EADDRINUSE';
    }
    const connection = this.newConnection(localAddress, localPort, options.remoteAddress, options.remotePort, route, options.initialSequenceNumber);
    connection.events = events;
    this.connections.set(connection.key, connection);
    this.stats.activeOpens++;
    connection.open();
    return connection;
  }

  /** Passive open. */
  listen(options: TcpListenOptions = {}): TcpListener | TcpOpenError {
    const address = options.address ?? 0;
    if (address !== 0 && !this.ip.isLocalAddress(address)) return 'EADDRNOTAVAIL';
    let port = options.port ?? 0;
    if (port === 0) {
      const found = this.ephemeralPort((p) => !this.portListened(p) && ![...this.connections.values()].some((c) => c.localPort === p));
      if (found === undefined) return 'EADDRINUSE';
      port = found;
    }
    if (this.listeners.has(listenerKey(address, port)) || (address === 0 && this.portListened(port)) || this.listeners.has(listenerKey(0, port))) {
      return 'EADDRINUSE';
    }
    const listener = new TcpListener(this, address, port, Math.max(1, options.backlog ?? this.options.defaultAcceptBacklog));
    this.listeners.set(listenerKey(address, port), listener);
    return listener;
  }

  /** @internal Called by TcpListener.close(). */
  unlisten(listener: TcpListener): void {
    if (listener.closed) return;
    listener.closed = true;
    this.listeners.delete(listenerKey(listener.localAddress, listener.localPort));
    for (const connection of [...listener.synQueue.values(), ...listener.acceptQueue]) connection.abort();
    listener.synQueue.clear();
    listener.acceptQueue.length = 0;
  }

  /** The stack's socket table (`netstat -ano`): listeners (no foreign end), then connections. */
  rows(): SocketRow[] {
    return this.socketTable().map((r) => ({
      protocol: 'tcp',
      localAddress: r.localAddress,
      localPort: r.localPort,
      ...(r.state === 'LISTEN' ? {} : { remoteAddress: r.remoteAddress, remotePort: r.remotePort }),
      state: r.state,
      receiveQueue: r.receiveQueue,
      sendQueue: r.sendQueue,
      timer: r.timer,
      timerRemaining: r.timerRemaining,
    }));
  }

  /** Every socket with TCP's own detail: listeners, then connections. */
  socketTable(): TcpSocketRow[] {
    const rows: TcpSocketRow[] = [];
    for (const l of this.listeners.values()) {
      rows.push({
        state: 'LISTEN',
        localAddress: formatIpv4(l.localAddress),
        localPort: l.localPort,
        remoteAddress: '0.0.0.0',
        remotePort: 0,
        sendQueue: 0,
        receiveQueue: l.acceptQueue.length,
        timer: 'off',
        timerRemaining: 0,
        retransmits: 0,
        rto: 0,
        srtt: undefined,
        cwnd: 0,
      });
    }
    for (const c of this.connections.values()) {
      const timer = c.timerInfo();
      rows.push({
        state: c.state,
        localAddress: formatIpv4(c.localAddress),
        localPort: c.localPort,
        remoteAddress: formatIpv4(c.remoteAddress),
        remotePort: c.remotePort,
        sendQueue: c.sendQueueLength,
        receiveQueue: c.readableLength,
        timer: timer.timer,
        timerRemaining: timer.remaining,
        retransmits: c.retransmits,
        rto: c.rto,
        srtt: c.srtt,
        cwnd: c.cc.cwnd,
        info: c.info(),
      });
    }
    return rows;
  }

  /** The application's code, called from a connection's or listener's event, threw: count it, report the first. */
  contain(site: string, error: unknown): void {
    this.stats.callbackExceptions++;
    this.containment.caught(site, error);
  }

  /** Live connections (including TIME-WAIT and half-open ones). */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Find a connection by its 4-tuple (tests, diagnostics). */
  findConnection(localAddress: Ipv4Address, localPort: number, remoteAddress: Ipv4Address, remotePort: number): TcpConnection | undefined {
    return this.connections.get(connectionKey(localAddress, localPort, remoteAddress, remotePort));
  }

  // ---------------------------------------------------------------------------------
  // TransportProtocol
  // ---------------------------------------------------------------------------------

  receive(info: IpReceiveInfo, payload: Uint8Array): 'delivered' | 'unreachable' | 'dropped' {
    // tcpInSegs (RFC 4022): every segment, the erroneous and the unmatched ones too.
    this.stats.segmentsReceived++;
    // RFC 1122 §4.2.3.10: a SYN to a broadcast or multicast address MUST be ignored; TCP is unicast.
    if (info.broadcastOrMulticast) {
      countDrop(this.stats.dropped, 'broadcast');
      return 'dropped';
    }
    const packet = TcpPacket.check(payload);
    if (packet instanceof TcpParseError) {
      countDrop(this.stats.dropped, 'malformed');
      return 'dropped';
    }
    const seg = TcpRepr.parse(packet, info.source, info.destination);
    if (seg instanceof TcpParseError) {
      if (seg.reason === 'bad-checksum') countDrop(this.stats.dropped, 'badChecksum');
      else countDrop(this.stats.dropped, 'malformed');
      return 'dropped';
    }
    // RFC 4987 §4.1 (LAND): our address and port on both sides would have a half-open connection
    // answer its own SYN-ACK. IPv4 already drops our own address from a wire; this is the rest.
    if (info.source >>> 0 === info.destination >>> 0 && seg.sourcePort === seg.destinationPort) {
      countDrop(this.stats.dropped, 'land');
      return 'dropped';
    }
    let connection = this.lastConnection;
    if (
      connection === undefined ||
      connection.localPort !== seg.destinationPort ||
      connection.remotePort !== seg.sourcePort ||
      connection.localAddress >>> 0 !== info.destination >>> 0 ||
      connection.remoteAddress >>> 0 !== info.source >>> 0
    ) {
      connection = this.connections.get(connectionKey(info.destination, seg.destinationPort, info.source, seg.sourcePort));
      this.lastConnection = connection;
    }
    if (connection) {
      // RFC 9293 §3.10.7.4 / RFC 6191: a new SYN beyond the old connection's sequence space may
      // reopen a TIME-WAIT connection when a listener wants it.
      if (connection.state === 'TIME-WAIT' && seg.flags & TcpFlag.SYN && !(seg.flags & (TcpFlag.ACK | TcpFlag.RST)) && seqGt(seg.sequence, connection.rcvNxt)) {
        const listener = this.findListener(info.destination, seg.destinationPort);
        if (listener) {
          connection.abortQuietly();
          return this.listenerReceive(listener, info, seg);
        }
      }
      if (this.trace.emit) {
        const before = connection.info();
        connection.receive(seg);
        const after = connection.info();
        this.trace.emit('tcp', 'in', describeSegmentIn(seg, before, after));
        const delivered = Math.min(seg.payload.length, after.bytesReceived - before.bytesReceived);
        if (delivered > 0) this.trace.emit('socket', 'in', `${delivered} bytes readable by the application (${after.receiveQueue} still unread after the read)`);
      } else connection.receive(seg);
      return 'delivered';
    }
    const listener = this.findListener(info.destination, seg.destinationPort);
    if (listener) {
      this.trace.emit?.('tcp', 'in', `${seg.flags & TcpFlag.SYN ? 'SYN' : 'segment'} from ${formatIpv4(info.source)}:${seg.sourcePort} to the listener on port ${seg.destinationPort}`);
      return this.listenerReceive(listener, info, seg);
    }
    this.trace.emit?.('tcp', 'in', `no connection or listener for port ${seg.destinationPort}: answered with a reset`);
    // RFC 9293 §3.10.7.1: CLOSED — answer anything but a RST with a RST.
    this.replyReset(info, seg);
    return 'delivered';
  }

  neighbourUnreachable(nextHop: Ipv4Address): void {
    for (const connection of [...this.connections.values()]) {
      if (this.ip.route(connection.remoteAddress)?.nextHop === nextHop) connection.neighbourUnreachable();
    }
  }

  icmpError(error: IcmpErrorInfo): void {
    const quoted = TcpPacket.quotedPortsAndSequence(error.originalTransportHeader);
    if (!quoted) return;
    const connection = this.connections.get(connectionKey(error.originalSource, quoted.sourcePort, error.originalDestination, quoted.destinationPort));
    if (!connection) return;
    switch (error.kind) {
      case 'port-unreachable':
      case 'protocol-unreachable':
        connection.icmpError('hard', quoted.sequence, 'ECONNREFUSED');
        break;
      case 'host-unreachable':
        connection.icmpError('soft', quoted.sequence, 'EHOSTUNREACH');
        break;
      case 'net-unreachable':
        connection.icmpError('soft', quoted.sequence, 'ENETUNREACH');
        break;
      case 'fragmentation-needed':
        connection.icmpError('fragmentation-needed', quoted.sequence, 'EHOSTUNREACH', error.nextHopMtu);
        break;
      default:
        break;
    }
  }

  // ---------------------------------------------------------------------------------
  // LISTEN (RFC 9293 §3.10.7.2)
  // ---------------------------------------------------------------------------------

  private listenerReceive(listener: TcpListener, info: IpReceiveInfo, seg: TcpRepr): 'delivered' | 'dropped' {
    const flags = seg.flags;
    // First: RST to a listener is ignored (smoltcp 0.13 "Don't accept RST packets on listening sockets").
    if (flags & TcpFlag.RST) return 'dropped';
    // Second: an ACK — a SYN cookie coming back, or a reset.
    if (flags & TcpFlag.ACK) {
      if (!(flags & TcpFlag.SYN) && this.acceptCookie(listener, info, seg)) return 'delivered';
      this.replyReset(info, seg);
      return 'delivered';
    }
    if (!(flags & TcpFlag.SYN)) return 'dropped';
    // Third: SYN.
    const o = this.options;
    if (listener.acceptQueue.length >= listener.backlog) {
      // Linux drops SYNs while the accept queue is full: the peer retries, nothing is half-built.
      countDrop(this.stats.dropped, 'acceptQueueFull');
      return 'dropped';
    }
    if (listener.synQueue.size >= o.synBacklog) {
      if (!o.synCookies) {
        countDrop(this.stats.dropped, 'synQueueFull');
        return 'dropped';
      }
      this.sendCookieSynAck(listener, info, seg);
      return 'delivered';
    }
    const connection = this.newConnection(info.destination, seg.destinationPort, info.source, seg.sourcePort, this.ip.route(info.source));
    this.connections.set(connection.key, connection);
    listener.synQueue.set(connection.key, connection);
    this.parents.set(connection, listener);
    this.stats.passiveOpens++;
    connection.acceptSyn(seg);
    return 'delivered';
  }

  /**
   * RFC 4987 §3.6: with the SYN queue full, answer statelessly. ISS = t(5 bits) ‖ MSS index(2) ‖
   * 25 bits of a keyed hash over the 4-tuple, the peer's ISN and t. Window scale and SACK-permitted
   * ride in the low bits of our TSval and come back in the TSecr (as Linux does).
   */
  private sendCookieSynAck(listener: TcpListener, info: IpReceiveInfo, seg: TcpRepr): void {
    const now = this.clock.now();
    listener.lastCookieTime = now;
    this.stats.synCookiesSent++;
    const peerMss = seg.maxSegmentSize ?? this.options.defaultPeerMss;
    let mssIndex = 0;
    for (let i = 0; i < COOKIE_MSS.length; i++) if (COOKIE_MSS[i]! <= peerMss) mssIndex = i;
    const counter = Math.floor(now / COOKIE_PERIOD) & 0x1f;
    const iss = this.cookie(info.destination, seg.destinationPort, info.source, seg.sourcePort, seg.sequence, counter, mssIndex);
    const route = this.ip.route(info.source);
    const localMss = localMssFor(this.options.maxSegmentSize, route?.mtu);
    const withTimestamps = this.options.timestamps && seg.timestamp !== undefined;
    const windowScale = withTimestamps && this.options.windowScaling && seg.windowScale !== undefined ? windowScaleFor(this.options.receiveBufferSize) : undefined;
    const sack = withTimestamps && this.options.sack && seg.sackPermitted === true;
    let tsval = 0;
    if (withTimestamps) {
      const bits = (seg.windowScale !== undefined && windowScale !== undefined ? seg.windowScale : COOKIE_NO_WSCALE) | (sack ? COOKIE_SACK_BIT : 0);
      const clock = timestampClock(now, this.timestampOffset(info.destination, seg.destinationPort, info.source, seg.sourcePort));
      // Never ahead of the connection's timestamp clock, or our next segments would fail the peer's PAWS.
      tsval = ((clock & ~COOKIE_TS_MASK) | bits) >>> 0;
      if (((tsval - clock) | 0) > 0) tsval = (tsval - (COOKIE_TS_MASK + 1)) >>> 0;
    }
    const repr: TcpRepr = {
      sourcePort: seg.destinationPort,
      destinationPort: seg.sourcePort,
      sequence: iss,
      acknowledgment: seqAdd(seg.sequence, 1),
      flags: TcpFlag.SYN | TcpFlag.ACK,
      window: Math.min(0xffff, this.options.receiveBufferSize),
      maxSegmentSize: localMss,
      windowScale,
      sackPermitted: sack,
      timestamp: withTimestamps ? { value: tsval, echo: seg.timestamp!.value } : undefined,
      payload: new Uint8Array(0),
    };
    this.sendSegment(info.destination, info.source, TcpRepr.toBytes(repr, info.destination, info.source));
  }

  private cookie(la: Ipv4Address, lp: number, ra: Ipv4Address, rp: number, peerIsn: number, counter: number, mssIndex: number): number {
    const h = this.hasher.hash(la, lp, ra, rp, peerIsn, (counter << 8) | mssIndex);
    return ((counter << 27) | (mssIndex << 25) | (h & 0x1ffffff)) >>> 0;
  }

  private acceptCookie(listener: TcpListener, info: IpReceiveInfo, seg: TcpRepr): boolean {
    const now = this.clock.now();
    if (!this.options.synCookies || now - listener.lastCookieTime > 2 * COOKIE_PERIOD) return false;
    const cookie = seqAdd(seg.acknowledgment, -1);
    const counter = cookie >>> 27;
    const mssIndex = (cookie >>> 25) & 3;
    const age = ((Math.floor(now / COOKIE_PERIOD) & 0x1f) - counter) & 0x1f;
    const peerIsn = seqAdd(seg.sequence, -1);
    if (age > 1 || this.cookie(info.destination, seg.destinationPort, info.source, seg.sourcePort, peerIsn, counter, mssIndex) !== cookie) {
      this.stats.synCookiesRejected++;
      return false;
    }
    if (listener.acceptQueue.length >= listener.backlog) {
      countDrop(this.stats.dropped, 'acceptQueueFull');
      return true;
    }
    this.stats.synCookiesAccepted++;
    let windowScale: number | undefined;
    let sackPermitted = false;
    if (seg.timestamp && this.options.timestamps) {
      const bits = seg.timestamp.echo & COOKIE_TS_MASK;
      windowScale = (bits & 0x0f) === COOKIE_NO_WSCALE ? undefined : bits & 0x0f;
      sackPermitted = (bits & COOKIE_SACK_BIT) !== 0;
    }
    const route = this.ip.route(info.source);
    const connection = this.newConnection(info.destination, seg.destinationPort, info.source, seg.sourcePort, route, cookie);
    this.connections.set(connection.key, connection);
    this.stats.passiveOpens++;
    connection.acceptCookie(seg, { maxSegmentSize: COOKIE_MSS[mssIndex], windowScale, sackPermitted, timestamp: seg.timestamp });
    listener.acceptQueue.push(connection);
    // The ACK may carry data: process it as the first segment of the established connection.
    connection.receive(seg);
    listener.onConnection?.();
    return true;
  }

  // ---------------------------------------------------------------------------------
  // Internals
  // ---------------------------------------------------------------------------------

  private newConnection(localAddress: Ipv4Address, localPort: number, remoteAddress: Ipv4Address, remotePort: number, route: RouteChoice | undefined, iss?: number): TcpConnection {
    const now = this.clock.now();
    const localMss = localMssFor(this.options.maxSegmentSize, route?.mtu);
    return new TcpConnection(this.host, {
      localAddress,
      localPort,
      remoteAddress,
      remotePort,
      localMss,
      receiveWindowLimit: this.receiveWindowFor(route, localMss),
      iss: iss ?? this.hasher.initialSequenceNumber(localAddress, localPort, remoteAddress, remotePort, now),
      timestampOffset: this.timestampOffset(localAddress, localPort, remoteAddress, remotePort),
    });
  }

  /**
   * The most the receive window offers for a connection over `route`: the configured buffer
   * size, or less where the interface's NIC declares a small buffer of its own — the
   * ENC28J60's ring behind a serial bridge holds three full-size frames, and a peer that sends
   * more than that at LAN speed loses the rest to ring overflow, then waits for retransmission.
   * A full segment costs its payload + TCP/IP headers with timestamps + Ethernet header + the
   * NIC's own per-frame overhead; the window offers as many whole segments as fit, at least one.
   */
  private receiveWindowFor(route: RouteChoice | undefined, localMss: number): number {
    const nicBuffer = route?.receiveBuffer;
    if (!nicBuffer) return this.options.receiveBufferSize;
    const segments = Math.max(1, Math.floor(nicBuffer.bytes / (localMss + IPV4_TCP_HEADERS + TIMESTAMP_OPTION_LENGTH + ETHERNET_HEADER_LENGTH + nicBuffer.frameOverhead)));
    return Math.min(this.options.receiveBufferSize, segments * localMss);
  }

  /** RFC 7323 §5.4: a per-connection timestamp offset from a keyed hash (stateless, so cookies can predict it). */
  private timestampOffset(la: Ipv4Address, lp: number, ra: Ipv4Address, rp: number): number {
    return this.hasher.hash(la, lp, ra, rp, 0x74737661);
  }

  private findListener(address: Ipv4Address, port: number): TcpListener | undefined {
    return this.listeners.get(listenerKey(address, port)) ?? this.listeners.get(listenerKey(0, port));
  }

  private portListened(port: number): boolean {
    for (const l of this.listeners.values()) if (l.localPort === port) return true;
    return false;
  }

  private ephemeralPort(free: (port: number) => boolean): number | undefined {
    const first = this.options.ephemeralPortFirst;
    const count = this.options.ephemeralPortLast - first + 1;
    // RFC 6056 §3.3.1: start at a random offset, then search sequentially.
    const offset = randomBelow(this.random, count);
    for (let i = 0; i < count; i++) {
      const port = first + ((offset + i) % count);
      if (free(port)) return port;
    }
    return undefined;
  }

  private forget(connection: TcpConnection): void {
    if (this.lastConnection === connection) this.lastConnection = undefined;
    if (this.connections.get(connection.key) === connection) this.connections.delete(connection.key);
    const listener = this.parents.get(connection);
    if (listener) {
      listener.synQueue.delete(connection.key);
      this.parents.delete(connection);
    }
    for (const l of this.listeners.values()) {
      const i = l.acceptQueue.indexOf(connection);
      if (i >= 0) l.acceptQueue.splice(i, 1);
    }
  }

  private sendSegment(source: Ipv4Address, destination: Ipv4Address, segment: Uint8Array): IpSendResult {
    // tcpOutSegs: a connection's segments, and the listener's cookie SYN-ACKs and resets.
    this.stats.segmentsSent++;
    return this.ip.send({ destination, source, protocol: TCP_PROTOCOL, ttl: this.options.ttl }, segment);
  }

  /** RFC 9293 §3.10.7.1: the reset for a segment that matches nothing; never for a RST. Rate-limited. */
  private replyReset(info: IpReceiveInfo, seg: TcpRepr): void {
    if (seg.flags & TcpFlag.RST) return;
    if (!this.resetLimit.allow(this.clock.now())) {
      this.stats.resetsRateLimited++;
      return;
    }
    this.stats.resetsSent++;
    this.trace.emit?.('tcp', 'out', `[R] reset to ${formatIpv4(info.source)}:${seg.sourcePort}: nothing here matches its segment (RFC 9293 §3.10.7.1)`);
    this.sendSegment(info.destination, info.source, resetReplyTo(seg, info.destination, info.source));
  }
}

function listenerKey(address: Ipv4Address, port: number): string {
  return `${address >>> 0}:${port}`;
}

export type { TcpConnection, TcpConnectionEvents, TcpConnectionInfo, TcpErrorCode, TcpState };
