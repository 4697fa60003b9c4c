/**
 * The serial bridge protocol, version 2 (docs/bridge-protocol.md): framing (COBS + CRC-16), frame
 * layouts in both directions and the command stream. Pure: bytes in, values out; no I/O, no time.
 * The host (hal/bridge/session.ts, reliable-link.ts), the TypeScript board model
 * (boards/sim/model-board.ts) and the tests share it; the sketch (boards/bridge/bridge.ino) is its
 * C twin.
 */

export const PROTOCOL_VERSION = 2;
/** Oldest board protocol the host still speaks (version 1: no programs, no short headers). */
export const MIN_PROTOCOL_VERSION = 1;
/** Largest chunk of command stream or read data in one frame: the board checks each before acting. */
export const MAX_PAYLOAD = 64;
/**
 * Largest DATA payload the sketch sends (read data; its DATA_PAYLOAD). A sketch built before
 * 2026-12 sends at most 64, so a host takes any length a frame can carry.
 */
export const DATA_PAYLOAD = 112;
/** COBS delimiter: only ever ends a frame. */
export const FRAME_DELIMITER = 0x00;

/** Host → board frame types. */
export const HostFrame = { DATA: 0x01, HELLO: 0x02 } as const;
/** Board → host frame types (bits 0..6 of the type byte; bit 7 is the INT level). */
export const BoardFrame = { HELLO: 0x01, ACK: 0x02, NAK: 0x03, DATA: 0x04, DONE: 0x05, EVENT: 0x06 } as const;
export const INT_LEVEL_BIT = 0x80;

/** Commands in the host → board stream. */
export const Command = {
  SPI: 0x10,
  PIN_MODE: 0x20,
  DIGITAL_WRITE: 0x21,
  DIGITAL_READ: 0x22,
  ANALOG_READ: 0x23,
  PWM_WRITE: 0x24,
  PIN_REPORT: 0x25,
  CHIP_RESET: 0x30,
  PING: 0x31,
  SET_BAUD: 0x32,
  SET_FILL: 0x33,
  STATS: 0x34,
  ARM: 0x40,
  DISARM: 0x41,
  RUN: 0x42,
} as const;

/** Bytes after the opcode (the id included); the SPI command's transactions follow it. */
export const COMMAND_ARGUMENT_BYTES: Readonly<Record<number, number>> = {
  [Command.SPI]: 1,
  [Command.PING]: 1,
  [Command.DIGITAL_READ]: 2,
  [Command.ANALOG_READ]: 2,
  [Command.PIN_MODE]: 3,
  [Command.DIGITAL_WRITE]: 3,
  [Command.PWM_WRITE]: 3,
  [Command.PIN_REPORT]: 3,
  [Command.CHIP_RESET]: 3,
  [Command.SET_BAUD]: 5,
  [Command.SET_FILL]: 2,
  [Command.STATS]: 2,
  [Command.ARM]: 3,
  [Command.DISARM]: 1,
  [Command.RUN]: 1,
};

export const TransactionFlag = { KEEP_CS: 0x01, DUPLEX: 0x02, IF: 0x04, LENGTH: 0x08, SHORT: 0x10, DELAY: 0x20, PAIRS: 0x40, LAST: 0x80 } as const;
/** SPI transaction header: flags, wlen:u16, rlen:u16 (SHORT: flags, lens:u8). */
export const TRANSACTION_HEADER_BYTES = 5;
export const SHORT_TRANSACTION_HEADER_BYTES = 2;
/** SHORT headers carry wlen and rlen in 4 bits each. */
export const SHORT_LENGTH_MAX = 15;
/** IF and LENGTH can refer to the first this-many read bytes of a batch. */
export const REFERABLE_READ_BYTES = 64;
/** LENGTH opts: bit0 big-endian, bit1 round up to even, bits 2..7 the amount to subtract. */
export const LengthOption = { BIG_ENDIAN: 0x01, EVEN: 0x02 } as const;
export const LENGTH_MINUS_MAX = 63;
/** DELAY us:u16: the board waits 1..65535 µs before the transaction. */
export const DELAY_US_MAX = 0xffff;
/** ARM options. EXT (caps bit 15): every transaction of the program has an `ext` byte (ExtFlag). */
export const ArmOption = { QUIET: 0x01, EXT: 0x02 } as const;
/**
 * Program transactions' `ext` byte (caps bit 15; docs/bridge-protocol.md §3.2): tests and patches
 * over 16-bit values the run has read, for a chip whose receive pointers are registers (the W5500).
 *   SAME a b    run this and the rest only if read bytes a, a+1 equal b, b+1
 *   DIFFER a b  run this and the rest only if they differ
 *   COPY pos a  write bytes pos, pos+1 of this transaction are read bytes a, a+1
 *   SPAN b      LENGTH's value minus the 16-bit value at b (its byte order), mod 2^16
 */
export const ExtFlag = { SAME: 0x01, DIFFER: 0x02, COPY: 0x04, SPAN: 0x08 } as const;

