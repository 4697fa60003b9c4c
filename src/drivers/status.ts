/**
 * What an Ethernet chip holds and how it fared, as far as its driver knows: a read-only copy for
 * consoles (`Enc28j60Nic.status()`, `W5500Nic.status()`). The driver learns these from the
 * answers to its own SPI batches; nothing here costs a read of the chip.
 */
export interface ChipStatus {
  /** The chip's name: 'ENC28J60', 'W5500'. */
  readonly chip: string;
  readonly linkUp: boolean;
  /** The link's speed in Mbit/s (the ENC28J60 is 10BASE-T only; the W5500 says in PHYCFGR). */
  readonly speedMbps: number;
  /** The silicon revision as the chip reports it (EREVID, VERSIONR); undefined before start. */
  readonly revision: string | undefined;
  /** The chip's receive filter is off: every frame with a good FCS is taken. */
  readonly promiscuous: boolean;
  /** The chip's receive buffer in bytes (ENC28J60: the ring ERXST..ERXND; W5500: socket 0's RX buffer). */
  readonly ringBytes: number;
  /** Bytes of it in use as far as the driver knows: received and not yet released. */
  readonly ringUsed: number;
  /** Complete frames waiting in it (EPKTCNT); undefined where the chip keeps no count (W5500). */
  readonly packetsWaiting: number | undefined;
  /** Frames the chip dropped with its buffer full (ENC28J60 EIR.RXERIF); undefined where the chip does not say (W5500). */
  readonly overflows: number | undefined;
  /** Frames the driver holds for the chip: queued, and handed over but not yet seen sent. */
  readonly transmitQueue: number;
  /** Transmissions that failed or had to go again (late collision, stall, preempted, stuck). */
  readonly transmitErrors: number;
}
