import type { Hal } from '../../src/drivers/hal.js';
import type { Clock } from '../../src/time/clock.js';
import type { Nic } from '../../src/link/nic.js';
import type { MacAddress } from '../../src/wire/address.js';

/**
 * What `spinet doctor` needs from one chip: each check's SPI, and what its registers say. The
 * sequence, the verdicts and the report are the same for every chip (tools/doctor.ts); only these
 * probes differ. Each probe talks to the chip with plain SPI frames from its datasheet, not through
 * the driver, so a fault shows as what it is: a wire, not a timeout.
 */
export interface ChipProbes {
  /** The chip's name in the report: "ENC28J60", "W5500". */
  readonly chip: string;
  /** The wiring checks after `spi`, in the order this chip can run them. */
  readonly order: readonly WiringCheck[];
  /** Reset the chip by a command and read registers whose values after a reset are known. */
  identify(): Promise<Identity>;
  /** Make the buffer memory usable for a pattern test (write, read back), and tidy up after. */
  openMemory(): Promise<MemoryAccess>;
  /** Make the chip raise an interrupt with INT enabled, then clear it again. */
  raiseInterrupt(): Promise<InterruptOutcome>;
  /** The reset check: a register overwritten before the pulse must read its reset value after. */
  readonly resetProbe: ResetProbe;
  /** What the PHY says about the link. */
  link(): Promise<{ up: boolean; detail: string }>;
  /** The chip's driver, for the DHCP and ping checks. */
  nic(config: { hal: Hal; clock: Clock; mac: MacAddress; name: string }): Nic;
}

export type WiringCheck = 'memory' | 'interrupt' | 'reset' | 'link';

export interface Identity {
  /** Every byte read (all 0xFF: MISO floats; all 0x00: MISO held low). */
  readonly bytes: readonly number[];
  /** The registers as read, for the report: "ESTAT 0x01, ...". */
  readonly text: string;
  /** What the chip is when every value is right ("ENC28J60 rev. B7"); left out when it is not. */
  readonly recognised?: string;
}

export interface MemoryAccess {
  /** Write `pattern` into the chip's buffer memory and read the same bytes back. */
  roundTrip(pattern: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

export type InterruptOutcome =
  /** The chip's own flag says it raised `what`. */
  | { readonly raised: true; readonly what: string }
  /** The chip did not even raise it: not a wire. */
  | { readonly raised: false; readonly detail: string; readonly fix: string };

export interface ResetProbe {
  /** The register's name in the report. */
  readonly register: string;
  readonly resetValue: number;
  /** Hold the reset line low this long (the chip's minimum pulse, with margin) … */
  readonly pulseMs: number;
  /** … then wait this long before the first SPI frame (the chip answers again after it). */
  readonly readyMs: number;
  /** Write a value other than the reset value. */
  spoil(): Promise<void>;
  read(): Promise<number>;
}

export function hex(byte: number, digits = 2): string {
  return byte.toString(16).padStart(digits, '0');
}

/** A probe found a fault before its check could be made: the check fails with this. */
export class CheckFailure extends Error {
  constructor(
    readonly detail: string,
    readonly fix: string,
  ) {
    super(detail);
    this.name = 'CheckFailure';
  }
}
