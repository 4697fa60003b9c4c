import { describe, expect, it } from 'vitest';
import { IcmpPacket, IcmpRepr } from '../../src/wire/icmp.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { MAC_BROADCAST } from '../../src/wire/address.js';
import { echoRequest, flush, ip, ipv4Frame, ipv4Of, lanOf, macOf, scripted, udpDatagram } from './helpers.js';
import { createDgram } from '../../src/socket/dgram.js';

const PEER = macOf(0x22);

function icmpOf(frame: Uint8Array) {
  const packet = IcmpPacket.check(ipv4Of(frame).payload);
  if (!packet.ok) throw new Error(packet.reason);
  const repr = IcmpRepr.parse(packet);
  if ('ok' in repr) throw new Error(repr.reason);
  return repr;
}

const udpTo = (port: number, data = new Uint8Array(4), extra: Partial<Parameters<typeof ipv4Frame>[2]> = {}) =>
  ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: IpProtocol.UDP, ...extra }, udpDatagram('10.0.0.2', '10.0.0.1', 40000, port, data));

describe('Echo (RFC 792)', () => {
  it('answers an echo request with a reply carrying the same identifier, sequence and data', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const data = Uint8Array.from({ length: 56 }, (_, i) => i);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1 }, echoRequest(0x1234, 7, data)));
    const [reply] = nic.take();
    expect(ipv4Of(reply!).source).toBe(ip('10.0.0.1'));
    expect(icmpOf(reply!)).toEqual({ type: 'echo-reply', identifier: 0x1234, sequence: 7, data });
  });

  it('ignores echo requests sent to a broadcast address (RFC 1122 §3.2.2.6 allows it; avoids smurf amplification)', async () => {
    const { nic, stack } = await scripted();
    nic.inject(ipv4Frame(PEER, MAC_BROADCAST, { source: '10.0.0.2', destination: '10.0.0.255', protocol: 1 }, echoRequest(1, 1, new Uint8Array(8))));
    expect(nic.take()).toEqual([]);
    expect(stack.counters().icmp.dropped['echo-to-broadcast']).toBe(1);
  });

  it('ping resolves with the round-trip time on the injected clock, the reply TTL, its size and sender', async () => {
    const { clock, nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const result = stack.ping('10.0.0.2', { size: 32 });
    const request = icmpOf(nic.take()[0]!);
    if (request.type !== 'echo-request') throw new Error();
    clock.advance(12);
    const reply = new Uint8Array(8 + 32);
    IcmpRepr.emit({ type: 'echo-reply', identifier: request.identifier, sequence: request.sequence, data: request.data }, reply);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1, ttl: 61 }, reply));
    await expect(result).resolves.toEqual({ rttMs: 12, ttl: 61, bytes: 40, from: '10.0.0.2', sequence: request.sequence });
  });

  it('ping rejects with ETIMEDOUT when no reply comes', async () => {
    const { clock, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const result = stack.ping('10.0.0.2', { timeoutMs: 1000 });
    clock.advance(1000);
    await expect(result).rejects.toMatchObject({ code: 'ETIMEDOUT', syscall: 'ping' });
  });

  it('ping rejects with EHOSTUNREACH when ARP gives up on the neighbour', async () => {
    const { clock, stack } = await scripted();
    const result = stack.ping('10.0.0.2', { timeoutMs: 60_000 });
    clock.advance(5_000);
    await expect(result).rejects.toMatchObject({ code: 'EHOSTUNREACH' });
  });

  it('ping rejects with EHOSTUNREACH when a router answers host unreachable', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const result = stack.ping('10.0.0.2');
    const sent = nic.take()[0]!;
    const quote = sent.subarray(14, 14 + 28);
    const error = new Uint8Array(8 + quote.length);
    IcmpRepr.emit({ type: 'destination-unreachable', code: 1, nextHopMtu: 0, quote }, error);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.254', destination: '10.0.0.1', protocol: 1 }, error));
    await expect(result).rejects.toMatchObject({ code: 'EHOSTUNREACH' });
  });

  it('ping between two stacks on a LAN', async () => {
    const { hosts } = await lanOf(2);
    await expect(hosts[0]!.stack.ping(hosts[1]!.address)).resolves.toMatchObject({ from: '10.0.0.2', ttl: 64, bytes: 64 });
  });
});

