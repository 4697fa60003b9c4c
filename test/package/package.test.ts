/**
 * spinet as a user installs it: `npm pack` (which builds dist/), the tarball installed into a
 * throw-away project under the OS temp dir with install scripts off, then used from plain
 * JavaScript — import and require, the `spinet` command, the type declarations — and every
 * example run from that project against the simulated board (the mock board where the AVR
 * simulation would be slow; johnny-five and MQTT on the sim board, whose gateway runs a broker). The
 * MQTT example runs again, and the HTTPS example and `spinet get https://… --ca` run, in a throw-away
 * network namespace against mosquitto and an HTTPS server with a throw-away CA (root, socat,
 * mosquitto, openssl). The registry is asked only for
 * what the npm cache lacks (`--prefer-offline`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { get as httpGet } from 'node:http';
import { LAB_HOST_ADDRESS, LAB_STACK_ADDRESS, execInNetns, skipLabUnless, waitFor } from '../lab/netns.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');

let work: string;
let project: string;

/** Run `command` in the project, like a user's shell there; never throws. */
async function inProject(command: string, args: string[], env: Record<string, string> = {}, timeout = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(command, args, { cwd: project, env: { ...process.env, ...env }, timeout, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number | string; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: `${e.stderr ?? ''}${typeof e.code === 'string' ? ` (${e.code})` : ''}` };
  }
}

const node = (file: string, args: string[] = [], env: Record<string, string> = {}) => inProject(process.execPath, [file, ...args], env);

/** `npm install SPEC` in the project, as a user adds a package an example needs. */
const npmInstall = (spec: string) => inProject('npm', ['install', spec, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], {}, 240_000);

