import { describe, expect, it } from 'vitest';
import { Buffer } from 'node:buffer';
import { startTcpService } from '../../src/app/services/tcp.js';
import { startUdpService } from '../../src/app/services/udp.js';
import { createDgram, type RemoteInfo } from '../../src/socket/dgram.js';
import { SERVER, CLIENT, runFor, runUntil, twoHosts } from './net-harness.js';
import { flush, lanOf } from '../stack/helpers.js';

/** RFC 864's line k, written out here independently of the service: 72 of the 95 printable characters from 32 + k, then CRLF. */
function expectedLine(k: number): string {
  let line = '';
  for (let i = 0; i < 72; i++) line += String.fromCharCode(32 + ((k + i) % 95));
  return `${line}\r\n`;
}

const LINE_0 = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefg\r\n';

/** Check that `text` is chargen's lines 0, 1, 2, … exactly; returns how many there are. */
function expectChargenLines(text: string): number {
  expect(text.length % 74).toBe(0);
  const lines = text.length / 74;
  for (let k = 0; k < lines; k++) {
    const line = text.slice(k * 74, k * 74 + 74);
    if (line !== expectedLine(k)) expect(`line ${k}: ${JSON.stringify(line)}`).toBe(`line ${k}: ${JSON.stringify(expectedLine(k))}`);
  }
  return lines;
}

describe('TCP small services (RFC 863 discard, RFC 864 chargen) over spinet TCP', () => {
  it('discard reads and drops everything, answers nothing, stays up while idle, and closes cleanly', async () => {
    const { clock, network, serverNet, clientNet } = twoHosts({ delay: 1 }, { receiveBufferSize: 16 * 1024 });
    await startTcpService(serverNet, 'discard', 9);
    const client = clientNet.createConnection(9, SERVER);
    let received = 0;
    const events: string[] = [];
    client.on('data', (d: Buffer) => (received += d.length));
    client.on('end', () => events.push('end'));
    client.on('error', (e: Error) => events.push(`error ${e.message}`));
    client.on('close', (hadError: boolean) => events.push(`close ${hadError}`));
    await runFor(clock, 100);
    // Far more than the server's 16 KiB receive buffer: it all gets through only if the service reads.
    const total = 40 * 8192;
    for (let i = 0; i < 40; i++) client.write(Buffer.alloc(8192, i));
    await runFor(clock, 5_000);
    const clientTcp = network.hostTcp(CLIENT);
    const serverTcp = network.hostTcp(SERVER);
    expect(clientTcp.stats.bytesAcked).toBe(total);
    expect(serverTcp.stats.bytesReceived).toBe(total);
    const serverRow = () => serverTcp.socketTable().find((r) => r.localPort === 9 && r.state !== 'LISTEN');
    expect(serverRow()).toMatchObject({ state: 'ESTABLISHED', receiveQueue: 0 });
    // Nothing comes back.
    expect(received).toBe(0);
    expect(serverTcp.stats.bytesSent).toBe(0);
    // Idle for ten minutes: still connected, and still discarding.
    await runFor(clock, 600_000);
    expect(client.tcpState).toBe('ESTABLISHED');
    expect(serverRow()?.state).toBe('ESTABLISHED');
    client.write('more');
    await runFor(clock, 1_000);
    expect(clientTcp.stats.bytesAcked).toBe(total + 4);
    expect(events).toEqual([]);
    // The client ends: the service ends too; both sides close without an error.
    client.end();
    await runFor(clock, 1_000);
    expect(events).toEqual(['end', 'close false']);
    expect(serverRow()).toBeUndefined();
    expect(serverTcp.stats.resetsSent + clientTcp.stats.resetsSent).toBe(0);
  });

  it('chargen sends rotating 72-character lines with CRLF while the client reads, and stops when the client closes', async () => {
    const { clock, network, serverNet, clientNet } = twoHosts({ delay: 1 });
    await startTcpService(serverNet, 'chargen', 19);
    const client = clientNet.createConnection(19, SERVER);
    const chunks: Buffer[] = [];
    let received = 0;
    const events: string[] = [];
    client.on('data', (d: Buffer) => {
      chunks.push(d);
      received += d.length;
    });
    client.on('end', () => events.push('end'));
    client.on('error', (e: Error) => events.push(`error ${e.message}`));
    client.on('close', (hadError: boolean) => events.push(`close ${hadError}`));
    await runUntil(clock, () => received >= 200 * 74, 10_000);
    expect(events).toEqual([]);
    // The client half-closes: the service sees the end of the stream, finishes the line it is on and ends.
    client.end();
    await runUntil(clock, () => events.length >= 2, 10_000);
    expect(events).toEqual(['end', 'close false']);
    const text = Buffer.concat(chunks).toString('latin1');
    expect(text.slice(0, 74)).toBe(LINE_0);
    expect(text.slice(74, 148)).toBe(`${LINE_0.slice(1, 72)}h\r\n`);
    const lines = expectChargenLines(text);
    expect(lines).toBeGreaterThan(200);
    // Every line has the rotation's period: 95 characters.
    expect(text.slice(95 * 74, 96 * 74)).toBe(LINE_0);
    // Stopped: nothing more is sent, and the server's side of the connection is gone.
    const serverTcp = network.hostTcp(SERVER);
    const sentAtClose = serverTcp.stats.bytesSent;
    expect(sentAtClose).toBe(text.length);
    await runFor(clock, 60_000);
    expect(serverTcp.stats.bytesSent).toBe(sentAtClose);
    expect(serverTcp.socketTable().filter((r) => r.state !== 'LISTEN')).toEqual([]);
  });

  it('chargen stops when the client destroys its socket mid-stream', async () => {
    const { clock, network, serverNet, clientNet } = twoHosts({ delay: 1 });
    await startTcpService(serverNet, 'chargen', 19);
    const client = clientNet.createConnection(19, SERVER);
    let received = 0;
    client.on('data', (d: Buffer) => (received += d.length));
    await runUntil(clock, () => received >= 50_000, 10_000);
    client.destroy();
    await runFor(clock, 1_000);
    const serverTcp = network.hostTcp(SERVER);
    const sent = serverTcp.stats.bytesSent;
    expect(serverTcp.socketTable().filter((r) => r.state !== 'LISTEN')).toEqual([]);
    await runFor(clock, 60_000);
    expect(serverTcp.stats.bytesSent).toBe(sent);
    // The service is still there for the next client.
    const next = clientNet.createConnection(19, SERVER);
    let first = '';
    next.on('data', (d: Buffer) => {
      if (first.length < 74) first += d.toString('latin1');
      if (first.length >= 74) next.destroy();
    });
    await runUntil(clock, () => next.destroyed, 10_000);
    expect(first.slice(0, 74)).toBe(LINE_0);
  });
});

