/**
 * A board as it leaves the factory — the real bootloader at the top of flash, BOOTRST set, the
 * bridge sketch at 0 — run in simavr (Debian's `simavr`, `libsimavr-dev`) through a small C
 * harness (simavr-harness.c, compiled on first use), in lock step with a VirtualClock. Unlike the
 * TypeScript optiboot model (optiboot.ts), which acts on a command only once it is complete, this
 * runs the bootloaders' own machine code, so what they do with a host's stray bytes — optiboot
 * erasing a page before it checks the command's end, stk500v2 staying in command mode while bytes
 * keep coming — happens here as on a board.
 *
 * Host bytes reach the AVR through uart-line.ts at the rate the AVR's UART is set to, so a host at
 * 1 Mbaud looks to a bootloader at 115200 as it does on a board (garbage, some with framing errors).
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VirtualClock } from '../../src/time/virtual-clock.js';
import { parseIntelHex } from './intel-hex.js';
import { receiveAt, receiveMatched, sendAt, type ReceivedCharacter } from './uart-line.js';

const HARNESS_SOURCE = fileURLToPath(new URL('./simavr-harness.c', import.meta.url));
const SIMAVR_HEADER = '/usr/include/simavr/sim_avr.h';
export const DEBIAN_BOOTLOADERS = '/usr/share/arduino/hardware/arduino/avr/bootloaders';

/** MCUSR flags (ATmega328P datasheet §10.9.1; the same bits on the ATmega2560). */
export const Mcusr = { PORF: 0x01, EXTRF: 0x02, BORF: 0x04, WDRF: 0x08 } as const;

/** Why simavr boards cannot run here (a missing package), or false. */
export function simavrMissing(): string | false {
  const missing: string[] = [];
  if (!existsSync(SIMAVR_HEADER)) missing.push('libsimavr-dev');
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
  } catch {
    missing.push('gcc');
  }
  if (!existsSync(join(DEBIAN_BOOTLOADERS, 'optiboot', 'optiboot.c'))) missing.push('arduino-core-avr');
  try {
    execFileSync('avr-gcc', ['--version'], { stdio: 'ignore' });
  } catch {
    missing.push('gcc-avr');
  }
  return missing.length === 0 ? false : `missing ${missing.join(', ')} (apt-get install -y simavr libsimavr-dev gcc libc6-dev gcc-avr avr-libc arduino-core-avr)`;
}

