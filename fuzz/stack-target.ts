import fc from 'fast-check';
import { VirtualClock } from '../src/time/virtual-clock.js';
import { SeededRandom } from '../src/time/random.js';
import { VirtualNic } from '../hal/lan/switch.js';
import { ImpairedLan } from '../hal/lan/impairment.js';
import { NicWrapper } from '../src/link/nic-wrapper.js';
import { Stack } from '../src/stack/stack.js';
import { Tcp, type TcpConnection } from '../src/tcp/tcp.js';
import { startUdpService } from '../src/app/services/udp.js';
import { createStackResolver } from '../src/app/stack-adapter.js';
import { DnsAuthoritativeServer } from '../src/app/dns/server.js';
import { stackDatagrams } from '../src/app/stack-adapter.js';
import { IpProtocol, Ipv4Packet } from '../src/wire/ipv4.js';
import { TcpFlag } from '../src/wire/tcp.js';
import { EtherType } from '../src/wire/ethernet.js';
import { parseMac, type Ipv4Address } from '../src/wire/address.js';
import type { StackCountersSnapshot } from '../src/stats/counters.js';
import { applyEdits, boundaryByte, type Edit } from './mutate.js';
import { arp, ethernet, fixChecksums, icmp, ipv4, ipv4Frame, tcp, udp } from './frames.js';
import { FuzzInvariantError, invariant } from './parsers.js';

/**
 * The whole receive path under fire. A victim stack (10.0.0.1: TCP echo on 7, UDP echo on 7, a
 * resolver asking the peer every second) and a peer (10.0.0.2: DNS server, a TCP sink on 9) share
 * a virtual LAN; two transfers run all the time, peer → victim's echo and back, and victim → the
 * peer's sink, each checked byte for byte. Between the legitimate frames, the attacker hands the
 * victim's NIC one hostile frame per input: random bytes, an edited copy of a frame it saw on the
 * LAN (checksums recomputed or not), spoofed datagrams from martian and on-link sources, fragments
 * in every layout, ICMP errors quoting the victim's own datagrams, ARP, UDP to its services and to
 * its resolver, TCP floods and segments aimed at the live connections.
 *
 * The attacker is blind to the connections' sequence space: a segment it sends on a live
 * connection's 4-tuple with a right checksum has its sequence number moved out of the window (an
 * attacker who can read the traffic can always inject data or a RST into plain TCP; no stack can
 * stop that, and byte-exactness would then test nothing but that). Everything else is fair game.
 *
 * After every input: nothing thrown, nothing contained (an exception caught at a boundary is a
 * bug here), the clock's callback limit not hit; every `checkEvery` inputs the counters are
 * consistent and the state bounded. `finish()` stops the attack, lets the transfers end and checks
 * them byte-exact, then pings both ways.
 */

export const VICTIM = 0x0a000001;
export const PEER = 0x0a000002;
const VICTIM_MAC = parseMac('02:00:00:00:00:01');
const PEER_MAC = parseMac('02:00:00:00:00:02');
const ATTACKER_MAC = parseMac('02:00:00:00:00:66');
const BROADCAST_MAC = parseMac('ff:ff:ff:ff:ff:ff');

function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

/** One hostile input: the family and the numbers it is realised from against what the attacker saw. */
export interface Attack {
  readonly family: number;
  readonly pick: number;
  readonly edits: readonly Edit[];
  readonly fix: boolean;
  readonly a: number;
  readonly b: number;
  readonly c: number;
  readonly d: number;
  readonly bytes: Uint8Array;
  /** Virtual time until the next input, µs. */
  readonly stepUs: number;
}

export const FAMILIES = ['random', 'edited', 'spoofed-ip', 'fragment', 'icmp-error', 'arp', 'udp', 'tcp', 'ping'] as const;

