/**
 * Program extensions (caps bit 15, ARM option EXT; docs/bridge-protocol.md §3.2): SAME, DIFFER,
 * COPY and SPAN, the same program run by the sketch itself (the committed hex in avr8js), the board
 * model and the mock HAL over one SPI memory laid out as a W5500's receive pointers are: a "read
 * pointer" and a "write pointer" register, a buffer between them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { HalError, type SpiDevice, type SpiTransaction } from '../../src/drivers/hal.js';
import { MockHal } from '../../hal/mock/mock-hal.js';
import { ArmOption, Command, encodeArm } from '../../hal/bridge/protocol.js';
import { createSimulatedBoard } from '../../boards/sim/index.js';
import { SpiMemoryChip } from './spi-memory-chip.js';
import { closeModelHal, openModelHal } from './model-hal.js';
import { virtualBench } from '../support/virtual-bench.js';

interface Board {
  readonly spi: SpiDevice;
  readonly chip: SpiMemoryChip;
  /** Let time pass until `condition` holds. */
  until(condition: () => boolean): Promise<void>;
  /** Let time pass until `promise` settles (a bridge board's clock runs by itself). */
  settle<T>(promise: Promise<T>): Promise<T>;
  close(): Promise<void>;
}

let open: Board | undefined;
afterEach(async () => {
  await open?.close();
  open = undefined;
});

async function bridgeUntil(delay: (ms: number) => Promise<void>, condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited++) {
    if (waited > 5_000) throw new Error('condition not met in time');
    await delay(1);
  }
}

const BOARDS: Record<string, () => Promise<Board>> = {
  sketch: async () => {
    const chip = new SpiMemoryChip();
    const board = await createSimulatedBoard({ board: 'uno', clock: new VirtualClock(), chip, linkModel: 'ideal' });
    const hal = await board.openHal();
    return {
      spi: hal.spi,
      chip,
      until: (condition) => bridgeUntil((ms) => hal.delay(ms), condition),
      settle: (promise) => promise,
      close: async () => {
        await hal.close();
        await board.stop();
      },
    };
  },
  'board model': async () => {
    const setup = await openModelHal();
    return { spi: setup.hal.spi, chip: setup.chip, until: (condition) => bridgeUntil((ms) => setup.hal.delay(ms), condition), settle: (promise) => promise, close: () => closeModelHal(setup) };
  },
  'mock HAL': async () => {
    const bench = virtualBench();
    const chip = new SpiMemoryChip();
    const hal = new MockHal({ clock: bench.clock, slave: chip, name: 'mock' });
    return { spi: hal.spi, chip, until: (condition) => bench.until(condition), settle: (promise) => bench.settle(promise), close: () => hal.close() };
  },
};

// The memory chip: 0x03 addr → read from addr on; 0x02 addr data… → write. The "pointers" are
// 16-bit big-endian values whose high byte is the READ opcode, so COPY of one into a transaction's
// first two write bytes makes a read at its low byte.
const RD = 0x10;
const WR = 0x12;
const DATA = 0x40;
const read = (address: number, count: number): SpiTransaction => ({ write: Uint8Array.of(0x03, address), read: count });

/** The W5500 receive program's shape: pointers, a second read, the data between them, the read pointer moved. */
function receive(sameAt: readonly [number, number] = [2, 4]): SpiTransaction[] {
  return [
    read(RD, 4),
    read(WR, 2),
    { write: Uint8Array.of(0, 0), read: 200, ifSame: sameAt, ifDiffer: [0, 2], copy: { at: 0, from: 0 }, readLengthFrom: { at: 2, bigEndian: true, minusAt: 0 } },
    { write: Uint8Array.of(0x02, RD, 0, 0), copy: { at: 2, from: 2 } },
  ];
}

function fill(chip: SpiMemoryChip, length: number): Uint8Array {
  const data = Uint8Array.from({ length }, (_, i) => (i * 7 + 1) & 0xff);
  chip.memory.set([0x03, DATA, 0x03, DATA + length], RD);
  chip.memory.set(data, DATA);
  return data;
}

