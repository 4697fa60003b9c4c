import { describe, expect, it } from 'vitest';
import { startUdpService } from '../../src/app/services/udp.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { SeededRandom } from '../../src/time/random.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { formatMac, MAC_ZERO, parseMac } from '../../src/wire/address.js';
import { TcpFlag, TcpRepr } from '../../src/wire/tcp.js';
import { createNet } from '../../src/socket/net.js';
import { createDgram } from '../../src/socket/dgram.js';
import { Containment } from '../../src/stats/containment.js';
import { arpFrame, arpOf, echoRequest, flush, ip, ipv4Frame, ipv4Of, lanOf, macOf, scripted, udpDatagram } from './helpers.js';
import { runFor } from '../tcp/net-harness.js';

/**
 * A hostile peer on the LAN, one frame at a time. Every test runs with a callback limit on the
 * virtual clock, so a frame that makes the stack answer itself for ever fails the test instead of
 * hanging it.
 */
const PEER = macOf(0x22);
const US = '10.0.0.1';

async function guarded() {
  const s = await scripted();
  s.clock.callbackLimit = 10_000;
  s.stack.arp.addStatic(1, '10.0.0.2', PEER);
  return s;
}

describe('single frames that used to hang or crash the stack', () => {
  it('a UDP datagram "from" our own echo port to our echo port is dropped, not answered to ourselves for ever', async () => {
    const { clock, nic, stack } = await guarded();
    await startUdpService(stack, 'echo', 7);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: US, destination: US, protocol: IpProtocol.UDP }, udpDatagram(US, US, 7, 7, new TextEncoder().encode('loop'))));
    await flush();
    clock.advance(1_000);
    await flush();
    expect(nic.take()).toEqual([]);
    expect(stack.counters().ipv4.dropped['martian-source-own']).toBe(1);
    expect(stack.counters().udp.received).toBe(0);
  });

  it('a LAND SYN (our address and port on both sides) is dropped, not answered by its own SYN-ACK for ever', async () => {
    const { clock, nic, stack } = await guarded();
    const tcp = new Tcp(stack.ip, clock, new SeededRandom(5));
    stack.registerTransport(tcp);
    tcp.listen({ port: 80 });
    const syn = TcpRepr.toBytes({ sourcePort: 80, destinationPort: 80, sequence: 1000, acknowledgment: 0, flags: TcpFlag.SYN, window: 65535, payload: new Uint8Array(0) }, ip(US), ip(US));
    nic.inject(ipv4Frame(PEER, macOf(1), { source: US, destination: US, protocol: IpProtocol.TCP }, syn));
    clock.advance(10_000);
    expect(nic.take()).toEqual([]);
    expect(tcp.connectionCount).toBe(0);
    expect(stack.counters().ipv4.dropped['martian-source-own']).toBe(1);
  });

  it('when the last fragment arrives, fragments already held past the new total length drop the datagram (no RangeError)', async () => {
    const { clock, nic, stack } = await guarded();
    const fragment = (offset: number, more: boolean) =>
      ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: US, protocol: IpProtocol.UDP, identification: 9, fragmentOffset: offset, moreFragments: more }, new Uint8Array(48).fill(offset));
    nic.inject(fragment(0, true));
    nic.inject(fragment(144, true));
    // The last fragment says the payload is 144 bytes: 0–48, (hole 48–96), 96–144 — and 144–192 is beyond it.
    expect(() => nic.inject(fragment(96, false))).not.toThrow();
    expect(stack.counters().ipv4.dropped['fragment-beyond-end']).toBe(1);
    expect(stack.reassemblyBytesHeld).toBe(0);
    clock.advance(30_000);
    expect(nic.take()).toEqual([]);
  });

  it('a UDP datagram from source port 0 to the echo service is not answered, and nothing throws out of the receive path', async () => {
    const { clock, nic, stack } = await guarded();
    await startUdpService(stack, 'echo', 7);
    const frame = ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: US, protocol: IpProtocol.UDP }, udpDatagram('10.0.0.2', US, 0, 7, new TextEncoder().encode('no reply')));
    expect(() => nic.inject(frame)).not.toThrow();
    await flush();
    clock.advance(1_000);
    expect(nic.take()).toEqual([]);
    expect(stack.counters().udp.received).toBe(1);
  });
});

