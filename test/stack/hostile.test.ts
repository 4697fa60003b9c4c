import { describe, expect, it } from 'vitest';
import { startUdpService } from '../../src/app/services/udp.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { SeededRandom } from '../../src/time/random.js';
import { IpProtocol } from '../../src/wire/ipv4.js';
import { TcpFlag, TcpRepr } from '../../src/wire/tcp.js';
import { createNet } from '../../src/socket/net.js';
import { createDgram } from '../../src/socket/dgram.js';
import { Containment } from '../../src/stats/containment.js';
import { echoRequest, flush, ip, ipv4Frame, lanOf, macOf, scripted, udpDatagram } from './helpers.js';
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
      ipv4Frame(PEER, macOf(1), { source: '10.0.0.2', destination: US, protocol: IpProtocol.UDP, identification: 9, fragmentOffset: offset, moreFragments: more }, new Uint8Array(8).fill(offset));
    nic.inject(fragment(0, true));
    nic.inject(fragment(24, true));
    // The last fragment says the payload is 24 bytes: 0–8, (hole 8–16), 16–24 — and 24–32 is beyond it.
    expect(() => nic.inject(fragment(16, false))).not.toThrow();
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
