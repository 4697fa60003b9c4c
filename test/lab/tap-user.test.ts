/**
 * No root for the LAN: `--lan tap:IF` attaches to a persistent TAP that root made once for a user
 * (`ip tuntap add dev IF mode tap user U`), and spinet runs as that ordinary user. Here the TAP
 * lives in a throw-away namespace, is owned by `nobody`, and spinet runs as nobody (setpriv) —
 * pinging the kernel and answering its pings. /dev/net/tun is root's only on this machine, so the
 * test gives nobody a clone device of its own (SPINET_TUN_DEVICE), as a desktop's 0666 one would.
 * Needs root, python3, setpriv, ping.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, execInNetns, skipLabUnless, waitFor } from './netns.js';

const run = promisify(execFile);
const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const NOBODY = 65534;
const skip = await skipLabUnless(['ping', 'python3', 'setpriv']);
const NETNS = `spinet-lab-${process.pid}-141`;
const TAP = 'spu0';

describe.skipIf(skip)('--lan tap:IF on a persistent TAP, spinet as an unprivileged user', () => {
  let dir: string;
  let tun: string;
  const asUser = (uid: number, args: string[]) =>
    execInNetns(NETNS, 'setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', 'env', `SPINET_TUN_DEVICE=${tun}`, process.execPath, SPINET, ...args], '', 60_000);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'spinet-tun-'));
    chmodSync(dir, 0o755);
    tun = join(dir, 'tun');
    await run('mknod', ['-m', '0666', tun, 'c', '10', '200']);
    await run('ip', ['netns', 'add', NETNS]);
    const ip = (...args: string[]) => run('ip', ['-n', NETNS, ...args]);
    await ip('link', 'set', 'lo', 'up');
    // What the administrator does once.
    await ip('tuntap', 'add', 'dev', TAP, 'mode', 'tap', 'user', String(NOBODY));
    await ip('link', 'set', TAP, 'up');
    await ip('addr', 'add', `${LAB_HOST_ADDRESS}/24`, 'dev', TAP);
  });

  afterAll(async () => {
    await run('ip', ['netns', 'del', NETNS]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  it('pings the kernel as nobody, and leaves the TAP in place', async () => {
    const result = await asUser(NOBODY, ['ping', LAB_HOST_ADDRESS, '-c', '3', '-i', '0.2', '--lan', `tap:${TAP}`, '--ip', `${LAB_STACK_ADDRESS}/24`]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toMatch(/3 packets transmitted, 3 received/);
    const link = await execInNetns(NETNS, 'ip', ['-o', 'link', 'show', TAP]);
    expect(link.code).toBe(0);
  }, 60_000);

  it('is pinged by the kernel while spinet run holds the TAP as nobody', async () => {
    const child = spawn('ip', ['netns', 'exec', NETNS, 'setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'env', `SPINET_TUN_DEVICE=${tun}`,
      process.execPath, SPINET, 'run', '--lan', `tap:${TAP}`, '--ip', `${LAB_STACK_ADDRESS}/24`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
    try {
      await waitFor(() => /Ctrl-C to stop/.test(output), 30_000, 'spinet run up');
      const ping = await execInNetns(NETNS, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
      expect(ping.stdout.toString(), output).toMatch(/2 packets transmitted, 2 received/);
      child.kill('SIGINT');
      expect(await exited, output).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('says, in one line, what is wrong for another user, and for --tap-addr on a TAP it does not configure', async () => {
    const other = await asUser(NOBODY - 1, ['ping', LAB_HOST_ADDRESS, '-c', '1', '--lan', `tap:${TAP}`, '--ip', `${LAB_STACK_ADDRESS}/24`]);
    expect(other.code).toBe(1);
    expect(other.stderr.trimEnd().split('\n').at(-1)).toBe(`spinet ping: EPERM: TAP ${TAP} belongs to uid ${NOBODY}, not to you (uid ${NOBODY - 1}): sudo ip tuntap del dev ${TAP} mode tap && sudo ip tuntap add dev ${TAP} mode tap user $USER`);
    const configure = await asUser(NOBODY, ['ping', LAB_HOST_ADDRESS, '-c', '1', '--lan', `tap:${TAP}`, '--tap-addr', '192.0.2.1/24', '--ip', `${LAB_STACK_ADDRESS}/24`]);
    expect(configure.code).toBe(1);
    expect(configure.stderr.trimEnd().split('\n').at(-1)).toBe(`spinet ping: EINVAL: ${TAP} is an existing persistent TAP: spinet does not configure it; give its address as root (sudo ip addr add A/N dev ${TAP}) and drop --tap-addr`);
  }, 60_000);
});