describe('exceptions in handlers stop at the layer boundary', () => {
  const fromPeer = (port: number) => ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: US, protocol: IpProtocol.UDP }, udpDatagram('10.0.0.2', US, 4000, port, new Uint8Array(4)));

  it("a UDP socket's message handler that throws is counted every time and reported once; the stack keeps answering", async () => {
    const reported: string[] = [];
    const { nic, stack } = await scripted({}, { reportContained: (site) => reported.push(site) });
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const socket = createDgram(stack.udp).createSocket();
    socket.on('message', () => {
      throw new Error('application bug');
    });
    socket.bind(5000);
    await flush();
    for (let i = 0; i < 3; i++) expect(() => nic.inject(fromPeer(5000))).not.toThrow();
    expect(stack.counters().udp.dropped['socket-threw']).toBe(3);
    expect(stack.containment.total).toBe(3);
    expect(reported).toEqual(['a UDP socket message handler']);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: US, protocol: IpProtocol.ICMP }, echoRequest(1, 1, new Uint8Array(8))));
    expect(nic.take()).toHaveLength(1);
  });

  it('a stack event listener that throws does not undo the address change that emitted it', async () => {
    const reported: string[] = [];
    const { stack, iface } = await scripted({}, { reportContained: (site) => reported.push(site) });
    stack.on('event', () => {
      throw new Error('listener bug');
    });
    expect(() => iface.addAddress('10.0.1.1', 24)).not.toThrow();
    expect(iface.hasAddress(ip('10.0.1.1'))).toBe(true);
    expect(reported).toEqual(["a 'event' listener"]);
  });

  it("a TCP socket's data handler that throws is counted by TCP; the connection and the stack carry on", async () => {
    const reported: string[] = [];
    const { clock, hosts } = await lanOf(2);
    const [server, client] = hosts as [typeof hosts[0], typeof hosts[0]];
    const serverTcp = new Tcp(server.stack.ip, clock, new SeededRandom(1), {}, new Containment((site) => reported.push(site)));
    server.stack.registerTransport(serverTcp);
    const clientTcp = new Tcp(client.stack.ip, clock, new SeededRandom(2));
    client.stack.registerTransport(clientTcp);
    const received: string[] = [];
    createNet(serverTcp)
      .createServer((socket) => {
        socket.on('data', (d: Buffer) => {
          received.push(d.toString());
          if (received.length === 1) throw new Error('handler bug');
        });
      })
      .listen(80);
    const socket = createNet(clientTcp).createConnection(80, server.address);
    await runFor(clock, 100);
    socket.write('one');
    await runFor(clock, 100);
    socket.write('two');
    await runFor(clock, 100);
    expect(received.join('')).toBe('onetwo');
    expect(serverTcp.stats.callbackExceptions).toBe(1);
    expect(reported).toEqual(['a TCP socket callback']);
  });
});

