/**
 * Opening the port resets the board into its bootloader; the host must not talk to it. Debian's
 * bootloaders (arduino-core-avr: optiboot for the Uno, stk500v2 for the Mega 2560) run in simavr
 * at the top of flash with BOOTRST set, the committed sketch at 0 (boards/bootloader/simavr.ts);
 * the host's bytes at 1 Mbaud reach them as a UART at 115200 reads them.
 *
 * - An old host (HELLO at once on open, again every 250 ms, as before `bootWaitMs`) can make
 *   optiboot erase flash page 0 — the sketch's vector table — and keeps stk500v2 in command mode,
 *   so the Mega's sketch never starts.
 * - The host as it is waits for the sketch's boot HELLO: the flash is untouched, the session opens.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { BridgeHal } from '../../hal/bridge/bridge-hal.js';
import { HostHelloOption, encodeHostHello } from '../../hal/bridge/protocol.js';
import { Mcusr, SimavrBoard, debianBootloader, simavrMissing } from '../../boards/bootloader/simavr.js';
import { parseIntelHex } from '../../boards/bootloader/intel-hex.js';
import { committedHexPath } from '../../boards/sim/index.js';
import { SimulatedBinding } from '../../boards/sim/binding.js';
import { LINK_MODELS, SerialLink } from '../../boards/sim/serial-link.js';

const skip = simavrMissing();
if (skip) console.warn(`bootloader tests skipped: ${skip}`);

const PATH = '/dev/ttySPINET-FACTORY';
let boards: SimavrBoard[] = [];
let hals: BridgeHal[] = [];

afterEach(async () => {
  for (const hal of hals) await hal.close();
  for (const board of boards) await board.stop();
  boards = [];
  hals = [];
});

/**
 * A board as it ships: bootloader, BOOTRST, the sketch; powered on, behind a 16U2 link. The 16U2
 * passes host bytes on with `gapUs` of idle line between them (its main loop's pace).
 */
async function factoryBoard(board: 'uno' | 'mega2560', gapUs: (index: number) => number = () => 0) {
  const clock = new VirtualClock();
  const bootloader = debianBootloader(board);
  const sim = new SimavrBoard({
    mcu: board === 'uno' ? 'atmega328p' : 'atmega2560',
    hexFiles: [bootloader.hexPath, committedHexPath(board)],
    resetVector: bootloader.bootStart,
    clock,
    hostBaud: () => 1_000_000,
    hostGapUs: gapUs,
  });
  boards.push(sim);
  await sim.load();
  await sim.powerOn();
  const link = new SerialLink(clock, sim, LINK_MODELS['16u2']);
  const binding = new SimulatedBinding();
  binding.register(PATH, link, { resetOnOpen: true });
  const sketchPage0 = parseIntelHex(readFileSync(committedHexPath(board))).subarray(0, 256);
  return { clock, sim, link, binding, sketchPage0 };
}

const wait = (clock: VirtualClock, ms: number) => new Promise<void>((resolve) => clock.schedule(ms, resolve));

describe.skipIf(skip)('the host and the bootloader after a port open', () => {
  it('given an Uno, the old host (HELLO at once, every 250 ms) made optiboot erase page 0; the host as it is leaves it and connects', async () => {
    // What optiboot reads of a HELLO at 1 Mbaud depends on its bytes (the seq) and on the gaps the
    // 16U2 leaves between them; with 0.75 µs gaps, HELLO seq 0x6a reads as 'd' (PROG_PAGE) and the
    // next three HELLOs as its length and memory type: optiboot erases the page at address 0
    // before it reads the page's bytes (optiboot.c: "If we are in RWW section, immediately start
    // page erase"). The old host's HELLOs go 0x35 apart over its reopen loop, so it meets 0x6a.
    // Of 256 seqs × gaps 0–4 µs × 4 sample phases, 32 in 17 408 first HELLOs read as 'd' (uart-line.ts).
    const old = await factoryBoard('uno', () => 0.75);
    await wait(old.clock, 10);
    old.link.hostOpen(true);
    let seq = 0x6a;
    const hello = () => {
      old.link.hostWrite(encodeHostHello(seq, HostHelloOption.END_FRAMES));
      seq = (seq + 0x35) & 0xff;
      old.clock.schedule(250, hello);
    };
    // The first HELLO reaches the AVR 1 ms (one USB frame) later, at this phase of its UART's sampling.
    const firstUs = 100.25 + (17 / 16) * Math.ceil((11_000 - 100.25) / (17 / 16));
    old.clock.schedule((firstUs - 1_000) / 1_000 - old.clock.now(), hello);
    await wait(old.clock, 3_000);
    expect([...(await old.sim.flash(0, 128))].every((b) => b === 0xff)).toBe(true);

    const fresh = await factoryBoard('uno', () => 0.75);
    const hal = await BridgeHal.open({ path: PATH, binding: fresh.binding, clock: fresh.clock });
    hals.push(hal);
    expect(hal.hello?.name).toBe('uno');
    expect([...(await fresh.sim.flash(0, 256))]).toEqual([...fresh.sketchPage0]);
    // And again: a second open resets the board again, and again the host waits.
    await hal.close();
    hals = [];
    const again = await BridgeHal.open({ path: PATH, binding: fresh.binding, clock: fresh.clock });
    hals.push(again);
    expect(await again.ping()).toBeGreaterThan(0);
    expect([...(await fresh.sim.flash(0, 256))]).toEqual([...fresh.sketchPage0]);
  }, 300_000);

  it('given a Mega 2560, the old host keeps stk500v2 in command mode and the sketch never starts; the host as it is connects', async () => {
    const old = await factoryBoard('mega2560');
    const oldHal = BridgeHal.open({ path: PATH, binding: old.binding, clock: old.clock, bootWaitMs: 0, openTimeoutMs: 4_000 });
    const outcome = oldHal.then(
      (hal) => (hals.push(hal), 'connected'),
      (error: Error) => error.message,
    );
    await wait(old.clock, 4_200);
    // Still in the boot section (0x3E000 up), and nothing but bootloader answers came back.
    expect(old.sim.uart.pc).toBeGreaterThanOrEqual(0x3e000);
    expect(await outcome).toMatch(/no HELLO/);

    const fresh = await factoryBoard('mega2560');
    const t0 = fresh.clock.now();
    const hal = await BridgeHal.open({ path: PATH, binding: fresh.binding, clock: fresh.clock });
    hals.push(hal);
    expect(hal.hello?.name).toBe('mega2560');
    // The sketch announced itself after stk500v2's ≈0.8 s: the host answered that, not a timer.
    expect(fresh.clock.now() - t0).toBeLessThan(1_500);
    expect(hal.hello?.csPin).toBe(10);
  }, 300_000);
});

