import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLab, scapyPython, skipLabUnless, waitFor, LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, type Lab } from './netns.js';
import { VirtualLan, VirtualNic } from '../../hal/lan/switch.js';
import { Stack } from '../../src/stack/stack.js';
import { createDgram, type UdpSocket } from '../../src/socket/dgram.js';
import { RealClock } from '../../src/time/real-clock.js';
import { CryptoRandom } from '../../src/time/random.js';
import { formatMac, parseMac } from '../../src/wire/address.js';
import { CaptureNic } from '../../src/capture/capture.js';
import { TextLogSink } from '../../src/capture/text-log.js';
import type { Clock } from '../../src/time/clock.js';
import type { Nic } from '../../src/link/nic.js';
import { createMockEnc28j60Board, createMockW5500Board } from '../../tools/boards.js';

/**
 * spinet against the Linux kernel: the stack on a NIC on a VirtualLan bridged to a TAP in a
 * throw-away namespace where the kernel holds 192.0.2.1/24. The kernel is the reference
 * implementation; if it and spinet understand each other, both sides followed the RFCs.
 *
 * Every suite runs once per board (`--board` in the CLI): the stack straight on a VirtualNic, and
 * the stack on each chip's driver → mock HAL → emulated chip, ENC28J60 and W5500 (strict: any
 * driver misuse the chip would punish fails the suite).
 */
const skip = await skipLabUnless(['ping', 'socat', 'ss']);
const OUR_MAC = parseMac('02:00:00:00:5e:0a');

interface BoardUnderTest {
  readonly nic: Nic;
  /** Driver misuse reported by the emulator's strict mode (always empty for a VirtualNic). */
  readonly violations: readonly string[];
  /**
   * Frames shorter than 60 bytes reach the stack padded with zeros, as from a real cable (where
   * the sender's MAC pads them). The TAP hands over the kernel's runts unpadded; the emulated
   * ENC28J60 pads them as the wire would have; a VirtualNic passes them on as they are.
   */
  readonly padsShortFrames: boolean;
  close(): Promise<void>;
}

const BOARDS: readonly { name: string; open(clock: Clock, lan: VirtualLan): BoardUnderTest }[] = [
  {
    name: 'virtual NIC',
    open(_clock, lan) {
      const nic = new VirtualNic(lan, OUR_MAC, 'spinet0');
      return { nic, violations: [], padsShortFrames: false, close: () => nic.stop() };
    },
  },
  ...(
    [
      ['ENC28J60 driver → mock HAL → emulator', createMockEnc28j60Board],
      ['W5500 driver → mock HAL → emulator', createMockW5500Board],
    ] as const
  ).map(([name, createBoard]) => ({
    name,
    open(clock: Clock, lan: VirtualLan): BoardUnderTest {
      const violations: string[] = [];
      const board = createBoard({ clock, lan, mac: OUR_MAC, name: 'spinet0', strict: true, onStrictViolation: (m) => violations.push(m) });
      return {
        nic: board.nic,
        violations,
        // Both chips take frames from a real cable, which the sender's MAC padded to 60 bytes.
        padsShortFrames: true,
        close: async () => {
          await board.nic.stop();
          board.emulator.unplug();
          await board.hal.close();
        },
      };
    },
  })),
];

