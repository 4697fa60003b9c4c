import { randomBelow, type Random } from '../time/random.js';
import { formatIpv4, type Ipv4Address } from '../wire/address.js';
import { IpProtocol } from '../wire/ipv4.js';
import { UdpPacket, UdpRepr, UDP_HEADER_LENGTH } from '../wire/udp.js';
import type { IcmpErrorInfo, IpReceiveInfo, IpSender, IpSendResult, TransportProtocol } from '../ip/types.js';
import type { StackOptions } from '../options.js';
import type { LayerCounters } from '../stats/counters.js';
import type { SocketRow } from '../stats/rows.js';
import type { Containment } from '../stats/containment.js';
import { NO_TRACE, type TraceHook } from '../stats/trace.js';

/**
 * UDP (RFC 768, lwIP udp.c): a table of endpoints ("PCBs") by local port, demultiplexing with
 * the most specific match winning, checksums, ephemeral ports from the injected Random, and
 * ICMP errors passed to connected endpoints (as Linux does without IP_RECVERR).
 */
export interface UdpEndpoint {
  /** 0.0.0.0 = any local address. */
  localAddress: Ipv4Address;
  /** 0 until bound. */
  localPort: number;
  /** Set by connect(); remotePort 0 = not connected. */
  remoteAddress: Ipv4Address;
  remotePort: number;
  /** Pinned to one interface (SO_BINDTODEVICE): receives only from it, sends only through it. */
  interfaceIndex: number | undefined;
  /** SO_REUSEADDR: several endpoints may share a port; broadcasts go to each. */
  reuseAddress: boolean;
  /** Datagram for this endpoint; `payload` aliases the received frame (valid after the call). */
  onMessage(payload: Uint8Array, source: Ipv4Address, sourcePort: number, info: IpReceiveInfo): void;
  onIcmpError(error: IcmpErrorInfo): void;
  /** For the socket table: 'udp'/'udp (dhcp)' etc. */
  readonly interfaceName?: string;
}

export type UdpBindError = 'EADDRINUSE' | 'EADDRNOTAVAIL';

/** What UDP sockets need to know about the stack's interfaces; the Stack that owns them answers. */
export interface UdpInterfaces {
  interfaceIndex(nameOrIndex: number | string): number | undefined;
  interfaceName(index: number): string | undefined;
  /** 255.255.255.255 or a directed broadcast of one of our subnets. */
  isBroadcast(address: Ipv4Address): boolean;
  joinGroup(group: Ipv4Address, interfaceIndex: number | undefined): void;
  leaveGroup(group: Ipv4Address, interfaceIndex: number | undefined): void;
}

export class UdpLayer implements TransportProtocol {
  readonly protocol = IpProtocol.UDP;
  private readonly ports = new Map<number, UdpEndpoint[]>();

  constructor(
    private readonly ip: IpSender,
    private readonly random: Random,
    private readonly options: StackOptions,
    private readonly counters: LayerCounters,
    readonly interfaces: UdpInterfaces,
    private readonly containment: Containment,
    private readonly trace: TraceHook = NO_TRACE,
  ) {}

  // ------------------------------------------------------------------ binding

  /** Bind `endpoint` to `address`:`port` (port 0 = an ephemeral port). */
  bind(endpoint: UdpEndpoint, address: Ipv4Address, port: number): UdpBindError | undefined {
    if (address !== 0 && !this.ip.isLocalAddress(address)) return 'EADDRNOTAVAIL';
    const probe = { ...endpoint, localAddress: address };
    if (port === 0) {
      const min = this.options.udpEphemeralPortMin;
      const count = this.options.udpEphemeralPortMax - min + 1;
      // RFC 6056 §3.3.1 (algorithm 1): random start, then search upwards.
      const start = randomBelow(this.random, count);
      let found = 0;
      for (let i = 0; i < count; i++) {
        const candidate = min + ((start + i) % count);
        if (!this.conflicts(probe, candidate)) {
          found = candidate;
          break;
        }
      }
      if (found === 0) return 'EADDRINUSE';
      port = found;
    } else if (this.conflicts(probe, port)) return 'EADDRINUSE';
    endpoint.localAddress = address;
    endpoint.localPort = port;
    const list = this.ports.get(port);
    if (list) list.push(endpoint);
    else this.ports.set(port, [endpoint]);
    return undefined;
  }

