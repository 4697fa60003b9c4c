import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CaptureNic, type CaptureSink } from '../../src/capture/capture.js';
import { openPcapngFile, FileSink } from '../../src/capture/file-sink.js';
import { PcapngWriter } from '../../src/capture/pcapng.js';
import { JsonLinesSink, TextLogSink } from '../../src/capture/text-log.js';
import { createCaptureSinks } from '../../src/capture/sinks.js';
import { findExecutable } from '../../hal/lan/tap.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { MAC_A, MAC_B, arpReply, arpRequest, echo, fragmentedEcho, tcp, udp } from './frames.js';

const execFileAsync = promisify(execFile);
const tshark = await findExecutable('tshark');
if (!tshark) console.warn('pcapng/tshark tests skipped: tshark is not installed (apt-get install tshark)');

/** Two NICs on a LAN, both captured into one pcapng plus text and JSON logs, on a virtual clock. */
async function captureSession(path: string) {
  const clock = new VirtualClock(0, Date.UTC(2026, 10, 25, 9, 0, 0));
  const lan = new VirtualLan(clock);
  const pcap = openPcapngFile(path);
  const text: string[] = [];
  const json: string[] = [];
  const sinks: CaptureSink[] = [pcap, new TextLogSink((l) => text.push(l)), new JsonLinesSink((l) => json.push(l))];
  const a = new CaptureNic(new VirtualNic(lan, MAC_A, 'nic-a'), clock, sinks);
  const b = new CaptureNic(new VirtualNic(lan, MAC_B, 'nic-b'), clock, [pcap]);
  a.attach({ receive: () => {}, linkChange: () => {} });
  b.attach({ receive: () => {}, linkChange: () => {} });
  await a.start();
  await b.start();
  return { clock, a, b, pcap, text, json };
}

async function tsharkFields(path: string, fields: string[]): Promise<{ rows: string[][]; stderr: string }> {
  const { stdout, stderr } = await execFileAsync(tshark!, ['-r', path, '-T', 'fields', '-E', 'separator=|', ...fields.flatMap((f) => ['-e', f])]);
  // tshark warns when run as root; anything else on stderr is a complaint about the file.
  const complaints = stderr.split('\n').filter((l) => l.trim() && !/^Running as user "root"/.test(l)).join('\n');
  return { rows: stdout.trim().split('\n').map((l) => l.split('|')), stderr: complaints };
}

describe('CaptureNic', () => {
  it('forwards both directions unchanged and records each frame with time, direction and interface', async () => {
    const clock = new VirtualClock(0, 1_000_000);
    const lan = new VirtualLan(clock);
    const records: { timestampMs: number; direction: string; interfaceName: string; length: number }[] = [];
    const sink: CaptureSink = { record: (f) => records.push({ timestampMs: f.timestampMs, direction: f.direction, interfaceName: f.interfaceName, length: f.bytes.length }) };
    const a = new CaptureNic(new VirtualNic(lan, MAC_A, 'a'), clock, [sink]);
    const b = new VirtualNic(lan, MAC_B, 'b');
    const atA: Uint8Array[] = [];
    const atB: Uint8Array[] = [];
    const links: boolean[] = [];
    a.attach({ receive: (f) => atA.push(f), linkChange: (up) => links.push(up) });
    b.attach({ receive: (f) => atB.push(f), linkChange: () => {} });
    await a.start();
    await b.start();
    expect(links).toEqual([true]);
    expect([a.name, a.mtu, a.linkUp, a.mac]).toEqual(['a', 1500, true, MAC_A]);
    const request = arpRequest();
    expect(a.transmit(request)).toBe(true);
    clock.advance(1.5);
    const reply = arpReply();
    b.transmit(reply);
    expect(atB).toEqual([request]);
    expect(atA).toEqual([reply]);
    expect(records).toEqual([
      { timestampMs: 1_000_000, direction: 'out', interfaceName: 'a', length: 42 },
      { timestampMs: 1_000_001.5, direction: 'in', interfaceName: 'a', length: 42 },
    ]);
    expect(a.stats().txFrames).toBe(1);
    await a.stop();
    expect(links).toEqual([true, false]);
  });
});

