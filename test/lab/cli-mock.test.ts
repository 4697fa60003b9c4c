/**
 * `spinet run --board mock --chip enc28j60` against the Linux kernel: the whole stack over the
 * ENC28J60 driver → mock HAL → emulated chip, its cable a TAP. spinet itself runs inside a
 * throw-away namespace, where `--lan tap:IF --tap-addr 192.0.2.1/24` creates the TAP and gives the
 * kernel's side its address, so nothing outside the namespace is touched. Needs root,
 * /dev/net/tun, socat, ip, ping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, execInNetns, skipLabUnless, startSpinetIn } from './netns.js';

const run = promisify(execFile);
const skip = await skipLabUnless(['ping', 'socat']);
// The lab's naming pattern, so a namespace left by a killed run is removed by the next createLab().
const NETNS = `spinet-lab-${process.pid}-900`;

const inNetns = (command: string, args: readonly string[], input?: Uint8Array | string) => execInNetns(NETNS, command, args, input);

describe.skipIf(skip)('spinet run --board mock --chip enc28j60 with the kernel as the peer', () => {
  let spinet: ChildProcess | undefined;

  beforeAll(async () => {
    await run('ip', ['netns', 'add', NETNS]);
    await run('ip', ['netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up']);
    await run('ip', ['netns', 'exec', NETNS, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  });

  afterAll(async () => {
    if (spinet && spinet.exitCode === null && spinet.signalCode === null) spinet.kill('SIGKILL');
    await run('ip', ['netns', 'del', NETNS]).catch(() => undefined);
  });

  it('is pinged by the kernel, echoes UDP to socat (fragmented too), and exits 0 on SIGINT with its tables', async () => {
    const started = await startSpinetIn(NETNS, ['run', '--board', 'mock', '--chip', 'enc28j60',
      '--lan', 'tap:spm0', '--tap-addr', `${LAB_HOST_ADDRESS}/24`, '--ip', `${LAB_STACK_ADDRESS}/24`, '--serve', 'echo:7']);
    spinet = started.child;
    const child = spinet;
    expect(started.output()).toMatch(/ENC28J60 driver → mock HAL → emulated ENC28J60/);
    expect(started.output()).toMatch(/LAN: TAP device spm0 \(Linux side 192\.0\.2\.1\/24\)/);

    const ping = await inNetns('ping', ['-c', '3', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
    expect(ping.stdout.toString(), started.output()).toMatch(/3 packets transmitted, 3 received/);

    // UDP echo (RFC 862) from socat: a line, then a datagram the kernel fragments and the stack
    // reassembles through the chip's receive ring, echoed back in fragments.
    const line = await inNetns('socat', ['-t', '1', '-T', '3', '-', `UDP4:${LAB_STACK_ADDRESS}:7`], 'hello over the ENC28J60\n');
    expect(line.stdout.toString(), line.stderr).toBe('hello over the ENC28J60\n');
    const big = randomBytes(3000);
    const bigEcho = await inNetns('socat', ['-t', '1', '-T', '3', '-', `UDP4:${LAB_STACK_ADDRESS}:7`], big);
    expect(bigEcho.stdout.equals(big), `${bigEcho.stdout.length} bytes back; ${bigEcho.stderr}`).toBe(true);

    child.kill('SIGINT');
    expect(await started.exited, started.output()).toBe(0);
    expect(started.output()).toMatch(/SIGINT: shutting down/);
    // 3 pings, 1 + 3 fragments of UDP each way, and ARP: all through the chip.
    const row = /Interfaces\n.*\n1 +eth0 +02:5e:00:00:00:0a +1500 +up +192\.0\.2\.10\/24 +(\d+) +(\d+)/.exec(started.output());
    expect(row, started.output()).not.toBeNull();
    expect(Number(row![1])).toBeGreaterThanOrEqual(7);
    expect(Number(row![2])).toBeGreaterThanOrEqual(7);
    expect(started.output()).toMatch(/ARP cache\n.*\n192\.0\.2\.1 /);
    expect(started.output()).not.toMatch(/driver misuse/);
    // socat took the TAP down with it.
    const links = await inNetns('ip', ['-o', 'link']);
    expect(links.stdout.toString()).not.toContain('spm0');
  }, 90_000);
});