export const Status = { OK: 0, EBADCMD: 1, EINVAL: 2, EBUSY: 3, EUNSUPPORTED: 4 } as const;
export const STATUS_NAMES = ['OK', 'EBADCMD', 'EINVAL', 'EBUSY', 'EUNSUPPORTED'] as const;

export const EventKind = { INT: 1, PIN: 2 } as const;

export const PinModeCode = { INPUT: 0, OUTPUT: 1, INPUT_PULLUP: 2 } as const;

export const Capability = {
  SPI: 1 << 0,
  GPIO: 1 << 1,
  ANALOG: 1 << 2,
  PWM: 1 << 3,
  PIN_REPORT: 1 << 4,
  CHIP_RESET: 1 << 5,
  SET_BAUD: 1 << 6,
  INT_EVENTS: 1 << 7,
  PROGRAMS: 1 << 8,
  SHORT_HEADERS: 1 << 9,
  IDLE_FILL: 1 << 10,
  DELAYS: 1 << 11,
  PAIRS: 1 << 12,
  END_FRAMES: 1 << 13,
  STATS: 1 << 14,
  PROGRAM_EXT: 1 << 15,
} as const;

/** STATS counters (caps bit 14): the board's UART receive overruns (DOR) and framing errors (FE). */
export const StatsCounter = { RX_OVERRUNS: 0, RX_FRAME_ERRORS: 1 } as const;

/** Options a host HELLO asks for (its one payload byte; none: all off). */
export const HostHelloOption = {
  /** End a request's last DATA frame with its DONE (caps bit 13; §1 "ended DATA frames"). */
  END_FRAMES: 0x01,
} as const;

/** Request id the board uses for a DONE that answers no request (EBADCMD). */
export const NO_REQUEST_ID = 0xff;

export const HOST_HEADER_BYTES = 2;
export const BOARD_HEADER_BYTES = 5;
export const CRC_BYTES = 2;
/** A DONE payload: status:u8 value:u16. */
export const DONE_BYTES = 3;
/** Wire bytes around a payload: header, CRC, one COBS code byte (bodies < 254 bytes), delimiter. */
export const HOST_FRAME_OVERHEAD = HOST_HEADER_BYTES + CRC_BYTES + 2;
export const BOARD_FRAME_OVERHEAD = BOARD_HEADER_BYTES + CRC_BYTES + 2;

// ---- CRC-16/MCRF4XX ---------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x8408 : crc >>> 1;
    table[i] = crc;
  }
  return table;
})();

/**
 * CRC-16/MCRF4XX (poly 0x1021 reflected, init 0xFFFF, no final xor) — avr-libc's
 * `_crc_ccitt_update` from 0xFFFF. Appending the CRC little-endian leaves a zero residue.
 */
export function crc16(bytes: Uint8Array, start = 0, end = bytes.length, crc = 0xffff): number {
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ bytes[i]!) & 0xff]!;
  return crc;
}

/**
 * The residue of a body followed by its CRC complemented (xor 0xFFFF), little-endian: the same
 * for every body (the CRC is linear), 0xF0B8. An ended DATA frame is sent that way.
 */
export const ENDED_CRC_RESIDUE = (() => {
  const crc = crc16(new Uint8Array(0)) ^ 0xffff;
  return crc16(Uint8Array.of(crc & 0xff, crc >>> 8));
})();

// ---- COBS ---------------------------------------------------------------------------------------

/** COBS-encode `body` (≤ 253 bytes, so one code byte per 254) and append the delimiter. */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 2 + Math.floor(body.length / 254));
  let write = 1;
  let codeAt = 0;
  let code = 1;
  for (let i = 0; i < body.length; i++) {
    const b = body[i]!;
    if (b === 0) {
      out[codeAt] = code;
      codeAt = write++;
      code = 1;
    } else {
      out[write++] = b;
      if (++code === 0xff) {
        out[codeAt] = code;
        codeAt = write++;
        code = 1;
      }
    }
  }
  out[codeAt] = code;
  out[write++] = FRAME_DELIMITER;
  return out.subarray(0, write);
}

export type FrameDropReason = 'cobs' | 'too-long' | 'too-short' | 'crc';

/**
 * Streaming COBS decoder with CRC check. Feed it any chunking of the wire; it calls `onFrame` with
 * each good body (CRC stripped) and `onDrop` for each bad one. Garbage resynchronises at the next
 * delimiter.
 */
export class FrameDecoder {
  private readonly buffer: Uint8Array;
  private readonly endedFrames: boolean;
  private length = 0;
  private blockLeft = 0;
  private zeroPending = false;
  private broken: FrameDropReason | undefined;
  private started = false;

  /**
   * `endedFrames` (the host, reading a board that ends DATA frames, caps bit 13): a frame whose CRC
   * came complemented is an ended DATA frame, handed on as the two frames it stands for — the
   * DATA (its payload but the last 3 bytes) and the DONE (those 3, under the same header).
   */
  constructor(
    private readonly onFrame: (body: Uint8Array) => void,
    private readonly onDrop: (reason: FrameDropReason) => void = () => {},
    maxBody = 253,
    options: { endedFrames?: boolean } = {},
  ) {
    this.buffer = new Uint8Array(maxBody);
    this.endedFrames = options.endedFrames ?? false;
  }

