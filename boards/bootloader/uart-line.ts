/**
 * What a UART receiving at one rate makes of 8N1 characters sent at another: the bytes a
 * bootloader listening at 115200 reads from a host talking to the sketch at 1 Mbaud.
 *
 * The receiver as the ATmega's (datasheet §20.8, Asynchronous Data Reception): idle high; a
 * high-to-low transition starts the start-bit detection; every bit is sampled three times around
 * its middle and decided by majority; a start bit that reads high is a false start, and the search
 * for the next transition begins again; a stop bit that reads low sets FE, and the byte is kept.
 * After the stop bit's samples the receiver looks for the next high-to-low transition.
 */

export interface SentCharacter {
  /** When the start bit begins, µs. */
  readonly startUs: number;
  readonly byte: number;
}

export interface ReceivedCharacter {
  /** When the receiver has the byte (its stop bit sampled), µs. */
  readonly endUs: number;
  readonly byte: number;
  /** Framing error: the stop bit read low. */
  readonly fe: boolean;
}

/** Characters sent back to back from `startUs` with `gapUs(i)` of idle line before character i > 0. */
export function sendAt(startUs: number, baud: number, bytes: Iterable<number>, gapUs: (index: number) => number = () => 0): SentCharacter[] {
  const out: SentCharacter[] = [];
  let at = startUs;
  let index = 0;
  for (const byte of bytes) {
    if (index > 0) at += 10e6 / baud + gapUs(index);
    out.push({ startUs: at, byte });
    index++;
  }
  return out;
}

/** The line level at `us` (true = high): start bit low, 8 data bits LSB first, stop bit high. */
function levelAt(sent: readonly SentCharacter[], senderBaud: number, us: number): boolean {
  const bitUs = 1e6 / senderBaud;
  for (const c of sent) {
    if (us < c.startUs) return true;
    const bit = Math.floor((us - c.startUs) / bitUs);
    if (bit < 10) return bitLevel(c.byte, bit);
  }
  return true;
}

/** The level of bit `bit` (0 start, 1–8 data, 9 stop) of a character. */
function bitLevel(byte: number, bit: number): boolean {
  return bit === 0 ? false : bit === 9 ? true : ((byte >> (bit - 1)) & 1) === 1;
}

/**
 * The next high-to-low transition at or after `fromUs`, or undefined. Every start bit is one (the
 * line before it is idle or a stop bit), and so is every data bit that is low after a high one.
 */
function nextFallingEdge(sent: readonly SentCharacter[], senderBaud: number, fromUs: number): number | undefined {
  const bitUs = 1e6 / senderBaud;
  for (const c of sent) {
    if (c.startUs + 10 * bitUs <= fromUs) continue;
    for (let bit = 0; bit < 9; bit++) {
      const t = c.startUs + bit * bitUs;
      if (t < fromUs) continue;
      if (bit === 0 || (bitLevel(c.byte, bit - 1) && !bitLevel(c.byte, bit))) return t;
    }
  }
  return undefined;
}

/**
 * The characters a receiver at `receiverBaud` assembles from `sent` (sent at `senderBaud`). With
 * `samplesPerBit` 8 (U2X, as Arduino cores and bootloaders set it) the three samples are the 4th,
 * 5th and 6th of each bit; with 16, the 8th, 9th and 10th.
 */
export function receiveAt(sent: readonly SentCharacter[], senderBaud: number, receiverBaud: number, samplesPerBit = 8): ReceivedCharacter[] {
  const out: ReceivedCharacter[] = [];
  const sampleUs = 1e6 / receiverBaud / samplesPerBit;
  const middle = samplesPerBit / 2;
  const majority = (bitStartUs: number) => {
    let high = 0;
    for (const k of [middle - 1, middle, middle + 1]) if (levelAt(sent, senderBaud, bitStartUs + k * sampleUs)) high++;
    return high >= 2;
  };
  let from = sent[0]?.startUs ?? 0;
  for (;;) {
    const edge = nextFallingEdge(sent, senderBaud, from);
    if (edge === undefined) return out;
    // The receiver's sample clock sees the edge at its next tick.
    const start = Math.ceil(edge / sampleUs - 1e-9) * sampleUs;
    const bitUs = samplesPerBit * sampleUs;
    if (majority(start)) {
      from = start + (middle + 2) * sampleUs;
      continue;
    }
    let byte = 0;
    for (let bit = 0; bit < 8; bit++) if (majority(start + (bit + 1) * bitUs)) byte |= 1 << bit;
    const stopAt = start + 9 * bitUs;
    const stop = majority(stopAt);
    const endUs = stopAt + (middle + 1) * sampleUs;
    out.push({ endUs, byte, fe: !stop });
    from = endUs;
  }
}

/** The same characters at the same rate: each one lands when its stop bit has been sampled. */
export function receiveMatched(sent: readonly SentCharacter[], baud: number): ReceivedCharacter[] {
  return sent.map((c) => ({ endUs: c.startUs + 9.5e6 / baud, byte: c.byte, fe: false }));
}

/** Two UARTs within 2 % of each other read each other's characters as sent (datasheet §20.8.3). */
export function ratesMatch(a: number, b: number): boolean {
  return Math.abs(a - b) / Math.max(a, b) < 0.02;
}

/** `bytes` sent back to back at `from` baud as a UART at `to` baud reads them (framing errors kept). */
export function misread(bytes: Iterable<number>, from: number, to: number): Uint8Array {
  return Uint8Array.from(receiveAt(sendAt(0, from, bytes), from, to), (c) => c.byte);
}
