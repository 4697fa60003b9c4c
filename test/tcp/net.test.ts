import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import type { Socket } from '../../src/socket/net.js';
import { SeededRandom, randomFill } from '../../src/time/random.js';
import { SERVER, CLIENT, runFor, runUntil, settle, twoHosts } from './net-harness.js';
import { sha256 } from './harness.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { parseMac } from '../../src/wire/address.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { echo, startStack, testPattern } from '../bridge/sim-node.js';
import { TcpFlag, TcpPacket, TcpParseError, TcpRepr } from '../../src/wire/tcp.js';
import { IcmpRepr } from '../../src/wire/icmp.js';
import { parseIpv4, type Ipv4Address } from '../../src/wire/address.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet } from '../../src/socket/net.js';
import type { TestNetwork } from './harness.js';
import { ipv4Frame, isIpv4, macOf, scripted } from '../stack/helpers.js';

/** Every TCP segment `from` puts on the wire from now on, with the virtual time it left. */
function segmentsFrom(network: TestNetwork, from: string): { at: number; seg: TcpRepr }[] {
  const out: { at: number; seg: TcpRepr }[] = [];
  const source = parseIpv4(from);
  const previous = network.filter;
  network.filter = (src: Ipv4Address, dst: Ipv4Address, bytes: Uint8Array) => {
    if (src === source) {
      const packet = TcpPacket.check(bytes);
      if (packet instanceof TcpParseError) throw new Error(packet.reason);
      const seg = TcpRepr.parse(packet, src, dst);
      if (seg instanceof TcpParseError) throw new Error(seg.reason);
      out.push({ at: network.clock.now(), seg });
    }
    return previous ? previous(src, dst, bytes) : true;
  };
  return out;
}

type NetError = Error & { code?: string; syscall?: string; address?: string; port?: number };