export const attackArbitrary: fc.Arbitrary<Attack> = fc.record({
  family: fc.integer({ min: 0, max: FAMILIES.length - 1 }),
  pick: fc.nat(),
  edits: fc.array(
    fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: boundaryByte }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    ),
    { minLength: 1, maxLength: 3 },
  ),
  fix: fc.boolean(),
  a: fc.integer({ min: 0, max: 0xffffffff }),
  b: fc.integer({ min: 0, max: 0xffffffff }),
  c: fc.integer({ min: 0, max: 0xffff }),
  d: fc.integer({ min: 0, max: 0xffff }),
  bytes: fc.uint8Array({ maxLength: 96 }),
  stepUs: fc.integer({ min: 0, max: 2_000 }),
});

/** The victim's NIC with a side door for the attacker's frames. */
class InjectingNic extends NicWrapper {
  injected = 0;
  inject(frame: Uint8Array): void {
    this.injected++;
    this.handlers?.receive(frame);
  }
}

/** Byte i of every transfer's stream: a fixed pseudo-random sequence, so any byte out of place shows. */
export function streamByte(i: number): number {
  return (Math.imul(i, 0x9e3779b1) >>> 24) ^ (i & 0xff);
}

/** One direction of traffic over one connection, checked as it arrives. */
class Transfer {
  sent = 0;
  received = 0;
  done = false;
  failure: string | undefined;

  constructor(
    readonly name: string,
    readonly total: number,
  ) {}

  /** Fill `connection`'s send buffer from the stream. */
  pump(connection: TcpConnection): void {
    while (this.sent < this.total) {
      const n = Math.min(connection.writableSpace, this.total - this.sent, 16 * 1024);
      if (n <= 0) return;
      const chunk = new Uint8Array(n);
      for (let i = 0; i < n; i++) chunk[i] = streamByte(this.sent + i);
      const written = connection.write(chunk);
      if (typeof written === 'string') {
        this.failure = `${this.name}: write ${written} after ${this.sent} bytes`;
        return;
      }
      this.sent += written;
      if (written < n) return;
    }
  }

  /** Check what arrived against the stream. */
  check(data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      if (data[i] !== streamByte(this.received + i)) {
        this.failure ??= `${this.name}: byte ${this.received + i} is ${data[i]}, not ${streamByte(this.received + i)}`;
        return;
      }
    }
    this.received += data.length;
    if (this.received > this.total) this.failure ??= `${this.name}: ${this.received} bytes of ${this.total}`;
  }
}

export interface StackFuzzReport {
  readonly inputs: number;
  readonly byFamily: Readonly<Record<string, number>>;
  readonly transfersCompleted: number;
  readonly bytesVerified: number;
  readonly virtualSeconds: number;
  readonly victimCounters: StackCountersSnapshot;
  readonly victimTcp: unknown;
  readonly maxHeldTimers: number;
  /** Most connections the victim held at once, TIME-WAIT left out. */
  readonly maxConnections: number;
}

export class StackUnderFire {
  readonly clock = new VirtualClock();
  private readonly lan: ImpairedLan;
  readonly victim: Stack;
  readonly peer: Stack;
  readonly victimTcp: Tcp;
  readonly peerTcp: Tcp;
  private readonly nic: InjectingNic;
  /** Frames seen on the LAN (the victim's and the peer's), newest last. */
  private readonly seen: Uint8Array[] = [];
  private readonly transfers = new Set<Transfer>();
  private readonly echoChecks = new Set<Transfer>();
  private readonly connections = new Set<TcpConnection>();
  private completed = 0;
  private verified = 0;
  inputs = 0;
  readonly byFamily: Record<string, number> = Object.fromEntries(FAMILIES.map((f) => [f, 0]));
  private lastCounters: StackCountersSnapshot | undefined;
  private maxHeldTimers = 0;
  private maxConnections = 0;
  private resolverTimer = 0;
  private readonly lookups = { ok: 0, failed: 0 };
  private attacking = true;

