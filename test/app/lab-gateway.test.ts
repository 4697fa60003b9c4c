import { describe, expect, it } from 'vitest';
import mqtt from 'mqtt';
import { VirtualClock } from '../../src/time/virtual-clock.js';
import { SeededRandom } from '../../src/time/random.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { parseMac } from '../../src/wire/address.js';
import { LAB_MQTT_PORT, LabGateway } from '../../tools/lab-gateway.js';
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

  it('runs an MQTT broker on port 1883 that delivers one board\'s publication to another board\'s subscription', async () => {
    const clock = new VirtualClock();
    const lan = new VirtualLan(clock);
    const gateway = await LabGateway.start({ clock, random: new SeededRandom(7), lan });
    const boardA = await startStack(clock, new SeededRandom(8), new VirtualNic(lan, parseMac('02:00:00:00:00:0a'), 'eth0'), '192.0.2.10');
    const boardB = await startStack(clock, new SeededRandom(9), new VirtualNic(lan, parseMac('02:00:00:00:00:0b'), 'eth0'), '192.0.2.11');
    // The mqtt package unchanged: its stream is a spinet TCP connection to the gateway.
    const client = (board: typeof boardA, clientId: string) =>
      new mqtt.MqttClient(() => board.net.connect(LAB_MQTT_PORT, '192.0.2.1'), { clientId, reconnectPeriod: 0 });
    /** Run the LAN on virtual time until `promise` settles (node:stream moves data on nextTick and setImmediate). */
    const settle = async <T>(promise: Promise<T>): Promise<T> => {
      let done = false;
      void promise.finally(() => (done = true)).catch(() => undefined);
      for (let i = 0; i < 2_000 && !done; i++) {
        await clock.advanceAsync(5);
        await new Promise((resolve) => setImmediate(resolve));
      }
      return promise;
    };
    const connected = (c: mqtt.MqttClient) => new Promise<void>((resolve, reject) => (c.once('connect', () => resolve()), c.once('error', reject)));

    const subscriber = client(boardA, 'board-a');
    await settle(connected(subscriber));
    await settle(subscriber.subscribeAsync('lab/+/temperature', { qos: 1 }));
    const received = new Promise<{ topic: string; payload: string; qos: number }>((resolve) =>
      subscriber.once('message', (topic, payload, packet) => resolve({ topic, payload: payload.toString(), qos: packet.qos })),
    );
    const publisher = client(boardB, 'board-b');
    await settle(connected(publisher));
    await settle(publisher.publishAsync('lab/b/temperature', '21.5', { qos: 1 }));
    expect(await settle(received)).toEqual({ topic: 'lab/b/temperature', payload: '21.5', qos: 1 });

    await settle(Promise.all([subscriber.endAsync(), publisher.endAsync()]));
    await boardA.stack.stop();
    await boardB.stack.stop();
    await gateway.stop();
  });
});
