/**
 * The CLI against the Linux kernel: `spinet` itself runs inside a throw-away network namespace,
 * where `--lan tap:IF --tap-addr 192.0.2.1/24` creates the TAP and gives the kernel's side its
 * address — so nothing outside the namespace is touched. Needs root, /dev/net/tun, socat, ip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { execInNetns, labUnavailableReason } from '../lab/netns.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const run = promisify(execFile);
const reason = await labUnavailableReason(['socat', 'ping', 'curl']);
if (reason) console.warn(`test/cli/cli-lab.test.ts: ${reason}`);

let ns = '';
let dir = '';

const inNs = (command: string, args: string[], input?: Buffer, timeoutMs = 60_000) => execInNetns(ns, command, args, input, timeoutMs);

function spinetInNs(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null>; waitFor(p: RegExp, ms: number): Promise<void> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, SPINET, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => text,
    exit,
    waitFor: async (pattern, ms) => {
      const deadline = Date.now() + ms;
      while (!pattern.test(text)) {
        if (child.exitCode !== null) throw new Error(`spinet exited (${child.exitCode}) before ${pattern}:\n${text}`);
        if (Date.now() > deadline) throw new Error(`no ${pattern} within ${ms} ms:\n${text}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

describe.skipIf(reason)('spinet CLI with the Linux kernel as the peer (inside a network namespace)', () => {
  beforeAll(async () => {
    ns = `spinet-cli-${process.pid}`;
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    await run('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    dir = mkdtempSync(join(tmpdir(), 'spinet-cli-lab-'));
  });
  afterAll(async () => {
    if (ns) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('spinet ping: the kernel answers, RTTs printed, exit 0', async () => {
    const ping = spinetInNs(['ping', '192.0.2.1', '-c', '3', '-i', '0.2', '--lan', 'tap:spt0', '--tap-addr', '192.0.2.1/24', '--ip', '192.0.2.10/24']);
    expect(await ping.exit, ping.output()).toBe(0);
    expect(ping.output()).toMatch(/LAN: TAP device spt0 \(Linux side 192\.0\.2\.1\/24\)/);
    expect(ping.output()).toMatch(/64 bytes from 192\.0\.2\.1: icmp_seq=1 ttl=64 time=/);
    expect(ping.output()).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
    // socat stopped with the command: the TAP is gone again.
    const links = await inNs('ip', ['-o', 'link']);
    expect(links.stdout.toString()).not.toContain('spt0');
  }, 60_000);

  it('spinet run --board sim: the kernel pings the simulated Uno, curls its status page and echoes 64 KiB; Ctrl-C is clean; the pcapng reads in tshark', async () => {
    const pcap = join(dir, 'sim.pcapng');
    const node = spinetInNs(['run', '--board', 'sim', '--lan', 'tap:spt1', '--tap-addr', '192.0.2.1/24', '--ip', '192.0.2.10/24', '--serve', 'http:80', '--serve', 'echo:7', '--pcap', pcap]);
    try {
      await node.waitFor(/up: .*Ctrl-C to stop/, 60_000);
      expect(node.output()).toMatch(/board: simulated Uno \(avr8js\)/);
      const ping = await inNs('ping', ['-c', '3', '-i', '0.3', '-W', '5', '192.0.2.10']);
      expect(ping.stdout.toString()).toMatch(/3 packets transmitted, 3 received/);
      const curl = await inNs('curl', ['-sS', '--max-time', '60', 'http://192.0.2.10/']);
      expect(curl.code, curl.stderr).toBe(0);
      expect(curl.stdout.toString()).toContain('<h1>spinet');
      expect(curl.stdout.toString()).toContain('<dt>Address</dt><dd>192.0.2.10/24</dd>');
      expect(curl.stdout.toString()).toContain('<dt>Link</dt><dd class="up">up</dd>');
      const data = randomBytes(64 * 1024);
      const echo = await inNs('socat', ['-t', '30', '-T', '60', '-', 'TCP:192.0.2.10:7'], data, 120_000);
      expect(echo.stdout.length, echo.stderr).toBe(data.length);
      expect(createHash('sha256').update(echo.stdout).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
      node.child.kill('SIGINT');
      expect(await node.exit, node.output()).toBe(0);
      expect(node.output()).toMatch(/SIGINT: shutting down/);
      expect(node.output()).toMatch(/Sockets[\s\S]*tcp/);
      const header = readFileSync(pcap);
      expect(header.readUInt32LE(0)).toBe(0x0a0d0d0a);
      const { stdout } = await run('tshark', ['-r', pcap, '-q', '-z', 'io,phs']);
      expect(stdout).toMatch(/tcp +frames:\d+/);
      expect(stdout).toMatch(/icmp +frames:6/);
      expect(stdout).toMatch(/http +frames:\d+/);
    } finally {
      if (node.child.exitCode === null) node.child.kill('SIGKILL');
    }
  }, 240_000);
});