  private constructor(
    readonly seed: number,
    readonly transferBytes: number,
  ) {
    this.clock.callbackLimit = 200_000;
    // A 10 Mbit/s LAN with 0.1 ms of delay: frames take clock turns, so TCP does not recurse.
    this.lan = new ImpairedLan(this.clock, { seed });
    this.lan.impairAll({ toPort: { delayMs: 0.1, rateBytesPerSecond: 1_250_000 } });
    const victimNic = new VirtualNic(this.lan, VICTIM_MAC, 'victim0');
    this.nic = new InjectingNic(victimNic);
    const peerNic = new VirtualNic(this.lan, PEER_MAC, 'peer0');
    this.victim = new Stack({ clock: this.clock, random: new SeededRandom(seed), reportContained: () => undefined });
    this.peer = new Stack({ clock: this.clock, random: new SeededRandom(seed + 1), reportContained: () => undefined });
    this.victim.addInterface(this.nic);
    this.peer.addInterface(peerNic);
    this.victimTcp = new Tcp(this.victim.ip, this.clock, new SeededRandom(seed + 2), {}, this.victim.containment);
    this.peerTcp = new Tcp(this.peer.ip, this.clock, new SeededRandom(seed + 3), {}, this.peer.containment);
    this.victim.registerTransport(this.victimTcp);
    this.peer.registerTransport(this.peerTcp);
    for (const nic of [victimNic, peerNic]) {
      const transmit = nic.transmit.bind(nic);
      nic.transmit = (frame: Uint8Array) => {
        this.remember(frame);
        return transmit(frame);
      };
    }
  }

  static async create(seed = 1, transferBytes = 256 * 1024): Promise<StackUnderFire> {
    const s = new StackUnderFire(seed, transferBytes);
    await s.victim.start();
    await s.peer.start();
    s.victim.interfaces[0]!.addAddress(VICTIM, 24);
    s.peer.interfaces[0]!.addAddress(PEER, 24);
    s.victim.dnsServers = [PEER];
    await startUdpService(s.victim, 'echo', 7);
    new DnsAuthoritativeServer({ transport: stackDatagrams(s.peer), zone: 'lan', records: [{ name: 'peer.lan', type: 'A', address: PEER }] }).start();
    s.listenEcho();
    s.listenSink();
    s.startTransfers();
    s.clock.advance(10);
    return s;
  }

  // ------------------------------------------------------------------ the legitimate traffic

  /** The victim's TCP echo (port 7), on the connection API so it runs inside the clock's turn. */
  private listenEcho(): void {
    const listener = this.victimTcp.listen({ port: 7, backlog: 64 });
    if (typeof listener === 'string') throw new Error(listener);
    listener.onConnection = () => {
      for (let c = listener.accept(); c; c = listener.accept()) {
        const connection = c;
        const pending: Uint8Array[] = [];
        // The victim checks what it is sent too, so a corruption is pinned to the side it happened on.
        const inbound = new Transfer(`victim's echo of ${connection.remotePort}`, Infinity);
        this.echoChecks.add(inbound);
        const flush = () => {
          while (pending.length > 0) {
            const head = pending[0]!;
            const n = connection.write(head);
            if (typeof n === 'string') return;
            if (n < head.length) {
              pending[0] = head.subarray(n);
              return;
            }
            pending.shift();
          }
          if (connection.endOfStream && connection.readableLength === 0) connection.close();
        };
        connection.events = {
          onReadable: () => {
            while (connection.readableLength > 0) {
              const data = connection.read(16 * 1024);
              inbound.check(data);
              pending.push(data);
            }
            if (connection.endOfStream) this.echoChecks.delete(inbound);
            flush();
          },
          onWritable: flush,
          onError: () => undefined,
        };
      }
    };
  }

  /** The peer's sink (port 9): checks the victim's stream. */
  private listenSink(): void {
    const listener = this.peerTcp.listen({ port: 9, backlog: 64 });
    if (typeof listener === 'string') throw new Error(listener);
    listener.onConnection = () => {
      for (let c = listener.accept(); c; c = listener.accept()) {
        const connection = c;
        const transfer = [...this.transfers].find((t) => t.name.startsWith('victim→peer') && t.received === 0 && !t.done && (t as { sink?: boolean }).sink !== true);
        if (transfer) (transfer as { sink?: boolean }).sink = true;
        connection.events = {
          onReadable: () => {
            while (connection.readableLength > 0) transfer?.check(connection.read());
            if (connection.endOfStream) {
              if (transfer) this.finishTransfer(transfer);
              connection.close();
            }
          },
          onError: (code) => {
            if (transfer && !transfer.done) transfer.failure ??= `${transfer.name}: sink ${code}`;
          },
        };
      }
    };
  }

