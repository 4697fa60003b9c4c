import { readIpv4, writeIpv4, type Ipv4Address, type MacAddress } from './address.js';
import { parseErrors, type ParseError } from './errors.js';

/** ARP for IPv4 over Ethernet (RFC 826). Only this hardware/protocol pair is accepted. */

export const ArpOperation = {
  REQUEST: 1,
  REPLY: 2,
} as const;
export type ArpOperation = (typeof ArpOperation)[keyof typeof ArpOperation];

/** Field offsets (RFC 826 "Packet format"). */
const HARDWARE_TYPE = 0;
const PROTOCOL_TYPE = 2;
const HARDWARE_LENGTH = 4;
const PROTOCOL_LENGTH = 5;
const OPERATION = 6;
const SENDER_HARDWARE = 8;
const SENDER_PROTOCOL = 14;
const TARGET_HARDWARE = 18;
const TARGET_PROTOCOL = 24;
export const ARP_PACKET_LENGTH = 28;

const HARDWARE_ETHERNET = 1;
const PROTOCOL_IPV4 = 0x0800;

const ERRORS = parseErrors('arp', ['truncated', 'unsupported-format', 'bad-operation']);

export class ArpPacket {
  readonly ok = true as const;
  private constructor(readonly bytes: Uint8Array) {}

  /** Accept only Ethernet (htype 1, hlen 6) / IPv4 (ptype 0x0800, plen 4) requests and replies. */
  static check(bytes: Uint8Array): ArpPacket | ParseError {
    if (bytes.length < ARP_PACKET_LENGTH) return ERRORS.truncated;
    const packet = new ArpPacket(bytes);
    if (
      packet.hardwareType !== HARDWARE_ETHERNET ||
      packet.protocolType !== PROTOCOL_IPV4 ||
      bytes[HARDWARE_LENGTH] !== 6 ||
      bytes[PROTOCOL_LENGTH] !== 4
    ) {
      return ERRORS['unsupported-format'];
    }
    const op = packet.operation;
    if (op !== ArpOperation.REQUEST && op !== ArpOperation.REPLY) return ERRORS['bad-operation'];
    return packet;
  }

  get hardwareType(): number {
    return (this.bytes[HARDWARE_TYPE]! << 8) | this.bytes[HARDWARE_TYPE + 1]!;
  }

  get protocolType(): number {
    return (this.bytes[PROTOCOL_TYPE]! << 8) | this.bytes[PROTOCOL_TYPE + 1]!;
  }

  get operation(): ArpOperation {
    return ((this.bytes[OPERATION]! << 8) | this.bytes[OPERATION + 1]!) as ArpOperation;
  }

  get senderHardwareAddress(): MacAddress {
    return this.bytes.subarray(SENDER_HARDWARE, SENDER_HARDWARE + 6);
  }

  get senderProtocolAddress(): Ipv4Address {
    return readIpv4(this.bytes, SENDER_PROTOCOL);
  }

  get targetHardwareAddress(): MacAddress {
    return this.bytes.subarray(TARGET_HARDWARE, TARGET_HARDWARE + 6);
  }

  get targetProtocolAddress(): Ipv4Address {
    return readIpv4(this.bytes, TARGET_PROTOCOL);
  }
}

export interface ArpRepr {
  readonly operation: ArpOperation;
  readonly senderMac: MacAddress;
  readonly senderIp: Ipv4Address;
  readonly targetMac: MacAddress;
  readonly targetIp: Ipv4Address;
}

export const ArpRepr = {
  parse(packet: ArpPacket): ArpRepr {
    return {
      operation: packet.operation,
      senderMac: packet.senderHardwareAddress.slice(),
      senderIp: packet.senderProtocolAddress,
      targetMac: packet.targetHardwareAddress.slice(),
      targetIp: packet.targetProtocolAddress,
    };
  },

  bufferLength: ARP_PACKET_LENGTH,

  emit(repr: ArpRepr, buffer: Uint8Array, offset = 0): number {
    buffer[offset + HARDWARE_TYPE] = 0;
    buffer[offset + HARDWARE_TYPE + 1] = HARDWARE_ETHERNET;
    buffer[offset + PROTOCOL_TYPE] = PROTOCOL_IPV4 >>> 8;
    buffer[offset + PROTOCOL_TYPE + 1] = PROTOCOL_IPV4 & 0xff;
    buffer[offset + HARDWARE_LENGTH] = 6;
    buffer[offset + PROTOCOL_LENGTH] = 4;
    buffer[offset + OPERATION] = 0;
    buffer[offset + OPERATION + 1] = repr.operation;
    buffer.set(repr.senderMac, offset + SENDER_HARDWARE);
    writeIpv4(buffer, offset + SENDER_PROTOCOL, repr.senderIp);
    buffer.set(repr.targetMac, offset + TARGET_HARDWARE);
    writeIpv4(buffer, offset + TARGET_PROTOCOL, repr.targetIp);
    return offset + ARP_PACKET_LENGTH;
  },
};