describe.skipIf(skip).each(BOARDS)('spinet stack ⇄ Linux kernel over a TAP ($name)', (boardType) => {
  let lab: Lab;
  let stack: Stack;
  let board: BoardUnderTest;
  const log: string[] = [];

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    board = boardType.open(clock, lan);
    // Captured, so a failure shows what crossed the wire.
    const nic = new CaptureNic(board.nic, clock, [new TextLogSink((line) => log.push(line))]);
    stack = new Stack({ clock, random: new CryptoRandom() });
    const iface = stack.addInterface(nic);
    iface.addAddress(LAB_STACK_ADDRESS, 24);
    await stack.start();
  });

  afterEach(() => {
    expect(board.violations).toEqual([]);
  });

  afterAll(async () => {
    await stack?.stop();
    await board?.close();
    await lab?.close();
    if (process.env['SPINET_LAB_LOG']) console.log(log.join('\n'));
  });

  it('answers the kernel’s ping (ARP, then echo replies)', async () => {
    const result = await lab.exec('ping', ['-c', '3', '-i', '0.2', '-W', '2', LAB_STACK_ADDRESS]);
    expect(result.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(await lab.neighbour(LAB_STACK_ADDRESS)).toContain(`lladdr ${formatMac(OUR_MAC)}`);
  });

  it('pings the kernel', async () => {
    const reply = await stack.ping(LAB_HOST_ADDRESS, { timeoutMs: 2_000 });
    expect(reply).toMatchObject({ from: LAB_HOST_ADDRESS, bytes: 64, ttl: 64 });
    expect(reply.rttMs).toBeGreaterThan(0);
    expect(reply.rttMs).toBeLessThan(1_000);
    // ARP on our side too: the kernel's MAC is in the stack's cache (the kernel's side of it is
    // checked above).
    const link = await lab.exec('cat', [`/sys/class/net/${lab.ifname}/address`]);
    expect(stack.arp.lookup(1, LAB_HOST_ADDRESS)).toBe(link.stdout.trim());
  });

  it('answers a 4000-byte ping from the kernel: reassembles three fragments and fragments its reply', async () => {
    const result = await lab.exec('ping', ['-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', LAB_STACK_ADDRESS]);
    expect(result.stdout).toMatch(/4008 bytes from 192\.0\.2\.10/);
    expect(result.stdout).toMatch(/2 packets transmitted, 2 received/);
    expect(log.some((l) => l.includes(' out ') && /\(frag id \d+ offset 2960\)/.test(l))).toBe(true);
  });

  it('sends a 4000-byte ping the kernel reassembles and answers', async () => {
    const reply = await stack.ping(LAB_HOST_ADDRESS, { size: 4000, timeoutMs: 2_000 });
    expect(reply.bytes).toBe(4008);
  });

  it('exchanges UDP with socat in both directions', async () => {
    // Kernel-side echo server: every datagram to 192.0.2.1:7777 comes back to its sender.
    lab.spawn('socat', ['UDP4-RECVFROM:7777,bind=192.0.2.1,fork', 'PIPE']);
    await waitFor(async () => (await lab.exec('ss', ['-Hlun', 'sport = :7777'])).stdout.includes('7777'), 5_000, 'socat on :7777');
    const client = createDgram(stack.udp).createSocket({ type: 'udp4' });
    const echoed = new Promise<{ text: string; from: string; port: number }>((resolve) =>
      client.once('message', (msg: Buffer, rinfo: { address: string; port: number }) => resolve({ text: msg.toString(), from: rinfo.address, port: rinfo.port })),
    );
    client.send('hello from spinet', 7777, LAB_HOST_ADDRESS);
    expect(await echoed).toEqual({ text: 'hello from spinet', from: LAB_HOST_ADDRESS, port: 7777 });
    client.close();

    // spinet-side echo server; the kernel's socat is the client.
    const server: UdpSocket = createDgram(stack.udp).createSocket({ type: 'udp4' });
    server.on('message', (msg: Buffer, rinfo: { address: string; port: number }) => server.send(msg, rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => server.bind(7000, () => resolve()));
    const result = await lab.exec('socat', ['-t', '0.5', '-T', '3', '-', `UDP4:${LAB_STACK_ADDRESS}:7000`], { input: 'hello from linux\n' });
    expect(result.stdout).toBe('hello from linux\n');
    server.close();
  });

  it('rejects a UDP datagram to a closed port with ICMP port unreachable', async () => {
    const result = await lab.exec('socat', ['-T', '2', '-', `UDP4:${LAB_STACK_ADDRESS}:9`], { input: 'anyone?\n' });
    // The kernel turns the ICMP error into ECONNREFUSED on its connected UDP socket.
    expect(result.stderr).toMatch(/Connection refused/);
  });
});

const python = await scapyPython();
if (!python && !skip) console.warn('scapy tests skipped: scapy is not installed (apt-get install python3-scapy)');