describe('node:net over spinet TCP', () => {
  it('connects, echoes, reports addresses and byte counts, and closes both sides', async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    const events: string[] = [];
    const server = serverNet.createServer((sock) => {
      events.push(`connection ${sock.remoteAddress}`);
      sock.on('data', (d) => sock.write(d));
      sock.on('end', () => sock.end());
    });
    server.listen(7, () => events.push('listening'));
    await settle();
    expect(server.address()).toEqual({ address: '0.0.0.0', family: 'IPv4', port: 7 });
    const client = clientNet.createConnection(7, SERVER, () => events.push('connect'));
    const chunks: Buffer[] = [];
    client.on('data', (d: Buffer) => chunks.push(d));
    client.on('end', () => events.push('end'));
    client.on('close', (hadError) => events.push(`close ${hadError}`));
    client.write('hello, ');
    client.end('world');
    await runFor(clock, 1000);
    expect(Buffer.concat(chunks).toString()).toBe('hello, world');
    expect(events).toEqual(['listening', 'connect', `connection ${CLIENT}`, 'end', 'close false']);
    expect(client.remoteAddress).toBe(SERVER);
    expect(client.remotePort).toBe(7);
    expect(client.localAddress).toBe(CLIENT);
    expect(client.localPort).toBeGreaterThanOrEqual(49152);
    expect(client.bytesWritten).toBe(12);
    expect(client.bytesRead).toBe(12);
  });

  it('refuses a connection to a closed port with ECONNREFUSED', async () => {
    const { clock, clientNet } = twoHosts();
    const client = clientNet.createConnection(81, SERVER);
    let error: (Error & { code?: string; syscall?: string; address?: string; port?: number }) | undefined;
    client.on('error', (e) => (error = e));
    await runFor(clock, 100);
    expect(error?.code).toBe('ECONNREFUSED');
    expect(error?.syscall).toBe('connect');
    expect(error?.message).toBe(`connect ECONNREFUSED ${SERVER}:81`);
    expect(error?.port).toBe(81);
  });

  it('fails with EHOSTUNREACH when there is no route, and EADDRINUSE for a taken port', async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    const client = clientNet.createConnection(80, '203.0.113.9');
    let code: string | undefined;
    client.on('error', (e: Error & { code?: string }) => (code = e.code));
    serverNet.createServer().listen(80);
    const second = serverNet.createServer();
    let listenCode: string | undefined;
    second.on('error', (e: Error & { code?: string }) => (listenCode = e.code));
    second.listen(80);
    await runFor(clock, 10);
    expect(code).toBe('EHOSTUNREACH');
    expect(listenCode).toBe('EADDRINUSE');
  });

  it('times out a connect to a silent host with ETIMEDOUT after the SYN retries', async () => {
    const { clock, network, clientNet } = twoHosts();
    network.filter = () => false;
    const client = clientNet.createConnection(80, SERVER);
    let code: string | undefined;
    client.on('error', (e: Error & { code?: string }) => (code = e.code));
    // SYN at 0, retransmissions at 1, 3, 7, 15, 31, 63 s (6 by default), then the RTO capped at 60 s.
    await runFor(clock, 122_000);
    expect(code).toBeUndefined();
    await runFor(clock, 2_000);
    expect(code).toBe('ETIMEDOUT');
  });

  it('applies backpressure: write() returns false while the peer does not read, then drains', async () => {
    const { clock, serverNet, clientNet, network } = twoHosts({ delay: 1 }, { sendBufferSize: 16 * 1024, receiveBufferSize: 16 * 1024 });
    let serverSocket: Socket | undefined;
    serverNet.createServer({ pauseOnConnect: true }, (s) => (serverSocket = s)).listen(9);
    const client = clientNet.createConnection(9, SERVER);
    await runFor(clock, 100);
    const block = Buffer.alloc(8 * 1024, 7);
    const total = 40;
    let refused = 0;
    for (let i = 0; i < total; i++) if (!client.write(block)) refused++;
    expect(refused).toBeGreaterThan(0);
    let drained = false;
    client.on('drain', () => (drained = true));
    await runFor(clock, 10_000);
    // The paused reader filled its 16 KiB window; the sender is probing a zero window, not draining.
    expect(drained).toBe(false);
    expect(serverSocket!.bytesRead).toBe(0);
    const sender = network.hostTcp(CLIENT);
    expect(sender.stats.zeroWindowProbes).toBeGreaterThan(0);
    expect(sender.socketTable().find((r) => r.localPort === client.localPort)?.timer).toBe('persist');
    const received: Buffer[] = [];
    serverSocket!.on('data', (d: Buffer) => received.push(d));
    serverSocket!.resume();
    await runFor(clock, 70_000);
    expect(drained).toBe(true);
    expect(Buffer.concat(received).length).toBe(total * block.length);
  });

  it('supports half-close with allowHalfOpen: the server keeps writing after the client ends', async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    serverNet
      .createServer({ allowHalfOpen: true }, (sock) => {
        let got = '';
        sock.on('data', (d: Buffer) => (got += d.toString()));
        sock.on('end', () => {
          sock.write(`you said ${got}`);
          sock.end();
        });
      })
      .listen(10);
    const client = clientNet.createConnection({ port: 10, host: SERVER, allowHalfOpen: true });
    let reply = '';
    client.on('data', (d: Buffer) => (reply += d.toString()));
    client.end('ping');
    await runFor(clock, 1000);
    expect(reply).toBe('you said ping');
  });

  it("emits 'timeout' after idle time without closing the socket", async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    serverNet.createServer(() => {}).listen(11);
    const client = clientNet.createConnection(11, SERVER);
    let timeouts = 0;
    client.setTimeout(5000, () => timeouts++);
    await runFor(clock, 4000);
    expect(timeouts).toBe(0);
    await runFor(clock, 1500);
    expect(timeouts).toBe(1);
    expect(client.destroyed).toBe(false);
  });

  it('destroy() with unread data resets the connection: the peer sees ECONNRESET', async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    let serverSocket: Socket | undefined;
    serverNet.createServer({ pauseOnConnect: true }, (s) => (serverSocket = s)).listen(12);
    const client = clientNet.createConnection(12, SERVER);
    let code: string | undefined;
    client.on('error', (e: Error & { code?: string }) => (code = e.code));
    client.write('unread');
    await runFor(clock, 100);
    serverSocket!.destroy();
    await runFor(clock, 100);
    expect(code).toBe('ECONNRESET');
  });

  it('setNoDelay(true) sends a small write behind unacknowledged data at once; setNoDelay(false) holds it (Nagle)', async () => {
    const { clock, network, serverNet, clientNet } = twoHosts({ delay: 5 });
    serverNet.createServer((s) => s.resume()).listen(20);
    // { noDelay: true } goes through setNoDelay before the connection exists.
    const client = clientNet.createConnection({ port: 20, host: SERVER, noDelay: true });
    await runFor(clock, 100);
    const sent = segmentsFrom(network, CLIENT);
    const data = () => sent.filter((s) => s.seg.payload.length > 0).map((s) => `${s.seg.payload.length}@${s.at}`);
    const t = clock.now();
    // No virtual time passes below, so nothing sent is acknowledged: every later write is "behind unacked data".
    client.write(Buffer.alloc(100, 'a'));
    await settle();
    client.write(Buffer.alloc(10, 'b'));
    await settle();
    expect(data()).toEqual([`100@${t}`, `10@${t}`]);
    client.setNoDelay(false);
    client.write(Buffer.alloc(10, 'c'));
    await settle();
    expect(data()).toEqual([`100@${t}`, `10@${t}`]); // Nagle: held while 110 bytes are in flight
    client.setNoDelay(true);
    expect(data()).toEqual([`100@${t}`, `10@${t}`, `10@${t}`]); // released by setNoDelay itself
    // With Nagle on, a held write leaves when the ACK for what is in flight comes back (one RTT).
    client.setNoDelay(false);
    client.write(Buffer.alloc(10, 'd'));
    await settle();
    expect(data()).toHaveLength(3);
    await runFor(clock, 1000);
    expect(data()).toHaveLength(4);
    const last = sent.filter((s) => s.seg.payload.length > 0)[3]!;
    expect(last.at).toBeGreaterThanOrEqual(t + 10);
    expect(Buffer.from(last.seg.payload).toString()).toBe('dddddddddd');
  });

  it('setKeepAlive(true, delay) probes an idle connection, and a dead peer ends it with ETIMEDOUT', async () => {
    const { clock, network, serverNet, clientNet } = twoHosts({ delay: 1 }, { keepAliveInterval: 1000, keepAliveProbes: 3 });
    serverNet.createServer((s) => s.on('error', () => undefined)).listen(21);
    const client = clientNet.createConnection(21, SERVER);
    let error: NetError | undefined;
    let closed: boolean | undefined;
    client.on('error', (e: NetError) => (error = e));
    client.on('close', (hadError: boolean) => (closed = hadError));
    await runFor(clock, 100);
    const sent = segmentsFrom(network, CLIENT);
    // RFC 1122 §4.2.3.6 probe: no data, SEG.SEQ = SND.NXT − 1 (the byte the peer already acknowledged).
    const sndNxt = network.hostTcp(CLIENT).findConnection(parseIpv4(CLIENT), client.localPort!, parseIpv4(SERVER), 21)!.sndNxt;
    const probes = () => sent.filter((s) => s.seg.flags === TcpFlag.ACK && s.seg.payload.length === 0 && s.seg.sequence === ((sndNxt - 1) >>> 0));
    const t = clock.now();
    client.setKeepAlive(true, 5000);
    await runFor(clock, 4990);
    expect(sent).toHaveLength(0);
    await runFor(clock, 20);
    expect(probes().map((p) => p.at - t)).toEqual([5000]);
    // The peer answers: the connection stays up, probed once per idle period.
    await runFor(clock, 10_000);
    expect(probes().length).toBe(3);
    expect(sent.length).toBe(3);
    expect(error).toBeUndefined();
    expect(network.hostTcp(CLIENT).stats.keepAliveProbes).toBe(3);
    // The peer dies: probes every keepAliveInterval, and after keepAliveProbes unanswered, ETIMEDOUT.
    network.filter = () => false;
    await runFor(clock, 5000 + 3 * 1000 - 100);
    expect(error).toBeUndefined();
    await runFor(clock, 200);
    expect(error?.code).toBe('ETIMEDOUT');
    expect(error?.message).toBe('read ETIMEDOUT');
    expect(closed).toBe(true);
    expect(network.hostTcp(CLIENT).stats.keepAliveProbes).toBe(6);
  });

  it('address() gives {address, family, port} of the local end, on both sides; {} before connecting', async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    let accepted: Socket | undefined;
    serverNet.createServer((s) => (accepted = s)).listen(22);
    const client = clientNet.createConnection(22, SERVER);
    expect(client.address()).toEqual({});
    await runFor(clock, 100);
    expect(client.address()).toEqual({ address: CLIENT, family: 'IPv4', port: client.localPort });
    expect(client.localPort).toBeGreaterThanOrEqual(49152);
    expect(accepted!.address()).toEqual({ address: SERVER, family: 'IPv4', port: 22 });
    expect(accepted!.remotePort).toBe(client.localPort);
  });

  it("server.close() stops listening at once and emits 'close' (once) only when its last connection has ended", async () => {
    const { clock, serverNet, clientNet } = twoHosts();
    const server = serverNet.createServer((s) => s.resume());
    server.listen(23);
    const client = clientNet.createConnection(23, SERVER);
    client.resume();
    await runFor(clock, 100);
    let closes = 0;
    const callbacks: (Error | undefined)[] = [];
    server.on('close', () => closes++);
    server.close((e) => callbacks.push(e));
    expect(server.listening).toBe(false);
    expect(server.address()).toBeNull();
    // No new connections...
    const late = clientNet.createConnection(23, SERVER);
    let lateCode: string | undefined;
    late.on('error', (e: NetError) => (lateCode = e.code));
    await runFor(clock, 1000);
    expect(lateCode).toBe('ECONNREFUSED');
    // ...but the accepted one still works, and keeps the server from closing.
    expect(closes).toBe(0);
    expect(callbacks).toEqual([]);
    client.end();
    await runFor(clock, 1000);
    expect(client.destroyed).toBe(true);
    expect(closes).toBe(1);
    expect(callbacks).toEqual([undefined]);
    await runFor(clock, 120_000);
    expect(closes).toBe(1);
    // Closing again is an error for the callback, not another 'close'.
    let again: (Error & { code?: string }) | undefined;
    server.close((e) => (again = e));
    await settle();
    expect(again?.code).toBe('ERR_SERVER_NOT_RUNNING');
    expect(closes).toBe(1);
  });

  it('moves 1 MB each way over a lossy, reordering wire byte-exact', async () => {
    const { clock, serverNet, clientNet } = twoHosts({ delay: 5, loss: 0.02, reorder: 0.05, jitter: 20, duplicate: 0.01 }, { minRto: 200 }, 3);
    const rng = new SeededRandom(42);
    const up = Buffer.from(randomFill(rng, new Uint8Array(1_000_000)));
    const down = Buffer.from(randomFill(rng, new Uint8Array(1_000_000)));
    const atServer: Buffer[] = [];
    let serverEnded = false;
    serverNet
      .createServer((s) => {
        s.on('data', (d: Buffer) => atServer.push(d));
        s.on('end', () => (serverEnded = true));
        s.end(down);
      })
      .listen(13);
    const atClient: Buffer[] = [];
    const client = clientNet.createConnection(13, SERVER);
    client.on('data', (d: Buffer) => atClient.push(d));
    let closed = false;
    client.on('close', () => (closed = true));
    client.end(up);
    // The client's 'close' says only that its side is done (as with a kernel socket, the last
    // bytes may still be in flight): wait for the server to read the end of the stream too.
    await runUntil(clock, () => closed && serverEnded, 600_000);
    expect(sha256(Buffer.concat(atServer))).toBe(sha256(up));
    expect(sha256(Buffer.concat(atClient))).toBe(sha256(down));
  });
});

