import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { TapAttachment, findExecutable, tapUnavailableReason } from '../../hal/lan/tap.js';

/**
 * The lab: a throw-away Linux network namespace with a TAP device in it, so a test can put the
 * kernel on the other end of spinet's cable and drive it with ping, socat, curl, scapy — without
 * touching this host's own interfaces. The namespace holds 192.0.2.1/24 (TEST-NET-1, RFC 5737) on
 * the TAP; the test's stack takes another 192.0.2.x. Nothing outside the namespace is reachable.
 *
 *   const reason = await labUnavailableReason(['ping']);
 *   describe.skipIf(reason)('…', () => {
 *     let lab: Lab;
 *     beforeAll(async () => { lab = await createLab(); lab.tap.attachTo(lan); });
 *     afterAll(() => lab?.close());
 *   });
 */
export const LAB_HOST_ADDRESS = '192.0.2.1';
export const LAB_PREFIX_LENGTH = 24;
/** Addresses a test's stack may take (the host is .1). */
export const LAB_STACK_ADDRESS = '192.0.2.10';

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Lab {
  /** Unique namespace name, e.g. spinet-lab-1234-0. */
  readonly netns: string;
  /** The TAP's name inside the namespace. */
  readonly ifname: string;
  readonly hostAddress: string;
  readonly tap: TapAttachment;
  /** Run a command in the namespace and wait for it; never throws for a non-zero exit. */
  exec(command: string, args: readonly string[], options?: { timeoutMs?: number; input?: string | Uint8Array }): Promise<ExecResult>;
  /** Start a long-running command in the namespace (killed by close()). */
  spawn(command: string, args: readonly string[]): ChildProcess;
  /** The kernel's neighbour entry for an address (`ip neigh show`), '' if none. */
  neighbour(address: string): Promise<string>;
  /** Kill what spawn() started, close the TAP, delete the namespace. Safe to call twice. */
  close(): Promise<void>;
}

const execFileAsync = promisify(execFile);

/**
 * Why the lab cannot run here (not root, no /dev/net/tun, a missing tool), or undefined. Printed,
 * so a skipped lab test says why in the test output.
 */
export async function labUnavailableReason(tools: readonly string[] = []): Promise<string | undefined> {
  const tapError = await tapUnavailableReason();
  if (tapError) return `lab tests skipped: ${tapError.message}`;
  for (const tool of tools) {
    if (!(await findExecutable(tool))) return `lab tests skipped: ${tool} is not installed`;
  }
  return undefined;
}

/** Compute the reason once and print it when skipping; returns it for describe.skipIf. */
export async function skipLabUnless(tools: readonly string[] = []): Promise<string | false> {
  const reason = await labUnavailableReason(tools);
  if (reason) console.warn(reason);
  return reason ?? false;
}

// Namespaces still alive, deleted synchronously if the process exits before close().
const liveNamespaces = new Set<string>();
let exitHookInstalled = false;
let counter = 0;

function deleteNamespaceSync(netns: string): void {
  try {
    execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore', timeout: 5_000 });
  } catch {
    // Already gone.
  }
}

/** Namespaces left by a lab process that was killed before it could clean up. */
async function deleteOrphanNamespaces(): Promise<void> {
  const names = await readdir('/run/netns').catch(() => [] as string[]);
  for (const name of names) {
    const m = /^spinet-lab-(\d+)-\d+$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch {
      await execFileAsync('ip', ['netns', 'del', name]).catch(() => undefined);
    }
  }
}

export async function createLab(options: { ifname?: string; hostAddress?: string } = {}): Promise<Lab> {
  const reason = await tapUnavailableReason();
  if (reason) throw reason;
  await deleteOrphanNamespaces();
  const netns = `spinet-lab-${process.pid}-${counter++}`;
  const ifname = options.ifname ?? 'tap0';
  const hostAddress = options.hostAddress ?? LAB_HOST_ADDRESS;
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const ns of liveNamespaces) deleteNamespaceSync(ns);
    });
  }
  await execFileAsync('ip', ['netns', 'add', netns]);
  liveNamespaces.add(netns);
  const children = new Set<ChildProcess>();
  let tap: TapAttachment | undefined;
  let closing: Promise<void> | undefined;

  const exec: Lab['exec'] = (command, args, execOptions = {}) =>
    new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', netns, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), execOptions.timeoutMs ?? 20_000);
      child.on('error', (error) => {
        clearTimeout(timer);
        resolve({ code: -1, stdout, stderr: stderr + error.message });
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code: code ?? (signal ? 128 : -1), stdout, stderr });
      });
      // A command that exits before reading its input (EPIPE) is not an error of the lab's.
      child.stdin.on('error', () => undefined);
      child.stdin.end(execOptions.input ?? '');
    });

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const child of children) child.kill('SIGKILL');
      await tap?.close();
      await execFileAsync('ip', ['netns', 'del', netns]).catch(() => undefined);
      liveNamespaces.delete(netns);
    })());

  try {
    // Quiet, predictable kernel side: no IPv6 autoconfiguration chatter on the TAP.
    await exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    await exec('ip', ['link', 'set', 'lo', 'up']);
    tap = await TapAttachment.open({ ifname, netns, address: `${hostAddress}/${LAB_PREFIX_LENGTH}` });
  } catch (error) {
    await close();
    throw error;
  }
  const openedTap = tap;

  return {
    netns,
    ifname,
    hostAddress,
    tap: openedTap,
    exec,
    spawn(command, args) {
      const child = spawn('ip', ['netns', 'exec', netns, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      child.on('exit', () => children.delete(child));
      return child;
    },
    async neighbour(address) {
      const { stdout } = await exec('ip', ['neigh', 'show', address, 'dev', ifname]);
      return stdout.trim();
    },
    close,
  };
}

/**
 * Run a command in a namespace that is not a Lab's (one a CLI under test makes its TAP in), with
 * `input` on its stdin; stdout as bytes. Killed after `timeoutMs`; never throws.
 */
export function execInNetns(netns: string, command: string, args: readonly string[], input: Uint8Array | string = '', timeoutMs = 30_000): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ip', ['netns', 'exec', netns, command, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr });
    });
    child.stdin.on('error', () => undefined); // EPIPE if the command exits before reading
    child.stdin.end(input);
  });
}

/** Poll `predicate` (real time) until it holds or `timeoutMs` passes. */
export async function waitFor<T>(predicate: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The interpreter scapy was installed for (Debian's python3-scapy: /usr/bin/python3), from its launcher. */
export async function scapyPython(): Promise<string | undefined> {
  const launcher = await findExecutable('scapy');
  if (!launcher) return undefined;
  const shebang = /^#!\s*(\S+)/.exec((await readFile(launcher, 'utf8')).split('\n', 1)[0] ?? '');
  return shebang?.[1] ?? 'python3';
}

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));

export interface SpinetProcess {
  readonly child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Its exit code, once it exits. */
  readonly exited: Promise<number | null>;
}

/** `spinet ARGS` inside `netns`, resolved once it prints that it is up (rejected if it exits first). */
export async function startSpinetIn(netns: string, args: readonly string[]): Promise<SpinetProcess> {
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, SPINET, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await waitFor(() => {
    if (child.exitCode !== null) throw new Error(`spinet exited (${child.exitCode}) before it was up:\n${output}`);
    return /up: .*Ctrl-C to stop/.test(output);
  }, 30_000, `spinet up:\n${output}`);
  return { child, output: () => output, exited };
}
