/**
 * `spinet log`'s frame log (FilterSink → TextLogSink / PcapngWriter, as tools/commands/log.ts
 * composes them) on the simulated board — the sketch in avr8js, the emulated ENC28J60, the
 * serial bridge — with known traffic from a peer on the LAN whose own NIC is captured as an
 * independent record of what crossed the wire.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { findExecutable } from '../../hal/lan/tap.js';
import { CaptureNic, type CapturedFrame } from '../../src/capture/capture.js';
import { compileFilter } from '../../src/capture/filter.js';
import { FilterSink } from '../../src/capture/sinks.js';
import { TextLogSink } from '../../src/capture/text-log.js';
import { openPcapngFile } from '../../src/capture/file-sink.js';
import { decodeFrame, formatSummary } from '../../src/capture/decode.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { startUdpService } from '../../src/app/services/udp.js';
import { parseMac } from '../../src/wire/address.js';
import { createDgram } from '../../src/socket/dgram.js';
import { BOARD_ADDRESS, PEER_ADDRESS, createSimNode, echo, startStack, testPattern, type SimNode, type StackNode } from '../bridge/sim-node.js';

const execFileAsync = promisify(execFile);
const tshark = await findExecutable('tshark');
if (!tshark) console.warn('frame log vs tshark skipped: tshark is not installed (apt-get install tshark)');

let node: SimNode | undefined;
let peer: StackNode | undefined;
let dir: string | undefined;

afterEach(async () => {
  await peer?.stack.stop();
  await node?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  node = peer = dir = undefined;
});

/** A frame as the wire carries it: the ENC28J60 pads short frames to 60 bytes, a virtual NIC does not. */
function wireKey(bytes: Uint8Array): string {
  const summary = decodeFrame(bytes);
  const end = summary.ipv4 ? 14 + summary.ipv4.totalLength : summary.arp ? 42 : bytes.length;
  return Buffer.from(bytes.subarray(0, end)).toString('hex');
}

