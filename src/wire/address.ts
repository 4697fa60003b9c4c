/**
 * Addresses. Inside the stack an IPv4 address is an unsigned 32-bit number (cheap to compare and
 * to use as a Map key) and a MAC address is a 6-byte Uint8Array. Strings appear only at the API
 * edge, through the parse/format helpers here.
 */
export type Ipv4Address = number;
export type MacAddress = Uint8Array;

export const IPV4_BROADCAST: Ipv4Address = 0xffffffff;
export const MAC_BROADCAST: MacAddress = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
export const MAC_ZERO: MacAddress = new Uint8Array(6);

const IPV4_PATTERN = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parse dotted-quad text; undefined if it is not a valid IPv4 literal. */
export function tryParseIpv4(text: string): Ipv4Address | undefined {
  const m = IPV4_PATTERN.exec(text.trim());
  if (!m) return undefined;
  let value = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value >>> 0;
}

export function parseIpv4(text: string): Ipv4Address {
  const value = tryParseIpv4(text);
  if (value === undefined) throw Object.assign(new TypeError(`Invalid IPv4 address: ${text}`), { code: 'ERR_INVALID_IP_ADDRESS' });
  return value;
}

/** An address the API was given as a number or as dotted-quad text (throws like parseIpv4). */
export function toIpv4Address(value: Ipv4Address | string): Ipv4Address {
  return typeof value === 'number' ? value >>> 0 : parseIpv4(value);
}

export function formatIpv4(address: Ipv4Address): string {
  return `${address >>> 24}.${(address >>> 16) & 0xff}.${(address >>> 8) & 0xff}.${address & 0xff}`;
}

export function readIpv4(bytes: Uint8Array, offset: number): Ipv4Address {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

export function writeIpv4(bytes: Uint8Array, offset: number, address: Ipv4Address): void {
  bytes[offset] = address >>> 24;
  bytes[offset + 1] = (address >>> 16) & 0xff;
  bytes[offset + 2] = (address >>> 8) & 0xff;
  bytes[offset + 3] = address & 0xff;
}

/** "192.0.2.10/24" → address and prefix length. */
export function parseCidr(text: string): { address: Ipv4Address; prefixLength: number } {
  const [addr, len] = text.split('/');
  const prefixLength = len === undefined ? 32 : Number(len);
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > 32) {
    throw Object.assign(new TypeError(`Invalid prefix length in ${text}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return { address: parseIpv4(addr ?? ''), prefixLength };
}

export function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}

export function sameSubnet(a: Ipv4Address, b: Ipv4Address, prefixLength: number): boolean {
  const mask = prefixMask(prefixLength);
  return ((a & mask) >>> 0) === ((b & mask) >>> 0);
}

export function isMulticastIpv4(address: Ipv4Address): boolean {
  return address >>> 28 === 0xe;
}

export function parseMac(text: string): MacAddress {
  const parts = text.split(/[:-]/);
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p))) {
    throw Object.assign(new TypeError(`Invalid MAC address: ${text}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return Uint8Array.from(parts.map((p) => parseInt(p, 16)));
}

export function formatMac(mac: Uint8Array, offset = 0): string {
  let out = '';
  for (let i = 0; i < 6; i++) {
    if (i) out += ':';
    out += mac[offset + i]!.toString(16).padStart(2, '0');
  }
  return out;
}

export function macEquals(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset = 0): boolean {
  for (let i = 0; i < 6; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

export function isBroadcastMac(bytes: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < 6; i++) if (bytes[offset + i] !== 0xff) return false;
  return true;
}

export function isMulticastMac(bytes: Uint8Array, offset = 0): boolean {
  return (bytes[offset]! & 1) === 1;
}

/** RFC 1112 §6.4: IPv4 multicast group → 01:00:5e + low 23 bits. */
export function multicastMacFor(group: Ipv4Address): MacAddress {
  return Uint8Array.of(0x01, 0x00, 0x5e, (group >>> 16) & 0x7f, (group >>> 8) & 0xff, group & 0xff);
}

/** A MAC key usable in a Map (the 48-bit value as a number). */
export function macKey(bytes: Uint8Array, offset = 0): number {
  return (
    bytes[offset]! * 0x10000000000 +
    bytes[offset + 1]! * 0x100000000 +
    // (>>> binds looser than +: without these parentheses it would cut the whole sum to 32 bits)
    (((bytes[offset + 2]! << 24) | (bytes[offset + 3]! << 16) | (bytes[offset + 4]! << 8) | bytes[offset + 5]!) >>> 0)
  );
}
