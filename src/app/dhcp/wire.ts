import { readIpv4, writeIpv4, type Ipv4Address } from '../../wire/address.js';

/**
 * DHCP messages: the BOOTP fixed part (RFC 951, RFC 2131 §2 Figure 1) and the options that
 * follow the magic cookie (RFC 2132). Parsing never throws: a malformed message is a
 * DhcpParseError with a reason. Options split over several instances are joined (RFC 3396), and
 * option overload (RFC 2132 §9.3) is honoured: options carried in `file`/`sname` are read too.
 */

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
export const BOOTREQUEST = 1;
export const BOOTREPLY = 2;
export const HTYPE_ETHERNET = 1;
/** RFC 2131 §3: 99.130.83.99. */
export const DHCP_MAGIC_COOKIE = 0x63825363;
/** Octets before the options: 236 of BOOTP plus the 4-octet cookie. */
export const DHCP_FIXED_LENGTH = 240;
/** RFC 1542 §3.1.1 / RFC 951: relay agents and old servers expect at least a 300-octet BOOTP message. */
export const BOOTP_MINIMUM_LENGTH = 300;
/** RFC 2131 §2: the 'flags' field's leftmost bit asks the server to broadcast its reply. */
export const FLAG_BROADCAST = 0x8000;

export const DhcpMessageType = {
  DISCOVER: 1,
  OFFER: 2,
  REQUEST: 3,
  DECLINE: 4,
  ACK: 5,
  NAK: 6,
  RELEASE: 7,
  INFORM: 8,
} as const;

export const DHCP_MESSAGE_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'DHCPDISCOVER',
  2: 'DHCPOFFER',
  3: 'DHCPREQUEST',
  4: 'DHCPDECLINE',
  5: 'DHCPACK',
  6: 'DHCPNAK',
  7: 'DHCPRELEASE',
  8: 'DHCPINFORM',
};

/** RFC 2132 option codes used here. */
export const DhcpOption = {
  PAD: 0,
  SUBNET_MASK: 1,
  ROUTER: 3,
  DNS_SERVER: 6,
  HOST_NAME: 12,
  DOMAIN_NAME: 15,
  BROADCAST_ADDRESS: 28,
  REQUESTED_ADDRESS: 50,
  LEASE_TIME: 51,
  OVERLOAD: 52,
  MESSAGE_TYPE: 53,
  SERVER_IDENTIFIER: 54,
  PARAMETER_REQUEST_LIST: 55,
  MESSAGE: 56,
  MAX_MESSAGE_SIZE: 57,
  RENEWAL_TIME: 58,
  REBINDING_TIME: 59,
  CLIENT_IDENTIFIER: 61,
  END: 255,
} as const;

/** RFC 2132 §9.2: 0xffffffff is an infinite lease. */
export const INFINITE_LEASE = 0xffffffff;

export interface DhcpOptions {
  readonly messageType?: number;
  readonly subnetMask?: Ipv4Address;
  readonly routers?: readonly Ipv4Address[];
  readonly dnsServers?: readonly Ipv4Address[];
  readonly hostName?: string;
  readonly domainName?: string;
  readonly broadcastAddress?: Ipv4Address;
  readonly requestedAddress?: Ipv4Address;
  /** Seconds. */
  readonly leaseTime?: number;
  readonly serverIdentifier?: Ipv4Address;
  readonly parameterRequestList?: readonly number[];
  /** Option 56: a server's explanation (with a DHCPNAK) or a client's (with a DHCPDECLINE). */
  readonly message?: string;
  readonly maxMessageSize?: number;
  /** T1, seconds. */
  readonly renewalTime?: number;
  /** T2, seconds. */
  readonly rebindingTime?: number;
  readonly clientIdentifier?: Uint8Array;
  /** Every other option, raw, by code. */
  readonly other?: ReadonlyMap<number, Uint8Array>;
}

