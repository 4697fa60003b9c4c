/**
 * The command line's output for programs: --json results on stdout (ping, resolve, the tables of
 * run), progress on stderr only, and `--pcap -` the pcapng stream alone on stdout (what
 * `spinet run --pcap - | wireshark -k -i -` reads) — checked by tshark when it is installed.
 */
import { describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const run = promisify(execFile);

function spinet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [SPINET, ...args], { timeout: 60_000 }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr }));
  });
}

const tshark = await run('tshark', ['--version']).then(() => true, () => false);

describe('spinet --json', () => {
  it('ping --json: one JSON object on stdout, the replies in order; the progress on stderr', async () => {
    const result = await spinet(['ping', '192.0.2.1', '-c', '2', '-i', '0.1', '--json']);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { host: string; transmitted: number; received: number; errors: number; replies: { seq: number; from?: string; ttl?: number }[] };
    expect(report).toMatchObject({ host: '192.0.2.1', address: '192.0.2.1', transmitted: 2, received: 2, errors: 0, lossPercent: 0 });
    expect(report.replies.map((r) => [r.seq, r.from, r.ttl])).toEqual([[1, '192.0.2.1', 64], [2, '192.0.2.1', 64]]);
    expect(result.stderr).toMatch(/^address: 192\.0\.2\.10\/24/m);
  });

  it('ping --json to a host nobody answers: the errors in the object, exit 1', async () => {
    const result = await spinet(['ping', '192.0.2.99', '-c', '1', '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toEqual({ host: '192.0.2.99', address: '192.0.2.99', transmitted: 1, received: 0, errors: 1, lossPercent: 100, replies: [{ seq: 1, error: 'EHOSTUNREACH' }] });
  });

  it('resolve --json', async () => {
    const result = await spinet(['resolve', 'gateway.lan', '--json']);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ name: 'gateway.lan', addresses: [{ address: '192.0.2.1', family: 4 }] });
  });
});

describe('spinet run --pcap -', () => {
  it('writes the pcapng stream, and nothing else, to stdout; the tables go to stderr', async () => {
    const child = spawn(process.execPath, [SPINET, 'run', '--pcap', '-', '--log', 'text'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not up:\n${stderr}`)), 50_000);
      child.stderr.on('data', () => /Ctrl-C to stop/.test(stderr) && (clearTimeout(timer), resolve()));
    });
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(0);
    const bytes = Buffer.concat(out);
    // A pcapng Section Header Block first (block type 0x0A0D0D0A, byte-order magic 0x1A2B3C4D).
    expect(bytes.readUInt32LE(0)).toBe(0x0a0d0d0a);
    expect(bytes.readUInt32LE(8)).toBe(0x1a2b3c4d);
    expect(stderr).toMatch(/capture: every frame to stdout \(pcapng\)/);
    expect(stderr).toMatch(/^Interfaces$/m);
    // The text log moved to stderr with the capture on stdout.
    expect(stderr).toMatch(/ARP/);
    if (!tshark) return;
    const dir = mkdtempSync(join(tmpdir(), 'spinet-pcap-'));
    try {
      writeFileSync(join(dir, 'stdout.pcapng'), bytes);
      const { stdout } = await run('tshark', ['-r', join(dir, 'stdout.pcapng'), '-T', 'fields', '-e', 'arp.src.proto_ipv4']);
      // The gratuitous ARP announcing the board's address.
      expect(stdout.split('\n')).toContain('192.0.2.10');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('is refused where stdout carries the command\'s result', async () => {
    const result = await spinet(['ping', '192.0.2.1', '--pcap', '-']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('spinet ping: --pcap - streams the capture to stdout, where spinet ping prints its result: use --pcap FILE (or spinet run --pcap -) (see `spinet ping --help`)\n');
  });
});
