/**
 * The W5500 against the Linux kernel over the TAP lab. First `spinet run --board mock --chip w5500`
 * as a user runs it (the W5500 driver → mock HAL → strict emulated W5500, its cable a TAP in a
 * throw-away namespace): the kernel pings it (small and fragmented), echoes UDP through it (a line
 * and a fragmented datagram), curls its status page and pushes 1 MiB through its TCP echo. Then the
 * same chip under a stack of ours on a lossy, reordering, duplicating cable: 1 MiB each way to a
 * kernel echo server. Needs root, /dev/net/tun, socat, curl, ping, ss.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createLab, execInNetns, skipLabUnless, waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { digest, echoThroughKernel, pattern } from './kernel-echo.js';
import { ImpairedLan } from '../../hal/lan/impairment.js';
import { createMockW5500Board, type MockW5500Board } from '../../tools/boards.js';
import { Stack } from '../../src/stack/stack.js';
import { Tcp } from '../../src/tcp/tcp.js';
import { createNet, type Net } from '../../src/socket/net.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { parseMac } from '../../src/wire/address.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const run = promisify(execFile);
const skip = await skipLabUnless(['ping', 'socat', 'curl', 'ss']);
const MIB = 1 << 20;
// The lab's naming pattern, so a namespace left by a killed run is removed by the next createLab().
const NETNS = `spinet-lab-${process.pid}-955`;

const inNetns = (command: string, args: readonly string[], input?: Uint8Array | string, timeoutMs?: number) => execInNetns(NETNS, command, args, input, timeoutMs);

describe.skipIf(skip)('spinet run --board mock --chip w5500 with the kernel as the peer', () => {
  let spinet: ChildProcess | undefined;
  let output = '';
  let exited: Promise<number | null>;

  beforeAll(async () => {
    await run('ip', ['netns', 'add', NETNS]);
    await run('ip', ['netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up']);
    await run('ip', ['netns', 'exec', NETNS, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    spinet = spawn(
      'ip',
      ['netns', 'exec', NETNS, process.execPath, SPINET, 'run', '--board', 'mock', '--chip', 'w5500',
        '--lan', 'tap:spw0', '--tap-addr', `${LAB_HOST_ADDRESS}/24`, '--ip', `${LAB_STACK_ADDRESS}/24`, '--serve', 'echo:7', '--serve', 'http:80'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    spinet.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    spinet.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const child = spinet;
    exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`spinet exited (${child.exitCode}) before it was up:\n${output}`);
      return /up: .*Ctrl-C to stop/.test(output);
    }, 30_000, `spinet up:\n${output}`);
  }, 60_000);

  afterAll(async () => {
    if (spinet && spinet.exitCode === null && spinet.signalCode === null) spinet.kill('SIGKILL');
    await run('ip', ['netns', 'del', NETNS]).catch(() => undefined);
  });

  it('comes up on the W5500 and is pinged by the kernel', async () => {
    expect(output).toMatch(/board: W5500 driver → mock HAL → emulated W5500, MAC 02:5e:00:00:00:0a, link up/);
    const ping = await inNetns('ping', ['-c', '3', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
    expect(ping.stdout.toString(), output).toMatch(/3 packets transmitted, 3 received/);
  });

  it('answers a 4000-byte ping: three fragments in through the chip, three out', async () => {
    const ping = await inNetns('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', LAB_STACK_ADDRESS]);
    expect(ping.stdout.toString()).toMatch(/4008 bytes from 192\.0\.2\.10/);
    expect(ping.stdout.toString()).toMatch(/2 packets transmitted, 2 received/);
  });

  it('echoes UDP to socat: a line, and a datagram the kernel fragments', async () => {
    const line = await inNetns('socat', ['-t', '1', '-T', '3', '-', `UDP4:${LAB_STACK_ADDRESS}:7`], 'hello over the W5500\n');
    expect(line.stdout.toString(), line.stderr).toBe('hello over the W5500\n');
    const big = randomBytes(3000);
    const bigEcho = await inNetns('socat', ['-t', '1', '-T', '3', '-', `UDP4:${LAB_STACK_ADDRESS}:7`], big);
    expect(bigEcho.stdout.equals(big), `${bigEcho.stdout.length} bytes back; ${bigEcho.stderr}`).toBe(true);
  });

  it('serves its status page to curl', async () => {
    const page = await inNetns('curl', ['-sS', '--max-time', '10', `http://${LAB_STACK_ADDRESS}/`]);
    expect(page.stderr).toBe('');
    expect(page.stdout.toString()).toContain('<h1>spinet');
    expect(page.stdout.toString()).toContain(`<dt>Address</dt><dd>${LAB_STACK_ADDRESS}/24</dd>`);
    expect(page.stdout.toString()).toContain('<dt>Link</dt><dd class="up">up</dd>');
  });

  it('echoes 1 MiB of TCP from the kernel, hash-equal: 1 MiB through the chip each way', async () => {
    const data = randomBytes(MIB);
    const echo = await inNetns('socat', ['-t', '20', '-T', '20', '-', `TCP:${LAB_STACK_ADDRESS}:7`], data, 60_000);
    expect(echo.stdout.length, echo.stderr).toBe(data.length);
    expect(digest(echo.stdout)).toBe(digest(data));
  }, 90_000);

  it('exits 0 on SIGINT with its tables, with no driver misuse reported by the strict emulator', async () => {
    spinet!.kill('SIGINT');
    expect(await exited, output).toBe(0);
    expect(output).toMatch(/SIGINT: shutting down/);
    const row = /Interfaces\n.*\n1 +eth0 +02:5e:00:00:00:0a +1500 +up +192\.0\.2\.10\/24 +(\d+) +(\d+)/.exec(output);
    expect(row, output).not.toBeNull();
    expect(Number(row![1])).toBeGreaterThan(MIB / 1500);
    expect(Number(row![2])).toBeGreaterThan(MIB / 1500);
    expect(output).not.toMatch(/driver misuse/);
  });
});

describe.skipIf(skip)('spinet TCP on the W5500 (driver → mock HAL → emulated chip) ⇄ Linux kernel TCP, on a lossy cable', () => {
  let lab: Lab;
  let stack: Stack;
  let net: Net;
  let lan: ImpairedLan;
  let board: MockW5500Board;
  const violations: string[] = [];

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const random = new CryptoRandom();
    lan = new ImpairedLan(clock, { seed: 13 });
    // The chip's own cable loses, reorders and duplicates frames each way.
    const impairment = { loss: 0.02, reorder: 0.02, duplicate: 0.01, reorderHoldMs: 2 };
    lan.impair('w5500', { toPort: impairment, fromPort: impairment });
    lab.tap.attachTo(lan);
    board = createMockW5500Board({ clock, lan, mac: parseMac('02:00:00:00:5e:0e'), strict: true, onStrictViolation: (m) => violations.push(m) });
    stack = new Stack({ clock, random });
    stack.addInterface(board.nic).addAddress(LAB_STACK_ADDRESS, 24);
    const tcp = new Tcp(stack.ip, clock, random);
    stack.registerTransport(tcp);
    await stack.start();
    net = createNet(tcp);
  });

  afterAll(async () => {
    await stack?.stop();
    board?.emulator.unplug();
    await board?.hal.close();
    await lab?.close();
  });

  it('sends 1 MiB to a kernel echo server and reads back the same bytes, recovering every lost segment', async () => {
    const data = pattern(MIB);
    const echoed = await echoThroughKernel(lab, net, data);
    expect(echoed.length).toBe(data.length);
    expect(digest(echoed)).toBe(digest(data));
    const stats = lan.impairmentStats('w5500')!;
    expect(stats.toPort.lost + stats.fromPort.lost).toBeGreaterThan(0);
    expect(stats.toPort.reordered + stats.fromPort.reordered).toBeGreaterThan(0);
    expect(board.nic.stats().rxFrames).toBeGreaterThan(MIB / 1500);
    expect(board.nic.stats().txFrames).toBeGreaterThan(MIB / 1500);
    expect(violations).toEqual([]);
  }, 120_000);
});
