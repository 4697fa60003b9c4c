import type { Clock } from '../time/clock.js';
import { IPV4_BROADCAST, isMulticastIpv4, MAC_BROADCAST, multicastMacFor, type Ipv4Address, type MacAddress } from '../wire/address.js';
import { ETHERNET_HEADER_LENGTH, EtherType, writeEthernetSourceAndType } from '../wire/ethernet.js';
import { emitIpv4Header, IPV4_MAX_TOTAL_LENGTH, IPV4_MIN_HEADER_LENGTH, Ipv4Packet, IpProtocol } from '../wire/ipv4.js';
import type { ArpLayer } from '../link/arp.js';
import { allocateFrame } from '../link/frame-allocator.js';
import type { NetInterface } from '../link/interface.js';
import type { StackOptions } from '../options.js';
import type { LayerCounters } from '../stats/counters.js';
import type { Containment } from '../stats/containment.js';
import { martianDestination, martianSource } from './martian.js';
import { Reassembler } from './reassembly.js';
import type { RouteTable } from './routes.js';
import type { IpReceiveInfo, IpSender, IpSendOptions, IpSendResult, RouteChoice, TransportProtocol } from './types.js';
import { NO_TRACE, type TraceHook } from '../stats/trace.js';
import { formatIpv4 } from '../wire/address.js';

/**
 * IPv4 input and output (lwIP ip4.c): header validation, local delivery (weak host model:
 * any of our addresses on any interface), broadcast and joined multicast, reassembly,
 * dispatch to transports, routing, fragmentation, loopback. No forwarding: a host.
 */

/** Where IPv4 reports datagrams it could not deliver (the ICMP layer implements this). */
export interface IcmpErrorReporter {
  /**
   * Send an ICMP error about `offending` (the IP header and as much data as should be quoted)
   * if RFC 1122 §3.2.2 allows it and the rate limit has a token.
   */
  reportError(type: number, code: number, offending: Uint8Array, broadcastOrMulticast: boolean, nextHopMtu?: number): void;
}

const SENT: IpSendResult = Object.freeze({ ok: true, status: 'sent' });
const QUEUED: IpSendResult = Object.freeze({ ok: true, status: 'queued' });
const failure = (code: Exclude<IpSendResult, { ok: true }>['code']): IpSendResult => Object.freeze({ ok: false, code });
const EHOSTUNREACH = failure('EHOSTUNREACH');
const ENETUNREACH = failure('ENETUNREACH');
const EMSGSIZE = failure('EMSGSIZE');
const ENOBUFS = failure('ENOBUFS');
const EADDRNOTAVAIL = failure('EADDRNOTAVAIL');
const ENETDOWN = failure('ENETDOWN');

/** DHCP client port: accepted on an interface that has no address yet (lwIP LWIP_IP_ACCEPT_UDP_PORT). */
const DHCP_CLIENT_PORT = 68;
const LOOPBACK_MTU = 65535;

export class Ipv4Layer implements IpSender {
  private readonly transports: (TransportProtocol | undefined)[] = new Array(256).fill(undefined);
  private identification: number;
  private icmp: IcmpErrorReporter | undefined;
  readonly reassembler: Reassembler;
  private readonly isOwnAddress = (address: Ipv4Address): boolean => this.isLocalAddress(address);

  constructor(
    private readonly clock: Clock,
    initialIdentification: number,
    private readonly options: StackOptions,
    private readonly counters: LayerCounters,
    private readonly interfaces: () => readonly NetInterface[],
    private readonly interfaceByIndex: (index: number) => NetInterface | undefined,
    private readonly routes: RouteTable,
    private readonly arp: ArpLayer,
    private readonly containment: Containment,
    private readonly trace: TraceHook = NO_TRACE,
  ) {
    this.identification = initialIdentification & 0xffff;
    this.reassembler = new Reassembler(clock, options, counters, (first) => {
      if (first) this.icmp?.reportError(11, 1, first.subarray(0, this.quoteLength(first)), false);
    });
  }

  setIcmpReporter(icmp: IcmpErrorReporter): void {
    this.icmp = icmp;
  }

  register(transport: TransportProtocol): void {
    this.transports[transport.protocol] = transport;
  }

  /** ARP gave up on `nextHop`: tell every transport (see TransportProtocol.neighbourUnreachable). */
  neighbourUnreachable(nextHop: Ipv4Address): void {
    for (const transport of this.transports) transport?.neighbourUnreachable?.(nextHop);
  }

  transportFor(protocol: number): TransportProtocol | undefined {
    return this.transports[protocol];
  }

  // ------------------------------------------------------------------ input

