import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLab, skipLabUnless, waitFor, LAB_HOST_ADDRESS, type Lab } from './netns.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack, type StackOptions } from '../../src/stack/stack.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { formatIpv4, parseIpv4, parseMac } from '../../src/wire/address.js';
import type { DhcpClient, DhcpLease } from '../../src/app/dhcp/client.js';
import { DhcpServer } from '../../src/app/dhcp/server.js';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import { createStackDhcpClient, createStackResolver, stackDatagrams } from '../../src/app/stack-adapter.js';

/**
 * DHCP and DNS against real implementations over the TAP lab (a throw-away namespace holding
 * 192.0.2.1/24 on its TAP; spinet stacks on a VirtualLan bridged to it):
 *  - spinet's DhcpClient and DnsResolver against dnsmasq running in the namespace;
 *  - Linux's dig and busybox udhcpc in the namespace against spinet's DnsAuthoritativeServer
 *    and DhcpServer.
 */

/** RFC 5227 probing in a fraction of a second (src/app/dhcp/options.ts says how and when): for the clients after the first. */
const QUICK_PROBE: Partial<StackOptions> = { arpProbeWaitMs: 0, arpProbeMinMs: 200, arpProbeMaxMs: 200, arpAnnounceWaitMs: 200 };

async function stackOn(lan: VirtualLan, clock: RealClock, mac: string, options: { hostname?: string; options?: Partial<StackOptions> } = {}): Promise<Stack> {
  const stack = new Stack({ clock, random: new CryptoRandom(), ...options });
  stack.addInterface(new VirtualNic(lan, parseMac(mac), `spinet-${mac.slice(-2)}`));
  await stack.start();
  return stack;
}

function once<T>(client: DhcpClient, event: 'bound' | 'renewed'): Promise<T> {
  return new Promise((resolve) => client.once(event, (lease: DhcpLease) => resolve(lease as T)));
}

const skipDnsmasq = await skipLabUnless(['dnsmasq']);

