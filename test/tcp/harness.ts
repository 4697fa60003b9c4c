import { createHash } from 'node:crypto';
import type { IpReceiveInfo, IpSendOptions, IpSendResult, IpSender, RouteChoice } from '../../src/ip/types.js';
import { parseIpv4, type Ipv4Address } from '../../src/wire/address.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom, randomUnit } from '../../src/time/random.js';
import { TcpFlag, TcpPacket, TcpParseError, TcpRepr, formatTcpFlags } from '../../src/wire/tcp.js';
import { Tcp } from '../../src/tcp/tcp.js';
import type { TcpOptions } from '../../src/tcp/options.js';

export const LOCAL = parseIpv4('10.0.0.1');
export const REMOTE = parseIpv4('10.0.0.2');

export function receiveInfo(source: Ipv4Address, destination: Ipv4Address): IpReceiveInfo {
  return { source, destination, protocol: 6, ttl: 64, tos: 0, interfaceIndex: 0, broadcastOrMulticast: false, quote: new Uint8Array(0) };
}

export interface Sent {
  readonly at: number;
  readonly options: IpSendOptions;
  readonly bytes: Uint8Array;
  readonly seg: TcpRepr;
}

/** An IpSender that records what TCP sends (segment-level tests). */
export class CaptureIp implements IpSender {
  readonly sent: Sent[] = [];
  mtu = 1500;
  /** The route's NIC receive buffer (NicCapabilities.receiveBuffer), when a test gives one. */
  receiveBuffer: RouteChoice['receiveBuffer'];
  constructor(
    private readonly clock: VirtualClock,
    readonly local: Ipv4Address = LOCAL,
  ) {}

  send(options: IpSendOptions, payload: Uint8Array): IpSendResult {
    const packet = TcpPacket.check(payload);
    if (packet instanceof TcpParseError) throw new Error(`TCP emitted a malformed segment: ${packet.reason}`);
    const seg = TcpRepr.parse(packet, options.source ?? this.local, options.destination);
    if (seg instanceof TcpParseError) throw new Error(`TCP emitted a bad segment: ${seg.reason}`);
    this.sent.push({ at: this.clock.now(), options, bytes: payload, seg });
    return { ok: true, status: 'sent' };
  }

  route(destination: Ipv4Address): RouteChoice | undefined {
    return { interfaceIndex: 0, source: this.local, nextHop: destination, mtu: this.mtu, ...(this.receiveBuffer ? { receiveBuffer: this.receiveBuffer } : {}) };
  }

  isLocalAddress(address: Ipv4Address): boolean {
    return address === this.local;
  }
}

/** Partial segment, filled from sensible defaults. */
export type SegmentSpec = Partial<TcpRepr> & { flags: number };

/** One Tcp on a virtual clock; inject segments from REMOTE, take what comes out. */
export class SegmentHarness {
  readonly clock = new VirtualClock();
  readonly ip: CaptureIp;
  readonly tcp: Tcp;

  constructor(options: Partial<TcpOptions> = {}, seed = 1) {
    this.ip = new CaptureIp(this.clock);
    this.tcp = new Tcp(this.ip, this.clock, new SeededRandom(seed), options);
  }

  inject(spec: SegmentSpec, from: Ipv4Address = REMOTE, to: Ipv4Address = LOCAL): 'delivered' | 'unreachable' | 'dropped' {
    const repr: TcpRepr = {
      sourcePort: 40000,
      destinationPort: 80,
      sequence: 0,
      acknowledgment: 0,
      window: 65535,
      payload: new Uint8Array(0),
      ...spec,
    };
    return this.tcp.receive(receiveInfo(from, to), TcpRepr.toBytes(repr, from, to));
  }

  /** Everything sent since the last take. */
  take(): TcpRepr[] {
    const out = this.ip.sent.splice(0).map((s) => s.seg);
    return out;
  }

  /** Exactly one segment must have been sent; return it. */
  takeOne(): TcpRepr {
    const out = this.take();
    if (out.length !== 1) throw new Error(`expected one segment, got ${out.length}: ${out.map(describe).join(', ')}`);
    return out[0]!;
  }

  advance(ms: number): void {
    this.clock.advance(ms);
  }
}

export function describe(seg: TcpRepr): string {
  return `${formatTcpFlags(seg.flags)} seq=${seg.sequence} ack=${seg.acknowledgment} win=${seg.window} len=${seg.payload.length}`;
}

export interface NetworkFaults {
  loss?: number;
  duplicate?: number;
  /** Probability a packet gets extra delay (reordering). */
  reorder?: number;
  corrupt?: number;
  /** One-way delay in ms. */
  delay?: number;
  /** Extra delay for reordered packets, ms. */
  jitter?: number;
}

/** Hosts connected through a seeded, lossy, duplicating, reordering, corrupting wire on one clock. */
export class TestNetwork {
  readonly clock = new VirtualClock();
  private readonly hosts = new Map<Ipv4Address, Tcp>();
  private readonly rng: SeededRandom;
  delivered = 0;
  dropped = 0;
  /** Optional tap: return false to drop a packet. */
  filter: ((from: Ipv4Address, to: Ipv4Address, bytes: Uint8Array) => boolean) | undefined;

  constructor(
    public faults: NetworkFaults = {},
    seed = 1,
  ) {
    this.rng = new SeededRandom(seed ^ 0x5eed);
  }

  addHost(address: Ipv4Address, options: Partial<TcpOptions> = {}, seed = address, mtu = 1500): Tcp {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the IpSender object closes over its network
    const network = this;
    const ip: IpSender = {
      send(o: IpSendOptions, payload: Uint8Array): IpSendResult {
        network.transmit(o.source ?? address, o.destination, payload);
        return { ok: true, status: 'sent' };
      },
      route(destination: Ipv4Address): RouteChoice | undefined {
        return network.hosts.has(destination) ? { interfaceIndex: 0, source: address, nextHop: destination, mtu } : undefined;
      },
      isLocalAddress(a: Ipv4Address): boolean {
        return a === address;
      },
    };
    const tcp = new Tcp(ip, this.clock, new SeededRandom(seed), options);
    this.hosts.set(address, tcp);
    return tcp;
  }

  hostTcp(address: Ipv4Address | string): Tcp {
    const tcp = this.hosts.get(typeof address === 'string' ? parseIpv4(address) : address);
    if (!tcp) throw new Error(`no host ${String(address)}`);
    return tcp;
  }

  private transmit(from: Ipv4Address, to: Ipv4Address, payload: Uint8Array): void {
    const f = this.faults;
    if (this.filter && !this.filter(from, to, payload)) return;
    const copies = f.duplicate && randomUnit(this.rng) < f.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (f.loss && randomUnit(this.rng) < f.loss) {
        this.dropped++;
        continue;
      }
      let bytes = payload.slice();
      if (f.corrupt && randomUnit(this.rng) < f.corrupt) {
        bytes = bytes.slice();
        const at = Math.floor(randomUnit(this.rng) * bytes.length);
        bytes[at] = bytes[at]! ^ (1 + Math.floor(randomUnit(this.rng) * 255));
      }
      let delay = f.delay ?? 1;
      if (f.reorder && randomUnit(this.rng) < f.reorder) delay += randomUnit(this.rng) * (f.jitter ?? 10);
      this.clock.schedule(delay, () => {
        const host = this.hosts.get(to);
        if (!host) return;
        this.delivered++;
        host.receive(receiveInfo(from, to), bytes);
      });
    }
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

export const F = TcpFlag;
