import { macEquals, type MacAddress } from './address.js';
import { parseErrors, type ParseError } from './errors.js';

/** Ethernet II (DIX) framing, as handed over by a Nic: no preamble, no FCS. */

export const EtherType = {
  IPV4: 0x0800,
  ARP: 0x0806,
  VLAN: 0x8100,
  IPV6: 0x86dd,
} as const;

/** Field offsets (IEEE 802.3 §3.1.1, Ethernet II type field). */
const DESTINATION = 0;
const SOURCE = 6;
const ETHER_TYPE = 12;
export const ETHERNET_HEADER_LENGTH = 14;
/** Values of the type/length field below this are 802.3 lengths, not EtherTypes. */
export const ETHERTYPE_MIN = 0x0600;

const ERRORS = parseErrors('ethernet', ['truncated']);

/** A zero-copy view of an Ethernet II frame, created only through `check`. */
export class EthernetFrame {
  readonly ok = true as const;
  private constructor(readonly bytes: Uint8Array) {}

  /** Validate the length once; every accessor is then in bounds. */
  static check(bytes: Uint8Array): EthernetFrame | ParseError {
    if (bytes.length < ETHERNET_HEADER_LENGTH) return ERRORS.truncated;
    return new EthernetFrame(bytes);
  }

  /** Byte offset of the destination MAC inside `bytes` (for allocation-free comparisons). */
  static readonly destinationOffset = DESTINATION;
  static readonly sourceOffset = SOURCE;

  get destination(): MacAddress {
    return this.bytes.subarray(DESTINATION, DESTINATION + 6);
  }

  get source(): MacAddress {
    return this.bytes.subarray(SOURCE, SOURCE + 6);
  }

  get etherType(): number {
    return (this.bytes[ETHER_TYPE]! << 8) | this.bytes[ETHER_TYPE + 1]!;
  }

  /** The bytes after the header (may include the NIC's padding to 60 bytes). */
  get payload(): Uint8Array {
    return this.bytes.subarray(ETHERNET_HEADER_LENGTH);
  }

  destinationIs(mac: MacAddress): boolean {
    return macEquals(this.bytes, DESTINATION, mac);
  }
}

/** The meaning of an Ethernet II header. */
export interface EthernetRepr {
  readonly source: MacAddress;
  readonly destination: MacAddress;
  readonly etherType: number;
}

export const EthernetRepr = {
  parse(frame: EthernetFrame): EthernetRepr {
    return { source: frame.source.slice(), destination: frame.destination.slice(), etherType: frame.etherType };
  },

  headerLength: ETHERNET_HEADER_LENGTH,

  /** Write the 14-byte header at `offset` of `buffer`; returns the offset of the payload. */
  emit(repr: EthernetRepr, buffer: Uint8Array, offset = 0): number {
    buffer.set(repr.destination, offset + DESTINATION);
    buffer.set(repr.source, offset + SOURCE);
    writeEtherType(buffer, offset, repr.etherType);
    return offset + ETHERNET_HEADER_LENGTH;
  },
};

/** Write only the destination MAC (the ARP layer fills it once the neighbour is resolved). */
export function writeEthernetDestination(frame: Uint8Array, mac: MacAddress): void {
  frame.set(mac, DESTINATION);
}

/** Write source MAC and EtherType, leaving the destination for later. */
export function writeEthernetSourceAndType(frame: Uint8Array, source: MacAddress, etherType: number): void {
  frame.set(source, SOURCE);
  writeEtherType(frame, 0, etherType);
}

function writeEtherType(buffer: Uint8Array, offset: number, etherType: number): void {
  buffer[offset + ETHER_TYPE] = etherType >>> 8;
  buffer[offset + ETHER_TYPE + 1] = etherType & 0xff;
}
