import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { DnsResolver } from '../../src/app/dns/resolver.js';
import { DnsAuthoritativeServer } from '../../src/app/dns/server.js';
import { createTcpQuery } from '../../src/app/dns/tcp-framing.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { parseIpv4 } from '../../src/wire/address.js';
import { nodeDatagrams } from './node-datagrams.js';

/**
 * Real tools on 127.0.0.1, high ports, no privileges needed: dig against our authoritative
 * server, and our resolver (UDP and the TCP retry) against dnsmasq.
 */
const DIG = '/usr/bin/dig';
const DNSMASQ = '/usr/sbin/dnsmasq';
const LOCALHOST = parseIpv4('127.0.0.1');
const SERVER_PORT = 20_000 + (process.pid % 10_000);
const DNSMASQ_PORT = SERVER_PORT + 1;

describe('the node:dgram transport', () => {
  it('open throws EADDRINUSE for a port a socket already holds (bind is synchronous), and the port is free again once that socket closes', () => {
    const first = nodeDatagrams.open({ address: LOCALHOST });
    const port = first.localPort;
    expect(() => nodeDatagrams.open({ address: LOCALHOST, port })).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    first.close();
    const again = nodeDatagrams.open({ address: LOCALHOST, port });
    expect(again.localPort).toBe(port);
    again.close();
  });
});

describe.skipIf(!existsSync(DIG))('dig against DnsAuthoritativeServer', () => {
  let server: DnsAuthoritativeServer;
  beforeAll(() => {
    server = new DnsAuthoritativeServer({
      transport: nodeDatagrams,
      address: LOCALHOST,
      port: SERVER_PORT,
      zone: 'lab.test',
      soa: { minimum: 42 },
      records: [
        { name: 'www.lab.test', type: 'A', address: '192.0.2.80', ttl: 77 },
        { name: 'alias.lab.test', type: 'CNAME', target: 'www.lab.test' },
      ],
    });
    server.start();
  });
  afterAll(() => server.close());

  const dig = async (...args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = spawn(DIG, ['@127.0.0.1', '-p', String(SERVER_PORT), '+tries=1', '+time=2', ...args]);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', () => resolve(out));
    });

  it('answers A through a CNAME, authoritatively', async () => {
    const out = await dig('+norecurse', 'alias.lab.test', 'A');
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/flags: qr aa/);
    expect(out).toMatch(/alias\.lab\.test\.\s+\d+\s+IN\s+CNAME\s+www\.lab\.test\./);
    expect(out).toMatch(/www\.lab\.test\.\s+77\s+IN\s+A\s+192\.0\.2\.80/);
  });

  it('NXDOMAIN with the SOA dig prints in AUTHORITY', async () => {
    const out = await dig('nope.lab.test', 'A');
    expect(out).toMatch(/status: NXDOMAIN/);
    expect(out).toMatch(/AUTHORITY SECTION:\s*\nlab\.test\.\s+\d+\s+IN\s+SOA\s+ns\.lab\.test\. hostmaster\.lab\.test\. 1 3600 600 86400 42/);
  });

  it('REFUSED outside the zone', async () => {
    expect(await dig('example.com', 'A')).toMatch(/status: REFUSED/);
  });
});

describe.skipIf(!existsSync(DNSMASQ))('DnsResolver against dnsmasq', () => {
  let dnsmasq: ChildProcess;
  beforeAll(async () => {
    // 40 A records for big.lab.test make a reply over 512 octets: dnsmasq truncates over UDP.
    const big = Array.from({ length: 40 }, (_, i) => `--host-record=big.lab.test,10.0.1.${i + 1}`);
    dnsmasq = spawn(DNSMASQ, [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--pid-file=',
      '--listen-address=127.0.0.1',
      '--bind-interfaces',
      `--port=${DNSMASQ_PORT}`,
      '--local=/lab.test/',
      '--host-record=www.lab.test,192.0.2.80',
      '--cname=alias.lab.test,www.lab.test',
      ...big,
    ]);
    // wait until it answers on TCP
    for (let i = 0; i < 50; i++) {
      const up = await new Promise<boolean>((resolve) => {
        const s = net.connect(DNSMASQ_PORT, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      if (up) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(() => {
    dnsmasq?.kill();
  });

  const resolver = (): DnsResolver =>
    new DnsResolver({
      transport: nodeDatagrams,
      clock: new RealClock(),
      random: new CryptoRandom(),
      servers: [`127.0.0.1:${DNSMASQ_PORT}`],
      attempts: 2,
      tcpQuery: createTcpQuery((port, host) => net.connect(port, host)),
    });

  it('resolves A and follows a CNAME', async () => {
    const r = resolver();
    expect(await r.resolve4('www.lab.test')).toEqual(['192.0.2.80']);
    expect(await r.resolve4('alias.lab.test')).toEqual(['192.0.2.80']);
  });

  it('NXDOMAIN for a local domain name that does not exist is ENOTFOUND', async () => {
    await expect(resolver().resolve4('nope.lab.test')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('a truncated UDP reply is retried over TCP with 2-octet framing and yields every record', async () => {
    const r = resolver();
    const addresses = await r.resolve4('big.lab.test');
    expect(addresses).toHaveLength(40);
    expect(r.stats.tcpRetries).toBe(1);
  });
});
