/// <reference lib="dom" />
/**
 * The operator console in a real browser: Debian's headless Chromium driven by puppeteer-core,
 * against a node opened as `spinet run` opens it — the simulated Uno (the bridge sketch in
 * avr8js, the emulated ENC28J60) on the built-in LAN — with the console server on 127.0.0.1.
 * Traffic comes from the lab gateway on that LAN, so the test knows what the page must show.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import type { Browser, Page } from 'puppeteer-core';
import { findExecutable } from '../../hal/lan/tap.js';
import { openNode, type SpinetNode } from '../../tools/node.js';
import { startServices, type RunningServices } from '../../tools/services.js';
import { consoleSetup } from '../../tools/console/index.js';
import type { ConsoleServer } from '../../tools/console/server.js';
import { formatIpv4 } from '../../src/wire/address.js';

const chromium = (await findExecutable('chromium')) ?? (await findExecutable('chromium-browser'));
/** Why the browser tests cannot run here, said in the output and in the suite's name. */
const SKIP_REASON = 'skipped: no chromium (or chromium-browser) on PATH; Debian: apt-get install -y chromium';
if (!chromium) console.warn(`console browser tests ${SKIP_REASON}`);

/** Where the picture of the page goes: docs/console.png is refreshed with CONSOLE_SCREENSHOT=docs/console.png. */
const SCREENSHOT = process.env.CONSOLE_SCREENSHOT ?? join(tmpdir(), `spinet-console-${process.pid}.png`);
const BOARD = '192.0.2.10';

let node: SpinetNode;
let services: RunningServices;
let server: ConsoleServer;
let browser: Browser;
let page: Page;
let profile: string;
/** Everything the page reported as an error, and every request it made. */
const problems: string[] = [];
const requests: string[] = [];

/**
 * Poll `check` in the page until it returns a truthy value. The limits here and on each test are
 * generous: the simulated Uno runs in real time beside Chromium, and on a loaded 2-core machine
 * one page evaluation can take seconds. They bound a hang; they do not measure speed.
 */
async function until<T>(what: string, check: () => Promise<T | undefined | false | null>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  const t0 = Date.now();
  for (;;) {
    const value = await check();
    if (value) {
      if (process.env.CONSOLE_TEST_TIMES) console.log(`${what}: ${Date.now() - t0} ms`);
      return value;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const rows = (selector: string) => page.$$eval(`${selector} tbody tr`, (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent ?? '')));
const frameLines = () => page.$$eval('#frame-list button', (bs) => bs.map((b) => b.textContent ?? ''));

/** Send `bytes` to the board's TCP echo from the gateway and read them back; resolves with the connection left open. */
function echoFromGateway(bytes: number): Promise<{ localPort: number; close(): void }> {
  return new Promise((resolve, reject) => {
    const socket = node.gateway!.net.createConnection({ host: BOARD, port: 7 });
    let received = 0;
    socket.on('error', reject);
    socket.on('connect', () => socket.write(Buffer.alloc(bytes, 0x5a)));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received === bytes) resolve({ localPort: socket.localPort!, close: () => socket.destroy() });
    });
  });
}

