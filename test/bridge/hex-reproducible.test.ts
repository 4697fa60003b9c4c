/**
 * The committed boards/bridge/*.hex are what the source builds to: `build.sh --check` rebuilds the
 * sketch for every board with Debian's toolchain (gcc-avr, avr-libc, arduino-core-avr,
 * arduino-mk) in a scratch directory and compares byte for byte.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { findExecutable } from '../../hal/lan/tap.js';

const BUILD = fileURLToPath(new URL('../../boards/bridge/build.sh', import.meta.url));
const ARDUINO_MK = '/usr/share/arduino/Arduino.mk';

async function toolchainMissing(): Promise<string | false> {
  const missing: string[] = [];
  for (const tool of ['avr-gcc', 'avr-objcopy', 'make']) if (!(await findExecutable(tool))) missing.push(tool);
  if (!existsSync(ARDUINO_MK)) missing.push(ARDUINO_MK);
  if (missing.length === 0) return false;
  const reason = `hex reproducibility check skipped: ${missing.join(', ')} missing (apt-get install -y gcc-avr avr-libc arduino-core-avr arduino-mk)`;
  console.warn(reason);
  return reason;
}

const skip = await toolchainMissing();

describe.skipIf(skip)('the committed bridge hex files', () => {
  it('are reproduced byte for byte by rebuilding the sketch with the Debian toolchain', async () => {
    const { stdout } = await promisify(execFile)('sh', [BUILD, '--check'], { timeout: 170_000, maxBuffer: 1 << 22 }).catch((error: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`build.sh --check failed: ${error.message}\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    });
    expect(stdout.trim().split('\n')).toEqual(['uno: identical', 'nano: identical', 'mega2560: identical']);
  }, 180_000);
});