export interface DhcpMessage {
  readonly op: number;
  readonly htype: number;
  readonly hlen: number;
  readonly hops: number;
  readonly xid: number;
  readonly secs: number;
  readonly broadcast: boolean;
  readonly ciaddr: Ipv4Address;
  readonly yiaddr: Ipv4Address;
  readonly siaddr: Ipv4Address;
  readonly giaddr: Ipv4Address;
  /** The first `hlen` octets of the 16-octet chaddr field. */
  readonly chaddr: Uint8Array;
  readonly options: DhcpOptions;
}

export type DhcpParseErrorReason =
  | 'truncated'
  | 'bad-magic-cookie'
  /** op is neither BOOTREQUEST nor BOOTREPLY, or hlen exceeds 16. */
  | 'bad-header'
  /** An option's length runs past the end of its field. */
  | 'option-overrun'
  /** A known option whose length is wrong for it (a 3-octet subnet mask, a router list of 5…). */
  | 'bad-option-length'
  /** No option 53 (then it is plain BOOTP, which we do not speak), or a value outside 1–8. */
  | 'bad-message-type';

export class DhcpParseError {
  readonly ok = false as const;
  readonly protocol = 'dhcp' as const;
  constructor(readonly reason: DhcpParseErrorReason) {
    Object.freeze(this);
  }
  toString(): string {
    return `dhcp: ${this.reason}`;
  }
}

const errors: Readonly<Record<DhcpParseErrorReason, DhcpParseError>> = Object.freeze({
  truncated: new DhcpParseError('truncated'),
  'bad-magic-cookie': new DhcpParseError('bad-magic-cookie'),
  'bad-header': new DhcpParseError('bad-header'),
  'option-overrun': new DhcpParseError('option-overrun'),
  'bad-option-length': new DhcpParseError('bad-option-length'),
  'bad-message-type': new DhcpParseError('bad-message-type'),
});

export type DhcpParseResult = { readonly ok: true; readonly message: DhcpMessage } | DhcpParseError;

// Fixed-part offsets (RFC 2131 Figure 1).
const OP = 0;
const HTYPE = 1;
const HLEN = 2;
const HOPS = 3;
const XID = 4;
const SECS = 8;
const FLAGS = 10;
const CIADDR = 12;
const YIADDR = 16;
const SIADDR = 20;
const GIADDR = 24;
const CHADDR = 28;
const SNAME = 44;
const FILE = 108;
const COOKIE = 236;

/** Reads one options area into `into`, concatenating repeats (RFC 3396 §7). False on overrun. */
function readOptionArea(bytes: Uint8Array, start: number, end: number, into: Map<number, Uint8Array>): boolean {
  let p = start;
  while (p < end) {
    const code = bytes[p]!;
    if (code === DhcpOption.PAD) {
      p++;
      continue;
    }
    if (code === DhcpOption.END) return true;
    if (p + 1 >= end) return false;
    const length = bytes[p + 1]!;
    if (p + 2 + length > end) return false;
    const value = bytes.subarray(p + 2, p + 2 + length);
    const earlier = into.get(code);
    if (earlier) {
      const joined = new Uint8Array(earlier.length + value.length);
      joined.set(earlier);
      joined.set(value, earlier.length);
      into.set(code, joined);
    } else {
      into.set(code, value.slice());
    }
    p += 2 + length;
  }
  // Ran off the end without an END option: tolerated, several servers omit it in padded fields.
  return true;
}

function text(value: Uint8Array): string {
  // Trailing NULs are common (RFC 2132 §3.14 says not to, servers do anyway).
  let end = value.length;
  while (end > 0 && value[end - 1] === 0) end--;
  let out = '';
  for (let i = 0; i < end; i++) out += String.fromCharCode(value[i]!);
  return out;
}

function addresses(value: Uint8Array): Ipv4Address[] {
  const out: Ipv4Address[] = [];
  for (let i = 0; i + 4 <= value.length; i += 4) out.push(readIpv4(value, i));
  return out;
}

