/**
 * Malformed input is a value, not an exception. Checked parsers in src/wire return either a view
 * (with `ok: true`) or one of these; the stack counts the reason and drops the packet.
 */
export type WireProtocol = 'ethernet' | 'arp' | 'ipv4' | 'icmp' | 'udp';

export type ParseErrorReason =
  /** Fewer bytes than the fixed header (or than a length field claims). */
  | 'truncated'
  /** IPv4 version field is not 4. */
  | 'bad-version'
  /** IPv4 IHL below 5 or beyond the buffer. */
  | 'bad-header-length'
  /** A length field is inconsistent (IPv4 total length < header, UDP length < 8). */
  | 'bad-length'
  | 'bad-checksum'
  /** ARP for something other than Ethernet/IPv4. */
  | 'unsupported-format'
  /** ARP operation other than request/reply. */
  | 'bad-operation'
  /** ICMP message whose fixed part does not fit its type. */
  | 'malformed';

export class ParseError {
  readonly ok = false as const;
  constructor(
    readonly protocol: WireProtocol,
    readonly reason: ParseErrorReason,
  ) {
    Object.freeze(this);
  }

  toString(): string {
    return `${this.protocol}: ${this.reason}`;
  }
}

/**
 * Parse errors are immutable, so each protocol keeps one instance per reason: a flood of bad
 * packets allocates nothing.
 */
export function parseErrors<R extends ParseErrorReason>(protocol: WireProtocol, reasons: readonly R[]): Readonly<Record<R, ParseError>> {
  const out = {} as Record<R, ParseError>;
  for (const reason of reasons) out[reason] = new ParseError(protocol, reason);
  return Object.freeze(out);
}
