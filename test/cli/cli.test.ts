/**
 * The `spinet` command line as a user runs it: a child process through tools/spinet.mjs (tsx),
 * exit codes, --help, and the main job (`spinet start`, what `npm start` runs) end to end:
 * DHCP lease from the gateway node, DNS, ping, the status page and TCP echo forwarded to
 * 127.0.0.1, and a clean shutdown on SIGINT.
 */
import { describe, expect, it } from 'vitest';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { get as httpGet } from 'node:http';
import { fileURLToPath } from 'node:url';

const SPINET = fileURLToPath(new URL('../../tools/spinet.mjs', import.meta.url));

interface Running {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exit: Promise<number | null>;
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
}

function spinet(args: string[]): Running {
  const child = spawn(process.execPath, [SPINET, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  const running: Running = {
    child,
    stdout: '',
    stderr: '',
    exit: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    waitFor: (pattern, timeoutMs) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = (running.stdout + running.stderr).match(pattern);
          if (match) {
            cleanup();
            resolve(match);
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; output so far:\n${running.stdout}\n${running.stderr}`));
        }, timeoutMs);
        const onExit = () => {
          cleanup();
          reject(new Error(`exited before ${pattern}; output:\n${running.stdout}\n${running.stderr}`));
        };
        const cleanup = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('exit', onExit);
        check();
      }),
  };
  child.stdout!.on('data', (d: Buffer) => (running.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (running.stderr += d.toString()));
  return running;
}

async function finished(args: string[], timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = spinet(args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), timeoutMs);
  const code = await run.exit;
  clearTimeout(timer);
  return { code, stdout: run.stdout, stderr: run.stderr };
}

function fetchPage(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpGet({ host: '127.0.0.1', port, path: '/', timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Send `data` to a TCP echo at 127.0.0.1:port, half-close, and collect everything echoed. */
function echoThrough(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      socket.end();
      resolve(Buffer.concat(chunks));
    });
    socket.on('error', reject);
    socket.setTimeout(60_000, () => socket.destroy(new Error('echo timed out')));
    socket.end(data);
  });
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('spinet CLI: usage', () => {
  it('lists every command with --help and exits 0; no command prints help and exits 1', async () => {
    const help = await finished(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['start', 'run', 'ping', 'get', 'resolve', 'sim', 'flash']) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    const none = await finished([]);
    expect(none.code).toBe(1);
    expect(none.stdout).toContain('Commands:');
  });

  it('rejects unknown commands and options with exit code 2 and one line pointing at the help', async () => {
    const unknown = await finished(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const badOption = await finished(['ping', '--bogus', '192.0.2.1']);
    expect(badOption.code).toBe(2);
    // One line that says what is wrong and where the help is, not the whole help.
    expect(badOption.stderr).toBe('spinet ping: unknown option --bogus (see `spinet ping --help`)\n');
    const badLan = await finished(['ping', '192.0.2.1', '--lan', 'wifi']);
    expect(badLan.code).toBe(2);
    expect(badLan.stderr).toMatch(/--lan must be/);
    const badBoard = await finished(['flash', '--board', 'esp32', '--port', '/dev/null', '--dry-run']);
    expect(badBoard.code).toBe(2);
    expect(badBoard.stderr).toMatch(/unknown board "esp32": one of mega2560, nano, nano-old, uno/);
    const noPort = await finished(['run', '--board', 'serial']);
    expect(noPort.code).toBe(2);
    expect(noPort.stderr).toMatch(/--port/);
    const badChip = await finished(['run', '--board', 'mock', '--chip', 'rtl8019']);
    expect(badChip.code).toBe(2);
    expect(badChip.stderr).toMatch(/--chip must be enc28j60 or w5500, not 'rtl8019'/);
    const autoOnMock = await finished(['run', '--board', 'mock', '--chip', 'auto']);
    expect(autoOnMock.code).toBe(2);
    expect(autoOnMock.stderr).toMatch(/--chip must be enc28j60 or w5500, not 'auto' \(auto probes a board behind the bridge: --board sim or serial\)/);
    const badChipOnSerial = await finished(['run', '--board', 'serial', '--port', '/dev/null', '--chip', 'w5100']);
    expect(badChipOnSerial.code).toBe(2);
    expect(badChipOnSerial.stderr).toMatch(/--chip must be enc28j60, w5500 or auto, not 'w5100'/);
  });

  it('checks the addressing options before bringing anything up: usage errors (exit 2) that say what to change', async () => {
    const cases: [string[], RegExp][] = [
      [['--gateway', '10.9.9.9'], /--gateway 10\.9\.9\.9 is not on the 192\.0\.2\.0\/24 network of --ip 192\.0\.2\.10\/24/],
      [['--gateway', '300.1.1.1'], /--gateway 300\.1\.1\.1: not an IPv4 address/],
      [['--dns', 'zz'], /--dns zz: not an IPv4 address/],
      [['--mac', 'ff:ff:ff:ff:ff:ff'], /--mac ff:ff:ff:ff:ff:ff is a group/],
      [['--mac', '01:00:5e:00:00:01'], /--mac 01:00:5e:00:00:01 is a group/],
      [['--ip', '192.0.2.255/24'], /broadcast address/],
      [['--ip', '224.0.0.5/24'], /not an address an interface can have/],
      [['--dhcp', '--ip', '192.0.2.5/24'], /--dhcp takes the address, gateway and DNS servers from the server: drop --ip/],
      [['--lease-file', '/tmp/spinet-unused-lease.json'], /--lease-file remembers a DHCP lease: it needs --dhcp/],
      [['-i', 'abc'], /--interval must be a number of seconds ≥ 0/],
    ];
    for (const [options, message] of cases) {
      const result = await finished(['ping', '192.0.2.1', '-c', '1', ...options]);
      expect(result.code, options.join(' ')).toBe(2);
      expect(result.stderr, options.join(' ')).toMatch(message);
      // refused before the LAN came up
      expect(result.stderr, options.join(' ')).not.toMatch(/^LAN: /m);
    }
    const pcap = await finished(['ping', '192.0.2.1', '-c', '1', '--pcap', '/nonexistent-dir/x.pcapng']);
    expect(pcap.code).toBe(1);
    expect(pcap.stderr).toMatch(/cannot write the capture file \/nonexistent-dir\/x\.pcapng \(no such file or directory\)/);
  }, 60_000);

  it('documents every option of a command in its --help', async () => {
    const help = await finished(['run', '--help']);
    expect(help.code).toBe(0);
    for (const option of ['--board', '--chip', '--port', '--lan', '--tap-addr', '--ip', '--gateway', '--dns', '--dhcp', '--hostname', '--lease-file', '--mac', '--log', '--pcap', '--serve']) {
      expect(help.stdout).toContain(option);
    }
  });

  it('fails clearly when the serial port does not exist', async () => {
    const result = await finished(['ping', '192.0.2.1', '--board', 'serial', '--port', '/dev/spinet-no-such-port', '--ip', '192.0.2.10/24']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/spinet ping: ENOENT: no such port \/dev\/spinet-no-such-port/);
  });

  it.skipIf(!existsSync('/usr/bin/socat'))('says so when nothing answers on the port (a serial line with no bridge sketch)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-cli-'));
    const link = join(dir, 'silent');
    // Two joined pseudo-terminals: one end for spinet, the other end never answers.
    const socat = spawn('socat', [`pty,link=${link},raw,echo=0`, 'pty,raw,echo=0'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(link); i++) await new Promise((r) => setTimeout(r, 100));
      const result = await finished(['ping', '192.0.2.1', '--board', 'serial', '--port', link, '--ip', '192.0.2.10/24']);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/ETIMEDOUT: no answer from the bridge sketch on .* at 1000000 baud: is it flashed/);
    } finally {
      socat.kill();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('spinet get and ping by name on the built-in LAN', () => {
  it('get fetches the gateway’s page through spinet: DNS on spinet’s UDP, the connection on spinet’s TCP', async () => {
    const result = await finished(['get', 'http://gateway.lan/', '--log', 'text']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('<h1>spinet on gateway</h1>');
    expect(result.stderr).toMatch(/HTTP\/1\.1 200 OK/);
    // the frame log shows the name asked of the gateway and the SYN leaving the board
    expect(result.stderr).toMatch(/192\.0\.2\.10\.\d+ > 192\.0\.2\.1\.53: UDP/);
    expect(result.stderr).toMatch(/192\.0\.2\.10\.\d+ > 192\.0\.2\.1\.80: Flags \[S\]/);
  }, 60_000);

  it('ping resolves a name first; an address nobody has ends in EHOSTUNREACH (ARP gave up), not a bare timeout', async () => {
    const named = await finished(['ping', 'gateway.lan', '-c', '2', '-i', '0.2']);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stdout).toMatch(/^PING gateway\.lan \(192\.0\.2\.1\): 56 data bytes$/m);
    expect(named.stdout).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);
    const unknown = await finished(['ping', 'nosuch.lan', '-c', '1']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/spinet ping: nosuch\.lan: ENOTFOUND/);
    expect(unknown.stdout).not.toMatch(/packets transmitted/);
    const nobody = await finished(['ping', '192.0.2.99', '-c', '1']);
    expect(nobody.code).toBe(1);
    // As iputils ping words it: the error is from our own address, counted among the errors.
    expect(nobody.stdout).toMatch(/^From 192\.0\.2\.10 icmp_seq=1 Destination Host Unreachable$/m);
    expect(nobody.stdout).toMatch(/1 packets transmitted, 0 received, \+1 errors, 100% packet loss/);
  }, 60_000);
});

describe('spinet run on the defaults (virtual board, built-in LAN)', () => {
  it('stays up until Ctrl-C with nothing pending, logs frames as JSON lines on stdout with --mac’s address, then prints the tables there as JSON and exits 0', async () => {
    const run = spinet(['run', '--serve', 'echo:7', '--mac', '02:00:00:00:00:42', '--log', 'json']);
    try {
      await run.waitFor(/up: 1: eth0 192\.0\.2\.10\/24 — Ctrl-C to stop/, 30_000);
      // No traffic, no chip, no serial port: only the wait for the signal may keep it alive.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(run.child.exitCode, run.stderr).toBeNull();
      // the gratuitous ARP for the configured address, from the MAC given
      // stdout is JSON lines only (the frames); progress is on stderr.
      const frames = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { direction: string; source: string; arp?: { senderIp: string } });
      expect(frames.some((f) => f.direction === 'out' && f.source === '02:00:00:00:00:42' && f.arp?.senderIp === '192.0.2.10')).toBe(true);
      run.child.kill('SIGINT');
      expect(await run.exit).toBe(0);
      expect(run.stderr).toMatch(/SIGINT: shutting down/);
      // The tables, beside the JSON log as one more JSON line: the echo service's sockets in them.
      const lines = run.stdout.trimEnd().split('\n').map((line) => JSON.parse(line) as { sockets?: { protocol: string; localAddress: string; localPort: number; state?: string }[] });
      const sockets = lines.at(-1)!.sockets!;
      expect(sockets).toContainEqual(expect.objectContaining({ protocol: 'tcp', localAddress: '0.0.0.0', localPort: 7, state: 'LISTEN' }));
      expect(sockets).toContainEqual(expect.objectContaining({ protocol: 'udp', localAddress: '0.0.0.0', localPort: 7 }));
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  }, 60_000);
});

describe('spinet ping on the built-in LAN', () => {
  it('pings the gateway node through the mock ENC28J60 and logs every frame to text and pcapng', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-cli-'));
    try {
      const pcap = join(dir, 'ping.pcapng');
      const result = await finished(['ping', '192.0.2.1', '-c', '3', '-i', '0.1', '--board', 'mock', '--log', 'text', '--pcap', pcap]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/3 packets transmitted, 3 received, 0% packet loss/);
      expect(result.stdout).toMatch(/64 bytes from 192\.0\.2\.1: icmp_seq=1 ttl=64 time=/);
      // The text log: ARP resolution, then echo requests out and replies in.
      expect(result.stderr).toMatch(/ARP.*who-has 192\.0\.2\.1|ARP.*192\.0\.2\.1/i);
      expect(result.stderr).toMatch(/192\.0\.2\.10 > 192\.0\.2\.1.*ICMP echo request/);
      expect(result.stderr).toMatch(/192\.0\.2\.1 > 192\.0\.2\.10.*ICMP echo reply/);
      const bytes = readFileSync(pcap);
      expect(bytes.readUInt32LE(0)).toBe(0x0a0d0d0a); // pcapng section header block
      if (existsSync('/usr/bin/tshark')) {
        const text = await new Promise<string>((resolve, reject) =>
          execFile('tshark', ['-r', pcap, '-Y', 'icmp'], (error, stdout) => (error ? reject(error) : resolve(stdout))),
        );
        expect(text.match(/Echo \(ping\) request/g)?.length).toBe(3);
        expect(text.match(/Echo \(ping\) reply/g)?.length).toBe(3);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function startAndExercise(board: string, echoBytes: number, chip?: string): Promise<void> {
  const run = spinet(['start', '--board', board, ...(chip ? ['--chip', chip] : []), '--http-port', '0', '--echo-port', '0']);
  try {
    if (chip === 'w5500') {
      const path = board === 'sim' ? /simulated Uno \(avr8js\) over \S+ → W5500 emulator/ : /W5500 driver → mock HAL → emulated W5500/;
      await run.waitFor(new RegExp(`board: ${path.source}, MAC 02:5e:00:00:00:0a, link up`), 60_000);
    }
    await run.waitFor(/DHCP: bound 192\.0\.2\.1\d\d\/24 from 192\.0\.2\.1, router 192\.0\.2\.1, DNS 192\.0\.2\.1/, 60_000);
    await run.waitFor(/DNS: gateway\.lan → 192\.0\.2\.1/, 20_000);
    await run.waitFor(/ping 192\.0\.2\.1: seq=3 64 bytes ttl=64 time=/, 20_000);
    const [, httpPort] = await run.waitFor(/curl http:\/\/127\.0\.0\.1:(\d+)\//, 20_000);
    const [, echoPort] = await run.waitFor(/socat - TCP:127\.0\.0\.1:(\d+)/, 20_000);
    const page = await fetchPage(Number(httpPort));
    expect(page.status).toBe(200);
    expect(page.body).toContain('<h1>spinet');
    // The page is the board's own (what it is, its address and link; no host details): it names the
    // address the board leased on the built-in LAN, and a link that is up.
    expect(page.body).toMatch(/<dt>Address<\/dt><dd>192\.0\.2\.\d+\/24<\/dd>/);
    expect(page.body).toContain('<dt>Link</dt><dd class="up">up</dd>');
    // Served over the board's own TCP: its counters row has the segments that carried the request.
    expect(page.body).toMatch(/<th scope="row">tcp<\/th><td>[1-9]\d*<\/td><td>[1-9]\d*<\/td>/);
    const data = randomBytes(echoBytes);
    const echoed = await echoThrough(Number(echoPort), data);
    expect(echoed.length).toBe(data.length);
    expect(sha(echoed)).toBe(sha(data));
    run.child.kill('SIGINT');
    expect(await run.exit).toBe(0);
    expect(run.stderr).toMatch(/SIGINT: shutting down/);
    expect(run.stderr).not.toMatch(/Error|EADDRINUSE|unhandled/i);
  } finally {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
  }
}

describe('spinet start (npm start)', () => {
  it('on the mock ENC28J60: lease, name, ping, status page and a 256 KiB echo through 127.0.0.1, clean Ctrl-C', async () => {
    await startAndExercise('mock', 256 * 1024);
  }, 120_000);

  it('on the mock W5500 (--chip w5500): the same', async () => {
    await startAndExercise('mock', 256 * 1024, 'w5500');
  }, 120_000);

  it('on the simulated Uno (the committed sketch in avr8js): the same, with a 256 KiB echo', async () => {
    await startAndExercise('sim', 256 * 1024);
  }, 180_000);

  it('on the simulated Uno with a W5500 (--chip w5500): the same', async () => {
    await startAndExercise('sim', 256 * 1024, 'w5500');
  }, 180_000);
});

/** `spinet sim --pty PATH …args` while `use` runs; then Ctrl-C, which must end it cleanly. */
async function withSimPty(args: string[], use: (pty: string, sim: ReturnType<typeof spinet>) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'spinet-cli-'));
  const pty = join(dir, 'uno');
  const sim = spinet(['sim', '--pty', pty, ...args]);
  try {
    await sim.waitFor(/Ctrl-C to stop/, 30_000);
    await use(pty, sim);
    sim.child.kill('SIGINT');
    expect(await sim.exit).toBe(0);
  } finally {
    if (sim.child.exitCode === null) sim.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!existsSync('/usr/bin/socat'))('spinet sim --pty with spinet on the other end through serialport', () => {
  it('serves the simulated Uno on a pseudo-terminal that `--board serial --port` opens like a real board', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'spinet-cli-'));
    const pty = join(dir, 'uno');
    const sim = spinet(['sim', '--pty', pty]);
    try {
      await sim.waitFor(/Ctrl-C to stop/, 30_000);
      const ping = await finished(['ping', '192.0.2.1', '--board', 'serial', '--port', pty, '--dhcp', '-c', '2', '-i', '0.2'], 120_000);
      expect(ping.code, ping.stderr).toBe(0);
      expect(ping.stderr).toMatch(/board: bridge:uno@.* → ENC28J60/);
      expect(ping.stderr).toMatch(/DHCP: bound 192\.0\.2\.1\d\d\/24 from 192\.0\.2\.1/);
      expect(ping.stdout).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);
      sim.child.kill('SIGINT');
      expect(await sim.exit).toBe(0);
      expect(sim.stderr).toMatch(/SIGINT: stopping the simulated board/);
    } finally {
      if (sim.child.exitCode === null) sim.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
  it('with a W5500 on the simulated board (spinet sim --chip w5500), --board serial finds it by probing (--chip auto, the default on serial)', async () => {
    await withSimPty(['--chip', 'w5500'], async (pty, sim) => {
      expect(sim.stderr).toMatch(/emulated W5500\) on /);
      const ping = await finished(['ping', '192.0.2.1', '--board', 'serial', '--port', pty, '--dhcp', '-c', '2', '-i', '0.2'], 120_000);
      expect(ping.code, ping.stderr).toBe(0);
      expect(ping.stderr).toMatch(/chip: found a W5500 \(VERSIONR 0x04\)/);
      expect(ping.stderr).toMatch(/board: bridge:uno@.* → W5500/);
      expect(ping.stderr).toMatch(/DHCP: bound 192\.0\.2\.1\d\d\/24 from 192\.0\.2\.1/);
      expect(ping.stdout).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);
    });
  }, 180_000);
  it.each(['enc28j60', 'w5500'])('with --model the sketch\'s TypeScript model serves the pseudo-terminal in place of the AVR (%s): the same', async (chip) => {
    await withSimPty(['--model', '--chip', chip], async (pty, sim) => {
      expect(sim.stderr).toMatch(/the bridge sketch's TypeScript model, no AVR; its HELLO names it "model", emulated (ENC28J60|W5500)\) on /);
      const ping = await finished(['ping', '192.0.2.1', '--board', 'serial', '--port', pty, '--dhcp', '-c', '2', '-i', '0.2'], 120_000);
      expect(ping.code, ping.stderr).toBe(0);
      expect(ping.stderr).toMatch(chip === 'w5500' ? /board: bridge:model@.* → W5500/ : /board: bridge:model@.* → ENC28J60/);
      expect(ping.stdout).toMatch(/2 packets transmitted, 2 received, 0% packet loss/);
    });
  }, 180_000);
});
