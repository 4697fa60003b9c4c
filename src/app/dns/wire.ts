import type { Ipv4Address } from '../../wire/address.js';

/**
 * DNS messages (RFC 1035 §4). Hand-written rather than dns-packet: it reads a Uint8Array without
 * Buffer, never throws on hostile input (every failure is a DnsParseError with a reason the
 * caller counts), and refuses compression pointers that do not point strictly backwards, which
 * makes pointer loops impossible by construction.
 */

export const DNS_HEADER_LENGTH = 12;
/** RFC 1035 §2.3.4: a name is at most 255 octets on the wire, a label at most 63. */
export const MAX_NAME_WIRE_LENGTH = 255;
export const MAX_LABEL_LENGTH = 63;
/** RFC 1035 §2.3.4: UDP messages are limited to 512 octets (without EDNS, which we do not send). */
export const MAX_UDP_MESSAGE = 512;
export const MAX_TCP_MESSAGE = 65_535;

export const DnsType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  ANY: 255,
} as const;

export const DNS_CLASS_IN = 1;

export const DnsOpcode = { QUERY: 0 } as const;

export const DnsRcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
} as const;

// Header flag bits (RFC 1035 §4.1.1).
const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;
const FLAG_RA = 0x0080;

export interface DnsQuestion {
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

export interface SoaData {
  readonly mname: string;
  readonly rname: string;
  readonly serial: number;
  readonly refresh: number;
  readonly retry: number;
  readonly expire: number;
  /** RFC 2308 §4: the TTL for negative answers from this zone. */
  readonly minimum: number;
}

export type DnsRecordData =
  | { readonly kind: 'a'; readonly address: Ipv4Address }
  | { readonly kind: 'aaaa'; readonly address: Uint8Array }
  /** CNAME, NS, PTR: a single domain name. */
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'soa'; readonly soa: SoaData }
  /** Any other type, kept opaque (names inside are not decompressed). */
  | { readonly kind: 'raw'; readonly bytes: Uint8Array };

export interface DnsRecord {
  readonly name: string;
  readonly type: number;
  readonly class: number;
  /** Seconds; RFC 2181 §8: a value with the top bit set is treated as zero. */
  readonly ttl: number;
  readonly data: DnsRecordData;
}

export interface DnsMessage {
  readonly id: number;
  readonly response: boolean;
  readonly opcode: number;
  readonly authoritative: boolean;
  readonly truncated: boolean;
  readonly recursionDesired: boolean;
  readonly recursionAvailable: boolean;
  readonly rcode: number;
  readonly questions: readonly DnsQuestion[];
  readonly answers: readonly DnsRecord[];
  readonly authorities: readonly DnsRecord[];
  readonly additionals: readonly DnsRecord[];
}

export type DnsParseErrorReason =
  /** Fewer bytes than the header or a count or length promises. */
  | 'truncated'
  /** Longer than the transport allows (512 over UDP). */
  | 'oversized'
  /** A compression pointer that does not point strictly before itself (loops, forward jumps). */
  | 'bad-pointer'
  /** Label type 01 or 10 (RFC 6891 §5 retired them). */
  | 'bad-label-type'
  /** A name longer than 255 octets once expanded. */
  | 'name-too-long'
  /** RDATA whose length does not fit its type (A not 4 octets, SOA fields beyond RDLENGTH…). */
  | 'bad-rdata';

export class DnsParseError {
  readonly ok = false as const;
  readonly protocol = 'dns' as const;
  constructor(readonly reason: DnsParseErrorReason) {
    Object.freeze(this);
  }
  toString(): string {
    return `dns: ${this.reason}`;
  }
}

const errors: Readonly<Record<DnsParseErrorReason, DnsParseError>> = Object.freeze({
  truncated: new DnsParseError('truncated'),
  oversized: new DnsParseError('oversized'),
  'bad-pointer': new DnsParseError('bad-pointer'),
  'bad-label-type': new DnsParseError('bad-label-type'),
  'name-too-long': new DnsParseError('name-too-long'),
  'bad-rdata': new DnsParseError('bad-rdata'),
});

export type DnsParseResult = { readonly ok: true; readonly message: DnsMessage } | DnsParseError;

/** Thrown only inside this module, turned into a DnsParseError at the edge. */
class Malformed {
  constructor(readonly error: DnsParseError) {}
}

