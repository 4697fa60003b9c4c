import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { parseMac } from '../../src/wire/address.js';
import { LabGateway } from '../../tools/lab-gateway.js';
import { echo, sha256, startStack, testPattern } from '../bridge/sim-node.js';

/** The simulated LAN's gateway node: the peer `npm start`, `spinet sim` and the host-CPU bench rely on. */
describe('the lab gateway (192.0.2.1 on the simulated LAN)', () => {
  it('answers ping and echoes TCP on port 7 byte for byte', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const gateway = await LabGateway.start({ clock, random: new SeededRandom(5), lan });
    const node = await startStack(clock, new SeededRandom(6), new VirtualNic(lan, parseMac('02:00:00:00:00:0a'), 'eth0'), '192.0.2.10');
    const pinged = node.stack.ping('192.0.2.1', { timeoutMs: 1_000 });
    await clock.advanceAsync(10);
    expect(await pinged).toMatchObject({ from: '192.0.2.1' });
    const data = testPattern(64 << 10, 4);
    const echoed = echo(node.net, 7, '192.0.2.1', data);
    let done = false;
    void echoed.finally(() => (done = true));
    for (let i = 0; i < 2_000 && !done; i++) {
      await clock.advanceAsync(5);
      await new Promise((resolve) => setImmediate(resolve)); // node:stream's pipe() flows from nextTick
    }
    const got = await echoed;
    expect(got.length).toBe(data.length);
    expect(sha256(got)).toBe(sha256(data));
    await node.stack.stop();
    await gateway.stop();
  });
});
