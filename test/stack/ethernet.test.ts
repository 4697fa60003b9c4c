import { describe, expect, it } from 'vitest';
import { macKey, parseMac, type MacAddress } from '../../src/wire/address.js';
import { EthernetRepr } from '../../src/wire/ethernet.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import type { Stack } from '../../src/stack/stack.js';
import { flush, ipv4Frame, macOf, scripted, udpDatagram } from './helpers.js';
import { createDgram } from '../../src/socket/dgram.js';

const PEER = macOf(0x22);
const US = macOf(1);

/** A UDP datagram from 10.0.0.2:4000 to `destination`:`port`, in a frame to `to`. */
function udpFrame(to: MacAddress, destination: string, port: number, text: string): Uint8Array {
  return ipv4Frame(PEER, to, { source: '10.0.0.2', destination, protocol: IpProtocol.UDP }, udpDatagram('10.0.0.2', destination, 4000, port, new TextEncoder().encode(text)));
}

function frameOfType(etherType: number, to: MacAddress = US, from: MacAddress = PEER, length = 60): Uint8Array {
  const frame = new Uint8Array(length);
  EthernetRepr.emit({ destination: to, source: from, etherType }, frame);
  return frame;
}

/** A UDP socket bound to `port`, and the texts of the datagrams it receives. */
async function listening(stack: Stack, port: number) {
  const socket = createDgram(stack.udp).createSocket();
  const got: string[] = [];
  socket.on('message', (msg: Buffer) => got.push(msg.toString()));
  socket.bind(port);
  await flush();
  return { socket, got };
}

describe('Ethernet receive filter: unicast to us, broadcast, joined multicast; everything else a counted drop', () => {
  it('a unicast frame for another MAC is dropped as wrong-mac; the same frame to our MAC is delivered', async () => {
    const { nic, stack } = await scripted();
    const { got } = await listening(stack, 5000);
    nic.inject(udpFrame(macOf(0x33), '10.0.0.1', 5000, 'not for us'));
    await flush();
    expect(got).toEqual([]);
    expect(stack.counters().ethernet.dropped['wrong-mac']).toBe(1);
    nic.inject(udpFrame(US, '10.0.0.1', 5000, 'for us'));
    await flush();
    expect(got).toEqual(['for us']);
    expect(stack.counters().ethernet.dropped['wrong-mac']).toBe(1);
  });

  it('a multicast group is heard only while a socket is a member of it', async () => {
    const { nic, stack } = await scripted();
    const { socket, got } = await listening(stack, 5000);
    // 239.1.2.3 → 01:00:5e:01:02:03 (RFC 1112 §6.4)
    const groupMac = parseMac('01:00:5e:01:02:03');
    nic.inject(udpFrame(groupMac, '239.1.2.3', 5000, 'before joining'));
    await flush();
    expect(got).toEqual([]);
    expect(stack.counters().ethernet.dropped['multicast-not-joined']).toBe(1);

    socket.addMembership('239.1.2.3');
    nic.inject(udpFrame(groupMac, '239.1.2.3', 5000, 'member'));
    // another group on the same port stays filtered
    nic.inject(udpFrame(parseMac('01:00:5e:01:02:04'), '239.1.2.4', 5000, 'other group'));
    await flush();
    expect(got).toEqual(['member']);
    expect(stack.counters().ethernet.dropped['multicast-not-joined']).toBe(2);

    socket.dropMembership('239.1.2.3');
    nic.inject(udpFrame(groupMac, '239.1.2.3', 5000, 'after leaving'));
    await flush();
    expect(got).toEqual(['member']);
    expect(stack.counters().ethernet.dropped['multicast-not-joined']).toBe(3);
  });

  it('broadcast reaches a socket that allows it', async () => {
    const { nic, stack } = await scripted();
    const { got } = await listening(stack, 5000);
    nic.inject(udpFrame(parseMac('ff:ff:ff:ff:ff:ff'), '10.0.0.255', 5000, 'to all'));
    await flush();
    expect(got).toEqual(['to all']);
  });

  it('unknown EtherTypes, 802.3 length frames, runts and our own frames echoed back are counted by reason', async () => {
    const { nic, stack } = await scripted();
    nic.inject(frameOfType(0x86dd)); // IPv6: not spoken here
    nic.inject(frameOfType(0x88cc)); // LLDP
    nic.inject(frameOfType(0x0040)); // an IEEE 802.3 length field, not a type
    nic.inject(new Uint8Array(10)); // shorter than an Ethernet header
    const echoed = udpFrame(US, '10.0.0.1', 5000, 'x');
    echoed.set(US, 6); // from our own MAC: a looped port or a hub
    nic.inject(echoed);
    await flush();
    const ethernet = stack.counters().ethernet;
    expect(ethernet.received).toBe(5);
    expect(ethernet.dropped).toEqual({ 'unknown-ethertype': 2, 'ieee802.3-length': 1, runt: 1, 'own-frame': 1 });
    // nothing above Ethernet saw any of them
    expect(stack.counters().ipv4.received).toBe(0);
    expect(stack.counters().arp.received).toBe(0);
  });
});