  /** An IPv4 packet from Ethernet. `linkBroadcast`: the frame went to a broadcast/multicast MAC. */
  input(iface: NetInterface, bytes: Uint8Array, linkBroadcast: boolean): void {
    const c = this.counters;
    c.received++;
    const packet = Ipv4Packet.check(bytes);
    if (!packet.ok) {
      this.dropInput(packet.reason);
      return;
    }
    if (this.options.verifyChecksums && !packet.verifyChecksum()) {
      this.dropInput('bad-checksum');
      return;
    }
    const source = packet.source;
    const destination = packet.destination;
    const martian = martianSource(source, destination, iface, this.isOwnAddress) ?? martianDestination(destination);
    if (martian !== undefined) {
      this.dropInput(martian);
      return;
    }
    let broadcast = linkBroadcast;
    if (iface.hasAddress(destination) || this.isLocalAddress(destination)) {
      // Unicast to us (weak host model, RFC 1122 §3.3.4.2).
    } else if (destination === IPV4_BROADCAST || iface.isDirectedBroadcast(destination)) {
      broadcast = true;
    } else if (isMulticastIpv4(destination)) {
      if (!iface.isMemberOf(destination)) {
        this.dropInput('multicast-not-joined');
        return;
      }
      broadcast = true;
    } else if (iface.addresses.length === 0 && isDhcpToClient(packet)) {
      // A DHCP server may unicast the offer to the address it is offering (RFC 2131 §4.1).
    } else {
      this.dropInput('not-for-us');
      return;
    }
    this.trace.emit?.(
      'ip',
      'in',
      `${formatIpv4(source)} → ${formatIpv4(destination)} (${broadcast ? 'broadcast/multicast' : 'ours'}), ${protocolName(packet.protocol)}, id ${packet.identification}, ttl ${packet.ttl}, header checksum ok` +
        (packet.isFragment ? `, fragment at offset ${packet.fragmentOffset}${packet.moreFragments ? ' (more follow)' : ' (last)'}: to reassembly` : ''),
    );
    this.deliver(iface.index, packet, broadcast);
  }

  private dropInput(reason: string): void {
    this.counters.drop(reason);
    this.trace.emit?.('ip', 'in', `dropped: ${reason}`);
  }

  private deliver(interfaceIndex: number, received: Ipv4Packet, broadcast: boolean): void {
    let packet = received;
    if (packet.isFragment) {
      const whole = this.reassembler.add(packet);
      if (whole === undefined) return;
      const checked = Ipv4Packet.check(whole);
      if (!checked.ok) return;
      packet = checked;
    }
    const protocol = packet.protocol;
    const info = new ReceivedDatagram(packet, interfaceIndex, broadcast, this.options.icmpQuoteLength);
    const transport = this.transports[protocol];
    if (transport === undefined) {
      this.counters.drop('unknown-protocol');
      // RFC 1122 §3.2.2.1: protocol unreachable.
      this.icmp?.reportError(3, 2, info.quote, broadcast);
      return;
    }
    let result: ReturnType<TransportProtocol['receive']>;
    try {
      result = transport.receive(info, packet.payload);
    } catch (error) {
      // The transport (or a handler above it) failed on this datagram: drop it here, keep going.
      this.counters.drop('transport-threw');
      this.containment.caught(`IPv4 delivery to protocol ${protocol}`, error);
      return;
    }
    if (result === 'unreachable') this.icmp?.reportError(3, 3, info.quote, broadcast);
  }

  private quoteLength(datagram: Uint8Array): number {
    const total = (datagram[2]! << 8) | datagram[3]!;
    return Math.min(total, datagram.length, this.options.icmpQuoteLength);
  }

  // ------------------------------------------------------------------ routing

  isLocalAddress(address: Ipv4Address): boolean {
    if (address >>> 24 === 127) return true;
    const list = this.interfaces();
    for (let i = 0; i < list.length; i++) if (list[i]!.hasAddress(address)) return true;
    return false;
  }

  private ownerOf(address: Ipv4Address): NetInterface | undefined {
    return this.interfaces().find((i) => i.hasAddress(address));
  }

  route(destination: Ipv4Address, interfaceIndex?: number): RouteChoice | undefined {
    const dst = destination >>> 0;
    if (interfaceIndex === undefined && this.isLocalAddress(dst)) {
      const owner = this.ownerOf(dst);
      return { interfaceIndex: owner?.index ?? 0, source: dst, nextHop: dst, mtu: owner?.mtu ?? LOOPBACK_MTU };
    }
    const selected = this.select(dst, interfaceIndex);
    if (selected === undefined) return undefined;
    const receiveBuffer = selected.iface.nic.capabilities.receiveBuffer;
    return {
      interfaceIndex: selected.iface.index,
      source: selected.iface.sourceFor(selected.nextHop),
      nextHop: selected.nextHop,
      mtu: selected.iface.mtu,
      ...(receiveBuffer ? { receiveBuffer } : {}),
    };
  }

