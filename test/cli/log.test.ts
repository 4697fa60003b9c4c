/**
 * `spinet log` as a user runs it: a child process through tools/spinet.mjs. The known traffic is
 * a board taking a DHCP lease on the built-in LAN: DISCOVER, OFFER, REQUEST, ACK, the three RFC 5227
 * probes of the offered address and the announcement, in that order (8 frames, about 5 s).
 */
import { describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../../hal/lan/tap.js';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));
const execFileAsync = promisify(execFile);
const tshark = await findExecutable('tshark');
if (!tshark) console.warn('spinet log | tshark skipped: tshark is not installed (apt-get install tshark)');

async function spinetLog(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [SPINET, 'log', ...args], { timeout: 60_000, env: { ...process.env, NO_COLOR: '1' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const LEASE = [
  / out 02:5e:00:00:00:0a > ff:ff:ff:ff:ff:ff, IPv4, 0\.0\.0\.0\.68 > 255\.255\.255\.255\.67: UDP, length 300$/,
  / in 02:5e:00:00:00:01 > ff:ff:ff:ff:ff:ff, IPv4, 192\.0\.2\.1\.67 > 255\.255\.255\.255\.68: UDP, length 300$/,
  / out 02:5e:00:00:00:0a > ff:ff:ff:ff:ff:ff, IPv4, 0\.0\.0\.0\.68 > 255\.255\.255\.255\.67: UDP, length 300$/,
  / in 02:5e:00:00:00:01 > ff:ff:ff:ff:ff:ff, IPv4, 192\.0\.2\.1\.67 > 255\.255\.255\.255\.68: UDP, length 300$/,
  / out .*ARP, Request who-has 192\.0\.2\.100 tell 0\.0\.0\.0, length 42$/,
  / out .*ARP, Request who-has 192\.0\.2\.100 tell 0\.0\.0\.0, length 42$/,
  / out .*ARP, Request who-has 192\.0\.2\.100 tell 0\.0\.0\.0, length 42$/,
  / out .*ARP, Request who-has 192\.0\.2\.100 tell 192\.0\.2\.100, length 42$/,
];

describe('spinet log', () => {
  it('prints each frame of a DHCP lease once, in order, one tcpdump line each, and stops after -c N', async () => {
    const { code, stdout, stderr } = await spinetLog(['--board', 'mock', '--dhcp', '-c', '8']);
    expect(code, stderr).toBe(0);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(8);
    lines.forEach((line, i) => expect(line).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{6} enc28j60${LEASE[i]!.source}`)));
    expect(stderr).toMatch(/8 frames captured/);
  });

  it('filters (arp and (dst host A)), prints layers with -v and bytes with -x', async () => {
    const { code, stdout, stderr } = await spinetLog(['--board', 'mock', '--dhcp', '-c', '1', '-v', '-x', 'arp', 'and', '(', 'dst', 'host', '192.0.2.100', ')']);
    expect(code, stderr).toBe(0);
    expect(stdout.trimEnd().split('\n')).toEqual([
      expect.stringMatching(LEASE[4]!),
      '    Ethernet II: destination ff:ff:ff:ff:ff:ff, source 02:5e:00:00:00:0a, type ARP (0x0806), frame length 42 bytes (without FCS)',
      '    ARP: operation request, sender MAC 02:5e:00:00:00:0a, sender IP 0.0.0.0, target MAC 00:00:00:00:00:00, target IP 192.0.2.100',
      '\t0x0000:  ffff ffff ffff 025e 0000 000a 0806 0001',
      '\t0x0010:  0800 0604 0001 025e 0000 000a 0000 0000',
      '\t0x0020:  0000 0000 0000 c000 0264',
    ]);
  });

  it('rejects a filter it cannot read with exit code 2 and says where', async () => {
    const { code, stderr } = await spinetLog(['--board', 'mock', 'port', 'http']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/filter "port http": 'http' is not a port number \(0 to 65535\) \(at character 6\)/);
  });

  it.skipIf(!tshark)('-w - streams pcapng that tshark -r - reads live: the same frames', async () => {
    const child = spawn('sh', ['-c', `"${process.execPath}" "${SPINET}" log --board mock --dhcp -c 8 -w - | "${tshark}" -r - -T fields -E separator='|' -e frame.number -e eth.src -e dhcp.option.dhcp -e arp.src.proto_ipv4 -e arp.dst.proto_ipv4`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/8 frames captured/);
    expect(stdout.trim().split('\n').map((l) => l.split('|'))).toEqual([
      ['1', '02:5e:00:00:00:0a', '1', '', ''],
      ['2', '02:5e:00:00:00:01', '2', '', ''],
      ['3', '02:5e:00:00:00:0a', '3', '', ''],
      ['4', '02:5e:00:00:00:01', '5', '', ''],
      ['5', '02:5e:00:00:00:0a', '', '0.0.0.0', '192.0.2.100'],
      ['6', '02:5e:00:00:00:0a', '', '0.0.0.0', '192.0.2.100'],
      ['7', '02:5e:00:00:00:0a', '', '0.0.0.0', '192.0.2.100'],
      ['8', '02:5e:00:00:00:0a', '', '192.0.2.100', '192.0.2.100'],
    ]);
  });
});