describe('VirtualLan: a learning switch', () => {
  it('floods a frame to an unknown MAC, then forwards to the learned port only; broadcast always floods', () => {
    const lan = new VirtualLan(new VirtualClock());
    const seen: Record<string, number> = { a: 0, b: 0, c: 0 };
    const ports = Object.fromEntries(['a', 'b', 'c'].map((label) => [label, lan.plug({ label, deliver: () => seen[label]!++ })]));
    const mac = { a: macOf(0xa), b: macOf(0xb), c: macOf(0xc) };
    const unicast = (to: MacAddress, from: MacAddress) => frameOfType(0x0800, to, from);

    ports['a']!.send(unicast(mac.b, mac.a)); // b not learned yet: flooded to b and c
    expect(seen).toEqual({ a: 0, b: 1, c: 1 });
    ports['b']!.send(unicast(mac.a, mac.b)); // a learned from the first frame: to a only
    expect(seen).toEqual({ a: 1, b: 1, c: 1 });
    ports['a']!.send(unicast(mac.b, mac.a)); // b learned now: to b only
    expect(seen).toEqual({ a: 1, b: 2, c: 1 });
    ports['c']!.send(frameOfType(0x0806, parseMac('ff:ff:ff:ff:ff:ff'), mac.c)); // broadcast: everyone else
    expect(seen).toEqual({ a: 2, b: 3, c: 1 });
    expect(lan.describe()).toEqual(expect.arrayContaining([`02:00:00:00:00:0a -> a`, `02:00:00:00:00:0b -> b`, `02:00:00:00:00:0c -> c`]));

    // a port unplugged is forgotten: frames to its MAC flood again
    ports['b']!.unplug();
    ports['a']!.send(unicast(mac.b, mac.a));
    expect(seen).toEqual({ a: 2, b: 3, c: 2 });
  });

  it('tells apart MACs that differ only in their first two octets (the lab gateway 02:5e:… and a host 02:00:…)', () => {
    expect(macKey(parseMac('02:5e:00:00:00:01'))).not.toBe(macKey(parseMac('02:00:00:00:00:01')));
    expect(macKey(parseMac('ff:ff:00:00:00:00'))).toBe(0xffff00000000);
    const lan = new VirtualLan(new VirtualClock());
    const seen: Record<string, number> = { gw: 0, host: 0, other: 0 };
    const ports = Object.fromEntries(['gw', 'host', 'other'].map((label) => [label, lan.plug({ label, deliver: () => seen[label]!++ })]));
    const gw = parseMac('02:5e:00:00:00:01');
    const host = parseMac('02:00:00:00:00:01');
    ports['gw']!.send(frameOfType(0x0800, parseMac('ff:ff:ff:ff:ff:ff'), gw));
    ports['host']!.send(frameOfType(0x0800, parseMac('ff:ff:ff:ff:ff:ff'), host));
    expect(seen).toEqual({ gw: 1, host: 1, other: 2 });
    ports['other']!.send(frameOfType(0x0800, gw, macOf(0x99)));
    ports['other']!.send(frameOfType(0x0800, host, macOf(0x99)));
    expect(seen).toEqual({ gw: 2, host: 2, other: 2 });
  });
});
