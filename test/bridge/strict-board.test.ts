/**
 * The simulated board's ENC28J60 is strict: the real sketch and the driver run against a chip that
 * reports every misuse, and a misuse fails the test (SimNode.close()). Half duplex against an
 * auto-negotiating switch port, as the driver defaults to, with frames on the wire at 10 Mbit/s.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { VirtualLan } from '../../hal/lan/switch.js';
import { startTcpService } from '../../src/app/services/tcp.js';
import { BOARD_ADDRESS, createPeer, createSimNode, echo, sha256, testPattern, type SimNode, type StackNode } from './sim-node.js';

let node: SimNode | undefined;
let peer: StackNode | undefined;

afterEach(async () => {
  await peer?.stack.stop();
  await node?.close();
  node = peer = undefined;
});

/** A 64 KiB echo from the peer through the board; the virtual seconds it took. */
async function echoThroughBoard(options: Partial<Parameters<typeof createSimNode>[0]> = {}): Promise<number> {
  const clock = new VirtualClock();
  const lan = new VirtualLan(clock);
  node = await createSimNode({ clock, lan, ...options });
  peer = await createPeer(clock, lan);
  await startTcpService(node.net, 'echo', 7);
  const data = testPattern(64 * 1024, 3);
  const started = clock.now();
  const back = await echo(peer.net, 7, BOARD_ADDRESS, data);
  expect(sha256(back)).toBe(sha256(data));
  return (clock.now() - started) / 1000;
}

describe('the simulated board runs a strict ENC28J60', () => {
  it('echoes 64 KiB in half duplex (the default) with no strict report and no frame cut short', async () => {
    const seconds = await echoThroughBoard();
    expect(node!.nic.events['tx-preempted'] ?? 0).toBe(0);
    expect(node!.violations).toEqual([]);
    console.log(`64 KiB echo, half duplex: ${seconds.toFixed(2)} s virtual`);
  }, 300_000);

  it('echoes 64 KiB in full duplex against a port forced to full duplex, with no strict report', async () => {
    const seconds = await echoThroughBoard({ driverOptions: { fullDuplex: true }, chipOptions: { linkPartner: 'full-duplex' } });
    expect(node!.violations).toEqual([]);
    console.log(`64 KiB echo, full duplex: ${seconds.toFixed(2)} s virtual`);
  }, 300_000);

  it('reports a misuse on the board path: ERXFCON written while RXEN is set', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    node = await createSimNode({ clock, lan });
    // WCR ERXFCON needs bank 1: BFS ECON1 BSEL0, then WCR 0x18, then back to bank 0.
    await node.hal.spi.transfer([{ write: Uint8Array.of(0x80 | 0x1f, 0x01) }, { write: Uint8Array.of(0x40 | 0x18, 0x00) }, { write: Uint8Array.of(0xa0 | 0x1f, 0x03) }]);
    expect(node.violations.join()).toMatch(/ERXFCON changed while ECON1.RXEN is set/);
    (node.violations as string[]).length = 0;
  }, 120_000);
});
