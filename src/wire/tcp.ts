import type { Ipv4Address } from './address.js';
import { internetChecksum, pseudoHeaderSum, sum16 } from './checksum.js';

/**
 * The TCP header (RFC 9293 §3.1) and its options (RFC 9293 §3.2, RFC 7323, RFC 2018).
 *
 * `TcpPacket` is a checked, zero-copy view over received bytes; `TcpRepr` is the parsed meaning
 * and emits itself into a caller's buffer. Malformed input is a `TcpParseError` value, never an
 * exception.
 */

export const TCP_PROTOCOL = 6;

/** Field offsets (RFC 9293 §3.1). */
const SOURCE_PORT = 0;
const DESTINATION_PORT = 2;
const SEQUENCE = 4;
const ACKNOWLEDGMENT = 8;
const DATA_OFFSET = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;
export const TCP_MIN_HEADER_LENGTH = 20;
/** RFC 9293 §3.1: 40 bytes of options at most (data offset is 4 bits of 32-bit words). */
export const TCP_MAX_OPTIONS_LENGTH = 40;

/** Control bits (RFC 9293 §3.1; ECE/CWR from RFC 3168). */
export const TcpFlag = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
} as const;

/** Option kinds (IANA "TCP Option Kind Numbers"). */
export const TcpOptionKind = {
  END: 0,
  NOP: 1,
  MSS: 2,
  WINDOW_SCALE: 3,
  SACK_PERMITTED: 4,
  SACK: 5,
  TIMESTAMPS: 8,
} as const;

/** RFC 7323 §2.3: a shift above 14 is treated as 14. */
export const TCP_MAX_WINDOW_SCALE = 14;

export type TcpParseErrorReason =
  /** Fewer than 20 bytes, or fewer than the data offset claims. */
  | 'truncated'
  /** Data offset below 5 words. */
  | 'bad-header-length'
  | 'bad-checksum'
  /** An option whose length byte is below 2 or runs past the header (RFC 9293 §3.2 MUST-7). */
  | 'bad-option'
  /** Port 0 is reserved and never valid on the wire. */
  | 'bad-port';

export class TcpParseError {
  readonly ok = false as const;
  readonly protocol = 'tcp' as const;
  constructor(readonly reason: TcpParseErrorReason) {
    Object.freeze(this);
  }

  toString(): string {
    return `tcp: ${this.reason}`;
  }
}

/** One immutable error per reason: a flood of bad segments allocates nothing. */
const ERRORS: Readonly<Record<TcpParseErrorReason, TcpParseError>> = Object.freeze({
  truncated: new TcpParseError('truncated'),
  'bad-header-length': new TcpParseError('bad-header-length'),
  'bad-checksum': new TcpParseError('bad-checksum'),
  'bad-option': new TcpParseError('bad-option'),
  'bad-port': new TcpParseError('bad-port'),
});

/** A checked view over a TCP segment: after `check`, every accessor stays inside the buffer. */
export class TcpPacket {
  readonly ok = true as const;
  private constructor(readonly bytes: Uint8Array) {}

  static check(bytes: Uint8Array): TcpPacket | TcpParseError {
    if (bytes.length < TCP_MIN_HEADER_LENGTH) return ERRORS.truncated;
    const headerLength = (bytes[DATA_OFFSET]! >>> 4) * 4;
    if (headerLength < TCP_MIN_HEADER_LENGTH) return ERRORS['bad-header-length'];
    if (headerLength > bytes.length) return ERRORS.truncated;
    return new TcpPacket(bytes);
  }

  /**
   * The first 8 bytes quoted by an ICMP error (RFC 792): ports and sequence number only.
   * Returns undefined when fewer than 8 bytes were quoted.
   */
  static quotedPortsAndSequence(bytes: Uint8Array): { sourcePort: number; destinationPort: number; sequence: number } | undefined {
    if (bytes.length < 8) return undefined;
    return { sourcePort: read16(bytes, SOURCE_PORT), destinationPort: read16(bytes, DESTINATION_PORT), sequence: read32(bytes, SEQUENCE) };
  }

