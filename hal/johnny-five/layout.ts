/**
 * Which pins can do what, per board, and which the bridge keeps for itself (UART 0/1, the chip's
 * INT on 2, its RESET on 9, SPI, CS, SS and the SD card select on 4) — the same lists as
 * boards/<board>.json `reservedPins`.
 */
export interface PinLayout {
  readonly name: string;
  readonly pinCount: number;
  /** Digital pin number of each analog channel: analogPins[0] is A0. */
  readonly analogPins: readonly number[];
  /** Analog channels with no digital function (Nano A6, A7). */
  readonly analogOnlyPins: readonly number[];
  readonly pwmPins: readonly number[];
  readonly reservedPins: readonly number[];
}

/** Uno (and Nano without A6/A7): the ATmega328P as the Arduino core numbers it. */
export const UNO_LAYOUT: PinLayout = {
  name: 'uno',
  pinCount: 20,
  analogPins: [14, 15, 16, 17, 18, 19],
  analogOnlyPins: [],
  pwmPins: [3, 5, 6, 9, 10, 11],
  reservedPins: [0, 1, 2, 4, 9, 10, 11, 12, 13],
};

export const NANO_LAYOUT: PinLayout = {
  ...UNO_LAYOUT,
  name: 'nano',
  pinCount: 22,
  analogPins: [14, 15, 16, 17, 18, 19, 20, 21],
  analogOnlyPins: [20, 21],
};

export const MEGA2560_LAYOUT: PinLayout = {
  name: 'mega2560',
  pinCount: 70,
  analogPins: Array.from({ length: 16 }, (_, i) => 54 + i),
  analogOnlyPins: [],
  pwmPins: [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 44, 45, 46],
  reservedPins: [0, 1, 2, 4, 9, 10, 50, 51, 52, 53],
};

/** The layout whose pin count matches (the bridge HELLO reports the count). */
export function layoutForPinCount(pinCount: number): PinLayout {
  for (const layout of [UNO_LAYOUT, NANO_LAYOUT, MEGA2560_LAYOUT]) if (layout.pinCount === pinCount) return layout;
  // Unknown board: every pin digital, nothing reserved but what the caller says.
  return { name: 'generic', pinCount, analogPins: [], analogOnlyPins: [], pwmPins: [], reservedPins: [] };
}
