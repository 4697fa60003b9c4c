/**
 * Optiboot 4.4 (the Uno bootloader Arduino 1.8 and Debian's arduino-core-avr ship), emulated in
 * TypeScript against an avr8js program memory.
 *
 * Why not run the real optiboot hex in avr8js: avr8js 0.21.1 decodes SPM as a no-op
 * (`cpu/instruction.js`: "SPM ... not implemented"), so the real bootloader would answer avrdude
 * but never change the flash. This file follows `bootloaders/optiboot/optiboot.c` line by line
 * instead, including its quirks, so avrdude sees the same bytes a real Uno sends:
 * - every received byte kicks the 1 s watchdog; silence for 1 s starts the application;
 * - a command not followed by CRC_EOP shortens the watchdog to 16 ms and hangs (→ application);
 * - LEAVE_PROGMODE ('Q') also shortens the watchdog to 16 ms, so the new sketch starts at once;
 * - PROG_PAGE always programs a whole SPM page from its 256-byte RAM buffer; UNIVERSAL, SET_DEVICE
 *   and CHIP_ERASE are acknowledged and ignored; READ_SIGN answers the compiled-in signature;
 * - SPM cannot write the boot section (Arduino sets lock bits 0x0F), so those pages are left as
 *   they are and avrdude's verify catches an oversized sketch.
 */
import type { Clock, TimerHandle } from '../../src/time/clock.js';
import {
  CRC_EOP,
  PARM_STK_SW_MAJOR,
  PARM_STK_SW_MINOR,
  SET_DEVICE_EXT_LENGTH,
  SET_DEVICE_LENGTH,
  STK_GET_PARAMETER,
  STK_INSYNC,
  STK_LEAVE_PROGMODE,
  STK_LOAD_ADDRESS,
  STK_OK,
  STK_PROG_PAGE,
  STK_READ_PAGE,
  STK_READ_SIGN,
  STK_SET_DEVICE,
  STK_SET_DEVICE_EXT,
  STK_UNIVERSAL,
  UNIVERSAL_LENGTH,
} from './stk500.js';

/** ATmega328P: signature 1E 95 0F, 128-byte SPM pages, 512-byte boot section at 0x7E00. */
export const ATMEGA328P = {
  signature: [0x1e, 0x95, 0x0f] as const,
  pageBytes: 128,
  bootStart: 0x7e00,
};

/** optiboot.c: `watchdogConfig(WATCHDOG_1S)` on entry, `WATCHDOG_16MS` to leave. */
export const WATCHDOG_1S = 1000;
export const WATCHDOG_16MS = 16;

const OPTIBOOT_MAJVER = 4;
const OPTIBOOT_MINVER = 4;
/** optiboot.c: `buff` is RAMSTART..RAMSTART+255, filled by PROG_PAGE. */
const BUFFER_BYTES = 256;

export interface OptibootOptions {
  /** The target's program memory (avr8js `cpu.progMem`); SPM page writes land here. */
  readonly flash: Uint16Array;
  /** Clock for the watchdog (wall time for a pty-attached board, virtual in unit tests). */
  readonly clock: Clock;
  /** Bootloader → host bytes (the USART's TX line while the bootloader runs). */
  readonly transmit: (bytes: Uint8Array) => void;
  /** The watchdog fired: the chip resets and, no longer an external reset, starts the sketch. */
  readonly startApplication: () => void;
  readonly signature?: readonly [number, number, number];
  readonly pageBytes?: number;
  readonly bootStart?: number;
  /** Watchdog period while waiting for commands; optiboot's is 1 s. */
  readonly timeoutMs?: number;
}

/** What the emulated CPU is doing between received bytes. */
type Activity = 'getch' | 'hung';

export class OptibootEmulator {
  private readonly signature: readonly [number, number, number];
  private readonly pageBytes: number;
  private readonly bootStart: number;
  private readonly timeoutMs: number;
  private program: Generator<Activity, never, number> | undefined;
  private activity: Activity = 'getch';
  private watchdogPeriod = WATCHDOG_1S;
  private watchdog: TimerHandle | undefined;
  private output: number[] = [];
  private readonly buffer = new Uint8Array(BUFFER_BYTES);
  /** The SPM temporary page buffer; hardware erases it after every page write. */
  private readonly pageBuffer: Uint16Array;

  constructor(private readonly options: OptibootOptions) {
    this.signature = options.signature ?? ATMEGA328P.signature;
    this.pageBytes = options.pageBytes ?? ATMEGA328P.pageBytes;
    this.bootStart = options.bootStart ?? ATMEGA328P.bootStart;
    this.timeoutMs = options.timeoutMs ?? WATCHDOG_1S;
    this.pageBuffer = new Uint16Array(this.pageBytes / 2).fill(0xffff);
  }

  /** True from an external reset until the watchdog hands over to the sketch. */
  get running(): boolean {
    return this.program !== undefined;
  }

  /** External reset (the host opened the port, DTR pulsed RESET): optiboot starts listening. */
  reset(): void {
    this.program = this.main();
    this.activity = this.program.next(0).value;
    this.watchdogConfig(this.timeoutMs);
  }

