import { describe, expect, it } from 'vitest';
import { formatIpv4, formatMac, MAC_BROADCAST } from '../../src/wire/address.js';
import { IcmpPacket, IcmpRepr } from '../../src/wire/icmp.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { arpFrame, echoRequest, flush, ip, ipv4Frame, ipv4Of, isArpRequest, isIpv4, lanOf, macOf, scripted, sniff } from './helpers.js';
import { createDgram } from '../../src/socket/dgram.js';

const PEER = macOf(0x22);
const GATEWAY = macOf(0xfe);

describe('Routing', () => {
  it('sends off-link traffic to the default gateway: ARP for the gateway, IP destination unchanged', async () => {
    const { nic, stack } = await scripted();
    stack.routes.add({ destination: '0.0.0.0', prefixLength: 0, gateway: '10.0.0.254', interfaceIndex: 1 });
    void stack.ping('192.0.2.9', { timeoutMs: 100 }).catch(() => undefined);
    const [request] = nic.take();
    expect(isArpRequest(request!)).toBe(true);
    nic.inject(arpFrame(2, GATEWAY, '10.0.0.254', macOf(1), '10.0.0.1'));
    const [echo] = nic.take();
    expect(formatMac(echo!.subarray(0, 6))).toBe(formatMac(GATEWAY));
    expect(formatIpv4(ipv4Of(echo!).destination)).toBe('192.0.2.9');
  });

  it('prefers the longest matching prefix, then the lowest metric', async () => {
    const { stack } = await scripted();
    stack.routes.add({ destination: '0.0.0.0', prefixLength: 0, gateway: '10.0.0.254', interfaceIndex: 1 });
    stack.routes.add({ destination: '192.0.2.0', prefixLength: 24, gateway: '10.0.0.253', interfaceIndex: 1, metric: 20 });
    stack.routes.add({ destination: '192.0.2.0', prefixLength: 24, gateway: '10.0.0.252', interfaceIndex: 1, metric: 10 });
    expect(stack.ip.route(ip('192.0.2.9'))).toMatchObject({ nextHop: ip('10.0.0.252'), source: ip('10.0.0.1'), mtu: 1500 });
    expect(stack.ip.route(ip('198.51.100.1'))?.nextHop).toBe(ip('10.0.0.254'));
    expect(stack.ip.route(ip('10.0.0.77'))?.nextHop).toBe(ip('10.0.0.77'));
    expect(stack.routes.remove({ destination: '192.0.2.0', prefixLength: 24, gateway: '10.0.0.252' })).toBe(1);
    expect(stack.ip.route(ip('192.0.2.9'))?.nextHop).toBe(ip('10.0.0.253'));
  });

  it('without a route, ping rejects with EHOSTUNREACH and nothing is sent', async () => {
    const { nic, stack } = await scripted();
    await expect(stack.ping('192.0.2.9')).rejects.toMatchObject({ code: 'EHOSTUNREACH' });
    expect(nic.take()).toEqual([]);
  });

  it('adding an address adds its on-link route; removing it removes the route', async () => {
    const { stack, iface } = await scripted();
    iface.addAddress('172.16.0.1', 16);
    expect(stack.routes.list().map((r) => `${formatIpv4(r.destination)}/${r.prefixLength}`)).toEqual(['10.0.0.0/24', '172.16.0.0/16']);
    iface.removeAddress('172.16.0.1');
    expect(stack.routes.list()).toHaveLength(1);
  });

  it('routes through an interface whose link is down are skipped: EHOSTUNREACH', async () => {
    const { nic, stack } = await scripted();
    nic.setLink(false);
    await expect(stack.ping('10.0.0.2')).rejects.toMatchObject({ code: 'EHOSTUNREACH' });
  });
});