  private startTransfers(): void {
    this.startEchoTransfer();
    this.startSinkTransfer();
  }

  /** The peer sends the stream to the victim's echo and checks what comes back. */
  private startEchoTransfer(): void {
    const transfer = new Transfer(`peer→victim echo #${this.completed}`, this.transferBytes);
    this.transfers.add(transfer);
    const connection = this.peerTcp.connect({ remoteAddress: VICTIM, remotePort: 7 });
    if (typeof connection === 'string') throw new Error(connection);
    this.connections.add(connection);
    connection.events = {
      onConnect: () => transfer.pump(connection),
      onWritable: () => transfer.pump(connection),
      onReadable: () => {
        while (connection.readableLength > 0) transfer.check(connection.read());
        if (transfer.received === transfer.total && !transfer.done) {
          connection.close();
          this.connections.delete(connection);
          this.finishTransfer(transfer);
          if (this.attacking) this.startEchoTransfer();
        }
      },
      onError: (code) => (transfer.failure ??= `${transfer.name}: ${code} after ${transfer.received} of ${transfer.total} bytes`),
    };
    // On a synchronous LAN the handshake ends inside connect(), before the events were set.
    if (connection.state === 'ESTABLISHED') transfer.pump(connection);
  }

  /** The victim sends the stream to the peer's sink. */
  private startSinkTransfer(): void {
    const transfer = new Transfer(`victim→peer #${this.completed}`, this.transferBytes);
    this.transfers.add(transfer);
    const connection = this.victimTcp.connect({ remoteAddress: PEER, remotePort: 9 });
    if (typeof connection === 'string') throw new Error(connection);
    this.connections.add(connection);
    const pump = () => {
      transfer.pump(connection);
      if (transfer.sent === transfer.total) connection.shutdown();
    };
    connection.events = {
      onConnect: pump,
      onWritable: pump,
      onClosed: () => this.connections.delete(connection),
      onError: (code) => (transfer.failure ??= `${transfer.name}: ${code} after ${transfer.sent} bytes sent`),
    };
    if (connection.state === 'ESTABLISHED') pump();
  }

  private finishTransfer(transfer: Transfer): void {
    if (transfer.done) return;
    if (transfer.received !== transfer.total) transfer.failure ??= `${transfer.name}: ended after ${transfer.received} of ${transfer.total} bytes`;
    transfer.done = true;
    this.transfers.delete(transfer);
    this.completed++;
    this.verified += transfer.received;
    if (transfer.name.startsWith('victim→peer') && this.attacking) this.startSinkTransfer();
  }

  private remember(frame: Uint8Array): void {
    this.seen.push(frame);
    if (this.seen.length > 64) this.seen.shift();
  }

  // ------------------------------------------------------------------ the attack

  /** Build the frame an attack stands for, against what the attacker has seen. */
  realize(attack: Attack): Uint8Array {
    const frame = this.build(attack);
    this.blind(frame);
    return frame;
  }