  get sourcePort(): number {
    return read16(this.bytes, SOURCE_PORT);
  }

  get destinationPort(): number {
    return read16(this.bytes, DESTINATION_PORT);
  }

  get sequence(): number {
    return read32(this.bytes, SEQUENCE);
  }

  get acknowledgment(): number {
    return read32(this.bytes, ACKNOWLEDGMENT);
  }

  get headerLength(): number {
    return (this.bytes[DATA_OFFSET]! >>> 4) * 4;
  }

  get flags(): number {
    return this.bytes[FLAGS]!;
  }

  get window(): number {
    return read16(this.bytes, WINDOW);
  }

  get checksum(): number {
    return read16(this.bytes, CHECKSUM);
  }

  get urgentPointer(): number {
    return read16(this.bytes, URGENT);
  }

  get options(): Uint8Array {
    return this.bytes.subarray(TCP_MIN_HEADER_LENGTH, this.headerLength);
  }

  get payload(): Uint8Array {
    return this.bytes.subarray(this.headerLength);
  }

  /** RFC 9293 §3.1: the checksum covers the pseudo-header, the header and the data. */
  verifyChecksum(source: Ipv4Address, destination: Ipv4Address): boolean {
    const initial = pseudoHeaderSum(source, destination, TCP_PROTOCOL, this.bytes.length);
    return sum16(this.bytes, 0, this.bytes.length, initial) === 0xffff;
  }
}

/** A SACK block (RFC 2018 §3): left edge inclusive, right edge exclusive. */
export interface SackBlock {
  readonly left: number;
  readonly right: number;
}

export interface TcpTimestamp {
  readonly value: number;
  readonly echo: number;
}

/** The meaning of a TCP segment. Options absent from the wire are undefined (false for SACK-permitted). */
export interface TcpRepr {
  readonly sourcePort: number;
  readonly destinationPort: number;
  readonly sequence: number;
  /** Meaningful only when `flags` has ACK; emitted as 0 otherwise. */
  readonly acknowledgment: number;
  readonly flags: number;
  /** The raw 16-bit window field (unscaled). */
  readonly window: number;
  readonly urgentPointer?: number;
  readonly maxSegmentSize?: number;
  readonly windowScale?: number;
  readonly sackPermitted?: boolean;
  readonly sackBlocks?: readonly SackBlock[];
  readonly timestamp?: TcpTimestamp;
  readonly payload: Uint8Array;
}

interface MutableOptions {
  maxSegmentSize?: number;
  windowScale?: number;
  sackPermitted?: boolean;
  sackBlocks?: SackBlock[];
  timestamp?: TcpTimestamp;
}

/**
 * Walk the option list. RFC 9293 §3.2 MUST-6/MUST-7: accept any option in any segment, skip
 * unknown kinds by their length, and treat a length that is below 2 or overruns the header as
 * malformed. A known kind with the wrong (but in-bounds) length is skipped, as Linux does.
 */
export function parseTcpOptions(options: Uint8Array, out: MutableOptions = {}): MutableOptions | TcpParseError {
  let i = 0;
  while (i < options.length) {
    const kind = options[i]!;
    if (kind === TcpOptionKind.END) break;
    if (kind === TcpOptionKind.NOP) {
      i++;
      continue;
    }
    if (i + 1 >= options.length) return ERRORS['bad-option'];
    const length = options[i + 1]!;
    if (length < 2 || i + length > options.length) return ERRORS['bad-option'];
    switch (kind) {
      case TcpOptionKind.MSS:
        if (length === 4) out.maxSegmentSize = read16(options, i + 2);
        break;
      case TcpOptionKind.WINDOW_SCALE:
        if (length === 3) out.windowScale = Math.min(options[i + 2]!, TCP_MAX_WINDOW_SCALE);
        break;
      case TcpOptionKind.SACK_PERMITTED:
        if (length === 2) out.sackPermitted = true;
        break;
      case TcpOptionKind.SACK:
        if (length >= 10 && (length - 2) % 8 === 0) {
          const blocks: SackBlock[] = [];
          for (let j = i + 2; j < i + length; j += 8) blocks.push({ left: read32(options, j), right: read32(options, j + 4) });
          out.sackBlocks = blocks;
        }
        break;
      case TcpOptionKind.TIMESTAMPS:
        if (length === 10) out.timestamp = { value: read32(options, i + 2), echo: read32(options, i + 6) };
        break;
      default:
        break;
    }
    i += length;
  }
  return out;
}