describe('IPv4 fragments in every layout: one answer each, counted', () => {
  /** An echo request of `size` bytes, cut as `pieces` ([offset, length, more?]); `more` defaults to "not the end". */
  function cut(size: number, pieces: [offset: number, length: number, more?: boolean][], identification = 77) {
    // Bytes past the echo, for pieces that run past its end.
    const bytes = new Uint8Array(size + 256);
    bytes.set(echoRequest(5, 1, new Uint8Array(size - 8).map((_, i) => i)));
    return pieces.map(([offset, length, more]) =>
      ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: US, protocol: IpProtocol.ICMP, identification, fragmentOffset: offset, moreFragments: more ?? offset + length < size }, bytes.subarray(offset, offset + length)),
    );
  }

  async function send(frames: Uint8Array[], options = {}) {
    const s = await scripted(options);
    s.stack.arp.addStatic(1, '10.0.0.2', PEER);
    for (const f of frames) expect(() => s.nic.inject(f)).not.toThrow();
    return { ...s, replies: s.nic.take(), dropped: s.stack.counters().ipv4.dropped };
  }

  it.each([
    ['in order', [[0, 400], [400, 400], [800, 200]]],
    ['in reverse', [[800, 200], [400, 400], [0, 400]]],
    ['last first, then the middle, then the first', [[800, 200], [0, 400], [400, 400]]],
    ['with an empty last fragment', [[0, 504], [504, 496, true], [1000, 0, false]]],
  ] as const)('reassembles and answers when the pieces come %s', async (_, pieces) => {
    const { replies, stack } = await send(cut(1000, pieces.map((p) => [...p])));
    expect(replies).toHaveLength(1);
    expect(ipv4Of(replies[0]!).totalLength).toBe(1020);
    expect(stack.reassemblyBytesHeld).toBe(0);
  });

  it.each([
    ['starts inside the previous one', [[0, 400], [392, 408], [800, 200]], 'fragment-overlap'],
    ['ends inside the next one', [[400, 400], [0, 408], [800, 200]], 'fragment-overlap'],
    ['covers a held one', [[400, 400], [0, 800], [800, 200]], 'fragment-overlap'],
    ['lies inside a held one', [[0, 800], [400, 200], [800, 200]], 'fragment-overlap'],
    ['shares a start but not an end with a held one', [[0, 400], [0, 800], [800, 200]], 'fragment-overlap'],
    ['overlaps the last fragment', [[800, 200], [400, 408], [0, 400]], 'fragment-overlap'],
    ['runs past the total length the last one gave', [[800, 200], [1000, 48, true], [0, 400]], 'fragment-beyond-end'],
    ['is a second last fragment that disagrees', [[800, 200], [400, 400, false], [0, 400]], 'fragment-inconsistent-length'],
    ['is a tiny piece that is not the last (RFC 791: 68 octets pass whole)', [[0, 40, true], [40, 960]], 'fragment-tiny'],
    ['is a non-last piece not a multiple of 8', [[0, 404, true], [404, 596]], 'fragment-bad-length'],
  ] as const)('drops the whole datagram, fragments still to come included, when a fragment %s', async (_, pieces, reason) => {
    const { replies, stack, dropped } = await send(cut(1000, pieces.map((p) => [...p])));
    expect(replies).toEqual([]);
    expect(dropped[reason]).toBe(1);
    expect(stack.reassemblyBytesHeld).toBe(0);
  });

  it('ignores an exact duplicate (counted) and still completes', async () => {
    const { replies, dropped } = await send(cut(1000, [[0, 504], [0, 504], [504, 496], [504, 496]]));
    expect(replies).toHaveLength(1);
    expect(dropped['fragment-duplicate']).toBe(1);
  });

  it('drops a datagram cut into more pieces than ipReassemblyMaxFragments', async () => {
    const pieces: [number, number][] = Array.from({ length: 20 }, (_, i) => [i * 48, 48]);
    const fine = await send(cut(960, pieces), { ipReassemblyMaxFragments: 20 });
    expect(fine.replies).toHaveLength(1);
    const { replies, dropped, stack } = await send(cut(960, pieces), { ipReassemblyMaxFragments: 19 });
    expect(replies).toEqual([]);
    expect(dropped['fragment-too-many']).toBe(1);
    expect(stack.reassemblyBytesHeld).toBe(0);
  });

  it('holds no more than ipReassemblyMaxBytes: the oldest datagram is evicted, the newest completes', async () => {
    const frames = [
      ...cut(3000, [[0, 1480]], 1),
      ...cut(3000, [[0, 1480]], 2),
      ...cut(3000, [[0, 1480]], 3),
      ...cut(3000, [[1480, 1480], [2960, 40]], 3),
    ];
    const { replies, dropped, stack } = await send(frames, { ipReassemblyMaxBytes: 4000 });
    expect(dropped['reassembly-evicted']).toBe(2);
    // The 3000-byte reply, in three fragments.
    expect(replies.map((f) => ipv4Of(f).fragmentOffset)).toEqual([0, 1480, 2960]);
    expect(stack.reassemblyBytesHeld).toBe(0);
  });

  it('holds at most ipReassemblyMaxDatagrams at once: a flood of first fragments evicts the oldest', async () => {
    const flood = Array.from({ length: 40 }, (_, id) => cut(1000, [[0, 496]], id)[0]!);
    const { dropped, stack } = await send(flood, { ipReassemblyMaxDatagrams: 8 });
    expect(dropped['reassembly-evicted']).toBe(32);
    expect(stack.reassemblyBytesHeld).toBe(8 * 496);
  });

  it('copies fragment data: a held fragment does not keep its whole receive buffer alive', async () => {
    const { clock, nic, stack } = await scripted();
    const frame = cut(1000, [[0, 496]])[0]!;
    const buffer = new Uint8Array(65536);
    buffer.set(frame, 1000);
    nic.inject(buffer.subarray(1000, 1000 + frame.length));
    buffer.fill(0xee);
    nic.inject(cut(1000, [[496, 504]])[0]!);
    expect(stack.counters().icmp.received).toBe(1);
    clock.advance(1);
    expect(stack.counters().icmp.dropped).toEqual({});
  });
});