  private build(attack: Attack): Uint8Array {
    const family = FAMILIES[attack.family]!;
    const { a, b, c, d } = attack;
    const seen = this.seen.length > 0 ? this.seen[attack.pick % this.seen.length]! : new Uint8Array(60);
    const source = this.spoofedSource(a);
    switch (family) {
      case 'random':
        return ethernet(a & 1 ? BROADCAST_MAC : VICTIM_MAC, ATTACKER_MAC, c, attack.bytes);
      case 'edited': {
        const frame = applyEdits(seen, attack.edits);
        if (frame.length >= 14) frame.set(VICTIM_MAC, 0);
        // Blinded before the checksums are made right; without that, edits that cancel in the
        // internet checksum (two flips of one bit in opposite directions) would keep a replayed
        // segment with its sniffed sequence number valid — an on-path attack.
        this.blind(frame);
        if (attack.fix) fixChecksums(frame);
        return frame;
      }
      case 'spoofed-ip': {
        const protocol = [IpProtocol.ICMP, IpProtocol.TCP, IpProtocol.UDP, b & 0xff][b >>> 30]!;
        const packet = ipv4({ source, destination: d & 1 ? VICTIM : [0x7f000001, 0xffffffff, 0x0a0000ff, 0, 0xe0000001][d % 5]!, protocol, ttl: c & 0xff, identification: c }, attack.bytes);
        if (d & 2 && packet.length >= 24) {
          // IP options: IHL grown over the first payload words (RFC 791 §3.1 kinds or garbage).
          const words = 1 + (d >>> 2) % 10;
          packet[0] = 0x40 | Math.min(15, 5 + words);
        }
        return ethernet(VICTIM_MAC, ATTACKER_MAC, EtherType.IPV4, packet);
      }
      case 'fragment': {
        // A few datagram ids only, so fragments of one datagram meet in every layout.
        const offset = (c % 64) * 8 * (1 + (d % 3) * 8);
        const length = [0, 8, 40, 48, 96, 512, 1480][d % 7]!;
        const payload = attack.bytes.length >= length ? attack.bytes.subarray(0, length) : new Uint8Array(length).fill(a & 0xff);
        const from = b & 1 ? PEER : source;
        return ipv4Frame(VICTIM_MAC, ATTACKER_MAC, { source: from, destination: VICTIM, protocol: [IpProtocol.UDP, IpProtocol.ICMP, IpProtocol.TCP][a % 3]!, identification: b % 4, fragmentOffset: offset, moreFragments: (a & 2) === 0 }, payload);
      }
      case 'icmp-error': {
        const type = [3, 3, 3, 11, 12, 4, 5][b % 7]!;
        const code = type === 3 ? [0, 1, 2, 3, 4, 13][c % 6]! : c % 3;
        const mtu = [0, 68, 296, 552, 576, 1006, 1280, 1492, d][d % 9]!;
        // A path MTU is news about the path, which TCP takes down to its floor (552), not an
        // attack on the connection: that one quotes the real sequence number, whatever the MTU.
        const quoted = this.quoteOfOurs(attack.pick, a, !(type === 3 && code === 4));
        const repr = type === 3 ? { type: 'destination-unreachable' as const, code, nextHopMtu: mtu, quote: quoted } : type === 11 ? { type: 'time-exceeded' as const, code, quote: quoted } : type === 12 ? { type: 'parameter-problem' as const, code, pointer: d & 0xff, quote: quoted } : { type: 'other' as const, rawType: type, code, rest: a, data: quoted };
        return ipv4Frame(VICTIM_MAC, ATTACKER_MAC, { source: b & 8 ? PEER : source, destination: VICTIM, protocol: IpProtocol.ICMP }, icmp(repr));
      }
      case 'arp': {
        // Never the peer's address: poisoning it is an on-path attack (spoofed ARP for a live
        // neighbour redirects its traffic, and no cache can tell), the locktime only narrows it.
        const senderIp = [source, VICTIM, 0, (VICTIM & 0xffffff00) | (2 + (a % 250)) + 1][b % 4]!;
        const sender = senderIp === PEER ? PEER + 1 : senderIp;
        const mac = c & 1 ? ATTACKER_MAC : Uint8Array.of(c & 0xff, 2, 3, 4, 5, d & 0xff);
        return ethernet(d & 1 ? BROADCAST_MAC : VICTIM_MAC, mac, EtherType.ARP, arp(b & 2 ? 2 : 1, mac, sender, VICTIM_MAC, d & 2 ? VICTIM : a));
      }
      case 'udp': {
        const resolverPort = this.resolverPort(attack.pick);
        const port = [7, 9, 19, 53, 67, 68, resolverPort, c][d % 8]!;
        const sourcePort = [0, 7, 19, 53, 67, d][c % 6]!;
        const from = b & 1 ? PEER : source;
        return ipv4Frame(VICTIM_MAC, ATTACKER_MAC, { source: from, destination: VICTIM, protocol: IpProtocol.UDP }, udp(from, VICTIM, sourcePort, port, attack.bytes));
      }
      case 'tcp': {
        const live = [...this.connections];
        const connection = live.length > 0 && b & 1 ? live[attack.pick % live.length] : undefined;
        // A SYN on the tuple of a connection still opening is a simultaneous open (RFC 9293
        // §3.10.7.3): it needs no sequence number, only the ephemeral port, and takes over the
        // handshake in every stack. That is knowledge of the tuple, not blindness; leave it out.
        const opening = connection !== undefined && (connection.state === 'SYN-SENT' || connection.state === 'SYN-RECEIVED');
        const flags = c & 0x1ff & (opening ? ~TcpFlag.SYN : 0x1ff);
        const payload = attack.bytes;
        const onLive = connection !== undefined;
        // A live connection's tuple, with a sequence number no blind attacker would hit: a quarter
        // of the sequence space away from what the victim's side expects next.
        const victimSide = connection?.localAddress === VICTIM;
        const expected = onLive ? (victimSide ? connection.rcvNxt : connection.sndNxt) : 0;
        const sequence = onLive ? (expected + 0x40000000 + (a & 0xffff)) >>> 0 : a;
        const from = onLive ? (victimSide ? connection.remoteAddress : connection.localAddress) : d & 1 ? PEER : source;
        const segment = tcp(from, VICTIM, {
          sourcePort: onLive ? (victimSide ? connection.remotePort : connection.localPort) : [80, 7, 9, d][d % 4]!,
          destinationPort: onLive ? (victimSide ? connection.localPort : connection.remotePort) : [7, 9, 80, c][(c >>> 9) % 4]!,
          sequence,
          acknowledgment: b,
          flags,
          window: d,
          payload,
          ...(flags & TcpFlag.SYN ? { maxSegmentSize: c, windowScale: d % 16, sackPermitted: (d & 1) === 1, timestamp: { value: a, echo: b } } : {}),
        });
        const sourceAddress = d % 97 === 0 ? VICTIM : from;
        return ipv4Frame(VICTIM_MAC, ATTACKER_MAC, { source: sourceAddress, destination: VICTIM, protocol: IpProtocol.TCP }, segment);
      }
      case 'ping':
        return ipv4Frame(VICTIM_MAC, ATTACKER_MAC, { source: b & 1 ? PEER : source, destination: c & 1 ? VICTIM : 0xffffffff, protocol: IpProtocol.ICMP }, icmp({ type: 'echo-request', identifier: c, sequence: d, data: attack.bytes }));
    }
  }