  push(bytes: Uint8Array): void {
    for (let i = 0; i < bytes.length; i++) this.byte(bytes[i]!);
  }

  private byte(b: number): void {
    if (b === FRAME_DELIMITER) {
      this.end();
      return;
    }
    this.started = true;
    if (this.broken) return;
    if (this.blockLeft === 0) {
      if (this.zeroPending) this.put(0);
      this.blockLeft = b - 1;
      this.zeroPending = b !== 0xff;
    } else {
      this.put(b);
      this.blockLeft--;
    }
  }

  private put(b: number): void {
    if (this.length === this.buffer.length) {
      this.broken = 'too-long';
      return;
    }
    this.buffer[this.length++] = b;
  }

  private end(): void {
    const { length, broken, started } = this;
    const cobsBroken = this.blockLeft !== 0;
    this.length = 0;
    this.blockLeft = 0;
    this.zeroPending = false;
    this.broken = undefined;
    this.started = false;
    if (!started) return; // back-to-back delimiters: idle fill, not a frame
    if (broken) return this.onDrop(broken);
    if (cobsBroken) return this.onDrop('cobs');
    if (length < CRC_BYTES + 1) return this.onDrop('too-short');
    const residue = crc16(this.buffer, 0, length);
    if (residue === 0) return this.onFrame(this.buffer.slice(0, length - CRC_BYTES));
    if (!this.endedFrames || residue !== ENDED_CRC_RESIDUE) return this.onDrop('crc');
    // An ended DATA frame: at least one data byte, then status:u8 value:u16.
    const end = length - CRC_BYTES;
    if (end < BOARD_HEADER_BYTES + 1 + DONE_BYTES || (this.buffer[0]! & ~INT_LEVEL_BIT) !== BoardFrame.DATA) return this.onDrop('too-short');
    this.onFrame(this.buffer.slice(0, end - DONE_BYTES));
    const done = this.buffer.slice(0, BOARD_HEADER_BYTES + DONE_BYTES);
    done[0] = (this.buffer[0]! & INT_LEVEL_BIT) | BoardFrame.DONE;
    done.set(this.buffer.subarray(end - DONE_BYTES, end), BOARD_HEADER_BYTES);
    this.onFrame(done);
  }
}

/** Append the CRC (complemented: `ended`) to `header ++ payload` and COBS-encode it. */
function frame(header: readonly number[], payload: Uint8Array, ended = false): Uint8Array {
  const body = new Uint8Array(header.length + payload.length + CRC_BYTES);
  body.set(header, 0);
  body.set(payload, header.length);
  const crc = crc16(body, 0, header.length + payload.length) ^ (ended ? 0xffff : 0);
  body[body.length - 2] = crc & 0xff;
  body[body.length - 1] = crc >>> 8;
  return encodeFrame(body);
}

// ---- host → board -----------------------------------------------------------------------------

export function encodeHostData(seq: number, payload: Uint8Array): Uint8Array {
  if (payload.length === 0 || payload.length > MAX_PAYLOAD) throw new RangeError(`DATA payload of ${payload.length} bytes`);
  return frame([HostFrame.DATA, seq & 0xff], payload);
}

/** HELLO; `options` (HostHelloOption bits) go as its one payload byte, none when 0. */
export function encodeHostHello(seq: number, options = 0): Uint8Array {
  return frame([HostFrame.HELLO, seq & 0xff], options ? Uint8Array.of(options) : new Uint8Array(0));
}