describe('node:net sockets on a synchronous link (frames delivered inside the send call)', () => {
  // A VirtualLan with no delay hands each frame over before transmit() returns, so the peer's ACK
  // (and window updates, and data) come back inside socket.write() and socket.read(). The socket
  // once re-entered itself there: a chunk written twice ("Callback called multiple times") and
  // data pushed out of order.
  it.each([4096, 20_000, 65_536, 200_000])('echoes %i bytes intact through a TCP echo service', async (size) => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const a = await startStack(clock, new SeededRandom(5), new VirtualNic(lan, parseMac('02:00:00:00:00:01'), 'a'), '192.0.2.1');
    const b = await startStack(clock, new SeededRandom(6), new VirtualNic(lan, parseMac('02:00:00:00:00:0a'), 'b'), '192.0.2.10');
    await startTcpService(a.net, 'echo', 7);
    const data = testPattern(size, 4);
    let outcome: Buffer | Error | undefined;
    echo(b.net, 7, '192.0.2.1', data).then(
      (got) => (outcome = got),
      (error: Error) => (outcome = error),
    );
    // (A macrotask turn between steps: node:stream's pipe() starts flowing from process.nextTick.)
    for (let i = 0; i < 2_000 && !outcome; i++) {
      await clock.advanceAsync(5);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(outcome).toBeInstanceOf(Buffer);
    expect((outcome as Buffer).length).toBe(size);
    expect(sha256(outcome as Buffer)).toBe(sha256(data));
    await a.stack.stop();
    await b.stack.stop();
  });
});