describe('Fragmentation and reassembly (RFC 791 §3.2)', () => {
  it('a 4000-byte ping goes both ways in fragments whose payloads are multiples of 8, and is reassembled', async () => {
    const { hosts } = await lanOf(2);
    const [a, b] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    const fromA = sniff(a.nic);
    const fromB = sniff(b.nic);
    const reply = await a.stack.ping(b.address, { size: 4000 });
    expect(reply).toMatchObject({ bytes: 4008, from: b.address });
    for (const frames of [fromA, fromB]) {
      const fragments = frames.filter(isIpv4).map(ipv4Of);
      expect(fragments).toHaveLength(3);
      expect(fragments.map((f) => f.fragmentOffset)).toEqual([0, 1480, 2960]);
      expect(fragments.map((f) => f.moreFragments)).toEqual([true, true, false]);
      for (const f of fragments.slice(0, -1)) expect(f.payload.length % 8).toBe(0);
      expect(new Set(fragments.map((f) => f.identification)).size).toBe(1);
    }
    expect(b.stack.reassemblyBytesHeld).toBe(0);
  });

  it('refuses to fragment a datagram marked DF: EMSGSIZE', async () => {
    const { stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const result = stack.ip.send({ destination: ip('10.0.0.2'), protocol: 253, dontFragment: true }, new Uint8Array(1481));
    expect(result).toEqual({ ok: false, code: 'EMSGSIZE' });
    expect(stack.ip.send({ destination: ip('10.0.0.2'), protocol: 253, dontFragment: true }, new Uint8Array(1480))).toEqual({ ok: true, status: 'sent' });
  });

  function fragmentsOf(payload: Uint8Array, pieces: [offset: number, length: number][], identification = 77) {
    return pieces.map(([offset, length]) =>
      ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: IpProtocol.ICMP, identification, fragmentOffset: offset, moreFragments: offset + length < payload.length }, payload.subarray(offset, offset + length)),
    );
  }

  it('reassembles fragments arriving in any order and answers the echo', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const echo = echoRequest(5, 1, new Uint8Array(2000).fill(7));
    for (const f of fragmentsOf(echo, [[1600, 408], [0, 800], [800, 800]])) nic.inject(f);
    const replies = nic.take().map(ipv4Of);
    expect(replies.map((r) => r.fragmentOffset)).toEqual([0, 1480]);
  });

  it('given overlapping fragments, it discards the whole datagram, including fragments still to come (RFC 5722 policy), and counts it', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const echo = echoRequest(5, 1, new Uint8Array(2000).fill(7));
    const [first, overlapping, rest] = fragmentsOf(echo, [[0, 800], [792, 808], [800, 1208]]);
    nic.inject(first!);
    nic.inject(overlapping!);
    nic.inject(rest!);
    expect(nic.take()).toEqual([]);
    expect(stack.counters().ipv4.dropped['fragment-overlap']).toBe(1);
    expect(stack.counters().ipv4.dropped['fragment-of-discarded']).toBe(1);
    expect(stack.reassemblyBytesHeld).toBe(0);
  });

  it('ignores an exact duplicate fragment and still completes the datagram', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const echo = echoRequest(5, 1, new Uint8Array(1000).fill(1));
    const [a, b] = fragmentsOf(echo, [[0, 504], [504, 504]]);
    nic.inject(a!);
    nic.inject(a!);
    nic.inject(b!);
    expect(nic.take()).toHaveLength(1);
    expect(stack.counters().ipv4.dropped['fragment-duplicate']).toBe(1);
  });

  it('given a datagram that never completes, it frees the memory at the timeout and sends ICMP time exceeded (fragment reassembly) because fragment 0 arrived', async () => {
    const { clock, nic, stack } = await scripted({ ipReassemblyTimeoutMs: 15_000 });
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const echo = echoRequest(5, 1, new Uint8Array(2000));
    nic.inject(fragmentsOf(echo, [[0, 800]])[0]!);
    expect(stack.reassemblyBytesHeld).toBe(800);
    clock.advance(14_999);
    expect(nic.take()).toEqual([]);
    clock.advance(1);
    expect(stack.reassemblyBytesHeld).toBe(0);
    expect(stack.counters().ipv4.dropped['reassembly-timeout']).toBe(1);
    const [error] = nic.take();
    const icmp = IcmpPacket.check(ipv4Of(error!).payload);
    if (!icmp.ok) throw new Error();
    expect(IcmpRepr.parse(icmp)).toMatchObject({ type: 'time-exceeded', code: 1 });
  });

  it('does not send time exceeded when fragment 0 never arrived', async () => {
    const { clock, nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    nic.inject(fragmentsOf(echoRequest(5, 1, new Uint8Array(2000)), [[800, 800]])[0]!);
    clock.advance(20_000);
    expect(nic.take()).toEqual([]);
  });

  it('bounds reassembly memory: a flood of incomplete datagrams never holds more than ipReassemblyMaxBytes', async () => {
    const { nic, stack } = await scripted({ ipReassemblyMaxBytes: 10_000, ipReassemblyMaxDatagrams: 100 });
    const echo = echoRequest(5, 1, new Uint8Array(3000));
    for (let id = 0; id < 50; id++) {
      nic.inject(fragmentsOf(echo, [[0, 1480]], id)[0]!);
      expect(stack.reassemblyBytesHeld).toBeLessThanOrEqual(10_000);
    }
    expect(stack.counters().ipv4.dropped['reassembly-evicted']).toBeGreaterThan(40);
  });

  it('rejects a non-last fragment whose length is not a multiple of 8', async () => {
    const { nic, stack } = await scripted();
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1, moreFragments: true }, new Uint8Array(100)));
    expect(stack.counters().ipv4.dropped['fragment-bad-length']).toBe(1);
  });
});

