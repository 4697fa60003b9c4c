/**
 * The CLI's DNS and DHCP: `spinet resolve` on the built-in simulated LAN (no root), and
 * `spinet run --dhcp` inside a throw-away namespace against dnsmasq there (root): spinet's
 * `--lan tap:IF --tap-addr 192.0.2.1/24` creates the TAP in the namespace, dnsmasq serves it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { skipLabUnless, waitFor } from './netns.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const execFileAsync = promisify(execFile);

interface Spawned {
  readonly child: ChildProcess;
  output(): string;
  readonly exit: Promise<number | null>;
}

function spawnCollecting(command: string, args: readonly string[]): Spawned {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (text += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (text += d));
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => text, exit };
}

async function spinet(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const result = await execFileAsync(process.execPath, [SPINET, ...args], { timeout: 60_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code ?? null, stdout: error.stdout ?? '', stderr: error.stderr ?? '' }),
  );
  return result;
}

describe('spinet resolve on the built-in simulated LAN (virtual board)', () => {
  it('resolve gateway.lan prints the gateway’s address and exits 0', async () => {
    const { code, stdout, stderr } = await spinet(['resolve', 'gateway.lan']);
    expect(code, stderr).toBe(0);
    expect(stdout).toBe('gateway.lan\tA\t192.0.2.1\n');
    expect(stderr).toMatch(/asking 192\.0\.2\.1/);
  });

  it('an IPv4 literal is its own answer: no server is asked', async () => {
    const { code, stdout, stderr } = await spinet(['resolve', '192.0.2.77']);
    expect(code, stderr).toBe(0);
    expect(stdout).toBe('192.0.2.77\tA\t192.0.2.77\n');
    expect(stderr).not.toMatch(/asking/);
  });

  it('resolve --dhcp leases from the gateway; --lease-file makes the next run ask for that address again (INIT-REBOOT)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-lease-'));
    const leaseFile = join(dir, 'lease.json');
    try {
      const first = await spinet(['resolve', 'www.lan', '--dhcp', '--hostname', 'board1', '--lease-file', leaseFile]);
      expect(first.code, first.stderr).toBe(0);
      expect(first.stdout).toBe('www.lan\tA\t192.0.2.1\n');
      expect(first.stderr).toMatch(/lease file .*: no lease remembered yet/);
      expect(first.stderr).toMatch(/DHCP: DISCOVER broadcast/);
      const bound = /DHCP: bound (192\.0\.2\.\d+)\/24 from 192\.0\.2\.1/.exec(first.stderr);
      expect(bound, first.stderr).not.toBeNull();
      const saved = JSON.parse(readFileSync(leaseFile, 'utf8')) as { address: string; mac: string; expiresAtEpochMs: number };
      expect(saved.address).toBe(bound![1]);
      // the gateway leases for an hour
      expect(saved.expiresAtEpochMs - Date.now()).toBeGreaterThan(3_500_000);
      expect(saved.expiresAtEpochMs - Date.now()).toBeLessThanOrEqual(3_600_000);

      // Another address than the pool's first, so only INIT-REBOOT can give it back.
      writeFileSync(leaseFile, JSON.stringify({ ...saved, address: '192.0.2.150' }));
      const second = await spinet(['resolve', 'gateway.lan', '--dhcp', '--lease-file', leaseFile]);
      expect(second.code, second.stderr).toBe(0);
      expect(second.stdout).toBe('gateway.lan\tA\t192.0.2.1\n');
      expect(second.stderr).toMatch(/asking for 192\.0\.2\.150 again/);
      expect(second.stderr).toMatch(/REQUEST for 192\.0\.2\.150 \(INIT-REBOOT\)/);
      expect(second.stderr).not.toMatch(/DISCOVER/);
      expect(second.stderr).toMatch(/DHCP: bound 192\.0\.2\.150\/24/);

      // A lease that has run out is not asked for.
      writeFileSync(leaseFile, JSON.stringify({ ...saved, address: '192.0.2.150', expiresAtEpochMs: Date.now() - 1 }));
      const third = await spinet(['resolve', 'gateway.lan', '--dhcp', '--lease-file', leaseFile]);
      expect(third.code, third.stderr).toBe(0);
      expect(third.stderr).toMatch(/the lease of 192\.0\.2\.150 has run out/);
      expect(third.stderr).toMatch(/DHCP: DISCOVER broadcast/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);

  it('resolve nosuch.lan exits non-zero with ENOTFOUND', async () => {
    const { code, stdout, stderr } = await spinet(['resolve', 'nosuch.lan']);
    expect(code).not.toBe(0);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/spinet resolve: ENOTFOUND: .*nosuch\.lan/);
  });
});

const skip = await skipLabUnless(['dnsmasq', 'socat']);

describe.skipIf(skip)('spinet run --dhcp against dnsmasq (inside a network namespace)', () => {
  const MAC = '02:5e:00:00:00:0a';
  let ns = '';
  let dir = '';
  let dnsmasq: Spawned | undefined;
  const leaseFile = (): string => {
    try {
      return readFileSync(join(dir, 'leases'), 'utf8');
    } catch {
      return '';
    }
  };

  beforeAll(async () => {
    ns = `spinet-dhcpcli-${process.pid}`;
    await execFileAsync('ip', ['netns', 'add', ns]);
    await execFileAsync('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    await execFileAsync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    dir = mkdtempSync(join(tmpdir(), 'spinet-dhcp-cli-'));
    // --bind-dynamic: the TAP does not exist yet; spinet creates it.
    dnsmasq = spawnCollecting('ip', [
      'netns', 'exec', ns, 'dnsmasq',
      '--keep-in-foreground', '--conf-file=/dev/null', '--no-resolv', '--no-hosts', '--pid-file=',
      '--interface=spd0', '--bind-dynamic', '--log-facility=-', '--log-dhcp',
      `--dhcp-leasefile=${join(dir, 'leases')}`,
      '--dhcp-range=192.0.2.50,192.0.2.59,255.255.255.0,120',
      '--dhcp-option=option:router,192.0.2.1', '--dhcp-option=option:dns-server,192.0.2.1',
    ]);
    await waitFor(() => /started, version/.test(dnsmasq!.output()) || dnsmasq!.child.exitCode !== null, 10_000, 'dnsmasq to start');
    if (dnsmasq.child.exitCode !== null) throw new Error(`dnsmasq exited:\n${dnsmasq.output()}`);
  });

  afterAll(async () => {
    dnsmasq?.child.kill('SIGTERM');
    await dnsmasq?.exit;
    if (ns) await execFileAsync('ip', ['netns', 'del', ns]).catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let address = '';

  it('prints the lease from dnsmasq; Ctrl-C exits 0', async () => {
    const node = spawnCollecting('ip', ['netns', 'exec', ns, process.execPath, SPINET, 'run', '--lan', 'tap:spd0', '--tap-addr', '192.0.2.1/24', '--dhcp', '--hostname', 'clibox']);
    try {
      // RFC 2131 start delay (1–10 s) + RFC 5227 probe (4–7 s)
      const bound = await waitFor(() => /DHCP: bound (192\.0\.2\.5\d)\/24 from 192\.0\.2\.1, router 192\.0\.2\.1, DNS 192\.0\.2\.1, lease 120 s/.exec(node.output()) ?? node.child.exitCode !== null, 40_000, 'the lease').catch((error: Error) => {
        throw new Error(`${error.message}\n--- spinet:\n${node.output()}\n--- dnsmasq:\n${dnsmasq!.output()}`);
      });
      expect(bound, node.output()).not.toBe(true);
      address = (bound as RegExpExecArray)[1]!;
      await waitFor(() => /up: .*Ctrl-C to stop/.test(node.output()), 10_000, 'up');
      expect(leaseFile()).toContain(`${MAC} ${address} clibox`);
      const ping = await execFileAsync('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '2', address]).then((r) => r.stdout, () => '');
      expect(ping).toMatch(/1 received/);

      node.child.kill('SIGINT');
      expect(await node.exit, node.output()).toBe(0);
      expect(node.output()).toMatch(/SIGINT: shutting down/);
    } finally {
      if (node.child.exitCode === null) node.child.kill('SIGKILL');
    }
  }, 90_000);

  // The TAP outlives the signal (hal/lan/tap.ts leaves socat to close() while the CLI shuts down).
  it('dnsmasq sees the DHCPRELEASE sent on Ctrl-C, and the lease leaves its lease file', async () => {
    expect(address).not.toBe('');
    await waitFor(() => dnsmasq!.output().includes(`DHCPRELEASE(spd0) ${address} ${MAC}`), 5_000, 'DHCPRELEASE in the dnsmasq log');
    await waitFor(() => !leaseFile().includes(MAC), 5_000, 'the lease gone from the lease file');
  });

  it('--lease-file: the lease is kept on exit, and the next run asks dnsmasq for it again with no DISCOVER (INIT-REBOOT)', async () => {
    const remembered = join(dir, 'spinet-lease.json');
    const args = ['netns', 'exec', ns, process.execPath, SPINET, 'resolve', '192.0.2.1', '--lan', 'tap:spd0', '--tap-addr', '192.0.2.1/24', '--dhcp', '--lease-file', remembered];
    const first = await execFileAsync('ip', args, { timeout: 60_000 });
    const leased = /DHCP: bound (192\.0\.2\.5\d)\/24/.exec(first.stderr);
    expect(leased, first.stderr).not.toBeNull();
    // not released: dnsmasq still holds the lease
    expect(leaseFile()).toContain(`${MAC} ${leased![1]}`);
    const before = dnsmasq!.output().length;
    const second = await execFileAsync('ip', args, { timeout: 60_000 });
    expect(second.stderr).toMatch(new RegExp(`REQUEST for ${leased![1]!.replaceAll('.', '\\.')} \\(INIT-REBOOT\\)`));
    expect(second.stderr).toContain(`DHCP: bound ${leased![1]}/24`);
    const log = dnsmasq!.output().slice(before);
    expect(log).toContain(`DHCPREQUEST(spd0) ${leased![1]} ${MAC}`);
    expect(log).toContain(`DHCPACK(spd0) ${leased![1]} ${MAC}`);
    expect(log).not.toContain('DHCPDISCOVER');
  }, 90_000);
});