describe('text and JSON-lines logs', () => {
  it('write one line per frame with time, interface, direction and the decoded summary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spinet-capture-'));
    try {
      const s = await captureSession(join(dir, 'x.pcapng'));
      s.a.transmit(echo('echo-request', 1, 1));
      s.clock.advance(0.25);
      s.b.transmit(echo('echo-reply', 1, 1));
      expect(s.text).toEqual([
        '09:00:00.000000 nic-a out 02:00:00:00:00:0a > 02:00:00:00:00:0b, IPv4, 192.0.2.10 > 192.0.2.1: ICMP echo request, id 1, seq 1, length 64',
        '09:00:00.000250 nic-a in 02:00:00:00:00:0b > 02:00:00:00:00:0a, IPv4, 192.0.2.1 > 192.0.2.10: ICMP echo reply, id 1, seq 1, length 64',
      ]);
      const entries = s.json.map((l) => JSON.parse(l));
      expect(entries[1]).toMatchObject({
        time: '2026-11-25T09:00:00.000Z',
        interface: 'nic-a',
        direction: 'in',
        source: '02:00:00:00:00:0b',
        ipv4: { source: '192.0.2.1', destination: '192.0.2.10', protocol: 1, ttl: 64, checksumOk: true },
        icmp: { type: 0, identifier: 1, sequence: 1, length: 64, checksumOk: true },
      });
      await s.pcap.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('createCaptureSinks builds what --log and --pcap ask for', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spinet-capture-'));
    try {
      const lines: string[] = [];
      const sinks = createCaptureSinks({ log: 'json', writeLine: (l) => lines.push(l), pcapPath: join(dir, 'y.pcapng') });
      expect(sinks.map((s) => s.constructor.name)).toEqual(['JsonLinesSink', 'PcapngWriter']);
      expect(createCaptureSinks({ log: 'none' })).toEqual([]);
      expect(createCaptureSinks({ log: 'text' })[0]).toBeInstanceOf(TextLogSink);
      for (const s of sinks) await s.close?.();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('pcapng writer', () => {
  it('lays out SHB, IDB (Ethernet, µs) and EPB blocks with 32-bit padding and matching lengths', async () => {
    const chunks: Uint8Array[] = [];
    const writer = new PcapngWriter({ write: (b) => chunks.push(b.slice()) });
    writer.record({ timestampMs: 1_700_000_000_123.456, direction: 'out', interfaceName: 'eth', bytes: new Uint8Array(61).fill(7) });
    const [shb, idb, epb] = chunks.map((c) => new DataView(c.buffer));
    expect(shb!.getUint32(0, true)).toBe(0x0a0d0d0a);
    expect(shb!.getUint32(8, true)).toBe(0x1a2b3c4d);
    expect(idb!.getUint32(0, true)).toBe(1);
    expect(idb!.getUint16(8, true)).toBe(1);
    expect(epb!.getUint32(0, true)).toBe(6);
    for (const c of chunks) {
      const v = new DataView(c.buffer);
      expect(c.length % 4).toBe(0);
      expect(v.getUint32(4, true)).toBe(c.length);
      expect(v.getUint32(c.length - 4, true)).toBe(c.length);
    }
    const micros = epb!.getUint32(12, true) * 2 ** 32 + epb!.getUint32(16, true);
    expect(micros).toBe(1_700_000_000_123_456);
    expect(epb!.getUint32(20, true)).toBe(61);
  });

  it.skipIf(!tshark)('writes files tshark reads without error and decodes to the same frames', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spinet-capture-'));
    const path = join(dir, 'session.pcapng');
    try {
      const s = await captureSession(path);
      const [first, second] = fragmentedEcho();
      const sent: [nic: 'a' | 'b', frame: Uint8Array][] = [
        ['a', arpRequest()],
        ['b', arpReply()],
        ['a', echo('echo-request', 0x99, 1)],
        ['b', echo('echo-reply', 0x99, 1)],
        ['a', udp(40000, 40001, new TextEncoder().encode('spinet'))],
        ['a', tcp(0x02, 123456, 0, 64240)],
        ['a', first],
        ['a', second],
      ];
      for (const [which, frame] of sent) {
        (which === 'a' ? s.a : s.b).transmit(frame);
        s.clock.advance(1.001);
      }
      await s.pcap.flush();
      await s.pcap.close();
      expect((await readFile(path)).length).toBeGreaterThan(0);

      const { rows, stderr } = await tsharkFields(path, [
        'frame.interface_name',
        'frame.packet_flags_direction',
        'frame.time_epoch',
        'frame.len',
        'eth.src',
        'eth.dst',
        'frame.protocols',
        'arp.opcode',
        'ip.src',
        'ip.dst',
        'icmp.ident',
        'icmp.seq',
        'udp.dstport',
        'tcp.flags.syn',
        'tcp.seq_raw',
      ]);
      expect(stderr).toBe('');
      // Every frame appears twice: sent on one NIC, received on the other (pcapng, one IDB each).
      expect(rows).toHaveLength(sent.length * 2);
      const outbound = rows.filter((r) => Number(r[1]) === 2);
      const inbound = rows.filter((r) => Number(r[1]) === 1);
      expect(outbound).toHaveLength(sent.length);
      expect(inbound).toHaveLength(sent.length);
      sent.forEach(([which, frame], i) => {
        const out = outbound[i]!;
        expect(out[0]).toBe(which === 'a' ? 'nic-a' : 'nic-b');
        expect(Number(out[2])).toBeCloseTo(Date.UTC(2026, 10, 25, 9, 0, 0) / 1000 + i * 0.001001, 6);
        expect(Number(out[3])).toBe(frame.length);
      });
      const protocols = outbound.map((r) => r[6]);
      expect(protocols).toEqual([
        'eth:ethertype:arp',
        'eth:ethertype:arp',
        'eth:ethertype:ip:icmp:data',
        'eth:ethertype:ip:icmp:data',
        'eth:ethertype:ip:udp:data',
        'eth:ethertype:ip:tcp',
        'eth:ethertype:ip:data',
        // tshark reassembles the two fragments into the echo request.
        'eth:ethertype:ip:icmp:data',
      ]);
      expect(outbound[0]!.slice(4, 8)).toEqual(['02:00:00:00:00:0a', 'ff:ff:ff:ff:ff:ff', 'eth:ethertype:arp', '1']);
      expect(outbound[1]![7]).toBe('2');
      expect(outbound[2]!.slice(8, 12)).toEqual(['192.0.2.10', '192.0.2.1', '153', '1']);
      expect(outbound[4]![12]).toBe('40001');
      expect(outbound[5]!.slice(13, 15)).toEqual(['1', '123456']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!tshark)('a file that is flushed but not closed is already readable (crash-safe capture)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'spinet-capture-'));
    const path = join(dir, 'open.pcapng');
    const file = new FileSink(path);
    try {
      const writer = new PcapngWriter(file);
      for (let i = 0; i < 100; i++) writer.record({ timestampMs: 1e12 + i, direction: i % 2 ? 'in' : 'out', interfaceName: `if${i % 3}`, bytes: echo('echo-request', 1, i) });
      await writer.flush();
      const { rows, stderr } = await tsharkFields(path, ['frame.interface_name', 'icmp.seq']);
      expect(stderr).toBe('');
      expect(rows).toHaveLength(100);
      expect(rows[99]).toEqual(['if0', '99']);
    } finally {
      await file.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

