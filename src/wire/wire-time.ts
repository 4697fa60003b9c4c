/**
 * How long a frame occupies the wire: 10BASE-T (IEEE 802.3 clause 14: 10 Mbit/s, so 0.8 µs a
 * byte) by default, 100BASE-TX (clause 25) where a chip negotiates it. The driver waits out a
 * frame's wire time before the next transmission; the chip emulator takes the same time to send or
 * receive one. Frame lengths here are as a Nic carries them: from the destination MAC to the end
 * of the payload, without preamble or FCS.
 */

/** 10 Mbit/s: 8 bits in 0.8 µs. */
export const ETHERNET_MS_PER_BYTE = 0.0008;
/** Preamble (7) and start-of-frame delimiter (1) before every frame (IEEE 802.3 §3.2.1). */
export const PREAMBLE_SFD_BYTES = 8;
/** The frame check sequence after every frame. */
export const FCS_BYTES = 4;
/** A shorter frame is padded to this length before the FCS (64 bytes with it, IEEE 802.3 §4.4.2). */
export const MIN_FRAME_BYTES = 60;
/** The interframe gap: 96 bit times of idle between two frames (IEEE 802.3 §4.4.2). */
export const INTERFRAME_GAP_BYTES = 12;

/** Milliseconds one byte takes at `mbps` (10 or 100). */
export function byteTimeMs(mbps = 10): number {
  return mbps === 10 ? ETHERNET_MS_PER_BYTE : 8 / (mbps * 1000);
}

/** Milliseconds a frame of `frameLength` bytes holds the wire: preamble, padded frame, FCS. */
export function frameWireTimeMs(frameLength: number, mbps = 10): number {
  return (PREAMBLE_SFD_BYTES + Math.max(frameLength, MIN_FRAME_BYTES) + FCS_BYTES) * byteTimeMs(mbps);
}
