import { sum16, internetChecksum } from './checksum.js';
import { parseErrors, type ParseError } from './errors.js';
import { Ipv4Packet } from './ipv4.js';

/** ICMPv4 (RFC 792), with the RFC 1191 next-hop MTU in "fragmentation needed". */

export const IcmpType = {
  ECHO_REPLY: 0,
  DESTINATION_UNREACHABLE: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAMETER_PROBLEM: 12,
} as const;

export const DestinationUnreachableCode = {
  NET: 0,
  HOST: 1,
  PROTOCOL: 2,
  PORT: 3,
  FRAGMENTATION_NEEDED: 4,
  SOURCE_ROUTE_FAILED: 5,
} as const;

export const TimeExceededCode = {
  TTL: 0,
  REASSEMBLY: 1,
} as const;

/** RFC 1122 §3.2.2: the error types (never answered with another error). */
export function isIcmpErrorType(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/** Field offsets (RFC 792). */
const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
/** Echo: identifier and sequence number. */
const IDENTIFIER = 4;
const SEQUENCE = 6;
/** Destination unreachable code 4: next-hop MTU (RFC 1191 §4). */
const NEXT_HOP_MTU = 6;
/** Parameter problem: pointer to the offending octet. */
const POINTER = 4;
export const ICMP_HEADER_LENGTH = 8;

const ERRORS = parseErrors('icmp', ['truncated', 'bad-checksum', 'malformed']);

export class IcmpPacket {
  readonly ok = true as const;
  private constructor(readonly bytes: Uint8Array) {}

  /** `bytes` is the whole ICMP message (the IP payload). */
  static check(bytes: Uint8Array): IcmpPacket | ParseError {
    if (bytes.length < ICMP_HEADER_LENGTH) return ERRORS.truncated;
    return new IcmpPacket(bytes);
  }

  get type(): number {
    return this.bytes[TYPE]!;
  }

  get code(): number {
    return this.bytes[CODE]!;
  }

  get checksum(): number {
    return (this.bytes[CHECKSUM]! << 8) | this.bytes[CHECKSUM + 1]!;
  }

  get identifier(): number {
    return (this.bytes[IDENTIFIER]! << 8) | this.bytes[IDENTIFIER + 1]!;
  }

  get sequence(): number {
    return (this.bytes[SEQUENCE]! << 8) | this.bytes[SEQUENCE + 1]!;
  }

  get nextHopMtu(): number {
    return (this.bytes[NEXT_HOP_MTU]! << 8) | this.bytes[NEXT_HOP_MTU + 1]!;
  }

  get pointer(): number {
    return this.bytes[POINTER]!;
  }

  /** Echo data, or the quoted datagram of an error. */
  get data(): Uint8Array {
    return this.bytes.subarray(ICMP_HEADER_LENGTH);
  }

  verifyChecksum(): boolean {
    return sum16(this.bytes) === 0xffff;
  }
}

export type IcmpRepr =
  | { readonly type: 'echo-request' | 'echo-reply'; readonly identifier: number; readonly sequence: number; readonly data: Uint8Array }
  /** `quote` is the offending IP header plus at least 8 bytes of its payload. */
  | { readonly type: 'destination-unreachable'; readonly code: number; readonly nextHopMtu: number; readonly quote: Uint8Array }
  | { readonly type: 'time-exceeded'; readonly code: number; readonly quote: Uint8Array }
  | { readonly type: 'parameter-problem'; readonly code: number; readonly pointer: number; readonly quote: Uint8Array }
  /** Anything else (redirects, timestamps, …): kept raw, the stack ignores it. */
  | { readonly type: 'other'; readonly rawType: number; readonly code: number; readonly rest: number; readonly data: Uint8Array };

export const IcmpRepr = {
  /** Views into the packet are kept (no copy): `data`/`quote` alias the received bytes. */
  parse(packet: IcmpPacket, verifyChecksum = true): IcmpRepr | ParseError {
    if (verifyChecksum && !packet.verifyChecksum()) return ERRORS['bad-checksum'];
    const type = packet.type;
    switch (type) {
      case IcmpType.ECHO_REQUEST:
      case IcmpType.ECHO_REPLY:
        if (packet.code !== 0) return ERRORS.malformed;
        return {
          type: type === IcmpType.ECHO_REQUEST ? 'echo-request' : 'echo-reply',
          identifier: packet.identifier,
          sequence: packet.sequence,
          data: packet.data,
        };
      case IcmpType.DESTINATION_UNREACHABLE:
        return {
          type: 'destination-unreachable',
          code: packet.code,
          nextHopMtu: packet.code === DestinationUnreachableCode.FRAGMENTATION_NEEDED ? packet.nextHopMtu : 0,
          quote: packet.data,
        };
      case IcmpType.TIME_EXCEEDED:
        return { type: 'time-exceeded', code: packet.code, quote: packet.data };
      case IcmpType.PARAMETER_PROBLEM:
        return { type: 'parameter-problem', code: packet.code, pointer: packet.pointer, quote: packet.data };
      default: {
        const b = packet.bytes;
        const rest = ((b[4]! << 24) | (b[5]! << 16) | (b[6]! << 8) | b[7]!) >>> 0;
        return { type: 'other', rawType: type, code: packet.code, rest, data: packet.data };
      }
    }
  },

  bufferLength(repr: IcmpRepr): number {
    return ICMP_HEADER_LENGTH + ('quote' in repr ? repr.quote.length : repr.data.length);
  },

  /** Write the message with its checksum at `offset`; returns the end offset. */
  emit(repr: IcmpRepr, buffer: Uint8Array, offset = 0): number {
    let type: number;
    let code = 0;
    let rest = 0;
    let body: Uint8Array;
    switch (repr.type) {
      case 'echo-request':
      case 'echo-reply':
        type = repr.type === 'echo-request' ? IcmpType.ECHO_REQUEST : IcmpType.ECHO_REPLY;
        rest = ((repr.identifier & 0xffff) << 16) | (repr.sequence & 0xffff);
        body = repr.data;
        break;
      case 'destination-unreachable':
        type = IcmpType.DESTINATION_UNREACHABLE;
        code = repr.code;
        rest = repr.nextHopMtu & 0xffff;
        body = repr.quote;
        break;
      case 'time-exceeded':
        type = IcmpType.TIME_EXCEEDED;
        code = repr.code;
        body = repr.quote;
        break;
      case 'parameter-problem':
        type = IcmpType.PARAMETER_PROBLEM;
        code = repr.code;
        rest = (repr.pointer & 0xff) << 24;
        body = repr.quote;
        break;
      case 'other':
        type = repr.rawType;
        code = repr.code;
        rest = repr.rest;
        body = repr.data;
        break;
    }
    buffer[offset + TYPE] = type;
    buffer[offset + CODE] = code;
    buffer[offset + CHECKSUM] = 0;
    buffer[offset + CHECKSUM + 1] = 0;
    buffer[offset + 4] = rest >>> 24;
    buffer[offset + 5] = (rest >>> 16) & 0xff;
    buffer[offset + 6] = (rest >>> 8) & 0xff;
    buffer[offset + 7] = rest & 0xff;
    buffer.set(body, offset + ICMP_HEADER_LENGTH);
    const end = offset + ICMP_HEADER_LENGTH + body.length;
    const checksum = internetChecksum(buffer, offset, end - offset);
    buffer[offset + CHECKSUM] = checksum >>> 8;
    buffer[offset + CHECKSUM + 1] = checksum & 0xff;
    return end;
  },
};

/** The datagram an ICMP error quotes: its IP header and the first bytes of its payload. */
export interface QuotedDatagram {
  readonly header: Ipv4Packet;
  /** At least 8 bytes (RFC 792: "the first 64 bits of the original datagram's data"). */
  readonly transportHeader: Uint8Array;
}

export function parseQuotedDatagram(quote: Uint8Array): QuotedDatagram | ParseError {
  const header = Ipv4Packet.checkQuoted(quote);
  if (!header.ok) return header;
  const transportHeader = quote.subarray(header.headerLength);
  if (transportHeader.length < 8) return ERRORS.truncated;
  return { header, transportHeader };
}
