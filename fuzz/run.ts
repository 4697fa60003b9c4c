/**
 * `npm run fuzz [-- OPTIONS]`: the fuzz targets (fuzz/parsers.ts, fuzz/stack-target.ts), each job
 * in a worker thread under a watchdog (fuzz/watchdog.ts), with a summary of inputs, rates,
 * failures and the heap after each receive-path round.
 *
 *   --frames N          hostile frames through the whole receive path (default 200000)
 *   --round N           frames per receive-path round: a fresh victim, then transfers checked (200000)
 *   --parser-inputs N   inputs per parser target (default 100000)
 *   --targets a,b       only these (stack, ethernet, arp, ipv4, icmp, udp, tcp, dns, dhcp, bridge)
 *   --seed N            first seed (default 1); each job and round takes the next
 *   --minutes N         start no new job after N minutes
 *   --hang-seconds N    the watchdog's patience (default 30)
 *   --report FILE       write the summary as JSON
 *   --watchdog-check    run a target that hangs on purpose and check the watchdog reports it
 *
 * A failure prints the target, seed, index and input (hex) that reproduce it; the exit code is 1.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parserTargets } from './parsers.js';
import type { FuzzFailure, StackRound } from './engine.js';
import { runWatched } from './watchdog.js';

const { values } = parseArgs({
  options: {
    frames: { type: 'string', default: '200000' },
    round: { type: 'string', default: '200000' },
    'parser-inputs': { type: 'string', default: '100000' },
    targets: { type: 'string' },
    seed: { type: 'string', default: '1' },
    minutes: { type: 'string' },
    'hang-seconds': { type: 'string', default: '30' },
    report: { type: 'string' },
    'watchdog-check': { type: 'boolean', default: false },
  },
});

const frames = Number(values.frames);
const roundSize = Number(values.round);
const parserInputs = Number(values['parser-inputs']);
const hangMs = Number(values['hang-seconds']) * 1000;
const deadline = values.minutes === undefined ? Infinity : Date.now() + Number(values.minutes) * 60_000;
const wanted = values.targets?.split(',');
const started = Date.now();
let seed = Number(values.seed);

interface TargetSummary {
  target: string;
  inputs: number;
  seconds: number;
  failures: FuzzFailure[];
}
const summaries = new Map<string, TargetSummary>();
const heapAfterRounds: number[] = [];
const stackRounds: NonNullable<StackRound['report']>[] = [];

function summary(target: string): TargetSummary {
  let s = summaries.get(target);
  if (!s) summaries.set(target, (s = { target, inputs: 0, seconds: 0, failures: [] }));
  return s;
}

function log(line: string): void {
  console.log(`[${((Date.now() - started) / 1000).toFixed(0)} s] ${line}`);
}

function reportFailure(f: FuzzFailure): void {
  log(`FAILURE in ${f.target} (seed ${f.seed}, index ${f.index}): ${f.message.split('\n')[0]}`);
  log(`  input: ${f.input.slice(0, 400)}${f.input.length > 400 ? '…' : ''}`);
  if (f.attack) log(`  attack: ${JSON.stringify(f.attack)}`);
}

async function main(): Promise<void> {
  if (values['watchdog-check']) {
    const { failure } = await runWatched({ kind: 'watchdog-check', target: 'watchdog-check', count: 10, seed: 0 }, { hangMs: 2_000 });
    const ok = failure !== undefined && failure.index === 2 && failure.input === 'dead02' && failure.message.startsWith('hung');
    log(ok ? `watchdog: reported the hung input ${failure.input} (index ${failure.index})` : `watchdog: did NOT report the hang: ${JSON.stringify(failure)}`);
    process.exitCode = ok ? 0 : 1;
    return;
  }
  const runStack = !wanted || wanted.includes('stack');
  for (const target of parserTargets) {
    if (wanted && !wanted.includes(target.name)) continue;
    if (Date.now() > deadline) break;
    const t0 = Date.now();
    const { result, failure } = await runWatched({ kind: 'parser', target: target.name, count: parserInputs, seed: seed++ }, { hangMs });
    const s = summary(target.name);
    s.inputs += result?.inputs ?? 0;
    s.seconds += (Date.now() - t0) / 1000;
    if (failure) {
      s.failures.push(failure);
      reportFailure(failure);
    }
    log(`${target.name}: ${s.inputs} inputs, ${Math.round(s.inputs / s.seconds)}/s${failure ? ', FAILED' : ''}`);
  }
  if (runStack) {
    const s = summary('stack');
    while (s.inputs < frames && Date.now() < deadline) {
      const count = Math.min(roundSize, frames - s.inputs);
      const t0 = Date.now();
      const { result, failure, heapUsed } = await runWatched({ kind: 'stack', target: 'stack', count, seed: seed++ }, { hangMs });
      const round = result as StackRound | undefined;
      s.inputs += round?.inputs ?? 0;
      s.seconds += (Date.now() - t0) / 1000;
      if (round?.report) stackRounds.push(round.report);
      if (heapUsed !== undefined) heapAfterRounds.push(heapUsed);
      if (failure) {
        s.failures.push(failure);
        reportFailure(failure);
      }
      log(`stack: ${s.inputs} of ${frames} frames, ${Math.round(s.inputs / s.seconds)}/s, ${round?.report ? `${round.report.transfersCompleted} transfers byte-exact (${(round.report.bytesVerified / 1e6).toFixed(1)} MB), ping ok` : 'no report'}, heap ${heapUsed === undefined ? '?' : (heapUsed / 1e6).toFixed(1)} MB`);
    }
  }
  const rows = [...summaries.values()].map((s) => ({ target: s.target, inputs: s.inputs, seconds: Math.round(s.seconds), perSecond: Math.round(s.inputs / Math.max(s.seconds, 1e-3)), failures: s.failures.length }));
  const total = rows.reduce((n, r) => n + r.inputs, 0);
  console.log('\ntarget      inputs      seconds  per second  failures');
  for (const r of rows) console.log(`${r.target.padEnd(10)}  ${String(r.inputs).padStart(10)}  ${String(r.seconds).padStart(7)}  ${String(r.perSecond).padStart(10)}  ${r.failures}`);
  console.log(`all         ${String(total).padStart(10)}  ${String(Math.round((Date.now() - started) / 1000)).padStart(7)}`);
  if (heapAfterRounds.length > 1) console.log(`heap after each receive-path round (MB): ${heapAfterRounds.map((h) => (h / 1e6).toFixed(1)).join(' ')}`);
  const failures = [...summaries.values()].flatMap((s) => s.failures);
  if (values.report) {
    const transfers = stackRounds.reduce((n, r) => n + r.transfersCompleted, 0);
    const bytes = stackRounds.reduce((n, r) => n + r.bytesVerified, 0);
    const maxHeldTimers = Math.max(0, ...stackRounds.map((r) => r.maxHeldTimers));
    const maxConnections = Math.max(0, ...stackRounds.map((r) => r.maxConnections));
    writeFileSync(values.report, JSON.stringify({ started: new Date(started).toISOString(), seconds: (Date.now() - started) / 1000, rows, transfers, bytesVerified: bytes, maxHeldTimers, maxConnections, heapAfterRounds, failures }, null, 2));
  }
  process.exitCode = failures.length > 0 ? 1 : 0;
}

void main();
