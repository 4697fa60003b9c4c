/**
 * The bridge sketch (boards/bridge/bridge.ino) re-told in TypeScript, at the protocol level: the
 * same receive ring, go-back-N receiver, command interpreter and reply frames, without the AVR.
 * Host tests run against it in milliseconds; the avr8js board (avr-board.ts) runs the real hex.
 *
 * It checks the host's manners: bytes beyond the advertised window are counted as `overruns`
 * (the real ring would lose them). `consumeBytesPerMs` slows the main loop down so credit limits
 * are actually reached. It speaks protocol version 2 (programs, SHORT headers, idle fill) unless
 * told to be a version-1 board, for the host's fallback.
 *
 * It has no line time: a loop pass's frames reach the link at once, and the idle fill (SET_FILL)
 * follows them as one run of zeros when the pass leaves nothing else to do — where the sketch's
 * idle loop sends its zeros one by one after its transmit ring drained. Nor does it keep the wait
 * of a transaction's DELAY: it parses the flag and runs the batch on at once, as it runs a
 * CHIP_RESET at once (SPI here takes no time, so there is no gap between SPI events to stretch;
 * test/bridge/sketch-programs.test.ts times the real sketch's wait).
 */
import type { Clock } from '../../src/time/clock.js';
import type { SerialTarget } from '../bootloader/pty.js';
import {
  ArmOption,
  BoardFrame,
  Capability,
  Command,
  COMMAND_ARGUMENT_BYTES,
  EventKind,
  FrameDecoder,
  HostHelloOption,
  HostFrame,
  DATA_PAYLOAD,
  MAX_PAYLOAD,
  NO_REQUEST_ID,
  PROTOCOL_VERSION,
  PinModeCode,
  REFERABLE_READ_BYTES,
  Status,
  TransactionFlag,
  boardReplyWireBytes,
  computedReadLength,
  decodeTransactionHeader,
  extTest,
  extTransactionHeaderRest,
  keptValue,
  encodeBoardFrame,
  encodeDone,
  encodeHello,
  parseHostFrame,
  transactionHeaderRest,
  type TransactionHeader,
  type WireTransaction,
} from '../../hal/bridge/protocol.js';
import type { SpiChip } from './chip.js';

export interface ModelBoardOptions {
  readonly clock: Clock;
  readonly chip: SpiChip;
  readonly name?: string;
  /** Receive ring (the sketch: 1280 on the 328P). */
  readonly ringBytes?: number;
  /** Main-loop speed; Infinity (default) consumes everything at once. */
  readonly consumeBytesPerMs?: number;
  readonly pinCount?: number;
  /**
   * The protocol the board speaks: 2 (default), or 1 — no programs, no SHORT headers, no idle
   * fill, a HELLO without programBytes, and ARM/DISARM/RUN/SET_FILL are unknown commands.
   */
  readonly protocolVersion?: 1 | 2;
  /**
   * Version 2 only: the DELAY transaction flag (caps bit 11), default true. False: a version-2
   * board from before it, for which bit 5 of the flags is reserved and ignored.
   */
  readonly transactionDelays?: boolean;
  /**
   * Version 2 only: program extensions (ARM option EXT, caps bit 15), default true. False: a
   * version-2 board from before them, which ignores the EXT option bit.
   */
  readonly programExtensions?: boolean;
  /** Told of each command as the board starts it (tests: which ran, in what order). */
  readonly onCommand?: (opcode: number, id: number) => void;
}

interface ModelPin {
  mode: 'input' | 'input-pullup' | 'output';
  value: 0 | 1;
  pwm?: number;
}

/** The program ARM left (docs/bridge-protocol.md §3.2). */
interface ArmedProgram {
  readonly id: number;
  readonly quiet: boolean;
  /** ARM option EXT: every transaction has an EXT byte after its flags. */
  readonly ext: boolean;
  readonly bytes: Uint8Array;
}