  private conflicts(endpoint: UdpEndpoint, port: number): boolean {
    const list = this.ports.get(port);
    if (!list) return false;
    for (const other of list) {
      if (endpoint.reuseAddress && other.reuseAddress) continue;
      if (endpoint.interfaceIndex !== undefined && other.interfaceIndex !== undefined && endpoint.interfaceIndex !== other.interfaceIndex) continue;
      if (other.localAddress === 0 || endpoint.localAddress === 0 || other.localAddress === endpoint.localAddress) return true;
    }
    return false;
  }

  unbind(endpoint: UdpEndpoint): void {
    const list = this.ports.get(endpoint.localPort);
    if (!list) return;
    const i = list.indexOf(endpoint);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.ports.delete(endpoint.localPort);
  }

  // ------------------------------------------------------------------ input

  receive(info: IpReceiveInfo, payload: Uint8Array): 'delivered' | 'unreachable' | 'dropped' {
    const c = this.counters;
    c.received++;
    const packet = UdpPacket.check(payload);
    if (!packet.ok) {
      c.drop(packet.reason);
      return 'dropped';
    }
    if (this.options.verifyChecksums && !packet.verifyChecksum(info.source, info.destination)) {
      c.drop('bad-checksum');
      return 'dropped';
    }
    const list = this.ports.get(packet.destinationPort);
    if (list === undefined) {
      c.drop('no-socket');
      this.trace.emit?.('udp', 'in', `port ${packet.destinationPort}: no socket bound there: dropped${info.broadcastOrMulticast ? '' : ', ICMP port unreachable'}`);
      return 'unreachable';
    }
    const sourcePort = packet.sourcePort;
    const data = packet.payload;
    if (info.broadcastOrMulticast) {
      // Every matching endpoint gets a broadcast (several only with SO_REUSEADDR).
      let delivered = 0;
      for (const endpoint of [...list]) {
        if (this.score(endpoint, info, sourcePort) < 0) continue;
        delivered++;
        this.deliver(endpoint, data, info, sourcePort);
      }
      if (delivered === 0) {
        c.drop('no-socket');
        return 'unreachable';
      }
      return 'delivered';
    }
    let best: UdpEndpoint | undefined;
    let bestScore = -1;
    for (let i = 0; i < list.length; i++) {
      const score = this.score(list[i]!, info, sourcePort);
      if (score > bestScore) {
        best = list[i];
        bestScore = score;
      }
    }
    if (best === undefined) {
      c.drop('no-socket');
      return 'unreachable';
    }
    this.trace.emit?.('udp', 'in', `${formatIpv4(info.source)}:${sourcePort} → port ${packet.destinationPort}, ${data.length} bytes, checksum ok: to the socket bound to ${formatIpv4(best.localAddress)}:${best.localPort}`);
    this.trace.emit?.('socket', 'in', `udp ${formatIpv4(best.localAddress)}:${best.localPort}: one datagram of ${data.length} bytes for the application ('message')`);
    this.deliver(best, data, info, sourcePort);
    return 'delivered';
  }

  /** The socket's handlers run the application's code: what they throw stops here. */
  private deliver(endpoint: UdpEndpoint, data: Uint8Array, info: IpReceiveInfo, sourcePort: number): void {
    try {
      endpoint.onMessage(data, info.source, sourcePort, info);
    } catch (error) {
      this.counters.drop('socket-threw');
      this.containment.caught('a UDP socket message handler', error);
    }
  }