describe.skipIf(skip || !python).each(BOARDS)('malformed frames from scapy ($name)', (boardType) => {
  let lab: Lab;
  let stack: Stack;
  let board: BoardUnderTest;

  beforeAll(async () => {
    lab = await createLab();
    const clock = new RealClock();
    const lan = new VirtualLan(clock);
    lab.tap.attachTo(lan);
    board = boardType.open(clock, lan);
    stack = new Stack({ clock, random: new CryptoRandom() });
    stack.addInterface(board.nic).addAddress(LAB_STACK_ADDRESS, 24);
    await stack.start();
  });

  afterEach(() => {
    expect(board.violations).toEqual([]);
  });

  afterAll(async () => {
    await stack?.stop();
    await board?.close();
    await lab?.close();
  });

  it('counts each as a drop with its reason, and keeps answering pings', async () => {
    const script = `
from scapy.all import Ether, IP, ICMP, UDP, Raw, sendp, get_if_hwaddr
import sys
iface = '${lab.ifname}'
src = get_if_hwaddr(iface)
e = Ether(src=src, dst='${formatMac(OUR_MAC)}')
ip = dict(src='${LAB_HOST_ADDRESS}', dst='${LAB_STACK_ADDRESS}')
frames = [
  e/IP(chksum=0x1234, **ip)/ICMP(),                          # ipv4 bad-checksum
  e/IP(version=6, **ip)/ICMP(),                              # ipv4 bad-version
  e/IP(ihl=3, **ip)/ICMP(),                                  # ipv4 bad-header-length
  e/IP(len=1000, **ip)/ICMP(),                               # ipv4 truncated
  e/IP(**ip)/UDP(sport=1234, dport=7000, chksum=0xdead)/Raw(b'x'),   # udp bad-checksum
  e/IP(**ip)/ICMP(chksum=0xbeef)/Raw(b'hello'),              # icmp bad-checksum
  e/IP(**ip, flags='MF', frag=8190)/Raw(b'A'*64),            # fragment beyond 64 KiB
  e/IP(**ip, proto=200)/Raw(b'?'),                           # unknown protocol
  Ether(src=src, dst='${formatMac(OUR_MAC)}', type=0x0800)/Raw(b'\\x45'),   # runt: one byte of IPv4
]
sendp(frames, iface=iface, verbose=False)
print(len(frames))
`;
    const before = stack.counters();
    const result = await lab.exec(python!, ['-c', script], { timeoutMs: 60_000 });
    expect(result.stderr).not.toMatch(/Traceback/);
    expect(result.stdout.trim()).toBe('9');
    const after = await waitFor(() => {
      const c = stack.counters();
      const dropped = (layer: keyof typeof c) => Object.values(c[layer].dropped).reduce((a, b) => a + b, 0) - Object.values(before[layer].dropped).reduce((a, b) => a + b, 0);
      return dropped('ipv4') + dropped('udp') + dropped('icmp') >= 9 ? c : undefined;
    }, 5_000, 'nine drops').catch((error) => {
      throw new Error(`${(error as Error).message}: ${JSON.stringify({ before, now: stack.counters(), stdout: result.stdout, stderr: result.stderr })}`);
    });
    const delta = (layer: 'ipv4' | 'udp' | 'icmp', reason: string) => (after[layer].dropped[reason] ?? 0) - (before[layer].dropped[reason] ?? 0);
    expect(delta('ipv4', 'bad-checksum')).toBe(1);
    expect(delta('ipv4', 'bad-version')).toBe(1);
    expect(delta('ipv4', 'bad-header-length')).toBe(1);
    // The one-byte runt: as sent, its IPv4 header is cut short; padded to 60 bytes (a chip on a
    // cable), its total length reads 0 from the padding.
    expect(delta('ipv4', 'truncated')).toBe(board.padsShortFrames ? 1 : 2);
    expect(delta('ipv4', 'bad-length')).toBe(board.padsShortFrames ? 1 : 0);
    expect(delta('ipv4', 'fragment-oversize')).toBe(1);
    expect(delta('ipv4', 'unknown-protocol')).toBe(1);
    expect(delta('udp', 'bad-checksum')).toBe(1);
    expect(delta('icmp', 'bad-checksum')).toBe(1);

    const ping = await lab.exec('ping', ['-c', '1', '-W', '2', LAB_STACK_ADDRESS]);
    expect(ping.stdout).toMatch(/1 received/);
  });
});