const CS_PIN = 10;
const INT_PIN = 2;
const RESET_PIN = 9;
const RESERVED_PINS = new Set([0, 1, INT_PIN, RESET_PIN, CS_PIN, 11, 12, 13]);
const A0_PIN = 14;
const ANALOG_COUNT = 6;
const TICK_MS = 0.5;
/** Largest ARM program (the HELLO's programBytes). */
const PROGRAM_BYTES = 64;
/** Commands a version-1 board does not know. */
const VERSION_2_COMMANDS = new Set<number>([Command.ARM, Command.DISARM, Command.RUN, Command.SET_FILL]);
/**
 * Board → host line rate (1 Mbaud, 10 bits a byte). The sketch's transmit ring holds a run's
 * answer back at this rate, so back-to-back runs are paced by it.
 */
const LINE_BYTES_PER_MS = 100;

export class ModelBoard implements SerialTarget {
  readonly ringBytes: number;
  readonly window: number;
  readonly version: number;
  /** It knows the DELAY flag (caps bit 11). */
  readonly transactionDelays: boolean;
  /** Program extensions (caps bit 15). */
  readonly programExtensions: boolean;
  /** Bytes that arrived while the ring was full: a host credit violation. */
  overruns = 0;
  badFrames = 0;
  naks = 0;
  /** Program runs so far. */
  runs = 0;
  /** Analog inputs in ADC counts (0..1023), by channel. */
  readonly analog = new Uint16Array(ANALOG_COUNT);
  readonly pins: ModelPin[];
  powered = false;

  private ring: number[] = [];
  private consumed = 0;
  private expectedSeq = 0;
  private reportedSeq = 0;
  private reportedConsumed = 0;
  private nakSent = false;
  private sessions = 0;
  private selected = false;
  private eventCounter = 0;
  private intEdges = 0;
  private reportedIntLevel = false;
  private reportedIntEdges = 0;
  private readonly reportPins = new Map<number, 0 | 1>();
  /** SET_FILL: idle zeros after each burst of frames (0 = off, after boot and HELLO). */
  private fillCount = 0;
  /** The host's HELLO asked for ended DATA frames (caps bit 13). */
  private endFrames = false;

  /** The idle fill the host set (SET_FILL), for tests. */
  get idleFillCount(): number {
    return this.fillCount;
  }
  /** Zeros due since the last frame. */
  private fillLeft = 0;
  private processing = false;
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();
  private readonly decoder: FrameDecoder;
  private unsubscribeChip: () => void;
  // Command interpreter.
  private state: 'op' | 'args' | 'header' | 'write' | 'program' | 'stalled' = 'op';
  private op = 0;
  private args: number[] = [];
  private header: number[] = [];
  private headerLength = 0;
  private flags = 0;
  private writeLength = 0;
  private writeLeft = 0;
  /** COPY: write bytes `at`, `at`+1 of the transaction in progress are these. */
  private patch: { at: number; bytes: [number, number] } | undefined;
  private readLeft = 0;
  private programBytes: number[] = [];
  // The batch being executed: an SPI command's, or a run's.
  private dataId = 0;
  private batchIsRun = false;
  private batchStatus: number = Status.OK;
  /** An IF failed: the rest of the batch is consumed without clocking. */
  private skipping = false;
  private readCount = 0;
  private readBuffer: number[] = [];
  /** The batch's first REFERABLE_READ_BYTES read bytes (the sketch's DATA buffer), for IF and LENGTH. */
  private referable: number[] = [];
  // Programs.
  private program: ArmedProgram | undefined;
  /** Just armed, an SPI command ended with INT asserted, or the last run was not cut short. */
  private runDue = false;
  private edgesAtLastRun = 0;

  constructor(private readonly options: ModelBoardOptions) {
    this.ringBytes = options.ringBytes ?? 1280;
    this.window = this.ringBytes - this.ringBytes / 32;
    this.version = options.protocolVersion ?? PROTOCOL_VERSION;
    this.transactionDelays = this.version >= 2 && (options.transactionDelays ?? true);
    this.programExtensions = this.version >= 2 && (options.programExtensions ?? true);
    this.pins = Array.from({ length: options.pinCount ?? 20 }, () => ({ mode: 'input' as const, value: 0 as const }));
    this.decoder = new FrameDecoder(
      (body) => this.handleFrame(body),
      () => this.badFrame(),
      2 + MAX_PAYLOAD + 2,
    );
    this.unsubscribeChip = options.chip.onInterruptChange(() => {
      this.intEdges = (this.intEdges + 1) & 0xff;
      this.scheduleProcess();
    });
  }

