/**
 * Where the bridge image comes from: built from boards/bridge/bridge.ino with the bridge's
 * Makefile (Debian's gcc-avr + arduino-mk) when that toolchain is installed, else the hex
 * committed next to the sketch (boards/bridge/<board>.hex, refreshed by boards/bridge/build.sh).
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { FlashError } from './errors.js';
import type { FlashTarget } from './boards.js';

export interface Command {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
}

/** arduino-mk's entry point; the bridge Makefile includes it. */
const ARDUINO_MK = '/usr/share/arduino/Arduino.mk';
export const DEFAULT_BRIDGE_BAUD = 1_000_000;

export function bridgeBuild(target: FlashTarget, repoRoot: string, bridgeBaud = DEFAULT_BRIDGE_BAUD): { command: Command; hex: string } {
  const dir = join(repoRoot, 'boards', 'bridge');
  return {
    command: { command: 'make', args: ['-s', '-C', dir, `BOARD=${target.buildBoard}`, `BRIDGE_BAUD=${bridgeBaud}`] },
    // The Makefile's OBJDIR.
    hex: join(dir, 'build', `${target.buildBoard}-${bridgeBaud}`, 'bridge.hex'),
  };
}

/** What is missing for a build from source (empty: the toolchain is there). */
export async function missingToolchain(): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of ['make', 'avr-gcc', 'avr-objcopy']) if (!(await onPath(tool))) missing.push(tool);
  if (!(await exists(ARDUINO_MK))) missing.push(ARDUINO_MK);
  return missing;
}

export const TOOLCHAIN_HINT = 'sudo apt-get install gcc-avr avr-libc arduino-core-avr arduino-mk make';

/** Run the build; on `signal`, make is stopped (GNU make passes SIGTERM on to its compilers) and waited for. */
export function runBuild(command: Command, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command.command, [...command.args], { cwd: command.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const onAbort = () => child.kill('SIGTERM');
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    child.once('close', () => signal?.removeEventListener('abort', onAbort));
    let output = '';
    child.stdout.on('data', (data: Buffer) => (output += data.toString('utf8')));
    child.stderr.on('data', (data: Buffer) => (output += data.toString('utf8')));
    child.once('error', (error) =>
      reject(new FlashError('toolchain-missing', `could not run ${command.command}: ${error.message}`, { hint: TOOLCHAIN_HINT })),
    );
    child.once('close', (code) => {
      if (signal?.aborted) reject(new FlashError('interrupted', 'the build stopped'));
      else if (code === 0) resolve();
      else
        reject(
          new FlashError('build-failed', `building the bridge sketch failed (exit ${code})`, {
            output: output.trimEnd().split('\n').slice(-30).join('\n'),
            exitCode: code,
            hint: 'Flash the committed image instead with build: false (spinet flash --no-build).',
          }),
        );
    });
  });
}

export async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && (await exists(join(dir, tool), constants.X_OK))) return true;
  }
  return false;
}

async function exists(path: string, mode = constants.F_OK): Promise<boolean> {
  try {
    await access(path, mode);
    return true;
  } catch {
    return false;
  }
}
