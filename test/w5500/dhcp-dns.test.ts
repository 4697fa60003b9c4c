import { describe, expect, it } from 'vitest';
import { VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { SeededRandom } from '../../src/time/random.js';
import { parseIpv4, parseMac } from '../../src/wire/address.js';
import { DhcpServer } from '../../src/app/dhcp/server.js';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import { createStackDhcpClient, createStackResolver, stackDatagrams } from '../../src/app/stack-adapter.js';
import { createMockEnc28j60Board, createMockW5500Board } from '../../tools/boards.js';
import { virtualBench } from '../support/virtual-bench.js';

/**
 * A board with no address on the virtual LAN, in virtual time: the chip's driver on the mock HAL
 * with the strict emulator, under spinet's Stack, leases an address from the stack's own DHCP
 * server (a "router" Stack at 10.0.0.1 on a VirtualNic), takes its router and DNS server from the
 * lease, and resolves a name through the router's DNS server. The W5500 runs MACRAW with its MAC
 * filter, so the DHCP replies must pass it; the ENC28J60 beside it for comparison.
 */

describe.each(['w5500', 'enc28j60'] as const)('DHCP and DNS for the %s board on the virtual LAN (virtual time)', (chip) => {
  it('leases an address from the stack\'s DHCP server, gets its router and DNS server, and resolves a name', async () => {
    const { clock, lan, settle, until } = virtualBench();
    const router = new Stack({ clock, random: new SeededRandom(1), hostname: 'router' });
    router.addInterface(new VirtualNic(lan, parseMac('02:00:00:00:00:01'))).addAddress('10.0.0.1', 24);
    await settle(router.start());
    const transport = stackDatagrams(router);
    const server = new DhcpServer({
      transport, clock, serverAddress: '10.0.0.1', prefixLength: 24, poolStart: '10.0.0.100', poolEnd: '10.0.0.120',
      router: '10.0.0.1', dnsServers: ['10.0.0.1'], domainName: 'lab.test', leaseTimeS: 600,
    });
    server.start();
    const dns = new DnsAuthoritativeServer({
      transport, zone: 'lab.test', soa: { minimum: 30 },
      records: [
        { name: 'router.lab.test', type: 'A', address: '10.0.0.1' },
        { name: 'www.lab.test', type: 'CNAME', target: 'router.lab.test' },
      ],
    });
    dns.start();

    const violations: string[] = [];
    const options = { clock, lan, mac: parseMac('02:5e:00:00:00:0b'), strict: true, onStrictViolation: (m: string) => violations.push(m) };
    const board = chip === 'w5500' ? createMockW5500Board(options) : createMockEnc28j60Board(options);
    const host = new Stack({ clock, random: new SeededRandom(2), hostname: 'board' });
    host.addInterface(board.nic);
    await settle(host.start());
    const dhcp = createStackDhcpClient(host, 1, { startupDelayMs: { min: 0, max: 0 } });
    dhcp.start();
    await until(() => dhcp.state === 'BOUND', 30_000);
    expect(host.interfaces[0]!.addresses.map((a) => [a.address, a.prefixLength])).toEqual([[parseIpv4('10.0.0.100'), 24]]);
    expect(host.dnsServers).toEqual([parseIpv4('10.0.0.1')]);
    expect(host.routes.lookup('8.8.8.8')?.gateway).toBe(parseIpv4('10.0.0.1'));

    const resolver = createStackResolver(host);
    expect(await settle(resolver.resolve4('www.lab.test'))).toEqual(['10.0.0.1']);
    expect(await settle(resolver.lookup('nope.lab.test').catch((e: Error & { code?: string }) => e.code))).toBe('ENOTFOUND');

    // Both ways through the chip: the frames crossed its buffers, none dropped by the driver.
    expect(board.nic.stats().rxFrames).toBeGreaterThanOrEqual(4);
    expect(board.nic.stats().txFrames).toBeGreaterThanOrEqual(4);
    expect(violations).toEqual([]);
    dhcp.stop({ release: true });
    await settle(host.stop());
    await settle(router.stop());
    await board.hal.close();
  });
});
