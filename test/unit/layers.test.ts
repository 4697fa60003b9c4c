import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/**
 * The layer rule of ARCHITECTURE.md, checked: a file in src/ imports from its own layer and the
 * layers below it, and nothing outside src/. Upward calls are callbacks registered at setup.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Each folder (or top-level file) of src/ and its rank: an import may go to the same or a lower rank. */
const LAYER_RANK: Readonly<Record<string, number>> = {
  wire: 0,
  time: 1,
  stats: 1,
  options: 1,
  link: 2,
  // Both sit on the Nic contract (src/link/nic.ts): a driver implements it, a capture wraps it.
  drivers: 3,
  capture: 3,
  ip: 4,
  transport: 5,
  tcp: 5,
  // The Stack composes link, IP and UDP; sockets are made over its layers, so it never imports them.
  stack: 6,
  socket: 7,
  app: 8,
};

interface SourceFile {
  /** Relative to the repository root, with '/' separators: 'src/link/arp.ts'. */
  readonly path: string;
  readonly text: string;
}

/** 'src/link/arp.ts' → 'link'; 'src/options.ts' → 'options'; outside src/ → undefined. */
function layerOf(path: string): string | undefined {
  const parts = path.split('/');
  if (parts[0] !== 'src' || parts.length < 2) return undefined;
  return parts.length === 2 ? parts[1]!.replace(/\.ts$/, '') : parts[1]!;
}

/** Every relative import, re-export and dynamic import of a file, resolved to a repository path. */
function importsOf(file: SourceFile): string[] {
  const { importedFiles } = ts.preProcessFile(file.text, true, true);
  return importedFiles
    .map((i) => i.fileName)
    .filter((name) => name.startsWith('.'))
    .map((name) => normalize(join(dirname(file.path), name)).split('\\').join('/').replace(/\.js$/, '.ts'));
}

/** The imports that break the rule, as 'from → to (why)'. */
function layerViolations(files: readonly SourceFile[]): string[] {
  const violations: string[] = [];
  for (const file of files) {
    const from = layerOf(file.path);
    const fromRank = from === undefined ? undefined : LAYER_RANK[from];
    if (fromRank === undefined) {
      violations.push(`${file.path}: not in a ranked layer of src/`);
      continue;
    }
    for (const target of importsOf(file)) {
      const to = layerOf(target);
      const toRank = to === undefined ? undefined : LAYER_RANK[to];
      if (to === undefined) violations.push(`${file.path} → ${target} (outside src/)`);
      else if (toRank === undefined) violations.push(`${file.path} → ${target} (${to} is not a ranked layer)`);
      else if (toRank > fromRank) violations.push(`${file.path} → ${target} (upward: ${from} ${fromRank} < ${to} ${toRank})`);
    }
  }
  return violations;
}

function sourceFiles(dir: string): SourceFile[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [{ path, text: readFileSync(join(ROOT, path), 'utf8') }] : [];
  });
}

describe('the layers of src/', () => {
  const files = sourceFiles('src');

  it('reads the whole core: every file of src/ is in a ranked layer', () => {
    expect(files.length).toBeGreaterThan(50);
    const unranked = files.filter((f) => LAYER_RANK[layerOf(f.path)!] === undefined).map((f) => f.path);
    expect(unranked).toEqual([]);
  });

  it('has no import that points up a layer or out of src/', () => {
    expect(layerViolations(files)).toEqual([]);
  });

  it('finds an upward import: the link layer importing TCP', () => {
    const fake: SourceFile = { path: 'src/link/fake.ts', text: "import type { Tcp } from '../tcp/tcp.js';\nexport type T = Tcp;\n" };
    expect(layerViolations([fake])).toEqual(['src/link/fake.ts → src/tcp/tcp.ts (upward: link 2 < tcp 5)']);
  });

  it('finds the stack importing the socket layer, a re-export and a dynamic import included', () => {
    const fake: SourceFile = {
      path: 'src/stack/fake.ts',
      text: "export { createDgram } from '../socket/dgram.js';\nexport const net = () => import('../socket/net.js');\n",
    };
    expect(layerViolations([fake])).toEqual([
      'src/stack/fake.ts → src/socket/dgram.ts (upward: stack 6 < socket 7)',
      'src/stack/fake.ts → src/socket/net.ts (upward: stack 6 < socket 7)',
    ]);
  });

  it('finds an import out of src/: a driver importing a HAL implementation', () => {
    const fake: SourceFile = { path: 'src/drivers/enc28j60/fake.ts', text: "import { MockHal } from '../../../hal/mock/mock-hal.js';\n" };
    expect(layerViolations([fake])).toEqual(['src/drivers/enc28j60/fake.ts → hal/mock/mock-hal.ts (outside src/)']);
  });

  it('accepts imports within a layer and down: TCP importing time, wire and its own files', () => {
    const fake: SourceFile = {
      path: 'src/tcp/fake.ts',
      text: "import { RearmableTimer } from '../time/timer.js';\nimport { TcpRepr } from '../wire/tcp.js';\nimport { seqLt } from './seq.js';\nimport { EventEmitter } from 'node:events';\n",
    };
    expect(layerViolations([fake])).toEqual([]);
  });
});
