import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { access, constants, readFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import type { LanEndpoint, LanPort, VirtualLan } from './switch.js';
import { parseCidr } from '../../src/wire/address.js';

/**
 * `--lan tap:IFNAME`: a cable from a NIC (or a whole VirtualLan) into a Linux TAP device, so the
 * kernel on this host is a peer on the wire — ping, ARP, `socat`, `curl` against the stack.
 *
 * Node cannot open /dev/net/tun itself (it needs an ioctl), so `socat` does: it opens the TAP and
 * relays every frame, one per datagram, to a UDP socket of ours on 127.0.0.1 and back.
 *
 *   kernel ⇄ TAP ⇄ socat ⇄ UDP 127.0.0.1 ⇄ TapAttachment ⇄ LanEndpoint / VirtualLan
 *
 * A TAP spinet creates is not persistent: it disappears with socat, which we stop on close(), on process exit,
 * on SIGINT/SIGTERM, and (through `setpriv --pdeathsig`) even when this process is killed.
 * With `netns`, socat creates the TAP under a temporary name in our namespace (so the UDP relay
 * stays on our loopback); we then move it into the namespace and rename it there.
 */
export interface TapOptions {
  /** Interface name on the Linux side (1–15 of [A-Za-z0-9_.-]). */
  readonly ifname: string;
  /** Give the Linux side this address, 'A/N' (`--tap-addr`). */
  readonly address?: string;
  /** Put the TAP into this existing network namespace (`ip netns add NAME`). */
  readonly netns?: string;
  /** MTU of the Linux side (default: the kernel's, 1500). */
  readonly mtu?: number;
  /** The TUN/TAP clone device (default /dev/net/tun). */
  readonly tunDevice?: string;
  /** Path of socat (default: found on PATH). */
  readonly socatPath?: string;
  /** How long socat may take to bring the TAP up (default 5 s). */
  readonly startTimeoutMs?: number;
}

export type TapErrorCode = 'EACCES' | 'EPERM' | 'ENOENT' | 'EEXIST' | 'EINVAL' | 'ETIMEDOUT' | 'EIO' | 'ENETDOWN';

export class TapError extends Error {
  constructor(
    readonly code: TapErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TapError';
  }
}

export interface TapStats {
  /** Frames from the kernel, relayed into the cable. */
  fromKernelFrames: number;
  fromKernelBytes: number;
  /** Frames from the cable, relayed to the kernel. */
  toKernelFrames: number;
  toKernelBytes: number;
  /** Datagrams on our relay socket that did not come from our socat. */
  strayDatagrams: number;
  /** Errors on the relay socket (not fatal: the next frame may pass). */
  relayErrors: number;
}

/** `--lan` values: the built-in simulated LAN or a TAP device. */
export type LanSpec = { readonly kind: 'sim' } | { readonly kind: 'tap'; readonly ifname: string };

export function parseLanSpec(spec: string): LanSpec {
  if (spec === 'sim') return { kind: 'sim' };
  if (spec.startsWith('tap:')) {
    const ifname = spec.slice(4);
    checkIfname(ifname);
    return { kind: 'tap', ifname };
  }
  throw new TapError('EINVAL', `--lan must be "sim" or "tap:IFNAME", got "${spec}"`);
}

const IFNAME_PATTERN = /^[A-Za-z0-9_.-]{1,15}$/;

function checkIfname(ifname: string): void {
  if (!IFNAME_PATTERN.test(ifname)) throw new TapError('EINVAL', `Invalid interface name "${ifname}": 1 to 15 of letters, digits, "_", "." and "-"`);
}

const execFileAsync = promisify(execFile);

/** Find an executable on PATH (undefined if absent). */
export async function findExecutable(name: string): Promise<string | undefined> {
  if (name.includes('/')) return (await isExecutable(name)) ? name : undefined;
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** CAP_NET_ADMIN (capability 12) in this process's effective set: what creating a TAP takes. */
async function hasNetAdmin(): Promise<boolean> {
  if (process.getuid?.() === 0) return true;
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    return m !== null && (BigInt(`0x${m[1]}`) & (1n << 12n)) !== 0n;
  } catch {
    return false;
  }
}

/**
 * Why a TAP cannot be opened here, or undefined if it can: not root, no /dev/net/tun, no socat,
 * no `ip`. The lab harness uses this to skip with the reason; `open` throws it as a TapError.
 */
export async function tapUnavailableReason(socatPath = 'socat'): Promise<TapError | undefined> {
  if (process.platform !== 'linux') return new TapError('EINVAL', `TAP devices need Linux (this is ${process.platform})`);
  if (!(await hasNetAdmin())) return new TapError('EPERM', 'Creating a TAP device needs root (CAP_NET_ADMIN): run with sudo');
  try {
    await access('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    return new TapError('ENOENT', '/dev/net/tun is missing: load the tun module (modprobe tun) or, in a container, pass --device /dev/net/tun');
  }
  if (!(await findExecutable(socatPath))) return new TapError('ENOENT', `${socatPath} not found: install it (apt-get install socat), spinet uses it to open the TAP`);
  if (!(await findExecutable('ip'))) return new TapError('ENOENT', 'ip not found: install iproute2');
  return undefined;
}

/** Run `ip ARGS` (in `netns` if given); a failure becomes a TapError carrying ip's message. */
async function ip(netns: string | undefined, ...args: string[]): Promise<string> {
  const full = netns ? ['-n', netns, ...args] : args;
  try {
    const { stdout } = await execFileAsync('ip', full, { timeout: 10_000 });
    return stdout;
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? (error as Error).message).trim();
    throw new TapError(/permission|not permitted/i.test(stderr) ? 'EPERM' : 'EIO', `ip ${full.join(' ')}: ${stderr}`);
  }
}

/**
 * The relay for a persistent TAP, as socat's TUN ⇄ UDP4-DATAGRAM does it: TUNSETIFF with
 * IFF_TAP | IFF_NO_PI (linux/if_tun.h; allowed to the TAP's owner), then each frame one datagram
 * to 127.0.0.1:ours from 127.0.0.1:relay, and each datagram from ours one frame. Arguments:
 * clone device, interface name, our port, the relay's port.
 */
const PERSISTENT_TAP_RELAY = `
import fcntl, os, select, socket, struct, sys
dev, name, ours, mine = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tun = os.open(dev, os.O_RDWR)
fcntl.ioctl(tun, 0x400454ca, struct.pack('16sH', name.encode(), 0x0002 | 0x1000))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(('127.0.0.1', mine))
while True:
    ready, _, _ = select.select([tun, udp], [], [])
    if tun in ready:
        udp.sendto(os.read(tun, 65536), ('127.0.0.1', ours))
    if udp in ready:
        data, peer = udp.recvfrom(65536)
        if peer == ('127.0.0.1', ours):
            os.write(tun, data)
`;

/** A file of /sys/class/net/IF, trimmed; undefined when it is not there. */
function readSys(ifname: string, file: string): string | undefined {
  try {
    return readFileSync(`/sys/class/net/${ifname}/${file}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** `ifname` exists and is a TUN/TAP device made persistent (`ip tuntap add`): tun_flags has IFF_PERSIST. */
function persistentTap(ifname: string): boolean {
  const flags = readSys(ifname, 'tun_flags');
  // IFF_TAP 0x0002, IFF_PERSIST 0x0800 (linux/if_tun.h).
  return flags !== undefined && (Number(flags) & 0x0802) === 0x0802;
}

async function linkExists(netns: string | undefined, ifname: string): Promise<boolean> {
  if (!netns) return existsSync(`/sys/class/net/${ifname}`);
  try {
    await execFileAsync('ip', ['-n', netns, 'link', 'show', 'dev', ifname], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** True once something is bound to 127.0.0.1:port (UDP) in this namespace. */
async function udpBound(port: number): Promise<boolean> {
  const table = await readFile('/proc/net/udp', 'utf8');
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return table.split('\n').some((line) => line.trim().split(/\s+/)[1] === local);
}

function bindUdp(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

async function freeUdpPort(): Promise<number> {
  const probe = await bindUdp();
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// Every live socat, so that exit and signals take the TAPs down with us.
const live = new Set<TapAttachment>();
let hooksInstalled = false;

function killAllSync(): void {
  for (const tap of live) tap.killSync();
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = () => {
      // The application handles this signal (a graceful shutdown that still needs the TAP, which
      // its close() then stops): stay out of its way. A second Ctrl-C, or a process that does not
      // handle the signal, finds us alone: take the TAPs down and die of the signal as we would
      // have without this handler.
      if (process.listenerCount(signal) > 1) return;
      process.off(signal, handler);
      killAllSync();
      process.kill(process.pid, signal);
    };
    process.on(signal, handler);
  }
}

let temporaryNameCounter = 0;

/** IFF_UP on lo, from sysfs (true when sysfs cannot tell: let socat report then). */
function loopbackUp(): boolean {
  try {
    return (Number.parseInt(readFileSync('/sys/class/net/lo/flags', 'utf8').trim(), 16) & 0x1) !== 0;
  } catch {
    return true;
  }
}

/**
 * One TAP device and its socat. It is a LanEndpoint (plug it into a VirtualLan with `attachTo`)
 * and also a cable on its own (`plug` one endpoint, e.g. an emulated chip's PHY, point to point).
 */
export class TapAttachment implements LanEndpoint {
  readonly label: string;
  readonly stats: TapStats = { fromKernelFrames: 0, fromKernelBytes: 0, toKernelFrames: 0, toKernelBytes: 0, strayDatagrams: 0, relayErrors: 0 };
  private port: LanPort | undefined;
  private peer: LanEndpoint | undefined;
  private closing: Promise<void> | undefined;
  private stderrTail = '';
  private readonly exitListeners = new Set<(reason: string) => void>();

  private constructor(
    readonly ifname: string,
    readonly netns: string | undefined,
    private readonly socat: ChildProcess,
    private readonly socket: Socket,
    private readonly socatPort: number,
  ) {
    this.label = `tap:${ifname}`;
    socket.on('message', (message, remote) => {
      if (remote.address !== '127.0.0.1' || remote.port !== this.socatPort) {
        this.stats.strayDatagrams++;
        return;
      }
      this.stats.fromKernelFrames++;
      this.stats.fromKernelBytes += message.length;
      const frame = new Uint8Array(message.buffer, message.byteOffset, message.length);
      if (this.port) this.port.send(frame);
      else this.peer?.deliver(frame);
    });
    // Loopback UDP errors (e.g. ICMP port unreachable while socat restarts) are not fatal.
    socket.on('error', () => this.stats.relayErrors++);
    socat.once('exit', (code, signal) => {
      if (this.closing) return;
      const reason = `socat exited (${signal ?? `code ${code}`})${this.stderrTail.trim() ? `: ${this.stderrTail.trim()}` : ''}`;
      for (const listener of this.exitListeners) listener(reason);
    });
    socat.stderr?.setEncoding('utf8');
    socat.stderr?.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4096);
    });
  }

  /**
   * Create the TAP (and its socat) and wait until frames can flow — or, when `ifname` is a
   * persistent TAP that already exists (`ip tuntap add dev IF mode tap user $USER`, once, as root),
   * attach to it as its owner, with no privilege at all.
   */
  static async open(options: TapOptions): Promise<TapAttachment> {
    checkIfname(options.ifname);
    const address = options.address === undefined ? undefined : parseTapAddress(options.address);
    if (options.netns === undefined && persistentTap(options.ifname)) return TapAttachment.attach(options);
    const unavailable = await tapUnavailableReason(options.socatPath);
    if (unavailable) throw unavailable;
    const netns = options.netns;
    if (netns !== undefined && !existsSync(`/run/netns/${netns}`)) throw new TapError('ENOENT', `Network namespace "${netns}" does not exist (ip netns add ${netns})`);
    if (await linkExists(netns, options.ifname)) {
      throw new TapError('EEXIST', `Interface ${options.ifname} already exists${netns ? ` in namespace ${netns}` : ''}`);
    }
    // In a namespace, create under a name unused here, then move and rename.
    const createName = netns ? `sptap${process.pid % 100_000}x${temporaryNameCounter++}`.slice(0, 15) : options.ifname;
    const tap = await TapAttachment.startSocat(options, createName, true);
    try {
      if (netns) {
        await ip(undefined, 'link', 'set', 'dev', createName, 'netns', netns);
        await ip(netns, 'link', 'set', 'dev', createName, 'name', options.ifname);
      }
      if (options.mtu !== undefined) await ip(netns, 'link', 'set', 'dev', options.ifname, 'mtu', String(options.mtu));
      // Moving to another namespace takes the interface down; iff-up covered only the first one.
      await ip(netns, 'link', 'set', 'dev', options.ifname, 'up');
      if (address) await ip(netns, 'addr', 'add', options.address!, 'dev', options.ifname);
    } catch (error) {
      await tap.close();
      throw error;
    }
    return tap;
  }

  /**
   * An existing persistent TAP: opened by its owner through socat, without CAP_NET_ADMIN. The
   * administrator made it, brings it up and gives it its address; spinet changes nothing on it,
   * and it stays when spinet exits.
   */
  private static async attach(options: TapOptions): Promise<TapAttachment> {
    const { ifname } = options;
    if (options.address !== undefined || options.mtu !== undefined) {
      throw new TapError('EINVAL', `${ifname} is an existing persistent TAP: spinet does not configure it; give its address as root (sudo ip addr add A/N dev ${ifname}) and drop --tap-addr`);
    }
    const owner = readSys(ifname, 'owner');
    const uid = process.getuid?.() ?? 0;
    if (uid !== 0 && owner !== undefined && owner !== '-1' && Number(owner) !== uid) {
      throw new TapError('EPERM', `TAP ${ifname} belongs to uid ${owner}, not to you (uid ${uid}): sudo ip tuntap del dev ${ifname} mode tap && sudo ip tuntap add dev ${ifname} mode tap user $USER`);
    }
    const tun = options.tunDevice ?? '/dev/net/tun';
    try {
      await access(tun, constants.R_OK | constants.W_OK);
    } catch {
      throw new TapError('EACCES', `${tun} cannot be opened for reading and writing: sudo chmod 0666 ${tun} (or load the tun module: modprobe tun)`);
    }
    if (!(await findExecutable('python3'))) throw new TapError('ENOENT', 'python3 not found: install it (sudo apt-get install python3), spinet uses it to open a persistent TAP without privileges');
    if ((Number(readSys(ifname, 'flags') ?? '1') & 1) === 0) throw new TapError('ENETDOWN', `TAP ${ifname} is down: sudo ip link set ${ifname} up`);
    return TapAttachment.startSocat(options, ifname, false);
  }

  /** socat on TAP `createName`, relaying to a UDP socket of ours; resolved once frames can flow. */
  private static async startSocat(options: TapOptions, createName: string, create: boolean): Promise<TapAttachment> {
    const netns = options.netns;

    // socat relays over 127.0.0.1 in *this* namespace: in a fresh one (ip netns add) lo is down.
    if (!loopbackUp()) throw new TapError('ENETDOWN', 'the loopback interface is down in this network namespace, and spinet relays TAP frames over 127.0.0.1: ip link set lo up');
    const socket = await bindUdp();
    const ourPort = socket.address().port;
    const socatPort = await freeUdpPort();
    const socatArgs = [
      `TUN,tun-type=tap,iff-no-pi,iff-up,${options.tunDevice ? `tun-device=${options.tunDevice},` : ''}tun-name=${createName}`,
      `UDP4-DATAGRAM:127.0.0.1:${ourPort},bind=127.0.0.1:${socatPort}`,
    ];
    // socat sets the interface flags (SIOCSIFFLAGS) whatever its options, which needs
    // CAP_NET_ADMIN: on a persistent TAP its owner opens, the same relay is a few lines of python3.
    const relayArgs = ['-c', PERSISTENT_TAP_RELAY, options.tunDevice ?? '/dev/net/tun', createName, String(ourPort), String(socatPort)];
    const socatPath = create ? (await findExecutable(options.socatPath ?? 'socat'))! : (await findExecutable('python3'))!;
    const setpriv = await findExecutable('setpriv');
    // setpriv --pdeathsig: socat dies with us even if we are SIGKILLed (no exit hook runs then).
    const relay = create ? socatArgs : relayArgs;
    const [command, args] = setpriv ? [setpriv, ['--pdeathsig', 'TERM', socatPath, ...relay]] : [socatPath, relay];
    // With pdeathsig guarding against leaks, socat gets its own process group: a Ctrl-C in the
    // terminal goes to us alone, and the TAP stays up while we shut down gracefully (a DHCPRELEASE,
    // FINs) before close() stops it.
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: Boolean(setpriv) });
    const tap = new TapAttachment(options.ifname, netns, child, socket, socatPort);
    live.add(tap);
    installHooks();
    let exited: string | undefined;
    let spawnError: Error | undefined;
    child.once('error', (error) => (spawnError = error));
    child.once('exit', (code, signal) => {
      exited = signal ?? `exit code ${code}`;
      live.delete(tap);
    });

    try {
      const deadline = Date.now() + (options.startTimeoutMs ?? 5_000);
      for (;;) {
        if (spawnError) throw new TapError('ENOENT', `Cannot start socat: ${spawnError.message}`);
        if (exited !== undefined) throw new TapError('EIO', `socat failed to open TAP ${createName} (${exited}): ${tap.stderrTail.trim() || 'no message'}`);
        // A persistent TAP's carrier comes on when socat holds it (and the fd is ours).
        if (existsSync(`/sys/class/net/${createName}`) && (create || readSys(createName, 'carrier') === '1') && (await udpBound(socatPort))) break;
        if (Date.now() > deadline) throw new TapError('ETIMEDOUT', `socat did not bring TAP ${createName} up within ${options.startTimeoutMs ?? 5_000} ms: ${tap.stderrTail.trim()}`);
        await sleep(10);
      }
    } catch (error) {
      await tap.close();
      throw error;
    }
    return tap;
  }

  /** Plug into a VirtualLan: kernel frames enter the LAN, LAN frames reach the kernel. */
  attachTo(lan: VirtualLan): LanPort {
    if (this.port || this.peer) throw new TapError('EINVAL', `${this.label} is already connected`);
    this.port = lan.plug(this);
    return this.port;
  }

  /** Use the TAP as the cable of one endpoint (an emulated PHY, a VirtualLan-less NIC). */
  plug(endpoint: LanEndpoint): LanPort {
    if (this.port || this.peer) throw new TapError('EINVAL', `${this.label} is already connected`);
    this.peer = endpoint;
    return {
      label: this.label,
      send: (frame) => this.deliver(frame),
      unplug: () => {
        if (this.peer === endpoint) this.peer = undefined;
      },
    };
  }

  /** A frame for the kernel. */
  deliver(frame: Uint8Array): void {
    if (this.closing) return;
    this.stats.toKernelFrames++;
    this.stats.toKernelBytes += frame.length;
    this.socket.send(frame, this.socatPort, '127.0.0.1');
  }

  /**
   * Called if socat dies while the TAP is open (someone deleted the interface, killed socat):
   * the cable is cut. Not called for close(). Returns an unsubscribe function.
   */
  onExit(listener: (reason: string) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  get running(): boolean {
    return this.closing === undefined && this.socat.exitCode === null && this.socat.signalCode === null;
  }

  /** Stop socat (the TAP disappears with it) and close the relay. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.port?.unplug();
      this.port = undefined;
      this.peer = undefined;
      if (this.socat.exitCode === null && this.socat.signalCode === null) {
        const exited = new Promise<void>((resolve) => this.socat.once('exit', () => resolve()));
        this.socat.kill('SIGTERM');
        const timer = setTimeout(() => this.socat.kill('SIGKILL'), 2_000);
        await exited;
        clearTimeout(timer);
      }
      live.delete(this);
      await new Promise<void>((resolve) => this.socket.close(() => resolve()));
    })();
    return this.closing;
  }

  /** For exit hooks: signal socat now, without waiting. */
  killSync(): void {
    if (this.socat.exitCode === null && this.socat.signalCode === null) this.socat.kill('SIGTERM');
  }
}

function parseTapAddress(text: string): { address: number; prefixLength: number } {
  try {
    return parseCidr(text);
  } catch (error) {
    throw new TapError('EINVAL', `--tap-addr: ${(error as Error).message} (expected A.B.C.D/N)`);
  }
}
