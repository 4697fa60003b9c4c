import { EventEmitter } from 'node:events';
import type { Clock } from '../time/clock.js';
import type { Random } from '../time/random.js';
import type { Nic } from '../link/nic.js';
import { formatIpv4, formatMac, IPV4_BROADCAST, parseMac, toIpv4Address, type Ipv4Address, type MacAddress } from '../wire/address.js';
import { EthernetLayer } from '../link/ethernet.js';
import { NetInterface, type InterfaceAddress } from '../link/interface.js';
import { ArpLayer } from '../link/arp.js';
import { Ipv4Layer } from '../ip/ipv4.js';
import { IcmpLayer, type PingOptions, type PingResult } from '../ip/icmp.js';
import { RouteTable } from '../ip/routes.js';
import type { IpSender, TransportProtocol } from '../ip/types.js';
import { UdpLayer } from '../transport/udp.js';
import { resolveOptions, type StackOptions } from '../options.js';
import { createCounters, type NamedCounters, type StackCounters, type StackCountersSnapshot } from '../stats/counters.js';
import type { ArpEntryRow, InterfaceRow, SocketRow, StackTables } from '../stats/rows.js';
import { formatCounters, formatTables } from './tables.js';
import { systemError } from '../ip/errno.js';
import { Containment, type ContainedErrorReport } from '../stats/containment.js';
import { createTraceHook, type TraceHook } from '../stats/trace.js';

/**
 * The stack: interfaces, ARP, IPv4, ICMP and UDP composed around an injected clock and random
 * source. Entirely event-driven and synchronous: frames arrive through Nic handlers, timers run
 * from the clock; nothing here polls or sleeps.
 */

export interface StackConfig {
  readonly clock: Clock;
  readonly random: Random;
  readonly options?: Partial<StackOptions>;
  readonly hostname?: string;
  /**
   * Where the first exception contained at each layer boundary is reported (default: one line on
   * stderr with its stack trace). Every one is counted as a drop of the layer that caught it.
   */
  readonly reportContained?: ContainedErrorReport;
  /**
   * The trace hook every layer reports its decisions to (src/stats/trace.ts); pass the same hook
   * to the NIC's driver to follow packets below the stack too. Off until its `emit` is set.
   */
  readonly trace?: TraceHook;
}

export type StackEvent =
  | { readonly type: 'link-up' | 'link-down'; readonly interfaceIndex: number }
  | { readonly type: 'address-added' | 'address-removed'; readonly interfaceIndex: number; readonly address: string; readonly prefixLength: number }
  | { readonly type: 'arp-conflict'; readonly interfaceIndex: number; readonly address: string; readonly mac: string }
  | { readonly type: 'neighbour-unreachable'; readonly interfaceIndex: number; readonly address: string; readonly dropped: number };

/** The ARP API: cache inspection, static entries, RFC 5227 probing; emits 'conflict'. */
export class ArpApi extends EventEmitter {
  constructor(
    private readonly layer: ArpLayer,
    private readonly iface: (index: number) => NetInterface,
  ) {
    super();
  }

  entries(): ArpEntryRow[] {
    return this.layer.entries();
  }

  addStatic(interfaceIndex: number, ip: Ipv4Address | string, mac: MacAddress | string): void {
    this.iface(interfaceIndex);
    this.layer.addStatic(interfaceIndex, toIpv4Address(ip), typeof mac === 'string' ? parseMac(mac) : mac);
  }

  remove(ip: Ipv4Address | string): boolean {
    return this.layer.remove(toIpv4Address(ip));
  }

  lookup(interfaceIndex: number, ip: Ipv4Address | string): string | undefined {
    const mac = this.layer.lookup(interfaceIndex, toIpv4Address(ip));
    return mac && formatMac(mac);
  }

  /** RFC 5227 §2.1: is `ip` free on this link? Takes PROBE_WAIT + 3 probes + ANNOUNCE_WAIT (≈ 4–7 s). */
  probe(interfaceIndex: number, ip: Ipv4Address | string): Promise<'free' | 'conflict'> {
    return this.layer.probe(this.iface(interfaceIndex), toIpv4Address(ip));
  }