/** How many SACK blocks fit beside the other options of `repr` (RFC 2018 §3: at most 4, 3 with timestamps). */
export function maxSackBlocks(repr: Pick<TcpRepr, 'maxSegmentSize' | 'windowScale' | 'sackPermitted' | 'timestamp'>): number {
  const used = optionsLengthWithoutSack(repr);
  return Math.max(0, Math.min(4, Math.floor((TCP_MAX_OPTIONS_LENGTH - used - 4) / 8)));
}

function optionsLengthWithoutSack(repr: Pick<TcpRepr, 'maxSegmentSize' | 'windowScale' | 'sackPermitted' | 'timestamp'>): number {
  let length = 0;
  if (repr.maxSegmentSize !== undefined) length += 4;
  // SACK-permitted and timestamps share a 12-byte slot (Linux's layout); alone each is padded to a word.
  if (repr.timestamp) length += 12;
  else if (repr.sackPermitted) length += 4;
  if (repr.windowScale !== undefined) length += 4;
  return length;
}

function sackBlockCount(repr: TcpRepr): number {
  return Math.min(repr.sackBlocks?.length ?? 0, maxSackBlocks(repr));
}

export const TcpRepr = {
  /** Parse a checked packet; `verifyChecksum: false` when the NIC already did. */
  parse(packet: TcpPacket, source: Ipv4Address, destination: Ipv4Address, verifyChecksum = true): TcpRepr | TcpParseError {
    if (packet.sourcePort === 0 || packet.destinationPort === 0) return ERRORS['bad-port'];
    if (verifyChecksum && !packet.verifyChecksum(source, destination)) return ERRORS['bad-checksum'];
    const options = parseTcpOptions(packet.options);
    if (options instanceof TcpParseError) return options;
    const flags = packet.flags;
    return {
      sourcePort: packet.sourcePort,
      destinationPort: packet.destinationPort,
      sequence: packet.sequence,
      acknowledgment: flags & TcpFlag.ACK ? packet.acknowledgment : 0,
      flags,
      window: packet.window,
      urgentPointer: flags & TcpFlag.URG ? packet.urgentPointer : undefined,
      maxSegmentSize: options.maxSegmentSize,
      windowScale: options.windowScale,
      sackPermitted: options.sackPermitted ?? false,
      sackBlocks: options.sackBlocks,
      timestamp: options.timestamp,
      payload: packet.payload,
    };
  },

  /** Header length including padded options. */
  headerLength(repr: TcpRepr): number {
    const sack = sackBlockCount(repr);
    return TCP_MIN_HEADER_LENGTH + optionsLengthWithoutSack(repr) + (sack > 0 ? 4 + 8 * sack : 0);
  },

  segmentLength(repr: TcpRepr): number {
    return TcpRepr.headerLength(repr) + repr.payload.length;
  },

  /**
   * Write header, options and payload into `buffer` at `offset` and fill in the checksum.
   * Returns the number of bytes written. The buffer must hold `segmentLength(repr)` bytes.
   */
  emit(repr: TcpRepr, buffer: Uint8Array, source: Ipv4Address, destination: Ipv4Address, offset = 0): number {
    const headerLength = TcpRepr.headerLength(repr);
    const total = headerLength + repr.payload.length;
    const b = buffer;
    const o = offset;
    write16(b, o + SOURCE_PORT, repr.sourcePort);
    write16(b, o + DESTINATION_PORT, repr.destinationPort);
    write32(b, o + SEQUENCE, repr.sequence);
    write32(b, o + ACKNOWLEDGMENT, repr.flags & TcpFlag.ACK ? repr.acknowledgment : 0);
    b[o + DATA_OFFSET] = (headerLength / 4) << 4;
    b[o + FLAGS] = repr.flags & 0xff;
    write16(b, o + WINDOW, repr.window);
    write16(b, o + CHECKSUM, 0);
    write16(b, o + URGENT, repr.urgentPointer ?? 0);
    let i = o + TCP_MIN_HEADER_LENGTH;
    if (repr.maxSegmentSize !== undefined) {
      b[i] = TcpOptionKind.MSS;
      b[i + 1] = 4;
      write16(b, i + 2, repr.maxSegmentSize);
      i += 4;
    }
    if (repr.timestamp) {
      if (repr.sackPermitted) {
        b[i] = TcpOptionKind.SACK_PERMITTED;
        b[i + 1] = 2;
      } else {
        b[i] = TcpOptionKind.NOP;
        b[i + 1] = TcpOptionKind.NOP;
      }
      b[i + 2] = TcpOptionKind.TIMESTAMPS;
      b[i + 3] = 10;
      write32(b, i + 4, repr.timestamp.value);
      write32(b, i + 8, repr.timestamp.echo);
      i += 12;
    } else if (repr.sackPermitted) {
      b[i] = TcpOptionKind.NOP;
      b[i + 1] = TcpOptionKind.NOP;
      b[i + 2] = TcpOptionKind.SACK_PERMITTED;
      b[i + 3] = 2;
      i += 4;
    }
    if (repr.windowScale !== undefined) {
      b[i] = TcpOptionKind.NOP;
      b[i + 1] = TcpOptionKind.WINDOW_SCALE;
      b[i + 2] = 3;
      b[i + 3] = Math.min(repr.windowScale, TCP_MAX_WINDOW_SCALE);
      i += 4;
    }
    const sack = sackBlockCount(repr);
    if (sack > 0) {
      b[i] = TcpOptionKind.NOP;
      b[i + 1] = TcpOptionKind.NOP;
      b[i + 2] = TcpOptionKind.SACK;
      b[i + 3] = 2 + 8 * sack;
      i += 4;
      for (let k = 0; k < sack; k++) {
        const block = repr.sackBlocks![k]!;
        write32(b, i, block.left);
        write32(b, i + 4, block.right);
        i += 8;
      }
    }
    b.set(repr.payload, o + headerLength);
    const checksum = internetChecksum(b, o, total, pseudoHeaderSum(source, destination, TCP_PROTOCOL, total));
    write16(b, o + CHECKSUM, checksum);
    return total;
  },

  /** Emit into a fresh, exactly sized buffer. */
  toBytes(repr: TcpRepr, source: Ipv4Address, destination: Ipv4Address): Uint8Array {
    const out = new Uint8Array(TcpRepr.segmentLength(repr));
    TcpRepr.emit(repr, out, source, destination);
    return out;
  },
};

/** Segment length in sequence space (RFC 9293 §3.4: SYN and FIN each occupy one). */
export function sequenceLength(flags: number, payloadLength: number): number {
  return payloadLength + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0);
}

/** "SYN|ACK" style text, for logs and test messages. */
export function formatTcpFlags(flags: number): string {
  const names: string[] = [];
  for (const [name, bit] of Object.entries(TcpFlag)) if (flags & bit) names.push(name);
  return names.join('|') || 'none';
}

function read16(b: Uint8Array, i: number): number {
  return (b[i]! << 8) | b[i + 1]!;
}

function read32(b: Uint8Array, i: number): number {
  return ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
}

function write16(b: Uint8Array, i: number, v: number): void {
  b[i] = (v >>> 8) & 0xff;
  b[i + 1] = v & 0xff;
}

function write32(b: Uint8Array, i: number, v: number): void {
  b[i] = (v >>> 24) & 0xff;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}
