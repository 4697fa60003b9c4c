/**
 * The command line's promises to a user who gets something wrong: one line naming the cause and
 * the fix, exit 2 for usage and 1 for what went wrong at run time, never a stack trace; --port
 * means a real board (and SPINET_PORT stands for it); `spinet sim --pty` never replaces a file;
 * `spinet start` moves off a default port that is taken. Run as a user would: child processes of
 * tools/spinet.mjs.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function spinet(args: string[], env: Record<string, string> = {}, timeout = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SPINET, ...args], { env: { ...process.env, ...env }, timeout }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The last line of stderr: the error, after any progress lines. */
const lastLine = (stderr: string) => stderr.trimEnd().split('\n').at(-1);

describe('spinet: version and usage errors', () => {
  it('--version prints the package version', async () => {
    const result = await spinet(['--version']);
    expect(result).toEqual({ code: 0, stdout: `spinet ${VERSION}\n`, stderr: '' });
  });

  it('an unknown command is one line pointing at --help, exit 2', async () => {
    const result = await spinet(['pnig', '192.0.2.1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("spinet: unknown command 'pnig' (see `spinet --help`)\n");
  });

  it('a bad option value is one line, not the whole help', async () => {
    const result = await spinet(['run', '--lan', 'wifi']);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n')).toHaveLength(2);
    expect(result.stderr).toMatch(/^spinet run: --lan .* \(see `spinet run --help`\)\n$/);
  });
});

describe('spinet: --port means a real board', () => {
  it('--port alone opens a serial board: a path that is not a serial port is said so, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-port-'));
    try {
      const file = join(dir, 'not-a-tty');
      writeFileSync(file, '');
      for (const port of ['/dev/null', file]) {
        const result = await spinet(['ping', '192.0.2.1', '--port', port, '--ip', '192.0.2.10/24']);
        expect(result.code, result.stderr).toBe(1);
        expect(result.stderr).toMatch(new RegExp(`^board: opening ${port.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} at 1000000 baud…$`, 'm'));
        expect(lastLine(result.stderr)).toBe(`spinet ping: ENOTTY: ${port} is not a serial port: give the board's port, e.g. /dev/ttyACM0 (spinet ports lists them)`);
        expect(result.stderr).not.toMatch(/^\s+at /m);
      }
      const missing = await spinet(['ping', '192.0.2.1', '--port', join(dir, 'ttyACM9'), '--ip', '192.0.2.10/24']);
      expect(missing.code).toBe(1);
      expect(lastLine(missing.stderr)).toBe(`spinet ping: ENOENT: no such port ${join(dir, 'ttyACM9')}: is the board plugged in? (ls /dev/ttyACM* /dev/ttyUSB*)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('SPINET_PORT stands for --port; --port with another board is a usage error', async () => {
    const env = await spinet(['ping', '192.0.2.1', '--ip', '192.0.2.10/24'], { SPINET_PORT: '/dev/null' });
    expect(env.code).toBe(1);
    expect(lastLine(env.stderr)).toMatch(/^spinet ping: ENOTTY: \/dev\/null is not a serial port/);
    // An explicit simulated board is not overridden by the environment.
    const mock = await spinet(['ping', '192.0.2.1', '-c', '1', '--board', 'mock'], { SPINET_PORT: '/dev/null' });
    expect(mock.code, mock.stderr).toBe(0);
    const both = await spinet(['ping', '192.0.2.1', '--board', 'sim', '--port', '/dev/ttyACM0']);
    expect(both.code).toBe(2);
    expect(both.stderr).toBe("spinet ping: --port is a real board's serial port, and --board sim has none: drop --port (or --board sim) (see `spinet ping --help`)\n");
  });
});

describe('spinet: a missing Debian tool', () => {
  // spinet's own node by its full path; the tools it starts are looked up on an empty PATH.
  const withoutTools = { PATH: '/nonexistent' };

  it('spinet sim --pty without socat: one line with the install command, exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-nosocat-'));
    try {
      const result = await spinet(['sim', '--pty', join(dir, 'uno')], withoutTools);
      expect(result.code).toBe(1);
      expect(lastLine(result.stderr)).toBe('spinet sim: ENOENT: socat not found: install it (sudo apt-get install socat), it makes the pseudo-terminal');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('spinet flash without avrdude: one line with the install command, exit 1', async () => {
    const result = await spinet(['flash', '--port', '/dev/null', '--no-build'], withoutTools);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('spinet flash: ENOENT: avrdude is not installed: sudo apt-get install avrdude\n');
  });
});

describe('spinet sim --pty', () => {
  it('never replaces an existing file or a live link', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-pty-'));
    try {
      const file = join(dir, 'notes.txt');
      writeFileSync(file, 'keep me');
      const result = await spinet(['sim', '--pty', file]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`spinet sim: --pty ${file} exists and is not a link this command made; it is never replaced: pick a path that does not exist (see \`spinet sim --help\`)\n`);
      expect(readFileSync(file, 'utf8')).toBe('keep me');
      const link = join(dir, 'tty');
      symlinkSync(file, link);
      const linked = await spinet(['sim', '--pty', link]);
      expect(linked.code).toBe(2);
      expect(linked.stderr).toMatch(/--pty .*tty exists \(a link to .*notes\.txt\); it is never replaced/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('spinet start', () => {
  it('takes a free port when its default one is taken, and says so', async () => {
    // Hold 8080 if nobody does; if somebody does, it is taken all the same.
    const holder = createServer();
    await new Promise<void>((resolve) => holder.once('error', () => resolve()).listen(8080, '127.0.0.1', () => resolve()));
    try {
      const child = execFile(process.execPath, [SPINET, 'start', '--board', 'virtual', '--echo-port', '0'], { timeout: 60_000 });
      let output = '';
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not up:\n${output}`)), 50_000);
        child.stdout!.on('data', () => /Ctrl-C to stop/.test(output) && (clearTimeout(timer), resolve()));
      });
      const moved = /127\.0\.0\.1:8080 is in use \(--http-port's default\): forwarding 127\.0\.0\.1:(\d+) instead/.exec(output);
      expect(moved, output).not.toBeNull();
      expect(output).toContain(`curl http://127.0.0.1:${moved![1]}/`);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      holder.close();
    }
  }, 90_000);
});
