import { FlashError, avrdudeInstalled, flash as flashBoard, type FlashPhase, type FlashTarget } from '../flash/index.js';
import type { Values } from '../node.js';
import { UsageError } from '../options.js';
import { flashTarget, knownBoards } from '../flash/boards.js';
import { boardMismatch, flashHint } from '../flash/hint.js';
import { listSerialPorts } from '../serial-ports.js';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Progress on stderr: what it waits for (the build, the bootloader), then a one-line bar
 * `write  [#########-----------]  45% 12.1/26.9 kB`.
 */
function progressBar(target: FlashTarget, port: string): (phase: FlashPhase, done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  let lastLine = '';
  return (phase, done, total) => {
    if (phase === 'build') {
      process.stderr.write(done === 0 ? 'build  compiling the bridge sketch…\n' : 'build  done\n');
      return;
    }
    if (phase === 'reset') {
      process.stderr.write(`reset  resetting the ${target.title} on ${port} and waiting for its bootloader (${target.bootloader}, ${target.baud} baud)…\n`);
      return;
    }
    const fraction = total ? done / total : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const line = `${phase.padEnd(6)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${(done / 1000).toFixed(1)}/${(total / 1000).toFixed(1)} kB`;
    if (line === lastLine) return;
    lastLine = line;
    if (tty) process.stderr.write(`\r${line}${done >= total ? '\n' : ''}`);
    else if (done >= total || done === 0) process.stderr.write(line + '\n');
  };
}

/** Exit status for a command stopped by a signal: 128 + its number, as shells report it. */
const SIGNAL_EXIT: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };

/** `spinet flash --board uno --port PATH [--dry-run]`. */
export async function flash(values: Values): Promise<number> {
  const port = values.port as string | undefined;
  const board = (values.board as string | undefined) ?? 'uno';
  const known = await knownBoards(REPO_ROOT);
  const boardKnown = known.includes(board);
  if (!port || !boardKnown) {
    // The command is incomplete: say what is plugged in and which --board each port wants.
    const ports = await listSerialPorts().catch(() => []);
    for (const line of flashHint({ ports, avrdudeInstalled: await avrdudeInstalled(), ...(boardKnown ? { board } : {}) })) console.error(line);
    if (!boardKnown) throw new UsageError(`unknown board "${board}": one of ${known.join(', ')}`);
    throw new UsageError('which serial port? --port /dev/ttyACM0 (Uno) or /dev/ttyUSB0 (most Nano clones)');
  }
  const dryRun = Boolean(values['dry-run']);
  if (!dryRun && (await avrdudeInstalled())) {
    const mismatch = boardMismatch((await listSerialPorts().catch(() => [])).find((p) => p.path === port), board);
    if (mismatch) console.error(`note   ${mismatch}`);
  }

  // Ctrl-C or a kill while avrdude runs: stop it and wait for it, so the port is not left held.
  const interrupt = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => interrupt.abort(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result;
  try {
    result = await flashBoard({
      board,
      port,
      ...(values.hex ? { hex: values.hex as string } : {}),
      ...(values['no-build'] ? { build: false } : {}),
      dryRun,
      onProgress: progressBar(await flashTarget(board, REPO_ROOT), port),
      signal: interrupt.signal,
    });
  } catch (error) {
    const signal = interrupt.signal.reason as NodeJS.Signals | undefined;
    if (error instanceof FlashError && error.kind === 'interrupted' && signal) {
      console.error(`spinet flash: interrupted (${signal}): ${error.message}; ${port} is free (flash again: the bootloader is untouched)`);
      return SIGNAL_EXIT[signal] ?? 1;
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (dryRun) {
    console.log(`# board ${result.target.board ?? ''}: would ${result.built ? 'build and ' : ''}upload ${result.hex}`);
    for (const c of result.commands) console.log([c.command, ...c.args].map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' '));
    return 0;
  }
  console.error(`flashed ${result.bytes ?? '?'} bytes to ${port} and verified (${result.built ? 'built from source' : 'committed hex'})`);
  return 0;
}
