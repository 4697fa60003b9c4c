/**
 * What `spinet flash` tells a person before it flashes, or instead of flashing when the command
 * is incomplete: the serial ports found, which board each looks like and the `--board` to give,
 * and the install command when avrdude is missing. Pure: the caller lists the ports.
 */
import { boardSuggestion, guessBoard, usbLabel, type ListedPort } from '../serial-ports.js';
import { AVRDUDE_INSTALL } from './avrdude.js';

export interface HintInput {
  /** The ports found (`listSerialPorts()`). */
  readonly ports: readonly ListedPort[];
  readonly avrdudeInstalled: boolean;
  /** The board asked for, when it is a known one. */
  readonly board?: string;
}

/** One line per port: `/dev/ttyACM0  2341:0043 Arduino (www.arduino.cc)  an Arduino Uno: --board uno`. */
export function portLine(port: ListedPort): string {
  const guess = guessBoard(port);
  const what = guess ? boardSuggestion(guess) : '';
  return [port.path, usbLabel(port), what].filter(Boolean).join('  ');
}

/** The hint, a line each; the command to run when one port makes it obvious. */
export function flashHint(input: HintInput): string[] {
  const lines: string[] = [];
  if (input.ports.length === 0) {
    lines.push('no serial ports found: is the board plugged in (and its USB cable one that carries data)?');
  } else {
    lines.push('serial ports here:');
    for (const port of input.ports) lines.push(`  ${portLine(port)}`);
    if (input.ports.length === 1) {
      const only = input.ports[0]!;
      const board = guessBoard(only)?.board ?? input.board ?? 'uno';
      lines.push(`try: spinet flash --board ${board} --port ${only.path}`);
    }
  }
  if (!input.avrdudeInstalled) lines.push(`avrdude is not installed: ${AVRDUDE_INSTALL}`);
  return lines;
}

/**
 * A warning when the port's USB ID points at another board than the one asked for, or undefined.
 * Only a warning: clones reuse IDs, and a Nano's ID cannot tell its two bootloaders apart.
 */
export function boardMismatch(port: ListedPort | undefined, board: string): string | undefined {
  const guess = port && guessBoard(port);
  if (!guess || guess.board === board || guess.orBoard?.board === board) return undefined;
  return `${port.path} looks like ${guess.looksLike}, not a ${board}: if flashing fails, try --board ${guess.board}`;
}
