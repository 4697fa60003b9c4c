import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack, type StackConfig } from '../../src/stack/stack.js';
import type { StackOptions } from '../../src/options.js';
import { emptyNicStats, type Nic, type NicHandlers, type NicStats } from '../../src/link/nic.js';
import { parseIpv4, parseMac, type MacAddress } from '../../src/wire/address.js';
import { EthernetRepr, EtherType } from '../../src/wire/ethernet.js';
import { ArpOperation, ArpPacket, ArpRepr } from '../../src/wire/arp.js';
import { Ipv4Packet, Ipv4Repr } from '../../src/wire/ipv4.js';
import { IcmpRepr } from '../../src/wire/icmp.js';
import { UdpRepr } from '../../src/wire/udp.js';
import type { NetInterface } from '../../src/link/interface.js';

export const macOf = (n: number): MacAddress => parseMac(`02:00:00:00:00:${n.toString(16).padStart(2, '0')}`);
export const ip = parseIpv4;

/** A Nic the test drives by hand: records what the stack transmits, injects what it receives. */
export class ScriptedNic implements Nic {
  readonly capabilities = { maxFrameSize: 1514, multicastFilter: false, rxCrcCheck: true };
  readonly sent: Uint8Array[] = [];
  private handlers: NicHandlers | undefined;
  private up = false;
  private readonly counters: NicStats = emptyNicStats();

  constructor(
    readonly mac: MacAddress,
    readonly name = 'scripted',
    readonly mtu = 1500,
  ) {}

  get linkUp(): boolean {
    return this.up;
  }
  attach(handlers: NicHandlers): void {
    this.handlers = handlers;
  }
  async start(): Promise<void> {
    this.setLink(true);
  }
  async stop(): Promise<void> {
    this.setLink(false);
  }
  setLink(up: boolean): void {
    this.up = up;
    this.handlers?.linkChange(up);
  }
  transmit(frame: Uint8Array): boolean {
    if (!this.up) return false;
    this.counters.txFrames++;
    this.sent.push(frame);
    return true;
  }
  inject(frame: Uint8Array): void {
    this.counters.rxFrames++;
    this.handlers!.receive(frame);
  }
  /** Take and clear what was sent so far. */
  take(): Uint8Array[] {
    return this.sent.splice(0);
  }
  stats(): NicStats {
    return this.counters;
  }
}

export interface Host {
  stack: Stack;
  iface: NetInterface;
  nic: VirtualNic;
  address: string;
}

/** `count` stacks on one VirtualLan, 10.0.0.(i+1)/24, MAC 02:00:00:00:00:0(i+1). */
export async function lanOf(count: number, options: Partial<StackOptions> = {}) {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const hosts: Host[] = [];
  for (let i = 0; i < count; i++) {
    const nic = new VirtualNic(lan, macOf(i + 1), `vnic${i + 1}`);
    const stack = new Stack({ clock, random: new SeededRandom(1000 + i), options });
    const iface = stack.addInterface(nic);
    await stack.start();
    const address = `10.0.0.${i + 1}`;
    iface.addAddress(address, 24);
    hosts.push({ stack, iface, nic, address });
  }
  // Let the gratuitous ARPs pass before the test begins.
  clock.advance(1);
  return { clock, lan, hosts };
}

/** One stack on a ScriptedNic at 10.0.0.1/24 (MAC :01); the test plays every other host. */
export async function scripted(options: Partial<StackOptions> = {}, config: Pick<StackConfig, 'reportContained'> = {}) {
  const clock = new VirtualClock();
  const nic = new ScriptedNic(macOf(1));
  const stack = new Stack({ clock, random: new SeededRandom(7), options, ...config });
  const iface = stack.addInterface(nic);
  await stack.start();
  iface.addAddress('10.0.0.1', 24);
  nic.take();
  return { clock, nic, stack, iface };
}

// ---- frame builders and readers for scripted tests ----

export function arpFrame(op: 1 | 2, senderMac: MacAddress, senderIp: string, targetMac: MacAddress, targetIp: string, destination?: MacAddress): Uint8Array {
  const frame = new Uint8Array(42);
  const at = EthernetRepr.emit({ destination: destination ?? (op === 1 ? parseMac('ff:ff:ff:ff:ff:ff') : targetMac), source: senderMac, etherType: EtherType.ARP }, frame);
  ArpRepr.emit({ operation: op, senderMac, senderIp: ip(senderIp), targetMac, targetIp: ip(targetIp) }, frame, at);
  return frame;
}

export function ipv4Frame(
  from: MacAddress,
  to: MacAddress,
  fields: { source: string; destination: string; protocol: number; ttl?: number; identification?: number; moreFragments?: boolean; fragmentOffset?: number; dontFragment?: boolean },
  payload: Uint8Array,
): Uint8Array {
  const frame = new Uint8Array(14 + 20 + payload.length);
  EthernetRepr.emit({ destination: to, source: from, etherType: EtherType.IPV4 }, frame);
  Ipv4Repr.emit(
    {
      source: ip(fields.source),
      destination: ip(fields.destination),
      protocol: fields.protocol,
      payloadLength: payload.length,
      ttl: fields.ttl ?? 64,
      identification: fields.identification ?? 1,
      moreFragments: fields.moreFragments ?? false,
      fragmentOffset: fields.fragmentOffset ?? 0,
      dontFragment: fields.dontFragment ?? false,
    },
    frame,
    14,
  );
  frame.set(payload, 34);
  return frame;
}

export function udpDatagram(source: string, destination: string, sourcePort: number, destinationPort: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  UdpRepr.emit({ sourcePort, destinationPort }, out, 0, ip(source), ip(destination), data);
  return out;
}

export function echoRequest(identifier: number, sequence: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.length);
  IcmpRepr.emit({ type: 'echo-request', identifier, sequence, data }, out);
  return out;
}

export function etherTypeOf(frame: Uint8Array): number {
  return (frame[12]! << 8) | frame[13]!;
}

export function arpOf(frame: Uint8Array): ArpRepr {
  const p = ArpPacket.check(frame.subarray(14));
  if (!p.ok) throw new Error(`not ARP: ${p.reason}`);
  return ArpRepr.parse(p);
}

export function ipv4Of(frame: Uint8Array): Ipv4Packet {
  const p = Ipv4Packet.check(frame.subarray(14));
  if (!p.ok) throw new Error(`not IPv4: ${p.reason}`);
  return p;
}

export const isArpRequest = (f: Uint8Array) => etherTypeOf(f) === EtherType.ARP && arpOf(f).operation === ArpOperation.REQUEST;
export const isArpReply = (f: Uint8Array) => etherTypeOf(f) === EtherType.ARP && arpOf(f).operation === ArpOperation.REPLY;
export const isIpv4 = (f: Uint8Array) => etherTypeOf(f) === EtherType.IPV4;

/** Records every frame each host transmits (wraps Nic.transmit). */
export function sniff(nic: Nic): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const original = nic.transmit.bind(nic);
  nic.transmit = (frame: Uint8Array) => {
    frames.push(frame);
    return original(frame);
  };
  return frames;
}

/** Resolve once pending microtasks ran (socket events are microtasks, like process.nextTick). */
export const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};
