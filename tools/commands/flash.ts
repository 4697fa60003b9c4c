import { flash as flashBoard, type FlashPhase } from '../flash/index.js';
import type { Values } from '../node.js';
import { UsageError } from '../options.js';
import { knownBoards } from '../flash/boards.js';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A one-line progress bar on stderr: `write  [#########-----------]  45% 12.1/26.9 kB`. */
function progressBar(): (phase: FlashPhase, done: number, total: number) => void {
  const tty = process.stderr.isTTY;
  let lastLine = '';
  return (phase, done, total) => {
    if (phase === 'build') {
      process.stderr.write(done === 0 ? 'build  compiling the bridge sketch…\n' : 'build  done\n');
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

/** `spinet flash --board uno --port PATH [--dry-run]`. */
export async function flash(values: Values): Promise<number> {
  const port = values.port as string | undefined;
  if (!port) throw new UsageError('which serial port? --port /dev/ttyACM0 (Uno) or /dev/ttyUSB0 (most Nano clones)');
  const board = (values.board as string | undefined) ?? 'uno';
  const known = await knownBoards(REPO_ROOT);
  if (!known.includes(board)) throw new UsageError(`unknown board "${board}": one of ${known.join(', ')}`);
  const result = await flashBoard({
    board,
    port,
    ...(values.hex ? { hex: values.hex as string } : {}),
    ...(values['no-build'] ? { build: false } : {}),
    dryRun: Boolean(values['dry-run']),
    onProgress: progressBar(),
  });
  if (values['dry-run']) {
    console.log(`# board ${result.target.board ?? ''}: would ${result.built ? 'build and ' : ''}upload ${result.hex}`);
    for (const c of result.commands) console.log([c.command, ...c.args].map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' '));
    return 0;
  }
  console.error(`flashed ${result.bytes ?? '?'} bytes to ${port} and verified (${result.built ? 'built from source' : 'committed hex'})`);
  return 0;
}