function u32(value: Uint8Array): number {
  return readIpv4(value, 0);
}

export function parseDhcpMessage(bytes: Uint8Array): DhcpParseResult {
  if (bytes.length < DHCP_FIXED_LENGTH) return errors.truncated;
  const op = bytes[OP]!;
  const hlen = bytes[HLEN]!;
  if ((op !== BOOTREQUEST && op !== BOOTREPLY) || hlen > 16) return errors['bad-header'];
  if (readIpv4(bytes, COOKIE) !== DHCP_MAGIC_COOKIE) return errors['bad-magic-cookie'];
  const raw = new Map<number, Uint8Array>();
  if (!readOptionArea(bytes, DHCP_FIXED_LENGTH, bytes.length, raw)) return errors['option-overrun'];
  // RFC 2132 §9.3: option overload moves more options into 'file' (1), 'sname' (2) or both (3),
  // read in that order after the options field.
  const overload = raw.get(DhcpOption.OVERLOAD);
  if (overload) {
    if (overload.length !== 1 || overload[0]! < 1 || overload[0]! > 3) return errors['bad-option-length'];
    raw.delete(DhcpOption.OVERLOAD);
    if (overload[0]! & 1 && !readOptionArea(bytes, FILE, COOKIE, raw)) return errors['option-overrun'];
    if (overload[0]! & 2 && !readOptionArea(bytes, SNAME, FILE, raw)) return errors['option-overrun'];
  }

  const known = new Set<number>();
  const take = (code: number): Uint8Array | undefined => {
    known.add(code);
    return raw.get(code);
  };
  const exact = (code: number, length: number): Uint8Array | undefined | null => {
    const v = take(code);
    if (v === undefined) return undefined;
    return v.length === length ? v : null;
  };
  const list = (code: number, unit: number, min: number): Uint8Array | undefined | null => {
    const v = take(code);
    if (v === undefined) return undefined;
    return v.length >= min && v.length % unit === 0 ? v : null;
  };

  const type = exact(DhcpOption.MESSAGE_TYPE, 1);
  if (type === null) return errors['bad-option-length'];
  if (type === undefined || type[0]! < 1 || type[0]! > 8) return errors['bad-message-type'];
  const mask = exact(DhcpOption.SUBNET_MASK, 4);
  const routers = list(DhcpOption.ROUTER, 4, 4);
  const dns = list(DhcpOption.DNS_SERVER, 4, 4);
  const hostName = list(DhcpOption.HOST_NAME, 1, 1);
  const domainName = list(DhcpOption.DOMAIN_NAME, 1, 1);
  const broadcastAddress = exact(DhcpOption.BROADCAST_ADDRESS, 4);
  const requested = exact(DhcpOption.REQUESTED_ADDRESS, 4);
  const lease = exact(DhcpOption.LEASE_TIME, 4);
  const serverId = exact(DhcpOption.SERVER_IDENTIFIER, 4);
  const prl = list(DhcpOption.PARAMETER_REQUEST_LIST, 1, 1);
  const message = list(DhcpOption.MESSAGE, 1, 1);
  const maxSize = exact(DhcpOption.MAX_MESSAGE_SIZE, 2);
  const t1 = exact(DhcpOption.RENEWAL_TIME, 4);
  const t2 = exact(DhcpOption.REBINDING_TIME, 4);
  const clientId = list(DhcpOption.CLIENT_IDENTIFIER, 1, 2);
  const values = [mask, routers, dns, hostName, domainName, broadcastAddress, requested, lease, serverId, prl, message, maxSize, t1, t2, clientId];
  if (values.some((v) => v === null)) return errors['bad-option-length'];
  const other = new Map<number, Uint8Array>();
  for (const [code, value] of raw) if (!known.has(code)) other.set(code, value);

  const options: DhcpOptions = {
    messageType: type[0]!,
    ...(mask && { subnetMask: u32(mask) }),
    ...(routers && { routers: addresses(routers) }),
    ...(dns && { dnsServers: addresses(dns) }),
    ...(hostName && { hostName: text(hostName) }),
    ...(domainName && { domainName: text(domainName) }),
    ...(broadcastAddress && { broadcastAddress: u32(broadcastAddress) }),
    ...(requested && { requestedAddress: u32(requested) }),
    ...(lease && { leaseTime: u32(lease) }),
    ...(serverId && { serverIdentifier: u32(serverId) }),
    ...(prl && { parameterRequestList: Array.from(prl) }),
    ...(message && { message: text(message) }),
    ...(maxSize && { maxMessageSize: (maxSize[0]! << 8) | maxSize[1]! }),
    ...(t1 && { renewalTime: u32(t1) }),
    ...(t2 && { rebindingTime: u32(t2) }),
    ...(clientId && { clientIdentifier: clientId }),
    ...(other.size > 0 && { other }),
  };
  return {
    ok: true,
    message: {
      op,
      htype: bytes[HTYPE]!,
      hlen,
      hops: bytes[HOPS]!,
      xid: readIpv4(bytes, XID),
      secs: (bytes[SECS]! << 8) | bytes[SECS + 1]!,
      broadcast: (((bytes[FLAGS]! << 8) | bytes[FLAGS + 1]!) & FLAG_BROADCAST) !== 0,
      ciaddr: readIpv4(bytes, CIADDR),
      yiaddr: readIpv4(bytes, YIADDR),
      siaddr: readIpv4(bytes, SIADDR),
      giaddr: readIpv4(bytes, GIADDR),
      chaddr: bytes.slice(CHADDR, CHADDR + hlen),
      options,
    },
  };
}