export interface HostFrameView {
  readonly type: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

export function parseHostFrame(body: Uint8Array): HostFrameView | undefined {
  if (body.length < HOST_HEADER_BYTES) return undefined;
  return { type: body[0]!, seq: body[1]!, payload: body.subarray(HOST_HEADER_BYTES) };
}

// ---- board → host -----------------------------------------------------------------------------

export interface BoardFrameView {
  readonly type: number;
  readonly intAsserted: boolean;
  readonly id: number;
  /** Next DATA seq the board expects. */
  readonly ack: number;
  /** Wire bytes the board has consumed, mod 2^16. */
  readonly consumed: number;
  readonly payload: Uint8Array;
}

/** A board frame; `ended`: a DATA frame whose payload ends in its request's DONE (caps bit 13). */
export function encodeBoardFrame(
  type: number,
  fields: { intAsserted: boolean; id: number; ack: number; consumed: number },
  payload: Uint8Array = new Uint8Array(0),
  ended = false,
): Uint8Array {
  const typeByte = type | (fields.intAsserted ? INT_LEVEL_BIT : 0);
  return frame([typeByte, fields.id & 0xff, fields.ack & 0xff, fields.consumed & 0xff, (fields.consumed >>> 8) & 0xff], payload, ended);
}

export function parseBoardFrame(body: Uint8Array): BoardFrameView | undefined {
  if (body.length < BOARD_HEADER_BYTES) return undefined;
  return {
    type: body[0]! & ~INT_LEVEL_BIT,
    intAsserted: (body[0]! & INT_LEVEL_BIT) !== 0,
    id: body[1]!,
    ack: body[2]!,
    consumed: body[3]! | (body[4]! << 8),
    payload: body.subarray(BOARD_HEADER_BYTES),
  };
}

export interface Hello {
  readonly version: number;
  readonly capabilities: number;
  /** Host credit in wire bytes. */
  readonly window: number;
  readonly maxPayload: number;
  /** HELLOs answered since boot (0 in the unsolicited boot HELLO). */
  readonly sessions: number;
  /** MCUSR at boot. */
  readonly resetCause: number;
  readonly pinCount: number;
  readonly csPin: number;
  readonly intPin: number;
  readonly resetPin: number;
  readonly analogCount: number;
  readonly a0Pin: number;
  /** Largest ARM program (version 2; 0 in version 1). */
  readonly programBytes: number;
  readonly name: string;
}

const HELLO_FIXED_BYTES_V1 = 14;
/** Version 2 adds programBytes before the name. */
const HELLO_FIXED_BYTES = 15;

export function encodeHello(hello: Hello): Uint8Array {
  const name = new TextEncoder().encode(hello.name);
  const fixed = hello.version >= 2 ? HELLO_FIXED_BYTES : HELLO_FIXED_BYTES_V1;
  const out = new Uint8Array(fixed + name.length);
  const view = new DataView(out.buffer);
  out[0] = hello.version;
  view.setUint16(1, hello.capabilities, true);
  view.setUint16(3, hello.window, true);
  out[5] = hello.maxPayload;
  out[6] = hello.sessions;
  out[7] = hello.resetCause;
  out[8] = hello.pinCount;
  out[9] = hello.csPin;
  out[10] = hello.intPin;
  out[11] = hello.resetPin;
  out[12] = hello.analogCount;
  out[13] = hello.a0Pin;
  if (hello.version >= 2) out[14] = hello.programBytes;
  out.set(name, fixed);
  return out;
}

export function parseHello(payload: Uint8Array): Hello | undefined {
  if (payload.length < HELLO_FIXED_BYTES_V1) return undefined;
  const version = payload[0]!;
  const fixed = version >= 2 ? HELLO_FIXED_BYTES : HELLO_FIXED_BYTES_V1;
  if (payload.length < fixed) return undefined;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return {
    version: payload[0]!,
    capabilities: view.getUint16(1, true),
    window: view.getUint16(3, true),
    maxPayload: payload[5]!,
    sessions: payload[6]!,
    resetCause: payload[7]!,
    pinCount: payload[8]!,
    csPin: payload[9]!,
    intPin: payload[10]!,
    resetPin: payload[11]!,
    analogCount: payload[12]!,
    a0Pin: payload[13]!,
    programBytes: version >= 2 ? payload[14]! : 0,
    name: new TextDecoder().decode(payload.subarray(fixed)),
  };
}

export interface Done {
  readonly status: number;
  readonly value: number;
}

export function parseDone(payload: Uint8Array): Done | undefined {
  if (payload.length < 3) return undefined;
  return { status: payload[0]!, value: payload[1]! | (payload[2]! << 8) };
}

export function encodeDone(done: Done): Uint8Array {
  return Uint8Array.of(done.status, done.value & 0xff, (done.value >>> 8) & 0xff);
}

// ---- command stream ---------------------------------------------------------------------------

/** One SPI transaction as the command stream carries it (src/drivers/hal.ts SpiTransaction). */
export interface WireTransaction {
  readonly write?: Uint8Array;
  readonly read?: number;
  readonly duplex?: boolean;
  readonly keepSelected?: boolean;
  /** IF: run this and the rest of the batch only if read byte `ifNonZero` is not zero. */
  readonly ifNonZero?: number;
  /** LENGTH: the read count comes from read bytes; `read` is the cap. `minusAt`: SPAN (EXT). */
  readonly readLengthFrom?: { readonly at: number; readonly bigEndian?: boolean; readonly minus?: number; readonly even?: boolean; readonly minusAt?: number };
  /** DELAY (caps bit 11): wait this many µs (1..65535) before the transaction; 0 or none: no wait. */
  readonly delayUs?: number;
  /** SAME (EXT): run this and the rest only if read bytes [0], [0]+1 equal [1], [1]+1. */
  readonly ifSame?: readonly [number, number];
  /** DIFFER (EXT): run this and the rest only if they differ. */
  readonly ifDiffer?: readonly [number, number];
  /** COPY (EXT): write bytes `at`, `at`+1 are read bytes `from`, `from`+1. */
  readonly copy?: { readonly at: number; readonly from: number };
}

/** The EXT byte `t` needs (0: none of its features). */
export function extFlags(t: WireTransaction): number {
  return (
    (t.ifSame ? ExtFlag.SAME : 0) |
    (t.ifDiffer ? ExtFlag.DIFFER : 0) |
    (t.copy ? ExtFlag.COPY : 0) |
    (t.readLengthFrom?.minusAt !== undefined ? ExtFlag.SPAN : 0)
  );
}

/** Operand bytes after an EXT byte. */
export function extOperandBytes(ext: number): number {
  return (ext & ExtFlag.SAME ? 2 : 0) + (ext & ExtFlag.DIFFER ? 2 : 0) + (ext & ExtFlag.COPY ? 2 : 0) + (ext & ExtFlag.SPAN ? 1 : 0);
}

/**
 * EXT operands refer to the batch's first REFERABLE_READ_BYTES read bytes once read (the board
 * keeps them whatever it reads after: unlike IF and LENGTH, still after the 65th). `kept`: those
 * read so far. The 16-bit value at `at` (big-endian unless `littleEndian`), or undefined.
 */
export function keptValue(kept: ArrayLike<number>, at: number, littleEndian = false): number | undefined {
  if (at + 1 >= Math.min(kept.length, REFERABLE_READ_BYTES)) return undefined;
  const a = kept[at]!, b = kept[at + 1]!;
  return littleEndian ? a | (b << 8) : (a << 8) | b;
}

/**
 * SAME and DIFFER of `t` over the kept read bytes: 'run', 'skip' (a test failed), or 'invalid'
 * (a reference to a byte not read: the rest is skipped and the DONE says EINVAL).
 */
export function extTest(t: Pick<WireTransaction, 'ifSame' | 'ifDiffer'>, kept: ArrayLike<number>): 'run' | 'skip' | 'invalid' {
  for (const [pair, same] of [[t.ifSame, true], [t.ifDiffer, false]] as const) {
    if (!pair) continue;
    const a = keptValue(kept, pair[0]), b = keptValue(kept, pair[1]);
    if (a === undefined || b === undefined) return 'invalid';
    if ((a === b) !== same) return 'skip';
  }
  return 'run';
}

/** Whether `t` carries a DELAY (0 and undefined do not); throws on a value the header cannot carry. */
function hasDelay(t: WireTransaction): boolean {
  const us = t.delayUs;
  if (us === undefined || us === 0) return false;
  if (!Number.isInteger(us) || us < 0 || us > DELAY_US_MAX) throw new RangeError(`DELAY of ${us} µs: 1 to ${DELAY_US_MAX}`);
  return true;
}

/** Total DELAY of `batch` in µs (the least time the board spends on it besides its SPI bytes). */
export function batchDelayUs(batch: readonly WireTransaction[]): number {
  let us = 0;
  for (const t of batch) if (hasDelay(t)) us += t.delayUs!;
  return us;
}

/** Bytes the board returns for `batch` (for a batch with IF or LENGTH: the most it can return). */
export function batchReadLength(batch: readonly WireTransaction[]): number {
  let n = 0;
  for (const t of batch) n += (t.read ?? 0) + (t.duplex ? (t.write?.length ?? 0) : 0);
  return n;
}

export interface EncodeOptions {
  /** The board takes SHORT headers (caps bit 9): transactions with wlen, rlen ≤ 15 use them. */
  readonly shortHeaders?: boolean;
  /**
   * The board takes the PAIRS flag (caps bit 12): runs of two-byte write-only transactions (a
   * register write or bit set/clear) go as one SHORT transaction of up to seven pairs, CS pulsed
   * between them by the board. Needs `shortHeaders`.
   */
  readonly pairs?: boolean;
  /** Every transaction carries an EXT byte: a program armed with ArmOption.EXT (caps bit 15). */
  readonly ext?: boolean;
}

/** Pairs one PAIRS transaction carries: a SHORT header's write length is at most 15 bytes. */
export const PAIRS_MAX = 7;

/**
 * A transaction that can be a pair of a PAIRS run: two bytes written, nothing read, CS released
 * after it. The first of a run may also carry IF or DELAY (they act before it, and so before the
 * whole run, as they would have).
 */
function pairable(t: WireTransaction, first: boolean): boolean {
  const plain = t.write?.length === 2 && (t.read ?? 0) === 0 && !t.duplex && !t.keepSelected && t.readLengthFrom === undefined && extFlags(t) === 0;
  return plain && (first || (t.ifNonZero === undefined && !hasDelay(t)));
}

/**
 * The transactions as they go on the wire: with `pairs`, each run of two or more two-byte
 * write-only transactions becomes one (its write the pairs in order, `pairs` set).
 */
function wireUnits(batch: readonly WireTransaction[], options: EncodeOptions): readonly (WireTransaction & { readonly pairs?: boolean })[] {
  if (!options.pairs || !options.shortHeaders) return batch;
  const units: (WireTransaction & { pairs?: boolean })[] = [];
  let i = 0;
  while (i < batch.length) {
    const first = batch[i]!;
    let end = i + 1;
    if (pairable(first, true)) while (end < batch.length && end - i < PAIRS_MAX && pairable(batch[end]!, false)) end++;
    if (end - i < 2) {
      units.push(first);
      i++;
      continue;
    }
    const write = new Uint8Array(2 * (end - i));
    for (let k = i; k < end; k++) write.set(batch[k]!.write!, 2 * (k - i));
    units.push({ write, pairs: true, ...(first.ifNonZero !== undefined && { ifNonZero: first.ifNonZero }), ...(hasDelay(first) && { delayUs: first.delayUs! }) });
    i = end;
  }
  return units;
}

function checkReference(at: number, what: string): void {
  const pair = what !== 'IF';
  if (!Number.isInteger(at) || at < 0 || at >= REFERABLE_READ_BYTES - (pair ? 1 : 0)) {
    throw new RangeError(`${what} refers to read byte ${at}: only the first ${REFERABLE_READ_BYTES} can be referred to`);
  }
}

/** Encoded size of `batch`'s transactions (headers and write bytes). */
export function transactionsLength(batch: readonly WireTransaction[], options: EncodeOptions = {}): number {
  let size = 0;
  for (const t of wireUnits(batch, options)) {
    const wlen = t.write?.length ?? 0;
    const rlen = t.read ?? 0;
    const short = options.shortHeaders === true && wlen <= SHORT_LENGTH_MAX && rlen <= SHORT_LENGTH_MAX;
    size += (short ? SHORT_TRANSACTION_HEADER_BYTES : TRANSACTION_HEADER_BYTES) + wlen;
    if (t.ifNonZero !== undefined) size += 1;
    if (t.readLengthFrom !== undefined) size += 2;
    if (hasDelay(t)) size += 2;
    if (options.ext) size += 1 + extOperandBytes(extFlags(t));
  }
  return size;
}

/** Write `batch`'s transactions into `out` at `at`; returns the offset past them. */
function encodeTransactions(out: Uint8Array, at: number, transactions: readonly WireTransaction[], options: EncodeOptions): number {
  const batch = wireUnits(transactions, options);
  batch.forEach((t, index) => {
    const wlen = t.write?.length ?? 0;
    const rlen = t.read ?? 0;
    if (wlen > 0xffff || rlen > 0xffff || rlen < 0) throw new RangeError('SPI transaction longer than 65535 bytes');
    const short = options.shortHeaders === true && wlen <= SHORT_LENGTH_MAX && rlen <= SHORT_LENGTH_MAX;
    let flags = 0;
    if (t.keepSelected) flags |= TransactionFlag.KEEP_CS;
    if (t.duplex) flags |= TransactionFlag.DUPLEX;
    if (t.ifNonZero !== undefined) flags |= TransactionFlag.IF;
    if (t.readLengthFrom !== undefined) flags |= TransactionFlag.LENGTH;
    if (short) flags |= TransactionFlag.SHORT;
    if (t.pairs) flags |= TransactionFlag.PAIRS;
    const delay = hasDelay(t);
    if (delay) flags |= TransactionFlag.DELAY;
    if (index === batch.length - 1) flags |= TransactionFlag.LAST;
    out[at++] = flags;
    const ext = extFlags(t);
    if (ext && !options.ext) throw new RangeError('ifSame, ifDiffer, copy and LENGTH minusAt are for programs armed with EXT (caps bit 15)');
    if (options.ext) out[at++] = ext;
    if (short) {
      out[at++] = wlen | (rlen << 4);
    } else {
      out[at++] = wlen & 0xff;
      out[at++] = wlen >>> 8;
      out[at++] = rlen & 0xff;
      out[at++] = rlen >>> 8;
    }
    if (t.ifNonZero !== undefined) {
      checkReference(t.ifNonZero, 'IF');
      out[at++] = t.ifNonZero;
    }
    const rule = t.readLengthFrom;
    if (rule !== undefined) {
      checkReference(rule.at, 'LENGTH');
      const minus = rule.minus ?? 0;
      if (!Number.isInteger(minus) || minus < 0 || minus > LENGTH_MINUS_MAX) throw new RangeError(`LENGTH minus ${minus}: 0 to ${LENGTH_MINUS_MAX}`);
      out[at++] = rule.at;
      out[at++] = (rule.bigEndian ? LengthOption.BIG_ENDIAN : 0) | (rule.even ? LengthOption.EVEN : 0) | (minus << 2);
    }
    if (ext) at = encodeExtOperands(out, at, t, wlen);
    if (delay) {
      out[at++] = t.delayUs! & 0xff;
      out[at++] = t.delayUs! >>> 8;
    }
    if (t.write) out.set(t.write, at);
    at += wlen;
  });
  return at;
}

/** EXT operands in ExtFlag order: SAME a b, DIFFER a b, COPY pos a, SPAN b. */
function encodeExtOperands(out: Uint8Array, at: number, t: WireTransaction, wlen: number): number {
  for (const pair of [t.ifSame, t.ifDiffer]) {
    if (!pair) continue;
    for (const x of pair) checkReference(x, 'SAME/DIFFER');
    out[at++] = pair[0];
    out[at++] = pair[1];
  }
  if (t.copy) {
    const { at: pos, from } = t.copy;
    if (!Number.isInteger(pos) || pos < 0 || pos + 1 >= wlen) throw new RangeError(`COPY to write bytes ${pos}, ${pos + 1} of a ${wlen}-byte write`);
    checkReference(from, 'COPY');
    out[at++] = pos;
    out[at++] = from;
  }
  const minusAt = t.readLengthFrom?.minusAt;
  if (minusAt !== undefined) {
    checkReference(minusAt, 'SPAN');
    out[at++] = minusAt;
  }
  return at;
}

/** A transaction header as the board reads it: flags, lengths, IF, LENGTH and DELAY operands. */
export interface TransactionHeader {
  readonly flags: number;
  readonly writeLength: number;
  /** The read count, or with LENGTH its cap. */
  readonly readLength: number;
  readonly ifNonZero?: number;
  readonly readLengthFrom?: NonNullable<WireTransaction['readLengthFrom']>;
  /** DELAY: µs to wait before the transaction. */
  readonly delayUs?: number;
  /** EXT operands (a program armed with EXT). */
  readonly ifSame?: readonly [number, number];
  readonly ifDiffer?: readonly [number, number];
  readonly copy?: { readonly at: number; readonly from: number };
}

/**
 * Header bytes after the flags byte of a transaction, as a board of `version` reads them (`delays`:
 * it knows the DELAY flag, caps bit 11).
 */
export function transactionHeaderRest(flags: number, version: number, delays = version >= 2): number {
  if (version < 2) return TRANSACTION_HEADER_BYTES - 1;
  const lengths = flags & TransactionFlag.SHORT ? SHORT_TRANSACTION_HEADER_BYTES : TRANSACTION_HEADER_BYTES;
  const delay = delays && flags & TransactionFlag.DELAY ? 2 : 0;
  return lengths - 1 + (flags & TransactionFlag.IF ? 1 : 0) + (flags & TransactionFlag.LENGTH ? 2 : 0) + delay;
}

/**
 * Decode a whole transaction header (flags byte first), as a board of `version` reads it; `ext`: a
 * program armed with EXT (the EXT byte after the flags; decoded as if it were not there, then its
 * operands from before the DELAY bytes).
 */
export function decodeTransactionHeader(bytes: ArrayLike<number>, version: number, delays = version >= 2, ext = false): TransactionHeader {
  if (ext) return decodeExtHeader(bytes, version, delays);
  const flags = bytes[0]!;
  const short = version >= 2 && (flags & TransactionFlag.SHORT) !== 0;
  const writeLength = short ? bytes[1]! & 0x0f : bytes[1]! | (bytes[2]! << 8);
  const readLength = short ? bytes[1]! >>> 4 : bytes[3]! | (bytes[4]! << 8);
  // A version-1 board knows no IF or LENGTH and ignores those bits.
  if (version < 2) return { flags, writeLength, readLength };
  let at = short ? SHORT_TRANSACTION_HEADER_BYTES : TRANSACTION_HEADER_BYTES;
  const ifNonZero = flags & TransactionFlag.IF ? bytes[at++]! : undefined;
  let readLengthFrom: TransactionHeader['readLengthFrom'];
  if (flags & TransactionFlag.LENGTH) {
    readLengthFrom = lengthRule(bytes[at]!, bytes[at + 1]!);
    at += 2;
  }
  const delayUs = delays && flags & TransactionFlag.DELAY ? bytes[at]! | (bytes[at + 1]! << 8) : undefined;
  return { flags, writeLength, readLength, ifNonZero, readLengthFrom, ...(delayUs !== undefined ? { delayUs } : {}) };
}

function decodeExtHeader(bytes: ArrayLike<number>, version: number, delays: boolean): TransactionHeader {
  const flags = bytes[0]!;
  const ext = bytes[1]!;
  const delayBytes = delays && flags & TransactionFlag.DELAY ? 2 : 0;
  // Lengths, IF and LENGTH operands follow the EXT byte; then EXT's operands; DELAY's last.
  const base = transactionHeaderRest(flags, version, delays) - delayBytes;
  const plain = [flags];
  for (let i = 2; i < 2 + base; i++) plain.push(bytes[i]!);
  for (let i = bytes.length - delayBytes; i < bytes.length; i++) plain.push(bytes[i]!);
  const header = decodeTransactionHeader(plain, version, delays);
  let at = 2 + base;
  const pair = (): [number, number] => [bytes[at++]!, bytes[at++]!];
  const ifSame = ext & ExtFlag.SAME ? pair() : undefined;
  const ifDiffer = ext & ExtFlag.DIFFER ? pair() : undefined;
  const copy = ext & ExtFlag.COPY ? { at: bytes[at++]!, from: bytes[at++]! } : undefined;
  const minusAt = ext & ExtFlag.SPAN ? bytes[at++]! : undefined;
  return {
    ...header,
    ...(ifSame && { ifSame }),
    ...(ifDiffer && { ifDiffer }),
    ...(copy && { copy }),
    ...(minusAt !== undefined && header.readLengthFrom && { readLengthFrom: { ...header.readLengthFrom, minusAt } }),
  };
}

/** Header bytes after the flags byte of a program transaction armed with EXT, once the EXT byte (`ext`) is known. */
export function extTransactionHeaderRest(flags: number, ext: number, version: number, delays = version >= 2): number {
  return transactionHeaderRest(flags, version, delays) + 1 + extOperandBytes(ext);
}

/** LENGTH's operands: the read byte it starts at, and opts (bit 0 big-endian, bit 1 even, bits 2..7 minus). */
function lengthRule(at: number, options: number): NonNullable<WireTransaction['readLengthFrom']> {
  return {
    at,
    ...(options & LengthOption.BIG_ENDIAN ? { bigEndian: true } : {}),
    ...(options >>> 2 ? { minus: options >>> 2 } : {}),
    ...(options & LengthOption.EVEN ? { even: true } : {}),
  };
}

/** The SPI command for `batch` (at least one transaction; each write/read ≤ 65535 bytes). */
export function encodeSpiCommand(id: number, batch: readonly WireTransaction[], options: EncodeOptions = {}): Uint8Array {
  if (batch.length === 0) throw new RangeError('empty SPI batch');
  const out = new Uint8Array(2 + transactionsLength(batch, options));
  out[0] = Command.SPI;
  out[1] = id;
  encodeTransactions(out, 2, batch, options);
  return out;
}

/** ARM: `program` becomes the board's program, answered (and run) under `id`. */
export function encodeArm(id: number, program: readonly WireTransaction[], armOptions: { quiet?: boolean }, options: EncodeOptions = {}): Uint8Array {
  if (program.length === 0) throw new RangeError('empty program');
  // EXT only when the program needs it: every other program stays readable by any version-2 board.
  const ext = program.some((t) => extFlags(t) !== 0);
  options = { ...options, ext };
  const length = transactionsLength(program, options);
  if (length > 0xff) throw new RangeError(`a program of ${length} bytes (at most 255 can be encoded)`);
  const out = new Uint8Array(4 + length);
  out[0] = Command.ARM;
  out[1] = id;
  out[2] = (armOptions.quiet ? ArmOption.QUIET : 0) | (ext ? ArmOption.EXT : 0);
  out[3] = length;
  encodeTransactions(out, 4, program, options);
  return out;
}

/**
 * The read count a LENGTH rule gives, from the batch's read bytes so far (`reads`), capped at
 * `cap`; undefined when the bytes are not available (the board then reads 0, status EINVAL): not
 * read yet, or the batch has read more than REFERABLE_READ_BYTES (the board held the first ones
 * in its DATA buffer, and the next byte overwrote them).
 */
export function computedReadLength(rule: NonNullable<WireTransaction['readLengthFrom']>, reads: Uint8Array, cap: number, kept: ArrayLike<number> = reads): number | undefined {
  if (reads.length > REFERABLE_READ_BYTES || rule.at + 1 >= reads.length) return undefined;
  const a = reads[rule.at]!;
  const b = reads[rule.at + 1]!;
  let value = rule.bigEndian ? (a << 8) | b : a | (b << 8);
  if (rule.minusAt !== undefined) {
    // SPAN (EXT): minus the value at minusAt, same byte order, mod 2^16.
    const span = keptValue(kept, rule.minusAt, !rule.bigEndian);
    if (span === undefined) return undefined;
    value = (value - span) & 0xffff;
  }
  value = Math.max(0, value - (rule.minus ?? 0));
  if (rule.even) value += value & 1;
  return Math.min(value, cap);
}

/** A command without a transaction body: opcode, id, arguments. */
export function encodeCommand(command: number, id: number, ...args: number[]): Uint8Array {
  const expected = COMMAND_ARGUMENT_BYTES[command];
  if (expected === undefined || expected !== args.length + 1) throw new RangeError(`command 0x${command.toString(16)} takes ${expected} argument bytes`);
  return Uint8Array.of(command, id, ...args.map((a) => a & 0xff));
}

export function encodeSetBaud(id: number, baud: number): Uint8Array {
  return encodeCommand(Command.SET_BAUD, id, baud & 0xff, (baud >>> 8) & 0xff, (baud >>> 16) & 0xff, (baud >>> 24) & 0xff);
}

/** SET_FILL: the board follows each burst of frames with up to `count` idle zeros (0 = off). */
export function encodeSetFill(id: number, count: number): Uint8Array {
  if (!Number.isInteger(count) || count < 0 || count > 0xff) throw new RangeError(`idle fill of ${count} bytes (0 to 255)`);
  return encodeCommand(Command.SET_FILL, id, count);
}

/** Wire bytes of the DATA frames carrying `streamBytes` of command stream. */
export function hostWireBytes(streamBytes: number): number {
  const frames = Math.ceil(streamBytes / MAX_PAYLOAD);
  return streamBytes + frames * HOST_FRAME_OVERHEAD;
}

/**
 * Wire bytes of the board's reply to a request that reads `readBytes`, at most: DATA frames of
 * 64 bytes as the oldest boards send them and a DONE frame of its own (a newer board sends fewer
 * frames and may end the last with the DONE). A bound for timeouts, not a count.
 */
export function boardReplyWireBytes(readBytes: number): number {
  const frames = Math.ceil(readBytes / MAX_PAYLOAD);
  return readBytes + frames * BOARD_FRAME_OVERHEAD + DONE_BYTES + BOARD_FRAME_OVERHEAD;
}