/** Every file under `dir`, relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((d) => (d.isDirectory() ? walk(dir, join(prefix, d.name)) : [join(prefix, d.name)]));
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'spinet-package-'));
  project = join(work, 'app');
  await run('npm', ['pack', '--silent', '--pack-destination', work], { cwd: ROOT, timeout: 240_000, maxBuffer: 16 << 20 });
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'try-spinet', version: '1.0.0', private: true, type: 'module' }));
  const npm = (args: string[]) => run('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: project, timeout: 240_000, maxBuffer: 16 << 20 });
  await npm(['install', join(work, 'spinet-0.1.0.tgz')]);
}, 480_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds the library, its declarations, the CLI, the sketch hex and the docs — no tests, benchmarks, CI or TypeScript sources', () => {
    const files = walk(join(project, 'node_modules/spinet'));
    for (const f of ['dist/tools/index.js', 'dist/tools/index.d.ts', 'dist/tools/cli.js', 'dist/boards/bridge/uno.hex', 'dist/boards/uno.json', 'README.md', 'ARCHITECTURE.md', 'examples/web-server.mjs', 'package.json']) {
      expect(files, f).toContain(f);
    }
    expect(files.filter((f) => /^(test|bench|fuzz|\.ci|scripts|src|tools|hal|boards)\//.test(f))).toEqual([]);
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('installs no tsx and no native code to build beyond serialport\'s (prebuilt) binding', () => {
    const modules = join(project, 'node_modules');
    expect(existsSync(join(modules, 'tsx'))).toBe(false);
    expect(existsSync(join(modules, 'johnny-five'))).toBe(false);
    const gyp = walk(modules).filter((f) => f.endsWith('binding.gyp'));
    expect(gyp).toEqual(['@serialport/bindings-cpp/binding.gyp']);
    expect(walk(join(modules, '@serialport/bindings-cpp/prebuilds')).some((f) => f.startsWith('linux-x64/'))).toBe(true);
  });

  it('is imported from plain JavaScript (ESM): a board up, a ping, the stats, closed', async () => {
    writeFileSync(join(project, 'esm.mjs'), [
      "import { openBoard } from 'spinet';",
      "const node = await openBoard({ board: 'mock' });",
      "const reply = await node.stack.ping('192.0.2.1');",
      'const { interfaces, counters } = node.stats();',
      'await node.close();',
      'console.log(JSON.stringify({ from: reply.from, address: interfaces[0].addresses[0], icmp: counters.icmp.received }));',
    ].join('\n'));
    const result = await node('esm.mjs');
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ from: '192.0.2.1', address: '192.0.2.10/24', icmp: 1 });
  }, 60_000);

  it('is required from CommonJS', async () => {
    writeFileSync(join(project, 'cjs.cjs'), [
      "const { openBoard } = require('spinet');",
      "openBoard({ board: 'virtual' }).then(async (node) => { const r = await node.dns.lookup('gateway.lan', { family: 4 }); await node.close(); console.log(r.address); });",
    ].join('\n'));
    const result = await node('cjs.cjs');
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('192.0.2.1');
  }, 60_000);

  it('type-checks a TypeScript user of the declarations', async () => {
    writeFileSync(join(project, 'typed.ts'), [
      "import { openBoard, type SpinetNode, type OpenBoardOptions } from 'spinet';",
      "const options: OpenBoardOptions = { board: 'sim', dhcp: true };",
      'const node: SpinetNode = await openBoard(options);',
      'const addresses: string[] = (await node.dns.resolve4(\'gateway.lan\'));',
      'node.net.createServer((s) => s.end(addresses.join())).listen(7);',
      'export const rtt: number = (await node.stack.ping(\'192.0.2.1\')).rttMs;',
    ].join('\n'));
    writeFileSync(join(project, 'wrong.ts'), "import { openBoard } from 'spinet';\nawait openBoard({ board: 'nope' });\n");
    const tsc = (file: string) => inProject(process.execPath, [TSC, '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--types', 'node', '--typeRoots', join(ROOT, 'node_modules/@types'), file]);
    const good = await tsc('typed.ts');
    expect(good.code, good.stdout + good.stderr).toBe(0);
    const bad = await tsc('wrong.ts');
    expect(bad.stdout).toMatch(/"nope"/);
  }, 120_000);

  it('gives a `spinet` command that runs without tsx', async () => {
    const version = await inProject('npx', ['--no-install', 'spinet', '--version']);
    expect(version.stdout.trim()).toBe('spinet 0.1.0');
    const ping = await inProject('npx', ['--no-install', 'spinet', 'ping', '192.0.2.1', '-c', '2', '-i', '0.2', '--board', 'mock']);
    expect(ping.code, ping.stderr).toBe(0);
    expect(ping.stdout).toMatch(/2 packets transmitted, 2 received/);
  }, 60_000);
});

describe('the examples, run from the installed package', () => {
  const example = (name: string, args: string[] = [], env: Record<string, string> = {}) => {
    cpSync(join(project, 'node_modules/spinet/examples', name), join(project, name));
    return node(name, args, { SPINET_BOARD: 'mock', ...env });
  };

  it('http-client: the gateway\'s status page through http.get and spinet\'s agent', async () => {
    const result = await example('http-client.mjs', ['http://gateway.lan/status.json']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^HTTP 200 OK, application\/json/);
    expect(result.stdout).toContain('"192.0.2.1/24"');
  }, 60_000);

  it('dns-lookup: names through the board\'s resolver, and a name that does not exist', async () => {
    const result = await example('dns-lookup.mjs', ['gateway.lan', 'nowhere.lan']);
    expect(result.stdout).toMatch(/^DNS servers: 192\.0\.2\.1$/m);
    expect(result.stdout).toMatch(/^gateway\.lan → 192\.0\.2\.1 \(192\.0\.2\.1 ttl \d+\)$/m);
    expect(result.stdout).toMatch(/^nowhere\.lan: ENOTFOUND$/m);
    expect(result.code).toBe(1);
  }, 60_000);

  it('udp-sensor: three readings sent, three echoed back', async () => {
    const result = await example('udp-sensor.mjs', ['gateway.lan', '7', '3']);
    expect(result.code, result.stderr).toBe(0);
    const sent = [...result.stdout.matchAll(/^sent (\{.*\}) to 192\.0\.2\.1:7$/gm)].map((m) => m[1]);
    const echoed = [...result.stdout.matchAll(/^reply from 192\.0\.2\.1:7: (\{.*\})$/gm)].map((m) => m[1]);
    expect(sent).toHaveLength(3);
    expect(echoed).toEqual(sent);
  }, 60_000);

  it('web-server: the page the board serves, fetched from this machine through the forward', async () => {
    cpSync(join(project, 'node_modules/spinet/examples/web-server.mjs'), join(project, 'web-server.mjs'));
    const child = spawn(process.execPath, ['web-server.mjs'], { cwd: project, env: { ...process.env, SPINET_BOARD: 'mock' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      const port = await waitFor(() => /127\.0\.0\.1:(\d+)/.exec(output)?.[1], 30_000, 'the forwarded port');
      expect(output).toMatch(/serving http:\/\/192\.0\.2\.10\//);
      const fetch = (path: string) => new Promise<string>((resolve, reject) => httpGet(`http://127.0.0.1:${port}${path}`, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve(body));
      }).on('error', reject));
      expect(await fetch('/a')).toBe('hello from spinet: GET /a, visit 1\n');
      expect(await fetch('/b?x=1')).toBe('hello from spinet: GET /b?x=1, visit 2\n');
      const exited = new Promise((resolve) => child.on('exit', resolve));
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);

  it('blink: johnny-five on the simulated Uno\'s pin 8 while the gateway answers pings (sim board)', async () => {
    const install = await npmInstall('johnny-five@^2.1.0');
    expect(install.code, install.stderr).toBe(0);
    const result = await example('blink.mjs', [], { SPINET_BOARD: '' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.match(/^ping \d while blinking: [\d.]+ ms$/gm)).toHaveLength(5);
    expect(result.stdout).toMatch(/^LED off$/m);
  }, 300_000);

  it('mqtt-client: the mqtt package over a spinet socket gets its own publication back from the simulated LAN\'s broker (sim board, no root)', async () => {
    const install = await npmInstall('mqtt@^5.16.0');
    expect(install.code, install.stderr).toBe(0);
    // No arguments: the default sim board, and the broker on its gateway (gateway.lan:1883).
    const result = await example('mqtt-client.mjs', [], { SPINET_BOARD: '' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe('connected to gateway.lan:1883\nspinet/temperature: 21.5\n');
  }, 300_000);

  it('node.io on a board without the bridge sketch says which boards have pins', async () => {
    writeFileSync(join(project, 'no-pins.mjs'), [
      "import { openBoard } from 'spinet';",
      "const node = await openBoard({ board: 'mock' });",
      'try { node.io; } catch (error) { console.log(`${error.code}: ${error.message}`); }',
      'await node.close();',
    ].join('\n'));
    const result = await node('no-pins.mjs');
    expect(result.stdout.trim()).toBe("ERR_NO_GPIO: this board has no pins for johnny-five (ENC28J60 driver → mock HAL → emulated ENC28J60): use board 'sim' or a real board");
  }, 60_000);
});

const labSkip = process.getuid?.() === 0 ? await skipLabUnless(['socat', 'mosquitto', 'openssl']) : 'needs root';
const NETNS = `spinet-lab-${process.pid}-140`;

describe.skipIf(labSkip)('MQTT and HTTPS examples against mosquitto and an HTTPS server in a lab namespace', () => {
  const servers: ChildProcess[] = [];
  let pki: string;
  let tapIndex = 0;
  const inNetns = (file: string, args: string[], env: Record<string, string> = {}) => {
    const tap = `spt${tapIndex++}`;
    const vars = { SPINET_BOARD: 'mock', SPINET_LAN: `tap:${tap}`, SPINET_TAP_ADDR: `${LAB_HOST_ADDRESS}/24`, SPINET_IP: `${LAB_STACK_ADDRESS}/24`, ...env };
    return execInNetns(NETNS, 'env', ['-C', project, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`), process.execPath, file, ...args], '', 90_000);
  };

  beforeAll(async () => {
    await run('ip', ['netns', 'add', NETNS]);
    await run('ip', ['netns', 'exec', NETNS, 'ip', 'link', 'set', 'lo', 'up']);
    pki = join(work, 'pki');
    const openssl = (args: string[]) => run('openssl', args, { cwd: pki });
    await run('mkdir', ['-p', pki]);
    await openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=spinet test CA']);
    await openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', `/CN=${LAB_HOST_ADDRESS}`]);
    writeFileSync(join(pki, 'san.ext'), `subjectAltName=IP:${LAB_HOST_ADDRESS}\n`);
    await openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext']);
    writeFileSync(join(pki, 'mosquitto.conf'), 'listener 1883 0.0.0.0\nallow_anonymous true\n');
    writeFileSync(join(pki, 'https-server.mjs'), [
      "import https from 'node:https';",
      "import { readFileSync } from 'node:fs';",
      `const options = { key: readFileSync('${join(pki, 'server.key')}'), cert: readFileSync('${join(pki, 'server.pem')}') };`,
      "https.createServer(options, (req, res) => res.end(`secret page ${req.url}\\n`)).listen(443, '0.0.0.0', () => console.log('listening'));",
    ].join('\n'));
    servers.push(spawn('ip', ['netns', 'exec', NETNS, 'mosquitto', '-c', join(pki, 'mosquitto.conf')], { stdio: 'ignore' }));
    const https = spawn('ip', ['netns', 'exec', NETNS, process.execPath, join(pki, 'https-server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(https);
    await new Promise((resolve) => https.stdout!.once('data', resolve));
    await run('chmod', ['-R', 'a+rX', work]);
  }, 60_000);

  afterAll(async () => {
    for (const s of servers) s.kill('SIGKILL');
    await run('ip', ['netns', 'del', NETNS]).catch(() => undefined);
  });

  it('mqtt-client: the mqtt package over a spinet socket subscribes and gets its own publication back from mosquitto', async () => {
    const install = await npmInstall('mqtt@^5.16.0');
    expect(install.code, install.stderr).toBe(0);
    cpSync(join(project, 'node_modules/spinet/examples/mqtt-client.mjs'), join(project, 'mqtt-client.mjs'));
    const result = await inNetns('mqtt-client.mjs', [LAB_HOST_ADDRESS, '1883']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.toString()).toBe(`connected to ${LAB_HOST_ADDRESS}:1883\nspinet/temperature: 21.5\n`);
  }, 300_000);

  it('https-client: TLS over a spinet socket, the server certificate checked against the private CA — and refused without it', async () => {
    cpSync(join(project, 'node_modules/spinet/examples/https-client.mjs'), join(project, 'https-client.mjs'));
    const url = `https://${LAB_HOST_ADDRESS}/hello`;
    const good = await inNetns('https-client.mjs', [url], { SPINET_CA: join(pki, 'ca.pem') });
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout.toString()).toMatch(new RegExp(`^HTTP 200 over TLSv1\\.3, certificate for ${LAB_HOST_ADDRESS.replace(/\./g, '\\.')} verified\\nsecret page /hello\\n$`));
    const untrusted = await inNetns('https-client.mjs', [url]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to (get local issuer|verify)/i);
  }, 120_000);

  it('spinet get https://… --ca FILE prints the page; without --ca it fails in one line', async () => {
    const url = `https://${LAB_HOST_ADDRESS}/cli`;
    const cli = join(project, 'node_modules/spinet/dist/tools/cli.js');
    const args = (tap: string) => ['get', url, '--board', 'mock', '--lan', `tap:${tap}`, '--tap-addr', `${LAB_HOST_ADDRESS}/24`, '--ip', `${LAB_STACK_ADDRESS}/24`];
    const good = await execInNetns(NETNS, process.execPath, [cli, ...args('spg0'), '--ca', join(pki, 'ca.pem')], '', 90_000);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout.toString()).toBe('secret page /cli\n');
    const bad = await execInNetns(NETNS, process.execPath, [cli, ...args('spg1')], '', 90_000);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n').at(-1)).toMatch(/^spinet get: UNABLE_TO_VERIFY_LEAF_SIGNATURE: /);
  }, 120_000);
});
