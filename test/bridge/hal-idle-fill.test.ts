/**
 * Idle fill through the host HAL (BridgeHalOptions.idleFill, SET_FILL after every HELLO): the
 * real sketch in avr8js behind the USB-serial link models, where a reply's last bytes otherwise
 * wait for the chip's timer (16U2: 4.096 ms; FTDI: 16 ms); and the TypeScript board model for when
 * the HAL sends SET_FILL.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { USB_CHIP_BY_BOARD, idleFillFor, idleFillForBoard } from '../../hal/bridge/options.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from '../../hal/bridge/protocol.js';
import { createSimulatedBoard, type LinkModelName, type SimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { SimulatedBinding } from '../../boards/sim/binding.js';
import { ModelBoard } from '../../boards/sim/model-board.js';
import { LINK_MODELS, SerialLink } from '../../boards/sim/serial-link.js';
import { driveVirtualClock, type VirtualTimeDriver } from '../../boards/sim/virtual-time.js';

const hexPath = process.env.SPINET_SKETCH_HEX;
const PATH = '/dev/ttySIM0';
const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Median of `count` PING round trips, one after the other, on the board's virtual clock. */
async function pingRoundTripP50(linkModel: LinkModelName, idleFill: number | undefined, count = 50): Promise<number> {
  const clock = new VirtualClock();
  const board: SimulatedBoard = await createSimulatedBoard({ board: 'uno', clock, chip: new SpiMemoryChip(), linkModel, ...(hexPath ? { hexPath } : {}) });
  cleanups.push(() => board.stop());
  const hal = await board.openHal({ idleFill });
  cleanups.push(() => hal.close());
  await hal.ping(); // the SET_FILL after HELLO is answered
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = clock.now();
    await hal.ping();
    times.push(clock.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(count / 2)]!;
}

describe('bridge HAL: idle fill pushes replies through the USB-serial chip', () => {
  it('knows the fill for each USB-serial chip: above the 16U2\'s 96-byte threshold, an FTDI packet of 62, none when unknown', () => {
    expect(idleFillFor('atmega16u2')).toBe(97);
    expect(idleFillFor('16u2')).toBe(97);
    expect(idleFillFor('ft232rl')).toBe(62);
    expect(idleFillFor('ftdi')).toBe(62);
    expect(idleFillFor('ftdi-1ms')).toBe(62);
    expect(idleFillFor('ideal')).toBe(0);
    expect(idleFillFor('ch340')).toBe(0);
    expect(idleFillFor('constructor')).toBe(0);
    expect(idleFillFor(undefined)).toBe(0);
  });

  it.each([
    ['16u2', 0.7],
    ['ftdi', 0.3],
  ] as const)('given the %s link, a PING round trip takes less with the fill the link model asks for than without', async (linkModel, ratio) => {
    const without = await pingRoundTripP50(linkModel, 0);
    const withFill = await pingRoundTripP50(linkModel, undefined);
    console.log(`${linkModel}: PING round trip p50 ${without.toFixed(3)} ms without fill, ${withFill.toFixed(3)} ms with ${idleFillFor(linkModel)}`);
    expect(withFill).toBeLessThan(without * ratio);
  });
});

interface ModelSetup {
  readonly board: ModelBoard;
  readonly hal: BridgeHal;
  /** Opcodes of the commands the board executed, in order. */
  readonly commands: number[];
}

async function modelSetup(options: { idleFill?: number | 'auto'; protocolVersion?: 1 | 2; name?: string } = {}): Promise<ModelSetup> {
  const clock = new VirtualClock();
  const commands: number[] = [];
  const board = new ModelBoard({ clock, chip: new SpiMemoryChip(), protocolVersion: options.protocolVersion, name: options.name, onCommand: (opcode) => commands.push(opcode) });
  const link = new SerialLink(clock, board, LINK_MODELS['16u2']);
  const binding = new SimulatedBinding();
  binding.register(PATH, link);
  const driver: VirtualTimeDriver = driveVirtualClock(clock);
  cleanups.push(() => driver.stop());
  const hal = await BridgeHal.open({ path: PATH, binding, clock, idleFill: options.idleFill });
  cleanups.push(() => hal.close());
  return { board, hal, commands };
}

describe('bridge HAL: when it sends SET_FILL', () => {
  it('given idleFill and a board with caps bit 10, sends SET_FILL first thing after every HELLO, also after a board reset', async () => {
    const { board, hal, commands } = await modelSetup({ idleFill: 97 });
    await hal.ping();
    expect(commands).toEqual([Command.SET_FILL, Command.PING]);
    commands.length = 0;
    const restored = new Promise<void>((resolve) => hal.onEvent((event) => event.type === 'link-restored' && resolve()));
    board.reboot();
    await restored;
    await hal.ping();
    expect(commands).toEqual([Command.SET_FILL, Command.PING]);
  });

  it('given idleFill 0 (the default), or a board without idle fill, sends no SET_FILL', async () => {
    for (const options of [{}, { idleFill: 0 }, { idleFill: 62, protocolVersion: 1 as const }]) {
      const { hal, commands } = await modelSetup(options);
      await hal.ping();
      expect(commands, JSON.stringify(options)).toEqual([Command.PING]);
    }
  });

  it("given idleFill 'auto', takes the fill from the board its HELLO names (uno, mega2560: 16U2; nano: FT232RL), none for an unknown one", async () => {
    for (const [name, fill] of [['uno', 97], ['mega2560', 97], ['nano', 62], ['model', 0]] as const) {
      const { board, hal, commands } = await modelSetup({ idleFill: 'auto', name });
      await hal.ping();
      expect(board.idleFillCount, name).toBe(fill);
      expect(commands, name).toEqual(fill > 0 ? [Command.SET_FILL, Command.PING] : [Command.PING]);
    }
  });

  it('knows the USB-serial chip of every board definition (boards/*.json usbSerial.chip)', () => {
    const dir = fileURLToPath(new URL('../../boards/', import.meta.url));
    const definitions = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(definitions.length).toBeGreaterThanOrEqual(3);
    for (const file of definitions) {
      const board = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { name: string; usbSerial: { chip: string } };
      expect(USB_CHIP_BY_BOARD.get(board.name), file).toBe(board.usbSerial.chip);
      expect(idleFillForBoard(board.name), file).toBeGreaterThan(0);
    }
  });

  it('refuses an idleFill that does not fit the command (0 to 255)', async () => {
    await expect(BridgeHal.open({ path: PATH, binding: new SimulatedBinding(), idleFill: 256 })).rejects.toThrow(RangeError);
  });
});