  /** RFC 5227 §2.3 announcement (gratuitous ARP) for an address of ours. */
  announce(interfaceIndex: number, ip: Ipv4Address | string): void {
    this.layer.announce(this.iface(interfaceIndex), toIpv4Address(ip));
  }
}

/** A transport's own counters (Tcp's `stats`: numbers, possibly grouped, e.g. `dropped`). */
export type TransportCounters = NamedCounters;

/** transportCounters(): the counters of registered transports that keep them, by name. */
export interface TransportCountersReport {
  readonly tcp?: TransportCounters;
}

/** Names counters() files a transport's stats under, by IP protocol number. */
const TRANSPORT_NAMES: Readonly<Record<number, 'tcp'>> = { 6: 'tcp' };

function isTransportCounters(value: unknown): value is TransportCounters {
  return typeof value === 'object' && value !== null && Object.values(value).every((v) => typeof v === 'number' || isTransportCounters(v));
}

function copyCounters(counters: TransportCounters): TransportCounters {
  const out: Record<string, number | TransportCounters> = {};
  for (const [k, v] of Object.entries(counters)) out[k] = typeof v === 'number' ? v : copyCounters(v);
  return out;
}

export class Stack extends EventEmitter {
  readonly clock: Clock;
  readonly random: Random;
  readonly options: StackOptions;
  hostname: string;
  /** DNS servers (set by DHCP or by hand); the resolver reads them. */
  dnsServers: Ipv4Address[] = [];
  readonly routes: RouteTable;
  readonly arp: ArpApi;
  readonly ip: IpSender;
  readonly udp: UdpLayer;
  /** Exceptions stopped at layer boundaries (pass it to a Tcp, so TCP's sockets report the same way). */
  readonly containment: Containment;
  /** The layers' trace hook: set `trace.emit` to follow packets, clear it to stop. */
  readonly trace: TraceHook;

  private readonly interfaceList: NetInterface[] = [];
  private readonly counterSet: StackCounters = createCounters();
  private readonly ethernet: EthernetLayer;
  private readonly arpLayer: ArpLayer;
  private readonly ipv4: Ipv4Layer;
  private readonly icmp: IcmpLayer;
  private readonly socketTables = new Map<string, () => SocketRow[]>();
  private readonly registeredCounters = new Map<'tcp', TransportCounters>();

  constructor(config: StackConfig) {
    super();
    this.clock = config.clock;
    this.random = config.random;
    this.options = resolveOptions(config.options);
    this.hostname = config.hostname ?? 'spinet';
    this.containment = new Containment(config.reportContained);
    this.trace = config.trace ?? createTraceHook();
    const trace = this.trace;
    const c = this.counterSet;
    const byIndex = (index: number) => this.interfaceList.find((i) => i.index === index);
    this.routes = new RouteTable((index) => byIndex(index)?.linkUp ?? false);
    this.ethernet = new EthernetLayer(c.ethernet, {
      arp: (iface, payload) => this.arpLayer.input(iface, payload),
      ipv4: (iface, payload, linkBroadcast) => this.ipv4.input(iface, payload, linkBroadcast),
    }, trace);
    this.arpLayer = new ArpLayer(this.clock, this.random, this.options, c.arp, this.ethernet, byIndex, {
      conflict: (conflict) => {
        const event: StackEvent = { type: 'arp-conflict', interfaceIndex: conflict.interfaceIndex, address: formatIpv4(conflict.address), mac: formatMac(conflict.mac) };
        this.notify(event, this.arp, 'conflict');
        this.notify(event);
      },
      unresolved: (interfaceIndex, address, dropped) => {
        this.icmp.neighbourUnreachable(address);
        this.ipv4.neighbourUnreachable(address);
        this.notify({ type: 'neighbour-unreachable', interfaceIndex, address: formatIpv4(address), dropped });
      },
    }, trace);
    this.arp = new ArpApi(this.arpLayer, (index) => {
      const iface = byIndex(index);
      if (!iface) throw Object.assign(new RangeError(`No interface ${index}`), { code: 'ERR_INVALID_ARG_VALUE' });
      return iface;
    });
    this.ipv4 = new Ipv4Layer(this.clock, this.random.u32(), this.options, c.ipv4, () => this.interfaceList, byIndex, this.routes, this.arpLayer, this.containment, trace);
    this.ip = this.ipv4;
    this.icmp = new IcmpLayer(this.clock, this.random, this.options, c.icmp, this.ipv4, (p) => this.ipv4.transportFor(p), this.containment, trace);
    this.ipv4.setIcmpReporter(this.icmp);
    this.ipv4.register(this.icmp);
    this.udp = new UdpLayer(this.ipv4, this.random, this.options, c.udp, {
      interfaceIndex: (nameOrIndex) => (typeof nameOrIndex === 'number' ? byIndex(nameOrIndex)?.index : this.interfaceList.find((i) => i.name === nameOrIndex)?.index),
      interfaceName: (index) => byIndex(index)?.name,
      isBroadcast: (address) => {
        if (address === IPV4_BROADCAST) return true;
        const list = this.interfaceList;
        for (let i = 0; i < list.length; i++) if (list[i]!.isDirectedBroadcast(address)) return true;
        return false;
      },
      joinGroup: (group, index) => {
        for (const iface of this.interfaceList) if (index === undefined || iface.index === index) iface.joinMulticast(group);
      },
      leaveGroup: (group, index) => {
        for (const iface of this.interfaceList) if (index === undefined || iface.index === index) iface.leaveMulticast(group);
      },
    }, this.containment, trace);
    this.ipv4.register(this.udp);
    this.registerSocketTable('udp', () => this.udp.rows());
  }