  /** Sources an attacker on the LAN spoofs: on-link hosts, the victim itself, martians. */
  private spoofedSource(a: number): Ipv4Address {
    return [(VICTIM & 0xffffff00) | (3 + (a % 250)), VICTIM, 0x7f000001, 0, 0xe0000005, 0xffffffff, 0x0a0000ff, 0xf0000001, a >>> 0][(a >>> 8) % 9]!;
  }

  /** The victim's resolver's port, from a query it sent (0 before one went out). */
  private resolverPort(pick: number): number {
    for (let i = 0; i < this.seen.length; i++) {
      const f = this.seen[(pick + i) % this.seen.length]!;
      if (f.length >= 42 && f[23] === IpProtocol.UDP && f[36] === 0 && f[37] === 53) return (f[34]! << 8) | f[35]!;
    }
    return 0;
  }

  /** An IPv4 datagram the victim sent, for an ICMP error to quote (sequence moved off if it is a live connection's). */
  private quoteOfOurs(pick: number, a: number, blind: boolean): Uint8Array {
    for (let i = 0; i < this.seen.length; i++) {
      const f = this.seen[(pick + i) % this.seen.length]!;
      if (f.length < 42 || f[12] !== 0x08 || f[13] !== 0x00) continue;
      const packet = Ipv4Packet.check(f.subarray(14));
      if (!packet.ok || packet.source !== VICTIM) continue;
      const quote = f.slice(14, 14 + Math.min(packet.totalLength, packet.headerLength + 8 + (a % 64)));
      if (blind) this.blindQuote(quote);
      return quote;
    }
    return new Uint8Array(28);
  }

