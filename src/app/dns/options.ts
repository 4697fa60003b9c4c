/**
 * Every DNS tunable, with its default and why (lwIP opt.h style). Resolver and server options
 * override these per instance.
 */
export const DNS_DEFAULTS = {
  /** RFC 1035 §4.2.1 / RFC 6335: servers listen on 53. */
  serverPort: 53,
  /**
   * First per-query timeout. 1 s like smoltcp's RETRANSMIT_DELAY; a LAN or ISP resolver answers
   * well inside that, and the backoff below covers slow upstreams.
   */
  initialTimeoutMs: 1_000,
  /** Each further round over the servers doubles the timeout (RFC 1536 §1: back off), up to this. */
  maxTimeoutMs: 8_000,
  /** Rounds over the whole server list before ETIMEOUT: 1 + 2 + 4 s per server by default. */
  attempts: 3,
  /** How long to wait for a TCP retry after a truncated reply (RFC 7766 §6.2.2 suggests ≥ seconds). */
  tcpTimeoutMs: 10_000,
  /** Longest CNAME chain followed (RFC 1034 §3.6.2 forbids loops; glibc/lwIP stop near 8–16). */
  maxCnameChain: 8,
  /** Cache entries (positive and negative together); least recently used goes first. lwIP: 4. */
  cacheEntries: 256,
  /** RFC 2181 §8 allows up to 2^31-1 s; a day bounds the damage of a poisoned or mistaken record. */
  maxPositiveTtlS: 86_400,
  /** RFC 2308 §5: negative answers are cached at most a few hours ("one to three hours"). */
  maxNegativeTtlS: 10_800,
  /**
   * Source ports are drawn from the RFC 6335 §6 dynamic range; together with the random 16-bit id
   * this gives ~30 bits an off-path spoofer must guess (RFC 5452 §9.2).
   */
  sourcePortMin: 49_152,
  sourcePortMax: 65_535,
  /** Queries per source port (resolver option `queriesPerPort`): 1, a fresh port every time. */
  queriesPerPort: 1,
  /**
   * Queries outstanding on one source port at once (resolver option `concurrentPerPort`): 1,
   * never two (RFC 5452 §9.2). c-ares puts every concurrent query to a server on one socket.
   */
  concurrentPerPort: 1,
  /** A source port kept for reuse closes after this long without a query. */
  portIdleMs: 2_000,
  /** Tries to find a free random source port before giving up with the socket error. */
  sourcePortTries: 8,
  /** RFC 1035 §4.2.1: UDP replies beyond 512 octets are malformed when we sent no EDNS OPT. */
  maxUdpMessage: 512,
  /** Authoritative server: TTL of its records and of its SOA negative answers when not given. */
  serverDefaultTtlS: 300,
  /** Authoritative server over TCP: close a connection this long without a query (RFC 7766 §6.2.3: "a few seconds"). */
  serverTcpIdleTimeoutMs: 10_000,
  /** …and close one whose client has this much of our answers unread (it pipelines without reading). */
  serverTcpMaxUnreadBytes: 256 * 1024,
} as const;