function fail(reason: DnsParseErrorReason): never {
  throw new Malformed(errors[reason]);
}

// ---------------------------------------------------------------------------------------------
// Names

/** Appends one label's presentation form to `out`: printable ASCII as is, '.', '\\' and the rest escaped (RFC 4343 §2.1). */
function appendLabel(out: string, bytes: Uint8Array, start: number, length: number): string {
  const end = start + length;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    if (c === 0x2e || c === 0x5c) out += '\\' + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) out += String.fromCharCode(c);
    else out += '\\' + String(c).padStart(3, '0');
  }
  return out;
}

/** The offset after the name `readName` read last (set there; parsing is synchronous). */
let nameEnd = 0;

/**
 * Reads a possibly compressed name at `offset`; the offset after it is left in `nameEnd`. The
 * text is built as it is read (no label array): a reply holds several names per lookup.
 */
function readName(bytes: Uint8Array, offset: number): string {
  let name = '';
  let wireLength = 1; // the root label
  let position = offset;
  let next = -1;
  // RFC 1035 §4.1.4: a pointer refers to a *prior* occurrence. Requiring each jump to land
  // strictly before the previous one makes loops impossible.
  let limit = offset;
  for (;;) {
    if (position >= bytes.length) fail('truncated');
    const length = bytes[position]!;
    const labelType = length & 0xc0;
    if (labelType === 0xc0) {
      if (position + 1 >= bytes.length) fail('truncated');
      const target = ((length & 0x3f) << 8) | bytes[position + 1]!;
      if (next < 0) next = position + 2;
      if (target >= limit) fail('bad-pointer');
      limit = target;
      position = target;
      continue;
    }
    if (labelType !== 0) fail('bad-label-type');
    if (length === 0) {
      if (next < 0) next = position + 1;
      break;
    }
    if (position + 1 + length > bytes.length) fail('truncated');
    wireLength += length + 1;
    if (wireLength > MAX_NAME_WIRE_LENGTH) fail('name-too-long');
    if (name !== '') name += '.';
    name = appendLabel(name, bytes, position + 1, length);
    position += 1 + length;
  }
  nameEnd = next;
  return name === '' ? '.' : name;
}

/**
 * Presentation name → wire labels, undoing the escapes `readName` produces. Undefined if the name
 * cannot be a domain name (empty label, label > 63, name > 255 octets, non-ASCII).
 */
export function nameToLabels(name: string): Uint8Array[] | undefined {
  if (name === '.' || name === '') return [];
  const text = name.endsWith('.') && !name.endsWith('\\.') ? name.slice(0, -1) : name;
  if (!text.includes('\\')) return plainNameToLabels(text);
  const labels: Uint8Array[] = [];
  let current: number[] = [];
  let wireLength = 1;
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c > 0x7e || c < 0x21) return undefined;
    if (c === 0x2e) {
      if (current.length === 0) return undefined;
      labels.push(Uint8Array.from(current));
      wireLength += current.length + 1;
      current = [];
      continue;
    }
    if (c === 0x5c) {
      const digits = /^\d{3}/.exec(text.slice(i + 1, i + 4));
      if (digits) {
        c = Number(digits[0]);
        if (c > 255) return undefined;
        i += 3;
      } else {
        if (i + 1 >= text.length) return undefined;
        c = text.charCodeAt(++i);
      }
    }
    current.push(c);
    if (current.length > MAX_LABEL_LENGTH) return undefined;
  }
  if (current.length === 0) return undefined;
  labels.push(Uint8Array.from(current));
  wireLength += current.length + 1;
  return wireLength > MAX_NAME_WIRE_LENGTH ? undefined : labels;
}

/** `nameToLabels` for a name with no escapes, the usual case: one pass, no per-byte arrays. */
function plainNameToLabels(text: string): Uint8Array[] | undefined {
  if (text.length + 1 > MAX_NAME_WIRE_LENGTH - 1) return undefined;
  const labels: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const length = i - start;
      if (length === 0 || length > MAX_LABEL_LENGTH) return undefined;
      const label = new Uint8Array(length);
      for (let j = 0; j < length; j++) label[j] = text.charCodeAt(start + j);
      labels.push(label);
      start = i + 1;
    } else if (c > 0x7e || c < 0x21) {
      return undefined;
    }
  }
  return labels;
}