  /**
   * Keep the attacker blind: a TCP segment the victim would take as one of a live connection's
   * (its tuple, and a sequence number within 16 MiB of what the victim expects next) has its
   * sequence moved a quarter of the space away — whatever edits made it, even ones that cancel in
   * the checksum. And an ARP packet stops speaking for the peer.
   */
  private blind(frame: Uint8Array): void {
    if (frame.length >= 42 && frame[12] === 0x08 && frame[13] === 0x06 && readU32(frame, 28) === PEER) {
      frame[31] = frame[31]! ^ 0x80;
      return;
    }
    if (frame.length < 14 + 20 || frame[12] !== 0x08 || frame[13] !== 0x00) return;
    const packet = Ipv4Packet.check(frame.subarray(14));
    if (!packet.ok || packet.protocol !== IpProtocol.TCP || packet.isFragment) return;
    const at = 14 + packet.headerLength;
    if (at + 8 > frame.length) return;
    const sourcePort = (frame[at]! << 8) | frame[at + 1]!;
    const destinationPort = (frame[at + 2]! << 8) | frame[at + 3]!;
    const connection = this.victimTcp.findConnection(packet.destination, destinationPort, packet.source, sourcePort);
    if (!connection) return;
    if (connection.state === 'SYN-SENT') {
      // Before the handshake ends the victim knows no sequence number of the peer's; all it checks
      // is that the ACK is ISS + 1 (RFC 9293 §3.10.7.3). A frame replayed from the wire carries it
      // (a SYN-ACK sniffed before it reached the victim, on a busy LAN): on-path knowledge, so the
      // acknowledgment is moved a quarter of the space away instead.
      const acknowledgment = readU32(frame, at + 8);
      if (Math.abs((acknowledgment - connection.sndNxt) | 0) < 1 << 24) frame[at + 8] = frame[at + 8]! ^ 0x40;
      return;
    }
    const sequence = readU32(frame, at + 4);
    const distance = (sequence - connection.rcvNxt) | 0;
    if (Math.abs(distance) < 1 << 24) frame[at + 4] = frame[at + 4]! ^ 0x40;
  }

  /** The same for a quoted TCP header: an ICMP error about a sequence no blind attacker knows is dropped. */
  private blindQuote(quote: Uint8Array): void {
    if (quote[9] !== IpProtocol.TCP) return;
    const at = (quote[0]! & 0x0f) * 4 + 4;
    if (at < quote.length) quote[at] = quote[at]! ^ 0x40;
  }

  /** Hand one hostile input to the victim, then let `stepUs` of virtual time pass. `before` sees the frame first. */
  feed(attack: Attack, before?: (frame: Uint8Array) => void): Uint8Array {
    const frame = this.realize(attack);
    before?.(frame);
    this.inputs++;
    this.byFamily[FAMILIES[attack.family]!]!++;
    this.nic.inject(frame);
    this.afterInput(attack.stepUs / 1000);
    return frame;
  }

  private afterInput(stepMs: number): void {
    invariant(this.victim.containment.total === 0, `an exception was contained at a layer boundary (${this.victim.containment.total})`);
    invariant(this.peer.containment.total === 0, 'an exception was contained in the peer');
    this.clock.advance(stepMs);
    if (this.clock.now() >= this.resolverTimer) {
      this.resolverTimer = this.clock.now() + 1_000;
      void createStackResolverOnce(this)
        .lookup('peer.lan', { family: 4 })
        .then(
          () => this.lookups.ok++,
          () => this.lookups.failed++,
        );
    }
    for (const t of this.transfers) if (t.failure) throw new FuzzInvariantError(t.failure);
    for (const t of this.echoChecks) if (t.failure) throw new FuzzInvariantError(t.failure);
  }

