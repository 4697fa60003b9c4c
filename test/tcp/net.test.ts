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
