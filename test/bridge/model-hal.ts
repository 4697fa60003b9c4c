/**
 * A BridgeHal on the TypeScript board model (boards/sim/model-board.ts) behind the USB link model,
 * with an SPI memory chip and a driven virtual clock: the host-side bridge tests' common setup.
 */
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { SimulatedBinding } from '../../boards/sim/binding.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { ModelBoard } from '../../boards/sim/model-board.js';
import { LINK_MODELS, SerialLink, type LinkModel } from '../../boards/sim/serial-link.js';
import { driveVirtualClock, type VirtualTimeDriver } from '../../boards/sim/virtual-time.js';

const PATH = '/dev/ttySIM0';

export interface ModelHal {
  readonly clock: VirtualClock;
  readonly chip: SpiMemoryChip;
  readonly board: ModelBoard;
  readonly link: SerialLink;
  readonly hal: BridgeHal;
  readonly driver: VirtualTimeDriver;
  /** Opcodes of the commands the board executed, in order. */
  readonly commands: number[];
}

export interface ModelHalOptions {
  readonly protocolVersion?: 1 | 2;
  /** The port's opening resets the board (DTR auto-reset, the default); false: it was running. */
  readonly resetOnOpen?: boolean;
  /** Default: the Uno's 16U2. */
  readonly linkModel?: LinkModel;
  readonly consumeBytesPerMs?: number;
  readonly isRetryable?: () => boolean;
  /** The board model's program extensions (caps bit 15), default on. */
  readonly programExtensions?: boolean;
}

/** Open the HAL on a fresh board model; close it with closeModelHal (in afterEach). */
export async function openModelHal(options: ModelHalOptions = {}): Promise<ModelHal> {
  const clock = new VirtualClock();
  const chip = new SpiMemoryChip();
  const commands: number[] = [];
  const board = new ModelBoard({
    clock,
    chip,
    protocolVersion: options.protocolVersion,
    programExtensions: options.programExtensions,
    consumeBytesPerMs: options.consumeBytesPerMs,
    onCommand: (opcode) => commands.push(opcode),
  });
  const link = new SerialLink(clock, board, options.linkModel ?? LINK_MODELS['16u2']);
  const binding = new SimulatedBinding();
  const resetOnOpen = options.resetOnOpen ?? true;
  binding.register(PATH, link, { resetOnOpen });
  if (!resetOnOpen) board.open(); // powered by USB before the port opens
  const driver = driveVirtualClock(clock);
  const hal = await BridgeHal.open({ path: PATH, binding, clock, baudRate: 1_000_000, ...(resetOnOpen ? {} : { bootWaitMs: 0 }), ...(options.isRetryable ? { isRetryable: options.isRetryable } : {}) });
  return { clock, chip, board, link, hal, driver, commands };
}

export async function closeModelHal(setup: ModelHal | undefined): Promise<void> {
  if (!setup) return;
  await setup.hal.close();
  setup.driver.stop();
}
