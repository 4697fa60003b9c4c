/**
 * `spinet flash`: put the bridge sketch on a board. Build it when the AVR toolchain is installed
 * (else take the committed hex), check it fits, check the port, upload and verify with avrdude,
 * and turn every failure into a FlashError a person can act on.
 */
import { access, constants, readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseIntelHex } from '../../boards/bootloader/intel-hex.js';
import { guessBoard, listSerialPorts, portHolders } from '../serial-ports.js';
import { AVRDUDE_INSTALL, DIALOUT_HINT, PORT_HINT, avrdudeArgs, runAvrdude, type AvrdudeUpload } from './avrdude.js';
import { flashTarget, type FlashTarget } from './boards.js';
import { TOOLCHAIN_HINT, bridgeBuild, missingToolchain, onPath, runBuild, type Command } from './build.js';
import { FlashError } from './errors.js';
import { portLine } from './hint.js';

export { FlashError, type FlashErrorKind } from './errors.js';
export { knownBoards, type FlashTarget } from './boards.js';
export type { Command } from './build.js';

/** `reset`: avrdude started, resetting the board and waiting for its bootloader (done 0 of 1). */
export type FlashPhase = 'build' | 'reset' | 'write' | 'verify';

export interface FlashOptions {
  /** Board: a boards/<name>.json with an `upload` section (uno, nano, mega2560), or nano-old. */
  readonly board: string;
  /** Serial port, e.g. /dev/ttyACM0. */
  readonly port: string;
  /** Flash this Intel HEX file instead of the bridge sketch. */
  readonly hex?: string;
  /** true: build from source (fail without a toolchain); false: committed hex; default: build if possible. */
  readonly build?: boolean;
  /** Resolve what would run and return it without running anything. */
  readonly dryRun?: boolean;
  /** Progress: `build` counts 0..1, `write`/`verify` count bytes of the image. */
  readonly onProgress?: (phase: FlashPhase, done: number, total: number) => void;
  /** Bridge link speed compiled into a build from source (default 1 000 000). */
  readonly bridgeBaud?: number;
  /** Bootloader sync attempts (avrdude `-x attempts`; avrdude's default 10 takes about a minute to give up). */
  readonly attempts?: number;
  /** Give up when the bootloader has not answered this long after avrdude starts (default 7 s). */
  readonly syncTimeoutMs?: number;
  /** Stop: the build or avrdude is killed and waited for, then flash() rejects (kind `interrupted`). */
  readonly signal?: AbortSignal;
  /** avrdude binary (default: `avrdude` on PATH). */
  readonly avrdude?: string;
  /** Repository root (default: this checkout). */
  readonly repoRoot?: string;
}

