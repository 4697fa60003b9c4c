/**
 * Ctrl-C and the TAP's socat: an application that handles SIGINT keeps its TAP through its own
 * graceful shutdown (so a DHCPRELEASE or FIN can still leave), and one that does not still loses
 * the TAP with the process. Each child runs in a throw-away namespace.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { labUnavailableReason, waitFor } from './netns.js';

const run = promisify(execFile);
const CHILD = fileURLToPath(new URL('./fixtures/tap-child.ts', import.meta.url));
const reason = await labUnavailableReason(['socat', 'setpriv']);
if (reason) console.warn(`test/lab/tap-signals.test.ts: ${reason}`);
let ns = '';

afterEach(async () => {
  if (ns) await run('ip', ['netns', 'del', ns]).catch(() => undefined);
  ns = '';
});

async function startChild(mode: string) {
  ns = `spinet-sig-${process.pid}-${mode}`;
  await run('ip', ['netns', 'add', ns]);
  await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', CHILD, 'sig0', mode], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  await waitFor(() => out.includes('ready'), 15_000, 'the child to open its TAP');
  return { child, exit, out: () => out };
}

const tapExists = async () => (await run('ip', ['netns', 'exec', ns, 'ip', '-o', 'link']).then((r) => r.stdout)).includes('sig0');

describe.skipIf(reason)('TAP attachment and SIGINT', () => {
  it('says so when the namespace has its loopback down (the relay runs over 127.0.0.1)', async () => {
    ns = `spinet-sig-${process.pid}-lo`;
    await run('ip', ['netns', 'add', ns]);
    const result = await run('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', CHILD, 'sig0', 'default']).then(
      () => ({ stderr: '' }),
      (error: { stderr: string }) => error,
    );
    expect(result.stderr).toMatch(/ENETDOWN|loopback interface is down .* ip link set lo up/);
  }, 30_000);

  it('leaves the TAP to an application that handles SIGINT, until its close()', async () => {
    const { child, exit, out } = await startChild('graceful');
    expect(await tapExists()).toBe(true);
    child.kill('SIGINT');
    expect((await exit).code, out()).toBe(0);
    expect(out()).toContain('still up during shutdown: true');
    expect(await tapExists()).toBe(false);
  }, 30_000);

  it('takes the TAP down and dies of the signal when the application does not handle it', async () => {
    const { child, exit } = await startChild('default');
    child.kill('SIGINT');
    expect((await exit).signal).toBe('SIGINT');
    await waitFor(async () => !(await tapExists()), 5_000, 'the TAP to go');
  }, 30_000);
});
