/**
 * The bridge sketch (boards/bridge/bridge.ino) re-told in TypeScript, at the protocol level: the
 * same receive ring, go-back-N receiver, command interpreter and reply frames, without the AVR.
 * Host tests run against it in milliseconds; the avr8js board (avr-board.ts) runs the real hex.
 *
 * It checks the host's manners: bytes beyond the advertised window are counted as `overruns`
 * (the real ring would lose them). `consumeBytesPerMs` slows the main loop down so credit limits
 * are actually reached.
 */
import type { Clock } from '../../src/time/clock.js';
import type { SerialTarget } from '../bootloader/pty.js';
import {
  BoardFrame,
  Command,
  COMMAND_ARGUMENT_BYTES,
  EventKind,
  FrameDecoder,
  HostFrame,
  MAX_PAYLOAD,
  NO_REQUEST_ID,
  PROTOCOL_VERSION,
  PinModeCode,
  Status,
  TRANSACTION_HEADER_BYTES,
  TransactionFlag,
  encodeBoardFrame,
  encodeDone,
  encodeHello,
  parseHostFrame,
} from '../../hal/bridge/protocol.js';
import type { SpiChip } from './chip.js';

export interface ModelBoardOptions {
  readonly clock: Clock;
  readonly chip: SpiChip;
  readonly name?: string;
  /** Receive ring (the sketch: 1024 on the 328P). */
  readonly ringBytes?: number;
  /** Main-loop speed; Infinity (default) consumes everything at once. */
  readonly consumeBytesPerMs?: number;
  readonly pinCount?: number;
}

interface ModelPin {
  mode: 'input' | 'input-pullup' | 'output';
  value: 0 | 1;
  pwm?: number;
}

const CS_PIN = 10;
const INT_PIN = 2;
const RESET_PIN = 9;
const RESERVED_PINS = new Set([0, 1, INT_PIN, RESET_PIN, CS_PIN, 11, 12, 13]);
const A0_PIN = 14;
const ANALOG_COUNT = 6;
const TICK_MS = 0.5;

export class ModelBoard implements SerialTarget {
  readonly ringBytes: number;
  readonly window: number;
  /** Bytes that arrived while the ring was full: a host credit violation. */
  overruns = 0;
  badFrames = 0;
  naks = 0;
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
  private processing = false;
  private readonly listeners = new Set<(bytes: Uint8Array) => void>();
  private readonly decoder: FrameDecoder;
  private unsubscribeChip: () => void;
  // Command interpreter.
  private state: 'op' | 'args' | 'xhdr' | 'write' | 'stalled' = 'op';
  private op = 0;
  private args: number[] = [];
  private flags = 0;
  private writeLeft = 0;
  private readLeft = 0;
  private dataId = 0;
  private readCount = 0;
  private readBuffer: number[] = [];