describe('Errors we send (RFC 1122 §3.2.2)', () => {
  it('answers a datagram to a closed UDP port with port unreachable quoting the IP header and at least 8 bytes', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const offending = udpTo(9999);
    nic.inject(offending);
    const [frame] = nic.take();
    const error = icmpOf(frame!);
    expect(error).toMatchObject({ type: 'destination-unreachable', code: 3 });
    if (error.type !== 'destination-unreachable') throw new Error();
    expect(error.quote).toEqual(offending.subarray(14));
    expect(ipv4Of(frame!).source).toBe(ip('10.0.0.1'));
  });

  it('answers an unknown protocol with protocol unreachable', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 200 }, new Uint8Array(8)));
    expect(icmpOf(nic.take()[0]!)).toMatchObject({ type: 'destination-unreachable', code: 2 });
  });

  it('rate-limits errors with a token bucket: a burst of 10, then 10 per second', async () => {
    const { clock, nic, stack } = await scripted({ icmpErrorBurst: 10, icmpErrorsPerSecond: 10 });
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    for (let i = 0; i < 30; i++) nic.inject(udpTo(9999));
    expect(nic.take()).toHaveLength(10);
    expect(stack.counters().icmp.dropped['error-rate-limited']).toBe(20);
    clock.advance(500);
    for (let i = 0; i < 30; i++) nic.inject(udpTo(9999));
    expect(nic.take()).toHaveLength(5);
  });

  it('never sends an error about a broadcast datagram', async () => {
    const { nic, stack } = await scripted();
    nic.inject(ipv4Frame(PEER, MAC_BROADCAST, { source: '10.0.0.2', destination: '255.255.255.255', protocol: 17 }, udpDatagram('10.0.0.2', '255.255.255.255', 1, 9999, new Uint8Array(4))));
    expect(nic.take()).toEqual([]);
    expect(stack.counters().icmp.dropped['no-error-for-broadcast']).toBe(1);
  });

  it('never sends an error about an ICMP error: a fragmented ICMP error that times out in reassembly gets no time exceeded', async () => {
    const { clock, nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const inner = new Uint8Array(8 + 1000);
    IcmpRepr.emit({ type: 'destination-unreachable', code: 3, nextHopMtu: 0, quote: new Uint8Array(1000) }, inner);
    nic.inject(ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: '10.0.0.1', protocol: 1, moreFragments: true }, inner.subarray(0, 504)));
    clock.advance(20_000);
    expect(nic.take()).toEqual([]);
    expect(stack.counters().icmp.dropped['no-error-for-error']).toBe(1);
  });

  it('never sends an error about a fragment other than the first', async () => {
    const { nic, stack } = await scripted();
    stack.arp.addStatic(1, '10.0.0.2', PEER);
    const offending = udpTo(9999, new Uint8Array(4), { fragmentOffset: 8 }).subarray(14);
    (stack as unknown as { icmp: { reportError: (...a: unknown[]) => void } }).icmp.reportError(3, 3, offending, false);
    expect(nic.take()).toEqual([]);
    expect(stack.counters().icmp.dropped['no-error-for-fragment']).toBe(1);
  });
});

describe('Errors we receive', () => {
  it('a connected UDP socket gets ECONNREFUSED when its peer answers port unreachable', async () => {
    const { hosts } = await lanOf(2);
    const socket = createDgram(hosts[0]!.stack.udp).createSocket();
    const errors: { code: string }[] = [];
    socket.on('error', (e: { code: string }) => errors.push(e));
    socket.connect(4444, hosts[1]!.address);
    await flush();
    socket.send('hello?');
    await flush();
    expect(errors).toMatchObject([{ code: 'ECONNREFUSED' }]);
  });

  it('an unconnected socket is not told, but the error is counted', async () => {
    const { hosts } = await lanOf(2);
    const socket = createDgram(hosts[0]!.stack.udp).createSocket();
    const errors: unknown[] = [];
    socket.on('error', (e) => errors.push(e));
    socket.send('hello?', 4444, hosts[1]!.address);
    await flush();
    expect(errors).toEqual([]);
    expect(hosts[0]!.stack.counters().udp.dropped['icmp-port-unreachable-unconnected']).toBe(1);
  });
});
