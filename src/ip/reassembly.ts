import type { Clock, TimerHandle } from '../time/clock.js';
import type { StackOptions } from '../options.js';
import type { LayerCounters } from '../stats/counters.js';
import { IPV4_MAX_TOTAL_LENGTH, Ipv4Packet } from '../wire/ipv4.js';
import { internetChecksum } from '../wire/checksum.js';

/**
 * IPv4 reassembly (RFC 791 §3.2, RFC 815 hole tracking by sorted fragment list). Every layout a
 * peer can send has one answer, each a counted drop with its reason:
 * - overlap: a fragment that overlaps another discards the whole datagram, including fragments
 *   still to come (the key is remembered until the timeout) — RFC 5722's rule for IPv6, which
 *   Linux applies to IPv4 too since FragmentSmack (CVE-2018-5391);
 * - an exact duplicate of a received fragment is ignored (the datagram stays);
 * - past the end: a fragment beyond the total length the last fragment gave, or a held one beyond
 *   a last fragment that arrives later, or a second last fragment that disagrees, discards it;
 * - tiny: a fragment other than the last that is smaller than 68 octets with its header (RFC 791
 *   §3.2: every module forwards 68 octets whole, so no path needs smaller pieces; RFC 1858's tiny
 *   fragment attack uses them) discards the datagram, as does a length not a multiple of 8;
 * - too many: more than `ipReassemblyMaxFragments` pieces discards it (each costs a list entry);
 * - memory: the bytes held over all datagrams and the number of datagrams are bounded; the oldest
 *   datagram makes room (evicted, counted). Fragment data is copied, so what is held is what is
 *   counted — a view would keep the NIC's whole receive buffer alive;
 * - a timeout frees everything and, if fragment 0 arrived, reports for ICMP time exceeded.
 */

/** RFC 791 §3.2: the datagram size every internet module must pass without fragmenting it. */
const MIN_FRAGMENT_TOTAL_LENGTH = 68;

interface Fragment {
  readonly start: number;
  readonly end: number;
  readonly data: Uint8Array;
}

interface Datagram {
  readonly key: string;
  fragments: Fragment[];
  /** Payload length once the last fragment (MF = 0) is in. */
  totalLength: number | undefined;
  received: number;
  /** Fragment 0's header (a copy), for the rebuilt header and for ICMP. */
  firstHeader: Uint8Array | undefined;
  /** RFC 5722: discard this datagram and anything more of it until the timer fires. */
  poisoned: boolean;
  timer: TimerHandle;
}

export class Reassembler {
  private readonly datagrams = new Map<string, Datagram>();
  private heldBytes = 0;

  constructor(
    private readonly clock: Clock,
    private readonly options: StackOptions,
    private readonly counters: LayerCounters,
    /** Reassembly timed out; `firstFragment` is fragment 0's header and first data bytes, if it arrived. */
    private readonly timedOut: (firstFragment: Uint8Array | undefined) => void,
  ) {}

  /** Bytes currently held (for tests and the stack's tables). */
  get bytesHeld(): number {
    return this.heldBytes;
  }

  /** Datagrams being reassembled (not counting discarded ones remembered until their timeout). */
  get pending(): number {
    let n = 0;
    for (const d of this.datagrams.values()) if (!d.poisoned) n++;
    return n;
  }

  /** Datagram keys remembered, discarded ones included (bounded by ipReassemblyMaxDatagrams). */
  get entries(): number {
    return this.datagrams.size;
  }

  /**
   * Add a fragment. Returns the complete datagram (a fresh buffer: header from fragment 0 with
   * offset/MF cleared, then the whole payload) when this fragment completes it.
   */
  add(packet: Ipv4Packet): Uint8Array | undefined {
    const key = `${packet.source}/${packet.destination}/${packet.protocol}/${packet.identification}`;
    const start = packet.fragmentOffset;
    const data = packet.payload;
    const end = start + data.length;
    const more = packet.moreFragments;

    // RFC 791: every fragment but the last carries a multiple of 8 bytes.
    if (more && data.length % 8 !== 0) return this.reject(key, 'fragment-bad-length');
    if (end + packet.headerLength > IPV4_MAX_TOTAL_LENGTH) return this.reject(key, 'fragment-oversize');
    if (more && packet.headerLength + data.length < MIN_FRAGMENT_TOTAL_LENGTH) return this.reject(key, 'fragment-tiny');

    let datagram = this.datagrams.get(key);
    if (datagram === undefined) {
      if (data.length > this.options.ipReassemblyMaxBytes) {
        this.counters.drop('reassembly-memory');
        return undefined;
      }
      datagram = this.create(key, data.length);
    } else if (datagram.poisoned) {
      this.counters.drop('fragment-of-discarded');
      return undefined;
    }

    if (!more) {
      if (datagram.totalLength !== undefined && datagram.totalLength !== end) return this.reject(key, 'fragment-inconsistent-length');
      datagram.totalLength = end;
    }
    // Past the end: this fragment, or (when this one is the last) one already held — the list is
    // sorted and without overlaps, so its last fragment ends furthest.
    const furthest = Math.max(end, datagram.fragments.at(-1)?.end ?? 0);
    if (datagram.totalLength !== undefined && furthest > datagram.totalLength) return this.reject(key, 'fragment-beyond-end');

    // Insert in order; any overlap that is not an exact duplicate poisons the datagram.
    const list = datagram.fragments;
    let at = 0;
    while (at < list.length && list[at]!.start < start) at++;
    const before = list[at - 1];
    const after = list[at];
    if (after && after.start === start && after.end === end) {
      this.counters.drop('fragment-duplicate');
      return undefined;
    }
    if ((before && before.end > start) || (after && after.start < end)) return this.reject(key, 'fragment-overlap');
    if (list.length >= this.options.ipReassemblyMaxFragments) return this.reject(key, 'fragment-too-many');

    if (this.heldBytes + data.length > this.options.ipReassemblyMaxBytes) {
      this.makeRoom(data.length, datagram);
      if (this.heldBytes + data.length > this.options.ipReassemblyMaxBytes) return this.reject(key, 'reassembly-memory');
    }
    list.splice(at, 0, { start, end, data: data.slice() });
    datagram.received += data.length;
    this.heldBytes += data.length;
    if (start === 0) datagram.firstHeader = packet.header.slice();

    if (datagram.totalLength === undefined || datagram.received !== datagram.totalLength || datagram.firstHeader === undefined) return undefined;
    return this.assemble(datagram);
  }