/** Canonical key for comparing names: ASCII case-insensitive (RFC 4343), no trailing dot. */
export function nameKey(name: string): string {
  let text = name.endsWith('.') && !name.endsWith('\\.') && name !== '.' ? name.slice(0, -1) : name;
  if (/[A-Z]/.test(text)) text = text.replace(/[A-Z]/g, (ch) => ch.toLowerCase());
  return text === '' ? '.' : text;
}

export function sameName(a: string, b: string): boolean {
  // A reply usually echoes the name exactly as asked: no case folding needed then.
  return a === b || nameKey(a) === nameKey(b);
}

// ---------------------------------------------------------------------------------------------
// Parsing

function u16(bytes: Uint8Array, offset: number): number {
  return (bytes[offset]! << 8) | bytes[offset + 1]!;
}

function u32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

function readRdata(bytes: Uint8Array, type: number, start: number, length: number): DnsRecordData {
  const end = start + length;
  switch (type) {
    case DnsType.A:
      if (length !== 4) fail('bad-rdata');
      return { kind: 'a', address: u32(bytes, start) };
    case DnsType.AAAA:
      if (length !== 16) fail('bad-rdata');
      return { kind: 'aaaa', address: bytes.slice(start, end) };
    case DnsType.CNAME:
    case DnsType.NS:
    case DnsType.PTR: {
      const name = readName(bytes, start);
      if (nameEnd !== end) fail('bad-rdata');
      return { kind: 'name', name };
    }
    case DnsType.SOA: {
      const mname = readName(bytes, start);
      if (nameEnd > end) fail('bad-rdata');
      const rname = readName(bytes, nameEnd);
      if (nameEnd + 20 !== end) fail('bad-rdata');
      const p = nameEnd;
      return {
        kind: 'soa',
        soa: {
          mname,
          rname,
          serial: u32(bytes, p),
          refresh: u32(bytes, p + 4),
          retry: u32(bytes, p + 8),
          expire: u32(bytes, p + 12),
          minimum: u32(bytes, p + 16),
        },
      };
    }
    default:
      return { kind: 'raw', bytes: bytes.slice(start, end) };
  }
}

function readRecords(bytes: Uint8Array, offset: number, count: number, out: DnsRecord[]): number {
  let p = offset;
  for (let i = 0; i < count; i++) {
    const name = readName(bytes, p);
    const next = nameEnd;
    if (next + 10 > bytes.length) fail('truncated');
    const type = u16(bytes, next);
    const klass = u16(bytes, next + 2);
    const rawTtl = u32(bytes, next + 4);
    const rdlength = u16(bytes, next + 8);
    const rdataStart = next + 10;
    if (rdataStart + rdlength > bytes.length) fail('truncated');
    out.push({
      name,
      type,
      class: klass,
      ttl: rawTtl > 0x7fffffff ? 0 : rawTtl,
      data: readRdata(bytes, type, rdataStart, rdlength),
    });
    p = rdataStart + rdlength;
  }
  return p;
}

/** Parse a whole message. `maxLength` is the transport's limit (512 for UDP, 65535 for TCP). */
export function parseDnsMessage(bytes: Uint8Array, maxLength = MAX_TCP_MESSAGE): DnsParseResult {
  if (bytes.length > maxLength) return errors.oversized;
  if (bytes.length < DNS_HEADER_LENGTH) return errors.truncated;
  try {
    const flags = u16(bytes, 2);
    const qdcount = u16(bytes, 4);
    const questions: DnsQuestion[] = [];
    let p = DNS_HEADER_LENGTH;
    for (let i = 0; i < qdcount; i++) {
      const name = readName(bytes, p);
      const next = nameEnd;
      if (next + 4 > bytes.length) fail('truncated');
      questions.push({ name, type: u16(bytes, next), class: u16(bytes, next + 2) });
      p = next + 4;
    }
    const answers: DnsRecord[] = [];
    const authorities: DnsRecord[] = [];
    const additionals: DnsRecord[] = [];
    p = readRecords(bytes, p, u16(bytes, 6), answers);
    p = readRecords(bytes, p, u16(bytes, 8), authorities);
    // A truncated (TC) reply may end mid-additional section; what we need is before it.
    if (flags & FLAG_TC) {
      try {
        readRecords(bytes, p, u16(bytes, 10), additionals);
      } catch (error) {
        if (!(error instanceof Malformed)) throw error;
      }
    } else {
      readRecords(bytes, p, u16(bytes, 10), additionals);
    }
    return {
      ok: true,
      message: {
        id: u16(bytes, 0),
        response: (flags & FLAG_QR) !== 0,
        opcode: (flags >>> 11) & 0xf,
        authoritative: (flags & FLAG_AA) !== 0,
        truncated: (flags & FLAG_TC) !== 0,
        recursionDesired: (flags & FLAG_RD) !== 0,
        recursionAvailable: (flags & FLAG_RA) !== 0,
        rcode: flags & 0xf,
        questions,
        answers,
        authorities,
        additionals,
      },
    };
  } catch (error) {
    if (error instanceof Malformed) return error.error;
    throw error;
  }
}