export interface FlashResult {
  readonly target: FlashTarget;
  /** The image flashed (or that would be). */
  readonly hex: string;
  /** True if the image was (or would be) built from source. */
  readonly built: boolean;
  /** The commands run (or that would run), in order. */
  readonly commands: readonly Command[];
  /** Image size in bytes (highest programmed address + 1); undefined on a dry run. */
  readonly bytes?: number;
  /** avrdude's output. */
  readonly log?: string;
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export async function flash(options: FlashOptions): Promise<FlashResult> {
  const repoRoot = options.repoRoot ?? REPO_ROOT;
  const target = await flashTarget(options.board, repoRoot);
  const progress = options.onProgress ?? (() => {});

  const plan = await planImage(options, target, repoRoot);
  const upload: AvrdudeUpload = {
    programmer: target.programmer,
    part: target.part,
    baud: target.baud,
    port: options.port,
    hexFile: plan.hex,
    attempts: options.attempts,
  };
  const avrdude: Command = { command: options.avrdude ?? 'avrdude', args: avrdudeArgs(upload) };
  const commands = plan.build ? [plan.build, avrdude] : [avrdude];
  if (options.dryRun) return { target, hex: plan.hex, built: plan.build !== undefined, commands };

  const requireAvrdude = async () => {
    if (!(await avrdudeInstalled(options.avrdude))) throw new FlashError('avrdude-missing', 'avrdude is not installed', { hint: AVRDUDE_INSTALL });
  };
  if (plan.build) {
    // Before a build that may take a minute, not after it.
    await requireAvrdude();
    progress('build', 0, 1);
    await runBuild(plan.build, options.signal);
    progress('build', 1, 1);
  }
  const bytes = await imageSize(plan.hex, target);
  await requireAvrdude();
  await checkPort(options.port);
  progress('reset', 0, 1);
  const log = await runAvrdude(upload, {
    avrdude: options.avrdude,
    onProgress: (phase, percent) => progress(phase, Math.round((percent / 100) * bytes), bytes),
    syncTimeoutMs: options.syncTimeoutMs,
    signal: options.signal,
  }).catch(async (error: unknown) => {
    throw error instanceof FlashError && error.kind === 'no-answer' ? await explainNoAnswer(error, options.port, target) : error;
  });
  return { target, hex: plan.hex, built: plan.build !== undefined, commands, bytes, log };
}

/** avrdude on PATH (or at the path given). */
export async function avrdudeInstalled(avrdude = 'avrdude'): Promise<boolean> {
  if (!avrdude.includes('/')) return onPath(avrdude);
  return access(avrdude, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * A silent bootloader, with what this machine can tell about why: another process holding the
 * port, or a USB ID that points at another board than the one asked for.
 */
async function explainNoAnswer(error: FlashError, port: string, target: FlashTarget): Promise<FlashError> {
  const holders = await portHolders(port);
  const listed = (await listSerialPorts().catch(() => [])).find((p) => p.path === port);
  const guess = listed && guessBoard(listed);
  const cause = holders.length
    ? `${port} is held open by ${holders.map((h) => `PID ${h.pid} (${h.command.slice(0, 60)})`).join(', ')}: close it and retry`
    : guess && guess.board !== target.board
      ? `${port} looks like ${guess.looksLike}: try --board ${guess.board}`
      : undefined;
  if (!cause) return error;
  return new FlashError(error.kind, error.message, { ...error.details, hint: cause });
}

/** A shell-quoted line for a command, for logs and `--dry-run` output. */
export function commandLine(command: Command): string {
  const quote = (word: string) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`);
  return [command.command, ...command.args].map(quote).join(' ');
}

async function planImage(options: FlashOptions, target: FlashTarget, repoRoot: string): Promise<{ hex: string; build?: Command }> {
  if (options.hex !== undefined) return { hex: options.hex };
  if (options.build === false) return { hex: target.committedHex };
  const missing = await missingToolchain();
  if (missing.length > 0) {
    if (options.build === true) {
      throw new FlashError('toolchain-missing', `cannot build the bridge sketch: missing ${missing.join(', ')}`, { hint: TOOLCHAIN_HINT });
    }
    return { hex: target.committedHex };
  }
  const { command, hex } = bridgeBuild(target, repoRoot, options.bridgeBaud);
  return { hex, build: command };
}

/** Parse the image and refuse one that would run into the bootloader. */
async function imageSize(hexFile: string, target: FlashTarget): Promise<number> {
  let text: string;
  try {
    text = await readFile(hexFile, 'utf8');
  } catch {
    throw new FlashError('hex-missing', `no image at ${hexFile}`);
  }
  let bytes: number;
  try {
    bytes = parseIntelHex(text).length;
  } catch (error) {
    throw new FlashError('hex-missing', `${hexFile} is not an Intel HEX file: ${(error as Error).message}`);
  }
  if (bytes > target.maxSketchBytes) {
    throw new FlashError(
      'sketch-too-large',
      `the sketch is ${bytes} bytes; a ${target.board} has room for ${target.maxSketchBytes} (flash minus the bootloader)`,
    );
  }
  return bytes;
}

/** Fail early, with the right hint, on a port that is missing, not ours to open, or not a tty. */
async function checkPort(port: string): Promise<void> {
  let info;
  try {
    info = await stat(port);
  } catch {
    const listed = await listSerialPorts().catch(() => []);
    throw new FlashError('no-such-port', `no such port: ${port}`, {
      hint: listed.length > 0 ? `serial ports here: ${listed.map(portLine).join('; ')}` : PORT_HINT,
    });
  }
  if (!info.isCharacterDevice()) throw new FlashError('not-a-serial-port', `${port} is not a serial port`, { hint: PORT_HINT });
  try {
    await access(port, constants.R_OK | constants.W_OK);
  } catch {
    throw new FlashError('permission-denied', `permission denied opening ${port}`, { hint: DIALOUT_HINT });
  }
}
