/**
 * Every tunable of the stack core in one place, lwIP opt.h style: the default and why.
 * Pass a Partial<StackOptions> to `new Stack({ options })`; anything omitted takes the default.
 */
export interface StackOptions {
  // ---- ARP (src/link/arp.ts) ----
  /** Neighbour cache entries (least recently used evicted first; static entries never). lwIP 10, smoltcp 4: a host talks to few neighbours, but a LAN test bench has more. */
  arpCacheSize: number;
  /** Lifetime of a resolved entry. lwIP ARP_MAXAGE = 300 s; short enough to follow a moved address, long enough to stay quiet. */
  arpEntryLifetimeMs: number;
  /** An entry still in use is re-requested (unicast) this long before it expires, so a steady flow never stalls on ARP (lwIP ARP_AGE_REREQUEST_USED_UNICAST, 30 s before). */
  arpRefreshBeforeExpiryMs: number;
  /** At most one request per address per this interval (smoltcp: ≤ 1/s; RFC 1122 §2.3.2.1 asks for rate limiting). */
  arpRequestIntervalMs: number;
  /** Requests sent for an unresolved address before its queued packets are dropped and its users told EHOSTUNREACH (Linux: mcast_solicit 3, one a second, so connect() fails after ~3 s). */
  arpMaxRequests: number;
  /** Packets (a fragmented datagram counts once) queued per unresolved neighbour; oldest dropped first (lwIP ARP_QUEUE_LEN 3). */
  arpQueueLength: number;
  /**
   * A learned entry is not given another MAC within this long of its last update (Linux's
   * neigh locktime, 1 s): when a spoofer races the real host's reply, the first answer stands.
   */
  arpLocktimeMs: number;
  /**
   * An entry used within this long is in active use and is never evicted to make room for a new
   * neighbour; with none to evict, the new one is refused (counted). Linux's forced GC spares
   * entries updated in the last 5 s the same way: a flood of new neighbours (a SYN flood from
   * spoofed on-link addresses) cannot push out the gateway or a live peer.
   */
  arpActiveUseMs: number;
  /** RFC 5227 §1.1: PROBE_WAIT 1 s, PROBE_NUM 3, PROBE_MIN 1 s, PROBE_MAX 2 s, ANNOUNCE_WAIT 2 s. */
  arpProbeWaitMs: number;
  arpProbeCount: number;
  arpProbeMinMs: number;
  arpProbeMaxMs: number;
  arpAnnounceWaitMs: number;

  // ---- IPv4 (src/ip/) ----
  /** Default TTL (RFC 1122 §3.2.1.7 recommends 64 nowadays via RFC 1700; Linux uses 64). */
  ipDefaultTtl: number;
  /** Reassembly gives up on a datagram after this (RFC 791 suggests 15 s as the lower bound; lwIP IP_REASS_MAXAGE 15 s). */
  ipReassemblyTimeoutMs: number;
  /** Bytes of fragments held across all datagrams being reassembled; beyond it the oldest datagram is dropped. Two maximum datagrams: enough for a burst, small enough that a fragment flood cannot exhaust memory. */
  ipReassemblyMaxBytes: number;
  /** Datagrams under reassembly at once (lwIP bounds by pbufs: IP_REASS_MAX_PBUFS 10). */
  ipReassemblyMaxDatagrams: number;
  /** Pieces one datagram may arrive in; more discards it. A 64 KiB datagram over Ethernet is 45 fragments; 64 leaves room for smaller MTUs on the path while bounding a flood of 8-byte pieces (FreeBSD's maxfragsperpacket is 16). */
  ipReassemblyMaxFragments: number;
  /** Send ICMP time exceeded (code 1) when reassembly times out and fragment 0 was received (RFC 1122 §3.3.2: SHOULD). */
  ipReassemblyTimeExceeded: boolean;
  /** Verify received IPv4/ICMP/UDP checksums (off only for fuzzing, like smoltcp under cfg(fuzzing)). */
  verifyChecksums: boolean;

  // ---- ICMP (src/ip/icmp.ts) ----
  /** Token bucket for ICMP errors we send (RFC 1812 §4.3.2.8, RFC 1122 §3.2.2: rate-limit): burst size … */
  icmpErrorBurst: number;
  /** … and sustained rate. Linux allows ~1 per second per destination with a burst; a host-wide 10/s burst 10 keeps scans cheap. */
  icmpErrorsPerSecond: number;
  /** Bytes of the offending datagram quoted in an error: as much as fits in 576 (RFC 1812 §4.3.2.3), at least header + 8 (RFC 792). */
  icmpQuoteLength: number;
  /** Default ping payload (iputils ping: 56 bytes → 64 with the ICMP header). */
  pingDefaultSize: number;
  /** Default ping timeout. Longer than ARP's give-up time so an unresolvable neighbour reports EHOSTUNREACH. */
  pingDefaultTimeoutMs: number;

  // ---- UDP (src/transport/udp.ts) ----
  /** Ephemeral port range: RFC 6335 §6 dynamic ports 49152–65535. */
  udpEphemeralPortMin: number;
  udpEphemeralPortMax: number;
}

export const STACK_DEFAULTS: Readonly<StackOptions> = Object.freeze({
  arpCacheSize: 32,
  arpEntryLifetimeMs: 300_000,
  arpRefreshBeforeExpiryMs: 30_000,
  arpRequestIntervalMs: 1_000,
  arpMaxRequests: 3,
  arpQueueLength: 3,
  arpLocktimeMs: 1_000,
  arpActiveUseMs: 5_000,
  arpProbeWaitMs: 1_000,
  arpProbeCount: 3,
  arpProbeMinMs: 1_000,
  arpProbeMaxMs: 2_000,
  arpAnnounceWaitMs: 2_000,

  ipDefaultTtl: 64,
  ipReassemblyTimeoutMs: 15_000,
  ipReassemblyMaxBytes: 2 * 65_535,
  ipReassemblyMaxDatagrams: 8,
  ipReassemblyMaxFragments: 64,
  ipReassemblyTimeExceeded: true,
  verifyChecksums: true,

  icmpErrorBurst: 10,
  icmpErrorsPerSecond: 10,
  icmpQuoteLength: 576 - 20 - 8,
  pingDefaultSize: 56,
  pingDefaultTimeoutMs: 8_000,

  udpEphemeralPortMin: 49152,
  udpEphemeralPortMax: 65535,
});

export function resolveOptions(partial: Partial<StackOptions> | undefined): StackOptions {
  return { ...STACK_DEFAULTS, ...partial };
}
