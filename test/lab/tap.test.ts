import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createLab, skipLabUnless, waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { TapAttachment, TapError, parseLanSpec } from '../../hal/lan/tap.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { RealClock } from '../../src/time/real-clock.js';
import { formatMac, parseIpv4, parseMac } from '../../src/wire/address.js';
import { EtherType, EthernetFrame, EthernetRepr, ETHERNET_HEADER_LENGTH } from '../../src/wire/ethernet.js';
import { ArpOperation, ArpPacket, ArpRepr } from '../../src/wire/arp.js';
import { IpProtocol, Ipv4Packet, Ipv4Repr } from '../../src/wire/ipv4.js';
import { IcmpPacket, IcmpRepr } from '../../src/wire/icmp.js';

const skip = await skipLabUnless(['ping']);
const OUR_MAC = parseMac('02:00:00:00:5e:10');
const OUR_IP = parseIpv4(LAB_STACK_ADDRESS);
const HOST_IP = parseIpv4(LAB_HOST_ADDRESS);

type Seen = { kind: 'arp-request'; senderMac: string; senderIp: number; targetIp: number } | { kind: 'echo-request'; destinationMac: string; id: number; seq: number; bytes: Uint8Array };

function classify(frame: Uint8Array): Seen | undefined {
  const eth = EthernetFrame.check(frame);
  if (!eth.ok) return undefined;
  if (eth.etherType === EtherType.ARP) {
    const arp = ArpPacket.check(eth.payload);
    if (!arp.ok || arp.operation !== ArpOperation.REQUEST) return undefined;
    const repr = ArpRepr.parse(arp);
    return { kind: 'arp-request', senderMac: formatMac(repr.senderMac), senderIp: repr.senderIp, targetIp: repr.targetIp };
  }
  if (eth.etherType === EtherType.IPV4) {
    const ip = Ipv4Packet.check(eth.payload);
    if (!ip.ok || ip.protocol !== IpProtocol.ICMP) return undefined;
    const icmp = IcmpPacket.check(ip.payload);
    if (!icmp.ok) return undefined;
    const repr = IcmpRepr.parse(icmp);
    if (!('type' in repr) || repr.type !== 'echo-request') return undefined;
    return { kind: 'echo-request', destinationMac: formatMac(eth.destination), id: repr.identifier, seq: repr.sequence, bytes: frame };
  }
  return undefined;
}

function arpReply(hostMac: Uint8Array): Uint8Array {
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + ArpRepr.bufferLength);
  const at = EthernetRepr.emit({ destination: hostMac, source: OUR_MAC, etherType: EtherType.ARP }, frame);
  ArpRepr.emit({ operation: ArpOperation.REPLY, senderMac: OUR_MAC, senderIp: OUR_IP, targetMac: hostMac, targetIp: HOST_IP }, frame, at);
  return frame;
}

/** RFC 792 echo reply to an echo request frame, built by hand (no stack involved). */
function echoReply(request: Uint8Array): Uint8Array {
  const eth = EthernetFrame.check(request) as EthernetFrame;
  const ip = Ipv4Packet.check(eth.payload) as Ipv4Packet;
  const icmp = IcmpRepr.parse(IcmpPacket.check(ip.payload) as IcmpPacket);
  if (!('type' in icmp) || icmp.type !== 'echo-request') throw new Error('not an echo request');
  const reply: IcmpRepr = { type: 'echo-reply', identifier: icmp.identifier, sequence: icmp.sequence, data: icmp.data };
  const icmpLength = IcmpRepr.bufferLength(reply);
  const frame = new Uint8Array(ETHERNET_HEADER_LENGTH + Ipv4Repr.headerLength + icmpLength);
  let at = EthernetRepr.emit({ destination: eth.source, source: OUR_MAC, etherType: EtherType.IPV4 }, frame);
  at = Ipv4Repr.emit({ source: OUR_IP, destination: ip.source, protocol: IpProtocol.ICMP, payloadLength: icmpLength, ttl: 64 }, frame, at);
  IcmpRepr.emit(reply, frame, at);
  return frame;
}

describe('parseLanSpec', () => {
  it('accepts sim and tap:IFNAME, and rejects anything else with EINVAL', () => {
    expect(parseLanSpec('sim')).toEqual({ kind: 'sim' });
    expect(parseLanSpec('tap:spinet0')).toEqual({ kind: 'tap', ifname: 'spinet0' });
    expect(() => parseLanSpec('tap:')).toThrow(TapError);
    expect(() => parseLanSpec('tap:much-too-long-name')).toThrow(/Invalid interface name/);
    expect(() => parseLanSpec('eth0')).toThrow(/sim.*tap:IFNAME/);
  });
});

