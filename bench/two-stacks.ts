import type { Clock } from '../src/time/clock.js';
import { SeededRandom } from '../src/time/random.js';
import { VirtualLan, VirtualNic } from '../hal/lan/switch.js';
import { Stack } from '../src/stack/stack.js';
import { parseMac } from '../src/wire/address.js';

/**
 * Two stacks on one VirtualLan (A = 192.0.2.10, B = 192.0.2.11), in this one thread: the cost of
 * the stack itself, no device in between. The LAN delivers synchronously, so a datagram sent by A
 * is in B's 'message' handler before send() returns.
 */
export async function twoStacks(clock: Clock, lan: VirtualLan = new VirtualLan(clock)) {
  const make = async (n: number) => {
    const stack = new Stack({ clock, random: new SeededRandom(n) });
    const iface = stack.addInterface(new VirtualNic(lan, parseMac(`02:00:00:00:00:${n}`), `vnic${n}`));
    iface.addAddress(`192.0.2.${n}`, 24);
    await stack.start();
    return stack;
  };
  const a = await make(10);
  const b = await make(11);
  // Resolve ARP both ways up front: the benchmark measures the data path, not resolution.
  a.arp.addStatic(1, '192.0.2.11', '02:00:00:00:00:11');
  b.arp.addStatic(1, '192.0.2.10', '02:00:00:00:00:10');
  return { a, b };
}