beforeAll(async () => {
  if (!chromium) return;
  const operatorConsole = consoleSetup('0');
  node = await openNode({ board: 'sim', lan: 'sim' }, () => undefined, operatorConsole.extras);
  services = await startServices(node.stack, node.net, ['echo:7', 'http:80']);
  server = (await operatorConsole.start(node))!;
  const { default: puppeteer } = await import('puppeteer-core');
  profile = mkdtempSync(join(tmpdir(), 'spinet-chromium-'));
  browser = await puppeteer.launch({
    executablePath: chromium,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`],
  });
  page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('pageerror', (e) => problems.push(`page: ${String(e)}`));
  // (a frame stream the page closes itself, to subscribe with another filter, ends as aborted)
  page.on('requestfailed', (r) => !(r.url().includes('/api/frames?') && r.failure()?.errorText === 'net::ERR_ABORTED') && problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.setViewport({ width: 1360, height: 900 });
  await page.goto(server.url, { waitUntil: 'load' });
}, 240_000);

afterAll(async () => {
  // (generous: closing Chromium and the simulated board takes seconds on a busy machine)
  await browser?.close();
  await server?.close();
  // (services are not closed one by one: a server waits for its connections; the stack's stop ends them)
  void services;
  await node?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
})

describe.skipIf(!chromium)(`the operator console in Chromium${chromium ? '' : ` (${SKIP_REASON})`}`, () => {
  it('loads with no errors, fetches nothing but its own origin, and its tables match the stack', async () => {
    await until('the first state', () => page.$eval('#live-text', (e) => e.textContent === 'live'));
    expect(await page.title()).toBe('spinet console');
    const tables = node.stack.tables();
    expect(await rows('#interfaces')).toEqual(tables.interfaces.map((i) => [i.name, i.mac, String(i.mtu), i.linkUp ? 'up' : 'down', i.addresses.join(' '), expect.stringMatching(/^\d+$/), expect.stringMatching(/^\d+$/)]));
    expect(await rows('#routes')).toEqual([
      ['192.0.2.0/24', 'on-link', 'eth0', '0', 'connected'],
      ['0.0.0.0/0', '192.0.2.1', 'eth0', '100', 'static'],
    ]);
    expect((await rows('#socket-table')).map((r) => r.slice(0, 4))).toEqual(
      tables.sockets.map((s) => [s.protocol, `${s.localAddress}:${s.localPort}`, s.remoteAddress === undefined ? '*:*' : `${s.remoteAddress}:${s.remotePort}`, s.state ?? '']),
    );
    // A ping from the gateway puts it in the board's ARP cache: the page shows the same entry.
    await node.gateway!.stack.ping(BOARD, { timeoutMs: 3_000 });
    const arp = await until('the gateway in the ARP table', async () => {
      const r = await rows('#arp');
      return r.length > 0 && r;
    });
    expect(arp).toEqual(node.stack.arp.entries().map((e) => [e.address, e.mac, e.state, expect.stringMatching(/s$/), expect.stringMatching(/s$/), String(e.queued)]));
    expect(arp[0]!.slice(0, 3)).toEqual(['192.0.2.1', '02:5e:00:00:00:01', 'reachable']);
    const origin = new URL(server.url).origin;
    expect(requests.filter((u) => !u.startsWith(origin) && !u.startsWith('data:'))).toEqual([]);
    expect(problems).toEqual([]);
  }, 180_000);

  it('moves while traffic flows: counters, the serial link, a plot, a new connection with its cwnd', async () => {
    const counter = () => page.$eval('[data-counter="segmentsReceived"]', (e) => Number(e.textContent));
    const before = await until('TCP counters', counter).catch(() => 0);
    const pointsBefore = Number(await page.$eval('#plot-throughput', (e) => (e as HTMLElement).dataset.points));
    const connection = await echoFromGateway(24 * 1024);
    const key = `${BOARD}:7-${formatIpv4(node.gateway!.stack.interfaces[0]!.addresses[0]!.address)}:${connection.localPort}`;
    await until('more TCP segments counted', async () => (await counter()) > before + 10);
    await until('the throughput plot to show the traffic', () => page.$eval('#plot-throughput', (e) => ((e as HTMLElement).dataset.max ?? '').split(',').slice(0, 2).every((v: string) => Number(v) > 1000)));
    expect(Number(await page.$eval('#plot-throughput', (e) => (e as HTMLElement).dataset.points))).toBeGreaterThan(pointsBefore);
    // The serial link counted the bytes both ways.
    const frames = await page.$eval('[data-field="Frames"]', (e) => e.textContent ?? '');
    expect(frames).toMatch(/^\d+ sent, \d+ received$/);
    expect(Number(frames.split(' ')[0])).toBeGreaterThan(0);
    // The connection is listed, and its card shows the cwnd the stack has for it.
    await until('the connection in the socket table', async () => (await rows('#socket-table')).some((r) => r[2] === key.split('-')[1] && r[3] === 'ESTABLISHED'));
    const info = node.tcp.findConnection(node.iface.addresses[0]!.address, 7, node.gateway!.stack.interfaces[0]!.addresses[0]!.address, connection.localPort)!.info();
    const cwndText = await until('the connection card', () => page.$eval(`[data-connection="${key}"] [data-field="cwnd / ssthresh"]`, (e) => e.textContent).catch(() => undefined));
    expect(cwndText).toMatch(new RegExp(`^${info.cwnd} / `));
    expect(await page.$eval(`[data-connection="${key}"] [data-field="state"]`, (e) => e.textContent)).toBe('ESTABLISHED');
    await until('the cwnd plot for the connection', () => page.$eval('#plot-cwnd', (e, cwnd) => Number(((e as HTMLElement).dataset.last ?? '').split(',')[0]) === cwnd, info.cwnd));
    connection.close();
    expect(problems).toEqual([]);
  }, 240_000);

  it('logs frames live: filters by protocol and port, pauses, opens a frame layer by layer with the path it took', async () => {
    await page.click('#filter', { count: 3 });
    await page.type('#filter', 'icmp');
    await page.keyboard.press('Enter');
    await until('the filter to apply', () => page.$eval('#frame-list', (e) => (e as HTMLElement).dataset.filter === 'icmp'));
    for (let i = 0; i < 2; i++) await node.gateway!.stack.ping(BOARD, { timeoutMs: 3_000 });
    const icmp = await until('ICMP frames', async () => {
      const lines = await frameLines();
      return lines.filter((l) => /ICMP echo reply/.test(l) && / out /.test(l)).length >= 2 && lines;
    });
    expect(icmp.every((l) => /ICMP echo (request|reply)/.test(l))).toBe(true);

    // The quick controls compose the same language: TCP to or from port 7.
    await page.click('#filter', { count: 3 });
    await page.keyboard.press('Backspace');
    await page.select('#filter-protocol', 'tcp');
    await page.type('#filter-port', '7');
    await page.click('#frame-filter button[type="submit"]');
    await until('the composed filter', () => page.$eval('#frame-list', (e) => (e as HTMLElement).dataset.filter === 'tcp and port 7'));
    const echoed = await echoFromGateway(2048);
    const tcp = await until('TCP frames of the echo', async () => {
      const lines = await frameLines();
      return lines.some((l) => new RegExp(`\\.${echoed.localPort} > ${BOARD.replace(/\./g, '\\.')}\\.7: Flags \\[S\\]`).test(l)) && lines;
    });
    expect(tcp.every((l) => /IPv4, [\d.]+\.(7|\d+) > [\d.]+\.(7|\d+): Flags/.test(l) && /\.7[ :]/.test(l))).toBe(true);

    // Paused, nothing new is shown; resumed, what came meanwhile appears.
    await page.click('#pause');
    expect(await page.$eval('#pause', (e) => e.getAttribute('aria-pressed'))).toBe('true');
    const shown = (await frameLines()).length;
    const more = await echoFromGateway(512);
    await until('frames held while paused', () => page.$eval('#frame-count', (e) => /[1-9]\d* waiting \(paused\)/.test(e.textContent ?? '')));
    expect((await frameLines()).length).toBe(shown);
    await page.keyboard.press('p');
    await until('held frames shown on resume', async () => (await frameLines()).length > shown);

    // Open the echo's data segment as it left the board: layers, and its path down the stack.
    const target = await until('the echoed data leaving the board', () =>
      page.$$eval('#frame-list button', (bs, port) => (bs as HTMLElement[]).find((b) => new RegExp(`\\.7 > [\\d.]+\\.${port}: Flags \\[P\\.\\].*length 512$`).test(b.textContent ?? ''))?.dataset.id, more.localPort as number),
    );
    await page.focus(`#frame-list button[data-id="${target}"]`);
    await page.keyboard.press('Enter');
    await until('the frame detail', () => page.$eval('#frame-detail', (e, id) => !(e as HTMLElement).hidden && (e as HTMLElement).dataset.id === id, target));
    const layers = await page.$$eval('#detail-layers table', (ts) => ts.map((t) => (t as HTMLElement).dataset.layer));
    expect(layers).toEqual(['Ethernet II', 'IPv4', 'TCP']);
    const steps = await page.$$eval('#detail-steps li', (lis) => lis.map((li) => (li as HTMLElement).dataset.layer));
    expect([...new Set(steps)]).toEqual(['socket', 'tcp', 'ip', 'arp', 'ethernet', 'driver', 'chip', 'bridge']);
    expect(await page.$eval('#detail-tcp', (e) => e.textContent)).toMatch(/^\[P\.\] seq \d+:\d+ ack \d+ win \d+.*512 bytes: new data; .*retransmit timer (starts|already running)/);
    expect(await page.$eval('#detail-did .badge', (e) => e.textContent)).toBe('first transmission');
    // The picture in docs/: the whole page with the two connections open and this frame opened
    // (the sticky navigation pinned to the top for the picture).
    await page.evaluate(() => document.querySelector('nav')!.style.setProperty('position', 'static'));
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    await page.evaluate(() => document.querySelector('nav')!.style.removeProperty('position'));
    await page.keyboard.press('Escape');
    expect(await page.$eval('#frame-detail', (e) => (e as HTMLElement).hidden)).toBe(true);
    // Keyboard: "/" goes to the filter.
    await page.keyboard.press('/');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('filter');
    echoed.close();
    more.close();
    expect(problems).toEqual([]);
  }, 480_000);

  it('fits a phone-sized screen: nothing wider than the viewport but the tables that scroll', async () => {
    await page.setViewport({ width: 390, height: 844, isMobile: true });
    await new Promise((resolve) => setTimeout(resolve, 700));
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await page.setViewport({ width: 1360, height: 900 });
  }, 90_000);

  it('is the host\'s page only: on 127.0.0.1, refused to other Host names, and unreachable from the board\'s LAN', async () => {
    expect(new URL(server.url).hostname).toBe('127.0.0.1');
    // The LAN reaches the board's stack, which has no such port: the gateway's SYN is reset.
    const refused = await new Promise<string>((resolve) => {
      const socket = node.gateway!.net.createConnection({ host: BOARD, port: server.port });
      socket.on('connect', () => resolve('connected'));
      socket.on('error', (e: Error & { code?: string }) => resolve(e.code ?? e.message));
    });
    expect(refused).toBe('ECONNREFUSED');
    // A page that reaches 127.0.0.1 under another name (DNS rebinding) gets nothing.
    const status = await new Promise<number>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.port, path: '/api/state', headers: { host: `attacker.example:${server.port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on('error', reject)
        .end();
    });
    expect(status).toBe(421);
  }, 60_000);
});