  // ------------------------------------------------------------------ interfaces

  get interfaces(): readonly NetInterface[] {
    return this.interfaceList;
  }

  /** Attach a Nic. Indexes start at 1 (0 is loopback in IpReceiveInfo.interfaceIndex). */
  addInterface(nic: Nic, options: { name?: string } = {}): NetInterface {
    const index = this.interfaceList.length + 1;
    const iface = new NetInterface(index, options.name ?? `eth${index - 1}`, nic, {
      addressAdded: (i, address) => this.addressAdded(i, address),
      addressRemoved: (i, address) => this.addressRemoved(i, address),
    });
    this.interfaceList.push(iface);
    // The boundary with the NIC: whatever a layer above fails to contain stops here, so it never
    // reaches a driver (which might take it for a chip failure), the LAN or a TAP relay.
    nic.attach({
      receive: (frame) => {
        try {
          this.ethernet.input(iface, frame);
        } catch (error) {
          this.counterSet.ethernet.drop('layer-threw');
          this.containment.caught('the receive path', error);
        }
      },
      linkChange: (up) => {
        try {
          if (up) for (const a of iface.addresses) this.arpLayer.announce(iface, a.address);
          else this.arpLayer.flushInterface(iface.index);
        } catch (error) {
          this.containment.caught('a link change', error);
        }
        this.notify({ type: up ? 'link-up' : 'link-down', interfaceIndex: iface.index });
      },
    });
    return iface;
  }

  private addressAdded(iface: NetInterface, address: InterfaceAddress): void {
    if (address.prefixLength < 32) {
      this.routes.add({ destination: address.address, prefixLength: address.prefixLength, interfaceIndex: iface.index }, 'connected');
    }
    // RFC 5227 §2.3: announce the address (also refreshes neighbours' stale caches).
    if (iface.linkUp) this.arpLayer.announce(iface, address.address);
    this.notify({ type: 'address-added', interfaceIndex: iface.index, address: formatIpv4(address.address), prefixLength: address.prefixLength });
  }

  private addressRemoved(iface: NetInterface, address: InterfaceAddress): void {
    const stillCovered = iface.addresses.some((a) => a.prefixLength === address.prefixLength && ((a.address ^ address.address) >>> (32 - address.prefixLength)) === 0);
    if (!stillCovered && address.prefixLength < 32) {
      this.routes.remove({ destination: address.address, prefixLength: address.prefixLength, interfaceIndex: iface.index });
    }
    this.notify({ type: 'address-removed', interfaceIndex: iface.index, address: formatIpv4(address.address), prefixLength: address.prefixLength });
  }

  /** Emit to the application's listeners; what they throw is contained (these run inside the receive path). */
  private notify(event: StackEvent, emitter: EventEmitter = this, name = 'event'): void {
    try {
      emitter.emit(name, event);
    } catch (error) {
      this.containment.caught(`a '${name}' listener`, error);
    }
  }

