/**
 * The whole stack on the simulated board, for end-to-end tests and benchmarks: spinet's Stack and
 * TCP on the chip's driver → BridgeHal → the committed sketch in avr8js → the emulated ENC28J60 (or
 * W5500, `chip`) → a
 * VirtualLan, optionally with a CaptureNic between the driver and the stack. `createPeer` adds a
 * second spinet stack (a VirtualNic, no chip) on the same LAN to talk to.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../src/time/clock.js';
import { SeededRandom, type Random } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { Tcp } from '../../src/tcp/tcp.js';
import type { TcpOptions } from '../../src/tcp/options.js';
import { createNet, type Net } from '../../src/socket/net.js';
import type { Nic } from '../../src/link/nic.js';
import { parseMac } from '../../src/wire/address.js';
import { Enc28j60Nic } from '../../src/drivers/enc28j60/driver.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';
import { CaptureNic, type CaptureSink } from '../../src/capture/capture.js';
import type { BridgeHal, BridgeHalOptions } from '../../hal/bridge/bridge-hal.js';
import type { LinkModel, LinkModelName, SimulatedBoard } from '../../boards/sim/index.js';
import { createSimulatedEthernetBoard, type Chip, type SimulatedEthernetBoardOptions } from '../../tools/boards.js';
import type { Enc28j60Options } from '../../src/drivers/enc28j60/options.js';

export const BOARD_ADDRESS = '192.0.2.10';
export const PEER_ADDRESS = '192.0.2.1';
export const BOARD_MAC = parseMac('02:5e:00:00:00:0a');

export interface StackNode {
  readonly stack: Stack;
  readonly tcp: Tcp;
  readonly net: Net;
}

export interface SimNode<Driver extends Enc28j60Nic | W5500Nic = Enc28j60Nic> extends StackNode {
  readonly board: SimulatedBoard;
  readonly hal: BridgeHal;
  readonly nic: Driver;
  readonly capture?: CaptureNic;
  /** Misuse of the strict chip so far (close() fails when there is any). */
  readonly violations: readonly string[];
  close(): Promise<void>;
}

export async function startStack(clock: Clock, random: Random, nic: Nic, address: string, tcpOptions: Partial<TcpOptions> = {}): Promise<StackNode> {
  const stack = new Stack({ clock, random });
  stack.addInterface(nic).addAddress(address, 24);
  const tcp = new Tcp(stack.ip, clock, random, tcpOptions);
  stack.registerTransport(tcp);
  await stack.start();
  return { stack, tcp, net: createNet(tcp) };
}

export interface SimNodeOptions {
  clock: Clock;
  lan: VirtualLan;
  random?: Random;
  linkModel?: LinkModelName | LinkModel;
  baudRate?: number;
  captureSinks?: CaptureSink[];
  hal?: Partial<BridgeHalOptions>;
  tcp?: Partial<TcpOptions>;
  /** The ENC28J60 driver's options (chip 'enc28j60'). */
  driverOptions?: Partial<Enc28j60Options>;
  chipOptions?: SimulatedEthernetBoardOptions['chipOptions'];
  /** The emulated chip and its driver (default the ENC28J60). */
  chip?: Chip;
  /** Told of each misuse of the strict chip as it happens (close() fails on any anyway). */
  onStrictViolation?: (message: string) => void;
}

export function createSimNode(options: SimNodeOptions & { chip?: 'enc28j60' }): Promise<SimNode>;
export function createSimNode(options: SimNodeOptions & { chip: 'w5500' }): Promise<SimNode<W5500Nic>>;
export async function createSimNode(options: SimNodeOptions): Promise<SimNode<Enc28j60Nic | W5500Nic>> {
  const { clock, lan } = options;
  const chip = options.chip ?? 'enc28j60';
  // The chip is strict: a misuse by the sketch or the driver fails the test at close().
  const violations: string[] = [];
  const board = await createSimulatedEthernetBoard({
    board: 'uno',
    chip,
    clock,
    lan,
    mac: BOARD_MAC,
    linkModel: options.linkModel ?? '16u2',
    onStrictViolation: (message) => {
      violations.push(message);
      options.onStrictViolation?.(message);
    },
    chipOptions: options.chipOptions,
  });
  const hal = await board.openHal(options.hal);
  if (options.baudRate && options.baudRate !== 1_000_000) await hal.setBaud(options.baudRate);
  const config = { hal, clock, mac: BOARD_MAC, name: chip };
  const nic = chip === 'w5500' ? new W5500Nic(config) : new Enc28j60Nic({ ...config, options: options.driverOptions });
  const capture = options.captureSinks ? new CaptureNic(nic, clock, options.captureSinks) : undefined;
  const node = await startStack(clock, options.random ?? new SeededRandom(10), capture ?? nic, BOARD_ADDRESS, options.tcp);
  return {
    ...node,
    board,
    hal,
    nic,
    violations,
    ...(capture ? { capture } : {}),
    close: async () => {
      await node.stack.stop();
      await capture?.closeSinks();
      await hal.close();
      await board.stop();
      if (violations.length > 0) throw new Error(`${chip} strict violations:\n${violations.join('\n')}`);
    },
  };
}

export function createPeer(clock: Clock, lan: VirtualLan, random: Random = new SeededRandom(1)): Promise<StackNode> {
  return startStack(clock, random, new VirtualNic(lan, parseMac('02:5e:00:00:00:01'), 'peer0'), PEER_ADDRESS);
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Deterministic test data that is not periodic at any small stride. */
export function testPattern(length: number, seed = 1): Uint8Array {
  const random = new SeededRandom(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 4) {
    const word = random.u32();
    for (let k = 0; k < 4 && i + k < length; k++) out[i + k] = (word >>> (8 * k)) & 0xff;
  }
  return out;
}

/**
 * Write `data` to an echo server through `net` and collect exactly that many bytes back;
 * `onProgress` sees the running count of echoed bytes (for faults injected mid-transfer).
 */
export function echo(net: Net, port: number, host: string, data: Uint8Array, onProgress?: (received: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(port, host);
    const chunks: Buffer[] = [];
    let received = 0;
    socket.on('error', reject);
    socket.on('connect', () => socket.end(Buffer.from(data)));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(Buffer.from(chunk));
      received += chunk.length;
      onProgress?.(received);
      if (received >= data.length) {
        socket.destroy();
        resolve(Buffer.concat(chunks));
      }
    });
    socket.on('close', () => {
      if (received < data.length) reject(new Error(`echo closed after ${received} of ${data.length} bytes`));
    });
  });
}