  /** Outgoing interface and next hop for a non-local destination. */
  private select(dst: Ipv4Address, interfaceIndex: number | undefined): { iface: NetInterface; nextHop: Ipv4Address } | undefined {
    if (interfaceIndex !== undefined) {
      const iface = this.interfaceByIndex(interfaceIndex);
      if (iface === undefined) return undefined;
      const route = dst === IPV4_BROADCAST || isMulticastIpv4(dst) ? undefined : this.routes.lookup(dst, interfaceIndex);
      return { iface, nextHop: route?.gateway ?? dst };
    }
    const route = this.routes.lookup(dst);
    if (route !== undefined) {
      const iface = this.interfaceByIndex(route.interfaceIndex);
      if (iface === undefined) return undefined;
      const broadcastish = dst === IPV4_BROADCAST || isMulticastIpv4(dst) || iface.isDirectedBroadcast(dst);
      return { iface, nextHop: broadcastish ? dst : (route.gateway ?? dst) };
    }
    if (dst === IPV4_BROADCAST || isMulticastIpv4(dst)) {
      // No route: the first interface that is up (lwIP: the default netif).
      const iface = this.interfaces().find((i) => i.linkUp);
      return iface && { iface, nextHop: dst };
    }
    return undefined;
  }

  // ------------------------------------------------------------------ output

  send(options: IpSendOptions, payload: Uint8Array): IpSendResult {
    const c = this.counters;
    const destination = options.destination >>> 0;
    if (payload.length + IPV4_MIN_HEADER_LENGTH > IPV4_MAX_TOTAL_LENGTH) {
      c.drop('tx-too-big');
      return EMSGSIZE;
    }
    if (options.source !== undefined && options.source !== 0 && !this.isLocalAddress(options.source)) return EADDRNOTAVAIL;
    const ttl = options.ttl ?? this.options.ipDefaultTtl;
    const tos = options.tos ?? 0;

    if (options.interfaceIndex === undefined && this.isLocalAddress(destination)) {
      return this.loopback(options.source ?? destination, destination, options.protocol, ttl, tos, payload);
    }
    const selected = this.select(destination, options.interfaceIndex);
    if (selected === undefined) {
      c.drop('no-route');
      this.trace.emit?.('ip', 'out', `route lookup ${formatIpv4(destination)}: no route matches (no default gateway): EHOSTUNREACH`);
      return options.interfaceIndex === undefined ? EHOSTUNREACH : ENETUNREACH;
    }
    const { iface, nextHop } = selected;
    if (!iface.linkUp) {
      c.drop('link-down');
      this.trace.emit?.('ip', 'out', `route lookup ${formatIpv4(destination)}: ${iface.name} has no link: ENETDOWN`);
      return ENETDOWN;
    }
    const source = options.source ?? iface.sourceFor(nextHop);
    let destinationMac: MacAddress | undefined;
    if (destination === IPV4_BROADCAST || iface.isDirectedBroadcast(destination)) destinationMac = MAC_BROADCAST;
    else if (isMulticastIpv4(destination)) destinationMac = multicastMacFor(destination);

    const identification = this.identification;
    this.identification = (identification + 1) & 0xffff;
    const mtu = iface.mtu;
    const dontFragment = options.dontFragment ?? false;
    let frames: Uint8Array | Uint8Array[];
    if (IPV4_MIN_HEADER_LENGTH + payload.length <= mtu) {
      // The frame the Nic takes ownership of (carved from a slab: see allocateFrame).
      const frame = allocateFrame(ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH + payload.length);
      writeEthernetSourceAndType(frame, iface.mac, EtherType.IPV4);
      emitIpv4Header(frame, ETHERNET_HEADER_LENGTH, source, destination, options.protocol, payload.length, ttl, tos, identification, dontFragment, false, 0);
      frame.set(payload, ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH);
      frames = frame;
      c.sent++;
    } else {
      if (dontFragment) {
        c.drop('tx-needs-fragmentation-df');
        return EMSGSIZE;
      }
      frames = this.fragment(iface, source, destination, options.protocol, ttl, tos, identification, payload);
    }
    if (this.trace.emit) {
      const decision = `${this.describeRoute(destination, nextHop, iface, options.interfaceIndex)}; header ${formatIpv4(source)} → ${formatIpv4(destination)}, ${protocolName(options.protocol)}, id ${identification}, ttl ${ttl}`;
      if (frames instanceof Uint8Array) this.trace.emit('ip', 'out', `${decision}, ${frames.length - ETHERNET_HEADER_LENGTH} bytes`, frames);
      else for (const [i, frame] of frames.entries()) this.trace.emit('ip', 'out', `${decision}: larger than the MTU ${mtu}, fragment ${i + 1} of ${frames.length}`, frame);
    }
    const result = this.arp.output(iface, nextHop, frames, destinationMac);
    return result === 'sent' ? SENT : result === 'queued' ? QUEUED : ENOBUFS;
  }