describe.skipIf(skip)('resetCause as the bootloaders leave it', () => {
  async function causeAfter(board: 'uno' | 'mega2560', bootloader: boolean | { hexPath: string; bootStart: number }, mcusr: number) {
    const clock = new VirtualClock();
    const loader = typeof bootloader === 'object' ? bootloader : debianBootloader(board);
    const sim = new SimavrBoard({
      mcu: board === 'uno' ? 'atmega328p' : 'atmega2560',
      hexFiles: bootloader ? [loader.hexPath, committedHexPath(board)] : [committedHexPath(board)],
      resetVector: bootloader ? loader.bootStart : 0,
      clock,
      hostBaud: () => 1_000_000,
    });
    boards.push(sim);
    await sim.load();
    await sim.powerOn();
    const link = new SerialLink(clock, sim, LINK_MODELS.ideal);
    const binding = new SimulatedBinding();
    binding.register(PATH, link, { resetOnOpen: false });
    // Until the sketch runs (RAM holds its marker): past the bootloader's wait, if there is one.
    const settleMs = bootloader === true ? 2_000 : 50;
    await wait(clock, settleMs);
    const first = await BridgeHal.open({ path: PATH, binding, clock, bootWaitMs: 0 });
    const powerOn = first.hello!.resetCause;
    await sim.reset(mcusr);
    await wait(clock, settleMs);
    const hal = await BridgeHal.open({ path: PATH, binding, clock, bootWaitMs: 0 });
    await first.close();
    hals.push(hal);
    return { powerOn, cause: hal.hello!.resetCause };
  }

  it('without a bootloader (flashed over ISP), shows power-on, brown-out, watchdog and external resets', async () => {
    for (const flag of [Mcusr.BORF, Mcusr.WDRF, Mcusr.EXTRF]) {
      const { powerOn, cause } = await causeAfter('uno', false, flag);
      expect(powerOn).toBe(Mcusr.PORF);
      expect(cause).toBe(flag);
    }
  }, 300_000);

  it('behind a bootloader that hands MCUSR over in r2 (the convention of optiboot 6 and later), shows a brown-out', async () => {
    // Four instructions of what such a bootloader does on a reset that is not external: clear r1,
    // read MCUSR, clear it, leave it in r2, jump to the sketch.
    const stub = join(tmpdir(), `spinet-r2-bootloader-${process.pid}.hex`);
    writeFileSync(stub, intelHexRecord(0x7e00, [0x11, 0x24, 0x84, 0xb7, 0x14, 0xbe, 0x28, 0x2e, 0x0c, 0x94, 0x00, 0x00]) + ':00000001FF\n');
    const { powerOn, cause } = await causeAfter('uno', { hexPath: stub, bootStart: 0x7e00 }, Mcusr.BORF);
    expect(powerOn).toBe(Mcusr.PORF);
    expect(cause).toBe(Mcusr.BORF);
  }, 300_000);

  it("behind Debian's optiboot (4.4, which clears MCUSR and hands nothing over), shows power-on, and 0 — not a wrong cause — after a brown-out", async () => {
    const { powerOn, cause } = await causeAfter('uno', true, Mcusr.BORF);
    expect(powerOn).toBe(Mcusr.PORF);
    expect(cause).toBe(0);
  }, 300_000);

  it("behind Debian's stk500v2 (which clears MCUSR too), shows power-on, and 0 after a watchdog reset", async () => {
    const { powerOn, cause } = await causeAfter('mega2560', true, Mcusr.WDRF);
    expect(powerOn).toBe(Mcusr.PORF);
    expect(cause).toBe(0);
  }, 300_000);
});

/** One Intel HEX data record. */
function intelHexRecord(address: number, data: number[]): string {
  const bytes = [data.length, address >> 8, address & 0xff, 0, ...data];
  const checksum = (0x100 - (bytes.reduce((a, b) => a + b, 0) & 0xff)) & 0xff;
  return `:${[...bytes, checksum].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join('')}\n`;
}
