import type { SpiTransaction } from '../hal.js';
import * as R from './registers.js';
import { classifyHeader, frameLength, packetSpan, parseRxHeader, storedFcs, type RxHeader } from './rx-ring.js';

/**
 * Receive by program (SpiDevice.arm, docs/bridge-protocol.md §3.2): what the board runs when INT
 * falls, and what its answer means. Both are pure: the driver arms the program and takes the
 * packets.
 */

/**
 * What the board runs when INT falls (and again while packets wait): 35 bytes with the bridge's
 * short headers. It reads EPKTCNT (bank 1; never PKTIF, which is unreliable: errata #6) and comes
 * back to bank 0, then stops unless a packet waits; else it reads ERDPT (where the packet starts:
 * a run whose answer was lost on the link shows as a gap), the 6-byte header and then exactly the
 * byte count the header gives, rounded up to even (at most a ring's worth), so ERDPT ends on the next packet (AUTOINC
 * wraps it in the ring, DS-ENC §4.2.2), and PKTDEC. The driver releases the ring (ERXRDPT)
 * itself: that write depends on the header.
 */
export function receiveProgram(ringBytes: number): SpiTransaction[] {
  // The longest packet the ring can hold, not MAMXFL: a frame over MAMXFL that the chip stored
  // (MACON3.HFRMEN) is read whole, so ERDPT still ends on the next packet and the driver drops it
  // without losing its place; a corrupt count costs at most one ring's worth of SPI bytes.
  const cap = ringBytes - R.RX_HEADER_BYTES;
  const op = (opcode: number, register: number, ...rest: number[]) => Uint8Array.of(opcode | (register & 0x1f), ...rest);
  return [
    { write: op(R.OP_RCR, R.EIR), read: 1 }, // byte 0
    { write: op(R.OP_BFS, R.ECON1, R.ECON1_BSEL0) }, // bank 0 → 1
    { write: op(R.OP_RCR, R.EPKTCNT), read: 1 }, // byte 1
    { write: op(R.OP_BFC, R.ECON1, R.ECON1_BSEL) }, // → bank 0
    { write: op(R.OP_RCR, R.ERDPTL), read: 1, ifNonZero: 1 }, // bytes 2, 3; stop if EPKTCNT = 0
    { write: op(R.OP_RCR, R.ERDPTH), read: 1 },
    { write: Uint8Array.of(R.OP_RBM), read: R.RX_HEADER_BYTES, keepSelected: true }, // bytes 4..9
    { read: cap, readLengthFrom: { at: 6, even: true } }, // frame + FCS + pad
    { write: op(R.OP_BFS, R.ECON2, R.ECON2_PKTDEC) },
  ];
}

/** Where a run's bytes start: EIR, EPKTCNT, ERDPT (2), then the packet from its header on. */
const RUN_PACKET_AT = 4;

/** One run's answer, checked. */
export type RunResult =
  /** Shorter than EIR and EPKTCNT: nothing can be read from it. */
  | { kind: 'malformed' }
  /** No packet waited (EPKTCNT 0): the run stopped after its condition. */
  | { kind: 'empty'; eir: number }
  /** A packet whose header does not fit where it was read: the ring is corrupt. */
  | { kind: 'corrupt'; eir: number }
  /** A packet longer than MAMXFL read whole at `start` (ERDPT is on the next one): a drop. */
  | { kind: 'too-long'; eir: number; packetCount: number; start: number; header: RxHeader }
  /** A packet read at `start`: `frame` is without its FCS, `fcs` the FCS as read. */
  | { kind: 'packet'; eir: number; packetCount: number; start: number; header: RxHeader; frame: Uint8Array; fcs: number };

/**
 * A run's answer against the ring (ERXND `ringEnd`) and MAMXFL: the packet must start where ERDPT
 * was read, be plausible there, and the answer hold exactly its header, frame, FCS and pad.
 */
export function parseRun(r: Uint8Array, ringEnd: number, maxFrameLength: number): RunResult {
  if (r.length < 2) return { kind: 'malformed' };
  const eir = r[0]!;
  const packetCount = r[1]!;
  if (packetCount === 0) return { kind: 'empty', eir };
  if (r.length < RUN_PACKET_AT + R.RX_HEADER_BYTES) return { kind: 'corrupt', eir };
  const start = r[2]! | (r[3]! << 8);
  const header = parseRxHeader(r, RUN_PACKET_AT);
  const kind = classifyHeader(header, start, ringEnd, maxFrameLength);
  if (kind === 'corrupt' || r.length !== RUN_PACKET_AT + packetSpan(header.byteCount)) return { kind: 'corrupt', eir };
  if (kind === 'too-long') return { kind: 'too-long', eir, packetCount, start, header };
  const frameAt = RUN_PACKET_AT + R.RX_HEADER_BYTES;
  return { kind: 'packet', eir, packetCount, start, header, frame: r.subarray(frameAt, frameAt + frameLength(header)), fcs: storedFcs(r, frameAt, header) };
}
