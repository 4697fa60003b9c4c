import type { SpiTransaction } from '../hal.js';
import { CONTROL_WRITE, OM_VDM, Sn_CR, Sn_CR_RECV, Sn_IR_RECV, Sn_RX_RD, Sn_RX_WR, bsbSocketRegisters, bsbSocketRx } from './registers.js';

/**
 * The receive program the driver leaves on a board that runs programs with extensions
 * (SpiDevice.programExtensions; docs/bridge-protocol.md §3.2): the board runs it on every INTn
 * edge and again after every run that took something, so a received frame costs no round trip.
 *
 *   read Sn_RX_RD, Sn_RX_WR       → bytes 0–1 (RD), 2–3 (WR)
 *   read Sn_RX_WR                 → bytes 4–5: a second read (a 16-bit register tears, DS-W p.55)
 *   SAME(2, 4) DIFFER(0, 2)       stop here unless the two reads agree and frames wait
 *   COPY(RD) read the RX buffer at RD, LENGTH = WR − RD (SPAN; cap: the 16 KB buffer)
 *                                 → every byte received: whole frames, each behind its length
 *   COPY(WR) Sn_RX_RD = WR        past all of them (never past what the chip has: WR is its own)
 *   Sn_CR = RECV, Sn_IR = RECV    free the space (Sn_CR and Sn_IR are neighbours), LAST
 *
 * No frame is left waiting without a run to come: a frame stored after the last RECV clear raises
 * INTn, an edge the board counts even during a run (and then runs again); one stored before it but
 * after the pointer reads is found by the run that follows every run that took frames; two reads
 * of Sn_RX_WR that disagree mean a frame came in during the run, so an edge came with it.
 *
 * A run's answer: RD, WR, WR again, then the data. The driver checks every length header in it as
 * it does for its own reads (a bad one only loses what this run read: Sn_RX_RD is already past it),
 * and notices a run lost on the link by an RD that is not where the last run left it.
 */
export const RX_RUN_HEADER_BYTES = 6;

export function receiveProgram(socket: number, bufferBytes: number): SpiTransaction[] {
  const regs = bsbSocketRegisters(socket) | OM_VDM;
  const write = (offset: number, ...data: number[]) => Uint8Array.of(offset >> 8, offset & 0xff, regs | CONTROL_WRITE, ...data);
  const read = (offset: number) => Uint8Array.of(offset >> 8, offset & 0xff, regs);
  return [
    { write: read(Sn_RX_RD), read: 4 },
    { write: read(Sn_RX_WR), read: 2 },
    {
      write: Uint8Array.of(0, 0, bsbSocketRx(socket) | OM_VDM),
      read: bufferBytes,
      ifSame: [2, 4],
      ifDiffer: [0, 2],
      copy: { at: 0, from: 0 },
      readLengthFrom: { at: 2, bigEndian: true, minusAt: 0 },
    },
    { write: write(Sn_RX_RD, 0, 0), copy: { at: 3, from: 2 } },
    { write: write(Sn_CR, Sn_CR_RECV, Sn_IR_RECV) },
  ];
}