  async start(): Promise<void> {
    await Promise.all(this.interfaceList.map((i) => i.nic.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.interfaceList.map((i) => i.nic.stop()));
  }

  // ------------------------------------------------------------------ transports and sockets

  /**
   * Add a transport (TCP). It receives datagrams of its protocol and ICMP errors about them; its
   * `stats` (if it keeps any, as Tcp does) appear in transportCounters(), and its `rows()` (if it
   * has them) in the socket table, under its name ('tcp').
   */
  registerTransport(transport: TransportProtocol & { readonly stats?: unknown; rows?(): SocketRow[]; useTrace?(hook: TraceHook): void }): void {
    this.ipv4.register(transport);
    transport.useTrace?.(this.trace);
    const name = TRANSPORT_NAMES[transport.protocol];
    if (name === undefined) return;
    if (isTransportCounters(transport.stats)) this.registeredCounters.set(name, transport.stats);
    if (transport.rows) this.registerSocketTable(name, () => transport.rows!());
  }

  /** Let a transport list its sockets in tables()/formatTables() (netstat). */
  registerSocketTable(name: string, rows: () => SocketRow[]): void {
    this.socketTables.set(name, rows);
  }

  // ------------------------------------------------------------------ ICMP

  /** Echo request/reply with RTT. Rejects with ETIMEDOUT, EHOSTUNREACH, ENETUNREACH, EMSGSIZE. */
  ping(address: string | Ipv4Address, options?: PingOptions): Promise<PingResult> {
    let destination: Ipv4Address;
    try {
      destination = toIpv4Address(address);
    } catch {
      return Promise.reject(systemError('ENOTFOUND', 'ping', String(address)));
    }
    return this.icmp.ping(destination, options);
  }

  // ------------------------------------------------------------------ observability

  /** Per-layer received/sent/dropped (a copy). Registered transports' own counters: transportCounters(). */
  counters(): StackCountersSnapshot {
    const c = this.counterSet;
    return { ethernet: c.ethernet.snapshot(), arp: c.arp.snapshot(), ipv4: c.ipv4.snapshot(), icmp: c.icmp.snapshot(), udp: c.udp.snapshot() };
  }

  /** A copy of each registered transport's counters (`tcp`: segments sent/received, retransmits, drops, …). */
  transportCounters(): TransportCountersReport {
    const out: { tcp?: TransportCounters } = {};
    for (const [name, counters] of this.registeredCounters) out[name] = copyCounters(counters);
    return out;
  }

  /** Bytes held by IPv4 reassembly right now (bounded by options.ipReassemblyMaxBytes). */
  get reassemblyBytesHeld(): number {
    return this.ipv4.reassembler.bytesHeld;
  }

  tables(): StackTables {
    const interfaces: InterfaceRow[] = this.interfaceList.map((i) => {
      const stats = i.nic.stats();
      return {
        index: i.index,
        name: i.name,
        mac: formatMac(i.mac),
        mtu: i.mtu,
        linkUp: i.linkUp,
        addresses: i.addresses.map((a) => `${formatIpv4(a.address)}/${a.prefixLength}`),
        rxFrames: stats.rxFrames,
        txFrames: stats.txFrames,
        nicDrops: { ...stats.drops },
      };
    });
    const sockets: SocketRow[] = [];
    for (const rows of this.socketTables.values()) sockets.push(...rows());
    return { interfaces, arp: this.arpLayer.entries(), routes: this.routes.rows(), sockets };
  }

  /** The tables (`ip addr`, `arp -a`, `route -n`, `netstat -an`) and the counters (`netstat -s`). */
  formatTables(): string {
    return `${formatTables(this.tables())}\n${formatCounters({ ...this.counters() }, { ...this.transportCounters() })}`;
  }
}

export type { NetInterface, InterfaceAddress } from '../link/interface.js';
export type { PingOptions, PingResult } from '../ip/icmp.js';
export type { StackOptions } from '../options.js';
export type { SocketRow, StackTables } from '../stats/rows.js';
export type { Route, RouteInput } from '../ip/routes.js';
export type { ArpEntryRow } from '../stats/rows.js';
