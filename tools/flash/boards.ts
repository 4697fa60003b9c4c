/**
 * What flashing needs to know about a board: how avrdude talks to its bootloader and how much
 * flash the sketch may use. Values from Arduino's boards.txt (arduino-core-avr 1.8.7:
 * `upload.protocol`, `upload.speed`, `upload.maximum_size`); boards/<board>.json, when it has an
 * `upload` section, overrides them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlashError } from './errors.js';

export interface FlashTarget {
  readonly board: string;
  /** avrdude `-p`. */
  readonly part: string;
  /** avrdude `-c`: `arduino` = STK500v1 (optiboot, ATmegaBOOT), `wiring` = STK500v2 (Mega). */
  readonly programmer: string;
  /** Bootloader baud rate, avrdude `-b`. */
  readonly baud: number;
  /** Flash the sketch may use: the chip's flash minus the bootloader section. */
  readonly maxSketchBytes: number;
}

const BUILT_IN: Record<string, Omit<FlashTarget, 'board'>> = {
  // optiboot, 512-byte boot section.
  uno: { part: 'm328p', programmer: 'arduino', baud: 115200, maxSketchBytes: 32256 },
  // Nano "ATmega328P" (optiboot since 2018, but fused for a 2 KiB boot section).
  nano: { part: 'm328p', programmer: 'arduino', baud: 115200, maxSketchBytes: 30720 },
  // Nano "ATmega328P (Old Bootloader)": ATmegaBOOT at 57600, the usual clone.
  'nano-old': { part: 'm328p', programmer: 'arduino', baud: 57600, maxSketchBytes: 30720 },
  // Pro Mini 5 V 16 MHz: ATmegaBOOT at 57600 (through an FTDI adapter with DTR).
  'pro-mini': { part: 'm328p', programmer: 'arduino', baud: 57600, maxSketchBytes: 30720 },
  // Mega 2560: STK500v2 bootloader, 8 KiB boot section.
  mega2560: { part: 'm2560', programmer: 'wiring', baud: 115200, maxSketchBytes: 253952 },
};

export const KNOWN_BOARDS = Object.keys(BUILT_IN);

interface BoardJsonUpload {
  part?: string;
  mcu?: string;
  protocol?: string;
  programmer?: string;
  speed?: number;
  baud?: number;
  maximumSize?: number;
  maxSketchBytes?: number;
}

/** The target for `board`, from the built-in table overlaid with boards/<board>.json's `upload`. */
export async function flashTarget(board: string, repoRoot: string): Promise<FlashTarget> {
  const upload = await readBoardUpload(board, repoRoot);
  const base = BUILT_IN[board];
  if (!base && !upload) {
    throw new FlashError('unknown-board', `unknown board "${board}"`, { hint: `Known boards: ${KNOWN_BOARDS.join(', ')}.` });
  }
  const part = upload?.part ?? partFromMcu(upload?.mcu) ?? base?.part;
  const programmer = upload?.programmer ?? upload?.protocol ?? base?.programmer;
  const baud = upload?.baud ?? upload?.speed ?? base?.baud;
  const maxSketchBytes = upload?.maxSketchBytes ?? upload?.maximumSize ?? base?.maxSketchBytes;
  if (!part || !programmer || !baud || !maxSketchBytes) {
    throw new FlashError('unknown-board', `boards/${board}.json does not say how to upload (part, protocol, speed, size)`);
  }
  return { board, part, programmer, baud, maxSketchBytes };
}

async function readBoardUpload(board: string, repoRoot: string): Promise<BoardJsonUpload | undefined> {
  if (!/^[a-z0-9][a-z0-9-]*$/i.test(board)) return undefined;
  let text: string;
  try {
    text = await readFile(join(repoRoot, 'boards', `${board}.json`), 'utf8');
  } catch {
    return undefined;
  }
  const json = JSON.parse(text) as { upload?: BoardJsonUpload; mcu?: string };
  if (!json.upload) return json.mcu ? { mcu: json.mcu } : undefined;
  return { mcu: json.mcu, ...json.upload };
}

/** avrdude part ids for the MCU names boards.txt uses (`build.mcu`). */
function partFromMcu(mcu: string | undefined): string | undefined {
  switch (mcu?.toLowerCase()) {
    case 'atmega328p':
      return 'm328p';
    case 'atmega2560':
      return 'm2560';
    case 'atmega168':
      return 'm168';
    default:
      return undefined;
  }
}
