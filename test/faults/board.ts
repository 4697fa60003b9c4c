/**
 * The board path with every fault in reach, on virtual time: spinet's Stack and TCP on the
 * ENC28J60 driver → BridgeHal → the USB-serial link model (a Nano's FTDI; faults: bit errors, lost
 * and inserted bytes, unplug) → the sketch's TypeScript model (board reset) → SPI (read errors) → the emulated
 * ENC28J60 (chip reset, link flap, a receive ring that overflows) → a VirtualLan with a peer stack.
 * The board model runs the sketch's protocol without the AVR, so a transfer takes wall-clock
 * milliseconds; test/bridge/e2e-virtual.test.ts runs the serial faults through the real sketch.
 */
import { createHash } from 'node:crypto';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Enc28j60Emulator } from '../../hal/enc28j60/emulator.js';
import { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { SimulatedBinding } from '../../boards/sim/binding.js';
import { ModelBoard } from '../../boards/sim/model-board.js';
import { LINK_MODELS, SerialLink } from '../../boards/sim/serial-link.js';
import { FaultySpiChip } from '../../boards/sim/spi-faults.js';
import { driveVirtualClock, type VirtualTimeDriver } from '../../boards/sim/virtual-time.js';
import { Enc28j60Nic } from '../../src/drivers/enc28j60/driver.js';
import { Stack } from '../../src/stack/stack.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet, type Net } from '../../src/socket/net.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { parseMac } from '../../src/wire/address.js';

export const BOARD_ADDRESS = '192.0.2.10';
export const PEER_ADDRESS = '192.0.2.1';
const BOARD_MAC = parseMac('02:5e:00:00:00:0a');
const PEER_MAC = parseMac('02:5e:00:00:00:01');
const PATH = '/dev/ttyFAULTS0';

export interface FaultyBoard {
  readonly clock: VirtualClock;
  readonly lan: VirtualLan;
  readonly chip: Enc28j60Emulator;
  readonly spi: FaultySpiChip;
  readonly board: ModelBoard;
  readonly link: SerialLink;
  readonly hal: BridgeHal;
  readonly nic: Enc28j60Nic;
  readonly stack: Stack;
  readonly peer: { readonly stack: Stack; readonly net: Net; readonly nic: VirtualNic };
  /** What the strict chip reported as misuse; every test expects none (a fault is not misuse). */
  readonly violations: string[];
  close(): Promise<void>;
}

export async function faultyBoard(seed = 1): Promise<FaultyBoard> {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  const violations: string[] = [];
  const chip = new Enc28j60Emulator({ clock, mac: BOARD_MAC, rxWireTime: true, strict: true, onStrictViolation: (m) => violations.push(m) });
  chip.plugInto(lan);
  const spi = new FaultySpiChip(chip, new SeededRandom(seed * 7 + 1));
  const board = new ModelBoard({ clock, chip: spi });
  // The board model sends a loop pass's frames at once, with no UART time; the 16U2 model's
  // 128-byte ring would overflow on that, which a real sketch's 1 Mbaud never does. A Nano's FTDI
  // chip buffers without that limit.
  const link = new SerialLink(clock, board, LINK_MODELS.ftdi);
  const binding = new SimulatedBinding();
  binding.register(PATH, link, { resetOnOpen: true });
  const driver: VirtualTimeDriver = driveVirtualClock(clock);
  const hal = await BridgeHal.open({ path: PATH, binding, clock, baudRate: 1_000_000 });
  const nic = new Enc28j60Nic({ hal, clock, mac: BOARD_MAC, name: 'enc28j60' });
  const stack = new Stack({ clock, random: new SeededRandom(seed * 7 + 2) });
  stack.addInterface(nic).addAddress(BOARD_ADDRESS, 24);
  const tcp = new Tcp(stack.ip, clock, new SeededRandom(seed * 7 + 3), {}, stack.containment);
  stack.registerTransport(tcp);
  await stack.start();
  await startTcpService(createNet(tcp), 'echo', 7);

  const peerNic = new VirtualNic(lan, PEER_MAC, 'peer0');
  const peerStack = new Stack({ clock, random: new SeededRandom(seed * 7 + 4) });
  peerStack.addInterface(peerNic).addAddress(PEER_ADDRESS, 24);
  const peerTcp = new Tcp(peerStack.ip, clock, new SeededRandom(seed * 7 + 5), {}, peerStack.containment);
  peerStack.registerTransport(peerTcp);
  await peerStack.start();
  return {
    clock,
    lan,
    chip,
    spi,
    board,
    link,
    hal,
    nic,
    stack,
    peer: { stack: peerStack, net: createNet(peerTcp), nic: peerNic },
    violations,
    close: async () => {
      await peerStack.stop();
      await stack.stop();
      await hal.close();
      link.close();
      driver.stop();
    },
  };
}

/** Deterministic data that repeats at no small stride. */
export function pattern(length: number, seed: number): Uint8Array {
  const random = new SeededRandom(seed);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = random.u32() & 0xff;
  return out;
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface EchoResult {
  readonly ok: boolean;
  readonly bytes: number;
  readonly simulatedSeconds: number;
  readonly error?: string;
}

/**
 * Echo `data` off the board's TCP echo from the peer: what comes back must be `data` exactly.
 * `during` sees the echoed byte count (faults struck mid-transfer); gives up after `limitMs` of
 * virtual time (a link too faulty to use).
 */
export function echoThroughBoard(b: FaultyBoard, data: Uint8Array, options: { limitMs?: number; during?: (received: number) => void } = {}): Promise<EchoResult> {
  const t0 = b.clock.now();
  return new Promise((resolve) => {
    const socket = b.peer.net.createConnection(7, BOARD_ADDRESS);
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const done = (result: Omit<EchoResult, 'simulatedSeconds'>) => {
      if (settled) return;
      settled = true;
      deadline.cancel();
      socket.destroy();
      resolve({ ...result, simulatedSeconds: (b.clock.now() - t0) / 1000 });
    };
    const deadline = b.clock.schedule(options.limitMs ?? 120_000, () => done({ ok: false, bytes: received, error: 'timed out' }));
    socket.on('error', (error: Error) => done({ ok: false, bytes: received, error: error.message }));
    socket.on('connect', () => socket.end(Buffer.from(data)));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(Buffer.from(chunk));
      received += chunk.length;
      options.during?.(received);
      if (received >= data.length) {
        const echoed = Buffer.concat(chunks);
        const exact = echoed.length === data.length && sha256(echoed) === sha256(data);
        done({ ok: exact, bytes: received, ...(exact ? {} : { error: 'echo differs from what was sent' }) });
      }
    });
  });
}