  /** The route lookup's answer in words, as the seed notes' routing table reads. */
  private describeRoute(destination: Ipv4Address, nextHop: Ipv4Address, iface: NetInterface, interfaceIndex: number | undefined): string {
    const route = this.routes.lookup(destination, interfaceIndex);
    const matched = route ? `matches ${formatIpv4(route.destination)}/${route.prefixLength}` : interfaceIndex !== undefined ? `pinned to ${iface.name}` : 'no route: first interface up';
    const hop = nextHop === destination ? 'on-link, deliver directly' : `gateway ${formatIpv4(nextHop)}`;
    return `route lookup ${formatIpv4(destination)}: ${matched} → ${hop} via ${iface.name}`;
  }

  /** RFC 791 §3.2: every fragment but the last carries a multiple of 8 data bytes. */
  private fragment(
    iface: NetInterface,
    source: Ipv4Address,
    destination: Ipv4Address,
    protocol: number,
    ttl: number,
    tos: number,
    identification: number,
    payload: Uint8Array,
  ): Uint8Array[] {
    const chunk = Math.floor((iface.mtu - IPV4_MIN_HEADER_LENGTH) / 8) * 8;
    const frames: Uint8Array[] = [];
    for (let offset = 0; offset < payload.length; offset += chunk) {
      const length = Math.min(chunk, payload.length - offset);
      const more = offset + length < payload.length;
      const frame = allocateFrame(ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH + length);
      writeEthernetSourceAndType(frame, iface.mac, EtherType.IPV4);
      emitIpv4Header(frame, ETHERNET_HEADER_LENGTH, source, destination, protocol, length, ttl, tos, identification, false, more, offset);
      frame.set(payload.subarray(offset, offset + length), ETHERNET_HEADER_LENGTH + IPV4_MIN_HEADER_LENGTH);
      frames.push(frame);
      this.counters.sent++;
    }
    return frames;
  }

  /** To one of our own addresses or 127/8: delivered on the next clock turn, never recursively. */
  private loopback(source: Ipv4Address, destination: Ipv4Address, protocol: number, ttl: number, tos: number, payload: Uint8Array): IpSendResult {
    const packet = allocateFrame(IPV4_MIN_HEADER_LENGTH + payload.length);
    const identification = this.identification;
    this.identification = (identification + 1) & 0xffff;
    emitIpv4Header(packet, 0, source === 0 ? destination : source, destination, protocol, payload.length, ttl, tos, identification, false, false, 0);
    packet.set(payload, IPV4_MIN_HEADER_LENGTH);
    this.counters.sent++;
    this.trace.emit?.('ip', 'out', `${formatIpv4(destination)} is one of our addresses: looped back inside the stack (no frame)`);
    const owner = this.ownerOf(destination);
    this.clock.schedule(0, () => {
      this.counters.received++;
      const checked = Ipv4Packet.check(packet);
      if (checked.ok) this.deliver(owner?.index ?? 0, checked, false);
    });
    return SENT;
  }
}

function protocolName(protocol: number): string {
  return protocol === IpProtocol.TCP ? 'TCP' : protocol === IpProtocol.UDP ? 'UDP' : protocol === IpProtocol.ICMP ? 'ICMP' : `protocol ${protocol}`;
}

function isDhcpToClient(packet: Ipv4Packet): boolean {
  if (packet.protocol !== IpProtocol.UDP || packet.isFragment) return false;
  const p = packet.payload;
  return p.length >= 8 && ((p[2]! << 8) | p[3]!) === DHCP_CLIENT_PORT;
}

/** IpReceiveInfo for one datagram; the quote (a subarray) is only cut when someone reads it. */
class ReceivedDatagram implements IpReceiveInfo {
  readonly source: Ipv4Address;
  readonly destination: Ipv4Address;
  readonly protocol: number;
  readonly ttl: number;
  readonly tos: number;
  private quoteBytes: Uint8Array | undefined;

  constructor(
    private readonly packet: Ipv4Packet,
    readonly interfaceIndex: number,
    readonly broadcastOrMulticast: boolean,
    private readonly quoteLimit: number,
  ) {
    this.source = packet.source;
    this.destination = packet.destination;
    this.protocol = packet.protocol;
    this.ttl = packet.ttl;
    this.tos = packet.tos;
  }

  get quote(): Uint8Array {
    if (this.quoteBytes === undefined) {
      const bytes = this.packet.bytes;
      this.quoteBytes = bytes.subarray(0, Math.min(this.packet.totalLength, bytes.length, this.quoteLimit));
    }
    return this.quoteBytes;
  }
}