  constructor(private readonly options: ModelBoardOptions) {
    this.ringBytes = options.ringBytes ?? 1024;
    this.window = this.ringBytes - this.ringBytes / 32;
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
    this.deselect();
    this.state = 'op';
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

  private scheduleProcess(): void {
    if (this.processing || !this.powered) return;
    this.processing = true;
    const rate = this.options.consumeBytesPerMs ?? Infinity;
    this.options.clock.schedule(rate === Infinity ? 0 : TICK_MS, () => {
      this.processing = false;
      this.loop(rate === Infinity ? Infinity : Math.max(1, Math.floor(rate * TICK_MS)));
    });
  }

  /** One pass of the sketch's loop(), consuming at most `budget` bytes. */
  private loop(budget: number): void {
    if (!this.powered) return;
    let n = 0;
    while (this.ring.length > 0 && n < budget) {
      const b = this.ring.shift()!;
      n++;
      this.consumed = (this.consumed + 1) & 0xffff;
      this.decoder.push(Uint8Array.of(b));
      if (b === 0 && ((this.consumed - this.reportedConsumed) & 0xffff) >= this.window / 4) this.send(BoardFrame.ACK, 0);
    }
    if (this.ring.length === 0 && (this.consumed !== this.reportedConsumed || this.expectedSeq !== this.reportedSeq)) this.send(BoardFrame.ACK, 0);
    this.pollEvents();
    if (this.ring.length > 0) this.scheduleProcess();
  }

  private send(type: number, id: number, payload?: Uint8Array): void {
    this.reportedConsumed = this.consumed;
    this.reportedSeq = this.expectedSeq;
    const frame = encodeBoardFrame(
      type,
      { intAsserted: this.options.chip.interruptAsserted, id, ack: this.expectedSeq, consumed: this.consumed },
      payload,
    );
    for (const listener of this.listeners) listener(frame);
  }

  private sendHello(): void {
    this.send(
      BoardFrame.HELLO,
      0,
      encodeHello({
        version: PROTOCOL_VERSION,
        capabilities: 0xff,
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
      if (this.expectedSeq !== this.reportedSeq || this.consumed !== this.reportedConsumed) this.send(BoardFrame.ACK, 0);
      this.deselect();
      this.state = 'op';
      this.readBuffer = [];
      this.expectedSeq = frame.seq;
      this.nakSent = false;
      this.sessions = (this.sessions + 1) & 0xff;
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

  private commandByte(b: number): void {
    switch (this.state) {
      case 'op': {
        this.op = b;
        this.args = [];
        if (COMMAND_ARGUMENT_BYTES[b] === undefined) {
          this.done(NO_REQUEST_ID, Status.EBADCMD, b);
          this.state = 'stalled';
        } else {
          this.state = 'args';
        }
        return;
      }
      case 'args':
        this.args.push(b);
        if (this.args.length === COMMAND_ARGUMENT_BYTES[this.op]) this.runCommand();
        return;
      case 'xhdr':
        this.args.push(b);
        if (this.args.length === TRANSACTION_HEADER_BYTES) {
          const [flags, w0, w1, r0, r1] = this.args as [number, number, number, number, number];
          this.flags = flags;
          this.writeLeft = w0 | (w1 << 8);
          this.readLeft = r0 | (r1 << 8);
          this.select();
          if (this.writeLeft > 0) this.state = 'write';
          else this.endTransaction();
        }
        return;
      case 'write': {
        const miso = this.options.chip.spiExchange(b);
        if (this.flags & TransactionFlag.DUPLEX) this.pushRead(miso);
        if (--this.writeLeft === 0) this.endTransaction();
        return;
      }
      case 'stalled':
        return;
    }
  }

  private runCommand(): void {
    const [id, a = 0, b = 0, c = 0, d = 0] = this.args as number[] as [number, number?, number?, number?, number?];
    this.state = 'op';
    switch (this.op) {
      case Command.SPI:
        this.dataId = id;
        this.readCount = 0;
        this.readBuffer = [];
        this.args = [];
        this.state = 'xhdr';
        return;
      case Command.PING:
        return this.done(id, Status.OK, this.window - this.ring.length);
      case Command.CHIP_RESET:
        this.options.chip.hardReset();
        return this.done(id, Status.OK, 0);
      case Command.SET_BAUD:
        return this.done(id, (a | (b << 8) | (c << 16) | (d << 24)) >>> 0 >= 2400 ? Status.OK : Status.EINVAL, 0);
      case Command.ANALOG_READ:
        return a < ANALOG_COUNT ? this.done(id, Status.OK, this.analog[a]!) : this.done(id, Status.EINVAL, 0);
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

  private endTransaction(): void {
    const chip = this.options.chip;
    while (this.readLeft > 0) {
      this.pushRead(chip.spiExchange(0));
      this.readLeft--;
    }
    if (!(this.flags & TransactionFlag.KEEP_CS)) this.deselect();
    if (this.flags & TransactionFlag.LAST) {
      this.flushRead();
      this.done(this.dataId, Status.OK, this.readCount & 0xffff);
      this.state = 'op';
    } else {
      this.args = [];
      this.state = 'xhdr';
    }
  }

  private pushRead(b: number): void {
    this.readBuffer.push(b);
    this.readCount++;
    if (this.readBuffer.length === MAX_PAYLOAD) this.flushRead();
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

  private pollEvents(): void {
    const level = this.options.chip.interruptAsserted;
    if (level !== this.reportedIntLevel || this.intEdges !== this.reportedIntEdges) {
      this.reportedIntLevel = level;
      this.reportedIntEdges = this.intEdges;
      this.event(EventKind.INT, level ? 1 : 0, this.intEdges);
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