// ---------------------------------------------------------------------------------------------

export interface DhcpMessageRepr {
  readonly op: number;
  readonly xid: number;
  readonly chaddr: Uint8Array;
  readonly htype?: number;
  readonly hops?: number;
  readonly secs?: number;
  readonly broadcast?: boolean;
  readonly ciaddr?: Ipv4Address;
  readonly yiaddr?: Ipv4Address;
  readonly siaddr?: Ipv4Address;
  readonly giaddr?: Ipv4Address;
  readonly options: DhcpOptions;
}

function ascii(value: string): Uint8Array {
  const out = new Uint8Array(value.length);
  for (let i = 0; i < value.length; i++) out[i] = value.charCodeAt(i) & 0xff;
  return out;
}

function addressBytes(list: readonly Ipv4Address[]): Uint8Array {
  const out = new Uint8Array(list.length * 4);
  list.forEach((a, i) => writeIpv4(out, i * 4, a));
  return out;
}

function u32Bytes(value: number): Uint8Array {
  const out = new Uint8Array(4);
  writeIpv4(out, 0, value >>> 0);
  return out;
}

/** The options in emission order: message type first (RFC 2131 §4.1 does not require it; every client reads it first). */
function optionList(o: DhcpOptions): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  const add = (code: number, value: Uint8Array | undefined): void => {
    if (value && value.length > 0) out.push([code, value]);
  };
  if (o.messageType !== undefined) add(DhcpOption.MESSAGE_TYPE, Uint8Array.of(o.messageType));
  if (o.serverIdentifier !== undefined) add(DhcpOption.SERVER_IDENTIFIER, u32Bytes(o.serverIdentifier));
  if (o.clientIdentifier) add(DhcpOption.CLIENT_IDENTIFIER, o.clientIdentifier);
  if (o.requestedAddress !== undefined) add(DhcpOption.REQUESTED_ADDRESS, u32Bytes(o.requestedAddress));
  if (o.leaseTime !== undefined) add(DhcpOption.LEASE_TIME, u32Bytes(o.leaseTime));
  if (o.renewalTime !== undefined) add(DhcpOption.RENEWAL_TIME, u32Bytes(o.renewalTime));
  if (o.rebindingTime !== undefined) add(DhcpOption.REBINDING_TIME, u32Bytes(o.rebindingTime));
  if (o.subnetMask !== undefined) add(DhcpOption.SUBNET_MASK, u32Bytes(o.subnetMask));
  if (o.broadcastAddress !== undefined) add(DhcpOption.BROADCAST_ADDRESS, u32Bytes(o.broadcastAddress));
  if (o.routers) add(DhcpOption.ROUTER, addressBytes(o.routers));
  if (o.dnsServers) add(DhcpOption.DNS_SERVER, addressBytes(o.dnsServers));
  if (o.hostName !== undefined) add(DhcpOption.HOST_NAME, ascii(o.hostName));
  if (o.domainName !== undefined) add(DhcpOption.DOMAIN_NAME, ascii(o.domainName));
  if (o.maxMessageSize !== undefined) add(DhcpOption.MAX_MESSAGE_SIZE, Uint8Array.of(o.maxMessageSize >>> 8, o.maxMessageSize & 0xff));
  if (o.parameterRequestList) add(DhcpOption.PARAMETER_REQUEST_LIST, Uint8Array.from(o.parameterRequestList));
  if (o.message !== undefined) add(DhcpOption.MESSAGE, ascii(o.message));
  for (const [code, value] of o.other ?? []) if (code !== DhcpOption.PAD && code !== DhcpOption.END) add(code, value);
  return out;
}