describe('IPv4 input', () => {
  it('drops a datagram with a bad header checksum, counted', async () => {
    const { nic, stack } = await scripted();
    const frame = ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1 }, echoRequest(1, 1, new Uint8Array(8)));
    frame[14 + 8] = 1; // TTL changed, checksum not
    nic.inject(frame);
    expect(nic.take()).toEqual([]);
    expect(stack.counters().ipv4.dropped['bad-checksum']).toBe(1);
  });

  it('drops unicast for someone else (a host does not forward), counted', async () => {
    const { nic, stack } = await scripted();
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.3', protocol: 1 }, echoRequest(1, 1, new Uint8Array(8))));
    expect(stack.counters().ipv4.dropped['not-for-us']).toBe(1);
  });

  it('drops datagrams from a broadcast or multicast source (RFC 1122 §3.2.1.3)', async () => {
    const { nic, stack } = await scripted();
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '224.0.0.9', destination: '10.0.0.1', protocol: 1 }, echoRequest(1, 1, new Uint8Array(8))));
    expect(stack.counters().ipv4.dropped['martian-source-multicast']).toBe(1);
  });

  it('sends with TTL 64 by default and the ttl asked for; reports the TTL of the reply', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    void stack.ping('10.0.0.2', { ttl: 3, timeoutMs: 10 }).catch(() => undefined);
    expect(ipv4Of(nic.take()[0]!).ttl).toBe(3);
    const socket = createDgram(stack.udp).createSocket();
    socket.send('x', 9, '10.0.0.2');
    await flush();
    expect(ipv4Of(nic.take()[0]!).ttl).toBe(64);
  });

  it('delivers limited and directed broadcasts to every host on the LAN', async () => {
    const { hosts } = await lanOf(3);
    const got: string[] = [];
    for (const h of hosts.slice(1)) {
      const s = createDgram(h.stack.udp).createSocket();
      s.bind(5000);
      s.on('message', (m) => got.push(`${h.address}:${m.toString()}`));
    }
    await flush();
    const sender = createDgram(hosts[0]!.stack.udp).createSocket();
    sender.setBroadcast(true);
    sender.send('limited', 5000, '255.255.255.255');
    sender.send('directed', 5000, '10.0.0.255');
    await flush();
    expect(got.sort()).toEqual(['10.0.0.2:directed', '10.0.0.2:limited', '10.0.0.3:directed', '10.0.0.3:limited']);
    const frames = sniff(hosts[0]!.nic);
    sender.send('again', 5000, '255.255.255.255');
    await flush();
    expect(formatMac(frames[0]!.subarray(0, 6))).toBe(formatMac(MAC_BROADCAST));
  });
});