  /** Counters consistent, state bounded. Cheap enough to run every few hundred inputs. */
  checkInvariants(): void {
    const c = this.victim.counters();
    invariant(c.ethernet.received === this.nic.stats().rxFrames + this.nic.injected, `ethernet.received ${c.ethernet.received} ≠ frames given ${this.nic.stats().rxFrames + this.nic.injected}`);
    for (const [layer, counters] of Object.entries(c)) {
      for (const [name, value] of [['received', counters.received], ['sent', counters.sent], ...Object.entries(counters.dropped)] as [string, number][]) {
        invariant(Number.isInteger(value) && value >= 0, `${layer}.${name} = ${value}`);
        const before = this.lastCounters?.[layer as keyof StackCountersSnapshot];
        const previous = name === 'received' ? before?.received : name === 'sent' ? before?.sent : before?.dropped[name];
        invariant(previous === undefined || value >= previous, `${layer}.${name} went back from ${previous} to ${value}`);
      }
    }
    invariant(c.udp.received + c.icmp.received + this.victimTcp.stats.segmentsReceived <= c.ipv4.received, 'transports received more than IPv4 delivered');
    this.lastCounters = c;
    const o = this.victim.options;
    invariant(this.victim.reassemblyBytesHeld >= 0 && this.victim.reassemblyBytesHeld <= o.ipReassemblyMaxBytes, `reassembly holds ${this.victim.reassemblyBytesHeld} bytes`);
    invariant(this.victim.arp.entries().length <= o.arpCacheSize, 'ARP cache over its size');
    this.maxHeldTimers = Math.max(this.maxHeldTimers, this.clock.heldTimers);
    invariant(this.clock.heldTimers < 5_000, `the clock holds ${this.clock.heldTimers} timers`);
    // What an attacker can make the victim hold: half-open connections, up to the SYN backlog (then
    // cookies). TIME-WAIT is the transfers' own (each finished one leaves one for 2 MSL).
    const open = this.victimTcp.socketTable().filter((r) => r.state !== 'TIME-WAIT' && r.state !== 'LISTEN').length;
    this.maxConnections = Math.max(this.maxConnections, open);
    invariant(open <= this.victimTcp.options.synBacklog + 16, `victim holds ${open} connections besides TIME-WAIT`);
  }

  /** Stop attacking, let the transfers end, check them, ping both ways. */
  async finish(limitMs = 600_000): Promise<StackFuzzReport> {
    this.attacking = false;
    const end = this.clock.now() + limitMs;
    while (this.transfers.size > 0 && this.clock.now() < end) {
      this.clock.advance(10);
      for (const t of this.transfers) if (t.failure) throw new FuzzInvariantError(t.failure);
    }
    invariant(this.transfers.size === 0, `transfers still open after ${limitMs} ms: ${[...this.transfers].map((t) => `${t.name} ${t.received}/${t.total}`).join(', ')}`);
    const toVictim = this.peer.ping(VICTIM, { timeoutMs: 2_000 });
    const toPeer = this.victim.ping(PEER, { timeoutMs: 2_000 });
    for (let i = 0; i < 300; i++) {
      this.clock.advance(10);
      await Promise.resolve();
    }
    await toVictim;
    await toPeer;
    this.checkInvariants();
    invariant(this.victim.containment.total === 0, 'an exception was contained');
    return {
      inputs: this.inputs,
      byFamily: { ...this.byFamily },
      transfersCompleted: this.completed,
      bytesVerified: this.verified,
      virtualSeconds: this.clock.now() / 1000,
      victimCounters: this.victim.counters(),
      victimTcp: this.victim.transportCounters().tcp,
      maxHeldTimers: this.maxHeldTimers,
      maxConnections: this.maxConnections,
    };
  }
}

const resolvers = new WeakMap<StackUnderFire, ReturnType<typeof createStackResolver>>();
function createStackResolverOnce(s: StackUnderFire): ReturnType<typeof createStackResolver> {
  let resolver = resolvers.get(s);
  if (!resolver) {
    resolver = createStackResolver(s.victim);
    resolvers.set(s, resolver);
  }
  return resolver;
}
