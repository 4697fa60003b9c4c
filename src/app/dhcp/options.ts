/**
 * Every DHCP tunable, with its default and why. Client and server options override per instance.
 *
 * How long a first lease takes, by default: the start delay (1–10 s, `startupDelayMs`), then
 * DISCOVER → OFFER → REQUEST → ACK (one round trip each on a LAN), then the RFC 5227 probe —
 * PROBE_WAIT 0–1 s, 3 probes 1–2 s apart, ANNOUNCE_WAIT 2 s: 4–7 s. So 5–17 s, ~10 s on average.
 * To come up faster, for an interactive tool or a test:
 *  - `startupDelayMs: { min: 0, max: 0 }` on the client — the RFC's delay only matters when many
 *    hosts power up together (dhclient and systemd-networkd do not wait either);
 *  - the probe's timing is the stack's (src/options.ts `arpProbeWaitMs`, `arpProbeCount`,
 *    `arpProbeMinMs`, `arpProbeMaxMs`, `arpAnnounceWaitMs`), e.g.
 *    `new Stack({ options: { arpProbeWaitMs: 0, arpProbeMinMs: 200, arpProbeMaxMs: 200, arpAnnounceWaitMs: 200 } })`
 *    probes in 0.6 s — still 3 probes, so a slow peer may be missed: a LAN you control only;
 *  - a client built without `arpProbe` binds unprobed (RFC 2131 §4.4.1's probe is a SHOULD).
 */
export const DHCP_DEFAULTS = {
  /** RFC 2131 §4.1: first retransmission after 4 s on a 10 Mb/s Ethernet, doubling… */
  retransmitInitialMs: 4_000,
  /** …up to 64 s… */
  retransmitMaxMs: 64_000,
  /** …each randomised by a uniform ±1 s. */
  retransmitJitterMs: 1_000,
  /** Transmissions of a DHCPREQUEST in REQUESTING before falling back to INIT: 4+8+16+32 s ≈ 1 min. */
  requestTransmissions: 5,
  /**
   * INIT-REBOOT asks for a remembered address only this many times (4 s apart, ±1 s) before
   * falling back to DISCOVER: a server with no record of the client stays silent (RFC 2131
   * §4.3.2), so a remembered lease must not cost a minute. dhcpcd gives it 5 s.
   */
  rebootTransmissions: 2,
  /** RFC 2131 §4.4.5: in RENEWING/REBINDING wait half the remaining time, but at least 60 s. */
  renewRetransmitMinMs: 60_000,
  /**
   * RFC 2131 §4.4.1: wait a random 1–10 s before the first DHCPDISCOVER to desynchronise clients
   * after a power failure. The CLI may set { min: 0, max: 0 } for an interactive start.
   */
  startupDelayMs: { min: 1_000, max: 10_000 },
  /** RFC 2131 §3.1 step 5: after a DHCPDECLINE wait at least 10 s before starting over. */
  declineRestartDelayMs: 10_000,
  /**
   * stop() with a lease: how long to wait for the server's (or relay's) MAC so the unicast
   * DHCPRELEASE leaves before the link goes down (ARP answers in well under this on a LAN)…
   */
  releaseNeighbourWaitMs: 1_000,
  /** …and then for the NIC to put it on the wire (a serial-bridged chip takes milliseconds). */
  releaseLingerMs: 100,
  /**
   * A lease shorter than this is used as this long (dhcpcd's DHCP_MIN_LEASE, 20 s): a server
   * handing out 1-second leases would otherwise have the client renewing twice a second. A
   * zero-length lease is refused (lease-check.ts).
   */
  leaseTimeFloorS: 20,
  /**
   * After a refused ACK (lease-check.ts) the client waits declineRestartDelayMs, doubling with each
   * refusal since its last bind, up to this: a server that keeps handing out unusable leases
   * costs one exchange every 5 minutes.
   */
  refusedLeaseBackoffMaxMs: 300_000,
  /** After the second NAK in a row the restart waits this, doubling per NAK (after dhcpcd's NAK back-off)… */
  nakBackoffInitialMs: 1_000,
  /** …up to a minute (dhcpcd's NAKOFF_MAX, 60 s). */
  nakBackoffMaxMs: 60_000,
  /** RFC 2132 §9.10: the smallest maximum message size a client may announce; avoids fragmentation. */
  maxMessageSize: 576,
  /** Ask servers to broadcast replies: before the address is configured our IP layer drops unicast to it (RFC 2131 §4.1). */
  requestBroadcast: true,
  /** RFC 2131 §4.4.5: T1 defaults to 0.5 × lease, T2 to 0.875 × lease. */
  renewalFraction: 0.5,
  rebindingFraction: 0.875,
  /** Options the client asks for (RFC 2132 §9.8). */
  parameterRequestList: [1, 3, 6, 15, 28, 51, 58, 59] as readonly number[],

  // Server
  /** Lease handed out when a client does not ask for one: an hour suits a lab. */
  serverLeaseTimeS: 3_600,
  /** How long an offered address stays reserved for the client it was offered to. */
  serverOfferHoldMs: 60_000,
  /** RFC 2131 §4.3.3: a declined address is marked unavailable; one hour before it is tried again. */
  serverDeclineHoldMs: 3_600_000,
} as const;
