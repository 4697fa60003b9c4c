/**
 * Hostile frames from the Linux side of a TAP, with the kernel's own tools (scapy): the frames
 * that used to end the process (an exception out of the receive path reached the TAP relay's
 * socket handler) or hang it (a datagram from our own address, answered to ourselves). First the
 * stack in this process, on a VirtualNic bridged to the TAP; then `spinet run` as its own process,
 * which must still be alive, answer ping and exit 0 on SIGINT. Needs root, /dev/net/tun, socat,
 * ip, ping and scapy.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { startUdpService } from '../../src/app/services/udp.js';
import { Stack } from '../../src/stack/stack.js';
import { createDgram } from '../../src/socket/dgram.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { formatMac, parseMac } from '../../src/wire/address.js';
import { createLab, scapyPython, skipLabUnless, startSpinetIn, waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from './netns.js';

const run = promisify(execFile);
const OUR_MAC = parseMac('02:00:00:00:5e:0b');
const CLI_MAC = '02:5e:00:00:00:0a';

const skip = await skipLabUnless(['ping', 'socat']);
const python = skip ? undefined : await scapyPython();
if (!skip && !python) console.warn('hostile TAP tests skipped: scapy is not installed (apt-get install python3-scapy)');

/** The frames: a UDP echo from source port 0, a datagram from our own echo port to it, a LAND SYN, fragments past the end, and one to a socket whose handler throws. */
function hostileScript(ifname: string, mac: string): string {
  return `
from scapy.all import Ether, IP, UDP, TCP, Raw, sendp, get_if_hwaddr
e = Ether(src=get_if_hwaddr('${ifname}'), dst='${mac}')
us = '${LAB_STACK_ADDRESS}'
frames = [
  e/IP(src='${LAB_HOST_ADDRESS}', dst=us)/UDP(sport=0, dport=7)/Raw(b'port zero'),
  e/IP(src=us, dst=us)/UDP(sport=7, dport=7)/Raw(b'loop'),
  e/IP(src=us, dst=us)/TCP(sport=80, dport=80, flags='S', seq=1000),
  e/IP(src='${LAB_HOST_ADDRESS}', dst=us, proto=17, id=9, flags='MF', frag=0)/Raw(b'A'*48),
  e/IP(src='${LAB_HOST_ADDRESS}', dst=us, proto=17, id=9, flags='MF', frag=18)/Raw(b'B'*48),
  e/IP(src='${LAB_HOST_ADDRESS}', dst=us, proto=17, id=9, frag=12)/Raw(b'C'*48),
  e/IP(src='${LAB_HOST_ADDRESS}', dst=us)/UDP(sport=4000, dport=5000)/Raw(b'throw'),
]
sendp(frames, iface='${ifname}', verbose=False)
print(len(frames))
`;
}

describe.skipIf(skip || !python)('hostile frames from the kernel side of a TAP', () => {
  let lab: Lab;
  let stack: Stack;
  let nic: VirtualNic;
  const reported: string[] = [];

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    nic = new VirtualNic(lan, OUR_MAC, 'spinet0');
    stack = new Stack({ clock, random: new CryptoRandom(), reportContained: (site) => reported.push(site) });
    stack.addInterface(nic).addAddress(LAB_STACK_ADDRESS, 24);
    await stack.start();
    await startUdpService(stack, 'echo', 7);
    const throwing = createDgram(stack.udp).createSocket();
    throwing.on('message', () => {
      throw new Error('a bug in the application');
    });
    await new Promise<void>((resolve) => throwing.bind(5000, () => resolve()));
  });

  afterAll(async () => {
    await stack?.stop();
    await nic?.stop();
    await lab?.close();
  });

  it('drops or contains every one, counted, and keeps answering pings', async () => {
    const result = await lab.exec(python!, ['-c', hostileScript(lab.ifname, formatMac(OUR_MAC))], { timeoutMs: 60_000 });
    expect(result.stderr).not.toMatch(/Traceback/);
    expect(result.stdout.trim()).toBe('7');
    const c = await waitFor(() => {
      const now = stack.counters();
      return now.udp.dropped['socket-threw'] === 1 ? now : undefined;
    }, 5_000, 'the throwing handler').catch((error) => {
      throw new Error(`${(error as Error).message}: ${JSON.stringify(stack.counters())}`);
    });
    expect(c.ipv4.dropped['martian-source-own']).toBe(2);
    expect(c.ipv4.dropped['fragment-beyond-end']).toBe(1);
    expect(reported).toEqual(['a UDP socket message handler']);
    const ping = await lab.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
    expect(ping.stdout).toMatch(/2 received/);
  }, 90_000);
});

describe.skipIf(skip || !python)('spinet run on a TAP, sent the same frames', () => {
  const netns = `spinet-lab-${process.pid}-901`;
  let spinet: ChildProcess | undefined;

  beforeAll(async () => {
    await run('ip', ['netns', 'add', netns]);
    await run('ip', ['netns', 'exec', netns, 'ip', 'link', 'set', 'lo', 'up']);
  });

  afterAll(async () => {
    if (spinet && spinet.exitCode === null && spinet.signalCode === null) spinet.kill('SIGKILL');
    await run('ip', ['netns', 'del', netns]).catch(() => undefined);
  });

  it('stays up, answers ping afterwards and exits 0 on SIGINT', async () => {
    const started = await startSpinetIn(netns, ['run', '--board', 'virtual', '--mac', CLI_MAC,
      '--lan', 'tap:sph0', '--tap-addr', `${LAB_HOST_ADDRESS}/24`, '--ip', `${LAB_STACK_ADDRESS}/24`, '--serve', 'echo:7']);
    spinet = started.child;
    const child = spinet;
    const sent = await run('ip', ['netns', 'exec', netns, python!, '-c', hostileScript('sph0', CLI_MAC)], { timeout: 60_000 });
    expect(sent.stdout.trim()).toBe('7');
    const ping = await run('ip', ['netns', 'exec', netns, 'ping', '-c', '3', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }));
    expect(child.exitCode, started.output()).toBeNull();
    expect(ping.stdout, started.output()).toMatch(/3 received/);
    child.kill('SIGINT');
    expect(await started.exited, started.output()).toBe(0);
    expect(started.output()).toMatch(/martian-source-own 2/);
  }, 90_000);
});