  private assemble(datagram: Datagram): Uint8Array {
    const header = datagram.firstHeader!;
    const headerLength = header.length;
    const total = headerLength + datagram.totalLength!;
    const out = new Uint8Array(total);
    out.set(header);
    for (const f of datagram.fragments) out.set(f.data, headerLength + f.start);
    out[2] = total >>> 8;
    out[3] = total & 0xff;
    out[6] &= 0x40; // keep DF, clear MF and the offset
    out[7] = 0;
    out[10] = 0;
    out[11] = 0;
    const checksum = internetChecksum(out, 0, headerLength);
    out[10] = checksum >>> 8;
    out[11] = checksum & 0xff;
    this.free(datagram);
    return out;
  }

  /** A new datagram under `key`, after making room for it and `bytes` of data. */
  private create(key: string, bytes: number): Datagram {
    this.makeRoom(bytes);
    const datagram: Datagram = {
      key,
      fragments: [],
      totalLength: undefined,
      received: 0,
      firstHeader: undefined,
      poisoned: false,
      timer: this.clock.schedule(this.options.ipReassemblyTimeoutMs, () => this.expire(key)),
    };
    this.datagrams.set(key, datagram);
    return datagram;
  }

  /**
   * Count the drop and discard the datagram under `key` with everything still to come (a key not
   * seen yet is remembered as discarded: the fragment may be the first to arrive).
   */
  private reject(key: string, reason: string): undefined {
    this.counters.drop(reason);
    const datagram = this.datagrams.get(key) ?? this.create(key, 0);
    if (datagram.poisoned) return undefined;
    this.heldBytes -= datagram.received;
    datagram.fragments = [];
    datagram.received = 0;
    datagram.firstHeader = undefined;
    datagram.poisoned = true;
    return undefined;
  }

  private free(datagram: Datagram): void {
    datagram.timer.cancel();
    this.heldBytes -= datagram.received;
    this.datagrams.delete(datagram.key);
  }

  /** Drop the oldest datagrams until `bytes` more fit (and, for a new one, the count allows it). */
  private makeRoom(bytes: number, keep?: Datagram): void {
    for (const d of this.datagrams.values()) {
      const overCount = keep === undefined && this.datagrams.size >= this.options.ipReassemblyMaxDatagrams;
      const overBytes = this.heldBytes + bytes > this.options.ipReassemblyMaxBytes;
      if (!overCount && !overBytes) return;
      if (d === keep) continue;
      if (!d.poisoned) this.counters.drop('reassembly-evicted');
      this.free(d);
    }
  }

  private expire(key: string): void {
    const datagram = this.datagrams.get(key);
    if (!datagram) return;
    const first = this.quoteOfFirst(datagram);
    const poisoned = datagram.poisoned;
    this.free(datagram);
    if (poisoned) return;
    this.counters.drop('reassembly-timeout');
    if (this.options.ipReassemblyTimeExceeded) this.timedOut(first);
  }

  /** Fragment 0's header and its first data bytes (RFC 792: header + 64 bits at least), for time exceeded. */
  private quoteOfFirst(datagram: Datagram): Uint8Array | undefined {
    const header = datagram.firstHeader;
    const first = datagram.fragments[0];
    if (header === undefined || first === undefined || first.start !== 0) return undefined;
    const quote = new Uint8Array(header.length + first.data.length);
    quote.set(header);
    quote.set(first.data, header.length);
    const length = quote.length;
    quote[2] = length >>> 8;
    quote[3] = length & 0xff;
    return quote;
  }
}