  /** Stop without starting the sketch (board powered off / simulator closed). */
  stop(): void {
    this.watchdog?.cancel();
    this.watchdog = undefined;
    this.program = undefined;
  }

  /** Host → board bytes. Ignored unless the bootloader is running. */
  receive(bytes: Uint8Array): void {
    for (const byte of bytes) {
      if (!this.program) break;
      // optiboot.c getch(): `watchdogReset()` on every byte read; a hung loop reads nothing.
      if (this.activity !== 'getch') continue;
      this.watchdogConfig(this.watchdogPeriod);
      this.activity = this.program.next(byte).value;
    }
    this.flush();
  }

  private watchdogConfig(periodMs: number): void {
    this.watchdogPeriod = periodMs;
    this.watchdog?.cancel();
    this.watchdog = this.options.clock.schedule(periodMs, () => {
      this.watchdog = undefined;
      this.program = undefined;
      this.options.startApplication();
    });
  }

  private putch(byte: number): void {
    this.output.push(byte);
  }

  private flush(): void {
    if (this.output.length === 0) return;
    const bytes = Uint8Array.from(this.output);
    this.output = [];
    this.options.transmit(bytes);
  }

  private *getch(): Generator<Activity, number, number> {
    return yield 'getch';
  }

  private *verifySpace(): Generator<Activity, void, number> {
    if ((yield* this.getch()) !== CRC_EOP) {
      this.watchdogConfig(WATCHDOG_16MS);
      for (;;) yield 'hung';
    }
    this.putch(STK_INSYNC);
  }

  private *getNch(count: number): Generator<Activity, void, number> {
    for (let i = 0; i < count; i++) yield* this.getch();
    yield* this.verifySpace();
  }

  /** optiboot.c `main()`'s command loop. `address` is a byte address, 16 bits like the C. */
  private *main(): Generator<Activity, never, number> {
    let address = 0;
    for (;;) {
      const command = yield* this.getch();
      if (command === STK_GET_PARAMETER) {
        const which = yield* this.getch();
        yield* this.verifySpace();
        this.putch(which === PARM_STK_SW_MINOR ? OPTIBOOT_MINVER : which === PARM_STK_SW_MAJOR ? OPTIBOOT_MAJVER : 0x03);
      } else if (command === STK_SET_DEVICE) {
        yield* this.getNch(SET_DEVICE_LENGTH);
      } else if (command === STK_SET_DEVICE_EXT) {
        yield* this.getNch(SET_DEVICE_EXT_LENGTH);
      } else if (command === STK_LOAD_ADDRESS) {
        const low = yield* this.getch();
        const high = yield* this.getch();
        // STK500v1 addresses flash in words.
        address = (((high << 8) | low) * 2) & 0xffff;
        yield* this.verifySpace();
      } else if (command === STK_UNIVERSAL) {
        yield* this.getNch(UNIVERSAL_LENGTH);
        this.putch(0x00);
      } else if (command === STK_PROG_PAGE) {
        yield* this.getch(); // length, high byte: ignored (≤ 256)
        const length = (yield* this.getch()) || 256;
        yield* this.getch(); // memory type: flash assumed
        for (let i = 0; i < length; i++) this.buffer[i] = yield* this.getch();
        yield* this.verifySpace();
        this.programPage(address);
      } else if (command === STK_READ_PAGE) {
        yield* this.getch();
        const length = (yield* this.getch()) || 256;
        yield* this.getch();
        yield* this.verifySpace();
        for (let i = 0; i < length; i++) {
          this.putch(this.readFlashByte(address));
          address = (address + 1) & 0xffff;
        }
      } else if (command === STK_READ_SIGN) {
        yield* this.verifySpace();
        for (const byte of this.signature) this.putch(byte);
      } else if (command === STK_LEAVE_PROGMODE) {
        this.watchdogConfig(WATCHDOG_16MS);
        yield* this.verifySpace();
      } else {
        // GET_SYNC, ENTER_PROGMODE, CHIP_ERASE, ...: just "in sync, ok".
        yield* this.verifySpace();
      }
      this.putch(STK_OK);
    }
  }

  /** Page erase, fill the SPM buffer from `buff` (a whole page, as optiboot does), page write. */
  private programPage(address: number): void {
    const pageWords = this.pageBytes / 2;
    for (let word = 0; word < pageWords; word++) {
      const index = ((address >> 1) + word) % pageWords;
      this.pageBuffer[index] = this.buffer[2 * word] | (this.buffer[2 * word + 1] << 8);
    }
    const pageStart = address & ~(this.pageBytes - 1);
    const flashBytes = this.options.flash.length * 2;
    if (pageStart < this.bootStart && pageStart < flashBytes) {
      this.options.flash.set(this.pageBuffer, pageStart / 2);
    }
    this.pageBuffer.fill(0xffff);
  }

  private readFlashByte(address: number): number {
    const word = this.options.flash[address >> 1] ?? 0xffff;
    return address & 1 ? word >> 8 : word & 0xff;
  }
}