describe('spinet log on the simulated board', () => {
  it('shows every frame once, in order, decoded as tshark decodes it; filters keep exactly their frames', async () => {
    dir = mkdtempSync(join(tmpdir(), 'spinet-log-'));
    const pcapPath = join(dir, 'log.pcapng');
    const clock = new VirtualClock(0, Date.UTC(2026, 11, 7, 12, 0, 0));
    const lan = new VirtualLan(clock);
    const lines: string[] = [];
    const logged: CapturedFrame[] = [];
    const icmpLines: string[] = [];
    const tcpPort7: string[] = [];
    const all = new FilterSink(compileFilter(''), [new TextLogSink((l) => lines.push(l)), openPcapngFile(pcapPath), { record: (f) => logged.push({ ...f, bytes: f.bytes.slice() }) }]);
    const icmp = new FilterSink(compileFilter('icmp'), [new TextLogSink((l) => icmpLines.push(l))]);
    let limitReached = 0;
    const firstTcp = new FilterSink(compileFilter('tcp and dst port 7'), [new TextLogSink((l) => tcpPort7.push(l))], { limit: 2, onLimit: () => limitReached++ });
    node = await createSimNode({ clock, lan, captureSinks: [all, icmp, firstTcp] });

    // The peer's own NIC, captured: what the wire carried, independently of the board's log.
    const seen: CapturedFrame[] = [];
    const peerNic = new CaptureNic(new VirtualNic(lan, parseMac('02:5e:00:00:00:01'), 'peer0'), clock, [{ record: (f) => seen.push({ ...f, bytes: f.bytes.slice() }) }]);
    peer = await startStack(clock, new SeededRandom(1), peerNic, PEER_ADDRESS);
    await startTcpService(node.net, 'echo', 7);
    await startUdpService(node.stack, 'echo', 7);
    // From here on both are on the LAN and what they announced before has arrived: compare the rest.
    await new Promise((resolve) => clock.schedule(100, () => resolve(undefined)));
    for (const list of [logged, seen, lines]) list.length = 0;

    for (let i = 0; i < 3; i++) await peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 1_000 });
    const udp = createDgram(peer.stack.udp).createSocket();
    await new Promise<void>((resolve) => udp.bind(5000, () => resolve()));
    const answered = new Promise<Buffer>((resolve) => udp.once('message', (m: Buffer) => resolve(m)));
    udp.send(Buffer.from('hello over the bridge'), 7, BOARD_ADDRESS);
    expect((await answered).toString()).toBe('hello over the bridge');
    udp.close();
    const data = testPattern(3000);
    expect(Buffer.compare(await echo(peer.net, 7, BOARD_ADDRESS, data), Buffer.from(data))).toBe(0);
    // The peer's last ACK is still on its way over the serial link: let the board's clock run on.
    await new Promise((resolve) => clock.schedule(200, () => resolve(undefined)));
    await node.capture!.flush();

    // Every frame the peer sent reached the board's log once and in order, and every frame the
    // board sent reached the peer (each direction is ordered; the two interleave by timing).
    const keys = (frames: CapturedFrame[], direction: 'in' | 'out') => frames.filter((f) => f.direction === direction).map((f) => wireKey(f.bytes));
    expect(keys(logged, 'in')).toEqual(keys(seen, 'out'));
    expect(keys(logged, 'out')).toEqual(keys(seen, 'in'));
    expect(logged.length).toBeGreaterThan(20);
    expect(lines).toHaveLength(logged.length);
    expect(lines[0]).toMatch(/^12:00:\d\d\.\d{6} enc28j60 (in|out) /);
    for (const [i, frame] of logged.entries()) expect(lines[i]).toContain(`enc28j60 ${frame.direction} ${formatSummary(decodeFrame(frame.bytes))}`);

    // Filters: exactly the ICMP frames (3 requests in, 3 replies out); the first two TCP segments to port 7, then stop.
    expect(icmpLines.map((l) => l.replace(/^.* (in|out) .*ICMP (echo \w+).*$/, '$1 $2'))).toEqual(['in echo request', 'out echo reply', 'in echo request', 'out echo reply', 'in echo request', 'out echo reply']);
    expect(tcpPort7).toHaveLength(2);
    expect(tcpPort7[0]).toMatch(/ in .* > 192\.0\.2\.10\.7: Flags \[S\], seq \d+, ack 0, win \d+, options \[mss 1460,sackOK,TS val \d+ ecr 0,wscale \d+\], length 0$/);
    expect(limitReached).toBe(1);

    if (!tshark) return;
    await node.capture!.closeSinks();
    const fields = ['frame.number', 'eth.src', 'eth.dst', 'ip.src', 'ip.dst', 'ip.id', 'ip.ttl', 'icmp.seq', 'udp.srcport', 'udp.dstport', 'tcp.srcport', 'tcp.dstport', 'tcp.seq_raw', 'tcp.ack_raw', 'tcp.window_size_value', 'tcp.len', 'arp.opcode'];
    const { stdout } = await execFileAsync(tshark, ['-r', pcapPath, '-T', 'fields', '-E', 'separator=|', '-o', 'tcp.analyze_sequence_numbers:FALSE', ...fields.flatMap((f) => ['-e', f])]);
    const rows = stdout.trim().split('\n').map((l) => l.split('|'));
    const before = rows.length - logged.length;
    expect(before).toBeGreaterThanOrEqual(1);
    for (const [i, frame] of logged.entries()) {
      const s = decodeFrame(frame.bytes);
      const t = s.tcp;
      const ours = [
        String(before + i + 1),
        s.source,
        s.destination,
        s.ipv4?.source ?? '',
        s.ipv4?.destination ?? '',
        s.ipv4 ? `0x${s.ipv4.identification.toString(16).padStart(4, '0')}` : '',
        s.ipv4 ? String(s.ipv4.ttl) : '',
        s.icmp?.sequence !== undefined ? String(s.icmp.sequence) : '',
        s.udp ? String(s.udp.sourcePort) : '',
        s.udp ? String(s.udp.destinationPort) : '',
        t ? String(t.sourcePort) : '',
        t ? String(t.destinationPort) : '',
        t ? String(t.sequence) : '',
        t ? String(t.acknowledgment) : '',
        t ? String(t.window) : '',
        t ? String(t.length) : '',
        s.arp ? (s.arp.operation === 'request' ? '1' : '2') : '',
      ];
      expect(rows[before + i], lines[i]).toEqual(ours);
    }
  });
});
