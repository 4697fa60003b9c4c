import { describe, expect, it } from 'vitest';
import { bench, MAC_A } from '../enc28j60/harness.js';
import { VirtualNic } from '../../hal/lan/switch.js';
import { createMockEnc28j60Board, createMockW5500Board } from '../../tools/boards.js';
import { CaptureNic } from '../../src/capture/capture.js';
import { PacketTraceRecorder, type TracedFrame } from '../../src/capture/packet-trace.js';
import { decodeFrame } from '../../src/capture/decode.js';
import { Stack } from '../../src/stack/stack.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet } from '../../src/socket/net.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { createTraceHook, TRACE_LAYERS } from '../../src/stats/trace.js';
import { SeededRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';
import { runUntil } from '../tcp/net-harness.js';

/** The board: the chip's driver over the mock HAL, traced; the peer: a plain spinet stack on the LAN. */
async function tracedBoard(chip: 'enc28j60' | 'w5500' = 'enc28j60') {
  const b = bench();
  const hook = createTraceHook();
  const options = { clock: b.clock, lan: b.lan, mac: MAC_A, name: chip, linkModel: { bytesPerSecond: 100_000, turnaroundMs: 1 }, trace: hook };
  const board = chip === 'w5500' ? createMockW5500Board(options) : createMockEnc28j60Board(options);
  const recorder = new PacketTraceRecorder(b.clock);
  const capture = new CaptureNic(board.nic, b.clock, [recorder]);
  const stack = new Stack({ clock: b.clock, random: new SeededRandom(3), trace: hook });
  stack.addInterface(capture).addAddress('192.0.2.10', 24);
  const tcp = new Tcp(stack.ip, b.clock, new SeededRandom(4));
  stack.registerTransport(tcp);
  await b.settle(stack.start());

  const peer = new Stack({ clock: b.clock, random: new SeededRandom(5) });
  peer.addInterface(new VirtualNic(b.lan, parseMac('02:5e:00:00:00:01'), 'peer0')).addAddress('192.0.2.1', 24);
  const peerTcp = new Tcp(peer.ip, b.clock, new SeededRandom(6));
  peer.registerTransport(peerTcp);
  await b.settle(peer.start());
  await startTcpService(createNet(peerTcp), 'echo', 7);
  return { b, hook, recorder, net: createNet(tcp) };
}

/** Tracing on, 100 bytes of `fill` through the peer's echo and back; the connection stays open. */
async function tracedEcho(chip: 'enc28j60' | 'w5500', fill: number) {
  const { b, hook, recorder, net } = await tracedBoard(chip);
  hook.emit = recorder.tracer;
  const socket = net.createConnection(7, '192.0.2.1');
  const echoed: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => echoed.push(chunk));
  await b.settle(new Promise((resolve) => socket.once('connect', resolve)));
  socket.write(Buffer.alloc(100, fill));
  await runUntil(b.clock, () => Buffer.concat(echoed).length === 100, 5_000);
  expect(Buffer.concat(echoed)).toEqual(Buffer.alloc(100, fill));
  // The last ACKs and the chips' completions.
  await b.run(50);
  return { b, recorder, socket };
}

/** Each layer's first report, in the order they came. */
const layerOrder = (frame: TracedFrame) => [...new Set(frame.steps.map((s) => s.layer))];
const withPayload = (frames: readonly TracedFrame[], direction: 'in' | 'out', length: number) =>
  frames.find((f) => f.direction === direction && decodeFrame(f.bytes).tcp?.length === length);