/** The header alone (id, QR, opcode): enough for a server to answer FORMERR to a query it cannot parse. */
export function peekDnsHeader(bytes: Uint8Array): { id: number; response: boolean; opcode: number } | undefined {
  if (bytes.length < DNS_HEADER_LENGTH) return undefined;
  const flags = u16(bytes, 2);
  return { id: u16(bytes, 0), response: (flags & FLAG_QR) !== 0, opcode: (flags >>> 11) & 0xf };
}

// ---------------------------------------------------------------------------------------------
// Emitting

export interface DnsMessageRepr {
  readonly id: number;
  readonly response?: boolean;
  readonly opcode?: number;
  readonly authoritative?: boolean;
  readonly truncated?: boolean;
  readonly recursionDesired?: boolean;
  readonly recursionAvailable?: boolean;
  readonly rcode?: number;
  readonly questions?: readonly DnsQuestion[];
  readonly answers?: readonly DnsRecord[];
  readonly authorities?: readonly DnsRecord[];
  readonly additionals?: readonly DnsRecord[];
}

/** Where messages are built: emitting is synchronous, so one buffer serves every emit. */
let scratch = new Uint8Array(512);

/** Growable writer with RFC 1035 §4.1.4 name compression. */
class MessageWriter {
  bytes = scratch;
  length = 0;
  private readonly suffixes = new Map<string, number>();

  private ensure(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    if (grown.length <= 65_536) scratch = grown;
  }

  u8(value: number): void {
    this.ensure(1);
    this.bytes[this.length++] = value & 0xff;
  }

  u16(value: number): void {
    this.u8(value >>> 8);
    this.u8(value);
  }

  u32(value: number): void {
    this.u16(value >>> 16);
    this.u16(value & 0xffff);
  }