function cacheDir(): string {
  const dir = join(tmpdir(), 'spinet-simavr');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The harness binary, compiled once per source version. */
export function harnessBinary(): string {
  const source = readFileSync(HARNESS_SOURCE);
  const binary = join(cacheDir(), `harness-${createHash('sha256').update(source).digest('hex').slice(0, 12)}`);
  if (!existsSync(binary)) {
    execFileSync('cc', ['-O2', '-Wall', '-I/usr/include/simavr', HARNESS_SOURCE, '-lsimavr', '-o', `${binary}.tmp`], { stdio: 'pipe' });
    execFileSync('mv', [`${binary}.tmp`, binary]);
  }
  return binary;
}

export interface Bootloader {
  readonly name: 'optiboot' | 'stk500v2';
  readonly hexPath: string;
  /** Byte address of the boot section (the BOOTRST reset vector). */
  readonly bootStart: number;
  /** How the image was obtained, when it is not Debian's hex as shipped. */
  readonly note?: string;
}

/**
 * Debian's bootloader for a board: stk500v2 for the Mega 2560 as shipped; optiboot for the
 * Uno/Nano from Debian's optiboot.c. Debian's rebuilt optiboot_atmega328.hex (arduino-core-avr
 * 1.8.7+dfsg-1~deb12u1) is 532 bytes for a 512-byte boot section: it runs past the end of flash,
 * avrdude refuses it, and no board carries it. So the same source is built with Debian's compiler
 * and the flags of its Makefile plus three that make it fit (the Arduino release's hex, built with
 * an older gcc, is 500 bytes of the same code).
 */
export function debianBootloader(board: 'uno' | 'nano' | 'mega2560'): Bootloader {
  if (board === 'mega2560') return { name: 'stk500v2', hexPath: join(DEBIAN_BOOTLOADERS, 'stk500v2', 'stk500boot_v2_mega2560.hex'), bootStart: 0x3e000 };
  const shipped = join(DEBIAN_BOOTLOADERS, 'optiboot', 'optiboot_atmega328.hex');
  if (parseIntelHex(readFileSync(shipped)).length <= 0x8000) return { name: 'optiboot', hexPath: shipped, bootStart: 0x7e00 };
  const dir = join(cacheDir(), 'optiboot');
  const built = join(dir, 'optiboot_atmega328.hex');
  if (!existsSync(built)) {
    mkdirSync(dir, { recursive: true });
    for (const file of readdirSync(join(DEBIAN_BOOTLOADERS, 'optiboot'))) if (!file.endsWith('.hex')) cpSync(join(DEBIAN_BOOTLOADERS, 'optiboot', file), join(dir, file));
    const optimize = '-Os -fno-inline-small-functions -fno-split-wide-types -mshort-calls -fwhole-program -fno-move-loop-invariants -fno-tree-loop-optimize';
    execFileSync('make', ['-s', '-C', dir, 'atmega328', `OPTIMIZE=${optimize}`], { stdio: 'pipe' });
  }
  if (parseIntelHex(readFileSync(built)).length > 0x8000) throw new Error(`${built} does not fit the 512-byte boot section either`);
  return { name: 'optiboot', hexPath: built, bootStart: 0x7e00, note: `Debian's optiboot_atmega328.hex overruns the boot section; built from its optiboot.c (${built})` };
}

export interface SimavrBoardOptions {
  readonly mcu: 'atmega328p' | 'atmega2560';
  /** Hex files loaded into flash at their addresses (bootloader and sketch). */
  readonly hexFiles: readonly string[];
  /** Reset vector (byte address); 0 without a bootloader. */
  readonly resetVector: number;
  readonly clock: VirtualClock;
  /** The host's rate (what the USB-serial chip's UART runs at). */
  hostBaud(): number;
  /** Idle line before each host byte after the first of a write (µs): the USB-serial chip's pace. */
  readonly hostGapUs?: (index: number) => number;
  /** CPU time run between two looks at the event loop (ms of simulated time). */
  readonly sliceMs?: number;
}

interface UartState {
  ubrr: number;
  u2x: boolean;
  rxEnabled: boolean;
  pc: number;
}

const CLOCK_HZ = 16_000_000;

/** A simavr board behind the serial link (a `LinkTarget`: boards/sim/serial-link.ts). */
export class SimavrBoard {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { lines: string[]; until: (line: string) => boolean; resolve: (lines: string[]) => void }[] = [];
  private partial = '';
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();
  private cycle = 0;
  /** When the host's line to the AVR is free again (µs on the board's scale). */
  private hostLineFreeUs = 0;
  private baseMs: number;
  private running = false;
  private stopped: Promise<void> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  readonly uart: UartState = { ubrr: 0, u2x: false, rxEnabled: false, pc: 0 };
  /** Lines the harness refused (a bug here, not on the board). */
  readonly errors: string[] = [];
  /** What stopped the run loop, if something did. */
  failure: unknown;
  /** Every byte the AVR sent, as it sent it (at its own rate). */
  readonly sent: number[] = [];

  constructor(private readonly options: SimavrBoardOptions) {
    this.baseMs = options.clock.now();
    this.child = spawn(harnessBinary(), [options.mcu, String(CLOCK_HZ)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onOutput(chunk));
    this.child.stderr.resume();
  }

  /** Load the images and set the reset vector. */
  async load(): Promise<void> {
    for (const file of this.options.hexFiles) {
      const [reply] = await this.command(`load ${file}`);
      if (!reply?.startsWith('ok')) throw new Error(`simavr: ${reply}`);
    }
    await this.command(`bootrst ${this.options.resetVector}`);
  }

  /** The board's AVR time, ms on the clock's scale. */
  get timeMs(): number {
    return this.baseMs + this.cycle / (CLOCK_HZ / 1000);
  }

  /** The UART's rate now (what UBRR and U2X give), or 0 while the receiver is off. */
  get baud(): number {
    return CLOCK_HZ / ((this.uart.u2x ? 8 : 16) * (this.uart.ubrr + 1));
  }

  // ---- LinkTarget ----

  /** Power on: MCUSR = PORF, registers and RAM noise. */
  powerOn(seed = 1): Promise<void> {
    return this.enqueue(() => this.command(`power ${seed}`)).then(() => this.start());
  }

  /** The host opened the port: DTR pulses RESET (external reset). */
  open(): void {
    void this.reset(Mcusr.EXTRF);
  }

  /** A reset with these MCUSR flags (a brown-out: BORF); registers and RAM are kept. */
  reset(mcusr: number): Promise<void> {
    return this.enqueue(() => this.command(`reset ${mcusr}`)).then(() => {});
  }

  write(bytes: Uint8Array): void {
    const hostBaud = this.options.hostBaud();
    const nowUs = (this.options.clock.now() - this.baseMs) * 1000;
    const sent = sendAt(Math.max(nowUs, this.cycle / 16, this.hostLineFreeUs), hostBaud, bytes, this.options.hostGapUs);
    if (sent.length > 0) this.hostLineFreeUs = sent[sent.length - 1]!.startUs + 10e6 / hostBaud;
    const boardBaud = this.baud;
    const received = matched(hostBaud, boardBaud) ? receiveMatched(sent, hostBaud) : receiveAt(sent, hostBaud, boardBaud);
    const lines = received.map((c) => `rx ${Math.ceil(c.endUs * 16)} ${c.byte} ${c.fe ? 1 : 0}`);
    if (lines.length > 0) void this.enqueue(() => this.send(lines));
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  powerOff(): void {
    this.running = false;
  }

  // ---- inspection ----

  async flash(address: number, length: number): Promise<Uint8Array> {
    const [line] = await this.enqueue(() => this.command(`flash ${address} ${length}`));
    return Uint8Array.from(Buffer.from(line ?? '', 'hex'));
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.stopped;
    await this.enqueue(() => this.send(['quit']));
    this.child.stdin.end();
  }

  // ---- run loop ----

  private start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = this.runLoop().catch((error: unknown) => {
      this.failure = error;
      this.running = false;
    });
  }

  private async runLoop(): Promise<void> {
    const clock = this.options.clock;
    const sliceMs = this.options.sliceMs ?? 2;
    while (this.running) {
      const next = clock.nextDeadline();
      let targetMs = this.timeMs + sliceMs;
      if (next !== undefined) targetMs = Math.min(targetMs, Math.max(next, this.timeMs + 0.001));
      const targetCycle = Math.ceil((targetMs - this.baseMs) * (CLOCK_HZ / 1000));
      const lines = await this.enqueue(() => this.command(`run ${targetCycle}`, true));
      this.onRun(lines);
      clock.advanceTo(Math.max(clock.now(), this.timeMs));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private onRun(lines: string[]): void {
    const sent: { startUs: number; byte: number }[] = [];
    for (const line of lines) {
      const parts = line.split(' ');
      if (parts[0] === 'tx') sent.push({ startUs: Number(parts[1]) / 16, byte: Number(parts[2]) });
      else if (parts[0] === 'at') {
        this.cycle = Number(parts[1]);
        this.uart.pc = Number(parts[2]);
        this.uart.ubrr = Number(parts[3]);
        this.uart.u2x = parts[4] === '1';
        this.uart.rxEnabled = parts[5] === '1';
      }
    }
    if (sent.length === 0) return;
    for (const c of sent) this.sent.push(c.byte);
    const hostBaud = this.options.hostBaud();
    const boardBaud = this.baud;
    const received: ReceivedCharacter[] = matched(hostBaud, boardBaud) ? receiveMatched(sent, boardBaud) : receiveAt(sent, boardBaud, hostBaud);
    for (const c of received) {
      const atMs = this.baseMs + c.endUs / 1000;
      const deliver = () => {
        for (const listener of this.listeners) listener(Uint8Array.of(c.byte));
      };
      const delay = atMs - this.options.clock.now();
      if (delay <= 0) deliver();
      else this.options.clock.schedule(delay, deliver);
    }
  }

  // ---- the harness's line protocol ----

  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task);
    this.queue = result.catch(() => {});
    return result;
  }

  private send(lines: string[]): Promise<string[]> {
    this.child.stdin.write(lines.map((l) => `${l}\n`).join(''));
    return Promise.resolve([]);
  }

  /** One command; its reply is one line, or for `run` every line up to its `at`. */
  private command(line: string, untilAt = false): Promise<string[]> {
    return new Promise((resolve) => {
      this.waiting.push({ lines: [], until: untilAt ? (l) => l.startsWith('at ') : () => true, resolve });
      this.child.stdin.write(`${line}\n`);
    });
  }

  private onOutput(chunk: string): void {
    const text = this.partial + chunk;
    const lines = text.split('\n');
    this.partial = lines.pop()!;
    for (const line of lines) {
      if (line.startsWith('error')) {
        this.errors.push(line);
        continue;
      }
      const head = this.waiting[0];
      if (!head) continue;
      head.lines.push(line);
      if (head.until(line)) {
        this.waiting.shift();
        head.resolve(head.lines);
      }
    }
  }
}

/** Two UARTs within 1 % of each other read each other's characters as sent. */
function matched(a: number, b: number): boolean {
  return Math.abs(a - b) / Math.max(a, b) < 0.01;
}