export function emitDhcpMessage(m: DhcpMessageRepr): Uint8Array {
  const options = optionList(m.options);
  let optionsLength = 1; // END
  // RFC 3396 §6: a value longer than 255 octets is split into consecutive instances.
  for (const [, value] of options) optionsLength += value.length + 2 * Math.ceil(value.length / 255);
  const out = new Uint8Array(Math.max(BOOTP_MINIMUM_LENGTH, DHCP_FIXED_LENGTH + optionsLength));
  out[OP] = m.op;
  out[HTYPE] = m.htype ?? HTYPE_ETHERNET;
  out[HLEN] = Math.min(16, m.chaddr.length);
  out[HOPS] = m.hops ?? 0;
  writeIpv4(out, XID, m.xid >>> 0);
  const secs = Math.min(0xffff, Math.max(0, Math.floor(m.secs ?? 0)));
  out[SECS] = secs >>> 8;
  out[SECS + 1] = secs & 0xff;
  if (m.broadcast) out[FLAGS] = FLAG_BROADCAST >>> 8;
  writeIpv4(out, CIADDR, m.ciaddr ?? 0);
  writeIpv4(out, YIADDR, m.yiaddr ?? 0);
  writeIpv4(out, SIADDR, m.siaddr ?? 0);
  writeIpv4(out, GIADDR, m.giaddr ?? 0);
  out.set(m.chaddr.subarray(0, 16), CHADDR);
  writeIpv4(out, COOKIE, DHCP_MAGIC_COOKIE);
  let p = DHCP_FIXED_LENGTH;
  for (const [code, value] of options) {
    for (let i = 0; i < value.length; i += 255) {
      const piece = value.subarray(i, i + 255);
      out[p++] = code;
      out[p++] = piece.length;
      out.set(piece, p);
      p += piece.length;
    }
  }
  out[p] = DhcpOption.END;
  return out;
}

/** Prefix length of a contiguous netmask; undefined for a non-contiguous one. */
export function maskToPrefixLength(mask: Ipv4Address): number | undefined {
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return 32 - Math.log2(inverted + 1);
}

/** RFC 2132 §9.14 default client identifier: hardware type then the hardware address. */
export function defaultClientIdentifier(mac: Uint8Array): Uint8Array {
  return Uint8Array.from([HTYPE_ETHERNET, ...mac]);
}