for (const [name, make] of Object.entries(BOARDS)) {
  describe(`program extensions on the ${name}`, () => {
    it('says it runs them (caps bit 15)', async () => {
      open = await make();
      expect(open.spi.programExtensions).toBe(true);
    }, 60_000);

    it('reads the bytes between the two pointers (COPY the read pointer, LENGTH with SPAN), moves the read pointer (COPY), then finds nothing (DIFFER) and stops', async () => {
      open = await make();
      // 80 bytes: the last COPY refers to read byte 2 after 86 have been read (EXT keeps the first 64).
      const data = fill(open.chip, 80);
      const runs: Uint8Array[] = [];
      await open.settle(open.spi.arm!(receive(), (r) => runs.push(Uint8Array.from(r))));
      await open.until(() => runs.length >= 2);
      expect([...runs[0]!.subarray(0, 6)]).toEqual([0x03, DATA, 0x03, DATA + 80, 0x03, DATA + 80]);
      expect(runs[0]!.subarray(6)).toEqual(data);
      expect([...open.chip.memory.subarray(RD, RD + 2)]).toEqual([0x03, DATA + 80]);
      // The run that took something is repeated; this one found the pointers equal: cut short, not repeated.
      expect([...runs[1]!]).toEqual([0x03, DATA + 80, 0x03, DATA + 80, 0x03, DATA + 80]);
      await open.settle(open.spi.disarm!());
      expect(runs).toHaveLength(2);
    }, 60_000);

    it('stops before the data when two reads that must agree do not (SAME)', async () => {
      open = await make();
      fill(open.chip, 8);
      const runs: Uint8Array[] = [];
      // RD against WR: not the same, so nothing more runs.
      await open.settle(open.spi.arm!(receive([0, 2]), (r) => runs.push(Uint8Array.from(r))));
      await open.until(() => runs.length >= 1);
      await open.settle(open.spi.disarm!());
      expect(runs).toHaveLength(1);
      expect([...runs[0]!]).toEqual([0x03, DATA, 0x03, DATA + 8, 0x03, DATA + 8]);
      expect([...open.chip.memory.subarray(RD, RD + 2)]).toEqual([0x03, DATA]);
    }, 60_000);

    it('refuses them in a plain batch (transfer): they are for programs', async () => {
      open = await make();
      const error = await open.settle(open.spi.transfer([read(RD, 2), { write: Uint8Array.of(0x03, 0), read: 1, copy: { at: 0, from: 0 } }]).catch((e: unknown) => e));
      expect(error).toBeInstanceOf(HalError);
      expect((error as HalError).code).toBe('EINVAL');
    }, 60_000);
  });
}

describe('program extensions on the wire', () => {
  it('a program that uses none is encoded as before (no EXT option, no EXT bytes): any version-2 board reads it', () => {
    const plain = [read(RD, 2), { write: Uint8Array.of(0x02, RD, 1, 2) }];
    const armed = encodeArm(7, plain, { quiet: true }, { shortHeaders: true });
    expect([...armed.subarray(0, 4)]).toEqual([Command.ARM, 7, ArmOption.QUIET, armed.length - 4]);
    const ext = encodeArm(7, receive(), { quiet: true }, { shortHeaders: true });
    expect(ext[2]).toBe(ArmOption.QUIET | ArmOption.EXT);
  });

  it('a board without them (an older sketch) is never sent one: arm() says EUNSUPPORTED', async () => {
    const setup = await openModelHal({ programExtensions: false });
    try {
      expect(setup.hal.spi.programExtensions).toBe(false);
      const error = await setup.hal.spi.arm!(receive(), () => {}).catch((e: unknown) => e);
      expect((error as HalError).code).toBe('EUNSUPPORTED');
      expect(setup.commands).not.toContain(Command.ARM);
    } finally {
      await closeModelHal(setup);
    }
  });

  it('a reference to a byte no run has read at a fixed place is refused before it is sent (EINVAL)', async () => {
    const setup = await openModelHal();
    try {
      const program: SpiTransaction[] = [read(RD, 2), { write: Uint8Array.of(0x03, 0), read: 1, copy: { at: 0, from: 2 } }];
      const error = await setup.hal.spi.arm!(program, () => {}).catch((e: unknown) => e);
      expect((error as HalError).code).toBe('EINVAL');
      expect((error as HalError).message).toMatch(/refers to read bytes 2 and 3, but only 2 are sure to be kept/);
    } finally {
      await closeModelHal(setup);
    }
  });
});
