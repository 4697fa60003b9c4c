/**
 * `npm run bench [-- NAME…]`: run every bench/*.bench.ts (or those whose file or benchmark name
 * contains one of the NAMEs). Prints a first JSON line with the machine, one JSON line per figure
 * — {name, value, unit, baseline?, ratio?, limit?} — then a summary table; `| grep '^{'` keeps
 * the machine-readable part. Exits non-zero if a benchmark fails or misses its limit.
 */
import { readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { machineInfo, meetsLimit, type Benchmark, type Measurement } from './harness.js';

const here = dirname(fileURLToPath(import.meta.url));

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e9) return `${(value / 1e9).toFixed(2)} G`;
  if (abs >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (abs >= 1e4) return `${(value / 1e3).toFixed(1)} k`;
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

function table(rows: readonly Measurement[]): string {
  const header = ['benchmark', 'value', 'unit', 'baseline', 'ratio', 'limit', 'ok'];
  const body = rows.map((m) => {
    const ok = meetsLimit(m);
    return [
      m.name,
      formatNumber(m.value),
      m.unit,
      m.baseline === undefined ? '' : formatNumber(m.baseline),
      m.ratio === undefined ? '' : `${m.ratio.toFixed(2)}×`,
      m.limit === undefined ? '' : `${m.higherIsBetter === false ? '≤' : '≥'} ${formatNumber(m.limit)}`,
      ok === undefined ? '' : ok ? 'yes' : 'NO',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 1 || i === 3 || i === 4 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = (await readdir(here)).filter((f) => f.endsWith('.bench.ts')).sort();
  const machine = machineInfo();
  console.log(JSON.stringify({ machine }));
  const all: Measurement[] = [];
  let failed = false;
  for (const file of files) {
    const module = (await import(pathToFileURL(join(here, file)).href)) as { benchmarks?: Benchmark[] };
    for (const benchmark of module.benchmarks ?? []) {
      if (filters.length > 0 && !filters.some((f) => file.includes(f) || benchmark.name.includes(f))) continue;
      try {
        for (const m of await benchmark.run()) {
          const figure: Measurement = m.baseline !== undefined && m.ratio === undefined ? { ...m, ratio: m.value / m.baseline } : m;
          all.push(figure);
          console.log(JSON.stringify(figure));
        }
      } catch (error) {
        failed = true;
        console.log(JSON.stringify({ name: benchmark.name, error: (error as Error).stack ?? String(error) }));
      }
    }
  }
  console.log('');
  console.log(`${machine.cpuModel}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node} (${machine.platform})`);
  console.log(table(all));
  if (failed || all.some((m) => meetsLimit(m) === false)) process.exitCode = 1;
}

await main();
// Done: do not wait for what the benchmarks' stacks leave behind on a real clock (a closed TCP
// connection's TIME-WAIT holds a 120 s timer), or `npm run bench` would sit silent for minutes.
process.exit();