  /** -1: no match; otherwise higher is more specific (connected > bound address > pinned > wildcard). */
  private score(endpoint: UdpEndpoint, info: IpReceiveInfo, sourcePort: number): number {
    let score = 0;
    if (endpoint.interfaceIndex !== undefined) {
      if (endpoint.interfaceIndex !== info.interfaceIndex) return -1;
      score += 1;
    }
    if (endpoint.localAddress !== 0) {
      if (endpoint.localAddress !== info.destination) return -1;
      score += 2;
    }
    if (endpoint.remotePort !== 0) {
      if (endpoint.remoteAddress !== info.source || endpoint.remotePort !== sourcePort) return -1;
      score += 4;
    }
    return score;
  }

  icmpError(error: IcmpErrorInfo): void {
    const header = error.originalTransportHeader;
    const sourcePort = (header[0]! << 8) | header[1]!;
    const destinationPort = (header[2]! << 8) | header[3]!;
    const list = this.ports.get(sourcePort);
    const target = list?.find(
      (e) =>
        e.remotePort === destinationPort &&
        e.remoteAddress === error.originalDestination &&
        (e.localAddress === 0 || e.localAddress === error.originalSource),
    );
    if (target === undefined) {
      // Linux reports ICMP errors only on connected sockets (without IP_RECVERR).
      this.counters.drop(`icmp-${error.kind}-unconnected`);
      return;
    }
    this.counters.drop(`icmp-${error.kind}`);
    try {
      target.onIcmpError(error);
    } catch (thrown) {
      this.counters.drop('socket-threw');
      this.containment.caught('a UDP socket ICMP error handler', thrown);
    }
  }

  // ------------------------------------------------------------------ output

  /**
   * Send `data` from `endpoint` (bound) to `destination`:`port`. Allocates the datagram (header +
   * copy of data) once; IPv4 allocates the frame.
   */
  send(endpoint: UdpEndpoint, destination: Ipv4Address, port: number, data: Uint8Array, ttl?: number): IpSendResult {
    let source = endpoint.localAddress;
    if (source === 0) {
      const route = this.ip.route(destination, endpoint.interfaceIndex);
      if (route === undefined) {
        this.counters.drop('no-route');
        return { ok: false, code: 'EHOSTUNREACH' };
      }
      source = route.source;
    }
    this.trace.emit?.('socket', 'out', `udp ${formatIpv4(endpoint.localAddress)}:${endpoint.localPort}: the application sends ${data.length} bytes to ${formatIpv4(destination)}:${port} (no buffering, no retransmission)`);
    this.trace.emit?.('udp', 'out', `header: port ${endpoint.localPort} → ${port}, length ${UDP_HEADER_LENGTH + data.length}, checksum over the pseudo-header from ${formatIpv4(source)}`);
    const datagram = new Uint8Array(UDP_HEADER_LENGTH + data.length);
    UdpRepr.emit({ sourcePort: endpoint.localPort, destinationPort: port }, datagram, 0, source, destination, data);
    const result = this.ip.send({ destination, source, protocol: IpProtocol.UDP, ttl, interfaceIndex: endpoint.interfaceIndex }, datagram);
    if (result.ok) this.counters.sent++;
    else this.counters.drop(`tx-${result.code}`);
    return result;
  }

  rows(): SocketRow[] {
    const rows: SocketRow[] = [];
    for (const list of this.ports.values()) {
      for (const e of list) {
        rows.push({
          protocol: 'udp',
          localAddress: formatIpv4(e.localAddress),
          localPort: e.localPort,
          remoteAddress: e.remotePort === 0 ? undefined : formatIpv4(e.remoteAddress),
          remotePort: e.remotePort === 0 ? undefined : e.remotePort,
          state: e.remotePort === 0 ? 'bound' : 'connected',
          interface: e.interfaceName,
        });
      }
    }
    return rows;
  }
}
