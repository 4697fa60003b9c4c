/**
 * The W5500 on the simulated board, on virtual time: spinet's Stack and TCP on the W5500 driver →
 * BridgeHal → the committed sketch in avr8js → the strict W5500 emulator on its SPI pins (INTn on
 * D2) → a VirtualLan with a second spinet stack as the peer. And `--chip auto` through the sketch.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { W5500Nic } from '../../src/drivers/w5500/driver.js';
import { bridgeDriver, createSimulatedEthernetBoard, type Chip } from '../../tools/boards.js';
import { BOARD_ADDRESS, BOARD_MAC, createPeer, createSimNode, echo, sha256, testPattern, type SimNode, type StackNode } from '../bridge/sim-node.js';

let node: SimNode<W5500Nic> | undefined;
let peer: StackNode | undefined;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await peer?.stack.stop();
  await node?.close();
  for (const cleanup of cleanups.splice(0)) await cleanup();
  node = peer = undefined;
});

describe('the W5500 through the simulated board (virtual time)', () => {
  it('answers pings and echoes 256 KiB byte-exact, with no driver misuse reported by the strict emulator', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const violations: string[] = [];
    node = await createSimNode({ clock, lan, chip: 'w5500', onStrictViolation: (m) => violations.push(m) });
    peer = await createPeer(clock, lan);
    await startTcpService(node.net, 'echo', 7);

    for (let i = 0; i < 3; i++) {
      const reply = await peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 1_000 });
      expect(reply).toMatchObject({ from: BOARD_ADDRESS, bytes: 64 });
    }
    const big = await peer.stack.ping(BOARD_ADDRESS, { timeoutMs: 1_000, size: 3000 });
    expect(big).toMatchObject({ from: BOARD_ADDRESS, bytes: 3008 });

    const data = testPattern(256 * 1024, 5);
    const t0 = clock.now();
    const echoed = await echo(peer.net, 7, BOARD_ADDRESS, data);
    const seconds = (clock.now() - t0) / 1000;
    expect(echoed.length).toBe(data.length);
    expect(sha256(echoed)).toBe(sha256(data));
    console.log(`256 KiB echo through the simulated Uno + W5500: ${seconds.toFixed(1)} s simulated; bridge ${JSON.stringify(node.hal.stats)}; driver ${JSON.stringify(node.nic.events)}`);
    expect(violations).toEqual([]);
    expect(node.hal.stats).toMatchObject({ naks: 0, badFrames: 0, lostReplies: 0, resyncs: 0 });
  }, 180_000);
});

describe('--chip auto through the sketch', () => {
  async function probeOn(chip: Chip): Promise<{ found: Chip; progress: string[] }> {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const board = await createSimulatedEthernetBoard({ board: 'uno', chip, clock, lan, mac: BOARD_MAC });
    const hal = await board.openHal();
    cleanups.push(async () => {
      await hal.close();
      await board.stop();
    });
    const progress: string[] = [];
    const driver = await bridgeDriver(hal, 'auto', { clock, mac: BOARD_MAC, progress: (m) => progress.push(m) });
    // The driver found is the one that brings the chip up.
    await driver.nic.start();
    expect(driver.nic.linkUp).toBe(true);
    await driver.nic.stop();
    return { found: driver.chip, progress };
  }

  it('finds the W5500 and says so', async () => {
    expect(await probeOn('w5500')).toEqual({ found: 'w5500', progress: ['chip: found a W5500 (VERSIONR 0x04)'] });
  }, 60_000);

  it('finds the ENC28J60 and says so', async () => {
    expect(await probeOn('enc28j60')).toEqual({ found: 'enc28j60', progress: ['chip: found an ENC28J60 (EREVID 0x06, rev. B7)'] });
  }, 60_000);
});
