/**
 * End to end on virtual time: spinet's Stack and TCP on the ENC28J60 driver, over the serial
 * bridge to the committed sketch running in avr8js, the emulated ENC28J60 on its SPI pins, and a
 * second spinet stack on the same VirtualLan as the peer. The VirtualClock is advanced by the AVR
 * itself, so this runs as fast as the emulator goes and every fault lands at a repeatable moment
 * of simulated time. (The same path against the Linux kernel in real time: test/lab/sim-board.test.ts.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import type { HalEvent } from '../../src/drivers/hal.js';
import { findExecutable } from '../../hal/lan/tap.js';
import { TextLogSink } from '../../src/capture/text-log.js';
import { openPcapngFile } from '../../src/capture/file-sink.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { BOARD_ADDRESS, createPeer, createSimNode, echo, sha256, testPattern, type SimNode, type SimNodeOptions, type StackNode } from './sim-node.js';

const MIB = 1 << 20;
let node: SimNode | undefined;
let peer: StackNode | undefined;
let dir: string | undefined;

afterEach(async () => {
  await peer?.stack.stop();
  await node?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  node = peer = dir = undefined;
});

async function setUp(options: Partial<Omit<SimNodeOptions, 'chip'>> = {}) {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  node = await createSimNode({ clock, lan, ...options });
  peer = await createPeer(clock, lan);
  await startTcpService(node.net, 'echo', 7);
  return { clock, node, peer };
}

/** Counted drops anywhere in the stack for a corrupted packet (none may reach TCP through the bridge). */
function checksumDrops(node: SimNode): number {
  const c = node.stack.counters() as unknown as Record<string, { dropped?: Record<string, number> }>;
  return Object.values(c).reduce((sum, layer) => sum + (layer.dropped?.['bad-checksum'] ?? 0), 0);
}

describe('the full stack through the simulated board (virtual time)', () => {
  it('answers pings, echoes 1 MiB hash-equal, and logs every frame as text and pcapng while it runs', async () => {
    dir = mkdtempSync(join(tmpdir(), 'spinet-e2e-'));
    const pcapPath = join(dir, 'board.pcapng');
    const lines: string[] = [];
    const { clock, node, peer } = await setUp({ captureSinks: [new TextLogSink((line) => lines.push(line)), openPcapngFile(pcapPath)] });

    for (let i = 0; i < 3; i++) {
      const reply = await peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 1_000 });
      expect(reply).toMatchObject({ from: BOARD_ADDRESS, bytes: 64 });
    }
    const data = testPattern(MIB);
    const t0 = clock.now();
    const echoed = await echo(peer.net, 7, BOARD_ADDRESS, data);
    const seconds = (clock.now() - t0) / 1000;
    expect(echoed.length).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    console.log(`1 MiB echo through the simulated Uno: ${seconds.toFixed(1)} s simulated, ${(MIB / 1024 / seconds).toFixed(1)} KiB/s each way; bridge ${JSON.stringify(node.hal.stats)}`);
    // A clean serial link: nothing corrupt ever reaches the stack, nothing is resent on the bridge.
    expect(checksumDrops(node)).toBe(0);
    expect(node.hal.stats).toMatchObject({ naks: 0, badFrames: 0, lostReplies: 0, resyncs: 0 });

    // The text log saw the pings and the transfer while the board ran.
    expect(lines.filter((l) => / in .*ICMP echo request/.test(l))).toHaveLength(3);
    expect(lines.filter((l) => / out .*ICMP echo reply/.test(l))).toHaveLength(3);
    expect(lines.some((l) => / in .*192\.0\.2\.1\.\d+ > 192\.0\.2\.10\.7: Flags \[S\]/.test(l))).toBe(true);
    expect(lines.some((l) => /bad .*cksum/.test(l))).toBe(false);
    await node.capture!.closeSinks();
    const pcap = readFileSync(pcapPath);
    expect(pcap.readUInt32LE(0)).toBe(0x0a0d0d0a); // pcapng Section Header Block
    if (await findExecutable('tshark')) {
      const { stdout } = await promisify(execFile)('tshark', ['-r', pcapPath, '-q', '-z', 'io,phs'], { maxBuffer: 1 << 24 });
      expect(stdout).toMatch(/icmp +frames:6/);
      const tcpFrames = Number(/tcp +frames:(\d+)/.exec(stdout)?.[1]);
      expect(tcpFrames).toBeGreaterThan((2 * MIB) / 1460);
    } else {
      console.warn('tshark not installed: pcapng checked by its header only');
    }
  }, 120_000);

  it('given corrupted and dropped serial bytes both ways, a board reset and an unplugged port mid-transfer, echoes 1 MiB intact', async () => {
    const { node, peer } = await setUp();
    const events: HalEvent[] = [];
    node.hal.onEvent((event) => events.push(event));
    const { faults } = node.board;
    // About one byte in 100 000 corrupted and one in 200 000 lost, each way: dozens of each.
    faults.setRandom('host-to-board', { corrupt: 1e-5, drop: 5e-6, random: new SeededRandom(11) });
    faults.setRandom('board-to-host', { corrupt: 1e-5, drop: 5e-6, random: new SeededRandom(12) });
    const data = testPattern(MIB, 2);
    let resetDone = false;
    let unplugged = false;
    const echoed = await echo(peer.net, 7, BOARD_ADDRESS, data, (received) => {
      if (!resetDone && received >= MIB / 3) {
        resetDone = true;
        faults.resetBoard();
      }
      if (!unplugged && received >= (2 * MIB) / 3) {
        unplugged = true;
        faults.vanishPort({ powerOff: true });
        node.board.clock.schedule(300, () => faults.reappearPort());
      }
    });
    faults.setRandom('host-to-board', undefined);
    faults.setRandom('board-to-host', undefined);
    expect(echoed.length).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));

    const link = node.board.link.stats;
    console.log(`faults: link ${JSON.stringify(link)}; bridge ${JSON.stringify(node.hal.stats)}; driver ${JSON.stringify(node.nic.events)}`);
    expect(link.corrupted).toBeGreaterThan(10);
    expect(link.dropped).toBeGreaterThan(5);
    expect(node.hal.stats.naks + node.hal.stats.retransmittedFrames).toBeGreaterThan(0);
    // The reset and the unplug were each noticed and recovered from, with the chip re-initialised.
    expect(events).toEqual([
      { type: 'link-lost', reason: 'board reset' },
      { type: 'link-restored', boardReset: true },
      { type: 'link-lost', reason: expect.any(String) },
      { type: 'link-restored', boardReset: true },
    ]);
    expect(node.nic.events['hal-link-restored']).toBe(2);
    // Corruption on the serial link is caught by the bridge's CRC, never by TCP's checksum.
    expect(checksumDrops(node)).toBe(0);
    // And the board still answers.
    expect(await peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 1_000 })).toMatchObject({ from: BOARD_ADDRESS });
  }, 120_000);
});