describe('node:net sockets and ICMP errors from the stack', () => {
  const ROUTER_MAC = macOf(0xfe);

  /**
   * One stack (10.0.0.1, default route via 10.0.0.254) with spinet's TCP; the test plays the router.
   * Connects to 198.51.100.7:80; with `icmp`, the router answers the SYN with ICMP destination
   * unreachable, code 1 (host unreachable), quoting it — the stack's ICMP hands that to TCP.
   */
  async function connectThroughRouter(icmp: boolean) {
    const { clock, nic, stack } = await scripted();
    stack.routes.add({ destination: '0.0.0.0', prefixLength: 0, gateway: '10.0.0.254', interfaceIndex: 1 });
    stack.arp.addStatic(1, '10.0.0.254', ROUTER_MAC);
    const tcp = new Tcp(stack.ip, clock, new SeededRandom(3));
    stack.registerTransport(tcp);
    const client = createNet(tcp).createConnection(80, '198.51.100.7');
    let error: NetError | undefined;
    client.on('error', (e: NetError) => (error = e));
    await settle();
    const syns = nic.take().filter(isIpv4);
    expect(syns).toHaveLength(1);
    if (icmp) {
      const quote = syns[0]!.subarray(14, 14 + 20 + 8);
      const repr: IcmpRepr = { type: 'destination-unreachable', code: 1, nextHopMtu: 0, quote };
      const message = new Uint8Array(IcmpRepr.bufferLength(repr));
      IcmpRepr.emit(repr, message);
      nic.inject(ipv4Frame(ROUTER_MAC, macOf(1), { source: '10.0.0.254', destination: '10.0.0.1', protocol: 1 }, message));
      expect(stack.counters().icmp.received).toBe(1);
    }
    return { clock, client, error: () => error };
  }

  it('a connect answered with ICMP host-unreachable fails with EHOSTUNREACH (a soft error: reported when the SYNs give up)', async () => {
    const { clock, client, error } = await connectThroughRouter(true);
    // RFC 1122 §4.2.3.9: host unreachable is a soft error — TCP keeps trying and reports it on giving up
    // (Linux aborts SYN-SENT on it at once, BSD after a few retries; either way connect() fails EHOSTUNREACH).
    await runFor(clock, 1000);
    expect(error()).toBeUndefined();
    expect(client.connecting).toBe(true);
    await runFor(clock, 130_000);
    expect(error()?.code).toBe('EHOSTUNREACH');
    expect(error()?.syscall).toBe('connect');
    expect(error()?.message).toBe('connect EHOSTUNREACH 198.51.100.7:80');
    expect(error()?.port).toBe(80);
    expect(client.destroyed).toBe(true);
  });

  it('without the ICMP error the same connect times out with ETIMEDOUT', async () => {
    const { clock, error } = await connectThroughRouter(false);
    await runFor(clock, 131_000);
    expect(error()?.code).toBe('ETIMEDOUT');
  });
});