describe('martian filtering (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7): never answered, each class counted', () => {
  const ping = (source: string, destination = US) => ipv4Frame(PEER, macOf(1), { source, destination, protocol: IpProtocol.ICMP }, echoRequest(1, 1, new Uint8Array(8)));

  it.each([
    ['one of our own addresses', US, 'martian-source-own'],
    ['our second address', '10.0.1.1', 'martian-source-own'],
    ['loopback', '127.0.0.1', 'martian-source-loopback'],
    ['a host on "this network" (0/8)', '0.1.2.3', 'martian-source-this-network'],
    ['0.0.0.0 to a unicast address', '0.0.0.0', 'martian-source-this-network'],
    ['multicast', '224.0.0.9', 'martian-source-multicast'],
    ['the limited broadcast', '255.255.255.255', 'martian-source-broadcast'],
    ["our subnet's directed broadcast", '10.0.0.255', 'martian-source-broadcast'],
    ['class E', '240.0.0.1', 'martian-source-class-e'],
  ])('drops a datagram from %s (%s)', async (_, source, reason) => {
    const { nic, stack, iface } = await guarded();
    iface.addAddress('10.0.1.1', 24);
    nic.take();
    nic.inject(ping(source));
    expect(nic.take()).toEqual([]);
    expect(stack.counters().ipv4.dropped).toEqual({ [reason]: 1 });
    expect(stack.counters().icmp.received).toBe(0);
  });

  it.each([
    ['loopback', '127.0.0.1', 'martian-destination-loopback'],
    ['0.0.0.0', '0.0.0.0', 'martian-destination-this-network'],
  ])('drops a datagram to %s that came from the wire', async (_, destination, reason) => {
    const { nic, stack } = await guarded();
    nic.inject(ping('10.0.0.2', destination));
    expect(nic.take()).toEqual([]);
    expect(stack.counters().ipv4.dropped).toEqual({ [reason]: 1 });
  });

  it('accepts 0.0.0.0 to the limited broadcast: a host without an address yet (DHCP, RFC 2131 §4.1)', async () => {
    const { nic, stack } = await guarded();
    const server = createDgram(stack.udp).createSocket();
    const got: string[] = [];
    server.on('message', (_m, rinfo: { address: string }) => got.push(rinfo.address));
    server.bind(67);
    await flush();
    nic.inject(ipv4Frame(PEER, parseMac('ff:ff:ff:ff:ff:ff'), { source: '0.0.0.0', destination: '255.255.255.255', protocol: IpProtocol.UDP }, udpDatagram('0.0.0.0', '255.255.255.255', 68, 67, new Uint8Array(8))));
    expect(got).toEqual(['0.0.0.0']);
    expect(stack.counters().ipv4.dropped).toEqual({});
  });

  it('still talks to itself over loopback (the filter is for the wire only)', async () => {
    const { clock, stack } = await guarded();
    const toUs = stack.ping(US, { timeoutMs: 100 });
    const toLoopback = stack.ping('127.0.0.1', { timeoutMs: 100 });
    clock.advance(1);
    await expect(toUs).resolves.toMatchObject({ from: US });
    await expect(toLoopback).resolves.toMatchObject({ from: '127.0.0.1' });
  });
});