describe.skipIf(skipDnsmasq)('spinet DhcpClient and DnsResolver ⇄ dnsmasq in the namespace', () => {
  const OUR_MAC = '02:00:00:00:5e:11';
  const CONFLICT_MAC = '02:00:00:00:5e:21';
  /** dnsmasq's static binding for CONFLICT_MAC, which the namespace also claims. */
  const CONFLICTED = '192.0.2.55';
  const T1_S = 10;
  let lab: Lab;
  let clock: RealClock;
  let lan: VirtualLan;
  let dir: string;
  let dnsmasq: ChildProcess;
  let log = '';
  const stacks: Stack[] = [];
  const clients: DhcpClient[] = [];
  const leaseFile = (): string => readFileSync(join(dir, 'dnsmasq.leases'), 'utf8');

  beforeAll(async () => {
    lab = await createLab();
    clock = new RealClock();
    lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    dir = mkdtempSync(join(tmpdir(), 'spinet-dnsmasq-'));
    dnsmasq = lab.spawn('dnsmasq', [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--pid-file=',
      `--interface=${lab.ifname}`,
      '--bind-interfaces',
      '--log-facility=-',
      '--log-dhcp',
      '--log-queries',
      `--dhcp-leasefile=${join(dir, 'dnsmasq.leases')}`,
      // dnsmasq's shortest lease is 120 s (T1 60 s); renewal is made prompt honestly, with the
      // server's own option 58 (T1, RFC 2132 §9.11), which the client must obey. 10 s: T1 counts
      // from the first DHCPREQUEST, and the RFC 5227 probe alone takes 4–7 s of it.
      '--dhcp-range=192.0.2.50,192.0.2.59,255.255.255.0,120',
      `--dhcp-option=option:T1,${T1_S}`,
      `--dhcp-option=option:router,${LAB_HOST_ADDRESS}`,
      `--dhcp-option=option:dns-server,${LAB_HOST_ADDRESS}`,
      '--domain=lab.test',
      // answer NXDOMAIN for unknown names in the zone instead of REFUSED (no upstream to ask)
      '--local=/lab.test/',
      '--host-record=printer.lab.test,192.0.2.77',
      '--address=/wild.lab.test/192.0.2.88',
      `--dhcp-host=${CONFLICT_MAC},${CONFLICTED}`,
      // dnsmasq pings an address before offering it; that would hide the conflict from the client,
      // whose own RFC 5227 probe is what is under test.
      '--no-ping',
    ]);
    dnsmasq.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    dnsmasq.stdout!.setEncoding('utf8').on('data', (d: string) => (log += d));
    await waitFor(() => /DHCP, IP range 192\.0\.2\.50/.test(log) || dnsmasq.exitCode !== null, 10_000, 'dnsmasq to start');
    if (dnsmasq.exitCode !== null) throw new Error(`dnsmasq exited ${dnsmasq.exitCode}:\n${log}`);
  });

  afterAll(async () => {
    for (const client of clients) await client.stop({ release: false });
    for (const stack of stacks) await stack.stop();
    dnsmasq?.kill('SIGTERM');
    await lab?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (process.env['SPINET_LAB_LOG']) console.log(log);
  });

  let stack: Stack;
  let client: DhcpClient;
  let lease: DhcpLease;
  const renewals: DhcpLease[] = [];
  const states: string[] = [];

  it('leases an address in the range, with dnsmasq as router and DNS server (RFC 5227 probe at its default timing)', async () => {
    stack = await stackOn(lan, clock, OUR_MAC, { hostname: 'spinet-lab' });
    stacks.push(stack);
    client = createStackDhcpClient(stack, 1, { startupDelayMs: { min: 0, max: 0 } });
    clients.push(client);
    const checking: string[] = [];
    client.on('checking', (a) => checking.push(formatIpv4(a)));
    client.on('renewed', (l) => renewals.push(l));
    client.on('state', (to) => states.push(to));
    const bound = once<DhcpLease>(client, 'bound');
    const started = performance.now();
    client.start();
    lease = await bound;
    const elapsed = performance.now() - started;

    const address = formatIpv4(lease.address);
    expect(address).toMatch(/^192\.0\.2\.5\d$/);
    expect(checking).toEqual([address]);
    // PROBE_WAIT 0–1 s + 2 gaps of 1–2 s + ANNOUNCE_WAIT 2 s
    expect(elapsed).toBeGreaterThanOrEqual(4_000);
    expect(elapsed).toBeLessThan(9_000);
    expect(lease).toMatchObject({
      prefixLength: 24,
      routers: [parseIpv4(LAB_HOST_ADDRESS)],
      dnsServers: [parseIpv4(LAB_HOST_ADDRESS)],
      serverIdentifier: parseIpv4(LAB_HOST_ADDRESS),
      domainName: 'lab.test',
      leaseTimeS: 120,
      renewalTimeS: T1_S,
    });
    expect(stack.interfaces[0]!.addresses.map((a) => formatIpv4(a.address))).toEqual([address]);
    expect(stack.dnsServers).toEqual([parseIpv4(LAB_HOST_ADDRESS)]);
    expect(stack.routes.lookup('198.51.100.1')?.gateway).toBe(parseIpv4(LAB_HOST_ADDRESS));
    // dnsmasq's lease file: "expiry mac address hostname client-id"
    const line = await waitFor(() => leaseFile().split('\n').find((l) => l.includes(OUR_MAC)), 5_000, 'our lease in the lease file');
    expect(line.split(' ').slice(1, 4)).toEqual([OUR_MAC, address, 'spinet-lab']);
    // and the kernel can reach the address it handed out
    const ping = await lab.exec('ping', ['-c', '1', '-W', '2', address]);
    expect(ping.stdout).toMatch(/1 received/);
  });

  it('resolves names dnsmasq serves: a --host-record, an --address wildcard, and our own DHCP host name', async () => {
    const resolver = createStackResolver(stack);
    expect(await resolver.resolve4('printer.lab.test')).toEqual(['192.0.2.77']);
    expect(await resolver.lookup('anything.wild.lab.test')).toEqual({ address: '192.0.2.88', family: 4 });
    // dnsmasq puts DHCP clients' host names (option 12) into its DNS under --domain
    expect(await resolver.resolve4('spinet-lab.lab.test')).toEqual([formatIpv4(lease.address)]);
    await expect(resolver.lookup('nosuch.lab.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('renews at T1 (the 10 s dnsmasq sent): RENEWING, and dnsmasq ACKs the same address', async () => {
    const firstStart = lease.startedAt;
    const renewed = await waitFor(() => renewals[0], 15_000, 'the renewal');
    const sinceLease = renewed.startedAt - firstStart;
    expect(sinceLease).toBeGreaterThanOrEqual(T1_S * 1000);
    expect(sinceLease).toBeLessThan(T1_S * 1000 + 1_500);
    expect(renewed.address).toBe(lease.address);
    expect(client.state).toBe('BOUND');
    // RENEWING (unicast to the leasing server, RFC 2131 §4.4.5), answered before T2: no REBINDING
    expect(states).toEqual(['INIT', 'SELECTING', 'REQUESTING', 'CHECKING', 'BOUND', 'RENEWING', 'BOUND']);
    const address = formatIpv4(lease.address);
    // dnsmasq ACKed twice: the REQUEST after the offer, and the renewal
    const acks = (): number => log.split(`DHCPACK(${lab.ifname}) ${address} ${OUR_MAC}`).length - 1;
    await waitFor(() => acks() >= 2, 3_000, 'a second ACK in the dnsmasq log');
    lease = renewed;
  });

  it('releases on stop(): DHCPRELEASE reaches dnsmasq and the lease file no longer has it', async () => {
    const address = formatIpv4(lease.address);
    // stop() settles once the RELEASE has left (the server's MAC resolved, then releaseLingerMs)
    await client.stop();
    expect(stack.interfaces[0]!.addresses).toEqual([]);
    await waitFor(() => log.includes(`DHCPRELEASE(${lab.ifname}) ${address} ${OUR_MAC}`), 5_000, 'DHCPRELEASE in the dnsmasq log');
    await waitFor(() => !leaseFile().includes(OUR_MAC), 5_000, 'the lease gone from the lease file');
  });

  it('a second client offered an address the namespace already holds declines it (DHCPDECLINE) and leases another', async () => {
    // The kernel in the namespace claims the address dnsmasq will offer this MAC, and answers ARP
    // probes for it (Linux replies to a sender-0.0.0.0 request for a local address).
    const add = await lab.exec('ip', ['addr', 'add', `${CONFLICTED}/32`, 'dev', lab.ifname]);
    expect(add.stderr).toBe('');
    const second = await stackOn(lan, clock, CONFLICT_MAC, { hostname: 'spinet-two', options: QUICK_PROBE });
    stacks.push(second);
    const c2 = createStackDhcpClient(second, 1, { startupDelayMs: { min: 0, max: 0 } });
    clients.push(c2);
    const conflicts: string[] = [];
    const offers: string[] = [];
    c2.on('conflict', (a) => conflicts.push(formatIpv4(a)));
    c2.on('offer', (a) => offers.push(formatIpv4(a)));
    const bound = once<DhcpLease>(c2, 'bound');
    c2.start();
    await waitFor(() => conflicts.length > 0, 10_000, 'the conflict');
    expect(conflicts).toEqual([CONFLICTED]);
    await waitFor(() => log.includes(`DHCPDECLINE(${lab.ifname}) ${CONFLICTED} ${CONFLICT_MAC}`), 5_000, 'DHCPDECLINE in the dnsmasq log');
    // RFC 2131 §3.1 step 5: start over no sooner than 10 s later; dnsmasq then offers from the range
    const l2 = await bound;
    expect(offers[0]).toBe(CONFLICTED);
    expect(formatIpv4(l2.address)).toMatch(/^192\.0\.2\.5\d$/);
    expect(formatIpv4(l2.address)).not.toBe(CONFLICTED);
    expect(second.interfaces[0]!.addresses.map((a) => formatIpv4(a.address))).toEqual([formatIpv4(l2.address)]);
  }, 40_000);
});

const skipTools = await skipLabUnless(['dig', 'busybox']);

describe.skipIf(skipTools)('dig and busybox udhcpc in the namespace ⇄ spinet DNS and DHCP servers', () => {
  const SERVER = '192.0.2.10';
  let lab: Lab;
  let stack: Stack;
  let dhcp: DhcpServer;
  let dns: DnsAuthoritativeServer;
  let dir: string;

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    stack = await stackOn(lan, clock, '02:00:00:00:5e:0a');
    stack.interfaces[0]!.addAddress(SERVER, 24);
    const transport = stackDatagrams(stack);
    dns = new DnsAuthoritativeServer({
      transport,
      zone: 'lab.test',
      soa: { minimum: 30 },
      records: [
        { name: 'board.lab.test', type: 'A', address: SERVER, ttl: 120 },
        { name: 'www.lab.test', type: 'CNAME', target: 'board.lab.test' },
      ],
    });
    dns.start();
    dhcp = new DhcpServer({
      transport,
      clock,
      serverAddress: SERVER,
      prefixLength: 24,
      poolStart: '192.0.2.100',
      poolEnd: '192.0.2.109',
      router: SERVER,
      dnsServers: [SERVER],
      domainName: 'lab.test',
      leaseTimeS: 600,
      interfaceIndex: 1,
    });
    dhcp.start();
    dir = mkdtempSync(join(tmpdir(), 'spinet-udhcpc-'));
  });

  afterAll(async () => {
    dhcp?.close();
    dns?.close();
    await stack?.stop();
    await lab?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const dig = async (...args: string[]): Promise<string> => (await lab.exec('dig', [`@${SERVER}`, '+tries=2', '+time=2', ...args])).stdout;

  it('dig: an A record through a CNAME, authoritative', async () => {
    const out = await dig('+norecurse', 'www.lab.test', 'A');
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/flags: qr aa/);
    expect(out).toMatch(/www\.lab\.test\.\s+\d+\s+IN\s+CNAME\s+board\.lab\.test\./);
    expect(out).toMatch(/board\.lab\.test\.\s+120\s+IN\s+A\s+192\.0\.2\.10/);
    expect(out).toMatch(new RegExp(`SERVER: ${SERVER.replace(/\./g, '\\.')}#53`));
  });

  it('dig: NXDOMAIN in the zone, REFUSED outside it; nslookup agrees', async () => {
    expect(await dig('nope.lab.test', 'A')).toMatch(/status: NXDOMAIN/);
    expect(await dig('example.com', 'A')).toMatch(/status: REFUSED/);
    const ns = await lab.exec('nslookup', ['board.lab.test', SERVER]);
    expect(ns.stdout).toMatch(/Name:\s+board\.lab\.test\s+Address: 192\.0\.2\.10/);
  });

  it('udhcpc: leases an address from the pool, configures it, and gets router, DNS and domain through its script; releases on exit', async () => {
    // udhcpc calls the script with the lease in its environment; this one configures the address
    // (as the default script would) and writes what it was given.
    const script = join(dir, 'script.sh');
    const out = join(dir, 'env');
    writeFileSync(
      script,
      `#!/bin/sh
case "$1" in
  bound|renew)
    ip addr add "$ip/$mask" dev "$interface"
    echo "event=$1 ip=$ip mask=$mask router=$router dns=$dns domain=$domain serverid=$serverid lease=$lease" >> ${out}
    ;;
  deconfig) echo "event=deconfig" >> ${out} ;;
esac
`,
    );
    chmodSync(script, 0o755);
    // Foreground, a DISCOVER every 2 s up to 4 times; USR2 asks udhcpc to release the lease.
    // (-q -R, "quit once bound and release", does not release in busybox 1.35: it quits first.)
    const udhcpc = lab.spawn('busybox', ['udhcpc', '-i', lab.ifname, '-f', '-n', '-t', '4', '-T', '2', '-s', script, '-x', 'hostname:linuxbox']);
    let stderr = '';
    udhcpc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => udhcpc.on('exit', (code) => resolve(code)));
    const read = (): string => {
      try {
        return readFileSync(out, 'utf8');
      } catch {
        return '';
      }
    };
    await waitFor(() => /^event=bound /m.test(read()) || udhcpc.exitCode !== null, 20_000, 'udhcpc to bind');
    const events = read();
    expect(events, stderr).toMatch(/^event=deconfig$/m);
    const bound = /^event=bound ip=(\S+) mask=(\S+) router=(\S+) dns=(\S+) domain=(\S+) serverid=(\S+) lease=(\S+)$/m.exec(events);
    expect(bound, events + stderr).not.toBeNull();
    const [, ip, mask, router, dnsServer, domain, serverId, leaseTime] = bound!;
    expect(ip).toMatch(/^192\.0\.2\.10\d$/);
    expect({ mask, router, dnsServer, domain, serverId, leaseTime }).toEqual({ mask: '24', router: SERVER, dnsServer: SERVER, domain: 'lab.test', serverId: SERVER, leaseTime: '600' });
    expect((await lab.exec('ip', ['-4', 'addr', 'show', 'dev', lab.ifname])).stdout).toContain(`inet ${ip}/24`);
    expect(dhcp.stats.received).toEqual({ DHCPDISCOVER: 1, DHCPREQUEST: 1 });

    udhcpc.kill('SIGUSR2');
    await waitFor(() => dhcp.stats.received['DHCPRELEASE'], 5_000, `the DHCPRELEASE (udhcpc said: ${stderr})`);
    expect(stderr).toMatch(new RegExp(`unicasting a release of ${ip!.replace(/\./g, '\\.')} to 192\\.0\\.2\\.10`));
    udhcpc.kill('SIGTERM');
    expect(await exited).toBe(0);
    const binding = dhcp.leases().find((l) => formatIpv4(l.address) === ip);
    expect(binding).toMatchObject({ hostName: 'linuxbox', state: 'released' });
  });
});