  /** The armed program (id, QUIET, encoded length), if any. */
  get armed(): { readonly id: number; readonly quiet: boolean; readonly length: number } | undefined {
    const program = this.program;
    return program && { id: program.id, quiet: program.quiet, length: program.bytes.length };
  }

  /** DTR pulse / power-on: reboot and send the boot HELLO. */
  open(): void {
    this.reboot();
  }

  reboot(): void {
    this.powered = true;
    this.ring = [];
    this.consumed = 0;
    this.expectedSeq = 0;
    this.reportedSeq = 0;
    this.reportedConsumed = 0;
    this.nakSent = false;
    this.sessions = 0;
    this.fillCount = 0;
    this.endFrames = false;
    this.fillLeft = 0;
    this.deselect();
    this.state = 'op';
    this.disarm();
    this.reportPins.clear();
    this.reportedIntLevel = this.options.chip.interruptAsserted;
    this.reportedIntEdges = this.intEdges;
    for (const pin of this.pins) {
      pin.mode = 'input';
      pin.value = 0;
      pin.pwm = undefined;
    }
    this.sendHello();
  }

  powerOff(): void {
    this.powered = false;
    this.ring = [];
  }

  close(): void {
    this.powerOff();
    this.unsubscribeChip();
  }

  write(bytes: Uint8Array): void {
    if (!this.powered) return;
    for (const b of bytes) {
      if (this.ring.length >= this.ringBytes - 1) this.overruns++;
      else this.ring.push(b);
    }
    this.scheduleProcess();
  }