describe('follow a packet: the trace hook through every layer', () => {
  it('a data segment goes socket → TCP → IP → ARP → Ethernet → driver → chip → serial bridge, each with its decision', async () => {
    const { recorder, socket } = await tracedEcho('enc28j60', 0x61);

    const syn = recorder.frames().find((f) => f.direction === 'out' && decodeFrame(f.bytes).tcp?.flags === 'S')!;
    expect(syn.steps.find((s) => s.layer === 'arp')!.decision).toMatch(/^cache miss: 192\.0\.2\.1 unknown: queued/);
    expect(syn.steps.filter((s) => s.layer === 'arp').at(-1)!.decision).toMatch(/^resolved: 192\.0\.2\.1 is-at 02:5e:00:00:00:01/);

    const data = withPayload(recorder.frames(), 'out', 100)!;
    expect(layerOrder(data)).toEqual(['socket', 'tcp', 'ip', 'arp', 'ethernet', 'driver', 'chip', 'bridge']);
    const step = (layer: string) => data.steps.filter((s) => s.layer === layer).map((s) => s.decision);
    expect(step('tcp')[0]).toMatch(/^\[P\.\] seq \d+:\d+ ack \d+ win \d+(<<\d)?, 100 bytes: new data; cwnd \d+, in flight 0 → 100.*retransmit timer starts/);
    expect(step('ip')[0]).toMatch(/^route lookup 192\.0\.2\.1: matches 192\.0\.2\.0\/24 → on-link, deliver directly via eth0/);
    expect(step('arp')[0]).toMatch(/^cache hit: 192\.0\.2\.1 is-at 02:5e:00:00:00:01 \(reachable/);
    expect(step('ethernet')[0]).toBe(`header 02:5e:00:00:00:01 ← 02:5e:00:00:00:0a, EtherType IPv4, ${data.bytes.length} bytes: handed to enc28j60`);
    expect(step('driver')).toHaveLength(2);
    expect(step('chip').at(-1)).toMatch(/^sent: EIR\.TXIF/);
    expect(step('bridge')[0]).toMatch(/^batch #\d+ carried to the board over mock:enc28j60/);
    // The layers report in time order.
    expect(data.steps.map((s) => s.timeMs)).toEqual([...data.steps.map((s) => s.timeMs)].sort((x, y) => x - y));

    const back = withPayload(recorder.frames(), 'in', 100)!;
    expect(layerOrder(back)).toEqual(['chip', 'bridge', 'driver', 'ethernet', 'ip', 'tcp', 'socket']);
    expect(back.steps.find((s) => s.layer === 'tcp')!.decision).toMatch(/100 bytes in order into the receive buffer/);
    // The ACK of our data rode on the echo: it stopped the retransmit timer.
    expect(back.steps.find((s) => s.layer === 'tcp')!.decision).toMatch(/acknowledges 100 new bytes.*retransmit timer stopped/);
    expect(TRACE_LAYERS.indexOf('socket')).toBe(0);
    socket.destroy();
  });

  it('the W5500 board reports its driver, socket buffer and serial-bridge steps the same way', async () => {
    const { recorder, socket } = await tracedEcho('w5500', 0x62);

    const data = withPayload(recorder.frames(), 'out', 100)!;
    expect(layerOrder(data)).toEqual(['socket', 'tcp', 'ip', 'arp', 'ethernet', 'driver', 'chip', 'bridge']);
    const step = (layer: string) => data.steps.filter((s) => s.layer === layer).map((s) => s.decision);
    expect(step('driver')).toEqual([expect.stringMatching(/^queued for the chip/), expect.stringMatching(/^SPI batch: \d+ bytes written at Sn_TX_WR, Sn_TX_WR moved, SEND/)]);
    expect(step('chip')[0]).toMatch(/^socket 0's transmit buffer 0x[0-9a-f]{4}–0x[0-9a-f]{4}; .* at 100 Mbit\/s$/);
    expect(step('chip').at(-1)).toBe('sent: Sn_TX_RD has moved past it');
    expect(step('bridge')[0]).toMatch(/^batch carried to the board over mock:w5500 and answered/);

    const back = withPayload(recorder.frames(), 'in', 100)!;
    expect(layerOrder(back)).toEqual(['chip', 'bridge', 'driver', 'ethernet', 'ip', 'tcp', 'socket']);
    expect(back.steps.find((s) => s.layer === 'chip')!.decision).toMatch(/^in socket 0's receive buffer behind its 2-byte length \(\d+ bytes/);
    socket.destroy();
  });

  it('off by default: no layer reports, frames carry no steps', async () => {
    const { b, recorder, net } = await tracedBoard();
    const socket = net.createConnection(7, '192.0.2.1');
    await b.settle(new Promise((resolve) => socket.once('connect', resolve)));
    socket.write(Buffer.alloc(10));
    await b.run(50);
    expect(recorder.frames().length).toBeGreaterThanOrEqual(4);
    expect(recorder.frames().every((f) => f.steps.length === 0)).toBe(true);
    socket.destroy();
  });
});