  raw(data: Uint8Array): void {
    this.ensure(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  name(name: string, compress = true): void {
    const labels = nameToLabels(name);
    if (!labels) throw Object.assign(new TypeError(`Invalid domain name: ${name}`), { code: 'EBADNAME' });
    // Each suffix's key is its wire form with ASCII letters folded (RFC 4343): unambiguous, as
    // every label carries its length.
    let wire = '';
    const starts: number[] = [];
    for (const label of labels) {
      starts.push(wire.length);
      wire += String.fromCharCode(label.length);
      for (const c of label) wire += String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
    }
    for (let i = 0; i < labels.length; i++) {
      const key = wire.slice(starts[i]);
      const earlier = this.suffixes.get(key);
      if (compress && earlier !== undefined) {
        this.u16(0xc000 | earlier);
        return;
      }
      if (this.length < 0x3fff) this.suffixes.set(key, this.length);
      this.u8(labels[i]!.length);
      this.raw(labels[i]!);
    }
    this.u8(0);
  }

  patchU16(offset: number, value: number): void {
    this.bytes[offset] = value >>> 8;
    this.bytes[offset + 1] = value & 0xff;
  }
}

function writeRecord(w: MessageWriter, record: DnsRecord): void {
  w.name(record.name);
  w.u16(record.type);
  w.u16(record.class);
  w.u32(record.ttl >>> 0);
  const lengthAt = w.length;
  w.u16(0);
  const start = w.length;
  const data = record.data;
  switch (data.kind) {
    case 'a':
      w.u32(data.address >>> 0);
      break;
    case 'aaaa':
      w.raw(data.address);
      break;
    case 'name':
      w.name(data.name);
      break;
    case 'soa':
      w.name(data.soa.mname);
      w.name(data.soa.rname);
      w.u32(data.soa.serial);
      w.u32(data.soa.refresh);
      w.u32(data.soa.retry);
      w.u32(data.soa.expire);
      w.u32(data.soa.minimum);
      break;
    case 'raw':
      w.raw(data.bytes);
      break;
  }
  w.patchU16(lengthAt, w.length - start);
}

/** Serialise a message. Throws (EBADNAME) only for names the caller should have validated. */
export function emitDnsMessage(message: DnsMessageRepr): Uint8Array {
  const w = new MessageWriter();
  const questions = message.questions ?? [];
  const answers = message.answers ?? [];
  const authorities = message.authorities ?? [];
  const additionals = message.additionals ?? [];
  w.u16(message.id & 0xffff);
  w.u16(
    (message.response ? FLAG_QR : 0) |
      (((message.opcode ?? 0) & 0xf) << 11) |
      (message.authoritative ? FLAG_AA : 0) |
      (message.truncated ? FLAG_TC : 0) |
      (message.recursionDesired ? FLAG_RD : 0) |
      (message.recursionAvailable ? FLAG_RA : 0) |
      ((message.rcode ?? 0) & 0xf),
  );
  w.u16(questions.length);
  w.u16(answers.length);
  w.u16(authorities.length);
  w.u16(additionals.length);
  for (const q of questions) {
    w.name(q.name);
    w.u16(q.type);
    w.u16(q.class);
  }
  for (const r of answers) writeRecord(w, r);
  for (const r of authorities) writeRecord(w, r);
  for (const r of additionals) writeRecord(w, r);
  return w.bytes.slice(0, w.length);
}

/** A standard recursive query for one name and type (RFC 1035 §4.1, RD set). */
export function emitDnsQuery(id: number, name: string, type: number): Uint8Array {
  // One question has nothing to compress: written directly, byte for byte what
  // emitDnsMessage({ id, recursionDesired: true, questions: [{ name, type, class: IN }] }) gives.
  const out = plainQuery(name) ?? labelsQuery(name);
  out[0] = (id >>> 8) & 0xff;
  out[1] = id & 0xff;
  out[2] = FLAG_RD >>> 8;
  out[5] = 1; // QDCOUNT
  const p = out.length - 4;
  out[p] = type >>> 8;
  out[p + 1] = type & 0xff;
  out[p + 3] = DNS_CLASS_IN;
  return out;
}

/**
 * The query buffer with its name written, for a name without escapes (the usual case): one pass
 * over the text, checking it as `plainNameToLabels` does. Undefined for any other name.
 */
function plainQuery(name: string): Uint8Array | undefined {
  const text = name.endsWith('.') ? name.slice(0, -1) : name;
  if (text === '' || text.length + 1 > MAX_NAME_WIRE_LENGTH - 1) return undefined;
  const out = new Uint8Array(DNS_HEADER_LENGTH + text.length + 2 + 4);
  let lengthAt = DNS_HEADER_LENGTH;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      const length = DNS_HEADER_LENGTH + i - lengthAt;
      if (length === 0 || length > MAX_LABEL_LENGTH) return undefined;
      out[lengthAt] = length;
      lengthAt = DNS_HEADER_LENGTH + i + 1;
    } else if (c > 0x7e || c < 0x21 || c === 0x5c) {
      return undefined;
    } else {
      out[DNS_HEADER_LENGTH + i + 1] = c;
    }
  }
  return out;
}

function labelsQuery(name: string): Uint8Array {
  const labels = nameToLabels(name);
  if (!labels) throw Object.assign(new TypeError(`Invalid domain name: ${name}`), { code: 'EBADNAME' });
  let length = DNS_HEADER_LENGTH + 1 + 4;
  for (const label of labels) length += label.length + 1;
  const out = new Uint8Array(length);
  let p = DNS_HEADER_LENGTH;
  for (const label of labels) {
    out[p++] = label.length;
    out.set(label, p);
    p += label.length;
  }
  return out;
}

/** 16 bytes of an AAAA record → RFC 5952 text (lower case, longest zero run compressed). */
export function formatIpv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}