describe('UDP small services (RFC 862 echo, RFC 863 discard, RFC 864 chargen)', () => {
  async function setUp() {
    const { hosts } = await lanOf(2);
    const [client, server] = hosts as [(typeof hosts)[0], (typeof hosts)[0]];
    const socket = createDgram(client.stack.udp).createSocket();
    const replies: [string, number][] = [];
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => replies.push([msg.toString('latin1'), rinfo.port]));
    socket.bind(40000);
    await flush();
    return { client, server, socket, replies };
  }

  it('echo returns each datagram to its sender', async () => {
    const { server, socket, replies } = await setUp();
    await startUdpService(server.stack, 'echo', 7);
    socket.send('hello', 7, server.address);
    socket.send(Buffer.alloc(1000, 'x'), 7, server.address);
    await flush();
    expect(replies).toEqual([
      ['hello', 7],
      ['x'.repeat(1000), 7],
    ]);
  });

  it('discard takes datagrams and answers nothing (not even port unreachable)', async () => {
    const { server, socket, replies } = await setUp();
    await startUdpService(server.stack, 'discard', 9);
    socket.send('into the void', 9, server.address);
    socket.send('and again', 9, server.address);
    await flush();
    expect(replies).toEqual([]);
    expect(server.stack.counters().udp.received).toBe(2);
    expect(server.stack.counters().udp.sent).toBe(0);
    expect(server.stack.counters().icmp.sent).toBe(0);
  });

  it('chargen answers each datagram with the next line of the rotation; close() frees the port', async () => {
    const { server, socket, replies } = await setUp();
    const service = await startUdpService(server.stack, 'chargen', 19);
    for (let i = 0; i < 97; i++) socket.send('', 19, server.address);
    await flush();
    expect(replies).toHaveLength(97);
    expect(replies[0]).toEqual([LINE_0, 19]);
    replies.forEach(([text], k) => expect(text).toBe(expectedLine(k)));
    expect(replies[95]![0]).toBe(LINE_0);
    service.close();
    await flush();
    socket.send('', 19, server.address);
    await flush();
    expect(replies).toHaveLength(97);
    expect(server.stack.counters().udp.dropped['no-socket']).toBe(1);
  });
});