describe.skipIf(skip)('a VirtualNic on a VirtualLan bridged to a TAP in a namespace', () => {
  let lab: Lab;
  let nic: VirtualNic;
  const seen: Seen[] = [];
  let answerPings = false;

  beforeAll(async () => {
    lab = await createLab();
    const lan = new VirtualLan(new RealClock());
    lab.tap.attachTo(lan);
    nic = new VirtualNic(lan, OUR_MAC, 'spinet0');
    nic.attach({
      receive: (frame) => {
        const s = classify(frame);
        if (!s) return;
        seen.push(s);
        if (answerPings && s.kind === 'echo-request') nic.transmit(echoReply(s.bytes));
      },
      linkChange: () => {},
    });
    await nic.start();
  });
  afterAll(() => lab?.close());

  it("the kernel's ARP request for our address reaches the NIC", async () => {
    const ping = lab.exec('ping', ['-c', '1', '-W', '1', LAB_STACK_ADDRESS]);
    const request = await waitFor(() => seen.find((s) => s.kind === 'arp-request' && s.targetIp === OUR_IP), 5_000, 'ARP who-has');
    expect(request).toMatchObject({ senderIp: HOST_IP });
    // Nobody answered: the kernel's ping fails.
    expect((await ping).code).not.toBe(0);
  });

  it("a hand-built ARP reply fills the kernel's neighbour table, and its echo request then comes to our MAC", async () => {
    const request = seen.find((s) => s.kind === 'arp-request')!;
    const hostMac = parseMac(request.kind === 'arp-request' ? request.senderMac : '');
    const ping = lab.exec('ping', ['-c', '1', '-W', '1', LAB_STACK_ADDRESS]);
    // Answer the next who-has (the kernel asks again for the new ping).
    const before = seen.length;
    await waitFor(() => seen.slice(before).find((s) => s.kind === 'arp-request'), 5_000, 'second ARP who-has');
    expect(nic.transmit(arpReply(hostMac))).toBe(true);
    const echo = await waitFor(() => seen.slice(before).find((s) => s.kind === 'echo-request'), 5_000, 'ICMP echo request');
    expect(echo).toMatchObject({ destinationMac: formatMac(OUR_MAC) });
    expect(await lab.neighbour(LAB_STACK_ADDRESS)).toContain(`lladdr ${formatMac(OUR_MAC)}`);
    await ping;
    expect(lab.tap.stats.toKernelFrames).toBeGreaterThan(0);
    expect(lab.tap.stats.fromKernelFrames).toBeGreaterThan(0);
  });

  it('hand-built echo replies complete the kernel’s ping, so frames flow both ways', async () => {
    answerPings = true;
    const result = await lab.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
    expect(result.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(result.code).toBe(0);
  });
});

describe.skipIf(skip)('TapAttachment lifecycle and errors', () => {
  it('removes the TAP with socat on close, and the namespace with the lab', async () => {
    const lab = await createLab({ ifname: 'sp-life0' });
    expect((await lab.exec('ip', ['-o', 'addr', 'show', 'dev', 'sp-life0'])).stdout).toContain(`${LAB_HOST_ADDRESS}/24`);
    expect(lab.tap.running).toBe(true);
    await lab.close();
    expect(lab.tap.running).toBe(false);
    expect(existsSync(`/run/netns/${lab.netns}`)).toBe(false);
    await lab.close();
  });

  it('reports a cut cable: deleting the interface under socat calls onExit with the reason', async () => {
    const lab = await createLab({ ifname: 'sp-cut0' });
    try {
      const exited = new Promise<string>((resolve) => lab.tap.onExit(resolve));
      await lab.exec('ip', ['link', 'del', 'sp-cut0']);
      expect(await exited).toMatch(/^socat exited/);
      expect(lab.tap.running).toBe(false);
    } finally {
      await lab.close();
    }
  });

  it('opens a TAP in our own namespace and gives it the --tap-addr address', async () => {
    const tap = await TapAttachment.open({ ifname: `sp${process.pid % 100000}r`, address: '192.0.2.1/24', mtu: 1400 });
    try {
      const shown = execFileSync('ip', ['-o', 'addr', 'show', 'dev', tap.ifname], { encoding: 'utf8' });
      expect(shown).toContain('192.0.2.1/24');
      expect(execFileSync('ip', ['-o', 'link', 'show', 'dev', tap.ifname], { encoding: 'utf8' })).toContain('mtu 1400');
    } finally {
      await tap.close();
    }
    expect(existsSync(`/sys/class/net/${tap.ifname}`)).toBe(false);
  });

  it('fails with clear codes: bad name, bad address, missing namespace, name in use', async () => {
    await expect(TapAttachment.open({ ifname: 'bad name' })).rejects.toMatchObject({ code: 'EINVAL' });
    await expect(TapAttachment.open({ ifname: 'sp0', address: '192.0.2.1/33' })).rejects.toMatchObject({ code: 'EINVAL', message: /--tap-addr/ });
    await expect(TapAttachment.open({ ifname: 'sp0', netns: 'spinet-no-such-ns' })).rejects.toMatchObject({ code: 'ENOENT', message: /does not exist/ });
    await expect(TapAttachment.open({ ifname: 'lo' })).rejects.toMatchObject({ code: 'EEXIST' });
    await expect(TapAttachment.open({ ifname: 'sp0', socatPath: '/nonexistent/socat' })).rejects.toMatchObject({ code: 'ENOENT', message: /socat not found/ });
  });
});