describe('ARP against a hostile LAN', () => {
  const SPOOFER = macOf(0x66);
  /** Resolve 10.0.0.2 → PEER by asking (a solicited reply). */
  async function resolvedPeer(options = {}) {
    const s = await scripted(options);
    const socket = createDgram(s.stack.udp).createSocket();
    socket.send('x', 9, '10.0.0.2');
    await flush();
    s.nic.take();
    s.nic.inject(arpFrame(2, PEER, '10.0.0.2', macOf(1), US));
    s.nic.take();
    return { ...s, socket };
  }
  const destinationOf = async (s: Awaited<ReturnType<typeof resolvedPeer>>) => {
    s.socket.send('y', 9, '10.0.0.2');
    await flush();
    const frames = s.nic.take().filter((f) => f[12] === 0x08 && f[13] === 0x00);
    return formatMac(frames.at(-1)!.subarray(0, 6));
  };

  it('an unsolicited reply with another MAC within the locktime (1 s) does not replace a confirmed entry; later it may (RFC 826 merge)', async () => {
    const s = await resolvedPeer();
    s.clock.advance(500);
    s.nic.inject(arpFrame(2, SPOOFER, '10.0.0.2', macOf(1), US));
    expect(s.stack.counters().arp.dropped['locktime']).toBe(1);
    expect(await destinationOf(s)).toBe(formatMac(PEER));
    s.clock.advance(1_000);
    s.nic.inject(arpFrame(2, SPOOFER, '10.0.0.2', macOf(1), US));
    expect(await destinationOf(s)).toBe(formatMac(SPOOFER));
  });

  it('the same MAC again within the locktime simply confirms the entry', async () => {
    const s = await resolvedPeer();
    s.nic.inject(arpFrame(2, PEER, '10.0.0.2', macOf(1), US));
    expect(s.stack.counters().arp.dropped['locktime']).toBeUndefined();
  });

  it.each([
    ['a group MAC', parseMac('01:00:5e:00:00:01'), '10.0.0.7', 'bad-sender-mac'],
    ['the broadcast MAC', parseMac('ff:ff:ff:ff:ff:ff'), '10.0.0.7', 'bad-sender-mac'],
    ['a loopback address', SPOOFER, '127.0.0.1', 'bad-sender'],
    ['a 0/8 address', SPOOFER, '0.0.0.9', 'bad-sender'],
    ['a class E address', SPOOFER, '250.0.0.1', 'bad-sender'],
  ])('a sender with %s is never learned', async (_, mac, senderIp, reason) => {
    const { nic, stack } = await scripted();
    nic.inject(arpFrame(1, mac, senderIp, MAC_ZERO, US));
    expect(stack.arp.entries()).toEqual([]);
    expect(nic.take()).toEqual([]);
    expect(stack.counters().arp.dropped[reason]).toBe(1);
  });

  it('a flood of new neighbours (pings from 1000 spoofed on-link sources) does not evict the peer in active use', async () => {
    const s = await resolvedPeer({ arpCacheSize: 16 });
    let requestsForPeer = 0;
    for (let i = 0; i < 1000; i++) {
      const spoofed = `10.0.0.${10 + (i % 240)}`;
      s.nic.inject(ipv4Frame(SPOOFER, macOf(1), { source: spoofed, destination: US, protocol: IpProtocol.ICMP, identification: i }, echoRequest(1, i, new Uint8Array(8))));
      if (i % 20 === 0) {
        expect(await destinationOf(s)).toBe(formatMac(PEER));
      }
      requestsForPeer += s.nic.take().filter((f) => f[12] === 0x08 && f[13] === 0x06 && arpOf(f).targetIp === ip('10.0.0.2')).length;
      s.clock.advance(10);
    }
    expect(requestsForPeer).toBe(0);
    expect(s.stack.arp.entries().length).toBeLessThanOrEqual(16);
    expect(s.stack.counters().arp.dropped['cache-full-evicted']).toBeGreaterThan(900);
  });

  it('with every entry in active use, a new neighbour is refused (counted), not swapped in', async () => {
    const { nic, stack, clock } = await scripted({ arpCacheSize: 2 });
    const socket = createDgram(stack.udp).createSocket();
    for (const [host, mac] of [['10.0.0.2', PEER], ['10.0.0.3', SPOOFER]] as const) {
      socket.send('x', 9, host);
      await flush();
      nic.inject(arpFrame(2, mac, host, macOf(1), US));
    }
    clock.advance(100);
    const failures: string[] = [];
    socket.send('z', 9, '10.0.0.4', (error) => error && failures.push(error.code));
    await flush();
    expect(failures).toEqual(['ENOBUFS']);
    expect(stack.counters().arp.dropped['cache-full']).toBe(1);
    expect(stack.arp.entries().map((e) => e.address).sort()).toEqual(['10.0.0.2', '10.0.0.3']);
    // Idle past arpActiveUseMs, the entries may go again.
    clock.advance(5_000);
    socket.send('z', 9, '10.0.0.4');
    await flush();
    expect(stack.arp.entries().map((e) => e.address)).toContain('10.0.0.4');
  });
});