  onData(listener: (bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Drive an input pin from outside (a button). */
  setInput(pin: number, value: 0 | 1): void {
    this.pins[pin]!.value = value;
    this.scheduleProcess();
  }

  private get tickMs(): number {
    return (this.options.consumeBytesPerMs ?? Infinity) === Infinity ? 0 : TICK_MS;
  }

  private scheduleProcess(delayMs = this.tickMs): void {
    if (this.processing || !this.powered) return;
    this.processing = true;
    this.options.clock.schedule(delayMs, () => this.loop());
  }

  /**
   * One pass of the sketch's loop(): take bytes out of the ring (at most `consumeBytesPerMs` a
   * tick), then run the program if it is due — host commands first — then report events.
   */
  private loop(): void {
    if (!this.powered) {
      this.processing = false;
      return;
    }
    const rate = this.options.consumeBytesPerMs ?? Infinity;
    const budget = rate === Infinity ? Infinity : Math.max(1, Math.floor(rate * TICK_MS));
    let n = 0;
    while (this.ring.length > 0 && n < budget) {
      const b = this.ring.shift()!;
      n++;
      this.consumed = (this.consumed + 1) & 0xffff;
      this.decoder.push(Uint8Array.of(b));
      if (b === 0 && ((this.consumed - this.reportedConsumed) & 0xffff) >= this.window / 4) this.send(BoardFrame.ACK, 0);
    }
    if (this.ring.length === 0 && (this.consumed !== this.reportedConsumed || this.expectedSeq !== this.reportedSeq)) this.send(BoardFrame.ACK, 0);
    const answered = this.runIfDue();
    this.pollEvents();
    this.processing = false;
    if (this.ring.length > 0 || this.runPending()) return this.scheduleProcess(Math.max(this.tickMs, answered / LINE_BYTES_PER_MS));
    this.idleFill();
  }

  /** Nothing else to send: the zeros SET_FILL asked for (idle delimiters the host skips). */
  private idleFill(): void {
    if (this.fillLeft === 0) return;
    const zeros = new Uint8Array(this.fillLeft);
    this.fillLeft = 0;
    for (const listener of this.listeners) listener(zeros);
  }

  private send(type: number, id: number, payload?: Uint8Array, ended = false): void {
    this.reportedConsumed = this.consumed;
    this.reportedSeq = this.expectedSeq;
    this.fillLeft = this.fillCount;
    const frame = encodeBoardFrame(
      type,
      { intAsserted: this.options.chip.interruptAsserted, id, ack: this.expectedSeq, consumed: this.consumed },
      payload,
      ended,
    );
    for (const listener of this.listeners) listener(frame);
  }

  private sendHello(): void {
    const v2 = this.version >= 2;
    this.send(
      BoardFrame.HELLO,
      0,
      encodeHello({
        version: this.version,
        capabilities:
          0xff |
          (v2 ? Capability.PROGRAMS | Capability.SHORT_HEADERS | Capability.IDLE_FILL | Capability.PAIRS | Capability.END_FRAMES : 0) |
          (this.transactionDelays ? Capability.DELAYS : 0) |
          (this.programExtensions ? Capability.PROGRAM_EXT : 0),
        window: this.window,
        maxPayload: MAX_PAYLOAD,
        sessions: this.sessions,
        resetCause: 1,
        pinCount: this.pins.length,
        csPin: CS_PIN,
        intPin: INT_PIN,
        resetPin: RESET_PIN,
        analogCount: ANALOG_COUNT,
        a0Pin: A0_PIN,
        programBytes: v2 ? PROGRAM_BYTES : 0,
        name: this.options.name ?? 'model',
      }),
    );
  }

  private badFrame(): void {
    this.badFrames++;
    this.nak();
  }

  private nak(): void {
    if (this.nakSent) return;
    this.nakSent = true;
    this.naks++;
    this.send(BoardFrame.NAK, 0);
  }

  private handleFrame(body: Uint8Array): void {
    const frame = parseHostFrame(body);
    if (!frame) return this.badFrame();
    if (frame.type === HostFrame.HELLO) {
      // Always: the last report may have been lost on the line (§2).
      this.fillCount = 0;
      this.send(BoardFrame.ACK, 0);
      this.deselect();
      this.state = 'op';
      this.readBuffer = [];
      this.disarm();
      this.expectedSeq = frame.seq;
      this.nakSent = false;
      this.sessions = (this.sessions + 1) & 0xff;
      // Version 2: the host's option byte (ended DATA frames, caps bit 13).
      this.endFrames = this.version >= 2 && ((frame.payload[0] ?? 0) & HostHelloOption.END_FRAMES) !== 0;
      this.sendHello();
      return;
    }
    if (frame.type !== HostFrame.DATA) return;
    if (frame.seq !== this.expectedSeq) {
      const behind = (this.expectedSeq - frame.seq) & 0xff;
      if (behind < 128) this.send(BoardFrame.ACK, 0);
      else this.nak();
      return;
    }
    this.expectedSeq = (this.expectedSeq + 1) & 0xff;
    this.nakSent = false;
    for (const b of frame.payload) this.commandByte(b);
  }

  private knows(command: number): boolean {
    return COMMAND_ARGUMENT_BYTES[command] !== undefined && (this.version >= 2 || !VERSION_2_COMMANDS.has(command));
  }

  private commandByte(b: number): void {
    switch (this.state) {
      case 'op': {
        this.op = b;
        this.args = [];
        if (!this.knows(b)) {
          this.done(NO_REQUEST_ID, Status.EBADCMD, b);
          this.state = 'stalled';
        } else {
          this.state = 'args';
        }
        return;
      }
      case 'args':
        this.args.push(b);
        if (this.args.length === COMMAND_ARGUMENT_BYTES[this.op]) {
          this.options.onCommand?.(this.op, this.args[0]!);
          this.runCommand();
        }
        return;
      case 'header': {
        this.header.push(b);
        // A run of a program armed with EXT: the EXT byte after the flags says how long the rest is.
        const ext = this.batchIsRun && this.program?.ext === true;
        if (this.header.length === 1) this.headerLength = ext ? 2 : 1 + transactionHeaderRest(b, this.version, this.transactionDelays);
        else if (ext && this.header.length === 2) this.headerLength = 1 + extTransactionHeaderRest(this.header[0]!, b, this.version, this.transactionDelays);
        if (this.header.length === this.headerLength) this.startTransaction(decodeTransactionHeader(this.header, this.version, this.transactionDelays, ext));
        return;
      }
      case 'write': {
        if (!this.skipping) {
          // COPY (EXT): these write bytes are read bytes the run kept.
          const index = this.writeLength - this.writeLeft;
          if (this.patch && index >= this.patch.at && index <= this.patch.at + 1) b = this.patch.bytes[index - this.patch.at]!;
          const miso = this.options.chip.spiExchange(b);
          if (this.flags & TransactionFlag.DUPLEX) this.pushRead(miso);
        }
        if (--this.writeLeft === 0) this.endTransaction();
        else if (this.flags & TransactionFlag.PAIRS && this.writeLeft % 2 === 0 && !this.skipping) {
          // PAIRS (caps bit 12): each two bytes are one SPI command in its own CS frame.
          this.deselect();
          this.select();
        }
        return;
      }
      case 'program':
        this.programBytes.push(b);
        if (this.programBytes.length === this.args[2]) this.finishArm();
        return;
      case 'stalled':
        return;
    }
  }

  private runCommand(): void {
    const [id, a = 0, b = 0, c = 0, d = 0] = this.args as number[] as [number, number?, number?, number?, number?];
    this.state = 'op';
    switch (this.op) {
      case Command.SPI:
        return this.beginBatch(id, false);
      case Command.PING:
        return this.done(id, Status.OK, this.window - this.ring.length);
      case Command.CHIP_RESET:
        this.options.chip.hardReset();
        return this.done(id, Status.OK, 0);
      case Command.SET_BAUD: {
        const ok = (a | (b << 8) | (c << 16) | (d << 24)) >>> 0 >= 2400;
        this.done(id, ok ? Status.OK : Status.EINVAL, 0);
        // No fill after a rate change: the host may not listen at the new rate yet.
        if (ok) this.fillLeft = 0;
        return;
      }
      case Command.SET_FILL:
        this.fillCount = a;
        return this.done(id, Status.OK, a);
      case Command.ANALOG_READ:
        return a < ANALOG_COUNT ? this.done(id, Status.OK, this.analog[a]!) : this.done(id, Status.EINVAL, 0);
      case Command.ARM:
        this.programBytes = [];
        if (b === 0) return this.finishArm();
        this.state = 'program';
        return;
      case Command.DISARM:
        this.disarm();
        return this.done(id, Status.OK, 0);
      case Command.RUN: {
        // Never inside a KEEP_CS transaction the host holds open across requests.
        const runs = this.program !== undefined && !this.selected;
        if (runs) this.runProgram();
        return this.done(id, Status.OK, runs ? 1 : 0);
      }
    }
    const pin = this.pins[a];
    if (!pin) return this.done(id, Status.EINVAL, 0);
    if (RESERVED_PINS.has(a)) return this.done(id, Status.EBUSY, 0);
    switch (this.op) {
      case Command.PIN_MODE:
        if (b > 2) return this.done(id, Status.EINVAL, 0);
        pin.mode = b === PinModeCode.OUTPUT ? 'output' : b === PinModeCode.INPUT_PULLUP ? 'input-pullup' : 'input';
        if (b === PinModeCode.INPUT_PULLUP) pin.value = 1;
        return this.done(id, Status.OK, 0);
      case Command.DIGITAL_WRITE:
        pin.value = b ? 1 : 0;
        pin.pwm = undefined;
        return this.done(id, Status.OK, 0);
      case Command.DIGITAL_READ:
        return this.done(id, Status.OK, pin.value);
      case Command.PWM_WRITE:
        pin.mode = 'output';
        pin.pwm = b;
        return this.done(id, Status.OK, 0);
      case Command.PIN_REPORT:
        if (b) this.reportPins.set(a, pin.value);
        else this.reportPins.delete(a);
        return this.done(id, Status.OK, 0);
    }
  }

  // ---- SPI batches: a command's, or a run's -----------------------------------------------------

  private beginBatch(id: number, isRun: boolean): void {
    this.dataId = id;
    this.batchIsRun = isRun;
    this.batchStatus = Status.OK;
    this.skipping = false;
    this.readCount = 0;
    this.readBuffer = [];
    this.referable = [];
    this.header = [];
    this.state = 'header';
  }

  private startTransaction(header: TransactionHeader): void {
    this.flags = header.flags;
    this.writeLength = header.writeLength;
    this.writeLeft = header.writeLength;
    this.readLeft = header.readLength;
    this.patch = undefined;
    if (!this.skipping && header.ifNonZero !== undefined && !this.referredByte(header.ifNonZero)) {
      // IF: nothing more of this batch is clocked, and CS goes up.
      this.skipping = true;
      this.deselect();
    }
    if (!this.skipping) this.extOperands(header);
    if (!this.skipping) {
      if (header.readLengthFrom) this.readLeft = this.computedLength(header.readLengthFrom, header.readLength);
      this.select();
    }
    if (this.writeLeft > 0) this.state = 'write';
    else this.endTransaction();
  }

  /**
   * The read bytes IF and LENGTH can refer to: the batch's, while it has read no more than 64 (the
   * sketch holds them in its DATA buffer until the 65th is read over them).
   */
  private heldReads(): Uint8Array {
    return Uint8Array.from(this.readCount <= REFERABLE_READ_BYTES ? this.referable : []);
  }

  /** Read byte `at` of this batch is not zero; unavailable: false and the batch's status EINVAL. */
  private referredByte(at: number): boolean {
    const held = this.heldReads();
    if (at >= held.length) {
      this.batchStatus = Status.EINVAL;
      return false;
    }
    return held[at] !== 0;
  }

  /** SAME, DIFFER (a failed test skips the rest as IF does) and COPY of an EXT transaction. */
  private extOperands(header: TransactionHeader): void {
    const kept = this.referable;
    const test = extTest(header, kept);
    const copy = header.copy && keptValue(kept, header.copy.from);
    if (test === 'invalid' || (header.copy && copy === undefined)) this.batchStatus = Status.EINVAL;
    if (test !== 'run' || (header.copy && copy === undefined)) {
      this.skipping = true;
      this.deselect();
      return;
    }
    if (header.copy && copy !== undefined) this.patch = { at: header.copy.at, bytes: [copy >> 8, copy & 0xff] };
  }

  private computedLength(rule: NonNullable<WireTransaction['readLengthFrom']>, cap: number): number {
    const length = computedReadLength(rule, this.heldReads(), cap, this.referable);
    if (length !== undefined) return length;
    this.batchStatus = Status.EINVAL;
    return 0;
  }

  private endTransaction(): void {
    if (!this.skipping) {
      const chip = this.options.chip;
      while (this.readLeft > 0) {
        this.pushRead(chip.spiExchange(0));
        this.readLeft--;
      }
      if (!(this.flags & TransactionFlag.KEEP_CS)) this.deselect();
    }
    if (this.flags & TransactionFlag.LAST) return this.endBatch();
    this.header = [];
    this.state = 'header';
  }

  private endBatch(): void {
    if (this.endFrames && this.readBuffer.length > 0) {
      // The last DATA frame carries the DONE (caps bit 13).
      const done = encodeDone({ status: this.batchStatus, value: this.readCount & 0xffff });
      this.send(BoardFrame.DATA, this.dataId, Uint8Array.from([...this.readBuffer, ...done]), true);
      this.readBuffer = [];
    } else {
      this.flushRead();
      this.done(this.dataId, this.batchStatus, this.readCount & 0xffff);
    }
    this.state = 'op';
    // §3.2: a level the host did not clear, or a packet that came while INT was already asserted.
    if (!this.batchIsRun && this.program && this.options.chip.interruptAsserted) this.runDue = true;
  }

  private pushRead(b: number): void {
    if (this.referable.length < REFERABLE_READ_BYTES) this.referable.push(b);
    // A full frame goes when the next byte needs room (the batch's last may still end it).
    if (this.readBuffer.length === DATA_PAYLOAD) this.flushRead();
    this.readBuffer.push(b);
    this.readCount++;
  }

  private flushRead(): void {
    if (this.readBuffer.length === 0) return;
    this.send(BoardFrame.DATA, this.dataId, Uint8Array.from(this.readBuffer));
    this.readBuffer = [];
  }

  private done(id: number, status: number, value: number): void {
    this.send(BoardFrame.DONE, id, encodeDone({ status, value }));
  }

  private select(): void {
    if (!this.selected) this.options.chip.spiSelect();
    this.selected = true;
  }

  private deselect(): void {
    if (this.selected) this.options.chip.spiDeselect();
    this.selected = false;
  }

  // ---- programs (§3.2) ------------------------------------------------------------------------

  private finishArm(): void {
    const [id, options, length] = this.args as [number, number, number];
    this.state = 'op';
    const bytes = Uint8Array.from(this.programBytes);
    this.programBytes = [];
    if (length > PROGRAM_BYTES) {
      this.disarm();
      return this.done(id, Status.EINVAL, length);
    }
    // A board without the extensions ignores the option bit (and misreads such a program).
    this.program = { id, quiet: (options & ArmOption.QUIET) !== 0, ext: this.programExtensions && (options & ArmOption.EXT) !== 0, bytes };
    this.runDue = true; // just armed: packets may already wait
    this.edgesAtLastRun = this.intEdges;
    this.done(id, Status.OK, length);
  }

  private disarm(): void {
    this.program = undefined;
    this.runDue = false;
  }

  /** Armed, idle (between commands, CS not held across requests) and a run trigger holds. */
  private runPending(): boolean {
    return this.program !== undefined && this.state === 'op' && !this.selected && (this.runDue || this.intEdges !== this.edgesAtLastRun);
  }

  /** Run the program if due; returns the wire bytes of its answer (0: no run). */
  private runIfDue(): number {
    if (!this.runPending()) return 0;
    this.runProgram();
    return boardReplyWireBytes(this.readCount);
  }

  /** One run, answered like an SPI command under the program's id. */
  private runProgram(): void {
    const program = this.program!;
    this.runs++;
    this.edgesAtLastRun = this.intEdges;
    this.beginBatch(program.id, true);
    for (const b of program.bytes) {
      this.commandByte(b);
      if (this.state === 'op') break; // LAST: anything after it is not the program's
    }
    if (this.state !== 'op') {
      // No LAST (the board does not check programs at ARM): end the batch here, refused.
      this.deselect();
      this.batchStatus = Status.EINVAL;
      this.endBatch();
    }
    // A KEEP_CS on the last transaction must not hand CS to the host's next command.
    this.deselect();
    // Again at once if it was not cut short by an IF (it may have taken a packet: there may be
    // more), unless it is faulty.
    this.runDue = !this.skipping && this.batchStatus === Status.OK;
  }

  private pollEvents(): void {
    const level = this.options.chip.interruptAsserted;
    if (level !== this.reportedIntLevel || this.intEdges !== this.reportedIntEdges) {
      this.reportedIntLevel = level;
      this.reportedIntEdges = this.intEdges;
      // QUIET: the program's runs tell the host.
      if (!this.program?.quiet) this.event(EventKind.INT, level ? 1 : 0, this.intEdges);
    }
    for (const [pin, last] of this.reportPins) {
      const value = this.pins[pin]!.value;
      if (value !== last) {
        this.reportPins.set(pin, value);
        this.event(EventKind.PIN, pin, value);
      }
    }
  }

  private event(kind: number, a: number, b: number): void {
    this.send(BoardFrame.EVENT, this.eventCounter, Uint8Array.of(kind, a, b));
    this.eventCounter = (this.eventCounter + 1) & 0xff;
  }
}
