/**
 * What flashing needs to know about a board, from boards/<board>.json (the bridge's board
 * definitions: `upload.partno/programmer/speed`, `flashBytes`, `hex`, `bootloader.name`) plus the
 * bootloader section sizes those files leave out (Arduino boards.txt `upload.maximum_size`).
 *
 * `nano-old` is a Nano with the old ATmegaBOOT bootloader (most clones): nano.json's
 * `upload.oldBootloaderSpeed`, the same sketch.
 */
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { FlashError } from './errors.js';

export interface FlashTarget {
  readonly board: string;
  /** For a person: "Uno", "Nano", "Mega 2560" (the board file's title without "Arduino" and the chips). */
  readonly title: string;
  /** The bootloader avrdude talks to: optiboot, ATmegaBOOT, stk500v2. */
  readonly bootloader: string;
  /** avrdude `-p`. */
  readonly part: string;
  /** avrdude `-c`: `arduino` = STK500v1 (optiboot, ATmegaBOOT), `wiring` = STK500v2 (Mega). */
  readonly programmer: string;
  /** Bootloader baud rate, avrdude `-b`. */
  readonly baud: number;
  /** Flash the sketch may use: the chip's flash minus the bootloader section. */
  readonly maxSketchBytes: number;
  /** The bridge Makefile's BOARD for this board. */
  readonly buildBoard: string;
  /** The committed bridge image for this board. */
  readonly committedHex: string;
}

interface BoardJson {
  name?: string;
  title?: string;
  mcu?: string;
  flashBytes?: number;
  hex?: string;
  upload?: { partno?: string; programmer?: string; speed?: number; oldBootloaderSpeed?: number; maximumSize?: number };
  bootloader?: { name?: string };
}

/** Boot section sizes (boards.txt: flash − upload.maximum_size). */
const BOOT_SECTION_BYTES: Record<string, number> = {
  uno: 512, // optiboot
  nano: 2048, // optiboot, but fused for 2 KiB (BOOTSZ) like the old bootloader
  'nano-old': 2048, // ATmegaBOOT
  mega2560: 8192, // stk500v2
};
const BOOT_SECTION_BY_NAME: Record<string, number> = { optiboot: 512, atmegaboot: 2048, stk500v2: 8192 };
/** Boards that are another board's definition with a different bootloader. */
const VARIANTS: Record<string, { of: string; oldBootloader: boolean }> = {
  'nano-old': { of: 'nano', oldBootloader: true },
};

export async function flashTarget(board: string, repoRoot: string): Promise<FlashTarget> {
  const variant = VARIANTS[board];
  const definition = await readBoardJson(variant?.of ?? board, repoRoot);
  const upload = definition?.upload;
  if (!definition || !upload?.programmer || !upload.speed || !(upload.partno ?? definition.mcu) || !definition.flashBytes) {
    throw new FlashError('unknown-board', `unknown board "${board}" (no boards/${variant?.of ?? board}.json with an upload section)`, {
      hint: `Known boards: ${(await knownBoards(repoRoot)).join(', ')}.`,
    });
  }
  const baud = variant?.oldBootloader ? (upload.oldBootloaderSpeed ?? upload.speed) : upload.speed;
  const bootBytes =
    BOOT_SECTION_BYTES[board] ?? BOOT_SECTION_BY_NAME[definition.bootloader?.name?.toLowerCase() ?? ''] ?? 2048;
  const buildBoard = definition.name ?? variant?.of ?? board;
  return {
    board,
    title: (definition.title ?? board).replace(/^Arduino\s+/, '').replace(/\s*\(.*$/, '').replace(/\s+R\d+$/, ''),
    bootloader: variant?.oldBootloader ? 'ATmegaBOOT' : (definition.bootloader?.name ?? 'the bootloader'),
    part: avrdudePart(upload.partno ?? definition.mcu!),
    programmer: upload.programmer,
    baud,
    maxSketchBytes: upload.maximumSize ?? definition.flashBytes - bootBytes,
    buildBoard,
    committedHex: join(repoRoot, 'boards', definition.hex ?? join('bridge', `${buildBoard}.hex`)),
  };
}

/** Boards with a definition, plus their variants. */
export async function knownBoards(repoRoot: string): Promise<string[]> {
  let names: string[] = [];
  try {
    names = (await readdir(join(repoRoot, 'boards'))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  } catch {
    // no boards/ directory: nothing known
  }
  const variants = Object.entries(VARIANTS).filter(([, v]) => names.includes(v.of)).map(([name]) => name);
  return [...names, ...variants].sort();
}

async function readBoardJson(board: string, repoRoot: string): Promise<BoardJson | undefined> {
  if (!/^[a-z0-9][a-z0-9-]*$/i.test(board)) return undefined;
  try {
    return JSON.parse(await readFile(join(repoRoot, 'boards', `${board}.json`), 'utf8')) as BoardJson;
  } catch {
    return undefined;
  }
}

/** avrdude's short part ids for the MCU names the board files use. */
function avrdudePart(mcu: string): string {
  const short: Record<string, string> = { atmega328p: 'm328p', atmega2560: 'm2560', atmega168: 'm168', atmega32u4: 'm32u4' };
  return short[mcu.toLowerCase()] ?? mcu;
}
